//! The SQLite backend of the journal: one file (WAL, `synchronous=FULL`)
//! on this host; its lease (`lease.rs`) serves the processes of one host.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rebalancer_model::{LeadKey, Plan};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use super::{format_time, now, schema, unix_ms, LeadHistory, NewRun, PutOutcome};
use crate::error::ApplyError;
use crate::report::{CycleRecord, LeadRecord, LeadState, PutRecord, RunOutcome, RunRecord};
use crate::JournalLocation;

/// How long a journal call waits for another process's lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An open SQLite journal. Calls are serialised on one connection.
#[derive(Debug)]
pub(super) struct Sqlite {
    location: JournalLocation,
    conn: Mutex<Connection>,
}

impl Sqlite {
    /// Opens (creating if missing) and migrates the journal.
    pub(super) fn open(path: &Path) -> Result<Sqlite, ApplyError> {
        let conn = Connection::open(path)
            .map_err(|e| ApplyError::journal(&JournalLocation::Sqlite(path.to_path_buf()), e))?;
        Sqlite::setup(path, conn)
    }

    /// Opens an existing journal; `None` when the file does not exist.
    pub(super) fn open_existing(path: &Path) -> Result<Option<Sqlite>, ApplyError> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| ApplyError::journal(&JournalLocation::Sqlite(path.to_path_buf()), e))?;
        Sqlite::setup(path, conn).map(Some)
    }

    fn setup(path: &Path, mut conn: Connection) -> Result<Sqlite, ApplyError> {
        let pragmas =
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";
        let fail = |e: rusqlite::Error| {
            ApplyError::journal(
                &JournalLocation::Sqlite(path.to_path_buf()),
                format!("cannot set up the journal: {e}"),
            )
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
        schema::migrate(&mut conn)
            .map_err(|e| ApplyError::journal(&JournalLocation::Sqlite(path.to_path_buf()), e))?;
        Ok(Sqlite {
            location: JournalLocation::Sqlite(path.to_path_buf()),
            conn: Mutex::new(conn),
        })
    }

    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the connection, mapping SQLite errors to `Journal`.
    pub(super) fn with<R>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R, ApplyError> {
        let mut conn = self.conn();
        f(&mut conn).map_err(|e| ApplyError::journal(&self.location, format!("cannot {what}: {e}")))
    }

    /// Makes every later write fail (tests of the write-failure path).
    #[cfg(test)]
    pub(super) fn break_for_test(&self) {
        self.conn()
            .execute_batch("PRAGMA query_only = ON")
            .expect("query_only");
    }

    // ---- runs

    pub(super) fn start_run(&self, run: NewRun<'_>) -> Result<i64, ApplyError> {
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

    pub(super) fn end_run(
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
    pub(super) fn count_run(
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

    pub(super) fn run(&self, id: i64) -> Result<Option<RunRecord>, ApplyError> {
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
    pub(super) fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, ApplyError> {
        self.with("read the runs", |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit as i64], run_record)?;
            rows.collect()
        })
    }

    /// The plan a run applied.
    pub(super) fn plan_of(&self, run: i64) -> Result<Plan, ApplyError> {
        let bytes: Vec<u8> = self.with("read the run's plan", |c| {
            c.query_row("SELECT plan_json FROM runs WHERE id = ?1", [run], |r| {
                r.get(0)
            })
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApplyError::journal(
                &self.location,
                format!("the plan of run {run} does not parse: {e}"),
            )
        })
    }

    /// The newest run that is interrupted or was killed and has not been
    /// resumed yet.
    pub(super) fn latest_unfinished(&self) -> Result<Option<i64>, ApplyError> {
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
    pub(super) fn family(&self, run: i64) -> Result<Vec<i64>, ApplyError> {
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
    pub(super) fn set_lead(
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

    pub(super) fn leads(&self, run: i64) -> Result<Vec<LeadRecord>, ApplyError> {
        let rows: Vec<(LeadKey, String, String)> = self.with("read the leads of a run", |c| {
            let mut stmt = c.prepare("SELECT campaign_id, lead_id, state, detail FROM leads WHERE run = ?1 ORDER BY campaign_id, lead_id")?;
            let rows = stmt.query_map([run], |r| Ok((lead_key(r, 0)?, r.get(2)?, r.get(3)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(lead, state, detail)| {
                let state = state
                    .parse()
                    .map_err(|e| ApplyError::journal(&self.location, e))?;
                Ok(LeadRecord {
                    lead,
                    state,
                    detail,
                })
            })
            .collect()
    }

    /// The latest state of each lead over `runs`, and the earliest `before`.
    pub(super) fn lead_history(&self, runs: &[i64]) -> Result<LeadHistory, ApplyError> {
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
                    .map_err(|e| ApplyError::journal(&self.location, e))?;
                let before: Option<BTreeSet<String>> = match before {
                    Some(b) => Some(
                        serde_json::from_str(&b)
                            .map_err(|e| ApplyError::journal(&self.location, e))?,
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
    pub(super) fn put_pending(
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
    pub(super) fn put_done(&self, id: i64, out: PutOutcome<'_>) -> Result<(), ApplyError> {
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
    pub(super) fn applied_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(LeadKey, String)>, ApplyError> {
        self.with("read the PUTs applied recently", |c| {
            let mut stmt = c.prepare(
                "SELECT campaign_id, lead_id, body FROM puts WHERE applied = 1 AND done_ms >= ?1 ORDER BY done_ms, id",
            )?;
            let rows = stmt.query_map([since_ms], |r| Ok((lead_key(r, 0)?, r.get(2)?)))?;
            rows.collect()
        })
    }

    /// The PUTs of `runs`, in (run, id) order.
    pub(super) fn puts(&self, runs: &[i64]) -> Result<Vec<PutRecord>, ApplyError> {
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

impl Sqlite {
    /// Appends a cycle row; returns its id.
    pub(super) fn record_cycle(&self, c: &CycleRecord, holder: &str) -> Result<i64, ApplyError> {
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
    pub(super) fn cycles(&self, limit: usize) -> Result<Vec<CycleRecord>, ApplyError> {
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
