//! The journal: every run, every lead's outcome and every PUT, the lease
//! that lets one applier at a time write, and the cycles of `rebalancer
//! run`. Two backends keep the same schema and semantics: a SQLite file
//! (`sqlite.rs`, WAL, `synchronous=FULL`; its lease serves one host) or a
//! PostgreSQL database (`pg.rs`, `journal.url`; its lease serves replicas on
//! several hosts). [`Journal`] dispatches to the one its
//! [`JournalLocation`] names.
//!
//! Write-before-send: a PUT's row is inserted (state `pending`) and
//! committed before the PUT is sent, and updated with its outcome after.
//! Each commit is durable when it returns (SQLite: `synchronous=FULL` syncs
//! the WAL on every commit; PostgreSQL: each statement commits on its own
//! with `synchronous_commit = on`), so after a crash at any instant every
//! PUT that may have reached the CMS has a row; those still `pending` are
//! resolved by reading their lead back. A failed journal write is an error
//! that stops the run before its next PUT.
//!
//! Bodies hold lead, campaign and user ids only: no credential ever reaches
//! the journal.

mod lease;
mod location;
mod pg;
#[cfg(test)]
mod pg_tests;
pub mod schema;
mod sqlite;
#[cfg(test)]
#[path = "../../tests/support/pg.rs"]
mod test_server;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rebalancer_model::{LeadKey, Plan};

use crate::error::ApplyError;
use crate::report::{
    CycleRecord, LeadRecord, LeadState, PutRecord, RunKind, RunOutcome, RunRecord,
};

pub use lease::Lease;
pub use location::{mask_url, JournalLocation};

/// `host:pid` of this process, as leases and cycles name it.
pub fn holder() -> String {
    format!("{}:{}", lease::host(), std::process::id())
}

/// An open journal, of either backend.
#[derive(Debug)]
pub struct Journal {
    location: JournalLocation,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(pg::Pg),
}

/// Calls the same method on whichever backend is open.
macro_rules! each {
    ($self:ident . $m:ident ( $($a:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite(b) => b.$m($($a),*),
            Backend::Postgres(b) => b.$m($($a),*),
        }
    };
}

/// Per lead: its latest state over some runs, and the assigned set read
/// before its first PUT in the earliest of them.
pub type LeadHistory = BTreeMap<LeadKey, (LeadState, Option<BTreeSet<String>>)>;

/// The fields of a new run row.
pub struct NewRun<'a> {
    pub kind: RunKind,
    pub parent: Option<i64>,
    pub snapshot_hash: &'a str,
    pub config_digest: &'a str,
    pub plan_json: &'a [u8],
    pub plan_hash: &'a str,
    pub holder: &'a str,
}

/// How a PUT ended, for its row.
pub struct PutOutcome<'a> {
    /// `applied`, `failed`, `ambiguous` or `resolved`.
    pub state: &'a str,
    pub applied: Option<bool>,
    pub status: Option<u16>,
    pub echo: Option<&'a str>,
    pub message: Option<&'a str>,
}

impl Journal {
    /// Opens (creating if missing) and migrates the journal.
    pub fn open(location: impl Into<JournalLocation>) -> Result<Journal, ApplyError> {
        let location = location.into();
        let backend = match &location {
            JournalLocation::Sqlite(path) => Backend::Sqlite(sqlite::Sqlite::open(path)?),
            JournalLocation::Postgres(url) => Backend::Postgres(pg::Pg::open(url, &location)?),
        };
        Ok(Journal { location, backend })
    }

    /// Opens an existing journal; `None` when a SQLite file does not exist
    /// (a PostgreSQL journal always exists once its server answers: it is
    /// migrated like any other opening).
    pub fn open_existing(
        location: impl Into<JournalLocation>,
    ) -> Result<Option<Journal>, ApplyError> {
        let location = location.into();
        let backend = match &location {
            JournalLocation::Sqlite(path) => match sqlite::Sqlite::open_existing(path)? {
                Some(s) => Backend::Sqlite(s),
                None => return Ok(None),
            },
            JournalLocation::Postgres(url) => Backend::Postgres(pg::Pg::open(url, &location)?),
        };
        Ok(Some(Journal { location, backend }))
    }

