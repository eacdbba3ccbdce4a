//! What `rebalancer bench` prints: one row per family and size. The default
//! table fits 100 columns; `--wide` adds every figure, with a legend.

use super::{right, table, utilisation};
use comfy_table::Cell;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// One benchmarked size: what `bench-one` prints and `bench` renders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    pub family: String,
    pub agents: usize,
    pub leads: usize,
    pub pairs: usize,
    pub seed: u64,
    pub repeat: u32,
    /// Wall time of the whole `plan()` call, best and median of `repeat`.
    pub plan_ms_best: f64,
    pub plan_ms_median: f64,
    /// Solver time inside `plan()` (`PlanStats::solve_time`), best run.
    pub solve_ms_best: f64,
    pub balance_iterations: u32,
    /// Peak resident set of the child process (`VmHWM`); null off Linux.
    pub peak_rss_mib: Option<f64>,
    /// F*: demand carried at the optimum.
    pub max_flow: i64,
    /// Optimum shortfall (records).
    pub shortfall: f64,
    /// Optimum peak utilisation u*.
    pub peak_utilisation: f64,
    pub assigns: usize,
    pub unassigns: usize,
    /// New pairs at the least-records optimum, before the pair-count
    /// reduction (the plan's assigns come after it).
    pub new_pairs_least_records: usize,
    /// The plan at utilisation target 0.9 (the default): its changes and
    /// the peak its mapping allows.
    pub target_assigns: usize,
    pub target_unassigns: usize,
    pub target_peak_utilisation: f64,
    /// `plan --tradeoff` on the instance: wall time and rungs.
    pub tradeoff_ms: f64,
    pub tradeoff_rungs: usize,
    /// Greedy baseline: new (non-current) pairs it puts flow on.
    pub greedy_new_pairs: usize,
    pub greedy_peak_utilisation: f64,
    pub greedy_shortfall: f64,
    /// F* and u* equal bench-instances.md's table; null where the table
    /// has no entry (other family, seed or size).
    pub matches_spec: Option<bool>,
}

fn spec(r: &BenchRow) -> &'static str {
    match r.matches_spec {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}

fn rss(r: &BenchRow) -> String {
    r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0}"))
}

