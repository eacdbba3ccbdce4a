//! The shared vocabulary of rebalancer.
//!
//! Everything the pipeline passes between stages lives here: the [`Snapshot`]
//! the fetcher builds (campaigns → leads → assigned set and eligible pool,
//! agents with Webex status and Zoho threshold counts, join problems), and the
//! ids that name things. The crate knows nothing about HTTP, solvers or the
//! wire formats of the upstream systems; it is plain data with serde JSON and
//! a schema version. The [`Plan`] the optimizer makes lives here too.
//!
//! Determinism: every collection in a snapshot is kept sorted (see
//! [`Snapshot::normalize`]), so the same inputs serialise to the same bytes.

mod error;
mod ids;
pub mod io;
mod plan;
mod snapshot;

pub use error::ModelError;
pub use ids::{AgentId, LeadKey};
pub use io::{replace_atomic, write_atomic, MAX_FILE_BYTES};
pub use plan::{
    Action, AgentPlan, Balance, Blocked, CapReport, Change, Deferred, FlapReport, LeadPlan,
    Metrics, NewPairs, Objectives, Plan, Reason, Summary, TargetSystem, PLAN_SCHEMA_VERSION,
};
pub use snapshot::{
    Agent, Campaign, Lead, Problem, ProblemKind, Snapshot, SnapshotSource, ThresholdEntry,
    WebexStatus, ZohoIdentity, SNAPSHOT_SCHEMA_VERSION,
};
