//! The journal: every run, every lead's outcome and every PUT, the lease
//! that lets one applier at a time write, and the cycles of `rebalancer
//! run`. Each statement is written once, here and in `lease.rs`, over the
//! small [`db::Db`] trait; the two backends (`sqlite.rs`: one file, WAL,
//! `synchronous=FULL`, for one host; `pg.rs`: a PostgreSQL database,
//! `journal.url`, for replicas on several hosts) only run them and keep
//! the dialect differences (`db.rs` lists them).
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
//! Fencing: every write of a run carries the lease's token and changes
//! nothing once another process has taken the lease over; the run then
//! fails with `LeaseLost` (see `lease.rs`).
//!
//! Bodies hold lead, campaign and user ids only: no credential ever reaches
//! the journal.

pub(crate) mod db;
mod identity;
mod lease;
pub(crate) mod location;
mod pg;
mod pg_connect;
#[cfg(test)]
mod pg_tests;
pub(crate) mod proposals;
pub mod schema;
mod sqlite;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rebalancer_model::{LeadKey, Plan};

use crate::error::ApplyError;
use crate::report::{
    CycleRecord, LeadRecord, LeadState, PutRecord, PutState, RunKind, RunOutcome, RunRecord,
};
use db::{params, Db, DbError, Row};
use lease::fenced;

pub use lease::Lease;
pub use location::{mask_url, JournalLocation};

/// `host:pid` of this process, as leases and cycles name it.
pub fn holder() -> String {
    format!("{}:{}", identity::host(), std::process::id())
}

/// An open journal, of either backend.
#[derive(Debug)]
pub struct Journal {
    location: JournalLocation,
    db: Box<dyn Db>,
    /// The token of the lease this handle holds (0: none). Every write of
    /// a run is fenced by it.
    token: AtomicI64,
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
    pub state: PutState,
    pub applied: Option<bool>,
    pub status: Option<u16>,
    pub echo: Option<&'a str>,
    pub message: Option<&'a str>,
}

/// How a journal is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Create if missing and migrate: the commands that write.
    Write { create: bool },
    /// Neither create nor migrate nor write: `history`, `show`, `check`.
    Read,
}

impl Journal {
    /// Opens (creating if missing) and migrates the journal.
    pub fn open(location: impl Into<JournalLocation>) -> Result<Journal, ApplyError> {
        Journal::open_as(location.into(), Mode::Write { create: true })
            .map(|j| j.expect("a created journal exists"))
    }

    /// Opens and migrates an existing journal; `None` when a SQLite file
    /// does not exist (a PostgreSQL journal exists once its server answers).
    pub fn open_existing(
        location: impl Into<JournalLocation>,
    ) -> Result<Option<Journal>, ApplyError> {
        Journal::open_as(location.into(), Mode::Write { create: false })
    }

    /// Opens an existing journal to read it, without migrating or writing
    /// anything (a read-only database role is enough); `None` when there is
    /// no journal yet. A journal at an older schema version is an error
    /// that says a writing command migrates it.
    pub fn open_read(location: impl Into<JournalLocation>) -> Result<Option<Journal>, ApplyError> {
        Journal::open_as(location.into(), Mode::Read)
    }

    fn open_as(location: JournalLocation, mode: Mode) -> Result<Option<Journal>, ApplyError> {
        let fail = |e: DbError| ApplyError::journal(&location, e);
        let db: Box<dyn Db> = match &location {
            JournalLocation::Sqlite(path) => {
                let create = mode == Mode::Write { create: true };
                if !create && !path.exists() {
                    return Ok(None);
                }
                Box::new(sqlite::Sqlite::open(path, create, mode != Mode::Read).map_err(fail)?)
            }
            JournalLocation::Postgres(url) => {
                Box::new(pg::Pg::open(url, mode != Mode::Read).map_err(fail)?)
            }
        };
        match mode {
            Mode::Write { .. } => db.migrate().map_err(fail)?,
            Mode::Read => {
                let state = db.schema().map_err(fail)?;
                if state.found == 0 {
                    return Ok(None);
                }
                if state.found > state.current {
                    return Err(ApplyError::journal(
                        &location,
                        format!("the journal is at schema version {}, newer than this rebalancer knows ({}); use the newer rebalancer", state.found, state.current),
                    ));
                }
                if state.found < state.current {
                    return Err(ApplyError::JournalNeedsMigration {
                        location: location.to_string(),
                        found: state.found,
                        current: state.current,
                    });
                }
            }
        }
        Ok(Some(Journal {
            location,
            db,
            token: AtomicI64::new(0),
        }))
    }

