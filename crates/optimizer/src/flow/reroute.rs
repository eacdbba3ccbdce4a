//! Fewer used arcs at the same flow: reroute the flow of lightly used arcs
//! onto arcs that are already used.
//!
//! The optimizer's change stage is a min-cost flow that minimises *records*
//! on new pairs; what an operator pays for is the *number* of new pairs (each
//! is a write to the dialer). Minimising that count is a fixed-charge problem
//! (NP-hard), so this is a local search on top of the exact flow:
//!
//! 1. every candidate arc without flow is closed (it may not be used);
//! 2. the candidates with flow, lightest first, are tried one at a time: the
//!    arc's flow `f` is cancelled along its path `s → tail → head → t`, the
//!    arc is closed, and `f` is pushed back into `head → t` along augmenting
//!    paths that use only open arcs, found by a breadth-first search
//!    backwards from `head` (nodes that can reach `head` in the residual
//!    graph) until some node has residual capacity from `s`. If all of `f`
//!    comes back, the arc is gone; otherwise every push of the attempt is
//!    undone and the arc reopened.
//!
//! Each accepted attempt keeps the flow value, every capacity (so the
//! stages' shortfall and peak cap), and the flow into every node adjacent to
//! `t`; it only moves flow between open arcs. An attempt visits at most
//! `budget` arcs, so the search stays near-linear; the result is
//! deterministic (candidate order and breadth-first order are fixed).

use super::Network;

/// Most passes over the used candidates.
const MAX_PASSES: usize = 2;

/// What [`shed_arcs`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shed {
    /// Candidates carrying flow before.
    pub used_before: usize,
    /// Candidates carrying flow after.
    pub used_after: usize,
    /// Attempts made (one per candidate that still carried flow).
    pub attempts: usize,
}

/// Reroute flow off as many `candidates` (builder indices of arcs whose
/// tail is fed by `s` and whose head feeds `t`) as possible; see the module
/// doc. `budget` bounds the arcs one search may scan.
pub fn shed_arcs(
    net: &mut Network,
    s: usize,
    t: usize,
    candidates: &[usize],
    budget: usize,
) -> Shed {
    let mut used: Vec<usize> = Vec::new();
    for &c in candidates {
        if net.flow(c) > 0 {
            used.push(c);
        } else {
            net.close(net.arc(c) as usize);
        }
    }
    let used_before = used.len();
    let mut search = Search::new(net.nodes());
    let mut attempts = 0;
    // Passes, lightest arc first, while a pass removes at least 1 % of the
    // used arcs: a reroute can make room for an arc an earlier pass could
    // not move.
    for _ in 0..MAX_PASSES {
        let mut order: Vec<(i64, usize)> = used.iter().map(|&c| (net.flow(c), c)).collect();
        order.sort_unstable();
        let was = used.len();
        for &(_, c) in &order {
            let a = net.arc(c) as usize;
            let f = net.flow(c);
            if f > 0 {
                attempts += 1;
                search.reroute(net, s, t, a, f, budget);
            }
            if net.flow(c) == 0 {
                net.close(a);
            }
        }
        used.retain(|&c| net.flow(c) > 0);
        // Another pass only pays when this one found room (tight caps, as
        // at the least peak, leave almost every arc where it is).
        if (was - used.len()) * 100 < was {
            break;
        }
    }
    let used_after = used.len();
    Shed {
        used_before,
        used_after,
        attempts,
    }
}

/// Scratch space of the backward searches, reused across attempts.
struct Search {
    /// `seen[v] == epoch`: visited in the current search.
    seen: Vec<u32>,
    epoch: u32,
    /// The residual arc `v → w` by which `v` reaches the search's start.
    next_arc: Vec<u32>,
    queue: Vec<u32>,
    /// Pushes of the current attempt, to undo it: (arc, amount).
    log: Vec<(usize, i64)>,
}

impl Search {
    fn new(n: usize) -> Search {
        Search {
            seen: vec![0; n],
            epoch: 0,
            next_arc: vec![0; n],
            queue: Vec::new(),
            log: Vec::new(),
        }
    }

