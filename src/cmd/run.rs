//! `rebalancer run`: rebalance on a schedule. The cycle and the loop are
//! `rebalancer_ops::cycle` (fetch → plan under the flap guard → admission
//! → apply through the journal, or only plan with `--dry-run` → recorded);
//! the schedule is `rebalancer_ops::schedule`. This module reads the
//! flags, serves metrics, prints one line per cycle, and turns cycles
//! into the exit code.
//!
//! The first cycle of a cron schedule waits for the first cron time unless
//! `--now` or `run.start_immediately`. `--once` runs one cycle at once,
//! for an external scheduler (systemd timer, Kubernetes CronJob), and
//! exits with its code. Only SIGINT/SIGTERM (after the PUT in flight, the
//! run recorded as interrupted) or a cycle refused by the configuration
//! (exit 3) ends the loop.
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
use crate::progress::Bar;
use crate::render::{self, Format};
use crate::telemetry::{self, Telemetry};
use chrono::Utc;
use rebalancer_applier::{CycleOutcome, Progress};
use rebalancer_model::{Plan, Snapshot};
use rebalancer_ops::approval::Approval;
use rebalancer_ops::cycle::{self, CycleOptions, Ended, Flow, Observer};
use rebalancer_ops::schedule::{self, Flags, Schedule, ScheduleError};
use rebalancer_ops::settings::{Env, RunKeys};
use std::net::SocketAddr;
use std::path::PathBuf;

/// What `run` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub source: Source,
    /// `--every`, `--cron` and `--once`.
    pub flags: Flags,
    /// Run the first cycle of a cron schedule at start-up (`--now`).
    pub now: bool,
    /// Plan and record, never write.
    pub dry_run: bool,
    pub journal: Option<PathBuf>,
    pub format: Format,
    /// `--metrics-addr`, over `run.metrics_addr`.
    pub metrics_addr: Option<String>,
}

pub async fn run(opts: Options, log: &Log) -> anyhow::Result<u8> {
    let env = Env::from_process();
    let session = applying::session(&opts.source, &env, opts.journal.clone(), false).await?;
    let result = run_loop(&opts, &session, log).await;
    session.close().await;
    result
}

async fn run_loop(opts: &Options, session: &Session, log: &Log) -> anyhow::Result<u8> {
    let keys = &session.connected.run;
    let schedule = schedule::configured(&opts.flags, keys)?;
    let guard = schedule::min_move_interval(keys)?;
    let approval = Approval::from_keys(keys)?;
    let approval_poll = rebalancer_ops::approval::poll(keys)?;
    let telemetry = match metrics_socket(opts, keys)? {
        None => None,
        Some(addr) => {
            let interval = schedule
                .as_ref()
                .and_then(|s| s.nominal_interval(Utc::now()));
            Some(telemetry::serve(addr, interval).await?)
        }
    };
    let mut printer = Printer {
        format: opts.format,
        once: opts.flags.once,
        interactive: log.interactive,
        schedule: schedule.clone(),
        telemetry,
        bar: None,
        last_code: 0,
        ended: None,
        apply_rate: crate::cmd::plan::apply_rate(&session.connected.apply),
    };
    let cycles = CycleOptions {
        dry_run: opts.dry_run,
        guard,
        approval,
        approval_poll,
    };
    let stop = applying::stop_on_signals();
    let immediately = opts.now || keys.start_immediately;
    cycle::run(
        session,
        schedule.as_ref(),
        immediately,
        cycles,
        &stop,
        &mut printer,
    )
    .await?;
    printer.finish()
}

/// Where to serve metrics: `--metrics-addr`, else `run.metrics_addr`
/// (checked at load), not under
/// `--once` unless `run.metrics_on_once`.
fn metrics_socket(opts: &Options, keys: &RunKeys) -> Result<Option<SocketAddr>, ScheduleError> {
    let (what, addr) = match &opts.metrics_addr {
        Some(flag) => ("--metrics-addr", flag),
        None => ("run.metrics_addr", &keys.metrics_addr),
    };
    if opts.flags.once && !keys.metrics_on_once {
        if !addr.trim().is_empty() {
            tracing::info!(
                "run --once serves no metrics (set run.metrics_on_once = true to serve them)"
            );
        }
        return Ok(None);
    }
    rebalancer_ops::settings::metrics_addr(addr).map_err(|problem| ScheduleError {
        what: what.into(),
        value: addr.clone(),
        problem,
    })
}

/// The loop's observer: a progress bar while an apply runs (on a
/// terminal), one line per cycle, readiness, and the exit code.
struct Printer {
    format: Format,
    once: bool,
    interactive: bool,
    schedule: Option<Schedule>,
    telemetry: Option<Telemetry>,
    bar: Option<Bar>,
    last_code: u8,
    /// Why the loop ended early: `--once`'s cycle, or a configuration error.
    ended: Option<anyhow::Result<u8>>,
    /// `[apply]`'s rate, for the report of a proposed plan.
    apply_rate: render::report::ApplyRate,
}

impl Observer for Printer {
    fn apply_started(&mut self, progress: &Progress) {
        self.bar = Some(Bar::apply(self.interactive, progress));
    }

    fn apply_ended(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }

    fn report(&mut self, plan: &Plan, snapshot: &Snapshot) -> String {
        let ctx = render::report::Context {
            snapshot: Some(snapshot),
            apply: Some(self.apply_rate),
        };
        render::report::html(plan, &ctx)
    }

    fn cycle_ended(&mut self, e: Ended) -> Flow {
        let error = e.cycle.error.map(anyhow::Error::from);
        let code = match (e.cycle.record.outcome, &error) {
            (_, Some(err)) => exit::code_of(err),
            (CycleOutcome::Blocked, _) => exit::BLOCKED,
            (CycleOutcome::Interrupted, _) => exit::INTERRUPTED,
            (CycleOutcome::AppliedWithFailures, _) => exit::APPLY_INCOMPLETE,
            _ => 0,
        };
        self.last_code = code;
        if let (Some(t), true) = (
            &self.telemetry,
            error.is_none() && e.cycle.record.outcome.is_success(),
        ) {
            let until = self
                .schedule
                .as_ref()
                .and_then(|s| s.ready_until(e.started, e.ended));
            t.health.succeeded(e.ended, until);
        }
        let id = *e.recorded.as_ref().unwrap_or(&0);
        if let Err(err) = render::emit(&render::cycle::line(id, &e.cycle.record, self.format)) {
            self.ended = Some(Err(err.into()));
            return Flow::Stop;
        }
        if self.once {
            self.ended = Some(match (code, e.recorded, error) {
                (0, Err(err), _) => Err(err.into()),
                (exit::CONFIG, _, Some(err)) => Err(err),
                (code, _, _) => Ok(code),
            });
            return Flow::Stop;
        }
        if code == exit::CONFIG {
            // A cycle refused by the configuration fails the same way every
            // time: stop, and say why.
            if let Some(err) = error {
                self.ended = Some(Err(
                    err.context("a configuration error ends the loop; fix it and restart")
                ));
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

impl Printer {
    /// The exit code once the loop has ended: `--once`'s cycle's, a
    /// configuration error's, else 0 (11 when a signal stopped the last
    /// cycle's apply).
    fn finish(self) -> anyhow::Result<u8> {
        if let Some(ended) = self.ended {
            return ended;
        }
        Ok(if self.last_code == exit::INTERRUPTED {
            self.last_code
        } else {
            0
        })
    }
}
