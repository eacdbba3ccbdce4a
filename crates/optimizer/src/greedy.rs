//! A greedy baseline, for comparison in tests and benches only: leads in
//! order of decreasing demand; each lead's demand goes first to its current
//! agents, then to new ones, least-utilised agent first, each taking what
//! it can up to its cap. Fast, simple, and neither optimal nor balanced.

use crate::stages::Instance;

/// The greedy routing and its objective values.
#[derive(Debug, Clone, PartialEq)]
pub struct Greedy {
    /// Flow per pair (Instance order).
    pub flows: Vec<f64>,
    pub shortfall: f64,
    /// Highest load / capacity over agents with capacity.
    pub peak: f64,
    /// Flow on pairs outside the current mapping (the churn objective).
    pub new_pair_flow: f64,
}

/// Route greedily with agent caps `scale · capacity_i` (use `1.0` for the
/// plain thresholds, or `u*` to compare under the same balance).
pub fn greedy(inst: &Instance, scale: f64) -> Greedy {
    let cap: Vec<f64> = inst.capacity.iter().map(|&h| h as f64 * scale).collect();
    let mut load = vec![0.0f64; cap.len()];
    let mut flows = vec![0.0f64; inst.pairs.len()];
    let mut by_lead: Vec<Vec<usize>> = vec![Vec::new(); inst.demand.len()];
    for (k, p) in inst.pairs.iter().enumerate() {
        by_lead[p.lead as usize].push(k);
    }
    let mut order: Vec<usize> = (0..inst.demand.len()).collect();
    order.sort_by_key(|&j| (std::cmp::Reverse(inst.demand[j]), j));
    let util = |load: &[f64], i: usize| {
        if cap[i] > 0.0 {
            load[i] / cap[i]
        } else {
            f64::INFINITY
        }
    };
    let mut shortfall = 0.0;
    for j in order {
        let mut left = inst.demand[j] as f64;
        for current in [true, false] {
            let mut ks: Vec<usize> = by_lead[j]
                .iter()
                .copied()
                .filter(|&k| inst.pairs[k].current == current)
                .collect();
            ks.sort_by(|&a, &b| {
                let (ia, ib) = (inst.pairs[a].agent as usize, inst.pairs[b].agent as usize);
                util(&load, ia)
                    .total_cmp(&util(&load, ib))
                    .then(ia.cmp(&ib))
            });
            for k in ks {
                if left <= 0.0 {
                    break;
                }
                let i = inst.pairs[k].agent as usize;
                let take = (cap[i] - load[i]).max(0.0).min(left);
                flows[k] += take;
                load[i] += take;
                left -= take;
            }
        }
        shortfall += left.max(0.0);
    }
    let peak = (0..cap.len())
        .filter(|&i| inst.capacity[i] > 0)
        .map(|i| load[i] / inst.capacity[i] as f64)
        .fold(0.0, f64::max);
    let new_pair_flow = inst
        .pairs
        .iter()
        .zip(&flows)
        .filter(|(p, _)| !p.current)
        .map(|(_, f)| f)
        .sum();
    Greedy {
        flows,
        shortfall,
        peak,
        new_pair_flow,
    }
}
