//! One lead, from its live mapping to its last PUT: the drift decision, the
//! re-checks, the PUT sequence, each PUT journaled before and after it is
//! sent, and the read-back after an ambiguous failure.
//!
//! A stop request is honoured between PUTs, never during one: a PUT
//! waiting for the write budget when it comes is not sent (the fence asks
//! first; its journal row says `unsent`), the one in flight finishes. Errors
//! returned are fatal to the whole run (journal, credentials, lost lease);
//! everything else about a lead ends in its [`LeadReport`].

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rebalancer_model::LeadKey;
use rebalancer_upstream::{CmsClient, ErrorClass, LeadUsers, MappingUpdate, UpstreamError};
use tokio_util::sync::CancellationToken;

use crate::batch::{after, batches, keep_staffed, remaining, PutBatch};
use crate::error::ApplyError;
use crate::goal::{decide, Decision, DriftRule, LeadGoal};
use crate::journal::{Journal, Lease, PutOutcome};
use crate::recheck::{Rechecker, Verdict};
use crate::report::{LeadReport, LeadState, PutState};
use crate::series;
use crate::{ApplyConfig, Progress};

/// The journal's word for a PUT a stop kept from going out.
const UNSENT: PutOutcome<'static> = PutOutcome {
    state: PutState::Unsent,
    applied: Some(false),
    status: None,
    echo: None,
    message: Some("not sent: the apply was stopped while this PUT waited for the write budget"),
};

/// Rounds of "read back, send what is still missing" per lead, whatever the
/// progress: a hard bound.
pub const MAX_ROUNDS: u32 = 64;

/// Counters of a run, shared by its workers.
#[derive(Debug, Default)]
pub struct Counters {
    pub puts_sent: AtomicU64,
    pub puts_retried: AtomicU64,
    pub moves: AtomicU64,
    pub skipped_recheck: AtomicU64,
    pub failed: AtomicU64,
}

/// What every lead of a run shares.
pub struct Ctx {
    pub cms: CmsClient,
    pub journal: Arc<Journal>,
    pub lease: Arc<Lease>,
    pub recheck: Rechecker,
    pub cfg: ApplyConfig,
    pub run: i64,
    pub rule: DriftRule,
    /// The caller's stop request.
    pub stop: CancellationToken,
    /// Set when another lead hit a fatal error.
    pub halt: CancellationToken,
    pub progress: Progress,
    pub counters: Counters,
    /// A PUT is not started with less than this left on the lease.
    pub lease_margin: Duration,
}

/// How a lead ended, and whether a PUT was sent for it.
pub struct LeadEnd {
    pub report: LeadReport,
    pub touched: bool,
}

/// Reads a lead's assigned set.
pub async fn read_live(
    cms: &CmsClient,
    lead: LeadKey,
    process_id: u64,
) -> Result<BTreeSet<String>, UpstreamError> {
    let users = cms
        .lead_users(process_id, lead.campaign_id, lead.lead_id)
        .await?;
    Ok(users.assigned_user_ids.into_iter().collect())
}

/// The HTTP status an error carries, for the journal.
pub fn status_of(e: &UpstreamError) -> Option<u16> {
    match e {
        UpstreamError::Unauthorized { .. } => Some(401),
        UpstreamError::Forbidden { .. } => Some(403),
        UpstreamError::NotFound { .. } => Some(404),
        UpstreamError::BadRequest { .. } => Some(400),
        UpstreamError::Throttled { .. } | UpstreamError::RetryAfterTooLong { .. } => Some(429),
        UpstreamError::Server { status, .. }
        | UpstreamError::Redirected { status, .. }
        | UpstreamError::UnexpectedStatus { status, .. } => Some(*status),
        UpstreamError::Malformed { .. } | UpstreamError::BodyTooLarge { .. } => Some(200),
        _ => None,
    }
}

fn is_fatal(e: &UpstreamError) -> bool {
    e.class() == ErrorClass::Auth
}

