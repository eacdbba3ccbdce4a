//! The price of balance (`plan --tradeoff`): for a ladder of utilisation
//! targets, the shortfall, the peak the plan reaches, and its assigns and
//! unassigns, so an operator picks `plan.target_utilisation` knowing what
//! each step of balance costs in writes.
//!
//! The ladder is `u*` ("optimal"), every multiple of 0.05 above `u*` up to
//! 1.0, the current mapping's peak and the configured target. It is solved
//! incrementally: preparing the instance, stages 1 and 2 (max flow, least
//! peak) and the evaluation of the current mapping are shared; each rung
//! runs only the change stage and the plan's phases and gates, exactly as
//! `plan` with that target would, so a row is what that plan says.

use crate::config::{PlanConfig, TargetUtilisation};
use crate::planner::{decide, Basis, Optimum, Recent};
use crate::{OptimizerError, WhatIfs};
use rebalancer_model::{Action, Snapshot};
use serde::Serialize;
use std::time::Instant;

/// Step of the ladder between `u*` and 1.0.
pub const LADDER_STEP: f64 = 0.05;

/// One rung of the ladder: what the plan at `target` would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TradeoffRow {
    /// The target (a number, or `"optimal"` for `u*`).
    pub target: TargetUtilisation,
    /// Least total shortfall (records): the same on every rung.
    pub shortfall: f64,
    /// The least peak utilisation the plan's mapping allows.
    pub peak_utilisation: f64,
    pub assigns: usize,
    pub unassigns: usize,
    /// The cap the change stage worked under, `max(u*, target)`.
    #[serde(skip)]
    pub cap: f64,
    /// New pairs the optimum used at this cap (after the reduction).
    #[serde(skip)]
    pub new_pairs: usize,
    /// Why this rung is on the ladder beyond the 0.05 steps: "current
    /// peak", "configured" (both may apply).
    #[serde(skip)]
    pub marks: Vec<&'static str>,
}

/// The whole ladder, lowest cap first.
#[derive(Debug, Clone, PartialEq)]
pub struct Tradeoff {
    pub rows: Vec<TradeoffRow>,
    /// `u*`.
    pub least_peak: f64,
    /// The current mapping's least peak.
    pub current_peak: f64,
    /// Seconds for the whole ladder.
    pub seconds: f64,
}

/// The ladder's targets, lowest first, each with its marks.
fn rungs(
    least: crate::Ratio,
    current_peak: f64,
    configured: TargetUtilisation,
) -> Vec<(TargetUtilisation, Vec<&'static str>)> {
    let mut rungs: Vec<(TargetUtilisation, Vec<&'static str>)> = Vec::new();
    let mut add = |t: TargetUtilisation, mark: Option<&'static str>| {
        // A target at or below u* plans exactly as "optimal".
        let t = match t.ratio() {
            Some(r) if r <= least => TargetUtilisation::Optimal,
            _ => t,
        };
        let key = t.ratio();
        match rungs.iter_mut().find(|(r, _)| r.ratio() == key) {
            Some((_, marks)) => marks.extend(mark),
            None => rungs.push((t, mark.into_iter().collect())),
        }
    };
    add(TargetUtilisation::Optimal, None);
    let steps = (1.0 / LADDER_STEP).round() as i64;
    for k in 1..=steps {
        add(TargetUtilisation::At(k as f64 * LADDER_STEP), None);
    }
    add(
        TargetUtilisation::At(current_peak.clamp(0.0, 1.0)),
        Some("current peak"),
    );
    add(configured, Some("configured"));
    rungs.sort_by_key(|(t, _)| t.ratio().unwrap_or(least));
    rungs
}

/// Plan at every rung of the ladder for `snap` under `cfg` and `what_ifs`
/// (gates and caps included, no flap guard).
pub fn tradeoff(
    snap: &Snapshot,
    cfg: &PlanConfig,
    what_ifs: &WhatIfs,
) -> Result<Tradeoff, OptimizerError> {
    let started = Instant::now();
    let basis = Basis::new(snap, cfg, what_ifs, started)?;
    // u* from the shared stages (the LP path solves it with the first rung).
    let first = basis.optimum(cfg, TargetUtilisation::Optimal)?;
    let least = match &basis.base {
        Some(b) => b.least_peak,
        None => crate::Ratio::nearest(first.least_peak, TargetUtilisation::DENOMINATOR),
    };
    let current_peak = basis.before.peak;
    let rungs = rungs(least, current_peak, cfg.target_utilisation);
    // Rungs are independent given the basis: plan them on the available
    // cores, each worker taking every n-th rung; rows keep ladder order.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, rungs.len().max(1));
    let rung = |(target, marks): &(TargetUtilisation, Vec<&'static str>)| {
        row(&basis, cfg, &first, *target, marks.clone())
    };
    let mut rows: Vec<Option<Result<TradeoffRow, OptimizerError>>> = Vec::new();
    rows.resize_with(rungs.len(), || None);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let rungs = &rungs;
                scope.spawn(move || {
                    (w..rungs.len())
                        .step_by(workers)
                        .map(|k| (k, rung(&rungs[k])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (k, r) in h.join().expect("planning a rung does not panic") {
                rows[k] = Some(r);
            }
        }
    });
    let rows = rows
        .into_iter()
        .map(|r| r.expect("every rung was planned"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tradeoff {
        rows,
        least_peak: first.least_peak,
        current_peak,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The plan at one rung, counted.
fn row(
    basis: &Basis,
    cfg: &PlanConfig,
    optimal: &Optimum,
    target: TargetUtilisation,
    marks: Vec<&'static str>,
) -> Result<TradeoffRow, OptimizerError> {
    let opt = match target {
        TargetUtilisation::Optimal => None,
        t => Some(basis.optimum(cfg, t)?),
    };
    let opt = opt.as_ref().unwrap_or(optimal);
    let outcome = decide(basis, cfg, opt, &Recent::default())?;
    let count = |a: Action| {
        outcome
            .draft
            .changes
            .iter()
            .filter(|c| c.action == a)
            .count()
    };
    tracing::debug!(%target, "rung planned");
    Ok(TradeoffRow {
        target,
        shortfall: outcome.after.shortfall as f64,
        peak_utilisation: outcome.after.peak,
        assigns: count(Action::Assign),
        unassigns: count(Action::Unassign),
        cap: opt.cap,
        new_pairs: opt.new_pairs,
        marks,
    })
}
