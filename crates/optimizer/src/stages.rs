//! The three lexicographic stages on the network form of the LP.
//!
//! The LP (DESIGN.md): flows `f_ij ≥ 0` on eligible pairs, shortfall
//! `s_j ≥ 0`, peak utilisation `u`; `Σ_i f_ij + s_j = D_j`,
//! `Σ_j f_ij ≤ u·h_i`, `u ≤ 1`. Without `u` it is a transportation problem,
//! so each stage is a flow problem on source → agent (cap `u·h_i`) → lead
//! (uncapacitated pair arcs) → sink (cap `D_j`):
//!
//! 1. **Shortfall** ([`Stages::shortfall`]): a maximum flow `F*` with `u = 1`;
//!    least total shortfall is `Σ D_j − F*`.
//! 2. **Balance** ([`Stages::balance`]): the least `u*` whose max flow still
//!    reaches `F*`. Max flow as a function of `u` is the minimum over cuts of
//!    `u·H(S) + C(S)`, concave and piecewise linear, so Newton's method on
//!    cuts (Dinkelbach; Gallo, Grigoriadis & Tarjan 1989 for parametric flow)
//!    is exact: from the lower bound `u = F*/Σh`, solve a max flow; if it
//!    falls short, its minimum cut `S` gives the next lower bound
//!    `u = (F* − C(S)) / H(S)`; stop when the flow reaches `F*`. `u` is kept
//!    as an exact fraction `p/q`, and the network is scaled by `q` (agent
//!    caps `p·h_i`, lead caps `q·D_j`) so every capacity stays integral.
//! 3. **Churn** ([`Stages::churn`]): a minimum-cost maximum flow on the
//!    stage-2 network, cost 0 on current pairs and 1 per unit on new pairs.
//!    Its flow value is `q·F*` by construction, so stages 1 and 2 keep their
//!    optima exactly (tolerance zero: all arithmetic is integral).
//!
//! **A utilisation target** ([`Stages::at`]) relaxes stage 2: the agent
//! caps of stage 3 are `max(u*, X)·h_i` instead of `u*·h_i`, so the peak is
//! driven down to the target and no further, and stage 3 needs fewer new
//! pairs. Shortfall is never traded: the flow value stays `F*`. Stages 1
//! and 2 do not depend on `X` ([`Stages::base`] solves them once for a
//! whole ladder of targets).
//!
//! **Fewer new pairs**: stage 3 minimises records on new pairs; what costs
//! a write is a new *pair*. After it, [`shed_arcs`] reroutes the flow of the
//! lightest new pairs onto pairs already in use (current pairs, or new pairs
//! that carry flow anyway), at the same flow value and caps, so shortfall
//! and the peak cap are unchanged. [`Solution`] reports the count before
//! and after.

use crate::flow::{max_flow, min_cost_max_flow, shed_arcs, source_side, Budget, Network};
use std::cmp::Ordering;

/// The integer instance the stages solve: agents with capacity (headroom),
/// leads with demand, eligible pairs with a flag for the current mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    pub capacity: Vec<i64>,
    pub demand: Vec<i64>,
    pub pairs: Vec<Pair>,
}