/// The table; `wide` adds every column and a legend.
pub fn table_of(rows: &[BenchRow], wide: bool) -> String {
    let mut t = table();
    if wide {
        t.set_header(vec![
            "family",
            "agents",
            "leads",
            "pairs",
            "ms best",
            "ms median",
            "solve ms",
            "iters",
            "RSS MiB",
            "F*",
            "shortfall",
            "u*",
            "assigns",
            "unassigns",
            "new pairs (least rec.)",
            "@0.9 +/-",
            "@0.9 peak",
            "tradeoff ms",
            "greedy new",
            "greedy peak",
            "greedy short",
            "spec",
        ]);
        for r in rows {
            t.add_row(vec![
                Cell::new(&r.family),
                right(r.agents),
                right(r.leads),
                right(r.pairs),
                right(format!("{:.1}", r.plan_ms_best)),
                right(format!("{:.1}", r.plan_ms_median)),
                right(format!("{:.1}", r.solve_ms_best)),
                right(r.balance_iterations),
                right(rss(r)),
                right(r.max_flow),
                right(format!("{:.0}", r.shortfall)),
                right(format!("{:.12}", r.peak_utilisation)),
                right(r.assigns),
                right(r.unassigns),
                right(r.new_pairs_least_records),
                right(format!("{}/{}", r.target_assigns, r.target_unassigns)),
                right(utilisation(r.target_peak_utilisation)),
                right(format!("{:.0}", r.tradeoff_ms)),
                right(r.greedy_new_pairs),
                right(utilisation(r.greedy_peak_utilisation)),
                right(format!("{:.0}", r.greedy_shortfall)),
                Cell::new(spec(r)),
            ]);
        }
    } else {
        t.set_header(vec![
            "family", "size", "pairs", "ms", "MiB", "u*", "+ / -", "+ @0.9", "greedy", "spec",
        ]);
        for r in rows {
            t.add_row(vec![
                Cell::new(&r.family),
                right(format!("{}x{}", r.agents, r.leads)),
                right(r.pairs),
                right(format!("{:.0}", r.plan_ms_best)),
                right(rss(r)),
                right(utilisation(r.peak_utilisation)),
                right(format!("{}/{}", r.assigns, r.unassigns)),
                right(r.target_assigns),
                right(r.greedy_new_pairs),
                Cell::new(spec(r)),
            ]);
        }
    }
    let seed = rows.first().map_or(String::new(), |r| {
        format!(" (seed {}, best of {})", r.seed, r.repeat)
    });
    let mut out = format!("Whole dry-run plan per size, each in a fresh process{seed}:\n{t}\n");
    let legend: &[(&str, &str)] =
        if wide {
            &[
            (
                "ms best / median",
                "wall time of the whole plan over --repeat runs",
            ),
            ("solve ms", "the solver stages alone (best run)"),
            ("iters", "max-flow solves of the balance stage"),
            ("RSS MiB", "peak resident set of the size's own process, over the timed plans"),
            ("F*", "records carried at the optimum"),
            ("u*", "least peak utilisation (load / headroom)"),
            (
                "assigns / unassigns",
                "the plan at u* (plan.target_utilisation = \"optimal\")",
            ),
            (
                "new pairs (least rec.)",
                "new pairs of the least-records flow, before the pair-count reduction",
            ),
            (
                "@0.9 +/- / peak",
                "the plan at the default target 0.9: assigns/unassigns, peak its mapping allows",
            ),
            ("tradeoff ms", "plan --tradeoff (the whole ladder of targets)"),
            (
                "greedy new / peak / short",
                "greedy fill: new pairs, peak utilisation, shortfall",
            ),
            (
                "spec",
                "F* and u* equal bench-instances.md (uniform, seed 42)",
            ),
        ]
        } else {
            &[
                (
                    "ms",
                    "whole plan, best run (--wide: the solver stages alone, median, ...)",
                ),
                (
                    "MiB",
                    "peak RSS; u*: least peak utilisation; + / -: assigns / unassigns at u*",
                ),
                (
                    "@0.9",
                    "assigns / unassigns at utilisation target 0.9 (the default)",
                ),
                (
                    "greedy",
                    "new pairs of a greedy fill; spec: matches bench-instances.md (--wide: all)",
                ),
            ]
        };
    for (k, v) in legend {
        let _ = writeln!(out, "  {k}: {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(family: &str, agents: usize, leads: usize) -> BenchRow {
        BenchRow {
            family: family.into(),
            agents,
            leads,
            pairs: agents * 20,
            seed: 42,
            repeat: 3,
            plan_ms_best: 12345.6,
            plan_ms_median: 12399.9,
            solve_ms_best: 9999.9,
            balance_iterations: 4,
            peak_rss_mib: Some(1023.4),
            max_flow: 3_981_380,
            shortfall: 0.0,
            peak_utilisation: 0.799979906969,
            assigns: 17060,
            unassigns: 7880,
            new_pairs_least_records: 17500,
            target_assigns: 4000,
            target_unassigns: 7880,
            target_peak_utilisation: 0.9,
            tradeoff_ms: 1234.5,
            tradeoff_rungs: 9,
            greedy_new_pairs: 4480,
            greedy_peak_utilisation: 1.0,
            greedy_shortfall: 0.0,
            matches_spec: Some(true),
        }
    }

    #[test]
    fn the_default_table_fits_100_columns() {
        let rows = [
            row("uniform", 200_000, 20_000),
            row("skewed", 200_000, 20_000),
        ];
        let text = table_of(&rows, false);
        for line in text.lines() {
            assert!(
                line.chars().count() <= 100,
                "{} wide: {line}",
                line.chars().count()
            );
        }
        let wide = table_of(&rows, true);
        assert!(
            wide.contains("ms median") && wide.contains("greedy peak"),
            "{wide}"
        );
    }
}
