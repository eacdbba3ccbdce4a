//! One rebalancing cycle, and the schedule that repeats it: fetch → plan
//! (with the flap guard: what the journal says moved within
//! `run.min_move_interval` is held back) → the applier's admission check
//! (a BLOCKED plan is the cycle's outcome, nothing is applied) → apply
//! through the journal (or, in a dry run, only plan) → the cycle recorded
//! in the journal. Each stage's time and figures go to [`crate::series`].
//!
//! [`run`] repeats cycles at the schedule's starts; a cycle that overruns
//! is never overlapped (`schedule.rs` computes each start). A failed cycle
//! (an upstream, the planner, the journal or PostgreSQL) is recorded in
//! the journal, or only logged when the journal itself cannot record it,
//! and the loop goes on; the caller's [`Observer`] sees every cycle and
//! decides whether the loop stops (the binary stops on a configuration
//! error and maps outcomes to exit codes). The stop token (SIGINT/SIGTERM)
//! ends the apply after the PUT in flight, the run recorded as
//! interrupted, and then the loop.

use crate::approval::{Approval, Watch};
use crate::schedule::Schedule;
use crate::series;
use crate::session::Session;
use crate::OpsError;
use chrono::{DateTime, Utc};
use rebalancer_applier::proposals::{self, Proposal, ProposalState, Proposed};
use rebalancer_applier::{
    ApplyError, CycleMode, CycleOutcome, CycleRecord, Expected, Progress, Refusal, RunOutcome,
    RunReport, WritePath,
};
use rebalancer_model::{Plan, Snapshot};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How each cycle runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct CycleOptions {
    /// Plan and record, never write.
    pub dry_run: bool,
    /// The flap guard (`run.min_move_interval`); zero turns it off.
    pub guard: Duration,
    /// Which plans wait for a person (`run.approval`).
    pub approval: Approval,
    /// Between cycles, how often to look for an approved plan to apply at
    /// once (`run.approval_poll`); zero: only at the next cycle.
    pub approval_poll: Duration,
}

impl CycleOptions {
    /// Whether cycles may apply approved proposals (and so the loop looks
    /// for them between cycles).
    fn approves(&self) -> bool {
        !self.dry_run && self.approval != Approval::Never
    }
}

/// A cycle's record, and the error that failed it.
#[derive(Debug)]
pub struct Cycle {
    pub record: CycleRecord,
    pub error: Option<OpsError>,
}

/// What the loop's caller sees and decides.
pub trait Observer {
    /// An apply starts; `progress` counts its leads and PUTs until
    /// [`Observer::apply_ended`].
    fn apply_started(&mut self, _progress: &Progress) {}
    fn apply_ended(&mut self) {}
    /// The page a person reviews a proposed plan on (the binary renders
    /// the HTML report); empty by default.
    fn report(&mut self, _plan: &Plan, _snapshot: &Snapshot) -> String {
        String::new()
    }
    /// A cycle ended and was recorded (`recorded`: its journal id, or why
    /// the journal could not record it). Return whether to go on.
    fn cycle_ended(&mut self, ended: Ended) -> Flow;
}

/// A finished cycle, handed to the [`Observer`].
#[derive(Debug)]
pub struct Ended {
    pub cycle: Cycle,
    pub recorded: Result<i64, ApplyError>,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
}

