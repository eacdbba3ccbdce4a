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
use rebalancer_optimizer::{PlanConfig, SolverChoice};

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
    apply_what_ifs(&mut cfg, &args)?;
    let (plan, stats) = tokio::task::spawn_blocking(move || {
        rebalancer_optimizer::plan(&snapshot, &cfg).map(|(p, s)| (p, s, snapshot))
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

/// Lay the what-if flags over the planning config.
fn apply_what_ifs(cfg: &mut PlanConfig, args: &PlanArgs) -> anyhow::Result<()> {
    if let Some(s) = args.solver {
        cfg.solver = match s {
            Solver::Flow => SolverChoice::Flow,
            Solver::Lp => SolverChoice::Lp,
        };
    }
    if let Some(b) = &args.lp_backend {
        cfg.lp_backend = b.clone();
    }
    cfg.set_allowance.extend(args.set_allowance.iter().cloned());
    for text in &args.set_demand {
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
    cfg.exclude_agents
        .extend(args.exclude_agent.iter().cloned());
    cfg.frozen_agents.extend(args.freeze_agent.iter().cloned());
    cfg.frozen_leads.extend(args.freeze_lead.iter().cloned());
    cfg.pins.extend(args.pin.iter().cloned());
    Ok(())
}
