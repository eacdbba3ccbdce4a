//! `rebalancer run`: rebalance on a schedule. Each cycle fetches, plans
//! (with the flap guard: what the journal says moved within
//! `run.min_move_interval` is held back), checks the gates (the applier's
//! admission check; a blocked plan is not applied), applies through the
//! journal (or, with `--dry-run`, only plans) and records the cycle in the
//! journal. A cycle that overruns is never overlapped (`schedule.rs` computes each start); the first cycle
//! of a cron schedule waits for the first cron time unless `--now` or
//! `run.start_immediately`. `--once` runs one cycle at once, for an
//! external scheduler (systemd timer, Kubernetes CronJob), and exits with
//! its code.
//!
//! A failed cycle (an upstream, the planner, the journal or PostgreSQL) is
//! recorded in the journal, or only logged when the journal itself cannot
//! record it, and the loop goes on to the next start. Only SIGINT/SIGTERM
//! (after the PUT in flight, the run recorded as interrupted) or a cycle
//! refused by the configuration (exit 3) ends it.
//!
//! With `run.metrics_addr` set, Prometheus metrics and the `/healthz` and
//! `/readyz` probes are served while the loop runs (`telemetry.rs`); under
//! `--once` only with `run.metrics_on_once`. A port in use ends `run` at
//! start-up with exit 8.
//!
//! Several replicas may share one journal (a SQLite file on one host, or a
//! PostgreSQL database, `journal.url`, across hosts): the journal's lease
//! lets one apply at a time; a cycle that finds it held is recorded as
//! skipped. The journal is opened at start-up: an unwritable file or an
//! unreachable URL ends `run` before any cycle (exit 8).

use crate::applying::{self, Session};
use crate::exit;
use crate::input::Source;
use crate::logging::Log;
use crate::render::{self, Format};
use crate::schedule::{Schedule, ScheduleError};
use crate::settings::{Env, RunKeys};
use crate::telemetry;
use anyhow::Context;
use chrono::Utc;
use rebalancer_applier::{
    ApplyError, CycleMode, CycleOutcome, CycleRecord, Progress, Refusal, RunOutcome, WritePath,
};
use rebalancer_model::Plan;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What `run` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub source: Source,
    /// `--every`, over `run.every`.
    pub every: Option<String>,
    /// `--cron`, over `run.cron`.
    pub cron: Option<String>,
    /// One cycle, then exit with its code.
    pub once: bool,
    /// Run the first cycle of a cron schedule at start-up (`--now`).
    pub now: bool,
    /// Plan and record, never write.
    pub dry_run: bool,
    pub journal: Option<PathBuf>,
    pub format: Format,
    /// `--metrics-addr`, over `run.metrics_addr`.
    pub metrics_addr: Option<String>,
}

/// The schedule from the flags, else `[run]`; `None` with `--once`.
fn schedule(opts: &Options, keys: &RunKeys) -> Result<Option<Schedule>, ScheduleError> {
    let given = |s: &str| !s.trim().is_empty();
    let parsed = match (&opts.every, &opts.cron) {
        (Some(e), _) => Some(Schedule::every("--every", e)?),
        (None, Some(c)) => Some(Schedule::cron("--cron", c, "run.timezone", &keys.timezone)?),
        (None, None) if given(&keys.every) && given(&keys.cron) => {
            return Err(ScheduleError {
                what: "run.every".into(),
                value: keys.every.clone(),
                problem: "and run.cron are both set; keep one".into(),
            })
        }
        (None, None) if given(&keys.every) => Some(Schedule::every("run.every", &keys.every)?),
        (None, None) if given(&keys.cron) => Some(Schedule::cron(
            "run.cron",
            &keys.cron,
            "run.timezone",
            &keys.timezone,
        )?),
        (None, None) => None,
    };
    match parsed {
        None if !opts.once => Err(ScheduleError {
            what: "run.every".into(),
            value: String::new(),
            problem: "and run.cron are both empty; set one (e.g. run.every = \"15m\"), pass --every/--cron, or run one cycle with --once".into(),
        }),
        other => Ok(other),
    }
}

/// Longest flap guard: a year (a longer one would reach back past any
/// journal, and dates built from it could overflow).
const MAX_MOVE_INTERVAL: Duration = Duration::from_secs(366 * 86_400);

/// `run.min_move_interval` as a duration (`0s` turns the guard off), at
/// most [`MAX_MOVE_INTERVAL`].
fn min_move_interval(keys: &RunKeys) -> Result<Duration, ScheduleError> {
    let err = |problem: String| ScheduleError {
        what: "run.min_move_interval".into(),
        value: keys.min_move_interval.clone(),
        problem,
    };
    let d = humantime::parse_duration(keys.min_move_interval.trim()).map_err(|e| {
        err(format!(
            "is not a duration ({e}); write it like \"1h\" or \"0s\" (off)"
        ))
    })?;
    if d > MAX_MOVE_INTERVAL {
        return Err(err("is longer than a year; write at most \"366d\"".into()));
    }
    Ok(d)
}