    /// Where the journal is (its `Display` masks any password).
    pub fn location(&self) -> &JournalLocation {
        &self.location
    }

    /// The SQLite connection (tests of the SQLite file).
    #[cfg(test)]
    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(b) => b.conn(),
            Backend::Postgres(_) => panic!("not a SQLite journal"),
        }
    }

    /// Makes every later write fail (tests of the write-failure path).
    #[cfg(test)]
    pub fn break_for_test(&self) {
        each!(self.break_for_test())
    }

    pub fn start_run(&self, run: NewRun<'_>) -> Result<i64, ApplyError> {
        each!(self.start_run(run))
    }

    pub fn end_run(
        &self,
        run: i64,
        outcome: RunOutcome,
        puts_sent: u64,
        failed: u64,
        moves: u64,
    ) -> Result<(), ApplyError> {
        each!(self.end_run(run, outcome, puts_sent, failed, moves))
    }

    /// Keeps the counts of a run up to date while it goes on (so that a
    /// killed run shows what it had done).
    pub fn count_run(
        &self,
        run: i64,
        puts_sent: u64,
        failed: u64,
        moves: u64,
    ) -> Result<(), ApplyError> {
        each!(self.count_run(run, puts_sent, failed, moves))
    }

    pub fn run(&self, id: i64) -> Result<Option<RunRecord>, ApplyError> {
        each!(self.run(id))
    }

    /// The newest runs first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, ApplyError> {
        each!(self.runs(limit))
    }

    /// The plan a run applied.
    pub fn plan_of(&self, run: i64) -> Result<Plan, ApplyError> {
        each!(self.plan_of(run))
    }

    /// The newest run that is interrupted or was killed and has not been
    /// resumed yet.
    pub fn latest_unfinished(&self) -> Result<Option<i64>, ApplyError> {
        each!(self.latest_unfinished())
    }

    /// `run`'s family: the first run of its chain (walking up through
    /// resumes) and every resume below it, in id order.
    pub fn family(&self, run: i64) -> Result<Vec<i64>, ApplyError> {
        each!(self.family(run))
    }

    /// Records (or updates) a lead's state in a run; `before` is the live
    /// assigned set read before its first PUT.
    pub fn set_lead(
        &self,
        run: i64,
        lead: LeadKey,
        state: LeadState,
        detail: &str,
        before: Option<&BTreeSet<String>>,
    ) -> Result<(), ApplyError> {
        each!(self.set_lead(run, lead, state, detail, before))
    }

    pub fn leads(&self, run: i64) -> Result<Vec<LeadRecord>, ApplyError> {
        each!(self.leads(run))
    }

    /// The latest state of each lead over `runs`, and the earliest `before`.
    pub fn lead_history(&self, runs: &[i64]) -> Result<LeadHistory, ApplyError> {
        each!(self.lead_history(runs))
    }

    /// Inserts a PUT's row, state `pending`, and commits it: call before
    /// sending. Returns the row id.
    pub fn put_pending(
        &self,
        run: i64,
        lead: LeadKey,
        seq: u32,
        body: &str,
    ) -> Result<i64, ApplyError> {
        each!(self.put_pending(run, lead, seq, body))
    }

    /// Records how a PUT ended.
    pub fn put_done(&self, id: i64, out: PutOutcome<'_>) -> Result<(), ApplyError> {
        each!(self.put_done(id, out))
    }

    /// The PUTs of any run that took effect (`applied`: applied, or
    /// resolved as applied) and whose outcome was recorded at or after
    /// `since_ms` (Unix milliseconds): lead and body, oldest first.
    pub fn applied_since(&self, since_ms: i64) -> Result<Vec<(LeadKey, String)>, ApplyError> {
        each!(self.applied_since(since_ms))
    }

    /// The PUTs of `runs`, in (run, id) order.
    pub fn puts(&self, runs: &[i64]) -> Result<Vec<PutRecord>, ApplyError> {
        each!(self.puts(runs))
    }

    /// Appends a cycle row; returns its id.
    pub fn record_cycle(&self, c: &CycleRecord, holder: &str) -> Result<i64, ApplyError> {
        each!(self.record_cycle(c, holder))
    }

    /// The latest `limit` cycles, newest first.
    pub fn cycles(&self, limit: usize) -> Result<Vec<CycleRecord>, ApplyError> {
        each!(self.cycles(limit))
    }

    /// Takes the lease for `ttl`, or fails with `LeaseHeld` naming the
    /// holder while someone else's lease is unexpired.
    pub fn acquire_lease(&self, ttl: Duration) -> Result<Lease, ApplyError> {
        each!(self.acquire_lease(ttl))
    }

    /// Extends the lease by `ttl` from now; false when it is no longer ours.
    pub fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<bool, ApplyError> {
        each!(self.renew_lease(lease, ttl))
    }

    /// Gives the lease up (if it is still ours).
    pub fn release_lease(&self, lease: &Lease) -> Result<(), ApplyError> {
        each!(self.release_lease(lease))
    }
}