    /// Where the journal is (its `Display` masks any password).
    pub fn location(&self) -> &JournalLocation {
        &self.location
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> ApplyError {
        ApplyError::journal(&self.location, format!("cannot {what}: {e}"))
    }

    /// The token that fences this handle's writes of a run.
    fn token(&self) -> i64 {
        self.token.load(Ordering::Relaxed)
    }

    /// A fenced write: one row changed, or the lease is lost.
    fn fenced_execute(
        &self,
        what: &str,
        sql: &'static str,
        params: &[db::Value],
    ) -> Result<(), ApplyError> {
        match self.db.execute(sql, params) {
            Ok(0) => Err(self.lost()),
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(what, e)),
        }
    }

    /// A fenced insert returning the new row's id.
    fn fenced_insert(
        &self,
        what: &str,
        sql: &'static str,
        params: &[db::Value],
    ) -> Result<i64, ApplyError> {
        match self.db.query(sql, params) {
            Ok(rows) => match rows.first() {
                Some(row) => row.int(0).map_err(|e| self.fail(what, e)),
                None => Err(self.lost()),
            },
            Err(e) => Err(self.fail(what, e)),
        }
    }

    fn lost(&self) -> ApplyError {
        lease::lost(&*self.db, &|detail| {
            ApplyError::journal(&self.location, detail)
        })
    }

    fn read<R>(
        &self,
        what: &str,
        sql: &'static str,
        params: &[db::Value],
        each: impl Fn(&Row) -> Result<R, DbError>,
    ) -> Result<Vec<R>, ApplyError> {
        let rows = self.db.query(sql, params).map_err(|e| self.fail(what, e))?;
        rows.iter()
            .map(|r| each(r).map_err(|e| self.fail(what, e)))
            .collect()
    }

    /// Makes every later write fail (tests of the write-failure path).
    #[cfg(test)]
    pub fn break_for_test(&self) {
        self.db.break_for_test()
    }

    // ---- the lease

    /// Takes the lease for `ttl`, or fails with `LeaseHeld` naming the
    /// holder while someone else's lease is unexpired by the journal's
    /// clock. This handle's run writes are fenced by it from now on.
    pub fn acquire_lease(&self, ttl: Duration) -> Result<Lease, ApplyError> {
        let lease = lease::acquire(&*self.db, ttl, &|detail| {
            ApplyError::journal(&self.location, detail)
        })?;
        self.token.store(lease.token(), Ordering::Relaxed);
        Ok(lease)
    }

    /// Extends the lease by its ttl from now (the journal's clock); false
    /// when it is no longer ours.
    pub fn renew_lease(&self, lease: &Lease) -> Result<bool, ApplyError> {
        lease::renew(&*self.db, lease).map_err(|e| self.fail("renew the lease", e))
    }

    /// Confirms and extends the lease just before a PUT, or fails with
    /// `LeaseLost` naming who holds it now.
    pub fn fence(&self, lease: &Lease) -> Result<(), ApplyError> {
        lease::fence(&*self.db, lease, &|detail| {
            ApplyError::journal(&self.location, detail)
        })
    }

    /// Gives the lease up (if it is still ours).
    pub fn release_lease(&self, lease: &Lease) -> Result<(), ApplyError> {
        lease::release(&*self.db, lease).map_err(|e| self.fail("release the lease", e))
    }

    // ---- runs (writes fenced by the lease)

    pub fn start_run(&self, run: NewRun<'_>) -> Result<i64, ApplyError> {
        self.fenced_insert(
            "record the start of the run",
            fenced!(
                "INSERT INTO runs (kind, parent, plan_hash, snapshot_hash, config_digest, plan_json, started_at, outcome, holder)
                 SELECT ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE 1 = 1",
                "RETURNING id"
            ),
            params![
                self.token(),
                run.kind.as_str(),
                run.parent,
                run.plan_hash,
                run.snapshot_hash,
                run.config_digest,
                run.plan_json,
                now(),
                RunOutcome::Running.as_str(),
                run.holder
            ],
        )
    }

