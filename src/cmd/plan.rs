//! `rebalancer plan`: the dry run. Get a snapshot (live, from a file, or
//! from the embedded sandbox), lay the what-if flags over the planning
//! config, solve, and show what would change and why. Writes nothing
//! upstream; `out` saves the plan JSON atomically.

use crate::exit::{self, UsageError};
use crate::input::{self, Source};
use crate::logging::Log;
use crate::render::{self, Format, PlanView};
use crate::settings::Env;
use anyhow::Context;
use rebalancer_optimizer::{PlanConfig, SolverChoice};
use std::path::PathBuf;

/// What `plan` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub source: Source,
    pub out: Option<PathBuf>,
    pub format: Format,
    /// List every change and short lead.
    pub all: bool,
    /// Exit 2 when changes are pending, 0 when none.
    pub detailed_exitcode: bool,
    pub solver: Option<SolverChoice>,
    pub lp_backend: Option<String>,
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

impl WhatIfFlags {
    /// Each flag as the user typed it, for the plan header.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (flag, values) in [
            ("--set-allowance", &self.set_allowance),
            ("--set-demand", &self.set_demand),
            ("--exclude-agent", &self.exclude_agent),
            ("--freeze-agent", &self.freeze_agent),
            ("--freeze-lead", &self.freeze_lead),
            ("--pin", &self.pin),
        ] {
            out.extend(values.iter().map(|v| format!("{flag} {v}")));
        }
        out
    }
}

pub async fn run(opts: Options, log: &Log) -> anyhow::Result<u8> {
    let env = Env::from_process();
    let input = input::resolve(&opts.source, &env, log.interactive).await?;
    let mut cfg = input.plan.clone();
    apply_flags(&mut cfg, &opts)?;
    let snapshot = input.snapshot;
    let (plan, stats, snapshot) = tokio::task::spawn_blocking(move || {
        rebalancer_optimizer::plan(&snapshot, &cfg).map(|(p, s)| (p, s, snapshot))
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
    let text = match opts.format {
        Format::Json => String::from_utf8_lossy(&plan.to_json()).into_owned(),
        Format::Table => render::plan::report(&PlanView {
            plan: &plan,
            snapshot: &snapshot,
            stats: &stats,
            layers: &input.layers,
            what_ifs: &opts.what_ifs.describe(),
            all: opts.all,
        }),
    };
    render::emit(&text)?;
    Ok(if opts.detailed_exitcode && !plan.changes.is_empty() {
        exit::CHANGES_PENDING
    } else {
        0
    })
}

/// Lay the solver and what-if flags over the planning config.
fn apply_flags(cfg: &mut PlanConfig, opts: &Options) -> anyhow::Result<()> {
    if let Some(s) = opts.solver {
        cfg.solver = s;
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
    let w = &opts.what_ifs;
    cfg.set_allowance.extend(w.set_allowance.iter().cloned());
    for text in &w.set_demand {
        let (lead, n) = text
            .rsplit_once('=')
            .and_then(|(l, n)| Some((l.trim(), n.trim().parse::<u64>().ok()?)))
            .ok_or_else(|| {
                UsageError(format!(
                    "--set-demand `{text}` is not CAMPAIGN/LEAD=N (e.g. 501/1003=40)"
                ))
            })?;
        cfg.demand.insert(lead.to_owned(), n);
    }
    cfg.exclude_agents.extend(w.exclude_agent.iter().cloned());
    cfg.frozen_agents.extend(w.freeze_agent.iter().cloned());
    cfg.frozen_leads.extend(w.freeze_lead.iter().cloned());
    cfg.pins.extend(w.pin.iter().cloned());
    Ok(())
}
