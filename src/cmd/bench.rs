//! `rebalancer bench`: time the whole dry-run plan on the generated
//! benchmark families (`../shared/bench-instances.md`), and compare it with
//! the greedy baseline.
//!
//! Each size runs in a fresh child process (`rebalancer bench-one`, hidden),
//! so the peak resident set it reports (`VmHWM`) belongs to that size alone.
//! The child generates the instance, times `plan()` `--repeat` times, runs
//! the greedy baseline on the same instance and prints one JSON line; the
//! parent collects the lines and renders a table or JSON.

use crate::logging::Log;
use crate::render::{self, bench::BenchRow, Format};
use anyhow::Context;
use rebalancer_optimizer::families::generate;
pub use rebalancer_optimizer::families::Family;
use rebalancer_optimizer::greedy::greedy;
use rebalancer_optimizer::{tradeoff, PlanConfig, TargetUtilisation, WhatIfs};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The uniform family's exact optimum for seed 42, from bench-instances.md:
/// (agents, leads, F*, u*).
const UNIFORM_SPEC: [(usize, usize, i64, f64); 4] = [
    (100, 10, 1_798, 0.799466429524),
    (1_000, 100, 19_493, 0.799876897825),
    (5_000, 500, 98_876, 0.800038838408),
    (20_000, 2_000, 398_138, 0.799979906969),
];

/// Seed the reference figures were measured with.
const SPEC_SEED: u64 = 42;

/// How close u* must be to the spec's 12-digit value.
const SPEC_TOLERANCE: f64 = 1e-9;

/// The utilisation target of the "changes at target" columns (the default
/// of `plan.target_utilisation`).
const BENCH_TARGET: f64 = 0.9;

/// Flow below this on a pair counts as no assignment (greedy baseline).
const MIN_FLOW: f64 = 1e-6;

/// What `bench` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub families: Vec<Family>,
    /// (agents, leads) per size.
    pub sizes: Vec<(usize, usize)>,
    pub seed: u64,
    pub repeat: u32,
    pub format: Format,
    /// Every column in the table.
    pub wide: bool,
}

/// `rebalancer bench`: one child process per family and size.
pub fn run(args: Options, log: &Log) -> anyhow::Result<u8> {
    let families = args.families.clone();
    let exe = std::env::current_exe().context("cannot find this program to re-run it")?;
    let mut rows = Vec::new();
    for family in families {
        for &(agents, leads) in &args.sizes {
            tracing::info!(family = family.name(), agents, leads, "benchmarking");
            let mut cmd = Command::new(&exe);
            cmd.args(["--log", &log.filter]);
            cmd.arg("bench-one")
                .args(["--family", family.name()])
                .args(["--size", &format!("{agents}x{leads}")])
                .args(["--seed", &args.seed.to_string()])
                .args(["--repeat", &args.repeat.to_string()])
                .stdin(Stdio::null())
                .stderr(Stdio::inherit());
            let out = cmd
                .output()
                .with_context(|| format!("cannot start {}", exe.display()))?;
            anyhow::ensure!(
                out.status.success(),
                "bench of {} {agents}x{leads} failed ({})",
                family.name(),
                out.status
            );
            let line = String::from_utf8_lossy(&out.stdout);
            let row: BenchRow = serde_json::from_str(line.trim()).with_context(|| {
                format!("bench-one printed something that is not a result: {line:?}")
            })?;
            rows.push(row);
        }
    }
    match args.format {
        Format::Json => render::emit(&serde_json::to_string_pretty(&rows)?)?,
        Format::Table => render::emit(&render::bench::table_of(&rows, args.wide))?,
    }
    Ok(0)
}

