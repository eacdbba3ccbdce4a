//! The residual graph: CSR adjacency, each arc stored next to the other arcs
//! of its tail, with `rev` pointing at its paired reverse arc.

/// Index of an arc in a [`Network`].
pub type ArcId = u32;

/// Collects arcs, then builds a [`Network`].
#[derive(Debug, Default, Clone)]
pub struct NetworkBuilder {
    nodes: usize,
    arcs: Vec<(u32, u32, i64, i8)>,
}

impl NetworkBuilder {
    pub fn new(nodes: usize) -> Self {
        NetworkBuilder {
            nodes,
            arcs: Vec::new(),
        }
    }

    pub fn with_capacity(nodes: usize, arcs: usize) -> Self {
        NetworkBuilder {
            nodes,
            arcs: Vec::with_capacity(arcs),
        }
    }

    /// Add an arc `from → to` with capacity `cap ≥ 0` and cost per unit.
    /// Returns its index in insertion order (see [`Network::arc`]).
    pub fn add(&mut self, from: usize, to: usize, cap: i64, cost: i8) -> usize {
        debug_assert!(cap >= 0 && from < self.nodes && to < self.nodes);
        self.arcs.push((from as u32, to as u32, cap, cost));
        self.arcs.len() - 1
    }

    pub fn build(self) -> Network {
        let arcs = self.arcs;
        Network::from_arcs(self.nodes, arcs.len(), |emit| {
            for &(u, v, c, w) in &arcs {
                emit(u, v, c, w);
            }
        })
    }
}

impl Network {
    /// Build a network of `nodes` nodes from `arcs` arcs that `each` emits
    /// as `(from, to, capacity, cost)`, in the same order on each of its
    /// two calls (one counts degrees, one fills): no list of arcs is kept
    /// in between, which halves the peak memory of building a large one.
    pub fn from_arcs(
        nodes: usize,
        arcs: usize,
        each: impl Fn(&mut dyn FnMut(u32, u32, i64, i8)),
    ) -> Network {
        let n = nodes;
        let mut first = vec![0u32; n + 1];
        let mut costs = false;
        each(&mut |u, v, _, w| {
            first[u as usize + 1] += 1;
            first[v as usize + 1] += 1;
            costs |= w != 0;
        });
        for v in 0..n {
            first[v + 1] += first[v];
        }
        let m2 = first[n] as usize;
        debug_assert_eq!(m2, 2 * arcs);
        let mut fill = first.clone();
        let mut to = vec![0u32; m2];
        let mut rev = vec![0u32; m2];
        let mut cap = vec![0i64; m2];
        // Max-flow networks have no costs: no array for them (8 MB at 4M
        // pairs).
        let mut cost = if costs { vec![0i8; m2] } else { Vec::new() };
        let mut reverse = vec![0u64; m2.div_ceil(64)];
        let mut forward = Vec::with_capacity(arcs);
        each(&mut |u, v, c, w| {
            debug_assert!(c >= 0 && (u as usize) < n && (v as usize) < n);
            let a = fill[u as usize];
            fill[u as usize] += 1;
            let b = fill[v as usize];
            fill[v as usize] += 1;
            to[a as usize] = v;
            rev[a as usize] = b;
            cap[a as usize] = c;
            if costs {
                cost[a as usize] = w;
                cost[b as usize] = -w;
            }
            to[b as usize] = u;
            rev[b as usize] = a;
            cap[b as usize] = 0;
            reverse[b as usize / 64] |= 1 << (b % 64);
            forward.push(a);
        });
        Network {
            first,
            to,
            rev,
            cap,
            cost,
            reverse,
            forward,
        }
    }
}

/// A residual network. `cap[a]` is the residual capacity of arc `a`.
///
/// Layout (16 bytes per arc, 17 with costs; two arcs per added arc): head
/// `to` and paired arc `rev` as `u32`, residual `cap` as `i64`, `cost` as
/// `i8` (the change stage's costs are 0 and 1; empty when every cost is 0:
/// 1 byte instead of 4 an arc is 25 MB less at 4M pairs), plus one bit per arc marking
/// reverse arcs. The flow on an added arc is
/// the residual capacity of its reverse (reverse arcs start empty), so no
/// copy of the original capacities is kept.
#[derive(Debug, Clone)]
pub struct Network {
    pub(crate) first: Vec<u32>,
    pub(crate) to: Vec<u32>,
    pub(crate) rev: Vec<u32>,
    pub(crate) cap: Vec<i64>,
    /// Per arc, or empty when every cost is 0 (see [`Network::cost`]).
    cost: Vec<i8>,
    /// Bit `a` set: arc `a` is the reverse of an added arc.
    reverse: Vec<u64>,
    forward: Vec<ArcId>,
}

impl Network {
    pub fn nodes(&self) -> usize {
        self.first.len() - 1
    }

    /// Residual arcs (two per added arc).
    pub fn arc_slots(&self) -> usize {
        self.to.len()
    }

    /// The arc id of the `i`-th arc added to the builder.
    pub fn arc(&self, i: usize) -> ArcId {
        self.forward[i]
    }

