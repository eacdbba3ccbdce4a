//! Reads the three upstream systems and builds a [`Snapshot`].
//!
//! The fetcher drives the typed clients of `rebalancer-upstream` with bounded
//! concurrency (CMS lead mappings, one call chain per configured lead; Webex
//! users; Zoho threshold users per threshold id), then joins the three views
//! of an agent into one (`join`), and returns a normalised snapshot plus a
//! small report of what the fetch cost. It never writes upstream and knows
//! nothing about solvers. A fetch has a deadline, refuses a Webex answer
//! that knows too few of the CMS agents, and publishes its progress
//! ([`FetchProgress`]).

mod error;
mod fetch;
mod join;

pub use error::FetchError;
pub use fetch::{
    fetch, CampaignSpec, Clients, FetchOptions, FetchProgress, FetchReport, DEFAULT_DEADLINE,
    DEFAULT_MIN_WEBEX_COVERAGE,
};
pub use join::{join, IdentityMap, IdentityOverride, JoinInput, LeadMapping};
/// What Webex status strings mean is decided in `upstream`; re-exported for
/// callers of the fetcher.
pub use rebalancer_upstream::is_active_status;