fn list(ids: &BTreeSet<String>) -> String {
    ids.iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Ctx {
    fn stopping(&self) -> bool {
        self.stop.is_cancelled() || self.halt.is_cancelled()
    }

    fn end(
        &self,
        goal: &LeadGoal,
        state: LeadState,
        detail: String,
        touched: bool,
    ) -> Result<LeadEnd, ApplyError> {
        self.journal
            .set_lead(self.run, goal.lead, state, &detail, None)?;
        match state {
            LeadState::Drifted | LeadState::Failed | LeadState::Skipped => {
                tracing::warn!(lead = %goal.lead, state = %state, %detail, "lead not applied as planned")
            }
            _ => tracing::debug!(lead = %goal.lead, state = %state, %detail, "lead handled"),
        }
        if state == LeadState::Failed {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        if state != LeadState::Pending {
            self.progress.lead_done();
        }
        Ok(LeadEnd {
            report: LeadReport {
                lead: goal.lead,
                state,
                detail,
            },
            touched,
        })
    }

    /// Applies one lead. `Ok(None)` when a stop came before it started.
    pub async fn run_lead(&self, goal: &LeadGoal) -> Result<Option<LeadEnd>, ApplyError> {
        if self.stopping() {
            return Ok(None);
        }
        let live = match read_live(&self.cms, goal.lead, goal.process_id).await {
            Ok(live) => live,
            Err(e) if is_fatal(&e) => return Err(e.into()),
            Err(e) => {
                return self
                    .end(
                        goal,
                        LeadState::Failed,
                        format!("cannot read the lead: {e}"),
                        false,
                    )
                    .map(Some)
            }
        };
        let (rebased, assign, unassign) = match decide(goal, &live, self.rule, self.cfg.on_drift) {
            Decision::Unchanged => {
                return self
                    .end(
                        goal,
                        LeadState::Unchanged,
                        "already as planned".into(),
                        false,
                    )
                    .map(Some)
            }
            Decision::Drifted(detail) => {
                return self.end(goal, LeadState::Drifted, detail, false).map(Some)
            }
            Decision::Proceed {
                rebased,
                assign,
                unassign,
            } => (rebased, assign, unassign),
        };
        let (assign, unassign, notes) = self.recheck(goal, &live, assign, unassign).await?;
        if assign.is_empty() && unassign.is_empty() {
            return self
                .end(goal, LeadState::Skipped, notes.join("; "), false)
                .map(Some);
        }
        self.journal.set_lead(
            self.run,
            goal.lead,
            LeadState::Pending,
            "in progress",
            Some(&live),
        )?;
        self.send_all(goal, live, &assign, &unassign, rebased, notes)
            .await
            .map(Some)
    }

    /// Drops the assigns the re-checks refuse and, if that would leave a
    /// staffed lead empty, holds back one unassign. Returns what to send and
    /// a note per change held back.
    async fn recheck(
        &self,
        goal: &LeadGoal,
        live: &BTreeSet<String>,
        assign: BTreeSet<String>,
        unassign: BTreeSet<String>,
    ) -> Result<(BTreeSet<String>, BTreeSet<String>, Vec<String>), ApplyError> {
        let mut notes = Vec::new();
        let mut kept_assigns = BTreeSet::new();
        for agent in assign {
            match self.recheck.check(&agent).await? {
                Verdict::Eligible => {
                    kept_assigns.insert(agent);
                }
                Verdict::Ineligible(why) => {
                    tracing::warn!(lead = %goal.lead, %agent, %why, "assign skipped by the re-check");
                    self.counters
                        .skipped_recheck
                        .fetch_add(1, Ordering::Relaxed);
                    notes.push(format!("not assigning {agent}: {why}"));
                }
            }
        }
        let ends_empty = live
            .iter()
            .chain(&kept_assigns)
            .all(|a| unassign.contains(a));
        let mut eligible = BTreeSet::new();
        if ends_empty && !live.is_empty() && !goal.target.is_empty() {
            for agent in &unassign {
                if self.recheck.check(agent).await? == Verdict::Eligible {
                    eligible.insert(agent.clone());
                    break;
                }
            }
        }
        let (unassign, kept) = keep_staffed(
            live,
            &kept_assigns,
            &unassign,
            goal.target.is_empty(),
            |a| eligible.contains(a),
        );
        if let Some(agent) = kept {
            self.counters
                .skipped_recheck
                .fetch_add(1, Ordering::Relaxed);
            notes.push(format!(
                "keeping {agent} so that the lead is not left without agents (its planned replacements were skipped)"
            ));
        }
        Ok((kept_assigns, unassign, notes))
    }

    /// Sends the lead's PUTs, reading back after ambiguous failures.
    async fn send_all(
        &self,
        goal: &LeadGoal,
        mut live: BTreeSet<String>,
        assign: &BTreeSet<String>,
        unassign: &BTreeSet<String>,
        rebased: bool,
        mut notes: Vec<String>,
    ) -> Result<LeadEnd, ApplyError> {
        let mut seq = 0u32;
        let mut sent = 0u32;
        let mut stalled = 0u32;
        let mut backoff = self.cfg.retry.backoff();
        for round in 0..MAX_ROUNDS {
            let (todo_a, todo_u) = remaining(assign, unassign, &live);
            let left = todo_a.len() + todo_u.len();
            let puts = batches(&todo_a, &todo_u, self.cfg.max_users_per_put);
            if puts.is_empty() {
                break;
            }
            let mut ambiguous = false;
            for put in &puts {
                if self.stopping() {
                    return self.interrupted(goal, sent);
                }
                seq += 1;
                match self.send(goal, seq, put, round > 0).await? {
                    Sent::Stopped => return self.interrupted(goal, sent),
                    Sent::Applied => {
                        sent += 1;
                        live = after(&live, put);
                    }
                    Sent::Refused(message) => {
                        notes.push(message);
                        return self.end(goal, LeadState::Failed, notes.join("; "), true);
                    }
                    Sent::Ambiguous(read_back) => {
                        sent += 1;
                        match read_back {
                            Some(now) => live = now,
                            None => {
                                notes.push("a PUT's outcome is unknown and the lead could not be read back; `resume` resolves it".into());
                                return self.end(goal, LeadState::Failed, notes.join("; "), true);
                            }
                        }
                        ambiguous = true;
                        break;
                    }
                }
            }
            if !ambiguous {
                break;
            }
            // Ambiguous failures in a row whose read-back shows no progress
            // give the lead up as failed after `retry.retries` (`resume`
            // may finish it later); a failure that turns out applied is
            // progress. Each round waits a backoff with jitter first.
            let (todo_a, todo_u) = remaining(assign, unassign, &live);
            let delay = backoff.next().unwrap_or(self.cfg.retry.backoff_max);
            if todo_a.len() + todo_u.len() < left {
                stalled = 0;
                backoff = self.cfg.retry.backoff();
            } else {
                stalled += 1;
                if stalled > self.cfg.retry.retries {
                    break;
                }
            }
            tracing::debug!(lead = %goal.lead, ms = delay.as_millis() as u64, "backing off after an ambiguous write");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stop.cancelled() => {}
                _ = self.halt.cancelled() => {}
            }
        }
        let (todo_a, todo_u) = remaining(assign, unassign, &live);
        if !todo_a.is_empty() || !todo_u.is_empty() {
            notes.push(format!(
                "still not applied after {stalled} ambiguous failures in a row ({sent} PUTs): assign [{}], unassign [{}]; `resume` or a new apply may finish it",
                list(&todo_a),
                list(&todo_u)
            ));
            return self.end(goal, LeadState::Failed, notes.join("; "), true);
        }
        self.done(goal, sent, (assign, unassign), rebased, notes)
    }

    /// Every change of the lead was made, in `sent` PUTs.
    fn done(
        &self,
        goal: &LeadGoal,
        sent: u32,
        (assign, unassign): (&BTreeSet<String>, &BTreeSet<String>),
        rebased: bool,
        notes: Vec<String>,
    ) -> Result<LeadEnd, ApplyError> {
        let mut detail = format!(
            "{sent} PUT(s): assigned [{}], unassigned [{}]",
            list(assign),
            list(unassign)
        );
        if rebased {
            detail.insert_str(0, "rebased on the drifted live mapping; ");
        }
        for n in notes {
            detail.push_str("; ");
            detail.push_str(&n);
        }
        let state = if rebased {
            LeadState::Rebased
        } else {
            LeadState::Done
        };
        self.end(goal, state, detail, true)
    }

    /// A stop came between the lead's PUTs: it stays pending for `resume`.
    fn interrupted(&self, goal: &LeadGoal, sent: u32) -> Result<LeadEnd, ApplyError> {
        let detail = format!("interrupted after {sent} PUT(s); `resume` finishes it");
        self.end(goal, LeadState::Pending, detail, sent > 0)
    }

    /// One PUT: journaled (pending) before, sent, journaled after.
    async fn send(
        &self,
        goal: &LeadGoal,
        seq: u32,
        put: &PutBatch,
        retry: bool,
    ) -> Result<Sent, ApplyError> {
        let update = MappingUpdate {
            lead_id: goal.lead.lead_id,
            campaign_id: goal.lead.campaign_id,
            assigned_user_ids: put.assign.clone(),
            unassigned_user_ids: put.unassign.clone(),
        };
        debug_assert!(!put.is_empty(), "never an empty PUT");
        let body = update.to_body();
        let row = self.journal.put_pending(self.run, goal.lead, seq, &body)?;
        // Right before the PUT goes out (after the write budget's wait):
        // a stop asked for while it waited keeps it from going out; the
        // lease is confirmed and extended by the journal's clock, and
        // still surely ours by this process's clock. A stale holder stops
        // here; its pending row is resolved by whoever holds the journal.
        let lost: std::sync::Mutex<Option<ApplyError>> = std::sync::Mutex::new(None);
        let stopped = std::sync::atomic::AtomicBool::new(false);
        let fence = || -> Result<(), String> {
            if self.stopping() {
                stopped.store(true, Ordering::Relaxed);
                return Err("stopped before it was sent".into());
            }
            let refused = match self.journal.fence(&self.lease) {
                Ok(()) if self.lease.valid_for(self.lease_margin) => return Ok(()),
                Ok(()) => ApplyError::LeaseExpiring,
                Err(e) => e,
            };
            let message = refused.to_string();
            *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(refused);
            Err(message)
        };
        let sent = self.cms.put_mapping_fenced(&update, Some(&fence)).await;
        if let Err(UpstreamError::Fenced { .. }) = &sent {
            if stopped.load(Ordering::Relaxed) {
                // Never sent: the row says so, and `resume` sends it.
                self.journal.put_done(row, UNSENT)?;
                return Ok(Sent::Stopped);
            }
            let refused = lost.lock().unwrap_or_else(|p| p.into_inner()).take();
            return Err(refused.unwrap_or(ApplyError::LeaseExpiring));
        }
        self.answered(goal, seq, row, put, retry, sent).await
    }

    /// A PUT that went out (a fenced one did not: its row stays pending):
    /// counted, and its answer journaled (applied, refused) or read back
    /// (ambiguous).
    async fn answered(
        &self,
        goal: &LeadGoal,
        seq: u32,
        row: i64,
        put: &PutBatch,
        retry: bool,
        sent: Result<LeadUsers, UpstreamError>,
    ) -> Result<Sent, ApplyError> {
        self.progress.put_sent();
        series::put_sent();
        self.counters.puts_sent.fetch_add(1, Ordering::Relaxed);
        if retry {
            self.counters.puts_retried.fetch_add(1, Ordering::Relaxed);
        }
        let message = match sent {
            Ok(echo)
                if echo.lead_id != goal.lead.lead_id
                    || echo.campaign_id != goal.lead.campaign_id =>
            {
                format!(
                    "the CMS echoed lead {}/{} for a PUT of lead {}",
                    echo.campaign_id, echo.lead_id, goal.lead
                )
            }
            Ok(echo) => {
                self.journal.put_done(
                    row,
                    PutOutcome {
                        state: PutState::Applied,
                        applied: Some(true),
                        status: Some(200),
                        echo: Some(&echo.to_echo_json()),
                        message: None,
                    },
                )?;
                self.counters
                    .moves
                    .fetch_add(put.len() as u64, Ordering::Relaxed);
                series::moves(put.len());
                return Ok(Sent::Applied);
            }
            Err(e) if e.is_ambiguous_write() => e.to_string(),
            Err(e) => {
                self.progress.put_failed();
                series::put_failed();
                let message = e.to_string();
                self.journal.put_done(
                    row,
                    PutOutcome {
                        state: PutState::Failed,
                        applied: Some(false),
                        status: status_of(&e),
                        echo: None,
                        message: Some(&message),
                    },
                )?;
                if is_fatal(&e) {
                    return Err(e.into());
                }
                return Ok(Sent::Refused(format!("PUT {seq} refused: {message}")));
            }
        };
        self.ambiguous(goal, row, put, &message).await
    }

    /// Resolves an ambiguous PUT by reading the lead back.
    async fn ambiguous(
        &self,
        goal: &LeadGoal,
        row: i64,
        put: &PutBatch,
        message: &str,
    ) -> Result<Sent, ApplyError> {
        tracing::warn!(lead = %goal.lead, %message, "PUT outcome unknown; reading the lead back");
        self.progress.put_failed();
        series::put_failed();
        self.journal.put_done(
            row,
            PutOutcome {
                state: PutState::Ambiguous,
                applied: None,
                status: None,
                echo: None,
                message: Some(message),
            },
        )?;
        let live = match read_live(&self.cms, goal.lead, goal.process_id).await {
            Ok(live) => live,
            Err(e) if is_fatal(&e) => return Err(e.into()),
            Err(_) => return Ok(Sent::Ambiguous(None)),
        };
        let applied = put_took_effect(put, &live);
        let note = if applied {
            "read back: applied"
        } else {
            "read back: not applied"
        };
        self.journal.put_done(
            row,
            PutOutcome {
                state: PutState::Resolved,
                applied: Some(applied),
                status: None,
                echo: None,
                message: Some(&format!("{message}; {note}")),
            },
        )?;
        if applied {
            self.counters
                .moves
                .fetch_add(put.len() as u64, Ordering::Relaxed);
            series::moves(put.len());
        }
        Ok(Sent::Ambiguous(Some(live)))
    }
}

/// Whether the live mapping shows a PUT's effect.
pub fn put_took_effect(put: &PutBatch, live: &BTreeSet<String>) -> bool {
    put.assign.iter().all(|a| live.contains(a)) && put.unassign.iter().all(|u| !live.contains(u))
}

enum Sent {
    /// A stop came while it waited for the write budget: not sent.
    Stopped,
    Applied,
    /// Refused by the CMS (the message says why); the lead stops.
    Refused(String),
    /// Unknown outcome; the lead as read back (None: could not be read).
    Ambiguous(Option<BTreeSet<String>>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::NewRun;
    use crate::report::RunKind;
    use rebalancer_sandbox::{Sandbox, SandboxConfig};
    use rebalancer_upstream::{
        BaseUrl, CmsConfig, HttpSettings, Stats, WebexClient, WebexConfig, ZohoClient, ZohoConfig,
    };

    /// A journal that cannot be written stops the lead before its PUT: the
    /// CMS sees nothing the journal could not record.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_journal_write_failure_stops_before_the_put() {
        let sb = Sandbox::start(
            SandboxConfig {
                agents: 60,
                leads: 6,
                ..SandboxConfig::default()
            },
            0,
        )
        .await
        .unwrap();
        let world = sb.world();
        let creds = sb.credentials();
        let base = BaseUrl::parse(&sb.base_url()).unwrap();
        let cms = rebalancer_upstream::CmsClient::new(
            CmsConfig {
                base_url: base.clone(),
                username: creds.cms_username.clone(),
                password: creds.cms_password.clone().into(),
                contact_center_id: world.contact_center_id,
                page_size: 500,
                short_page_ends: true,
                http: HttpSettings::default(),
            },
            Stats::default(),
        )
        .unwrap();
        let webex = WebexClient::new(
            WebexConfig {
                base_url: base.clone(),
                api_key: creds.webex_api_key.clone().into(),
                http: HttpSettings::default(),
            },
            Stats::default(),
        )
        .unwrap();
        let zoho = ZohoClient::new(
            ZohoConfig {
                accounts_url: base.clone(),
                api_domain: base,
                client_id: creds.zoho_client_id.clone(),
                client_secret: creds.zoho_client_secret.clone().into(),
                refresh_token: creds.zoho_refresh_token.clone().into(),
                api_version: "v8".into(),
                module: world.module.clone(),
                per_page: 200,
                http: HttpSettings::default(),
            },
            Stats::default(),
        )
        .unwrap();
        // A lead with an agent to unassign (no re-check needed for that).
        let c = &world.campaigns[0];
        let (lead, current) = c
            .lead_ids
            .iter()
            .map(|&l| {
                (
                    LeadKey {
                        campaign_id: c.campaign_id,
                        lead_id: l,
                    },
                    sb.mapping(c.campaign_id, l).unwrap().0,
                )
            })
            .find(|(_, a)| a.len() >= 2)
            .expect("a lead with two agents");
        let goal = LeadGoal {
            lead,
            process_id: c.process_id,
            current: current.iter().cloned().collect(),
            target: current[1..].iter().cloned().collect(),
            assign: BTreeSet::new(),
            unassign: [current[0].clone()].into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(dir.path().join("j.sqlite")).unwrap());
        let lease = Arc::new(journal.acquire_lease(Duration::from_secs(30)).unwrap());
        let run = journal
            .start_run(NewRun {
                kind: RunKind::Apply,
                parent: None,
                snapshot_hash: "s",
                config_digest: "c",
                plan_json: b"{}",
                plan_hash: "p",
                holder: "h:1",
            })
            .unwrap();
        journal.break_for_test();
        let ctx = Ctx {
            cms,
            journal,
            lease,
            recheck: Rechecker::empty(webex, zoho, Duration::from_secs(60)),
            cfg: ApplyConfig::default(),
            run,
            rule: DriftRule::Exact,
            stop: CancellationToken::new(),
            halt: CancellationToken::new(),
            progress: Progress::default(),
            counters: Counters::default(),
            lease_margin: Duration::from_secs(1),
        };
        let e = ctx
            .run_lead(&goal)
            .await
            .err()
            .expect("the journal failure stops the lead");
        assert!(matches!(e, ApplyError::Journal { .. }), "{e}");
        assert_eq!(sb.counts().cms_put, 0, "no PUT it could not record");
    }
}
