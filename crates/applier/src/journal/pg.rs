//! The PostgreSQL backend of the journal (`journal.url`): the same tables,
//! rules and answers as the SQLite file, in a database that replicas on
//! several hosts share.
//!
//! The journal's API is synchronous (the SQLite one blocks its caller for
//! each commit); here each call runs on a scoped thread that drives this
//! journal's own single-threaded Tokio runtime, which owns the connection
//! (tokio-postgres, plain TCP: no TLS). So a call works the same from any
//! runtime flavour or from none, and returns only once the server
//! answered: `put_pending` returns after its insert is committed
//! (autocommit, `synchronous_commit = on` set for the session, so the
//! commit is on the server's disk), before the PUT is sent.
//!
//! Migrations are numbered ([`schema::PG_MIGRATIONS`]), the version kept in
//! `rebalancer_schema`; they run in one transaction under a
//! transaction-scoped advisory lock, so two processes opening a new journal
//! at once migrate it once. The lease is one row (created free by the first
//! acquirer, never deleted) locked with `SELECT … FOR UPDATE`: two
//! acquirers are serialised on it and the second sees the first's lease.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rebalancer_model::{LeadKey, Plan};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::{Client, NoTls, Row};

use super::lease::{host, now_ms, process_gone, render_ms};
use super::{format_time, now, schema, unix_ms, LeadHistory, Lease, NewRun, PutOutcome};
use crate::error::ApplyError;
use crate::report::{CycleRecord, LeadRecord, LeadState, PutRecord, RunOutcome, RunRecord};
use crate::JournalLocation;

type PgError = tokio_postgres::Error;

/// How long opening the connection may take when `journal.url` sets no
/// `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An arbitrary key of the advisory lock migrations take.
const MIGRATION_LOCK: i64 = 0x7265_6261_6c61_6e63; // "rebalanc"

