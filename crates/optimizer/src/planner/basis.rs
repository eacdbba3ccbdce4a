//! What every utilisation target shares, and the solve: the prepared
//! instance, the evaluation of a mapping (flows, shortfall, peak, per-lead
//! coverage and per-agent load), stages 1 and 2 of the flow solver, and the
//! optimum under one target ([`Optimum`], from the flow solver or the LP).

use super::ms;
use crate::config::{PlanConfig, SolverChoice, TargetUtilisation};
use crate::limits::{FIGURE_NOISE, SHORT};
use crate::lp::{solve_lp_at, LpBackend};
use crate::prepare::{prepare, Prepared};
use crate::stages::{Base, Instance, Pair, Stages};
use crate::{OptimizerError, WhatIfs};
use rebalancer_model::{Metrics, Snapshot};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Beyond this many pairs microlp takes minutes (measured: 8.9 s at 20,000
/// pairs, no answer at 100,000); the plan warns before starting it.
const MICROLP_COMFORT_PAIRS: usize = 20_000;

/// Flows and metrics of one mapping, solved exactly.
#[derive(Clone)]
pub(crate) struct Evaluation {
    pub(crate) shortfall: i64,
    pub(crate) peak: f64,
    /// Records carried per lead.
    pub(super) carried: Vec<f64>,
    /// Planned load per agent.
    pub(super) load: Vec<f64>,
}

/// Stages 1 and 2 on a mapping, with loads from a flow that reaches the
/// optimum (stage 3 is not needed for loads and coverage).
pub(super) fn evaluate(inst: &Instance) -> Result<Evaluation, OptimizerError> {
    let stages = Stages::new(inst);
    let (carried_total, peak, _, flows) = stages
        .shortfall_and_balance()
        .map_err(|_| OptimizerError::Overflow)?;
    let mut carried = vec![0.0; inst.demand.len()];
    let mut load = vec![0.0; inst.capacity.len()];
    for (p, &f) in inst.pairs.iter().zip(&flows) {
        let f = f as f64 / peak.den as f64;
        carried[p.lead as usize] += f;
        load[p.agent as usize] += f;
    }
    // Demand is bounded by prepare (MAX_TOTAL_RECORDS): the sum fits.
    let demand: i64 = inst.demand.iter().sum();
    Ok(Evaluation {
        shortfall: demand - carried_total,
        peak: peak.to_f64(),
        carried,
        load,
    })
}

pub(super) fn metrics(inst: &Instance, e: &Evaluation) -> Metrics {
    Metrics {
        shortfall: e.shortfall as f64,
        peak_utilisation: e.peak,
        leads_uncovered: uncovered(&inst.demand, &e.carried),
    }
}

/// Leads missing more than [`SHORT`] records.
pub(super) fn uncovered(demand: &[i64], carried: &[f64]) -> usize {
    demand
        .iter()
        .zip(carried)
        .filter(|(&d, &c)| (d as f64) - c > SHORT)
        .count()
}

/// The instance restricted to a mapping (lead → agents).
pub(super) fn restricted(prep: &Prepared, mapping: &[BTreeSet<usize>]) -> Instance {
    restricted_to(prep, |j, i| mapping[j].contains(&i))
}

/// The instance restricted to the current mapping (pins not included).
fn restricted_to_current(prep: &Prepared) -> Instance {
    restricted_to(prep, |j, i| prep.leads[j].current.binary_search(&i).is_ok())
}

/// The instance restricted to the pairs `(lead, agent)` that `keep` accepts.
fn restricted_to(prep: &Prepared, keep: impl Fn(usize, usize) -> bool) -> Instance {
    let pairs = prep
        .inst
        .pairs
        .iter()
        .filter(|p| keep(p.lead as usize, p.agent as usize))
        .map(|p| Pair {
            current: true,
            ..*p
        })
        .collect();
    Instance {
        capacity: prep.inst.capacity.clone(),
        demand: prep.inst.demand.clone(),
        pairs,
    }
}

/// The solver's optimum on the whole instance, under one utilisation target.
pub(crate) struct Optimum {
    pub(super) solver: String,
    /// Flow per pair (records), in `Instance::pairs` order.
    pub(super) flows: Vec<f64>,
    pub(super) shortfall: f64,
    /// The highest utilisation the optimum's flows reach (at most `cap`).
    pub(super) peak: f64,
    /// `u*` and the cap stage 3 worked under, `max(u*, target)`.
    pub(crate) least_peak: f64,
    pub(crate) cap: f64,
    /// The target, when the plan has one (`None`: "optimal").
    pub(super) target: Option<f64>,
    /// Stage 3: least flow on pairs outside the current mapping.
    pub(super) churn: f64,
    /// New pairs with flow at stage 3's optimum, and after the reduction.
    pub(super) new_pairs_least_records: usize,
    pub(crate) new_pairs: usize,
    pub(super) balance_iterations: u32,
    /// Records carried per lead / planned load per agent.
    pub(super) carried: Vec<f64>,
    pub(super) load: Vec<f64>,
}

impl Optimum {
    /// The target mapping's evaluation when it is the optimum's own: the
    /// mapping carries every pair the optimum uses and the optimum's peak is
    /// the least one (then no mapping with those pairs balances better).
    pub(super) fn as_evaluation(&self) -> Option<Evaluation> {
        (self.solver == "flow" && self.cap <= self.least_peak).then(|| Evaluation {
            shortfall: self.shortfall as i64,
            peak: self.peak,
            carried: self.carried.clone(),
            load: self.load.clone(),
        })
    }
}

/// Stages 1 and 2 of the flow solver, shared by every target of a ladder.
fn flow_base(inst: &Instance, cfg: &PlanConfig) -> Result<Option<Base>, OptimizerError> {
    match cfg.solver {
        SolverChoice::Flow => Stages::new(inst)
            .base()
            .map(Some)
            .map_err(|_| OptimizerError::Overflow),
        SolverChoice::Lp => Ok(None),
    }
}

fn solve(
    inst: &Instance,
    cfg: &PlanConfig,
    base: Option<&Base>,
    target: TargetUtilisation,
) -> Result<Optimum, OptimizerError> {
    let (solver, flows, shortfall, least_peak, cap, churn, counts, balance_iterations) = match base
    {
        Some(base) => {
            let sol = Stages::new(inst)
                .at(base, target.ratio())
                .map_err(|_| OptimizerError::Overflow)?;
            let flows: Vec<f64> = (0..inst.pairs.len()).map(|k| sol.flow(k)).collect();
            let churn = sol.new_pair_flow_scaled as f64 / sol.peak.den as f64;
            (
                "flow".to_string(),
                flows,
                sol.shortfall as f64,
                sol.least_peak.to_f64(),
                sol.peak.to_f64(),
                churn,
                Some((sol.new_pairs_least_records, sol.new_pairs)),
                sol.balance_iterations,
            )
        }
        None => {
            let backend = LpBackend::parse(&cfg.lp_backend).ok_or_else(|| {
                let names: Vec<&str> = LpBackend::available().iter().map(|b| b.name()).collect();
                OptimizerError::UnknownBackend(cfg.lp_backend.clone(), names.join(", "))
            })?;
            if backend == LpBackend::Microlp && inst.pairs.len() > MICROLP_COMFORT_PAIRS {
                tracing::warn!(
                        pairs = inst.pairs.len(),
                        "microlp is slow beyond {MICROLP_COMFORT_PAIRS} pairs (minutes or more); the default flow solver gives the same optimum in well under a second"
                    );
            }
            let sol = solve_lp_at(inst, backend, target.value())?;
            let name = format!("lp-{}", backend.name());
            (
                name,
                sol.flows,
                sol.shortfall,
                sol.peak,
                sol.cap,
                sol.new_pair_flow,
                None,
                0,
            )
        }
    };
    let mut carried = vec![0.0; inst.demand.len()];
    let mut load = vec![0.0; inst.capacity.len()];
    for (k, p) in inst.pairs.iter().enumerate() {
        carried[p.lead as usize] += flows[k];
        load[p.agent as usize] += flows[k];
    }
    let used_new = || {
        inst.pairs
            .iter()
            .zip(&flows)
            .filter(|(p, &f)| !p.current && f > FIGURE_NOISE)
            .count()
    };
    let (new_pairs_least_records, new_pairs) = counts.unwrap_or_else(|| (used_new(), used_new()));
    let peak = load
        .iter()
        .zip(&inst.capacity)
        .filter(|(_, &h)| h > 0)
        .map(|(&l, &h)| l / h as f64)
        .fold(0.0, f64::max);
    Ok(Optimum {
        solver,
        flows,
        shortfall,
        peak,
        least_peak,
        cap,
        target: target.value(),
        churn,
        new_pairs_least_records,
        new_pairs,
        balance_iterations,
        carried,
        load,
    })
}

/// What every utilisation target shares: the prepared instance, stages 1
/// and 2 of the flow solver, and the evaluation of the current mapping.
pub(crate) struct Basis {
    pub(crate) prep: Prepared,
    pub(crate) base: Option<Base>,
    pub(crate) before: Evaluation,
    /// Time spent in stages 1 and 2.
    pub(super) base_time: Duration,
}

impl Basis {
    pub(crate) fn new(
        snap: &Snapshot,
        cfg: &PlanConfig,
        what_ifs: &WhatIfs,
        started: Instant,
    ) -> Result<Basis, OptimizerError> {
        let prep = prepare(snap, cfg, what_ifs)?;
        tracing::debug!(ms = ms(started), pairs = prep.inst.pairs.len(), "prepared");
        // Stages 1 and 2 and the evaluation of the current mapping are
        // independent: solve them on two cores.
        let base_started = Instant::now();
        let (base, before) = std::thread::scope(|scope| {
            // Before: what the current mapping can carry at best.
            let before = scope.spawn(|| evaluate(&restricted_to_current(&prep)));
            let base = flow_base(&prep.inst, cfg);
            let before = before.join().expect("evaluating a mapping does not panic");
            (base, before)
        });
        let (base, before) = (base?, before?);
        let base_time = base_started.elapsed();
        tracing::debug!(
            ms = ms(started),
            "stages 1 and 2 solved, current mapping evaluated"
        );
        Ok(Basis {
            prep,
            base,
            before,
            base_time,
        })
    }

    pub(crate) fn optimum(
        &self,
        cfg: &PlanConfig,
        target: TargetUtilisation,
    ) -> Result<Optimum, OptimizerError> {
        solve(&self.prep.inst, cfg, self.base.as_ref(), target)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{basis, config, prepared, snapshot, L};
    use super::*;

    #[test]
    fn evaluate_finds_the_least_shortfall_at_the_least_peak() {
        // a0 may only help on lead 0; a1 serves both: 6 + 4 records over
        // 20 of headroom balance at 5 each.
        let inst = Instance::new(
            vec![10, 10],
            vec![6, 4],
            [(0, 0, true), (1, 0, true), (1, 1, true)],
        );
        let e = evaluate(&inst).unwrap();
        assert_eq!(e.shortfall, 0);
        assert_eq!(e.peak, 0.5);
        assert_eq!(e.carried, [6.0, 4.0]);
        assert_eq!(e.load, [5.0, 5.0]);
    }

    #[test]
    fn metrics_of_a_short_mapping_count_its_uncovered_leads() {
        // a0 (headroom 4) alone on lead 0 (demand 6); lead 1 has no agent
        // and no demand; lead 2 has demand and no agent.
        let inst = Instance::new(vec![4], vec![6, 0, 3], [(0, 0, true)]);
        let e = evaluate(&inst).unwrap();
        assert_eq!((e.shortfall, e.peak), (5, 1.0));
        assert_eq!(e.carried, [4.0, 0.0, 0.0]);
        let m = metrics(&inst, &e);
        assert_eq!(
            m,
            Metrics {
                shortfall: 5.0,
                peak_utilisation: 1.0,
                leads_uncovered: 2,
            }
        );
        // Within SHORT of the demand is covered.
        assert_eq!(uncovered(&[6, 3], &[6.0 - SHORT / 2.0, 3.0]), 0);
        assert_eq!(uncovered(&[6, 3], &[6.0 - 2.0 * SHORT, 3.0]), 1);
    }

    #[test]
    fn restricted_keeps_the_mapping_as_current_pairs_only() {
        let snap = snapshot(&[10, 10], &[L(&[0], &[1]), L(&[], &[0, 1])]);
        let prep = prepared(&snap, &config(&[3, 4]));
        let pairs = |inst: &Instance| -> Vec<(u32, u32, bool)> {
            let mut p: Vec<_> = inst
                .pairs
                .iter()
                .map(|p| (p.agent, p.lead, p.current))
                .collect();
            p.sort();
            p
        };
        let mapping = [[1].into(), [0, 1].into()];
        let inst = restricted(&prep, &mapping);
        assert_eq!(pairs(&inst), [(0, 1, true), (1, 0, true), (1, 1, true)]);
        assert_eq!((inst.capacity, inst.demand), (vec![10, 10], vec![3, 4]));
        assert_eq!(pairs(&restricted_to_current(&prep)), [(0, 0, true)]);
    }

    #[test]
    fn the_flow_solver_and_the_lp_reach_the_same_optimum() {
        // a0 carries lead 0 (demand 14 > headroom 10); a1 may help.
        let snap = snapshot(&[10, 10], &[L(&[0], &[1]), L(&[1], &[])]);
        let flow_cfg = PlanConfig {
            target_utilisation: TargetUtilisation::Optimal,
            ..config(&[14, 2])
        };
        let lp_cfg = PlanConfig {
            solver: SolverChoice::Lp,
            ..flow_cfg.clone()
        };
        let flow = basis(&snap, &flow_cfg)
            .optimum(&flow_cfg, TargetUtilisation::Optimal)
            .unwrap();
        let lp = basis(&snap, &lp_cfg)
            .optimum(&lp_cfg, TargetUtilisation::Optimal)
            .unwrap();
        assert_eq!(
            (flow.solver.as_str(), lp.solver.as_str()),
            ("flow", "lp-microlp")
        );
        for o in [&flow, &lp] {
            assert!(o.shortfall.abs() < 1e-6);
            assert!((o.peak - 0.8).abs() < 1e-6, "{}", o.peak);
            assert!((o.carried[0] - 14.0).abs() < 1e-6 && (o.carried[1] - 2.0).abs() < 1e-6);
            assert!((o.load[0] - 8.0).abs() < 1e-6 && (o.load[1] - 8.0).abs() < 1e-6);
            assert!((o.churn - 6.0).abs() < 1e-6, "{}", o.churn);
            assert_eq!(o.new_pairs, 1);
        }
        // The flow optimum at the least peak is its own evaluation.
        let e = flow.as_evaluation().expect("flow at the least peak");
        assert_eq!((e.shortfall, e.peak), (0, 0.8));
        assert!(lp.as_evaluation().is_none());
    }
}