/// Whether the loop goes on after a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Repeat cycles at `schedule`'s starts (one cycle at once when `None`)
/// until `stop` is cancelled, the observer says stop, or the schedule has
/// no next time. `immediately`: the first cycle of a cron schedule starts
/// at once. Only a journal that cannot be prepared fails the loop itself.
pub async fn run(
    session: &Session,
    schedule: Option<&Schedule>,
    immediately: bool,
    opts: CycleOptions,
    stop: &CancellationToken,
    observer: &mut impl Observer,
) -> Result<(), OpsError> {
    rebalancer_applier::prepare_journal(&session.journal)?;
    match schedule {
        Some(s) => {
            tracing::info!(schedule = %s, dry_run = opts.dry_run, "rebalancing on a schedule")
        }
        None => tracing::info!(dry_run = opts.dry_run, "one cycle"),
    }
    let mut start_at = match schedule {
        Some(s) => s.first_start(Utc::now(), immediately),
        None => Some(Utc::now()),
    };
    let mut watch = Watch::default();
    if opts.approves() {
        watch.look(&session.journal);
    }
    while let Some(at) = start_at {
        let mut early = false;
        if at > Utc::now() {
            tracing::info!(next = %at.to_rfc3339(), "next cycle");
            match wait_for(at, session, opts, stop, &mut watch).await {
                Wake::Stop => return Ok(()),
                Wake::Due => {}
                Wake::Approved => early = true,
            }
        }
        let started = Utc::now();
        let c = cycle(session, opts, stop, observer).await;
        let ended = Utc::now();
        if opts.approves() {
            watch.look(&session.journal);
        }
        series::cycle_ended(c.record.outcome, ended);
        // A journal that cannot record the cycle (PostgreSQL restarting,
        // a full disk) fails this cycle only: logged, and the loop goes on;
        // the next cycle opens the journal afresh.
        let recorded = rebalancer_applier::record_cycle(&session.journal, &c.record);
        if let Err(e) = &recorded {
            series::count(series::JOURNAL_FAILURES, 1);
            tracing::error!(
                error = %e,
                outcome = %c.record.outcome,
                "the journal could not record this cycle (shown with id 0); the loop goes on"
            );
        }
        let flow = observer.cycle_ended(Ended {
            cycle: c,
            recorded,
            started,
            ended,
        });
        if flow == Flow::Stop || stop.is_cancelled() {
            return Ok(());
        }
        let Some(s) = schedule else {
            // One cycle, no schedule: done.
            return Ok(());
        };
        // A cycle started early for an approved plan keeps the schedule's
        // start it came before.
        start_at = if early && at > ended {
            Some(at)
        } else {
            s.next_start(started, ended)
        };
        if start_at.is_none() {
            tracing::warn!("the schedule has no next time; stopping");
        }
    }
    Ok(())
}

/// Why a wait between cycles ended.
enum Wake {
    /// The schedule's start came.
    Due,
    /// A person approved a plan: a cycle applies it now.
    Approved,
    /// SIGINT/SIGTERM.
    Stop,
}

/// Wait until `at`, looking every `run.approval_poll` (when cycles apply
/// approved plans) for one approved meanwhile. A journal that cannot be
/// read is logged once per wait; the schedule's start still comes.
async fn wait_for(
    at: DateTime<Utc>,
    session: &Session,
    opts: CycleOptions,
    stop: &CancellationToken,
    watch: &mut Watch,
) -> Wake {
    let polls = opts.approves() && !opts.approval_poll.is_zero();
    let mut warned = false;
    loop {
        let Ok(mut wait) = (at - Utc::now()).to_std() else {
            return Wake::Due;
        };
        if polls {
            wait = wait.min(opts.approval_poll);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return Wake::Stop,
        }
        if !polls || Utc::now() >= at {
            continue;
        }
        watch.look(&session.journal);
        match proposals::list(&session.journal, Some(ProposalState::Approved), 1) {
            Ok(approved) if !approved.is_empty() => {
                tracing::info!(
                    proposal = approved[0].id,
                    by = approved[0].decided_by.as_deref().unwrap_or(""),
                    "a plan was approved; a cycle applies it now"
                );
                return Wake::Approved;
            }
            Ok(_) => {}
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "the journal could not be read for approved plans; looking again every run.approval_poll");
            }
            Err(_) => {}
        }
    }
}