pub async fn run(opts: Options, log: &Log) -> anyhow::Result<u8> {
    let env = Env::from_process();
    let session = applying::session(&opts.source, &env, opts.journal.clone(), false).await?;
    let result = run_loop(&opts, &session, log).await;
    session.connected.connection.close().await;
    result
}

async fn run_loop(opts: &Options, session: &Session, log: &Log) -> anyhow::Result<u8> {
    let keys = &session.connected.run;
    let schedule = schedule(opts, keys)?;
    let guard = min_move_interval(keys)?;
    rebalancer_applier::prepare_journal(&session.journal)?;
    let telemetry = match metrics_socket(opts, keys)? {
        None => None,
        Some(addr) => {
            let interval = schedule
                .as_ref()
                .and_then(|s| s.nominal_interval(Utc::now()));
            Some(telemetry::serve(addr, interval).await?)
        }
    };
    match &schedule {
        Some(s) => {
            tracing::info!(schedule = %s, dry_run = opts.dry_run, "rebalancing on a schedule")
        }
        None => tracing::info!(dry_run = opts.dry_run, "one cycle"),
    }
    let stop = applying::stop_on_signals();
    let immediately = opts.now || keys.start_immediately;
    let mut start_at = match &schedule {
        Some(s) => s.first_start(Utc::now(), immediately),
        None => Some(Utc::now()),
    };
    let mut last_code = 0;
    loop {
        let Some(at) = start_at else {
            tracing::warn!("the schedule has no next time; stopping");
            break;
        };
        if at > Utc::now() {
            tracing::info!(next = %at.to_rfc3339(), "next cycle");
            let wait = (at - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => break,
            }
        }
        let started = Utc::now();
        let c = cycle(opts, session, guard, &stop, log).await;
        let ended = Utc::now();
        let code = cycle_code(&c);
        last_code = code;
        telemetry::cycle_ended(c.record.outcome, ended);
        if let (Some(t), true) = (&telemetry, c.error.is_none() && code == 0) {
            let until = schedule
                .as_ref()
                .and_then(|s| s.ready_until(started, ended));
            t.health.succeeded(ended, until);
        }
        // A journal that cannot record the cycle (PostgreSQL restarting,
        // a full disk) fails this cycle only: logged, and the loop goes on;
        // the next cycle opens the journal afresh.
        let recorded = rebalancer_applier::record_cycle(&session.journal, &c.record);
        let id = match &recorded {
            Ok(id) => *id,
            Err(e) => {
                telemetry::count(telemetry::JOURNAL_FAILURES, 1);
                tracing::error!(
                    error = %e,
                    outcome = %c.record.outcome,
                    "the journal could not record this cycle (shown with id 0); the loop goes on"
                );
                0
            }
        };
        render::emit(&render::cycle::line(id, &c.record, opts.format))?;
        if opts.once {
            return match (code, recorded, c.error) {
                (0, Err(e), _) => Err(e.into()),
                (exit::CONFIG, _, Some(e)) => Err(e),
                (code, _, _) => Ok(code),
            };
        }
        if code == exit::CONFIG {
            // A cycle refused by the configuration fails the same way every
            // time: stop, and say why.
            if let Some(e) = c.error {
                return Err(e.context("a configuration error ends the loop; fix it and restart"));
            }
        }
        if stop.is_cancelled() {
            break;
        }
        start_at = schedule.as_ref().and_then(|s| s.next_start(started, ended));
    }
    Ok(if last_code == exit::INTERRUPTED {
        last_code
    } else {
        0
    })
}

/// Where to serve metrics: `--metrics-addr`, else `run.metrics_addr`
/// (checked at load), not under
/// `--once` unless `run.metrics_on_once`.
fn metrics_socket(opts: &Options, keys: &RunKeys) -> Result<Option<SocketAddr>, ScheduleError> {
    let (what, addr) = match &opts.metrics_addr {
        Some(flag) => ("--metrics-addr", flag),
        None => ("run.metrics_addr", &keys.metrics_addr),
    };
    if opts.once && !keys.metrics_on_once {
        if !addr.trim().is_empty() {
            tracing::info!(
                "run --once serves no metrics (set run.metrics_on_once = true to serve them)"
            );
        }
        return Ok(None);
    }
    crate::settings::metrics_addr(addr).map_err(|problem| ScheduleError {
        what: what.into(),
        value: addr.clone(),
        problem,
    })
}

/// A cycle's record, and the error that failed it (for the exit code).
struct Cycle {
    record: CycleRecord,
    error: Option<anyhow::Error>,
}