impl Instance {
    /// Build from capacities, demands and `(agent, lead, current)` triples.
    pub fn new(
        capacity: Vec<i64>,
        demand: Vec<i64>,
        pairs: impl IntoIterator<Item = (usize, usize, bool)>,
    ) -> Instance {
        Instance {
            capacity,
            demand,
            pairs: pairs
                .into_iter()
                .map(|(agent, lead, current)| Pair {
                    agent: agent as u32,
                    lead: lead as u32,
                    current,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub agent: u32,
    pub lead: u32,
    /// The pair is in the current mapping (keeping it is free).
    pub current: bool,
}

/// An exact non-negative fraction `num/den`, `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub num: i64,
    pub den: i64,
}

impl Ratio {
    pub fn new(num: i64, den: i64) -> Ratio {
        debug_assert!(den > 0 && num >= 0);
        let g = gcd(num, den).max(1);
        Ratio {
            num: num / g,
            den: den / g,
        }
    }

    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// The fraction nearest to `x` with denominator `den` (`x ≥ 0`, finite).
    pub fn nearest(x: f64, den: i64) -> Ratio {
        Ratio::new((x * den as f64).round().max(0.0) as i64, den)
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Ratio) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ratio {
    fn cmp(&self, other: &Ratio) -> Ordering {
        (self.num as i128 * other.den as i128).cmp(&(other.num as i128 * self.den as i128))
    }
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

/// Arcs one search of the pair-count reduction may scan while the total
/// lasts: with slack near the pair (a target above `u*`) a path is found
/// within a few nodes; at a tight `u*` most attempts fail, and this bounds
/// their cost whatever the degrees.
pub const REROUTE_SEARCH: usize = 4096;
/// The reduction's searches together scan at most this many times the arcs
/// of the network they search (measured on the bench families: count and
/// time per setting in docs/performance.md); after that, each scans at
/// most [`REROUTE_SEARCH_AFTER`].
pub const REROUTE_TOTAL_FACTOR: usize = 4;
/// The least total, for small networks: a millisecond or two of searching.
pub const REROUTE_TOTAL_FLOOR: usize = 1 << 19;
/// Arcs one search may scan once the total is spent: the tree of residual
/// paths still finds the short reroutes.
pub const REROUTE_SEARCH_AFTER: usize = 64;

/// Stages 1 and 2, which every utilisation target shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    /// `F*`, the most demand the pairs can carry.
    pub max_flow: i64,
    /// Total demand `Σ D_j`.
    pub demand: i64,
    /// Least peak utilisation `u*` (0 when nothing flows).
    pub least_peak: Ratio,
    /// Max-flow solves the balance stage needed (Newton iterations).
    pub balance_iterations: u32,
}

/// Solved stages: optimum values and the stage-3 flow, scaled by `peak.den`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    /// Least total shortfall `Σ D_j − F*`.
    pub shortfall: i64,
    /// `F*`, the most demand the pairs can carry.
    pub max_flow: i64,
    /// Least peak utilisation `u*` (0 when nothing flows).
    pub least_peak: Ratio,
    /// The cap stage 3 worked under: `max(u*, target)`, or `u*` without a
    /// target. No agent's flow exceeds `peak·h_i`.
    pub peak: Ratio,
    /// Stage-3 optimum: least units of flow on new pairs under `peak`,
    /// times `peak.den` (before the pair-count reduction, which may raise
    /// it).
    pub new_pair_flow_scaled: i64,
    /// New pairs carrying flow at the stage-3 optimum.
    pub new_pairs_least_records: usize,
    /// New pairs carrying flow after the pair-count reduction.
    pub new_pairs: usize,
    /// Flow per pair, times `peak.den` (same order as `Instance::pairs`),
    /// after the pair-count reduction.
    pub flow_scaled: Vec<i64>,
    /// Max-flow solves the balance stage needed (Newton iterations).
    pub balance_iterations: u32,
}

impl Solution {
    /// The flow on pair `k` in records.
    pub fn flow(&self, k: usize) -> f64 {
        self.flow_scaled[k] as f64 / self.peak.den as f64
    }
}

/// Error for instances whose scaled capacities would overflow `i64`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the instance is too large for exact integer flows (capacity × demand overflows 64 bits)")]
pub struct Overflow;

/// Capacity of the (uncapacitated) pair arcs: above any possible flow.
const UNLIMITED: i64 = i64::MAX / 4;

struct Layout {
    agents: usize,
    leads: usize,
}

impl Layout {
    fn new(inst: &Instance) -> Layout {
        Layout {
            agents: inst.capacity.len(),
            leads: inst.demand.len(),
        }
    }
    fn source(&self) -> usize {
        self.agents + self.leads
    }
    fn sink(&self) -> usize {
        self.agents + self.leads + 1
    }
    fn nodes(&self) -> usize {
        self.agents + self.leads + 2
    }
}

/// Build source → agents (cap `p·h_i`) → leads → sink (cap `q·D_j`).
/// Arc order: agents, leads, then pairs (pair `k` is arc `A + L + k`).
fn network(inst: &Instance, p: i64, q: i64, costs: bool) -> Result<crate::flow::Network, Overflow> {
    let lay = Layout::new(inst);
    check_capacities(inst, p, q)?;
    let (source, sink) = (lay.source() as u32, lay.sink() as u32);
    let arcs = lay.agents + lay.leads + inst.pairs.len();
    // Scaled capacities are in range: checked above.
    Ok(Network::from_arcs(lay.nodes(), arcs, |emit| {
        for (i, &h) in inst.capacity.iter().enumerate() {
            emit(source, i as u32, h * p, 0);
        }
        for (j, &d) in inst.demand.iter().enumerate() {
            emit((lay.agents + j) as u32, sink, d * q, 0);
        }
        for pair in &inst.pairs {
            // Pair arcs are uncapacitated, as in the LP: then no minimum
            // cut runs through one, which the balance stage's Newton step
            // relies on.
            let cost = i8::from(costs && !pair.current);
            emit(pair.agent, lay.agents as u32 + pair.lead, UNLIMITED, cost);
        }
    }))
}

/// Whether the network scaled by `p` (agents) and `q` (leads) is in range.
/// Every flow value is at most the source's (and the sink's) total
/// capacity; keeping both below UNLIMITED keeps every sum the flow
/// algorithms form in range and no pair arc ever saturated.
fn check_capacities(inst: &Instance, p: i64, q: i64) -> Result<(), Overflow> {
    let mut out_of_source: i64 = 0;
    for &h in &inst.capacity {
        out_of_source = checked_total(out_of_source, scaled(h, p)?)?;
    }
    let mut into_sink: i64 = 0;
    for &d in &inst.demand {
        into_sink = checked_total(into_sink, scaled(d, q)?)?;
    }
    Ok(())
}

/// The network of [`network`] with the pairs `pair_of` only (pair arc `k`
/// is arc `A + L + k` and stands for pair `pair_of[k]`), lead `j`'s sink
/// arc capped at `lead_cap(j)`, every cost 0. Agent caps are `p·h_i`, in
/// range when [`check_capacities`] passed for `p`.
fn sub_network(
    inst: &Instance,
    p: i64,
    pair_of: &[usize],
    lead_cap: impl Fn(usize) -> i64,
) -> Network {
    let lay = Layout::new(inst);
    let (source, sink) = (lay.source() as u32, lay.sink() as u32);
    let arcs = lay.agents + lay.leads + pair_of.len();
    Network::from_arcs(lay.nodes(), arcs, |emit| {
        for (i, &h) in inst.capacity.iter().enumerate() {
            emit(source, i as u32, h * p, 0);
        }
        for j in 0..lay.leads {
            emit((lay.agents + j) as u32, sink, lead_cap(j), 0);
        }
        for &k in pair_of {
            let pair = &inst.pairs[k];
            emit(pair.agent, lay.agents as u32 + pair.lead, UNLIMITED, 0);
        }
    })
}

/// A flow's values on the source and sink arcs, per agent and per lead.
struct Ends {
    agents: Vec<i64>,
    leads: Vec<i64>,
}

impl Ends {
    fn of(net: &Network, lay: &Layout) -> Ends {
        Ends {
            agents: (0..lay.agents).map(|i| net.flow(i)).collect(),
            leads: (0..lay.leads).map(|j| net.flow(lay.agents + j)).collect(),
        }
    }

    /// Push this flow into `net`, an empty network of the same layout,
    /// with `pairs` giving each pair arc (builder index) its flow.
    fn load(&self, net: &mut Network, pairs: impl Iterator<Item = (usize, i64)>) {
        let arcs = self.agents.iter().chain(&self.leads).copied().enumerate();
        for (i, f) in arcs.chain(pairs) {
            if f > 0 {
                net.push(net.arc(i) as usize, f);
            }
        }
    }
}

/// The stage-3 flow (`ends`, pair flows `flows`) on a network of its open
/// arcs only: the source arcs with their capacity, the sink arcs capped at
/// their flow (no spare: the reduction gives each lead back what it had),
/// and the pairs that are current or carry flow (a new pair without flow
/// stays closed in the reduction, so its arc need not exist). On dense
/// pools that is a fifth of the pairs, and the reduction's searches scan
/// only arcs they may use. Returns the network and, per pair arc of it (in
/// order), the pair's index.
fn open_network(inst: &Instance, p: i64, ends: &Ends, flows: &[i64]) -> (Network, Vec<usize>) {
    let lay = Layout::new(inst);
    let pair_of: Vec<usize> = (0..inst.pairs.len())
        .filter(|&k| inst.pairs[k].current || flows[k] > 0)
        .collect();
    let mut open = sub_network(inst, p, &pair_of, |j| ends.leads[j]);
    let first = lay.agents + lay.leads;
    let pairs = pair_of
        .iter()
        .enumerate()
        .map(|(i, &k)| (first + i, flows[k]));
    ends.load(&mut open, pairs);
    (open, pair_of)
}

/// A first flow in one pass over `pairs` (each a pair arc's builder
/// index and the pair's index in the instance): each pair takes what its
/// agent and its lead both have left. Max-flow and min-cost flow then only
/// add what this misses; on transportation networks that is a small part
/// (measured: the greedy pass carries most of `F*`), so they run fewer,
/// shorter phases. Returns the flow value pushed.
fn greedy_fill(
    net: &mut Network,
    inst: &Instance,
    pairs: impl Iterator<Item = (usize, usize)>,
) -> i64 {
    let lay = Layout::new(inst);
    let mut total = 0;
    for (arc, k) in pairs {
        let pair = &inst.pairs[k];
        let into_agent = net.arc(pair.agent as usize) as usize;
        let out_of_lead = net.arc(lay.agents + pair.lead as usize) as usize;
        let amount = net.cap[into_agent].min(net.cap[out_of_lead]);
        if amount > 0 {
            net.push(into_agent, amount);
            net.push(net.arc(arc) as usize, amount);
            net.push(out_of_lead, amount);
            total += amount;
        }
    }
    total
}

/// Push the pair flows `flows` of a flow on the network scaled by `from`
/// (lead caps `from·D_j`) into `net`, an empty [`network`] scaled by `to`
/// whose agent caps are at least as large relative to it (a Newton step
/// only raises `u`), each rounded down to `⌊f·to/from⌋`. Rounding down
/// keeps every agent within `⌊Σf·to/from⌋ ≤ p·h_i` and every lead within
/// `to·D_j`, so the result is a flow of `net`. Returns its value.
fn load_rescaled(net: &mut Network, inst: &Instance, flows: &[i64], from: i64, to: i64) -> i64 {
    let lay = Layout::new(inst);
    let first_pair = lay.agents + lay.leads;
    let mut ends = Ends {
        agents: vec![0; lay.agents],
        leads: vec![0; lay.leads],
    };
    let mut total = 0;
    for (k, (&f, pair)) in flows.iter().zip(&inst.pairs).enumerate() {
        // f ≤ from·D_j and to·D_j are in range, so the quotient is too.
        let g = (i128::from(f) * i128::from(to) / i128::from(from)) as i64;
        if g > 0 {
            net.push(net.arc(first_pair + k) as usize, g);
            ends.agents[pair.agent as usize] += g;
            ends.leads[pair.lead as usize] += g;
            total += g;
        }
    }
    ends.load(net, std::iter::empty());
    total
}

/// Every pair of `inst`, as [`greedy_fill`] takes them on [`network`].
fn all_pairs(inst: &Instance) -> impl Iterator<Item = (usize, usize)> {
    let first = inst.capacity.len() + inst.demand.len();
    (0..inst.pairs.len()).map(move |k| (first + k, k))
}

/// `value · factor` for a capacity; negative values are refused too (an
/// instance is built from non-negative headroom and demand).
fn scaled(value: i64, factor: i64) -> Result<i64, Overflow> {
    if value < 0 {
        return Err(Overflow);
    }
    value.checked_mul(factor).ok_or(Overflow)
}

/// `total + cap`, kept below [`UNLIMITED`].
fn checked_total(total: i64, cap: i64) -> Result<i64, Overflow> {
    total
        .checked_add(cap)
        .filter(|&t| t < UNLIMITED)
        .ok_or(Overflow)
}

/// `Σ values`, kept below [`UNLIMITED`].
fn checked_sum(values: &[i64]) -> Result<i64, Overflow> {
    values.iter().try_fold(0, |t, &v| checked_total(t, v))
}

/// The stage solver for one instance.
pub struct Stages<'a> {
    inst: &'a Instance,
}

impl<'a> Stages<'a> {
    pub fn new(inst: &'a Instance) -> Self {
        Stages { inst }
    }

    /// Stage 1: `F*`.
    pub fn shortfall(&self) -> Result<i64, Overflow> {
        self.shortfall_on().map(|(carried, _)| carried)
    }

    /// Stage 1, and its network for stage 2 to reuse.
    fn shortfall_on(&self) -> Result<(i64, Network), Overflow> {
        let lay = Layout::new(self.inst);
        let mut net = network(self.inst, 1, 1, false)?;
        let greedy = greedy_fill(&mut net, self.inst, all_pairs(self.inst));
        let carried = greedy + max_flow(&mut net, lay.source(), lay.sink());
        Ok((carried, net))
    }

    /// Stages 1 and 2 on one network: `F*`, `u*`, the Newton steps and a
    /// flow reaching `F*` within `u*` (as [`Stages::balance_with_flows`]).
    pub fn shortfall_and_balance(&self) -> Result<(i64, Ratio, u32, Vec<i64>), Overflow> {
        let (carried, net) = self.shortfall_on()?;
        let (u, iterations, flows) = self.balance_on(Some(net), carried)?;
        Ok((carried, u, iterations, flows))
    }

    /// Stage 2: least `u` whose max flow reaches `target` (= `F*`), and the
    /// number of max-flow solves it took.
    pub fn balance(&self, target: i64) -> Result<(Ratio, u32), Overflow> {
        self.balance_with_flows(target)
            .map(|(u, iterations, _)| (u, iterations))
    }

    /// Stage 2, also returning a flow that reaches `target` within `u*`
    /// (pair flows scaled by `u.den`, as in [`Solution::flow_scaled`]). Any
    /// such flow will do when only loads are wanted, which saves stage 3.
    pub fn balance_with_flows(&self, target: i64) -> Result<(Ratio, u32, Vec<i64>), Overflow> {
        self.balance_on(None, target)
    }

    /// Stage 2 on `reuse`, a network of this instance's layout (any
    /// capacities and flow), when given: every Newton step resets it
    /// instead of building another.
    fn balance_on(
        &self,
        mut reuse: Option<Network>,
        target: i64,
    ) -> Result<(Ratio, u32, Vec<i64>), Overflow> {
        let lay = Layout::new(self.inst);
        let total = checked_sum(&self.inst.capacity)?;
        if target == 0 || total == 0 {
            return Ok((Ratio::new(0, 1), 0, vec![0; self.inst.pairs.len()]));
        }
        let first_pair = lay.agents + lay.leads;
        let mut u = Ratio::new(target, total);
        let mut iterations = 0;
        // The last iteration's pair flows and their scale: each Newton step
        // raises `u`, so they still fit, rescaled, under the next caps and
        // the next max flow only adds what they miss.
        let mut previous: Option<(Vec<i64>, i64)> = None;
        loop {
            iterations += 1;
            let mut net = match reuse.take() {
                Some(mut net) => {
                    check_capacities(self.inst, u.num, u.den)?;
                    net.reset(|i| self.capacity_of(i, u));
                    net
                }
                None => network(self.inst, u.num, u.den, false)?,
            };
            let warm = match previous.take() {
                Some((flows, den)) => load_rescaled(&mut net, self.inst, &flows, den, u.den),
                None => 0,
            };
            let flow = warm
                + greedy_fill(&mut net, self.inst, all_pairs(self.inst))
                + max_flow(&mut net, lay.source(), lay.sink());
            let want = target.checked_mul(u.den).ok_or(Overflow)?;
            let pairs = first_pair..first_pair + self.inst.pairs.len();
            if flow >= want {
                return Ok((u, iterations, net.into_flows(pairs)));
            }
            let flows: Vec<i64> = pairs.map(|k| net.flow(k)).collect();
            // Minimum cut S: agents outside S are cut at u·h_i, leads inside
            // S at D_j. The next lower bound makes this cut carry `target`.
            // (Sums of subsets of totals `network` checked: in range.)
            let side = source_side(&net, lay.source());
            let h_cut: i64 = (0..lay.agents)
                .filter(|&i| !side[i])
                .map(|i| self.inst.capacity[i])
                .sum();
            let d_cut: i64 = (0..lay.leads)
                .filter(|&j| side[lay.agents + j])
                .map(|j| self.inst.demand[j])
                .sum();
            debug_assert!(h_cut > 0 && d_cut < target, "a short cut must cut agents");
            let next = Ratio::new(target - d_cut, h_cut.max(1));
            debug_assert!(
                (next.num as i128) * (u.den as i128) > (u.num as i128) * (next.den as i128),
                "Newton must increase u"
            );
            previous = Some((flows, u.den));
            reuse = Some(net);
            u = next;
        }
    }

    /// Stage 3: least flow on new pairs among flows reaching `F*` within `u`.
    /// Returns the flows, their value and their cost (records on new pairs).
    pub fn churn(&self, u: Ratio) -> Result<(Vec<i64>, i64, i64), Overflow> {
        self.churn_reduced(u, false)
            .map(|(flows, value, cost, _)| (flows, value, cost))
    }

    /// Stage 3, then (with `reduce`) the pair-count reduction; also returns
    /// what the reduction did.
    fn churn_reduced(
        &self,
        u: Ratio,
        reduce: bool,
    ) -> Result<(Vec<i64>, i64, i64, crate::flow::Shed), Overflow> {
        let lay = Layout::new(self.inst);
        let (s, t) = (lay.source(), lay.sink());
        let first_pair = lay.agents + lay.leads;
        let started = std::time::Instant::now();
        check_capacities(self.inst, u.num, u.den)?;
        // The primal-dual method's first phase (distance 0) is a max flow
        // on the zero-cost arcs: the current pairs. It runs on a network of
        // those pairs alone (a fraction of the eligible ones; on the whole
        // network it was two thirds of the min-cost flow's time at 4M
        // pairs), which is then loaded into the whole network: a
        // flow of cost 0 is a least-cost flow of its value, so the
        // primal-dual method starts from it with zero potentials.
        let current: Vec<usize> = (0..self.inst.pairs.len())
            .filter(|&k| self.inst.pairs[k].current)
            .collect();
        let mut free = sub_network(self.inst, u.num, &current, |j| self.inst.demand[j] * u.den);
        let on_current = current
            .iter()
            .enumerate()
            .map(|(i, &k)| (first_pair + i, k));
        let value = greedy_fill(&mut free, self.inst, on_current) + max_flow(&mut free, s, t);
        let ends = Ends::of(&free, &lay);
        let current_flows: Vec<i64> = (0..current.len())
            .map(|i| free.flow(first_pair + i))
            .collect();
        drop(free);
        let mut net = network(self.inst, u.num, u.den, true)?;
        let on_full = current
            .iter()
            .zip(&current_flows)
            .map(|(&k, &f)| (first_pair + k, f));
        ends.load(&mut net, on_full);
        drop((current, current_flows));
        let (more, cost) = min_cost_max_flow(&mut net, s, t);
        let flow = value + more;
        let solved = started.elapsed();
        let ends = Ends::of(&net, &lay);
        let mut flows = net.into_flows(first_pair..first_pair + self.inst.pairs.len());
        let shed = if reduce {
            let (mut open, pair_of) = open_network(self.inst, u.num, &ends, &flows);
            let new_pairs: Vec<usize> = (0..pair_of.len())
                .filter(|&k| !self.inst.pairs[pair_of[k]].current)
                .map(|k| first_pair + k)
                .collect();
            let budget = Budget {
                search: REROUTE_SEARCH,
                total: (REROUTE_TOTAL_FACTOR * open.arc_slots()).max(REROUTE_TOTAL_FLOOR),
                after: REROUTE_SEARCH_AFTER,
            };
            let shed = shed_arcs(&mut open, s, t, &new_pairs, budget);
            for (k, &pair) in pair_of.iter().enumerate() {
                flows[pair] = open.flow(first_pair + k);
            }
            shed
        } else {
            crate::flow::Shed::default()
        };
        tracing::debug!(
            min_cost_ms = solved.as_secs_f64() * 1e3,
            reduce_ms = (started.elapsed() - solved).as_secs_f64() * 1e3,
            new_pairs_before = shed.used_before,
            new_pairs_after = shed.used_after,
            reduce_scanned_arcs = shed.scanned,
            "change stage"
        );
        Ok((flows, flow, cost, shed))
    }

    /// The capacity of the `i`-th arc of [`network`] scaled by `u`.
    fn capacity_of(&self, i: usize, u: Ratio) -> i64 {
        let (agents, leads) = (self.inst.capacity.len(), self.inst.demand.len());
        if i < agents {
            self.inst.capacity[i] * u.num
        } else if i < agents + leads {
            self.inst.demand[i - agents] * u.den
        } else {
            UNLIMITED
        }
    }

    /// Stages 1 and 2.
    pub fn base(&self) -> Result<Base, Overflow> {
        let (max_flow, least_peak, balance_iterations, _) = self.shortfall_and_balance()?;
        Ok(Base {
            max_flow,
            demand: checked_sum(&self.inst.demand)?,
            least_peak,
            balance_iterations,
        })
    }

    /// Stage 3 under the cap `max(u*, target)` (`u*` without a target),
    /// then the pair-count reduction, on stages 1 and 2 already solved.
    pub fn at(&self, base: &Base, target: Option<Ratio>) -> Result<Solution, Overflow> {
        let peak = match target {
            Some(x) if x > base.least_peak => x,
            _ => base.least_peak,
        };
        let (flow_scaled, flow, cost, shed) = self.churn_reduced(peak, true)?;
        debug_assert_eq!(Some(flow), base.max_flow.checked_mul(peak.den));
        Ok(Solution {
            shortfall: base.demand - base.max_flow,
            max_flow: base.max_flow,
            least_peak: base.least_peak,
            peak,
            new_pair_flow_scaled: cost,
            new_pairs_least_records: shed.used_before,
            new_pairs: shed.used_after,
            flow_scaled,
            balance_iterations: base.balance_iterations,
        })
    }

    /// All three stages at `u*`.
    pub fn solve(&self) -> Result<Solution, Overflow> {
        self.solve_at(None)
    }

    /// All three stages under a utilisation target (see [`Stages::at`]).
    pub fn solve_at(&self, target: Option<Ratio>) -> Result<Solution, Overflow> {
        self.at(&self.base()?, target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(capacity: &[i64], demand: &[i64], pairs: &[(usize, usize, bool)]) -> Instance {
        Instance::new(capacity.to_vec(), demand.to_vec(), pairs.iter().copied())
    }

    #[test]
    fn skewed_balance_needs_newton_steps() {
        // Lead 0 (demand 10) can only use agent 0 (cap 10); lead 1 (demand 2)
        // can use agents 1 and 2 (cap 10 each). u* = 1 (agent 0 is full).
        let i = inst(
            &[10, 10, 10],
            &[10, 2],
            &[(0, 0, true), (1, 1, false), (2, 1, false)],
        );
        let s = Stages::new(&i).solve().unwrap();
        assert_eq!(s.max_flow, 12);
        assert_eq!(s.shortfall, 0);
        assert_eq!(s.peak, Ratio::new(1, 1));
        assert!(s.balance_iterations >= 2);
    }

    #[test]
    fn a_chain_of_newton_steps_starts_each_from_the_last_flow_and_stays_exact() {
        // Three groups of decreasing tightness: agent 0 alone for lead 0
        // (u ≥ 9/10), agents 1–2 for lead 1 (u ≥ 12/20), agents 3–6 for
        // lead 2 (u ≥ 8/40). Newton from Σd/Σh = 29/70 needs three steps;
        // the second and third start from the rescaled flow before.
        let i = inst(
            &[10, 10, 10, 10, 10, 10, 10],
            &[9, 12, 8],
            &[
                (0, 0, true),
                (1, 1, false),
                (2, 1, false),
                (3, 2, false),
                (4, 2, false),
                (5, 2, false),
                (6, 2, false),
            ],
        );
        let stages = Stages::new(&i);
        let (u, iterations, flows) = stages.balance_with_flows(29).unwrap();
        assert_eq!(u, Ratio::new(9, 10));
        assert!(iterations >= 3, "{iterations} Newton steps");
        assert_flow_fits(&i, 29, u, &flows);
    }

    /// `flows` (scaled by `u.den`) carries `target` within every agent's
    /// `u·h_i` and every lead's demand.
    fn assert_flow_fits(i: &Instance, target: i64, u: Ratio, flows: &[i64]) {
        let mut agents = vec![0; i.capacity.len()];
        let mut leads = vec![0; i.demand.len()];
        for (p, &f) in i.pairs.iter().zip(flows) {
            assert!(f >= 0);
            agents[p.agent as usize] += f;
            leads[p.lead as usize] += f;
        }
        for (a, h) in agents.iter().zip(&i.capacity) {
            assert!(*a <= u.num * h, "an agent over u·h: {a} > {} × {h}", u.num);
        }
        for (l, d) in leads.iter().zip(&i.demand) {
            assert!(
                *l <= u.den * d,
                "a lead over its demand: {l} > {} × {d}",
                u.den
            );
        }
        assert_eq!(leads.iter().sum::<i64>(), target * u.den);
    }

    proptest::proptest! {
        /// The balance stage's flow, however many Newton steps it took
        /// (each from the last one's flow), carries `F*` within the caps
        /// of the `u*` it returns.
        #[test]
        fn the_balance_flow_fits_its_caps(
            caps in proptest::collection::vec(1i64..20, 2..8),
            dems in proptest::collection::vec(1i64..30, 1..6),
            edges in proptest::collection::vec((0usize..8, 0usize..6), 1..24),
        ) {
            let (na, nl) = (caps.len(), dems.len());
            let pairs: std::collections::BTreeSet<(usize, usize)> =
                edges.iter().map(|&(a, l)| (a % na, l % nl)).collect();
            let i = Instance::new(caps, dems, pairs.into_iter().map(|(a, l)| (a, l, false)));
            let stages = Stages::new(&i);
            let target = stages.shortfall().unwrap();
            let (u, _, flows) = stages.balance_with_flows(target).unwrap();
            assert_flow_fits(&i, target, u, &flows);
        }
    }

    #[test]
    fn balanced_split_is_fractional_and_exact() {
        // One lead of demand 3 over two agents of cap 2: u* = 3/4.
        let i = inst(&[2, 2], &[3], &[(0, 0, true), (1, 0, false)]);
        let s = Stages::new(&i).solve().unwrap();
        assert_eq!(s.peak, Ratio::new(3, 4));
        // Current pair carries its full u*·h = 1.5, the new pair the rest.
        assert_eq!(s.flow(0), 1.5);
        assert_eq!(s.flow(1), 1.5);
        assert_eq!(s.new_pair_flow_scaled as f64 / s.peak.den as f64, 1.5);
    }

    #[test]
    fn huge_capacities_are_an_overflow_error_not_a_wrap() {
        let i = inst(
            &[i64::MAX - 1, i64::MAX - 1],
            &[i64::MAX],
            &[(0, 0, true), (1, 0, false)],
        );
        assert_eq!(Stages::new(&i).solve(), Err(Overflow));
        let i = inst(&[-5], &[3], &[(0, 0, true)]);
        assert_eq!(Stages::new(&i).solve(), Err(Overflow));
        // Sums near the limit but each arc fine: still refused, not wrapped.
        let half = UNLIMITED / 2 + 1;
        let i = inst(&[half, half], &[1], &[(0, 0, true)]);
        assert_eq!(Stages::new(&i).shortfall(), Err(Overflow));
    }

    #[test]
    fn nothing_to_carry() {
        let i = inst(&[0, 0], &[5], &[(0, 0, true)]);
        let s = Stages::new(&i).solve().unwrap();
        assert_eq!((s.max_flow, s.shortfall), (0, 5));
        assert_eq!(s.peak, Ratio::new(0, 1));
    }
}
