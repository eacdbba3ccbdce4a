//! The optimizer: Snapshot + planning config → Plan.
//!
//! It knows no HTTP. The core is exact network flow (`flow`, `stages`): the
//! assignment LP is a transportation problem, solved lexicographically as
//! max-flow (least shortfall), parametric max-flow (least peak utilisation)
//! and min-cost flow (fewest changes). `lp` is the same model in good_lp,
//! for side constraints and as the cross-check in tests.

mod config;
mod error;
pub mod families;
pub mod flow;
pub mod greedy;
pub mod limits;
pub mod lp;
mod planner;
mod prepare;
pub mod stages;
mod tradeoff;
pub mod whatif;

pub use config::{
    InvalidValue, PlanConfig, SolverChoice, TargetUtilisation, UnjoinedPolicy, MAX_WEIGHT,
};
pub use error::OptimizerError;
pub use planner::{plan, plan_guarded, plan_with, PlanStats, Recent, FLAP_GUARD};
pub use stages::{Instance, Pair, Ratio, Solution, Stages};
pub use tradeoff::{tradeoff, Tradeoff, TradeoffRow, LADDER_STEP};
pub use whatif::WhatIfs;