    fn push(&mut self, net: &mut Network, a: usize, amount: i64) {
        net.push(a, amount);
        self.log.push((a, amount));
    }

    /// Try to take all `f` units off arc `a` (`tail → head`); true when the
    /// arc ends closed and without flow, false when nothing changed.
    fn reroute(
        &mut self,
        net: &mut Network,
        s: usize,
        t: usize,
        a: usize,
        f: i64,
        budget: usize,
    ) -> bool {
        let (tail, head) = (net.tail(a), net.to[a] as usize);
        let (Some(into_tail), Some(out_of_head)) = (net.arc_into(s, tail), net.arc_out(head, t))
        else {
            return false;
        };
        self.log.clear();
        // Cancel f along s → tail → head → t.
        for arc in [out_of_head, a, into_tail] {
            let back = net.rev[arc] as usize;
            self.push(net, back, f);
        }
        let original = net.close(a);
        let mut need = f;
        while need > 0 {
            let Some((start, first)) = self.find(net, s, t, head, budget) else {
                break;
            };
            // Path: s → start → … → head → t.
            let mut pushed = need.min(net.cap[out_of_head]).min(net.cap[first]);
            let mut v = start;
            while v != head {
                let arc = self.next_arc[v] as usize;
                pushed = pushed.min(net.cap[arc]);
                v = net.to[arc] as usize;
            }
            debug_assert!(pushed > 0);
            self.push(net, first, pushed);
            let mut v = start;
            while v != head {
                let arc = self.next_arc[v] as usize;
                self.push(net, arc, pushed);
                v = net.to[arc] as usize;
            }
            self.push(net, out_of_head, pushed);
            need -= pushed;
        }
        if need == 0 {
            return true;
        }
        net.reopen(a, original);
        for &(arc, amount) in self.log.iter().rev() {
            let back = net.rev[arc] as usize;
            net.push(back, amount);
        }
        false
    }