/// Now, RFC 3339 UTC.
pub fn now() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

/// `t` as Unix milliseconds (floored), saturating far outside the years a
/// journal can hold.
pub(crate) fn unix_ms(t: time::OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn format_time(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RunKind;
    use rusqlite::Connection;
    use std::path::Path;
    use std::time::Duration;

    fn version(path: &Path) -> u32 {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn migrates_an_empty_file_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        std::fs::write(&path, b"").unwrap();
        Journal::open(&path).unwrap();
        assert_eq!(version(&path), schema::VERSION);
        let mode: String = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // Opening again is a no-op.
        let j = Journal::open(&path).unwrap();
        let sync: i64 = j
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous = FULL");
    }

    #[test]
    fn migrates_a_version_1_journal_keeping_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(schema::MIGRATIONS[0]).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            c.execute_batch(
                "INSERT INTO runs (kind, plan_hash, snapshot_hash, config_digest, plan_json, started_at, outcome, holder)
                   VALUES ('apply', 'p', 's', 'c', x'7b7d', '2026-01-01T00:00:00Z', 'completed', 'h:1');
                 INSERT INTO puts (run, campaign_id, lead_id, seq, body, state, sent_at)
                   VALUES (1, 5, 6, 1, '{}', 'applied', '2026-01-01T00:00:00Z');
                 INSERT INTO lease (id, holder, host, pid, expires_at) VALUES (1, 'h:1', 'h', 1, 'x');",
            )
            .unwrap();
        }
        let j = Journal::open(&path).unwrap();
        assert_eq!(version(&path), schema::VERSION);
        let runs = j.runs(10).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].outcome, RunOutcome::Completed);
        let puts = j.puts(&[1]).unwrap();
        assert_eq!(puts[0].applied, Some(true));
        // The version-1 lease (no token) is gone: the lease is free.
        j.acquire_lease(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn a_version_2_journal_gains_cycles_and_records_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.sqlite");
        {
            let mut c = Connection::open(&path).unwrap();
            for (i, sql) in schema::MIGRATIONS[..2].iter().enumerate() {
                let tx = c.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.pragma_update(None, "user_version", i as u32 + 1)
                    .unwrap();
                tx.commit().unwrap();
            }
        }
        let j = Journal::open(&path).unwrap();
        assert_eq!(version(&path), schema::VERSION);
        assert!(j.cycles(5).unwrap().is_empty());
        let cycle = CycleRecord {
            started_at: "2026-01-01T00:00:00Z".into(),
            ended_at: "2026-01-01T00:00:03Z".into(),
            mode: "dry_run".into(),
            outcome: "planned".into(),
            assigns: 3,
            held_back: 1,
            shortfall_before: Some(10.0),
            detail: "3 assigns planned".into(),
            ..CycleRecord::default()
        };
        let first = j.record_cycle(&cycle, "h:1").unwrap();
        let second = j.record_cycle(&cycle, "h:1").unwrap();
        let read = j.cycles(5).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].id, second, "newest first");
        assert_eq!(read[1], CycleRecord { id: first, ..cycle });
    }

    #[test]
    fn migrates_a_version_2_journal_filling_the_done_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(schema::MIGRATIONS[0]).unwrap();
            c.execute_batch(schema::MIGRATIONS[1]).unwrap();
            c.pragma_update(None, "user_version", 2).unwrap();
            c.execute_batch(
                "INSERT INTO runs (kind, plan_hash, snapshot_hash, config_digest, plan_json, started_at, outcome, holder)
                   VALUES ('apply', 'p', 's', 'c', x'7b7d', '2026-01-01T00:00:00Z', 'completed', 'h:1');
                 INSERT INTO puts (run, campaign_id, lead_id, seq, body, state, applied, sent_at, done_at) VALUES
                   (1, 5, 6, 1, '{}', 'applied', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
                   (1, 5, 7, 1, '{}', 'applied', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00.5Z'),
                   (1, 5, 8, 1, '{}', 'resolved', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:01.123456789Z'),
                   (1, 5, 9, 1, '{}', 'failed', 0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:02Z'),
                   (1, 5, 10, 1, '{}', 'pending', NULL, '2026-01-01T00:00:03Z', NULL);",
            )
            .unwrap();
        }
        let j = Journal::open(&path).unwrap();
        assert_eq!(version(&path), schema::VERSION);
        let base = unix_ms(time::macros::datetime!(2026-01-01 00:00:00 UTC));
        let done: Vec<Option<i64>> = {
            let c = j.conn();
            let mut stmt = c.prepare("SELECT done_ms FROM puts ORDER BY id").unwrap();
            let rows = stmt.query_map([], |r| r.get(0)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(
            done,
            [
                Some(base),
                Some(base + 500),
                Some(base + 1123),
                Some(base + 2000),
                None
            ]
        );
        let leads = |since: i64| -> Vec<u64> {
            j.applied_since(since)
                .unwrap()
                .into_iter()
                .map(|(l, _)| l.lead_id)
                .collect()
        };
        assert_eq!(leads(base), [6, 7, 8]);
        assert_eq!(leads(base + 500), [7, 8]);
        assert_eq!(leads(base + 501), [8]);
        assert_eq!(leads(base + 1124), Vec::<u64>::new());
    }

    #[test]
    fn only_puts_that_took_effect_are_applied_since_and_the_index_serves_it() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path().join("a.sqlite")).unwrap();
        let run = j
            .start_run(NewRun {
                kind: RunKind::Apply,
                parent: None,
                snapshot_hash: "s",
                config_digest: "c",
                plan_json: b"{}",
                plan_hash: "h",
                holder: "h:1",
            })
            .unwrap();
        let start = unix_ms(time::OffsetDateTime::now_utc());
        let outcomes: [(&str, Option<bool>); 6] = [
            ("applied", Some(true)),
            ("failed", Some(false)),
            ("ambiguous", None),
            ("resolved", Some(true)),
            ("resolved", Some(false)),
            ("pending", None),
        ];
        for (k, (state, applied)) in outcomes.into_iter().enumerate() {
            let lead = LeadKey {
                campaign_id: 1,
                lead_id: k as u64,
            };
            let id = j.put_pending(run, lead, 1, "{}").unwrap();
            if state != "pending" {
                j.put_done(
                    id,
                    PutOutcome {
                        state,
                        applied,
                        status: None,
                        echo: None,
                        message: None,
                    },
                )
                .unwrap();
            }
        }
        let found: Vec<u64> = j
            .applied_since(start)
            .unwrap()
            .into_iter()
            .map(|(l, _)| l.lead_id)
            .collect();
        assert_eq!(found, [0, 3]);
        let later = unix_ms(time::OffsetDateTime::now_utc()) + 1;
        assert!(j.applied_since(later).unwrap().is_empty());
        let plan: Vec<String> = {
            let c = j.conn();
            let mut stmt = c
                .prepare("EXPLAIN QUERY PLAN SELECT campaign_id, lead_id, body FROM puts WHERE applied = 1 AND done_ms >= ?1 ORDER BY done_ms, id")
                .unwrap();
            let rows = stmt.query_map([0], |r| r.get(3)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        assert!(
            plan.iter().any(|d| d.contains("puts_applied_by_time")),
            "{plan:?}"
        );
    }

    #[test]
    fn refuses_a_newer_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.sqlite");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let e = Journal::open(&path).unwrap_err();
        assert!(e.to_string().contains("version 99"), "{e}");
    }

    #[test]
    fn one_lease_at_a_time_and_expired_ones_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let a = Journal::open(&path).unwrap();
        let b = Journal::open(&path).unwrap();
        let la = a.acquire_lease(Duration::from_secs(30)).unwrap();
        match b.acquire_lease(Duration::from_secs(5)) {
            Err(ApplyError::LeaseHeld { holder, .. }) => assert_eq!(holder, la.holder),
            other => panic!("{other:?}"),
        }
        assert!(a.renew_lease(&la, Duration::from_millis(100)).unwrap());
        std::thread::sleep(Duration::from_millis(150));
        assert!(!la.valid_for(Duration::ZERO));
        let lb = b.acquire_lease(Duration::from_secs(5)).unwrap();
        // The old holder finds out at its next renewal.
        assert!(!a.renew_lease(&la, Duration::from_secs(5)).unwrap());
        b.release_lease(&lb).unwrap();
        a.acquire_lease(Duration::from_secs(5)).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_lease_of_a_process_that_is_gone_is_taken_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let j = Journal::open(&path).unwrap();
        let mine = j.acquire_lease(Duration::from_secs(3600)).unwrap();
        let host = mine.holder.rsplit_once(':').unwrap().0.to_owned();
        j.release_lease(&mine).unwrap();
        // A lease of this host, unexpired for an hour, by a pid no process has.
        let dead = 99_999_999_i64;
        Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO lease (id, holder, host, pid, expires_at, token, expires_ms) VALUES (1, ?1, ?2, ?3, 'later', 't', ?4)",
                rusqlite::params![format!("{host}:{dead}"), host, dead, i64::MAX / 2],
            )
            .unwrap();
        let taken = j.acquire_lease(Duration::from_secs(5)).unwrap();
        assert!(taken.holder.ends_with(&format!(":{}", std::process::id())));
        // A live holder (this very process, in another journal handle) keeps it.
        let other = Journal::open(&path).unwrap();
        assert!(matches!(
            other.acquire_lease(Duration::from_secs(5)),
            Err(ApplyError::LeaseHeld { .. })
        ));
    }
}

