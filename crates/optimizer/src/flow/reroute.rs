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
//!    paths that use only open arcs. If all of `f` comes back, the arc is
//!    gone; otherwise every push of the attempt is undone and the arc
//!    reopened.
//!
//! Finding those paths is the whole cost. A pass first grows one
//! breadth-first **tree of residual paths from `s`** (`Tree`, O(arcs)); an
//! attempt then searches backwards from `head` only until it meets a node
//! whose tree path is still intact (checked arc by arc: earlier pushes may
//! have used it up) or a node with residual capacity from `s`. On the pools
//! this is built for, the tree reaches most nodes, so a search usually ends
//! within a few nodes of `head` instead of crossing the network; the path
//! it found is grafted onto the tree, so the tree follows the flow. A
//! search still scans a bounded number of arcs ([`Budget`]).
//!
//! Each accepted attempt keeps the flow value, every capacity (so the
//! stages' shortfall and peak cap), and the flow into every node adjacent to
//! `t`; it only moves flow between open arcs. The result is deterministic
//! (candidate order, tree and search order are fixed).

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
    /// Arcs the searches scanned, all attempts together.
    pub scanned: usize,
}

/// How much searching [`shed_arcs`] may do: one search scans at most
/// `search` arcs until all searches together have scanned `total`, then at
/// most `after`. Arcs, not seconds, so the result does not depend on the
/// machine; `total` in proportion to the network keeps the whole reduction
/// within a small multiple of one pass over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub search: usize,
    pub total: usize,
    pub after: usize,
}

impl Budget {
    /// The same limit for every search, with no total.
    pub fn per_search(arcs: usize) -> Budget {
        Budget {
            search: arcs,
            total: usize::MAX,
            after: arcs,
        }
    }
}

