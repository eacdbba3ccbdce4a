//! The runs: [`apply`], [`resume`] and [`rollback`] as phases (take the
//! lease, work out each lead's goal, check the live blast radius, work
//! through the leads with bounded concurrency, verify, record the end), and
//! [`history`] / [`show`] over the journal.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rebalancer_model::{LeadKey, Plan};
use rebalancer_upstream::{CmsClient, ErrorClass, MappingUpdate};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admission::{admit, Expected, WritePath};
use crate::batch::PutBatch;
use crate::error::ApplyError;
use crate::executor::{put_took_effect, read_live, Counters, Ctx, LeadEnd};
use crate::goal::{decide, goals_from_plan, Decision, DriftRule, LeadGoal};
use crate::journal::{holder, JournalLocation};
use crate::journal::{Journal, Lease, NewRun, PutOutcome};
use crate::proposals::ProposalState;
use crate::recheck::Rechecker;
use crate::report::{
    CycleRecord, LeadState, PutState, RunDetail, RunKind, RunOutcome, RunRecord, RunReport,
};
use crate::resumable::latest_unfinished;
use crate::{ApplyConfig, Progress, Upstreams};

/// Applies `plan`, once [`admit`] lets it (`expected`: what the config
/// given to the command expects of it); see the crate documentation.
pub async fn apply(
    journal: &JournalLocation,
    plan: &Plan,
    up: &Upstreams,
    cfg: &ApplyConfig,
    expected: &Expected,
    stop: CancellationToken,
    progress: &Progress,
) -> Result<RunReport, ApplyError> {
    apply_claiming(journal, None, plan, up, cfg, expected, stop, progress).await
}