#[cfg(test)]
mod measure {
    use super::*;
    use crate::report::RunKind;

    /// `cargo test -p rebalancer-applier --lib measure -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn journal_cost_per_put() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path().join("m.sqlite")).unwrap();
        let run = j
            .start_run(NewRun {
                kind: RunKind::Apply,
                parent: None,
                snapshot_hash: "s",
                config_digest: "c",
                plan_json: b"{}",
                plan_hash: "h",
                holder: "h:1",
            })
            .unwrap();
        let lead = LeadKey {
            campaign_id: 1,
            lead_id: 2,
        };
        let n = 500;
        let t = std::time::Instant::now();
        for seq in 0..n {
            let id = j
                .put_pending(
                    run,
                    lead,
                    seq,
                    r#"{"leadId":2,"campaignId":1,"assignedUserIds":["a"],"unassignedUserIds":[]}"#,
                )
                .unwrap();
            j.put_done(
                id,
                PutOutcome {
                    state: "applied",
                    applied: Some(true),
                    status: Some(200),
                    echo: Some("{}"),
                    message: None,
                },
            )
            .unwrap();
        }
        let per = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
        eprintln!(
            "journal: {per:.3} ms per PUT (insert + update, two synchronous=FULL commits) in {}",
            dir.path().display()
        );
    }
}
