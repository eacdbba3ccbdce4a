//! The optimizer: Snapshot + planning config → Plan.
//!
//! It knows no HTTP. The core is exact network flow (`flow`, `stages`): the
//! assignment LP is a transportation problem, solved lexicographically as
//! max-flow (least shortfall), parametric max-flow (least peak utilisation)
//! and min-cost flow (fewest changes). `lp` is the same model in good_lp,
//! for side constraints and as the cross-check in tests.

pub mod flow;
pub mod lp;
pub mod stages;

pub use stages::{Instance, Pair, Ratio, Solution, Stages};