/// One cycle on `session`; never fails: a failure is the record's outcome
/// and the cycle's error.
pub async fn cycle(
    session: &Session,
    opts: CycleOptions,
    stop: &CancellationToken,
    observer: &mut impl Observer,
) -> Cycle {
    let mut record = CycleRecord {
        started_at: now_rfc3339(),
        mode: if opts.dry_run {
            CycleMode::DryRun
        } else {
            CycleMode::Apply
        },
        ..CycleRecord::default()
    };
    let error = match steps(session, opts, stop, observer, &mut record).await {
        Ok(()) => None,
        Err(e) => {
            let text = chain_text(&e);
            tracing::error!(error = %text, "the cycle failed");
            record.outcome = CycleOutcome::Failed;
            record.detail = text;
            Some(e)
        }
    };
    record.ended_at = now_rfc3339();
    Cycle { record, error }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An error and its causes on one line, each cause once (libraries often
/// repeat their source's text).
pub fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

/// Fetch, plan, the admission gate, then (unless a dry run) apply;
/// `record` says how it ended.
async fn steps(
    session: &Session,
    opts: CycleOptions,
    stop: &CancellationToken,
    observer: &mut impl Observer,
    record: &mut CycleRecord,
) -> Result<(), OpsError> {
    if !opts.dry_run && opts.approval != Approval::Never {
        if let Some((proposal, plan)) = proposals::approved(&session.journal)? {
            if let Some(applied) =
                apply_approved(session, proposal, plan, stop, observer, record).await
            {
                return applied;
            }
        }
    }
    let snapshot = fetch_step(session).await?;
    let (plan, snapshot) = plan_step(session, opts.guard, snapshot).await?;
    describe_plan(&plan, record);
    series::planned(
        plan.objectives.after.shortfall,
        plan.objectives.after.peak_utilisation,
    );
    if plan.changes.is_empty() {
        record.outcome = CycleOutcome::NoChanges;
        record.detail = nothing_now(record, opts.guard);
        return Ok(());
    }
    // The gate is the applier's admission check (the one `apply --plan`,
    // `resume` and `rollback` pass); a BLOCKED plan is this cycle's outcome,
    // any other refusal fails the cycle.
    let expected = session.expected();
    let allow = session.config.allow_mass_unassign;
    match rebalancer_applier::admit(&plan, &expected, WritePath::Apply, allow) {
        Ok(()) => {}
        Err(Refusal::Blocked { reason }) => {
            tracing::error!(%reason, "the plan is BLOCKED; nothing is applied this cycle");
            record.outcome = CycleOutcome::Blocked;
            record.detail = reason;
            return Ok(());
        }
        Err(r) => return Err(ApplyError::refused(WritePath::Apply, None, r).into()),
    }
    if opts.dry_run {
        record.outcome = CycleOutcome::Planned;
        record.detail = format!(
            "dry run: {} assigns and {} unassigns planned, nothing written",
            plan.summary.assigns, plan.summary.unassigns
        );
        return Ok(());
    }
    if opts.approval.needs(&plan) {
        let report = observer.report(&plan, &snapshot);
        let proposed = proposals::propose(
            &session.journal,
            &plan,
            &report,
            &rebalancer_applier::process_name(),
        )?;
        record_proposed(&proposed, record);
        return Ok(());
    }
    apply_step(session, &plan, None, &expected, stop, observer, record).await
}

/// A plan that waits for a person: what became of it, in the record.
fn record_proposed(proposed: &Proposed, record: &mut CycleRecord) {
    (record.outcome, record.detail) = match *proposed {
        Proposed::New { id, superseded } => (
            CycleOutcome::AwaitingApproval,
            match superseded {
                Some(old) => format!("proposal {id} waits for a person's approval (it supersedes proposal {old}); nothing written"),
                None => format!("proposal {id} waits for a person's approval; nothing written"),
            },
        ),
        Proposed::Kept { id } => (
            CycleOutcome::AwaitingApproval,
            format!("proposal {id} (the same changes) still waits for approval; nothing written"),
        ),
        Proposed::AwaitingApply { id } => (
            CycleOutcome::AwaitingApproval,
            format!("approved proposal {id} waits for the replica holding the lease to apply it; nothing written"),
        ),
        Proposed::Rejected { id } => (
            CycleOutcome::Rejected,
            format!("these changes were rejected (proposal {id}); nothing is written until the plan changes"),
        ),
    };
}

/// Apply the approved `proposal` through the same admission as `apply
/// --plan`; a plan no longer admitted (grown too old, made under other
/// rules) expires instead, and `None` lets the cycle plan afresh.
async fn apply_approved(
    session: &Session,
    proposal: Proposal,
    plan: Plan,
    stop: &CancellationToken,
    observer: &mut impl Observer,
    record: &mut CycleRecord,
) -> Option<Result<(), OpsError>> {
    let expected = session.expected();
    let allow = session.config.allow_mass_unassign;
    if let Err(refusal) = rebalancer_applier::admit(&plan, &expected, WritePath::Apply, allow) {
        let why = format!("not admitted when it came to be applied: {refusal}");
        tracing::warn!(proposal = proposal.id, %why, "the approved plan expired");
        return match proposals::expire(&session.journal, proposal.id, ProposalState::Approved, &why)
        {
            Ok(_) => None,
            Err(e) => Some(Err(e.into())),
        };
    }
    describe_plan(&plan, record);
    let applied = apply_step(
        session,
        &plan,
        Some(proposal.id),
        &expected,
        stop,
        observer,
        record,
    )
    .await;
    // The applier marked the proposal applied when it recorded the run.
    if let (Ok(()), Some(_)) = (&applied, record.run) {
        record.detail = format!(
            "approved proposal {} (by {}): {}",
            proposal.id,
            proposal.decided_by.as_deref().unwrap_or("?"),
            record.detail
        );
    }
    Some(applied)
}

/// Why a plan with no changes sends nothing: nothing to change, or moves
/// held back (by the flap guard, until their agents and leads have been
/// still for `guard`; by the caps, until a later cycle).
fn nothing_now(record: &CycleRecord, guard: Duration) -> String {
    let capped = record.deferred.saturating_sub(record.held_back);
    let mut held = Vec::new();
    if record.held_back > 0 {
        held.push(format!(
            "{} moves held back by the flap guard: their agents or leads moved less than {} ago (run.min_move_interval); a cycle after that makes them",
            record.held_back,
            humantime::format_duration(guard)
        ));
    }
    if capped > 0 {
        held.push(format!(
            "{capped} moves deferred by the plan's caps (plan.max_moves_per_run, plan.max_moves_per_agent)"
        ));
    }
    if held.is_empty() {
        "nothing to change".into()
    } else {
        format!("nothing sent this cycle; {}", held.join("; "))
    }
}

/// Fetch this cycle's snapshot, with the fetch's series.
async fn fetch_step(session: &Session) -> Result<Snapshot, OpsError> {
    let stage = Instant::now();
    let (snapshot, fetched) = session.connected.connection.fetch().await?;
    series::stage_took("fetch", stage.elapsed());
    series::fetched(fetched.cms_gets_per_lead());
    series::count(series::MALFORMED, fetched.malformed_retried);
    Ok(snapshot)
}

/// Plan `snapshot` under the flap guard (the journal's moves of the last
/// `guard`), on a blocking thread.
async fn plan_step(
    session: &Session,
    guard: Duration,
    snapshot: Snapshot,
) -> Result<(Plan, Snapshot), OpsError> {
    let stage = Instant::now();
    let recent = if guard.is_zero() {
        Default::default()
    } else {
        let now = time::OffsetDateTime::now_utc();
        let since = now.checked_sub(guard.try_into().unwrap_or(time::Duration::MAX));
        let since = since.unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        recent_for_plan(rebalancer_applier::recent_moves(&session.journal, since)?)
    };
    let cfg = session.connected.plan.clone();
    let planned = tokio::task::spawn_blocking(move || {
        rebalancer_optimizer::plan_guarded(&snapshot, &cfg, &Default::default(), &recent)
            .map(|(p, _)| (p, snapshot))
    })
    .await
    .map_err(|e| OpsError::PlannerStopped(e.to_string()))??;
    series::stage_took("plan", stage.elapsed());
    Ok(planned)
}

/// Apply an admitted `plan` (approved `proposal`'s, when given), with the
/// apply's series; `record` gets the run and its outcome (a journal held
/// by another apply, or a proposal another replica applied, skips the
/// cycle).
async fn apply_step(
    session: &Session,
    plan: &Plan,
    proposal: Option<i64>,
    expected: &Expected,
    stop: &CancellationToken,
    observer: &mut impl Observer,
    record: &mut CycleRecord,
) -> Result<(), OpsError> {
    let progress = Progress::default();
    observer.apply_started(&progress);
    let stage = Instant::now();
    let stats = &session.connected.connection.clients.stats;
    let malformed_before = stats.malformed_retries();
    let applied = match proposal {
        None => {
            rebalancer_applier::apply(
                &session.journal,
                plan,
                &session.upstreams,
                &session.config,
                expected,
                stop.child_token(),
                &progress,
            )
            .await
        }
        Some(id) => {
            rebalancer_applier::apply_proposal(
                &session.journal,
                id,
                plan,
                &session.upstreams,
                &session.config,
                expected,
                stop.child_token(),
                &progress,
            )
            .await
        }
    };
    observer.apply_ended();
    series::stage_took("apply", stage.elapsed());
    series::count(
        series::MALFORMED,
        stats.malformed_retries() - malformed_before,
    );
    match applied {
        Ok(report) => {
            record_applied(&report, record);
            Ok(())
        }
        Err(ApplyError::LeaseHeld { holder, .. }) => {
            record.outcome = CycleOutcome::Skipped;
            record.detail =
                format!("another apply holds the journal ({holder}); this cycle writes nothing");
            Ok(())
        }
        Err(ApplyError::NotPending { id, state }) => {
            record.outcome = CycleOutcome::Skipped;
            record.detail = format!(
                "proposal {id} is {state} (another replica took it); this cycle writes nothing"
            );
            Ok(())
        }
        Err(e) => {
            if let ApplyError::LeaseLost { .. } = e {
                series::count(series::LEASE_LOST, 1);
            }
            Err(e.into())
        }
    }
}

/// An apply's run and outcome in the cycle's record (its PUTs and moves
/// were counted as they ended, by the applier).
fn record_applied(report: &RunReport, record: &mut CycleRecord) {
    series::count(series::DRIFTED, report.skipped_drift as u64);
    record.run = Some(report.run);
    record.outcome = match report.outcome {
        RunOutcome::Completed => CycleOutcome::Applied,
        RunOutcome::Interrupted => CycleOutcome::Interrupted,
        _ => CycleOutcome::AppliedWithFailures,
    };
    record.detail = format!(
        "run {}: {} PUTs, {} moves, {} failed, {} leads skipped for drift",
        report.run, report.puts_sent, report.moves_made, report.failed, report.skipped_drift
    );
}

/// The journal's recent moves in the optimizer's terms.
fn recent_for_plan(r: rebalancer_applier::RecentMoves) -> rebalancer_optimizer::Recent {
    rebalancer_optimizer::Recent {
        agents: r.agents.into_iter().map(|a| a.as_str().into()).collect(),
        leads: r.leads,
    }
}

fn describe_plan(plan: &Plan, record: &mut CycleRecord) {
    let o = &plan.objectives;
    // The planner hashed the snapshot already (on its second core).
    record.snapshot_hash = Some(plan.snapshot_hash.clone());
    record.plan_hash = Some(plan_hash(plan));
    record.assigns = plan.summary.assigns;
    record.unassigns = plan.summary.unassigns;
    record.deferred = plan.summary.deferred;
    record.held_back = plan.flap_guard.as_ref().map_or(0, |f| f.deferred);
    record.shortfall_before = Some(o.before.shortfall);
    record.shortfall_after = Some(o.after.shortfall);
    record.peak_before = Some(o.before.peak_utilisation);
    record.peak_after = Some(o.after.peak_utilisation);
}

/// SHA-256 of the plan's JSON, as cycles record it.
pub fn plan_hash(plan: &Plan) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(plan.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_with_held_back_moves_never_says_nothing_to_change() {
        let mut r = CycleRecord::default();
        assert_eq!(
            nothing_now(&r, Duration::from_secs(3600)),
            "nothing to change"
        );
        r.deferred = 70;
        r.held_back = 69;
        let text = nothing_now(&r, Duration::from_secs(3600));
        assert!(!text.contains("nothing to change"), "{text}");
        assert!(
            text.contains("69 moves held back by the flap guard"),
            "{text}"
        );
        assert!(text.contains("less than 1h ago"), "{text}");
        assert!(
            text.contains("1 moves deferred by the plan's caps"),
            "{text}"
        );
    }
}