    pub fn end_run(
        &self,
        run: i64,
        outcome: RunOutcome,
        puts_sent: u64,
        failed: u64,
        moves: u64,
    ) -> Result<(), ApplyError> {
        self.fenced_execute(
            "record the end of the run",
            fenced!("UPDATE runs SET ended_at = ?3, outcome = ?4, puts_sent = ?5, failed = ?6, moves_made = ?7 WHERE id = ?2"),
            params![self.token(), run, now(), outcome.as_str(), puts_sent, failed, moves],
        )
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
        self.fenced_execute(
            "update the run's counts",
            fenced!("UPDATE runs SET puts_sent = ?3, failed = ?4, moves_made = ?5 WHERE id = ?2"),
            params![self.token(), run, puts_sent, failed, moves],
        )
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
        let before = before.map(|b| serde_json::to_string(b).expect("a set of strings serialises"));
        self.fenced_execute(
            "record a lead",
            fenced!(
                "INSERT INTO leads (run, campaign_id, lead_id, state, detail, \"before\")
                 SELECT ?2, ?3, ?4, ?5, ?6, ?7 WHERE 1 = 1",
                "ON CONFLICT (run, campaign_id, lead_id) DO UPDATE SET state = excluded.state, detail = excluded.detail,
                   \"before\" = COALESCE(leads.\"before\", excluded.\"before\")"
            ),
            params![
                self.token(),
                run,
                lead.campaign_id,
                lead.lead_id,
                state.as_str(),
                detail,
                before
            ],
        )
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
        self.fenced_insert(
            "record a PUT before sending it",
            fenced!(
                "INSERT INTO puts (run, campaign_id, lead_id, seq, body, state, sent_at)
                 SELECT ?2, ?3, ?4, ?5, ?6, 'pending', ?7 WHERE 1 = 1",
                "RETURNING id"
            ),
            params![
                self.token(),
                run,
                lead.campaign_id,
                lead.lead_id,
                seq,
                body,
                now()
            ],
        )
    }

    /// Records how a PUT ended.
    pub fn put_done(&self, id: i64, out: PutOutcome<'_>) -> Result<(), ApplyError> {
        let t = time::OffsetDateTime::now_utc();
        self.fenced_execute(
            "record a PUT's outcome",
            fenced!(
                "UPDATE puts SET state = ?3, applied = ?4, status = COALESCE(?5, status), echo = COALESCE(?6, echo),
                   message = COALESCE(?7, message), done_at = ?8, done_ms = ?9 WHERE id = ?2"
            ),
            params![
                self.token(),
                id,
                out.state.as_str(),
                out.applied,
                out.status.map(u32::from),
                out.echo,
                out.message,
                format_time(t),
                unix_ms(t)
            ],
        )
    }

    // ---- reads

    pub fn run(&self, id: i64) -> Result<Option<RunRecord>, ApplyError> {
        Ok(self
            .read(
                "read a run",
                "SELECT id, kind, parent, plan_hash, snapshot_hash, config_digest, started_at, ended_at, outcome, puts_sent, failed, moves_made, holder
                 FROM runs WHERE id = ?1",
                params![id],
                run_record,
            )?
            .pop())
    }

