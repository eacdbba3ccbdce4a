//! The journal: one SQLite file (WAL, `synchronous=FULL`) holding every
//! run, every lead's outcome and every PUT, and the lease that lets one
//! applier at a time write.
//!
//! Write-before-send: a PUT's row is inserted (state `pending`) and
//! committed before the PUT is sent, and updated with its outcome after.
//! Each commit is durable when it returns (`synchronous=FULL` syncs the WAL
//! on every commit), so after a crash at any instant every PUT that may have
//! reached the CMS has a row; those still `pending` are resolved by reading
//! their lead back. A failed journal write is an error that stops the run
//! before its next PUT.
//!
//! Bodies hold lead, campaign and user ids only: no credential ever reaches
//! this file.

mod lease;
pub mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rebalancer_model::{LeadKey, Plan};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use crate::error::ApplyError;
use crate::report::{
    CycleRecord, LeadRecord, LeadState, PutRecord, RunKind, RunOutcome, RunRecord,
};

pub use lease::Lease;

/// `host:pid` of this process, as leases and cycles name it.
pub fn holder() -> String {
    format!("{}:{}", lease::host(), std::process::id())
}

/// How long a journal call waits for another process's lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An open journal. Calls are serialised on one connection.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    conn: Mutex<Connection>,
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
    pub fn open(path: &Path) -> Result<Journal, ApplyError> {
        let conn = Connection::open(path).map_err(|e| ApplyError::journal(path, e))?;
        Journal::setup(path, conn)
    }

    /// Opens an existing journal; `None` when the file does not exist.
    pub fn open_existing(path: &Path) -> Result<Option<Journal>, ApplyError> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| ApplyError::journal(path, e))?;
        Journal::setup(path, conn).map(Some)
    }

    fn setup(path: &Path, mut conn: Connection) -> Result<Journal, ApplyError> {
        let pragmas =
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";
        let fail = |e: rusqlite::Error| {
            ApplyError::journal(path, format!("cannot set up the journal: {e}"))
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        // Switching a new file to WAL takes an exclusive lock and does not
        // wait on the busy handler: two processes creating the journal at
        // once retry here until the busy timeout.
        let began = std::time::Instant::now();
        loop {
            match conn.execute_batch(pragmas) {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::DatabaseBusy
                        && began.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(fail(e)),
            }
        }
        schema::migrate(&mut conn).map_err(|e| ApplyError::journal(path, e))?;
        Ok(Journal {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the connection, mapping SQLite errors to `Journal`.
    fn with<R>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R, ApplyError> {
        let mut conn = self.conn();
        f(&mut conn).map_err(|e| ApplyError::journal(&self.path, format!("cannot {what}: {e}")))
    }

    /// Makes every later write fail (tests of the write-failure path).
    #[cfg(test)]
    pub fn break_for_test(&self) {
        self.conn()
            .execute_batch("PRAGMA query_only = ON")
            .expect("query_only");
    }

    // ---- runs

    pub fn start_run(&self, run: NewRun<'_>) -> Result<i64, ApplyError> {
        self.with("record the start of the run", |c| {
            c.execute(
                "INSERT INTO runs (kind, parent, plan_hash, snapshot_hash, config_digest, plan_json, started_at, outcome, holder)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
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
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    pub fn end_run(
        &self,
        run: i64,
        outcome: RunOutcome,
        puts_sent: u64,
        failed: u64,
        moves: u64,
    ) -> Result<(), ApplyError> {
        self.with("record the end of the run", |c| {
            c.execute(
                "UPDATE runs SET ended_at = ?2, outcome = ?3, puts_sent = ?4, failed = ?5, moves_made = ?6 WHERE id = ?1",
                params![run, now(), outcome.as_str(), puts_sent as i64, failed as i64, moves as i64],
            )
            .map(|_| ())
        })
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
        self.with("update the run's counts", |c| {
            c.execute(
                "UPDATE runs SET puts_sent = ?2, failed = ?3, moves_made = ?4 WHERE id = ?1",
                params![run, puts_sent as i64, failed as i64, moves as i64],
            )
            .map(|_| ())
        })
    }

    pub fn run(&self, id: i64) -> Result<Option<RunRecord>, ApplyError> {
        self.with("read a run", |c| {
            c.query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id],
                run_record,
            )
            .optional()
        })
    }

    /// The newest runs first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, ApplyError> {
        self.with("read the runs", |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit as i64], run_record)?;
            rows.collect()
        })
    }

    /// The plan a run applied.
    pub fn plan_of(&self, run: i64) -> Result<Plan, ApplyError> {
        let bytes: Vec<u8> = self.with("read the run's plan", |c| {
            c.query_row("SELECT plan_json FROM runs WHERE id = ?1", [run], |r| {
                r.get(0)
            })
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApplyError::journal(
                &self.path,
                format!("the plan of run {run} does not parse: {e}"),
            )
        })
    }

    /// The newest run that is interrupted or was killed and has not been
    /// resumed yet.
    pub fn latest_unfinished(&self) -> Result<Option<i64>, ApplyError> {
        self.with("look for an unfinished run", |c| {
            c.query_row(
                "SELECT id FROM runs r WHERE outcome IN ('running', 'interrupted')
                   AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.parent = r.id AND c.kind = 'resume')
                 ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// `run`'s family: the first run of its chain (walking up through
    /// resumes) and every resume below it, in id order.
    pub fn family(&self, run: i64) -> Result<Vec<i64>, ApplyError> {
        self.with("read the run's family", |c| {
            let mut root = run;
            loop {
                let (kind, parent): (String, Option<i64>) =
                    c.query_row("SELECT kind, parent FROM runs WHERE id = ?1", [root], |r| Ok((r.get(0)?, r.get(1)?)))?;
                match (kind.as_str(), parent) {
                    ("resume", Some(p)) => root = p,
                    _ => break,
                }
            }
            let mut stmt = c.prepare(
                "WITH RECURSIVE fam(id) AS (SELECT ?1 UNION SELECT r.id FROM runs r JOIN fam ON r.parent = fam.id WHERE r.kind = 'resume')
                 SELECT id FROM fam ORDER BY id",
            )?;
            let ids = stmt.query_map([root], |r| r.get(0))?;
            ids.collect()
        })
    }

    // ---- leads

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
        self.with("record a lead", |c| {
            c.execute(
                "INSERT INTO leads (run, campaign_id, lead_id, state, detail, before) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (run, campaign_id, lead_id) DO UPDATE SET state = excluded.state, detail = excluded.detail,
                   before = COALESCE(leads.before, excluded.before)",
                params![run, lead.campaign_id as i64, lead.lead_id as i64, state.as_str(), detail, before],
            )
            .map(|_| ())
        })
    }

    pub fn leads(&self, run: i64) -> Result<Vec<LeadRecord>, ApplyError> {
        let rows: Vec<(LeadKey, String, String)> = self.with("read the leads of a run", |c| {
            let mut stmt = c.prepare("SELECT campaign_id, lead_id, state, detail FROM leads WHERE run = ?1 ORDER BY campaign_id, lead_id")?;
            let rows = stmt.query_map([run], |r| Ok((lead_key(r, 0)?, r.get(2)?, r.get(3)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(lead, state, detail)| {
                let state = state
                    .parse()
                    .map_err(|e| ApplyError::journal(&self.path, e))?;
                Ok(LeadRecord {
                    lead,
                    state,
                    detail,
                })
            })
            .collect()
    }

    /// The latest state of each lead over `runs`, and the earliest `before`.
    pub fn lead_history(&self, runs: &[i64]) -> Result<LeadHistory, ApplyError> {
        let mut out = LeadHistory::new();
        for &run in runs {
            let rows: Vec<(LeadKey, String, Option<String>)> =
                self.with("read lead states", |c| {
                    let mut stmt = c.prepare(
                        "SELECT campaign_id, lead_id, state, before FROM leads WHERE run = ?1",
                    )?;
                    let rows =
                        stmt.query_map([run], |r| Ok((lead_key(r, 0)?, r.get(2)?, r.get(3)?)))?;
                    rows.collect()
                })?;
            for (lead, state, before) in rows {
                let state: LeadState = state
                    .parse()
                    .map_err(|e| ApplyError::journal(&self.path, e))?;
                let before: Option<BTreeSet<String>> = match before {
                    Some(b) => Some(
                        serde_json::from_str(&b).map_err(|e| ApplyError::journal(&self.path, e))?,
                    ),
                    None => None,
                };
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

    /// Inserts a PUT's row, state `pending`, and commits it: call before
    /// sending. Returns the row id.
    pub fn put_pending(
        &self,
        run: i64,
        lead: LeadKey,
        seq: u32,
        body: &str,
    ) -> Result<i64, ApplyError> {
        self.with("record a PUT before sending it", |c| {
            c.execute(
                "INSERT INTO puts (run, campaign_id, lead_id, seq, body, state, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
                params![run, lead.campaign_id as i64, lead.lead_id as i64, seq, body, now()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Records how a PUT ended.
    pub fn put_done(&self, id: i64, out: PutOutcome<'_>) -> Result<(), ApplyError> {
        let t = time::OffsetDateTime::now_utc();
        self.with("record a PUT's outcome", |c| {
            c.execute(
                "UPDATE puts SET state = ?2, applied = ?3, status = COALESCE(?4, status), echo = COALESCE(?5, echo),
                   message = COALESCE(?6, message), done_at = ?7, done_ms = ?8 WHERE id = ?1",
                params![id, out.state, out.applied, out.status, out.echo, out.message, format_time(t), unix_ms(t)],
            )
            .map(|_| ())
        })
    }

    /// The PUTs of any run that took effect (`applied` = 1: applied, or
    /// resolved as applied) and whose outcome was recorded at or after
    /// `since_ms` (Unix milliseconds): lead and body, oldest first.
    pub fn applied_since(&self, since_ms: i64) -> Result<Vec<(LeadKey, String)>, ApplyError> {
        self.with("read the PUTs applied recently", |c| {
            let mut stmt = c.prepare(
                "SELECT campaign_id, lead_id, body FROM puts WHERE applied = 1 AND done_ms >= ?1 ORDER BY done_ms, id",
            )?;
            let rows = stmt.query_map([since_ms], |r| Ok((lead_key(r, 0)?, r.get(2)?)))?;
            rows.collect()
        })
    }

    /// The PUTs of `runs`, in (run, id) order.
    pub fn puts(&self, runs: &[i64]) -> Result<Vec<PutRecord>, ApplyError> {
        let mut out = Vec::new();
        for &run in runs {
            let rows: Vec<PutRecord> = self.with("read the PUTs of a run", |c| {
                let mut stmt = c.prepare(
                    "SELECT id, campaign_id, lead_id, seq, body, state, applied, status, echo, message, sent_at, done_at
                     FROM puts WHERE run = ?1 ORDER BY id",
                )?;
                let rows = stmt.query_map([run], |r| {
                    Ok(PutRecord {
                        id: r.get(0)?,
                        lead: lead_key(r, 1)?,
                        seq: r.get(3)?,
                        body: r.get(4)?,
                        state: r.get(5)?,
                        applied: r.get(6)?,
                        status: r.get(7)?,
                        echo: r.get(8)?,
                        message: r.get(9)?,
                        sent_at: r.get(10)?,
                        done_at: r.get(11)?,
                    })
                })?;
                rows.collect()
            })?;
            out.extend(rows);
        }
        Ok(out)
    }
}

const RUN_COLUMNS: &str =
    "id, kind, parent, plan_hash, snapshot_hash, config_digest, started_at, ended_at, outcome, puts_sent, failed, moves_made, holder";

fn run_record(r: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let kind: String = r.get(1)?;
    let outcome: String = r.get(8)?;
    let bad = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    Ok(RunRecord {
        id: r.get(0)?,
        kind: kind.parse().map_err(|e| bad(1, e))?,
        parent: r.get(2)?,
        plan_hash: r.get(3)?,
        snapshot_hash: r.get(4)?,
        config_digest: r.get(5)?,
        started_at: r.get(6)?,
        ended_at: r.get(7)?,
        outcome: outcome.parse().map_err(|e| bad(8, e))?,
        puts_sent: r.get::<_, i64>(9)? as u64,
        failed: r.get::<_, i64>(10)? as u64,
        moves_made: r.get::<_, i64>(11)? as u64,
        holder: r.get(12)?,
    })
}

fn lead_key(r: &Row<'_>, at: usize) -> rusqlite::Result<LeadKey> {
    Ok(LeadKey {
        campaign_id: r.get::<_, i64>(at)? as u64,
        lead_id: r.get::<_, i64>(at + 1)? as u64,
    })
}

/// Now, RFC 3339 UTC.
impl Journal {
    /// Appends a cycle row; returns its id.
    pub fn record_cycle(&self, c: &CycleRecord, holder: &str) -> Result<i64, ApplyError> {
        self.with("record the cycle", |conn| {
            conn.execute(
                "INSERT INTO cycles (started_at, ended_at, mode, outcome, run, snapshot_hash, plan_hash,
                   assigns, unassigns, deferred, held_back, shortfall_before, shortfall_after,
                   peak_before, peak_after, detail, holder)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                params![
                    c.started_at,
                    c.ended_at,
                    c.mode,
                    c.outcome,
                    c.run,
                    c.snapshot_hash,
                    c.plan_hash,
                    c.assigns as i64,
                    c.unassigns as i64,
                    c.deferred as i64,
                    c.held_back as i64,
                    c.shortfall_before,
                    c.shortfall_after,
                    c.peak_before,
                    c.peak_after,
                    c.detail,
                    holder,
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })
    }

    /// The latest `limit` cycles, newest first.
    pub fn cycles(&self, limit: usize) -> Result<Vec<CycleRecord>, ApplyError> {
        self.with("read the cycles", |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, started_at, ended_at, mode, outcome, run, snapshot_hash, plan_hash,
                   assigns, unassigns, deferred, held_back, shortfall_before, shortfall_after,
                   peak_before, peak_after, detail
                 FROM cycles ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok(CycleRecord {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    ended_at: r.get(2)?,
                    mode: r.get(3)?,
                    outcome: r.get(4)?,
                    run: r.get(5)?,
                    snapshot_hash: r.get(6)?,
                    plan_hash: r.get(7)?,
                    assigns: r.get::<_, i64>(8)? as usize,
                    unassigns: r.get::<_, i64>(9)? as usize,
                    deferred: r.get::<_, i64>(10)? as usize,
                    held_back: r.get::<_, i64>(11)? as usize,
                    shortfall_before: r.get(12)?,
                    shortfall_after: r.get(13)?,
                    peak_before: r.get(14)?,
                    peak_after: r.get(15)?,
                    detail: r.get(16)?,
                })
            })?;
            rows.collect()
        })
    }
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
mod tests {
    use super::*;
    use crate::report::RunKind;
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
        let j = Journal::open(&dir.path().join("a.sqlite")).unwrap();
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
        let j = Journal::open(&dir.path().join("m.sqlite")).unwrap();
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