fn cycle_code(c: &Cycle) -> u8 {
    match (c.record.outcome, &c.error) {
        (_, Some(e)) => exit::code_of(e),
        (CycleOutcome::Blocked, _) => exit::BLOCKED,
        (CycleOutcome::Interrupted, _) => exit::INTERRUPTED,
        (CycleOutcome::AppliedWithFailures, _) => exit::APPLY_INCOMPLETE,
        _ => 0,
    }
}

async fn cycle(
    opts: &Options,
    session: &Session,
    guard: Duration,
    stop: &CancellationToken,
    log: &Log,
) -> Cycle {
    let started_at = now_rfc3339();
    let mut record = CycleRecord {
        started_at: started_at.clone(),
        mode: if opts.dry_run {
            CycleMode::DryRun
        } else {
            CycleMode::Apply
        },
        ..CycleRecord::default()
    };
    let error = match cycle_steps(opts, session, guard, stop, log, &mut record).await {
        Ok(()) => None,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the cycle failed");
            record.outcome = CycleOutcome::Failed;
            record.detail = format!("{e:#}");
            Some(e)
        }
    };
    record.ended_at = now_rfc3339();
    Cycle { record, error }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One cycle: fetch, plan, the admission gate, then (unless a dry run)
/// apply; `record` says how it ended.
async fn cycle_steps(
    opts: &Options,
    session: &Session,
    guard: Duration,
    stop: &CancellationToken,
    log: &Log,
    record: &mut CycleRecord,
) -> anyhow::Result<()> {
    let snapshot = fetch_step(session).await?;
    let plan = plan_step(session, guard, snapshot).await?;
    describe_plan(&plan, record);
    telemetry::planned(
        plan.objectives.after.shortfall,
        plan.objectives.after.peak_utilisation,
    );
    if plan.changes.is_empty() {
        record.outcome = CycleOutcome::NoChanges;
        record.detail = "nothing to change".into();
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
    apply_step(session, &plan, &expected, stop, log, record).await
}

/// Fetch this cycle's snapshot, with the fetch's metrics.
async fn fetch_step(session: &Session) -> anyhow::Result<rebalancer_model::Snapshot> {
    let stage = std::time::Instant::now();
    let (snapshot, fetched) = session.connected.connection.fetch(false).await?;
    telemetry::stage_took("fetch", stage.elapsed());
    telemetry::fetched(fetched.cms_gets_per_lead());
    telemetry::count(telemetry::MALFORMED, fetched.malformed_retried);
    Ok(snapshot)
}

/// Plan `snapshot` under the flap guard (the journal's moves of the last
/// `guard`), on a blocking thread.
async fn plan_step(
    session: &Session,
    guard: Duration,
    snapshot: rebalancer_model::Snapshot,
) -> anyhow::Result<Plan> {
    let stage = std::time::Instant::now();
    let recent = if guard.is_zero() {
        Default::default()
    } else {
        let now = time::OffsetDateTime::now_utc();
        let since = now.checked_sub(guard.try_into().unwrap_or(time::Duration::MAX));
        let since = since.unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        recent_for_plan(rebalancer_applier::recent_moves(&session.journal, since)?)
    };
    let cfg = session.connected.plan.clone();
    let plan: Plan = tokio::task::spawn_blocking(move || {
        rebalancer_optimizer::plan_guarded(&snapshot, &cfg, &Default::default(), &recent)
            .map(|(p, _)| p)
    })
    .await
    .context("the planner stopped unexpectedly")??;
    telemetry::stage_took("plan", stage.elapsed());
    Ok(plan)
}

/// Apply an admitted `plan`, with the apply's metrics; `record` gets the
/// run and its outcome (a journal held by another apply skips the cycle).
async fn apply_step(
    session: &Session,
    plan: &Plan,
    expected: &rebalancer_applier::Expected,
    stop: &CancellationToken,
    log: &Log,
    record: &mut CycleRecord,
) -> anyhow::Result<()> {
    let progress = Progress::default();
    let stage = std::time::Instant::now();
    let stats = &session.connected.connection.clients.stats;
    let malformed_before = stats.malformed_retries();
    let applied = applying::with_progress(
        log.interactive,
        &progress,
        rebalancer_applier::apply(
            &session.journal,
            plan,
            &session.upstreams,
            &session.config,
            expected,
            stop.child_token(),
            &progress,
        ),
    )
    .await;
    telemetry::stage_took("apply", stage.elapsed());
    telemetry::count(
        telemetry::MALFORMED,
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
        Err(e) => {
            if let ApplyError::LeaseLost { .. } = e {
                telemetry::count(telemetry::LEASE_LOST, 1);
            }
            Err(e.into())
        }
    }
}

/// An apply's run and outcome in the cycle's record (its PUTs and moves
/// were counted as they ended, by the applier).
fn record_applied(report: &rebalancer_applier::RunReport, record: &mut CycleRecord) {
    telemetry::count(telemetry::DRIFTED, report.skipped_drift as u64);
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

fn plan_hash(plan: &Plan) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(plan.to_json()))
}