    /// The newest runs first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, ApplyError> {
        self.read(
            "read the runs",
            "SELECT id, kind, parent, plan_hash, snapshot_hash, config_digest, started_at, ended_at, outcome, puts_sent, failed, moves_made, holder
             FROM runs ORDER BY id DESC LIMIT ?1",
            params![limit],
            run_record,
        )
    }

    /// The plan a run applied.
    pub fn plan_of(&self, run: i64) -> Result<Plan, ApplyError> {
        let bytes = self
            .read(
                "read the run's plan",
                "SELECT plan_json FROM runs WHERE id = ?1",
                params![run],
                |r| r.blob(0),
            )?
            .pop()
            .ok_or(ApplyError::NoSuchRun(run))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApplyError::journal(
                &self.location,
                format!("the plan of run {run} does not parse: {e}"),
            )
        })
    }

    /// The newest run that is interrupted or was killed and has not been
    /// resumed yet.
    pub fn latest_unfinished(&self) -> Result<Option<i64>, ApplyError> {
        Ok(self
            .read(
                "look for an unfinished run",
                "SELECT id FROM runs r WHERE outcome IN ('running', 'interrupted')
                   AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.parent = r.id AND c.kind = 'resume')
                 ORDER BY id DESC LIMIT 1",
                &[],
                |r| r.int(0),
            )?
            .pop())
    }

    /// `run`'s family: the first run of its chain (walking up through
    /// resumes) and every resume below it, in id order. A chain of parents
    /// that loops (a hand-edited or corrupt journal) is an error naming
    /// the runs, never an endless walk.
    pub fn family(&self, run: i64) -> Result<Vec<i64>, ApplyError> {
        let mut chain = vec![run];
        let mut root = run;
        loop {
            let Some((kind, parent)) = self
                .read(
                    "read the run's family",
                    "SELECT kind, parent FROM runs WHERE id = ?1",
                    params![root],
                    |r| Ok((r.text(0)?, r.opt_int(1)?)),
                )?
                .pop()
            else {
                return Err(ApplyError::NoSuchRun(root));
            };
            match (kind.as_str(), parent) {
                ("resume", Some(p)) => {
                    if chain.contains(&p) {
                        chain.push(p);
                        return Err(ApplyError::CorruptJournal {
                            location: self.location.to_string(),
                            detail: format!(
                                "the runs' parents form a loop: {}",
                                chain
                                    .iter()
                                    .map(|r| format!("run {r}"))
                                    .collect::<Vec<_>>()
                                    .join(" → ")
                            ),
                        });
                    }
                    chain.push(p);
                    root = p;
                }
                _ => break,
            }
        }
        // UNION (not UNION ALL) ends the recursion even on a loop below.
        let mut ids = self.read(
            "read the run's family",
            "WITH RECURSIVE fam(id) AS (SELECT CAST(?1 AS BIGINT) UNION SELECT r.id FROM runs r JOIN fam ON r.parent = fam.id WHERE r.kind = 'resume')
             SELECT id FROM fam",
            params![root],
            |r| r.int(0),
        )?;
        ids.sort_unstable();
        Ok(ids)
    }

    // ---- leads

    pub fn leads(&self, run: i64) -> Result<Vec<LeadRecord>, ApplyError> {
        self.read(
            "read the leads of a run",
            "SELECT campaign_id, lead_id, state, detail FROM leads WHERE run = ?1 ORDER BY campaign_id, lead_id",
            params![run],
            |r| {
                Ok(LeadRecord {
                    lead: lead_key(r, 0)?,
                    state: r.text(2)?.parse().map_err(DbError::data)?,
                    detail: r.text(3)?,
                })
            },
        )
    }

    /// The latest state of each lead over `runs`, and the earliest `before`.
    pub fn lead_history(&self, runs: &[i64]) -> Result<LeadHistory, ApplyError> {
        let mut out = LeadHistory::new();
        for &run in runs {
            let rows = self.read(
                "read lead states",
                "SELECT campaign_id, lead_id, state, \"before\" FROM leads WHERE run = ?1",
                params![run],
                |r| {
                    let state: LeadState = r.text(2)?.parse().map_err(DbError::data)?;
                    let before: Option<BTreeSet<String>> = match r.opt_text(3)? {
                        Some(b) => Some(
                            serde_json::from_str(&b).map_err(|e| DbError::data(e.to_string()))?,
                        ),
                        None => None,
                    };
                    Ok((lead_key(r, 0)?, state, before))
                },
            )?;
            for (lead, state, before) in rows {
                let entry = out.entry(lead).or_insert((state, None));
                entry.0 = state;
                if entry.1.is_none() {
                    entry.1 = before;
                }
            }
        }
        Ok(out)
    }

    // ---- puts

    /// The PUTs of any run that took effect (`applied` = 1: applied, or
    /// resolved as applied) and whose outcome was recorded at or after
    /// `since_ms` (Unix milliseconds): lead and body, oldest first.
    pub fn applied_since(&self, since_ms: i64) -> Result<Vec<(LeadKey, String)>, ApplyError> {
        self.read(
            "read the PUTs applied recently",
            "SELECT campaign_id, lead_id, body FROM puts WHERE applied = 1 AND done_ms >= ?1 ORDER BY done_ms, id",
            params![since_ms],
            |r| Ok((lead_key(r, 0)?, r.text(2)?)),
        )
    }

    /// The PUTs of `runs`, in (run, id) order.
    pub fn puts(&self, runs: &[i64]) -> Result<Vec<PutRecord>, ApplyError> {
        let mut out = Vec::new();
        for &run in runs {
            out.extend(self.read(
                "read the PUTs of a run",
                "SELECT id, campaign_id, lead_id, seq, body, state, applied, status, echo, message, sent_at, done_at
                 FROM puts WHERE run = ?1 ORDER BY id",
                params![run],
                |r| {
                    Ok(PutRecord {
                        id: r.int(0)?,
                        lead: lead_key(r, 1)?,
                        seq: u32::try_from(r.int(3)?).unwrap_or(u32::MAX),
                        body: r.text(4)?,
                        state: r.text(5)?.parse().map_err(DbError::data)?,
                        applied: r.opt_int(6)?.map(|a| a != 0),
                        status: r.opt_int(7)?.and_then(|s| u16::try_from(s).ok()),
                        echo: r.opt_text(8)?,
                        message: r.opt_text(9)?,
                        sent_at: r.text(10)?,
                        done_at: r.opt_text(11)?,
                    })
                },
            )?);
        }
        Ok(out)
    }

    // ---- cycles (any replica records its own; not fenced)

    /// Appends a cycle row; returns its id.
    pub fn record_cycle(&self, c: &CycleRecord, holder: &str) -> Result<i64, ApplyError> {
        let rows = self
            .db
            .query(
                "INSERT INTO cycles (started_at, ended_at, mode, outcome, run, snapshot_hash, plan_hash,
                   assigns, unassigns, deferred, held_back, shortfall_before, shortfall_after,
                   peak_before, peak_after, detail, holder)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 RETURNING id",
                params![
                    c.started_at.as_str(),
                    c.ended_at.as_str(),
                    c.mode.as_str(),
                    c.outcome.as_str(),
                    c.run,
                    c.snapshot_hash.as_deref(),
                    c.plan_hash.as_deref(),
                    c.assigns,
                    c.unassigns,
                    c.deferred,
                    c.held_back,
                    c.shortfall_before,
                    c.shortfall_after,
                    c.peak_before,
                    c.peak_after,
                    c.detail.as_str(),
                    holder
                ],
            )
            .map_err(|e| self.fail("record the cycle", e))?;
        rows.first()
            .ok_or_else(|| DbError::data("no id returned"))
            .and_then(|r| r.int(0))
            .map_err(|e| self.fail("record the cycle", e))
    }

    /// The latest `limit` cycles, newest first.
    pub fn cycles(&self, limit: usize) -> Result<Vec<CycleRecord>, ApplyError> {
        self.read(
            "read the cycles",
            "SELECT id, started_at, ended_at, mode, outcome, run, snapshot_hash, plan_hash,
               assigns, unassigns, deferred, held_back, shortfall_before, shortfall_after,
               peak_before, peak_after, detail
             FROM cycles ORDER BY id DESC LIMIT ?1",
            params![limit],
            |r| {
                let n = |i| r.count(i).map(|v| usize::try_from(v).unwrap_or(usize::MAX));
                Ok(CycleRecord {
                    id: r.int(0)?,
                    started_at: r.text(1)?,
                    ended_at: r.text(2)?,
                    mode: r.text(3)?.parse().map_err(DbError::data)?,
                    outcome: r.text(4)?.parse().map_err(DbError::data)?,
                    run: r.opt_int(5)?,
                    snapshot_hash: r.opt_text(6)?,
                    plan_hash: r.opt_text(7)?,
                    assigns: n(8)?,
                    unassigns: n(9)?,
                    deferred: n(10)?,
                    held_back: n(11)?,
                    shortfall_before: r.opt_real(12)?,
                    shortfall_after: r.opt_real(13)?,
                    peak_before: r.opt_real(14)?,
                    peak_after: r.opt_real(15)?,
                    detail: r.text(16)?,
                })
            },
        )
    }
}

