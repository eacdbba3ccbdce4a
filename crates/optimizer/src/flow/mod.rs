//! Exact network-flow algorithms on integer capacities, written for the
//! transportation networks the optimizer builds (source → agents → leads →
//! sink), but general.
//!
//! - [`Network`]: a residual graph in compressed (CSR) form, every arc paired
//!   with its reverse.
//! - [`max_flow`]: Dinic's algorithm (E. A. Dinic, "Algorithm for solution of
//!   a problem of maximum flow in networks with power estimation", 1970):
//!   BFS level graph, then blocking flow by iterative DFS with current-arc
//!   pointers. Also gives the minimum cut ([`source_side`]).
//! - [`min_cost_max_flow`]: the primal-dual method (Ford & Fulkerson 1957;
//!   see Ahuja, Magnanti & Orlin, *Network Flows*, §9.8): Dijkstra on reduced
//!   costs to update node potentials, then a Dinic blocking flow on the
//!   admissible (zero reduced cost) arcs, repeated until the sink is
//!   unreachable. With the optimizer's 0/1 costs there are only a handful of
//!   phases, each as cheap as a max-flow.
//!
//! - [`shed_arcs`]: fewer used arcs among given candidates at the same flow,
//!   by rerouting light arcs' flow onto open, used arcs (a local search
//!   guided by a tree of residual paths, within a [`Budget`] of scanned
//!   arcs; see `reroute.rs`).
//!
//! Invariants: capacities and flows are non-negative `i64` and integral, so
//! every optimum found is integral; after `min_cost_max_flow` every residual
//! arc has non-negative reduced cost (the optimality certificate), which the
//! tests check.

mod maxflow;
mod mincost;
mod network;
mod reroute;

pub use maxflow::{max_flow, source_side};
pub use mincost::min_cost_max_flow;
pub use network::{ArcId, Network, NetworkBuilder};
pub use reroute::{shed_arcs, Budget, Shed};
