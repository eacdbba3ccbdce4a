//! Reads the three upstream systems and builds a [`Snapshot`].
//!
//! The fetcher drives the typed clients of `rebalancer-upstream` with bounded
//! concurrency (CMS lead mappings, one call chain per configured lead; Webex
//! users; Zoho threshold users per threshold id), then joins the three views
//! of an agent into one (`join`), and returns a normalised snapshot plus a
//! small report of what the fetch cost. It never writes upstream and knows
//! nothing about solvers.

mod error;
mod fetch;
mod join;

pub use error::FetchError;
pub use fetch::{fetch, CampaignSpec, Clients, FetchOptions, FetchReport};
pub use join::{is_active_status, join, IdentityMap, IdentityOverride, JoinInput, LeadMapping};