/// `rebalancer bench-one`: one size in this process, one JSON line out.
pub fn run_one(
    family: Family,
    (agents, leads): (usize, usize),
    seed: u64,
    repeat: u32,
) -> anyhow::Result<u8> {
    let generated = generate(family, agents, leads, seed);
    let (snapshot, cfg) = generated.to_snapshot();

    let mut times = Vec::with_capacity(repeat as usize);
    let mut solve_ms_best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeat {
        let started = Instant::now();
        let (plan, stats) = rebalancer_optimizer::plan(&snapshot, &cfg)?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        solve_ms_best = solve_ms_best.min(stats.solve_time.as_secs_f64() * 1e3);
        last = Some((plan, stats));
    }
    let (plan, stats) = last.context("--repeat must be at least 1")?;
    times.sort_by(f64::total_cmp);

    // The plan's own peak, before the extra work below.
    let peak_rss = peak_rss_mib();
    // The same instance at the default utilisation target, and the whole
    // trade-off ladder, timed once each.
    let at_target = PlanConfig {
        target_utilisation: TargetUtilisation::At(BENCH_TARGET),
        ..cfg.clone()
    };
    let (target_plan, _) = rebalancer_optimizer::plan(&snapshot, &at_target)?;
    let ladder_started = Instant::now();
    let ladder = tradeoff(&snapshot, &cfg, &WhatIfs::default())?;
    let tradeoff_ms = ladder_started.elapsed().as_secs_f64() * 1e3;

    let inst = generated.to_instance();
    let g = greedy(&inst, 1.0);
    let greedy_new_pairs = inst
        .pairs
        .iter()
        .zip(&g.flows)
        .filter(|(p, f)| !p.current && **f >= MIN_FLOW)
        .count();

    let optimum = &plan.objectives.optimum;
    let demand: u64 = generated.demand.iter().sum();
    let max_flow = demand as i64 - optimum.shortfall.round() as i64;
    let row = BenchRow {
        family: family.name().to_owned(),
        agents,
        leads,
        pairs: generated.pairs.len(),
        seed,
        repeat,
        plan_ms_best: times[0],
        plan_ms_median: median(&times),
        solve_ms_best,
        balance_iterations: stats.balance_iterations,
        peak_rss_mib: peak_rss,
        max_flow,
        shortfall: optimum.shortfall,
        peak_utilisation: plan.objectives.balance.least_peak,
        assigns: plan.summary.assigns,
        unassigns: plan.summary.unassigns,
        new_pairs_least_records: plan.objectives.new_pairs.least_records,
        target_assigns: target_plan.summary.assigns,
        target_unassigns: target_plan.summary.unassigns,
        target_peak_utilisation: target_plan.objectives.after.peak_utilisation,
        tradeoff_ms,
        tradeoff_rungs: ladder.rows.len(),
        greedy_new_pairs,
        greedy_peak_utilisation: g.peak,
        greedy_shortfall: g.shortfall,
        matches_spec: matches_spec(
            family,
            seed,
            (agents, leads),
            max_flow,
            plan.objectives.balance.least_peak,
        ),
    };
    render::emit(&serde_json::to_string(&row)?)?;
    Ok(0)
}

/// Median of sorted, non-empty values.
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn matches_spec(
    family: Family,
    seed: u64,
    size: (usize, usize),
    max_flow: i64,
    peak: f64,
) -> Option<bool> {
    if family != Family::Uniform || seed != SPEC_SEED {
        return None;
    }
    UNIFORM_SPEC
        .iter()
        .find(|&&(a, l, _, _)| (a, l) == size)
        .map(|&(_, _, f, u)| f == max_flow && (peak - u).abs() <= SPEC_TOLERANCE)
}

/// Peak resident set of this process in MiB (`VmHWM`), Linux only.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }

    #[test]
    fn spec_applies_to_uniform_seed_42_only() {
        let u = 0.799876897825;
        assert_eq!(
            matches_spec(Family::Uniform, 42, (1000, 100), 19_493, u),
            Some(true)
        );
        assert_eq!(
            matches_spec(Family::Uniform, 42, (1000, 100), 19_492, u),
            Some(false)
        );
        assert_eq!(
            matches_spec(Family::Uniform, 7, (1000, 100), 19_493, u),
            None
        );
        assert_eq!(
            matches_spec(Family::Skewed, 42, (1000, 100), 19_493, u),
            None
        );
        assert_eq!(matches_spec(Family::Uniform, 42, (10, 1), 1, u), None);
    }
}