    /// Flow on the `i`-th arc added to the builder.
    pub fn flow(&self, i: usize) -> i64 {
        let a = self.forward[i] as usize;
        self.cap[self.rev[a] as usize]
    }

    /// Empty the network and give the `i`-th arc added to the builder the
    /// capacity `capacity(i)`: the same network as one built with those
    /// capacities, without building it again.
    pub fn reset(&mut self, capacity: impl Fn(usize) -> i64) {
        for (i, &a) in self.forward.iter().enumerate() {
            let a = a as usize;
            self.cap[a] = capacity(i);
            self.cap[self.rev[a] as usize] = 0;
        }
    }

    /// Cost per unit on arc `a`.
    #[inline]
    pub(crate) fn cost(&self, a: usize) -> i8 {
        self.cost.get(a).copied().unwrap_or(0)
    }

    /// The flows on the `range` of added arcs, taking the network apart
    /// first: its heads and costs are freed before the flows are
    /// allocated, so the peak is the network's alone (31 MB less at 4M
    /// pairs than reading the flows from a whole network).
    pub fn into_flows(self, range: std::ops::Range<usize>) -> Vec<i64> {
        let Network {
            first,
            to,
            rev,
            cap,
            cost,
            reverse,
            forward,
        } = self;
        drop((first, to, cost, reverse));
        forward[range]
            .iter()
            .map(|&a| cap[rev[a as usize] as usize])
            .collect()
    }

    /// Total cost of the current flow.
    pub fn total_cost(&self) -> i64 {
        (0..self.forward.len())
            .map(|i| self.flow(i) * self.cost(self.forward[i] as usize) as i64)
            .sum()
    }

    /// Whether arc `a` is the reverse of an added arc.
    #[inline]
    pub(crate) fn is_reverse(&self, a: usize) -> bool {
        self.reverse[a / 64] & (1 << (a % 64)) != 0
    }

    #[inline]
    pub(crate) fn arcs_of(&self, v: usize) -> std::ops::Range<usize> {
        self.first[v] as usize..self.first[v + 1] as usize
    }

    #[inline]
    pub(crate) fn push(&mut self, a: usize, amount: i64) {
        self.cap[a] -= amount;
        let r = self.rev[a] as usize;
        self.cap[r] += amount;
    }

    /// Close added arc `a`, which must carry no flow: it has no residual
    /// capacity either way and reads as flow 0. Returns its residual
    /// capacity, for [`Network::reopen`].
    pub(crate) fn close(&mut self, a: usize) -> i64 {
        debug_assert_eq!(
            self.cap[self.rev[a] as usize], 0,
            "closing an arc with flow"
        );
        std::mem::take(&mut self.cap[a])
    }

    /// Reopen a closed arc with `capacity` (and no flow).
    pub(crate) fn reopen(&mut self, a: usize, capacity: i64) {
        self.cap[a] = capacity;
    }

    /// The added arc `u → v`, found among `v`'s arcs (cheap when `u` has
    /// many arcs and `v` few, as for the source).
    pub(crate) fn arc_into(&self, u: usize, v: usize) -> Option<usize> {
        self.arcs_of(v)
            .filter(|&b| self.to[b] as usize == u && self.is_reverse(b))
            .map(|b| self.rev[b] as usize)
            .next()
    }

    /// The added arc `u → v`, found among `u`'s arcs.
    pub(crate) fn arc_out(&self, u: usize, v: usize) -> Option<usize> {
        self.arcs_of(u)
            .find(|&a| self.to[a] as usize == v && !self.is_reverse(a))
    }

    /// Tail of arc `a` (the head of its reverse).
    #[inline]
    pub(crate) fn tail(&self, a: usize) -> usize {
        self.to[self.rev[a] as usize] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(caps: &[i64]) -> Network {
        let mut b = NetworkBuilder::new(4);
        for (k, &(u, v)) in [(0, 1), (0, 2), (1, 3), (2, 3), (1, 2)].iter().enumerate() {
            b.add(u, v, caps[k], 0);
        }
        b.build()
    }

    #[test]
    fn into_flows_reads_the_flows_of_the_range() {
        let mut net = build(&[5, 4, 3, 6, 2]);
        crate::flow::max_flow(&mut net, 0, 3);
        let each: Vec<i64> = (1..4).map(|i| net.flow(i)).collect();
        assert!(each.iter().any(|&f| f > 0), "the test needs a flow");
        assert_eq!(net.into_flows(1..4), each);
    }

    #[test]
    fn a_reset_network_is_the_network_built_with_those_capacities() {
        let mut net = build(&[5, 4, 3, 6, 2]);
        crate::flow::max_flow(&mut net, 0, 3);
        assert!(net.flow(0) > 0, "the test needs a flow to clear");
        let caps = [7, 1, 9, 2, 8];
        net.reset(|i| caps[i]);
        let fresh = build(&caps);
        assert_eq!(net.cap, fresh.cap);
        assert_eq!(net.to, fresh.to);
        assert_eq!(net.rev, fresh.rev);
    }
}