/// Applies approved proposal `proposal` (its `plan`) as [`apply`] does,
/// claiming it under the lease: once the lease is held the proposal must
/// still be approved (else `NotPending`, nothing sent), and it becomes
/// `applied`, with the run, when the run is recorded, before its first
/// PUT. Only a lease holder moves a proposal from approved to applied, so
/// of replicas that all saw it approved exactly one applies it; a run
/// interrupted after the claim is continued by `resume`, never by a second
/// apply of the proposal.
#[allow(clippy::too_many_arguments)]
pub async fn apply_proposal(
    journal: &JournalLocation,
    proposal: i64,
    plan: &Plan,
    up: &Upstreams,
    cfg: &ApplyConfig,
    expected: &Expected,
    stop: CancellationToken,
    progress: &Progress,
) -> Result<RunReport, ApplyError> {
    apply_claiming(
        journal,
        Some(proposal),
        plan,
        up,
        cfg,
        expected,
        stop,
        progress,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn apply_claiming(
    journal: &JournalLocation,
    proposal: Option<i64>,
    plan: &Plan,
    up: &Upstreams,
    cfg: &ApplyConfig,
    expected: &Expected,
    stop: CancellationToken,
    progress: &Progress,
) -> Result<RunReport, ApplyError> {
    cfg.validate()?;
    admit(plan, expected, WritePath::Apply, cfg.allow_mass_unassign)
        .map_err(|r| ApplyError::refused(WritePath::Apply, None, r))?;
    let goals = goals_from_plan(plan)?;
    let held = Held::take(Journal::open(journal)?, cfg)?;
    if let Some(id) = proposal {
        let state = held.journal.proposal(id)?.state;
        if state != ProposalState::Approved {
            return Err(ApplyError::NotPending { id, state });
        }
    }
    if let Some(unfinished) = held.journal.latest_unfinished()? {
        tracing::warn!(
            run = unfinished,
            "an earlier run was interrupted or killed and not resumed; its half-applied leads count as drifted, and once this run is recorded `resume` without a run id no longer picks it (name it: `resume RUN`; `rollback RUN` undoes what it applied)"
        );
    }
    blast_radius(plan, &goals, DriftRule::Exact, &up.cms, cfg).await?;
    let start = Start {
        kind: RunKind::Apply,
        parent: None,
        plan,
        rule: DriftRule::Exact,
        proposal,
    };
    execute(&held, start, goals, up, cfg, stop, progress).await
}

/// Continues an interrupted or killed run (when `run` is `None`, the
/// newest run of the journal if it is unfinished: [`latest_unfinished`])
/// by diffing each remaining lead's live mapping against the plan, once
/// [`admit`] lets the run's plan (read from the journal) through under
/// `expected` (the config given to `resume`). Safe to repeat.
pub async fn resume(
    journal: &JournalLocation,
    run: Option<i64>,
    up: &Upstreams,
    cfg: &ApplyConfig,
    expected: &Expected,
    stop: CancellationToken,
    progress: &Progress,
) -> Result<RunReport, ApplyError> {
    cfg.validate()?;
    let Some(j) = Journal::open_existing(journal)? else {
        return Err(run.map_or(
            ApplyError::NothingToResume {
                why: "the journal does not exist yet".into(),
                older: None,
            },
            ApplyError::NoSuchRun,
        ));
    };
    let id = match run {
        Some(id) => id,
        None => resumable(&j)?,
    };
    let record = j.run(id)?.ok_or(ApplyError::NoSuchRun(id))?;
    if !matches!(
        record.outcome,
        RunOutcome::Interrupted | RunOutcome::Running
    ) {
        return Err(ApplyError::NotResumable {
            run: id,
            outcome: record.outcome,
        });
    }
    let family = j.family(id)?;
    let root = j.run(family[0])?.ok_or(ApplyError::NoSuchRun(family[0]))?;
    let plan = j.plan_of(id)?;
    let path = match root.kind {
        RunKind::Rollback => WritePath::Rollback,
        _ => WritePath::Resume,
    };
    admit(&plan, expected, path, cfg.allow_mass_unassign)
        .map_err(|r| ApplyError::refused(path, Some(id), r))?;
    let held = Held::take(j, cfg)?;
    let j = &held.journal;
    let all = match (root.kind, root.parent) {
        (RunKind::Rollback, Some(undone)) => rollback_goals(j, undone, &plan)?,
        _ => goals_from_plan(&plan)?,
    };
    resolve_pending(j, &family, &plan, &up.cms).await?;
    let history = j.lead_history(&family)?;
    let goals: Vec<LeadGoal> = all
        .into_iter()
        .filter(|g| history.get(&g.lead).is_none_or(|(s, _)| !s.is_final()))
        .collect();
    blast_radius(&plan, &goals, DriftRule::OnPath, &up.cms, cfg).await?;
    let start = Start {
        kind: RunKind::Resume,
        parent: Some(id),
        plan: &plan,
        rule: DriftRule::OnPath,
        proposal: None,
    };
    execute(&held, start, goals, up, cfg, stop, progress).await
}

/// Undoes what `run` and its resumptions applied, as journaled, under the
/// same rules as an apply; what cannot be restored is in the report. The
/// run's plan must pass [`admit`] as a rollback (the same system, a
/// well-formed record) under `expected`.
pub async fn rollback(
    journal: &JournalLocation,
    run: i64,
    up: &Upstreams,
    cfg: &ApplyConfig,
    expected: &Expected,
    stop: CancellationToken,
    progress: &Progress,
) -> Result<RunReport, ApplyError> {
    cfg.validate()?;
    let j = Journal::open_existing(journal)?.ok_or(ApplyError::NoSuchRun(run))?;
    j.run(run)?.ok_or(ApplyError::NoSuchRun(run))?;
    let family = j.family(run)?;
    let root = family[0];
    let plan = j.plan_of(root)?;
    admit(
        &plan,
        expected,
        WritePath::Rollback,
        cfg.allow_mass_unassign,
    )
    .map_err(|r| ApplyError::refused(WritePath::Rollback, Some(run), r))?;
    let held = Held::take(j, cfg)?;
    let j = &held.journal;
    resolve_pending(j, &family, &plan, &up.cms).await?;
    let goals = rollback_goals(j, root, &plan)?;
    if goals.is_empty() {
        return Err(ApplyError::NotRollbackable {
            run,
            reason: "it applied no change (nothing to undo)".into(),
        });
    }
    blast_radius(&plan, &goals, DriftRule::Exact, &up.cms, cfg).await?;
    let start = Start {
        kind: RunKind::Rollback,
        parent: Some(root),
        plan: &plan,
        rule: DriftRule::Exact,
        proposal: None,
    };
    execute(&held, start, goals, up, cfg, stop, progress).await
}

/// How many of the newest runs `resume` reads to pick the one to continue
/// and to name the unfinished ones it passes over.
const RESUME_LOOKBACK: usize = 1000;

/// The run `resume` without a run id continues ([`latest_unfinished`] of
/// the journal's newest runs).
fn resumable(j: &Journal) -> Result<i64, ApplyError> {
    let runs = j.runs(RESUME_LOOKBACK)?;
    let run = latest_unfinished(&runs)?;
    tracing::info!(
        run = run.id,
        kind = %run.kind,
        outcome = %run.outcome,
        started_at = %run.started_at,
        "resuming the latest unfinished run"
    );
    Ok(run.id)
}

/// The run `resume` without a run id would continue, for a command that
/// says which before it starts; errors as `resume` would.
pub fn resumable_run(journal: &JournalLocation) -> Result<RunRecord, ApplyError> {
    let Some(j) = Journal::open_existing(journal)? else {
        return Err(ApplyError::NothingToResume {
            why: "the journal does not exist yet".into(),
            older: None,
        });
    };
    let runs = j.runs(RESUME_LOOKBACK)?;
    latest_unfinished(&runs).cloned()
}

/// The newest runs first; empty when the journal does not exist yet.
pub fn history(journal: &JournalLocation, limit: usize) -> Result<Vec<RunRecord>, ApplyError> {
    match Journal::open_read(journal)? {
        Some(j) => j.runs(limit),
        None => Ok(Vec::new()),
    }
}

/// Opens (creating and migrating if needed) the journal at `journal`: a
/// start-up check that it can be written, before any cycle.
pub fn prepare_journal(journal: &JournalLocation) -> Result<(), ApplyError> {
    Journal::open(journal).map(|_| ())
}

/// Records one cycle of `rebalancer run` (creating the journal if needed);
/// returns its id. `holder` is `host:pid` of the recording process.
pub fn record_cycle(journal: &JournalLocation, cycle: &CycleRecord) -> Result<i64, ApplyError> {
    Journal::open(journal)?.record_cycle(cycle, &holder())
}

/// The latest `limit` cycles, newest first (none when the journal does not
/// exist).
pub fn cycles(journal: &JournalLocation, limit: usize) -> Result<Vec<CycleRecord>, ApplyError> {
    match Journal::open_read(journal)? {
        Some(j) => j.cycles(limit),
        None => Ok(Vec::new()),
    }
}

/// One run with its leads and PUTs.
pub fn show(journal: &JournalLocation, run: i64) -> Result<RunDetail, ApplyError> {
    let j = Journal::open_read(journal)?.ok_or(ApplyError::NoSuchRun(run))?;
    let record = j.run(run)?.ok_or(ApplyError::NoSuchRun(run))?;
    let family = j.family(run)?;
    let mut reached = BTreeSet::new();
    for &id in family.iter().filter(|&&id| id <= run) {
        reached.extend(j.leads(id)?.into_iter().map(|l| l.lead));
    }
    let plan = j.plan_of(run)?;
    let changed: BTreeSet<LeadKey> = plan.changes.iter().map(|c| c.lead).collect();
    Ok(RunDetail {
        run: record,
        leads: j.leads(run)?,
        puts: j.puts(&[run])?,
        left: changed.difference(&reached).copied().collect(),
        resumed_by: family.into_iter().filter(|&id| id > run).collect(),
    })
}

/// The journal with its lease held and renewed; released on drop.
struct Held {
    journal: Arc<Journal>,
    lease: Arc<Lease>,
    renewer: CancellationToken,
}

impl Held {
    fn take(journal: Journal, cfg: &ApplyConfig) -> Result<Held, ApplyError> {
        let journal = Arc::new(journal);
        let lease = Arc::new(journal.acquire_lease(cfg.lease_ttl)?);
        let renewer = CancellationToken::new();
        let (j, l, done, ttl) = (
            journal.clone(),
            lease.clone(),
            renewer.clone(),
            cfg.lease_ttl,
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = done.cancelled() => break,
                    _ = tokio::time::sleep(ttl / 3) => {}
                }
                match j.renew_lease(&l) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(
                            "the journal lease was taken over; this run stops before its next PUT"
                        );
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not renew the journal lease; trying again")
                    }
                }
            }
        });
        Ok(Held {
            journal,
            lease,
            renewer,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewer.cancel();
        if let Err(e) = self.journal.release_lease(&self.lease) {
            tracing::warn!(error = %e, "could not release the journal lease; it expires by itself");
        }
    }
}