fn run_record(r: &Row) -> Result<RunRecord, DbError> {
    Ok(RunRecord {
        id: r.int(0)?,
        kind: r.text(1)?.parse().map_err(DbError::data)?,
        parent: r.opt_int(2)?,
        plan_hash: r.text(3)?,
        snapshot_hash: r.text(4)?,
        config_digest: r.text(5)?,
        started_at: r.text(6)?,
        ended_at: r.opt_text(7)?,
        outcome: r.text(8)?.parse().map_err(DbError::data)?,
        puts_sent: r.count(9)?,
        failed: r.count(10)?,
        moves_made: r.count(11)?,
        holder: r.text(12)?,
    })
}

fn lead_key(r: &Row, at: usize) -> Result<LeadKey, DbError> {
    let id = |i| {
        u64::try_from(r.int(i)?).map_err(|_| DbError::data(format!("column {i}: a negative id")))
    };
    Ok(LeadKey {
        campaign_id: id(at)?,
        lead_id: id(at + 1)?,
    })
}

/// Now, RFC 3339 UTC.
/// This process as proposals name it: `host:pid`.
pub fn process_name() -> String {
    format!("{}:{}", identity::host(), std::process::id())
}

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
mod measure {
    use super::*;
    use crate::report::RunKind;

    /// `cargo test -p rebalancer-applier --lib measure -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn journal_cost_per_put() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path().join("m.sqlite")).unwrap();
        j.acquire_lease(std::time::Duration::from_secs(60)).unwrap();
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
                    &rebalancer_upstream::MappingUpdate {
                        lead_id: 2,
                        campaign_id: 1,
                        assigned_user_ids: vec!["a".into()],
                        unassigned_user_ids: vec![],
                    }
                    .to_body(),
                )
                .unwrap();
            j.put_done(
                id,
                PutOutcome {
                    state: PutState::Applied,
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
