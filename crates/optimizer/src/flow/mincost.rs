//! Minimum-cost maximum flow by the primal-dual method.
//!
//! Each phase runs Dijkstra from the source on reduced costs
//! `cost(a) + π(tail) − π(head)` (non-negative by invariant), raises the
//! potentials by `min(dist, dist(t))`, and then pushes a Dinic blocking flow
//! through the admissible arcs (residual arcs with reduced cost zero). The
//! potentials keep every residual arc's reduced cost non-negative, which is
//! the certificate that the final flow is of least cost among maximum flows.
//! Requires non-negative arc costs at the start (true for the optimizer's
//! 0/1 costs; no negative cycles can then arise).

use super::maxflow::Phases;
use super::Network;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Push a maximum flow from `s` to `t` at least total cost. Starts from the
/// flow already in `net`, which must leave no residual arc of negative cost
/// (zero flow does; so does flow on zero-cost arcs only). Returns the flow
/// value added and the total cost. Panics in debug builds if an arc has a
/// negative cost.
pub fn min_cost_max_flow(net: &mut Network, s: usize, t: usize) -> (i64, i64) {
    debug_assert!(
        (0..net.cap.len()).all(|a| net.cap[a] == 0 || net.cost(a) >= 0),
        "primal-dual needs non-negative costs on arcs with capacity"
    );
    let n = net.nodes();
    let mut potential = vec![0i64; n];
    let mut dist = vec![i64::MAX; n];
    let mut heap = BinaryHeap::new();
    let mut phases = Phases::new(n);
    let mut admissible = vec![false; net.cap.len()];
    let mut flow = 0i64;
    let mut phase_count = 0u32;
    let mut dinic_phases = 0u32;
    loop {
        phase_count += 1;
        // Dijkstra on reduced costs, stopped once t is settled.
        dist.fill(i64::MAX);
        dist[s] = 0;
        heap.clear();
        heap.push(Reverse((0i64, s as u32)));
        let mut reached = false;
        while let Some(Reverse((d, v))) = heap.pop() {
            let v = v as usize;
            if d > dist[v] {
                continue;
            }
            if v == t {
                reached = true;
                break;
            }
            for a in net.arcs_of(v) {
                if net.cap[a] <= 0 {
                    continue;
                }
                let w = net.to[a] as usize;
                let rc = net.cost(a) as i64 + potential[v] - potential[w];
                debug_assert!(rc >= 0, "negative reduced cost {rc}");
                let nd = d + rc;
                if nd < dist[w] {
                    dist[w] = nd;
                    heap.push(Reverse((nd, w as u32)));
                }
            }
        }
        if !reached {
            break;
        }
        let dt = dist[t];
        for v in 0..n {
            potential[v] += dist[v].min(dt);
        }
        // Blocking flows on the admissible subgraph (reduced cost zero).
        // Reverse arcs of admissible arcs are admissible too, so the set is
        // fixed for the whole phase.
        for v in 0..n {
            for a in net.arcs_of(v) {
                admissible[a] =
                    net.cost(a) as i64 + potential[v] - potential[net.to[a] as usize] == 0;
            }
        }
        let usable = |a: usize| admissible[a];
        let mut pushed_any = false;
        while phases.levels(net, s, t, &usable) {
            dinic_phases += 1;
            let pushed = phases.blocking_flow(net, s, t, &usable);
            if pushed == 0 {
                break;
            }
            pushed_any = true;
            flow += pushed;
        }
        if !pushed_any {
            break;
        }
    }
    tracing::debug!(phases = phase_count, dinic_phases, "min-cost flow");
    (flow, net.total_cost())
}

#[cfg(test)]
mod tests {
    use super::super::{max_flow, NetworkBuilder};
    use super::*;

    /// Every residual arc has non-negative reduced cost for some potential:
    /// check by Bellman-Ford that the residual graph has no negative cycle.
    fn no_negative_cycle(net: &Network) -> bool {
        let n = net.nodes();
        let mut d = vec![0i64; n];
        for _ in 0..n {
            let mut changed = false;
            for v in 0..n {
                for a in net.arcs_of(v) {
                    if net.cap[a] > 0 {
                        let w = net.to[a] as usize;
                        if d[v] + (net.cost(a) as i64) < d[w] {
                            d[w] = d[v] + net.cost(a) as i64;
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                return true;
            }
        }
        false
    }

    #[test]
    fn prefers_free_arcs_and_reaches_max_flow() {
        // s=0, agents 1,2, leads 3,4, t=5. Agent 1 currently on lead 3 (free).
        let mut b = NetworkBuilder::new(6);
        b.add(0, 1, 5, 0);
        b.add(0, 2, 5, 0);
        let a13 = b.add(1, 3, 10, 0);
        let a14 = b.add(1, 4, 10, 1);
        let a23 = b.add(2, 3, 10, 1);
        let a24 = b.add(2, 4, 10, 1);
        b.add(3, 5, 4, 0);
        b.add(4, 5, 6, 0);
        let mut net = b.build();
        let (flow, cost) = min_cost_max_flow(&mut net, 0, 5);
        assert_eq!(flow, 10);
        // 4 free units on 1→3, the other 6 must pay.
        assert_eq!(cost, 6);
        assert_eq!(net.flow(a13), 4);
        assert_eq!(net.flow(a14) + net.flow(a24) + net.flow(a23), 6);
        assert!(no_negative_cycle(&net));
    }

    proptest::proptest! {
        #[test]
        fn random_bipartite_is_optimal(
            caps in proptest::collection::vec(0i64..20, 2..8),
            dems in proptest::collection::vec(0i64..20, 1..6),
            edges in proptest::collection::vec((0usize..8, 0usize..6, 0i8..3), 1..30),
        ) {
            let (na, nl) = (caps.len(), dems.len());
            let n = na + nl + 2;
            let (s, t) = (n - 2, n - 1);
            let mut b = NetworkBuilder::new(n);
            for (i, &c) in caps.iter().enumerate() { b.add(s, i, c, 0); }
            for (j, &d) in dems.iter().enumerate() { b.add(na + j, t, d, 0); }
            for &(i, j, w) in &edges { b.add(i % na, na + j % nl, 1000, w); }
            let mut plain = b.clone().build();
            let mut net = b.build();
            let (flow, _) = min_cost_max_flow(&mut net, s, t);
            proptest::prop_assert_eq!(flow, max_flow(&mut plain, s, t));
            proptest::prop_assert!(no_negative_cycle(&net));
        }
    }
}
