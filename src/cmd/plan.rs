//! `rebalancer plan`: the dry run. Get a snapshot (live, from a file, or
//! from the embedded sandbox), lay the what-if flags over the planning
//! config, solve, and show what would change and why. Writes nothing
//! upstream; `out` saves the plan JSON atomically, `report` the plan as an
//! HTML page.

use crate::exit::{self, UsageError};
use crate::input::{self, Source};
use crate::logging::Log;
use crate::render::{self, Format, PlanView};
use anyhow::Context;
use rebalancer_ops::settings::Env;
use rebalancer_optimizer::whatif::{parse_allowance, parse_demand, parse_frozen_lead, parse_pin};
use rebalancer_optimizer::{OptimizerError, PlanConfig, SolverChoice, TargetUtilisation, WhatIfs};
use std::path::PathBuf;

/// What `plan` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub source: Source,
    pub out: Option<PathBuf>,
    /// Write the HTML report here.
    pub report: Option<PathBuf>,
    pub format: Format,
    /// List every change and short lead.
    pub all: bool,
    /// Exit 2 when changes are pending, 0 when none.
    pub detailed_exitcode: bool,
    pub solver: Option<SolverChoice>,
    pub lp_backend: Option<String>,
    /// Overrides `plan.target_utilisation`.
    pub target_utilisation: Option<TargetUtilisation>,
    /// Print the trade-off ladder instead of one plan.
    pub tradeoff: bool,
    pub what_ifs: WhatIfFlags,
}

/// The what-if flags, as typed on the command line.
#[derive(Debug, Default)]
pub struct WhatIfFlags {
    pub set_allowance: Vec<String>,
    pub set_demand: Vec<String>,
    pub exclude_agent: Vec<String>,
    pub freeze_agent: Vec<String>,
    pub freeze_lead: Vec<String>,
    pub pin: Vec<String>,
}

pub async fn run(opts: Options, log: &Log) -> anyhow::Result<u8> {
    let env = Env::from_process();
    let input = input::resolve(&opts.source, &env, log.interactive).await?;
    let mut cfg = input.plan.clone();
    apply_solver_flags(&mut cfg, &opts)?;
    let what_ifs = what_ifs(&opts.what_ifs)?;
    let snapshot = input.snapshot;
    if opts.tradeoff {
        return tradeoff(snapshot, cfg, what_ifs, opts.format).await;
    }
    let (plan, stats, snapshot) = tokio::task::spawn_blocking(move || {
        rebalancer_optimizer::plan_with(&snapshot, &cfg, &what_ifs).map(|(p, s)| (p, s, snapshot))
    })
    .await
    .context("the planner stopped unexpectedly")??;
    tracing::info!(
        solver = %stats.solver,
        pairs = stats.pairs,
        solve_ms = stats.solve_time.as_millis() as u64,
        total_ms = stats.total_time.as_millis() as u64,
        "plan solved"
    );
    if let Some(out) = &opts.out {
        plan.save(out)?;
        tracing::info!(path = %out.display(), "plan written");
    }
    if let Some(report) = &opts.report {
        let ctx = render::report::Context {
            snapshot: Some(&snapshot),
            apply: Some(apply_rate(&input.apply)),
        };
        render::report::save(&plan, &ctx, report)?;
        tracing::info!(path = %report.display(), "plan report written");
    }
    let text = match opts.format {
        Format::Json => String::from_utf8_lossy(&plan.to_json()).into_owned(),
        Format::Table => render::plan::report(&PlanView {
            heading: "DRY RUN: nothing was written upstream.",
            plan: &plan,
            snapshot: &snapshot,
            stats: &stats,
            layers: &input.layers,
            saved: match &opts.source {
                Source::Snapshot { path, .. } => Some(path),
                _ => None,
            },
            all: opts.all,
        }),
    };
    render::emit(&text)?;
    if opts.format == Format::Table {
        let mut files = Vec::new();
        if let Some(out) = &opts.out {
            files.push(("the plan", out.as_path()));
        }
        if let Some(report) = &opts.report {
            files.push(("its report", report.as_path()));
        }
        render::emit(&render::files_written(&files))?;
    }
    Ok(if let Some(b) = &plan.blocked {
        tracing::error!(reason = %b.reason, "the plan is BLOCKED; see its header");
        exit::BLOCKED
    } else if opts.detailed_exitcode && !plan.changes.is_empty() {
        exit::CHANGES_PENDING
    } else {
        0
    })
}

/// `plan --tradeoff`: the ladder of targets, as a table or JSON rows.
async fn tradeoff(
    snapshot: rebalancer_model::Snapshot,
    cfg: PlanConfig,
    what_ifs: WhatIfs,
    format: Format,
) -> anyhow::Result<u8> {
    let configured = cfg.target_utilisation;
    let ladder = tokio::task::spawn_blocking(move || {
        rebalancer_optimizer::tradeoff(&snapshot, &cfg, &what_ifs)
    })
    .await
    .context("the planner stopped unexpectedly")??;
    tracing::info!(
        rungs = ladder.rows.len(),
        seconds = ladder.seconds,
        "trade-off ladder solved"
    );
    let text = match format {
        Format::Json => render::tradeoff::json_of(&ladder)?,
        Format::Table => render::tradeoff::table_of(&ladder, configured),
    };
    render::emit(&text)?;
    Ok(0)
}

/// Lay the solver and target flags over the planning config.
fn apply_solver_flags(cfg: &mut PlanConfig, opts: &Options) -> anyhow::Result<()> {
    if let Some(s) = opts.solver {
        cfg.solver = s;
    }
    if let Some(t) = opts.target_utilisation {
        cfg.target_utilisation = t;
    }
    if let Some(b) = &opts.lp_backend {
        if cfg.solver != SolverChoice::Lp {
            return Err(UsageError(format!(
                "--lp-backend {b} only applies to the LP solver; add --solver lp (or set plan.solver = \"lp\")"
            ))
            .into());
        }
        cfg.lp_backend = b.clone();
    }
    Ok(())
}

/// The what-if flags as typed [`WhatIfs`], parsed once; a syntax error is
/// a usage error naming the flag.
fn what_ifs(flags: &WhatIfFlags) -> anyhow::Result<WhatIfs> {
    fn usage(flag: &'static str) -> impl Fn(OptimizerError) -> UsageError {
        move |e| UsageError(format!("{flag}: {e}"))
    }
    let mut w = WhatIfs::default();
    for text in &flags.set_allowance {
        let (agent, n) = parse_allowance(text).map_err(usage("--set-allowance"))?;
        w.set_allowance.insert(agent, n);
    }
    for text in &flags.set_demand {
        let (lead, n) = parse_demand(text).map_err(usage("--set-demand"))?;
        w.set_demand.insert(lead, n);
    }
    w.exclude_agents
        .extend(flags.exclude_agent.iter().map(|a| a.as_str().into()));
    w.freeze_agents
        .extend(flags.freeze_agent.iter().map(|a| a.as_str().into()));
    for text in &flags.freeze_lead {
        w.freeze_leads
            .insert(parse_frozen_lead(text).map_err(usage("--freeze-lead"))?);
    }
    for text in &flags.pin {
        w.pins.insert(parse_pin(text).map_err(usage("--pin"))?);
    }
    Ok(w)
}

/// The `[apply]` figures the report's "What apply will send" uses.
pub fn apply_rate(a: &rebalancer_ops::settings::ApplyKeys) -> render::report::ApplyRate {
    render::report::ApplyRate {
        puts_per_second: a.puts_per_second,
        burst: a.burst,
        max_users_per_put: a.max_users_per_put,
    }
}
