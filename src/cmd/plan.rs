//! `rebalancer plan`: the dry run. Get a snapshot (live, from a file, or
//! from the embedded sandbox), apply the what-if flags to the planning
//! config, solve, and show what would change and why. Writes nothing
//! upstream; `--out` saves the plan JSON atomically.

use crate::cli::{Format, PlanArgs, Solver};
use crate::cmd::fetch;
use crate::exit::UsageError;
use crate::render;
use crate::settings::Settings;
use anyhow::Context;
use rebalancer_model::Snapshot;
use rebalancer_optimizer::whatif::{parse_allowance, parse_demand, parse_pin, LeadRef};
use rebalancer_optimizer::{PlanConfig, SolverChoice, WhatIfs};

pub async fn run(args: PlanArgs) -> anyhow::Result<()> {
    let (snapshot, mut cfg) = match (&args.snapshot, &args.config, args.sandbox) {
        (Some(path), config, _) => {
            let snap = Snapshot::load(path)?;
            let cfg = match config {
                Some(c) => Settings::load_plan(c)?,
                None => Settings::default_plan(),
            };
            (snap, cfg)
        }
        (None, Some(path), _) => {
            let settings = Settings::load(path)?;
            let (snap, _) = fetch::fetch_live(&settings, "live").await?;
            (snap, settings.plan)
        }
        (None, None, _) => {
            let (snap, _) = fetch::fetch_sandbox(&args.world).await?;
            (snap, Settings::default_plan())
        }
    };
    let what_ifs = what_ifs(&mut cfg, &args)?;
    let (plan, stats) = tokio::task::spawn_blocking(move || {
        rebalancer_optimizer::plan_with(&snapshot, &cfg, &what_ifs).map(|(p, s)| (p, s, snapshot))
    })
    .await
    .context("the planner stopped unexpectedly")?
    .map(|(p, s, snap)| {
        tracing::info!(
            solver = %s.solver,
            pairs = s.pairs,
            solve_ms = s.solve_time.as_millis() as u64,
            total_ms = s.total_time.as_millis() as u64,
            "plan solved"
        );
        (p, (s, snap))
    })?;
    let (stats, snapshot) = stats;
    if let Some(out) = &args.out {
        plan.save(out)?;
        tracing::info!(path = %out.display(), "plan written");
    }
    match args.format {
        Format::Json => render::emit(&String::from_utf8_lossy(&plan.to_json()))?,
        Format::Table => render::emit(&render::plan(&plan, &snapshot, &stats, args.verbose))?,
    }
    Ok(())
}

/// The solver flags go into the planning config; the what-if flags become
/// typed [`WhatIfs`] (a syntax error is a usage error naming the flag).
fn what_ifs(cfg: &mut PlanConfig, args: &PlanArgs) -> anyhow::Result<WhatIfs> {
    if let Some(s) = args.solver {
        cfg.solver = match s {
            Solver::Flow => SolverChoice::Flow,
            Solver::Lp => SolverChoice::Lp,
        };
    }
    if let Some(b) = &args.lp_backend {
        cfg.lp_backend = b.clone();
    }
    fn usage(flag: &'static str) -> impl Fn(rebalancer_optimizer::OptimizerError) -> UsageError {
        move |e| UsageError(format!("{flag}: {e}"))
    }
    let mut w = WhatIfs::default();
    for text in &args.set_allowance {
        let (agent, n) = parse_allowance(text).map_err(usage("--set-allowance"))?;
        w.set_allowance.insert(agent, n);
    }
    for text in &args.set_demand {
        let (lead, n) = parse_demand(text).map_err(usage("--set-demand"))?;
        w.set_demand.insert(lead, n);
    }
    w.exclude_agents
        .extend(args.exclude_agent.iter().map(|a| a.as_str().into()));
    w.freeze_agents
        .extend(args.freeze_agent.iter().map(|a| a.as_str().into()));
    for text in &args.freeze_lead {
        w.freeze_leads
            .insert(LeadRef::parse("plan.frozen_leads", text).map_err(usage("--freeze-lead"))?);
    }
    for text in &args.pin {
        w.pins.insert(parse_pin(text).map_err(usage("--pin"))?);
    }
    Ok(w)
}