/// Reroute flow off as many `candidates` (builder indices of arcs whose
/// tail is fed by `s` and whose head feeds `t`) as possible; see the module
/// doc and [`Budget`].
pub fn shed_arcs(
    net: &mut Network,
    s: usize,
    t: usize,
    candidates: &[usize],
    budget: Budget,
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
    let mut search = Search::new(net.nodes(), s, t);
    let mut tree = Tree::new(net.nodes());
    let mut attempts = 0;
    // Passes, lightest arc first, while a pass removes at least 1 % of the
    // used arcs: a reroute can make room for an arc an earlier pass could
    // not move.
    for _ in 0..MAX_PASSES {
        let mut order: Vec<(i64, usize)> = used.iter().map(|&c| (net.flow(c), c)).collect();
        order.sort_unstable();
        let was = used.len();
        tree.grow(net, s, t);
        for &(_, c) in &order {
            let a = net.arc(c) as usize;
            let f = net.flow(c);
            if f > 0 {
                attempts += 1;
                let limit = if search.scanned < budget.total {
                    budget.search
                } else {
                    budget.after
                };
                search.reroute(net, a, f, limit, &mut tree);
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
    Shed {
        used_before,
        used_after: used.len(),
        attempts,
        scanned: search.scanned,
    }
}

/// Scratch space of the backward searches, reused across attempts.
struct Search {
    /// The network's source and sink.
    s: usize,
    t: usize,
    /// `seen[v] == epoch`: visited in the current search.
    seen: Vec<u32>,
    epoch: u32,
    /// The residual arc `v → w` by which `v` reaches the search's start.
    next_arc: Vec<u32>,
    queue: Vec<u32>,
    /// Pushes of the current attempt, to undo it: (arc, amount).
    log: Vec<(usize, i64)>,
    /// Arcs scanned by every search so far.
    scanned: usize,
}

impl Search {
    fn new(n: usize, s: usize, t: usize) -> Search {
        Search {
            s,
            t,
            seen: vec![0; n],
            epoch: 0,
            next_arc: vec![0; n],
            queue: Vec::new(),
            log: Vec::new(),
            scanned: 0,
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
        a: usize,
        f: i64,
        budget: usize,
        tree: &mut Tree,
    ) -> bool {
        let (s, t) = (self.s, self.t);
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
            let Some(start) = self.find(net, head, budget, tree) else {
                break;
            };
            // Path: s → … → start → … → head → t; the first part through
            // the tree or one arc from `s`, the rest along `next_arc`.
            let (node, mut pushed) = match start {
                Start::Source { node, arc } => (node, net.cap[arc]),
                Start::Tree { node, room } => (node, room),
            };
            pushed = pushed.min(need).min(net.cap[out_of_head]);
            let mut v = node;
            while v != head {
                let arc = self.next_arc[v] as usize;
                pushed = pushed.min(net.cap[arc]);
                v = net.to[arc] as usize;
            }
            debug_assert!(pushed > 0);
            match start {
                Start::Source { arc, .. } => self.push(net, arc, pushed),
                Start::Tree { .. } => {
                    let mut x = node;
                    while x != s {
                        let arc = tree.parent[x] as usize;
                        self.push(net, arc, pushed);
                        x = net.tail(arc);
                    }
                }
            }
            let mut v = node;
            while v != head {
                let arc = self.next_arc[v] as usize;
                self.push(net, arc, pushed);
                v = net.to[arc] as usize;
                if let Start::Tree { .. } = start {
                    tree.graft(v, arc);
                }
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

    /// Breadth-first search backwards from `head` for where a path from
    /// `s` can start: a node whose tree path is intact and avoids the
    /// nodes this search has seen ([`Start::Tree`]; `head` itself when its
    /// own tree path is intact), or a node with residual capacity from `s`
    /// ([`Start::Source`]). `None` once the nodes taken from the queue
    /// have `budget` arcs. Paths never pass through `t`; `next_arc` leads
    /// from the start to `head`.
    fn find(
        &mut self,
        net: &Network,
        head: usize,
        budget: usize,
        tree: &mut Tree,
    ) -> Option<Start> {
        let (s, t) = (self.s, self.t);
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.seen.fill(0);
            self.epoch = 1;
        }
        if let Some(room) = tree.intact(net, s, head, &self.seen, self.epoch) {
            return Some(Start::Tree { node: head, room });
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
            self.scanned += net.arcs_of(x).len();
            for b in net.arcs_of(x) {
                let y = net.to[b] as usize;
                let into_x = net.rev[b] as usize;
                if net.cap[into_x] <= 0 || y == t || self.seen[y] == self.epoch {
                    continue;
                }
                if y == s {
                    return Some(Start::Source {
                        node: x,
                        arc: into_x,
                    });
                }
                self.next_arc[y] = into_x as u32;
                if let Some(room) = tree.intact(net, s, y, &self.seen, self.epoch) {
                    return Some(Start::Tree { node: y, room });
                }
                self.seen[y] = self.epoch;
                self.queue.push(y as u32);
            }
        }
        None
    }
}

/// Where an augmenting path found by [`Search::find`] starts.
enum Start {
    /// At `node`, fed by `s` through `arc`.
    Source { node: usize, arc: usize },
    /// At `node`, reached by its tree path, which has `room` left.
    Tree { node: usize, room: i64 },
}

/// A breadth-first tree of residual paths from `s` (never through `t`),
/// grown once per pass. Pushes wear it out: a path is checked arc by arc
/// before use ([`Tree::intact`]), a broken link takes its node out, and
/// the paths searches find are grafted on ([`Tree::graft`]). Parent links
/// never form a cycle: a node is only linked under a node whose path to
/// `s` avoids it.
struct Tree {
    /// `grown[v] == epoch`: `v` is in the tree.
    grown: Vec<u32>,
    epoch: u32,
    /// The residual arc by which the tree reaches `v`.
    parent: Vec<u32>,
    queue: Vec<u32>,
}

impl Tree {
    fn new(n: usize) -> Tree {
        Tree {
            grown: vec![0; n],
            epoch: 0,
            parent: vec![0; n],
            queue: Vec::new(),
        }
    }

    fn grow(&mut self, net: &Network, s: usize, t: usize) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.grown.fill(0);
            self.epoch = 1;
        }
        let out = self.epoch.wrapping_sub(1);
        self.queue.clear();
        self.queue.push(s as u32);
        self.grown[s] = self.epoch;
        self.grown[t] = self.epoch;
        let mut at = 0;
        while at < self.queue.len() {
            let x = self.queue[at] as usize;
            at += 1;
            for a in net.arcs_of(x) {
                let y = net.to[a] as usize;
                if net.cap[a] > 0 && self.grown[y] != self.epoch {
                    self.grown[y] = self.epoch;
                    self.parent[y] = a as u32;
                    self.queue.push(y as u32);
                }
            }
        }
        // `s` and `t` were marked only to keep them out.
        self.grown[s] = out;
        self.grown[t] = out;
    }

    /// The residual capacity of `v`'s tree path from `s`, when every link
    /// of it has some and it avoids the nodes `seen` in the current search
    /// (`seen[x] == epoch`). A node whose link is broken leaves the tree.
    fn intact(
        &mut self,
        net: &Network,
        s: usize,
        v: usize,
        seen: &[u32],
        epoch: u32,
    ) -> Option<i64> {
        let mut room = i64::MAX;
        let mut x = v;
        while x != s {
            if self.grown[x] != self.epoch || (x != v && seen[x] == epoch) {
                return None;
            }
            let arc = self.parent[x] as usize;
            if net.cap[arc] <= 0 {
                self.grown[x] = self.epoch.wrapping_sub(1);
                return None;
            }
            room = room.min(net.cap[arc]);
            x = net.tail(arc);
        }
        Some(room)
    }

    /// Link `w` under the tail of `arc` (whose path avoids `w`).
    fn graft(&mut self, w: usize, arc: usize) {
        self.parent[w] = arc as u32;
        self.grown[w] = self.epoch;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{min_cost_max_flow, NetworkBuilder};
    use super::*;

    /// A network of `nodes` nodes with `arcs` (from, to, capacity, flow),
    /// each carrying its flow; arc `k` is the `k`-th of the list.
    fn with_flows(nodes: usize, arcs: &[(usize, usize, i64, i64)]) -> Network {
        let mut b = NetworkBuilder::new(nodes);
        for &(from, to, cap, _) in arcs {
            b.add(from, to, cap, 0);
        }
        let mut net = b.build();
        for (k, &(_, _, _, flow)) in arcs.iter().enumerate() {
            net.push(net.arc(k) as usize, flow);
        }
        net
    }

    #[test]
    fn a_light_new_arc_moves_onto_a_used_one() {
        // s=0, agents 1,2, lead 3, t=4. Agent 1 feeds lead 3 on a used arc
        // and has slack; agent 2's new arc (3) carries 1 unit agent 1 can
        // take.
        let arcs = [
            (0, 1, 10, 5),
            (0, 2, 10, 1),
            (1, 3, 100, 5),
            (2, 3, 100, 1),
            (3, 4, 6, 6),
        ];
        let mut net = with_flows(5, &arcs);
        let shed = shed_arcs(&mut net, 0, 4, &[3], Budget::per_search(100));
        assert_eq!(
            (shed.used_before, shed.used_after, shed.attempts),
            (1, 0, 1)
        );
        let flows: Vec<i64> = (0..5).map(|k| net.flow(k)).collect();
        assert_eq!(flows, vec![6, 0, 6, 0, 6]);
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
        let shed = shed_arcs(&mut net, 0, 4, &[new], Budget::per_search(100));
        assert_eq!((shed.used_before, shed.used_after), (1, 1));
        let after: Vec<i64> = (0..5).map(|k| net.flow(k)).collect();
        assert_eq!(before, after);
        assert_eq!((net.flow(used), net.flow(new)), (5, 1));
    }

    #[test]
    fn the_tree_of_residual_paths_finds_a_reroute_without_searching() {
        // s=0, agents 1..=3, leads 4 and 5, t=6. Agent 1 has slack and
        // feeds lead 4 with agent 2; agent 2 may also feed lead 5. The
        // light new arc 3 → 5 (arc 6) can go: 1 takes over 2's share of
        // lead 4 and 2 moves it to lead 5. No search may scan an arc: only
        // the tree (s → 1 → 4 → 2 → 5) can find that.
        let arcs = [
            (0, 1, 10, 5),
            (0, 2, 5, 5),
            (0, 3, 2, 2),
            (1, 4, 100, 5),
            (2, 4, 100, 5),
            (2, 5, 100, 0),
            (3, 5, 100, 2),
            (4, 6, 10, 10),
            (5, 6, 2, 2),
        ];
        let mut net = with_flows(7, &arcs);
        let shed = shed_arcs(&mut net, 0, 6, &[6], Budget::per_search(0));
        assert_eq!((shed.used_after, shed.scanned), (0, 0));
        let flows: Vec<i64> = (3..7).map(|k| net.flow(k)).collect();
        assert_eq!(flows, vec![7, 3, 2, 0]);
    }

    #[test]
    fn searches_scan_the_larger_budget_only_until_the_total_is_spent() {
        // s=0, agents 1 and 2 (both full), leads 3 and 4, t=5. The new arc
        // 1 → 3 (arc 2) can go only by a cycle no tree from s holds
        // (nothing has slack): 1 takes lead 4 from agent 2, which moves to
        // lead 3.
        let arcs = [
            (0, 1, 2, 2),
            (0, 2, 1, 1),
            (1, 3, 100, 1),
            (1, 4, 100, 1),
            (2, 4, 100, 1),
            (2, 3, 100, 0),
            (3, 5, 1, 1),
            (4, 5, 2, 2),
        ];
        let spent = Budget {
            search: 100,
            total: 0,
            after: 0,
        };
        let mut net = with_flows(6, &arcs);
        let shed = shed_arcs(&mut net, 0, 5, &[2], spent);
        assert_eq!(
            (shed.used_after, shed.scanned),
            (1, 0),
            "the total was spent"
        );
        let mut net = with_flows(6, &arcs);
        let shed = shed_arcs(
            &mut net,
            0,
            5,
            &[2],
            Budget {
                total: 1000,
                ..spent
            },
        );
        assert_eq!(
            shed.used_after, 0,
            "within the total, the search finds the cycle"
        );
        assert!(shed.scanned > 0);
        assert_eq!(net.flow(2), 0);
    }

    proptest::proptest! {
        /// Shedding keeps the flow value and every source and sink arc's
        /// flow within capacity, never uses a closed (flowless) candidate,
        /// and never raises the number of used candidates.
        #[test]
        fn shedding_keeps_flow_and_capacities(
            caps in proptest::collection::vec(0i64..20, 2..8),
            dems in proptest::collection::vec(0i64..20, 1..6),
            edges in proptest::collection::vec((0usize..8, 0usize..6, 0i8..2), 1..30),
            (search, total, after) in (0usize..50, 0usize..200, 0usize..50),
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
            let shed = shed_arcs(&mut net, s, t, &candidates, Budget { search, total, after });
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
