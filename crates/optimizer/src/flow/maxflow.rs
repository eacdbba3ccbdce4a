//! Dinic's maximum flow and the minimum cut it certifies.

use super::Network;
use std::collections::VecDeque;

/// Reusable buffers for level-graph phases (also used by the min-cost
/// solver on its admissible subgraph).
pub(crate) struct Phases {
    pub(crate) level: Vec<u32>,
    pub(crate) current: Vec<u32>,
    queue: VecDeque<u32>,
    path: Vec<u32>,
}

const UNSEEN: u32 = u32::MAX;

impl Phases {
    pub(crate) fn new(n: usize) -> Self {
        Phases {
            level: vec![UNSEEN; n],
            current: vec![0; n],
            queue: VecDeque::new(),
            path: Vec::new(),
        }
    }

    /// BFS levels from `s` over arcs with residual capacity that `usable`
    /// accepts. Returns whether `t` was reached.
    pub(crate) fn levels(
        &mut self,
        net: &Network,
        s: usize,
        t: usize,
        usable: &impl Fn(usize) -> bool,
    ) -> bool {
        self.level.fill(UNSEEN);
        self.level[s] = 0;
        self.queue.clear();
        self.queue.push_back(s as u32);
        while let Some(v) = self.queue.pop_front() {
            let v = v as usize;
            if v == t {
                break;
            }
            for a in net.arcs_of(v) {
                let w = net.to[a] as usize;
                if net.cap[a] > 0 && self.level[w] == UNSEEN && usable(a) {
                    self.level[w] = self.level[v] + 1;
                    self.queue.push_back(w as u32);
                }
            }
        }
        self.level[t] != UNSEEN
    }

    /// Blocking flow on the level graph: augment along shortest paths until
    /// none is left. Iterative, so deep level graphs cannot overflow the stack.
    pub(crate) fn blocking_flow(
        &mut self,
        net: &mut Network,
        s: usize,
        t: usize,
        usable: &impl Fn(usize) -> bool,
    ) -> i64 {
        for v in 0..net.nodes() {
            self.current[v] = net.first[v];
        }
        let mut total = 0i64;
        loop {
            self.path.clear();
            let mut v = s;
            let found = loop {
                if v == t {
                    break true;
                }
                let end = net.first[v + 1];
                let mut advanced = false;
                while self.current[v] < end {
                    let a = self.current[v] as usize;
                    let w = net.to[a] as usize;
                    if net.cap[a] > 0 && self.level[w] == self.level[v].wrapping_add(1) && usable(a)
                    {
                        self.path.push(a as u32);
                        v = w;
                        advanced = true;
                        break;
                    }
                    self.current[v] += 1;
                }
                if !advanced {
                    // Dead end: nothing more goes through v in this phase.
                    self.level[v] = UNSEEN;
                    match self.path.pop() {
                        None => break false,
                        Some(a) => {
                            v = net.tail(a as usize);
                            self.current[v] += 1;
                        }
                    }
                }
            };
            if !found {
                return total;
            }
            let amount = self
                .path
                .iter()
                .map(|&a| net.cap[a as usize])
                .min()
                .unwrap_or(0);
            for &a in &self.path {
                net.push(a as usize, amount);
            }
            total += amount;
        }
    }
}

/// Push a maximum flow from `s` to `t` (on top of any flow already in the
/// residual network) and return the amount added.
pub fn max_flow(net: &mut Network, s: usize, t: usize) -> i64 {
    let mut phases = Phases::new(net.nodes());
    let all = |_: usize| true;
    let mut total = 0;
    while phases.levels(net, s, t, &all) {
        total += phases.blocking_flow(net, s, t, &all);
    }
    total
}

/// Nodes reachable from `s` in the residual network: after [`max_flow`],
/// the source side of a minimum cut.
pub fn source_side(net: &Network, s: usize) -> Vec<bool> {
    let mut seen = vec![false; net.nodes()];
    let mut stack = vec![s];
    seen[s] = true;
    while let Some(v) = stack.pop() {
        for a in net.arcs_of(v) {
            let w = net.to[a] as usize;
            if net.cap[a] > 0 && !seen[w] {
                seen[w] = true;
                stack.push(w);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::super::NetworkBuilder;
    use super::*;

    #[test]
    fn classic_example() {
        // CLRS figure 26.1: max flow 23.
        let mut b = NetworkBuilder::new(6);
        for (u, v, c) in [
            (0, 1, 16),
            (0, 2, 13),
            (1, 3, 12),
            (2, 1, 4),
            (2, 4, 14),
            (3, 2, 9),
            (3, 5, 20),
            (4, 3, 7),
            (4, 5, 4),
        ] {
            b.add(u, v, c, 0);
        }
        let mut net = b.build();
        assert_eq!(max_flow(&mut net, 0, 5), 23);
        let side = source_side(&net, 0);
        assert!(side[0] && !side[5]);
    }

    #[test]
    fn long_chain_does_not_overflow_the_stack() {
        let n = 200_000;
        let mut b = NetworkBuilder::new(n);
        for v in 0..n - 1 {
            b.add(v, v + 1, 3, 0);
        }
        let mut net = b.build();
        assert_eq!(max_flow(&mut net, 0, n - 1), 3);
    }
}