    /// Breadth-first search backwards from `head`: the first node with
    /// residual capacity from `s` and that arc `s → node`, or `None` once
    /// the nodes taken from the queue have `budget` arcs. Paths never pass
    /// through `t`.
    fn find(
        &mut self,
        net: &Network,
        s: usize,
        t: usize,
        head: usize,
        budget: usize,
    ) -> Option<(usize, usize)> {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.seen.fill(0);
            self.epoch = 1;
        }
        self.queue.clear();
        self.queue.push(head as u32);
        self.seen[head] = self.epoch;
        let mut at = 0;
        let mut scanned = 0;
        while at < self.queue.len() && scanned < budget {
            let x = self.queue[at] as usize;
            at += 1;
            scanned += net.arcs_of(x).len();
            for b in net.arcs_of(x) {
                let y = net.to[b] as usize;
                let into_x = net.rev[b] as usize;
                if net.cap[into_x] <= 0 || y == t || self.seen[y] == self.epoch {
                    continue;
                }
                if y == s {
                    return Some((x, into_x));
                }
                self.seen[y] = self.epoch;
                self.next_arc[y] = into_x as u32;
                self.queue.push(y as u32);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::{min_cost_max_flow, NetworkBuilder};
    use super::*;

    #[test]
    fn a_light_new_arc_moves_onto_a_used_one() {
        // s=0, agents 1,2, lead 3, t=4. Agent 1 feeds lead 3 on a used arc
        // and has slack; agent 2's new arc carries 1 unit agent 1 can take.
        let mut b = NetworkBuilder::new(5);
        let s1 = b.add(0, 1, 10, 0);
        let s2 = b.add(0, 2, 10, 0);
        let used = b.add(1, 3, 100, 0);
        let light = b.add(2, 3, 100, 1);
        let sink = b.add(3, 4, 6, 0);
        let mut net = b.build();
        for (arc, units) in [(s1, 5), (used, 5), (s2, 1), (light, 1), (sink, 6)] {
            net.push(net.arc(arc) as usize, units);
        }
        let shed = shed_arcs(&mut net, 0, 4, &[light], 100);
        assert_eq!(
            (shed.used_before, shed.used_after, shed.attempts),
            (1, 0, 1)
        );
        assert_eq!((net.flow(used), net.flow(light)), (6, 0));
        assert_eq!((net.flow(s1), net.flow(s2), net.flow(sink)), (6, 0, 6));
    }

    #[test]
    fn an_arc_that_cannot_move_stays_and_nothing_changes() {
        // Agent 1 is full: the new arc from agent 2 must stay.
        let mut b = NetworkBuilder::new(5);
        b.add(0, 1, 5, 0);
        b.add(0, 2, 10, 0);
        let used = b.add(1, 3, 100, 0);
        let new = b.add(2, 3, 100, 1);
        b.add(3, 4, 6, 0);
        let mut net = b.build();
        min_cost_max_flow(&mut net, 0, 4);
        let before: Vec<i64> = (0..5).map(|k| net.flow(k)).collect();
        let shed = shed_arcs(&mut net, 0, 4, &[new], 100);
        assert_eq!((shed.used_before, shed.used_after), (1, 1));
        let after: Vec<i64> = (0..5).map(|k| net.flow(k)).collect();
        assert_eq!(before, after);
        assert_eq!((net.flow(used), net.flow(new)), (5, 1));
    }

    proptest::proptest! {
        /// Shedding keeps the flow value and every source and sink arc's
        /// flow within capacity, never uses a closed (flowless) candidate,
        /// and never raises the number of used candidates.
        #[test]
        fn shedding_keeps_flow_and_capacities(
            caps in proptest::collection::vec(0i64..20, 2..8),
            dems in proptest::collection::vec(0i64..20, 1..6),
            edges in proptest::collection::vec((0usize..8, 0usize..6, 0i32..2), 1..30),
            budget in 1usize..50,
        ) {
            let (na, nl) = (caps.len(), dems.len());
            let n = na + nl + 2;
            let (s, t) = (n - 2, n - 1);
            let mut b = NetworkBuilder::new(n);
            for (i, &c) in caps.iter().enumerate() { b.add(s, i, c, 0); }
            for (j, &d) in dems.iter().enumerate() { b.add(na + j, t, d, 0); }
            let mut candidates = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            for &(i, j, w) in &edges {
                if !seen.insert((i % na, j % nl)) { continue; }
                let k = b.add(i % na, na + j % nl, 1000, w);
                if w == 1 { candidates.push(k); }
            }
            let mut net = b.build();
            let (value, _) = min_cost_max_flow(&mut net, s, t);
            let flowless: Vec<usize> = candidates.iter().copied().filter(|&c| net.flow(c) == 0).collect();
            let used = candidates.len() - flowless.len();
            let shed = shed_arcs(&mut net, s, t, &candidates, budget);
            proptest::prop_assert_eq!(shed.used_before, used);
            proptest::prop_assert!(shed.used_after <= used);
            let into_sink: i64 = (0..nl).map(|j| net.flow(na + j)).sum();
            proptest::prop_assert_eq!(into_sink, value);
            for (i, &c) in caps.iter().enumerate() {
                proptest::prop_assert!((0..=c).contains(&net.flow(i)));
            }
            for (j, &d) in dems.iter().enumerate() {
                proptest::prop_assert!((0..=d).contains(&net.flow(na + j)));
            }
            for c in flowless { proptest::prop_assert_eq!(net.flow(c), 0); }
            // Conservation at every agent and lead: the residual of a
            // reverse arc is the flow on its added arc.
            for v in 0..na + nl {
                let mut balance = 0;
                for a in net.arcs_of(v) {
                    let r = net.rev[a] as usize;
                    if net.is_reverse(a) { balance += net.cap[a]; } else { balance -= net.cap[r]; }
                }
                proptest::prop_assert_eq!(balance, 0);
            }
        }
    }
}