/// Runs `f` over `items`, at most `n` at a time; results in item order.
async fn bounded<T, R, F, Fut>(items: Vec<T>, n: usize, f: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let total = items.len();
    let queue = Arc::new(Mutex::new(
        items.into_iter().enumerate().collect::<VecDeque<_>>(),
    ));
    let f = Arc::new(f);
    let mut set = JoinSet::new();
    for _ in 0..n.clamp(1, total.max(1)) {
        let (queue, f) = (queue.clone(), f.clone());
        set.spawn(async move {
            let mut out = Vec::new();
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                let Some((i, item)) = next else { break };
                out.push((i, f(item).await));
            }
            out
        });
    }
    let mut all = Vec::with_capacity(total);
    while let Some(done) = set.join_next().await {
        all.extend(done.expect("a worker never panics"));
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// Re-reads every lead of the plan and refuses the run when the unassigns
/// it would really make exceed `max_unassign_share` of the live pairs.
async fn blast_radius(
    plan: &Plan,
    goals: &[LeadGoal],
    rule: DriftRule,
    cms: &CmsClient,
    cfg: &ApplyConfig,
) -> Result<(), ApplyError> {
    if cfg.allow_mass_unassign || goals.iter().all(|g| g.unassign.is_empty()) {
        return Ok(());
    }
    let leads: Vec<(LeadKey, u64, usize)> = plan
        .leads
        .iter()
        .map(|l| (l.lead, l.process_id, l.current.len()))
        .collect();
    let cms2 = cms.clone();
    let reads = bounded(leads.clone(), cfg.concurrency, move |(lead, process, _)| {
        let cms = cms2.clone();
        async move { read_live(&cms, lead, process).await }
    })
    .await;
    let mut live: BTreeMap<LeadKey, BTreeSet<String>> = BTreeMap::new();
    let mut current_pairs = 0;
    for ((lead, _, planned), read) in leads.into_iter().zip(reads) {
        match read {
            Ok(set) => {
                current_pairs += set.len();
                live.insert(lead, set);
            }
            Err(e) if e.class() == ErrorClass::Auth => return Err(e.into()),
            Err(e) => {
                tracing::warn!(%lead, error = %e, "cannot read the lead for the blast-radius check; counting its planned mapping");
                current_pairs += planned;
            }
        }
    }
    let unassigns: usize = goals
        .iter()
        .map(|g| {
            let Some(now) = live.get(&g.lead) else {
                return g.unassign.len();
            };
            match decide(g, now, rule, cfg.on_drift) {
                Decision::Proceed { unassign, .. } => unassign.len(),
                _ => 0,
            }
        })
        .sum();
    if unassigns as f64 > cfg.max_unassign_share * current_pairs as f64 {
        return Err(ApplyError::Blocked {
            unassigns,
            current_pairs,
            max_share: cfg.max_unassign_share,
        });
    }
    Ok(())
}

/// Resolves the PUTs of `runs` whose outcome is unknown (pending or
/// ambiguous) by reading their lead back.
async fn resolve_pending(
    j: &Journal,
    runs: &[i64],
    plan: &Plan,
    cms: &CmsClient,
) -> Result<(), ApplyError> {
    let process: BTreeMap<LeadKey, u64> =
        plan.leads.iter().map(|l| (l.lead, l.process_id)).collect();
    for put in j.puts(runs)? {
        if !put.state.is_unknown() {
            continue;
        }
        let batch = body_batch(&put.body).map_err(|e| ApplyError::journal(j.location(), e))?;
        let Some(&process_id) = process.get(&put.lead) else {
            return Err(ApplyError::journal(
                j.location(),
                format!(
                    "PUT {} names lead {}, which is not in the run's plan",
                    put.id, put.lead
                ),
            ));
        };
        let live = read_live(cms, put.lead, process_id).await?;
        let applied = put_took_effect(&batch, &live);
        tracing::info!(lead = %put.lead, put = put.id, applied, "resolved a PUT whose outcome was unknown");
        let message = if applied {
            "resolved by reading the lead back: applied"
        } else {
            "resolved by reading the lead back: not applied"
        };
        j.put_done(
            put.id,
            PutOutcome {
                state: PutState::Resolved,
                applied: Some(applied),
                status: None,
                echo: None,
                message: Some(message),
            },
        )?;
    }
    Ok(())
}

/// The assign and unassign lists of a journaled PUT body.
pub(crate) fn body_batch(body: &str) -> Result<PutBatch, String> {
    let b = MappingUpdate::from_body(body)?;
    Ok(PutBatch {
        assign: b.assigned_user_ids,
        unassign: b.unassigned_user_ids,
    })
}

/// The inverse of what the run `root` and its resumptions applied: per
/// lead, unassign who they added and assign who they removed. The drift
/// reference is the mapping they left; the target the one they found.
fn rollback_goals(j: &Journal, root: i64, plan: &Plan) -> Result<Vec<LeadGoal>, ApplyError> {
    let family = j.family(root)?;
    let history = j.lead_history(&family)?;
    let leads: BTreeMap<LeadKey, &rebalancer_model::LeadPlan> =
        plan.leads.iter().map(|l| (l.lead, l)).collect();
    let mut net: BTreeMap<LeadKey, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for put in j.puts(&family)? {
        if put.applied != Some(true) {
            continue;
        }
        let batch = body_batch(&put.body).map_err(|e| ApplyError::journal(j.location(), e))?;
        let (added, removed) = net.entry(put.lead).or_default();
        for a in batch.assign {
            if !removed.remove(&a) {
                added.insert(a);
            }
        }
        for u in batch.unassign {
            if !added.remove(&u) {
                removed.insert(u);
            }
        }
    }
    let mut goals = Vec::new();
    for (lead, (added, removed)) in net {
        if added.is_empty() && removed.is_empty() {
            continue;
        }
        let lp = leads.get(&lead).ok_or_else(|| {
            ApplyError::journal(
                j.location(),
                format!("lead {lead} was changed but is not in the run's plan"),
            )
        })?;
        let before: BTreeSet<String> = match history.get(&lead).and_then(|(_, b)| b.clone()) {
            Some(b) => b,
            None => lp.current.iter().map(|a| a.0.to_string()).collect(),
        };
        let mut left: BTreeSet<String> = before.union(&added).cloned().collect();
        left.retain(|a| !removed.contains(a));
        let mut target: BTreeSet<String> = left.difference(&added).cloned().collect();
        target.extend(removed.iter().cloned());
        goals.push(LeadGoal {
            lead,
            process_id: lp.process_id,
            current: left,
            target,
            assign: removed,
            unassign: added,
        });
    }
    Ok(goals)
}

/// What a run is.
struct Start<'a> {
    kind: RunKind,
    parent: Option<i64>,
    plan: &'a Plan,
    rule: DriftRule,
    /// The approved proposal this run applies (claimed at its start).
    proposal: Option<i64>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Records the run, works through the goals, verifies, records the end.
async fn execute(
    held: &Held,
    start: Start<'_>,
    goals: Vec<LeadGoal>,
    up: &Upstreams,
    cfg: &ApplyConfig,
    stop: CancellationToken,
    progress: &Progress,
) -> Result<RunReport, ApplyError> {
    let began = Instant::now();
    let run = record_start(held, &start, goals.len())?;
    progress.set_total(goals.len() as u64);
    let ctx = Arc::new(Ctx {
        cms: up.cms.clone(),
        journal: held.journal.clone(),
        lease: held.lease.clone(),
        recheck: Rechecker::new(
            up.webex.clone(),
            up.zoho.clone(),
            up.threshold_ids.clone(),
            cfg.recheck,
            start.plan,
        ),
        cfg: cfg.clone(),
        run,
        rule: start.rule,
        stop: stop.clone(),
        halt: CancellationToken::new(),
        progress: progress.clone(),
        counters: Counters::default(),
        lease_margin: (cfg.lease_ttl / 4).min(Duration::from_secs(1)),
    });
    let targets: BTreeMap<LeadKey, (u64, BTreeSet<String>)> = goals
        .iter()
        .map(|g| (g.lead, (g.process_id, g.target.clone())))
        .collect();
    let total = goals.len();
    let ends = match work_through(&ctx, goals).await {
        Ok(ends) => ends,
        Err(e) => {
            let (sent, failed, moves) = totals(&ctx.counters);
            tracing::error!(run, error = %e, "run failed");
            if let Err(je) = ctx
                .journal
                .end_run(run, RunOutcome::Failed, sent, failed, moves)
            {
                tracing::error!(error = %je, "could not record the run's failure");
            }
            return Err(e);
        }
    };
    let unfinished =
        ends.len() < total || ends.iter().any(|e| e.report.state == LeadState::Pending);
    let verify: Vec<(LeadKey, u64, BTreeSet<String>)> = ends
        .iter()
        .filter(|e| e.touched && matches!(e.report.state, LeadState::Done | LeadState::Rebased))
        .map(|e| {
            let (process, target) = targets[&e.report.lead].clone();
            (e.report.lead, process, target)
        })
        .collect();
    let verify_mismatches = verify_leads(&up.cms, verify, cfg.concurrency).await;
    let (sent, failed, moves) = totals(&ctx.counters);
    let outcome = if unfinished && stop.is_cancelled() {
        RunOutcome::Interrupted
    } else if failed > 0 {
        RunOutcome::CompletedWithFailures
    } else {
        RunOutcome::Completed
    };
    ctx.journal.end_run(run, outcome, sent, failed, moves)?;
    let mut leads: Vec<_> = ends.into_iter().map(|e| e.report).collect();
    leads.sort_by_key(|l| l.lead);
    let c = &ctx.counters;
    let report = RunReport {
        run,
        kind: start.kind,
        outcome,
        puts_sent: sent,
        puts_retried: c.puts_retried.load(Ordering::Relaxed),
        skipped_drift: leads
            .iter()
            .filter(|l| l.state == LeadState::Drifted)
            .count(),
        skipped_recheck: c.skipped_recheck.load(Ordering::Relaxed) as usize,
        failed: failed as usize,
        moves_made: moves as usize,
        elapsed: began.elapsed(),
        verify_mismatches,
        leads,
    };
    tracing::info!(run, outcome = %outcome, puts = sent, moves, failed, "run ended");
    Ok(report)
}

/// Records the start of the run (fenced by the lease); its id.
fn record_start(held: &Held, start: &Start<'_>, leads: usize) -> Result<i64, ApplyError> {
    let plan_json = start.plan.to_json();
    let plan_hash = sha256_hex(&plan_json);
    let run = held.journal.start_run(NewRun {
        kind: start.kind,
        parent: start.parent,
        snapshot_hash: &start.plan.snapshot_hash,
        config_digest: &start.plan.config_digest,
        plan_json: &plan_json,
        plan_hash: &plan_hash,
        holder: &held.lease.holder,
    })?;
    if let Some(id) = start.proposal {
        let claimed = held.journal.move_proposal(
            id,
            ProposalState::Approved,
            ProposalState::Applied,
            None,
            None,
            None,
            Some(run),
        )?;
        if !claimed {
            // Expired meanwhile (by a replica that found it no longer
            // admitted): this run sends nothing.
            held.journal.end_run(run, RunOutcome::Failed, 0, 0, 0)?;
            let state = held.journal.proposal(id)?.state;
            return Err(ApplyError::NotPending { id, state });
        }
    }
    tracing::info!(run, kind = %start.kind, leads, "run started");
    Ok(run)
}

/// PUTs sent, failed PUTs and moves made so far.
fn totals(c: &Counters) -> (u64, u64, u64) {
    (
        c.puts_sent.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
        c.moves.load(Ordering::Relaxed),
    )
}

/// Works through the goals with `apply.concurrency` workers, keeping the
/// run's counts in the journal after each lead; the first fatal error
/// (journal, credentials, lost lease) halts the others and is returned.
async fn work_through(ctx: &Arc<Ctx>, goals: Vec<LeadGoal>) -> Result<Vec<LeadEnd>, ApplyError> {
    let c2 = ctx.clone();
    let results = bounded(goals, ctx.cfg.concurrency, move |goal| {
        let ctx = c2.clone();
        async move {
            if ctx.halt.is_cancelled() {
                return Ok(None);
            }
            let end = ctx.run_lead(&goal).await;
            if end.is_err() {
                ctx.halt.cancel();
            } else {
                let (sent, failed, moves) = totals(&ctx.counters);
                if let Err(e) = ctx.journal.count_run(ctx.run, sent, failed, moves) {
                    ctx.halt.cancel();
                    return Err(e);
                }
            }
            end
        }
    })
    .await;
    let mut ends: Vec<LeadEnd> = Vec::new();
    let mut fatal = None;
    for r in results {
        match r {
            Ok(Some(end)) => ends.push(end),
            Ok(None) => {}
            Err(e) => fatal = fatal.or(Some(e)),
        }
    }
    fatal.map_or(Ok(ends), Err)
}

/// Reads the touched leads back; the ones that differ from their target.
async fn verify_leads(
    cms: &CmsClient,
    leads: Vec<(LeadKey, u64, BTreeSet<String>)>,
    n: usize,
) -> Vec<LeadKey> {
    let cms = cms.clone();
    let checked = bounded(leads, n, move |(lead, process, target)| {
        let cms = cms.clone();
        async move {
            match read_live(&cms, lead, process).await {
                Ok(live) if live == target => None,
                Ok(live) => {
                    tracing::warn!(%lead, ?live, ?target, "verify: the lead differs from the plan's target");
                    Some(lead)
                }
                Err(e) => {
                    tracing::warn!(%lead, error = %e, "verify: cannot read the lead back");
                    Some(lead)
                }
            }
        }
    })
    .await;
    checked.into_iter().flatten().collect()
}
