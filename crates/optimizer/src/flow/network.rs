//! The residual graph: CSR adjacency, each arc stored next to the other arcs
//! of its tail, with `rev` pointing at its paired reverse arc.

/// Index of an arc in a [`Network`].
pub type ArcId = u32;

/// Collects arcs, then builds a [`Network`].
#[derive(Debug, Default, Clone)]
pub struct NetworkBuilder {
    nodes: usize,
    arcs: Vec<(u32, u32, i64, i64)>,
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
    pub fn add(&mut self, from: usize, to: usize, cap: i64, cost: i64) -> usize {
        debug_assert!(cap >= 0 && from < self.nodes && to < self.nodes);
        self.arcs.push((from as u32, to as u32, cap, cost));
        self.arcs.len() - 1
    }

    pub fn build(self) -> Network {
        let n = self.nodes;
        let mut first = vec![0u32; n + 1];
        for &(u, v, _, _) in &self.arcs {
            first[u as usize + 1] += 1;
            first[v as usize + 1] += 1;
        }
        for v in 0..n {
            first[v + 1] += first[v];
        }
        let m2 = first[n] as usize;
        let mut fill = first.clone();
        let mut to = vec![0u32; m2];
        let mut rev = vec![0u32; m2];
        let mut cap = vec![0i64; m2];
        let mut cost = vec![0i64; m2];
        let mut forward = Vec::with_capacity(self.arcs.len());
        for &(u, v, c, w) in &self.arcs {
            let a = fill[u as usize];
            fill[u as usize] += 1;
            let b = fill[v as usize];
            fill[v as usize] += 1;
            to[a as usize] = v;
            rev[a as usize] = b;
            cap[a as usize] = c;
            cost[a as usize] = w;
            to[b as usize] = u;
            rev[b as usize] = a;
            cap[b as usize] = 0;
            cost[b as usize] = -w;
            forward.push(a);
        }
        let original = cap.clone();
        Network {
            first,
            to,
            rev,
            cap,
            original,
            cost,
            forward,
        }
    }
}

/// A residual network. `cap[a]` is the residual capacity of arc `a`.
#[derive(Debug, Clone)]
pub struct Network {
    pub(crate) first: Vec<u32>,
    pub(crate) to: Vec<u32>,
    pub(crate) rev: Vec<u32>,
    pub(crate) cap: Vec<i64>,
    original: Vec<i64>,
    pub(crate) cost: Vec<i64>,
    forward: Vec<ArcId>,
}

impl Network {
    pub fn nodes(&self) -> usize {
        self.first.len() - 1
    }

    /// The arc id of the `i`-th arc added to the builder.
    pub fn arc(&self, i: usize) -> ArcId {
        self.forward[i]
    }

    /// Flow on the `i`-th arc added to the builder.
    pub fn flow(&self, i: usize) -> i64 {
        let a = self.forward[i] as usize;
        self.original[a] - self.cap[a]
    }

    /// Total cost of the current flow.
    pub fn total_cost(&self) -> i64 {
        (0..self.forward.len())
            .map(|i| self.flow(i) * self.cost[self.forward[i] as usize])
            .sum()
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

    /// Close arc `a`, which must carry no flow: it has no residual capacity
    /// either way and reads as flow 0. Returns its capacity, for
    /// [`Network::reopen`].
    pub(crate) fn close(&mut self, a: usize) -> i64 {
        debug_assert_eq!(self.cap[a], self.original[a], "closing an arc with flow");
        let capacity = self.original[a];
        self.original[a] = 0;
        self.cap[a] = 0;
        capacity
    }

    /// Reopen a closed arc with `capacity` (and no flow).
    pub(crate) fn reopen(&mut self, a: usize, capacity: i64) {
        self.original[a] = capacity;
        self.cap[a] = capacity;
    }

    /// Capacity arc `a` was built with (0 for reverse and closed arcs).
    pub(crate) fn original_capacity(&self, a: usize) -> i64 {
        self.original[a]
    }

    /// The open forward arc `u → v`, found among `v`'s arcs (cheap when `u`
    /// has many arcs and `v` few, as for the source).
    pub(crate) fn arc_into(&self, u: usize, v: usize) -> Option<usize> {
        self.arcs_of(v)
            .filter(|&b| self.to[b] as usize == u)
            .map(|b| self.rev[b] as usize)
            .find(|&a| self.original[a] > 0)
    }

    /// The open forward arc `u → v`, found among `u`'s arcs.
    pub(crate) fn arc_out(&self, u: usize, v: usize) -> Option<usize> {
        self.arcs_of(u)
            .find(|&a| self.to[a] as usize == v && self.original[a] > 0)
    }

    /// Tail of arc `a` (the head of its reverse).
    #[inline]
    pub(crate) fn tail(&self, a: usize) -> usize {
        self.to[self.rev[a] as usize] as usize
    }
}