/// An open PostgreSQL journal. Calls are serialised on one connection.
pub(super) struct Pg {
    location: JournalLocation,
    /// Drives the connection while a call waits; `None` only in `drop`.
    rt: Option<tokio::runtime::Runtime>,
    client: Mutex<Client>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("location", &self.location.to_string())
            .finish_non_exhaustive()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async caller may not do.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `fut` to completion on `rt`, on a scoped thread (outside any
/// runtime context of the caller), then gives the connection a turn.
fn block_on<T: Send>(rt: &tokio::runtime::Runtime, fut: impl Future<Output = T> + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            rt.block_on(async {
                let out = fut.await;
                // Let the connection task send what the call queued last
                // (the ROLLBACK of a dropped transaction): between calls
                // nothing drives it.
                tokio::task::yield_now().await;
                out
            })
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Runs the async `body` with `$c: &mut Client`, mapping its error to a
/// journal error "cannot {what}".
macro_rules! pg {
    ($self:ident, $what:expr, |$c:ident| $body:block) => {{
        let mut guard = $self.client();
        let $c: &mut Client = &mut guard;
        let out: Result<_, PgError> = $self.block(async move { $body });
        out.map_err(|e| $self.fail($what, e))
    }};
}

impl Pg {
    pub(super) fn open(url: &SecretString, location: &JournalLocation) -> Result<Pg, ApplyError> {
        let fail = |detail: String| ApplyError::journal(location, detail);
        let mut config: tokio_postgres::Config = url.expose_secret().parse().map_err(|e| {
            fail(format!(
                "journal.url is not a PostgreSQL URL (postgres://user:password@host:port/database): {}",
                scrub(e, url)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("rebalancer");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the PostgreSQL client's runtime: {e}")))?;
        let connected = block_on(&rt, async {
            let (mut client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| format!("cannot connect: {}", scrub(e, url)))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "the PostgreSQL journal's connection failed");
                }
            });
            client
                .batch_execute("SET synchronous_commit = on")
                .await
                .map_err(|e| format!("cannot set up the session: {e}"))?;
            migrate(&mut client).await?;
            Ok::<_, String>(client)
        });
        let client = match connected {
            Ok(client) => client,
            Err(detail) => {
                rt.shutdown_background();
                return Err(fail(detail));
            }
        };
        Ok(Pg {
            location: location.clone(),
            rt: Some(rt),
            client: Mutex::new(client),
        })
    }

    fn client(&self) -> MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn block<T: Send>(&self, fut: impl Future<Output = T> + Send) -> T {
        block_on(self.rt.as_ref().expect("the runtime lives until drop"), fut)
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> ApplyError {
        ApplyError::journal(&self.location, format!("cannot {what}: {e}"))
    }

    /// Makes every later write fail (tests of the write-failure path).
    #[cfg(test)]
    pub(super) fn break_for_test(&self) {
        pg!(self, "break the journal", |c| {
            c.batch_execute("SET default_transaction_read_only = on")
                .await
        })
        .expect("read-only");
    }

    // ---- runs

    pub(super) fn start_run(&self, run: NewRun<'_>) -> Result<i64, ApplyError> {
        let (kind, outcome, started) = (run.kind.as_str(), RunOutcome::Running.as_str(), now());
        pg!(self, "record the start of the run", |c| {
            let row = c
                .query_one(
                    "INSERT INTO runs (kind, parent, plan_hash, snapshot_hash, config_digest, plan_json, started_at, outcome, holder)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    &[
                        &kind,
                        &run.parent,
                        &run.plan_hash,
                        &run.snapshot_hash,
                        &run.config_digest,
                        &run.plan_json,
                        &started,
                        &outcome,
                        &run.holder,
                    ],
                )
                .await?;
            row.try_get::<_, i64>(0)
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
        let (ended, outcome) = (now(), outcome.as_str());
        let (sent, failed, moves) = (puts_sent as i64, failed as i64, moves as i64);
        pg!(self, "record the end of the run", |c| {
            c.execute(
                "UPDATE runs SET ended_at = $2, outcome = $3, puts_sent = $4, failed = $5, moves_made = $6 WHERE id = $1",
                &[&run, &ended, &outcome, &sent, &failed, &moves],
            )
            .await
            .map(|_| ())
        })
    }

    pub(super) fn count_run(
        &self,
        run: i64,
        puts_sent: u64,
        failed: u64,
        moves: u64,
    ) -> Result<(), ApplyError> {
        let (sent, failed, moves) = (puts_sent as i64, failed as i64, moves as i64);
        pg!(self, "update the run's counts", |c| {
            c.execute(
                "UPDATE runs SET puts_sent = $2, failed = $3, moves_made = $4 WHERE id = $1",
                &[&run, &sent, &failed, &moves],
            )
            .await
            .map(|_| ())
        })
    }

    pub(super) fn run(&self, id: i64) -> Result<Option<RunRecord>, ApplyError> {
        let row = pg!(self, "read a run", |c| {
            c.query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"),
                &[&id],
            )
            .await
        })?;
        row.map(|r| run_record(&r).map_err(|e| self.fail("read a run", e)))
            .transpose()
    }

    pub(super) fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, ApplyError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = pg!(self, "read the runs", |c| {
            c.query(
                &format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT $1"),
                &[&limit],
            )
            .await
        })?;
        rows.iter()
            .map(|r| run_record(r).map_err(|e| self.fail("read the runs", e)))
            .collect()
    }

    pub(super) fn plan_of(&self, run: i64) -> Result<Plan, ApplyError> {
        let bytes: Vec<u8> = pg!(self, "read the run's plan", |c| {
            c.query_one("SELECT plan_json FROM runs WHERE id = $1", &[&run])
                .await?
                .try_get(0)
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApplyError::journal(
                &self.location,
                format!("the plan of run {run} does not parse: {e}"),
            )
        })
    }

    pub(super) fn latest_unfinished(&self) -> Result<Option<i64>, ApplyError> {
        pg!(self, "look for an unfinished run", |c| {
            match c
                .query_opt(
                    "SELECT id FROM runs r WHERE outcome IN ('running', 'interrupted')
                       AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.parent = r.id AND c.kind = 'resume')
                     ORDER BY id DESC LIMIT 1",
                    &[],
                )
                .await?
            {
                Some(row) => row.try_get(0).map(Some),
                None => Ok(None),
            }
        })
    }

    pub(super) fn family(&self, run: i64) -> Result<Vec<i64>, ApplyError> {
        pg!(self, "read the run's family", |c| {
            let mut root = run;
            loop {
                let row = c
                    .query_one("SELECT kind, parent FROM runs WHERE id = $1", &[&root])
                    .await?;
                let kind: String = row.try_get(0)?;
                let parent: Option<i64> = row.try_get(1)?;
                match (kind.as_str(), parent) {
                    ("resume", Some(p)) => root = p,
                    _ => break,
                }
            }
            let rows = c
                .query(
                    "WITH RECURSIVE fam(id) AS (SELECT $1::BIGINT UNION SELECT r.id FROM runs r JOIN fam ON r.parent = fam.id WHERE r.kind = 'resume')
                     SELECT id FROM fam ORDER BY id",
                    &[&root],
                )
                .await?;
            rows.iter().map(|r| r.try_get(0)).collect()
        })
    }

    // ---- leads

    pub(super) fn set_lead(
        &self,
        run: i64,
        lead: LeadKey,
        state: LeadState,
        detail: &str,
        before: Option<&BTreeSet<String>>,
    ) -> Result<(), ApplyError> {
        let before = before.map(|b| serde_json::to_string(b).expect("a set of strings serialises"));
        let (campaign, lead_id, state) =
            (lead.campaign_id as i64, lead.lead_id as i64, state.as_str());
        pg!(self, "record a lead", |c| {
            c.execute(
                r#"INSERT INTO leads (run, campaign_id, lead_id, state, detail, "before") VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (run, campaign_id, lead_id) DO UPDATE SET state = excluded.state, detail = excluded.detail,
                     "before" = COALESCE(leads."before", excluded."before")"#,
                &[&run, &campaign, &lead_id, &state, &detail, &before],
            )
            .await
            .map(|_| ())
        })
    }

    pub(super) fn leads(&self, run: i64) -> Result<Vec<LeadRecord>, ApplyError> {
        let rows = pg!(self, "read the leads of a run", |c| {
            c.query(
                "SELECT campaign_id, lead_id, state, detail FROM leads WHERE run = $1 ORDER BY campaign_id, lead_id",
                &[&run],
            )
            .await
        })?;
        rows.iter()
            .map(|r| {
                let read = || -> Result<LeadRecord, String> {
                    let state: String = r.try_get(2).map_err(|e| e.to_string())?;
                    Ok(LeadRecord {
                        lead: lead_key(r, 0).map_err(|e| e.to_string())?,
                        state: state.parse()?,
                        detail: r.try_get(3).map_err(|e| e.to_string())?,
                    })
                };
                read().map_err(|e| self.fail("read the leads of a run", e))
            })
            .collect()
    }

    pub(super) fn lead_history(&self, runs: &[i64]) -> Result<LeadHistory, ApplyError> {
        let mut out = LeadHistory::new();
        for &run in runs {
            let rows = pg!(self, "read lead states", |c| {
                c.query(
                    r#"SELECT campaign_id, lead_id, state, "before" FROM leads WHERE run = $1"#,
                    &[&run],
                )
                .await
            })?;
            for r in &rows {
                let read = || -> Result<_, String> {
                    let state: String = r.try_get(2).map_err(|e| e.to_string())?;
                    let state: LeadState = state.parse()?;
                    let before: Option<String> = r.try_get(3).map_err(|e| e.to_string())?;
                    let before: Option<BTreeSet<String>> = match before {
                        Some(b) => Some(serde_json::from_str(&b).map_err(|e| e.to_string())?),
                        None => None,
                    };
                    Ok((lead_key(r, 0).map_err(|e| e.to_string())?, state, before))
                };
                let (lead, state, before) = read().map_err(|e| self.fail("read lead states", e))?;
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

    pub(super) fn put_pending(
        &self,
        run: i64,
        lead: LeadKey,
        seq: u32,
        body: &str,
    ) -> Result<i64, ApplyError> {
        let (campaign, lead_id, seq, sent) = (
            lead.campaign_id as i64,
            lead.lead_id as i64,
            seq as i64,
            now(),
        );
        // Autocommit: when this returns the row is committed (and, with
        // synchronous_commit on, flushed on the server).
        pg!(self, "record a PUT before sending it", |c| {
            c.query_one(
                "INSERT INTO puts (run, campaign_id, lead_id, seq, body, state, sent_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING id",
                &[&run, &campaign, &lead_id, &seq, &body, &sent],
            )
            .await?
            .try_get(0)
        })
    }

    pub(super) fn put_done(&self, id: i64, out: PutOutcome<'_>) -> Result<(), ApplyError> {
        let t = time::OffsetDateTime::now_utc();
        let (done_at, done_ms) = (format_time(t), unix_ms(t));
        let status = out.status.map(i32::from);
        pg!(self, "record a PUT's outcome", |c| {
            c.execute(
                "UPDATE puts SET state = $2, applied = $3, status = COALESCE($4, status), echo = COALESCE($5, echo),
                   message = COALESCE($6, message), done_at = $7, done_ms = $8 WHERE id = $1",
                &[&id, &out.state, &out.applied, &status, &out.echo, &out.message, &done_at, &done_ms],
            )
            .await
            .map(|_| ())
        })
    }

    pub(super) fn applied_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(LeadKey, String)>, ApplyError> {
        pg!(self, "read the PUTs applied recently", |c| {
            let rows = c
                .query(
                    "SELECT campaign_id, lead_id, body FROM puts WHERE applied AND done_ms >= $1 ORDER BY done_ms, id",
                    &[&since_ms],
                )
                .await?;
            rows.iter()
                .map(|r| Ok((lead_key(r, 0)?, r.try_get(2)?)))
                .collect()
        })
    }

    pub(super) fn puts(&self, runs: &[i64]) -> Result<Vec<PutRecord>, ApplyError> {
        let mut out = Vec::new();
        for &run in runs {
            let rows: Vec<PutRecord> = pg!(self, "read the PUTs of a run", |c| {
                let rows = c
                    .query(
                        "SELECT id, campaign_id, lead_id, seq, body, state, applied, status, echo, message, sent_at, done_at
                         FROM puts WHERE run = $1 ORDER BY id",
                        &[&run],
                    )
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(PutRecord {
                            id: r.try_get(0)?,
                            lead: lead_key(r, 1)?,
                            seq: r.try_get::<_, i64>(3)? as u32,
                            body: r.try_get(4)?,
                            state: r.try_get(5)?,
                            applied: r.try_get(6)?,
                            status: r.try_get::<_, Option<i32>>(7)?.map(|s| s as u16),
                            echo: r.try_get(8)?,
                            message: r.try_get(9)?,
                            sent_at: r.try_get(10)?,
                            done_at: r.try_get(11)?,
                        })
                    })
                    .collect::<Result<Vec<_>, PgError>>()
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    // ---- cycles

    pub(super) fn record_cycle(&self, cy: &CycleRecord, holder: &str) -> Result<i64, ApplyError> {
        let counts = [
            cy.assigns as i64,
            cy.unassigns as i64,
            cy.deferred as i64,
            cy.held_back as i64,
        ];
        pg!(self, "record the cycle", |c| {
            c.query_one(
                "INSERT INTO cycles (started_at, ended_at, mode, outcome, run, snapshot_hash, plan_hash,
                   assigns, unassigns, deferred, held_back, shortfall_before, shortfall_after,
                   peak_before, peak_after, detail, holder)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
                &[
                    &cy.started_at,
                    &cy.ended_at,
                    &cy.mode,
                    &cy.outcome,
                    &cy.run,
                    &cy.snapshot_hash,
                    &cy.plan_hash,
                    &counts[0],
                    &counts[1],
                    &counts[2],
                    &counts[3],
                    &cy.shortfall_before,
                    &cy.shortfall_after,
                    &cy.peak_before,
                    &cy.peak_after,
                    &cy.detail,
                    &holder,
                ],
            )
            .await?
            .try_get(0)
        })
    }

    pub(super) fn cycles(&self, limit: usize) -> Result<Vec<CycleRecord>, ApplyError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        pg!(self, "read the cycles", |c| {
            let rows = c
                .query(
                    "SELECT id, started_at, ended_at, mode, outcome, run, snapshot_hash, plan_hash,
                       assigns, unassigns, deferred, held_back, shortfall_before, shortfall_after,
                       peak_before, peak_after, detail
                     FROM cycles ORDER BY id DESC LIMIT $1",
                    &[&limit],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(CycleRecord {
                        id: r.try_get(0)?,
                        started_at: r.try_get(1)?,
                        ended_at: r.try_get(2)?,
                        mode: r.try_get(3)?,
                        outcome: r.try_get(4)?,
                        run: r.try_get(5)?,
                        snapshot_hash: r.try_get(6)?,
                        plan_hash: r.try_get(7)?,
                        assigns: r.try_get::<_, i64>(8)? as usize,
                        unassigns: r.try_get::<_, i64>(9)? as usize,
                        deferred: r.try_get::<_, i64>(10)? as usize,
                        held_back: r.try_get::<_, i64>(11)? as usize,
                        shortfall_before: r.try_get(12)?,
                        shortfall_after: r.try_get(13)?,
                        peak_before: r.try_get(14)?,
                        peak_after: r.try_get(15)?,
                        detail: r.try_get(16)?,
                    })
                })
                .collect()
        })
    }

    // ---- the lease

    /// As the SQLite lease: free, expired, or held by a process of this
    /// host that is gone, it is ours; else `LeaseHeld`.
    pub(super) fn acquire_lease(&self, ttl: Duration) -> Result<Lease, ApplyError> {
        let host = host();
        let pid = std::process::id();
        let holder = format!("{host}:{pid}");
        let token = Lease::new_token(&holder);
        let expires = now_ms() + ttl.as_millis() as i64;
        let (h, t) = (&holder, &token);
        let held = pg!(self, "take the lease", |c| {
            let tx = c.transaction().await?;
            // The row exists from the first acquirer on (free: token '');
            // locking it serialises acquirers.
            tx.execute(
                "INSERT INTO lease (id, holder, host, pid, expires_at, token, expires_ms) VALUES (1, '', '', 0, '', '', 0)
                 ON CONFLICT (id) DO NOTHING",
                &[],
            )
            .await?;
            let row = tx
                .query_one(
                    "SELECT holder, expires_ms, host, pid, token FROM lease WHERE id = 1 FOR UPDATE",
                    &[],
                )
                .await?;
            let (other, until, other_host, other_pid, other_token): (
                String,
                i64,
                String,
                i64,
                String,
            ) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
            );
            if !other_token.is_empty() {
                let gone = other_host == host
                    && u32::try_from(other_pid).is_ok_and(|p| p != pid && process_gone(p));
                if until > now_ms() && !gone {
                    tx.rollback().await?;
                    return Ok(Some((other, until)));
                }
                if gone {
                    tracing::warn!(holder = %other, "taking over the journal lease of a process that is gone");
                } else {
                    tracing::warn!(holder = %other, expired_at = %render_ms(until), "taking over an expired journal lease");
                }
            }
            tx.execute(
                "UPDATE lease SET holder = $1, host = $2, pid = $3, expires_at = $4, token = $5, expires_ms = $6 WHERE id = 1",
                &[h, &host, &(pid as i64), &render_ms(expires), t, &expires],
            )
            .await?;
            tx.commit().await?;
            Ok(None)
        })?;
        if let Some((holder, until)) = held {
            return Err(ApplyError::LeaseHeld {
                holder,
                expires_at: render_ms(until),
            });
        }
        Ok(Lease::new(holder, token, expires))
    }

    pub(super) fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<bool, ApplyError> {
        let expires = now_ms() + ttl.as_millis() as i64;
        let (token, at) = (lease.token(), render_ms(expires));
        let n = pg!(self, "renew the lease", |c| {
            c.execute(
                "UPDATE lease SET expires_ms = $2, expires_at = $3 WHERE id = 1 AND token = $1",
                &[&token, &expires, &at],
            )
            .await
        })?;
        if n == 1 {
            lease.set_expires(expires);
        }
        Ok(n == 1)
    }

    pub(super) fn release_lease(&self, lease: &Lease) -> Result<(), ApplyError> {
        let token = lease.token();
        pg!(self, "release the lease", |c| {
            c.execute(
                "UPDATE lease SET holder = '', host = '', pid = 0, expires_at = '', token = '', expires_ms = 0
                 WHERE id = 1 AND token = $1",
                &[&token],
            )
            .await
            .map(|_| ())
        })
    }
}

/// `e`'s text without the password of `url`, should it quote it.
fn scrub(e: impl std::fmt::Display, url: &SecretString) -> String {
    let text = e.to_string();
    let url = url.expose_secret();
    let text = text.replace(url, &super::mask_url(url));
    match url.parse::<tokio_postgres::Config>() {
        Ok(c) => match c.get_password() {
            Some(p) if !p.is_empty() => text.replace(String::from_utf8_lossy(p).as_ref(), "****"),
            _ => text,
        },
        Err(_) => text,
    }
}

/// Brings the database to [`schema::PG_VERSION`] in one transaction under
/// an advisory lock; refuses a newer database.
async fn migrate(c: &mut Client) -> Result<(), String> {
    let step = |what: &'static str| move |e: PgError| format!("cannot {what}: {e}");
    let tx = c.transaction().await.map_err(step("start the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(step("take the migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS rebalancer_schema (
             id      INTEGER PRIMARY KEY CHECK (id = 1),
             version INTEGER NOT NULL
         )",
    )
    .await
    .map_err(step("create the schema version table"))?;
    let found: i32 = tx
        .query_opt("SELECT version FROM rebalancer_schema WHERE id = 1", &[])
        .await
        .map_err(step("read the schema version"))?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(step("read the schema version"))?
        .unwrap_or(0);
    let newest = schema::PG_VERSION as i32;
    if found > newest {
        return Err(format!(
            "the journal is at schema version {found}, newer than this rebalancer knows ({newest}); use the newer rebalancer, or another database"
        ));
    }
    for (i, sql) in schema::PG_MIGRATIONS
        .iter()
        .enumerate()
        .skip(found as usize)
    {
        let to = i as i32 + 1;
        tx.batch_execute(sql)
            .await
            .map_err(|e| format!("migration to schema version {to} failed: {e}"))?;
    }
    if found < newest {
        tx.execute(
            "INSERT INTO rebalancer_schema (id, version) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            &[&newest],
        )
        .await
        .map_err(step("record the schema version"))?;
    }
    tx.commit().await.map_err(step("commit the migration"))
}

const RUN_COLUMNS: &str =
    "id, kind, parent, plan_hash, snapshot_hash, config_digest, started_at, ended_at, outcome, puts_sent, failed, moves_made, holder";

fn run_record(r: &Row) -> Result<RunRecord, String> {
    let s = |e: PgError| e.to_string();
    let kind: String = r.try_get(1).map_err(s)?;
    let outcome: String = r.try_get(8).map_err(s)?;
    Ok(RunRecord {
        id: r.try_get(0).map_err(s)?,
        kind: kind.parse()?,
        parent: r.try_get(2).map_err(s)?,
        plan_hash: r.try_get(3).map_err(s)?,
        snapshot_hash: r.try_get(4).map_err(s)?,
        config_digest: r.try_get(5).map_err(s)?,
        started_at: r.try_get(6).map_err(s)?,
        ended_at: r.try_get(7).map_err(s)?,
        outcome: outcome.parse()?,
        puts_sent: r.try_get::<_, i64>(9).map_err(s)? as u64,
        failed: r.try_get::<_, i64>(10).map_err(s)? as u64,
        moves_made: r.try_get::<_, i64>(11).map_err(s)? as u64,
        holder: r.try_get(12).map_err(s)?,
    })
}

fn lead_key(r: &Row, at: usize) -> Result<LeadKey, PgError> {
    Ok(LeadKey {
        campaign_id: r.try_get::<_, i64>(at)? as u64,
        lead_id: r.try_get::<_, i64>(at + 1)? as u64,
    })
}
