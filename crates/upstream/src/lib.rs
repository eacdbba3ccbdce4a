//! The protocol edge of rebalancer: typed async HTTP clients for the three
//! upstream APIs.
//!
//! - [`CmsClient`]: the dialer CMS. Reads a lead's user mapping (all pages of
//!   GET lead-user, merged) and writes assign/unassign changes (PUT
//!   campaignLeadUserMapping). Basic auth.
//! - [`WebexClient`]: Webex Campaign's tenant users. Bearer API key.
//! - [`ZohoClient`]: Zoho CRM assignment-threshold users (all pages of
//!   restrict_to), with the OAuth refresh-token flow and a shared token cache.
//!
//! **Architecture Invariant**: this is the only crate that knows URLs,
//! headers and wire formats; it knows nothing of snapshots, plans or
//! solvers. Secrets are `secrecy::SecretString` end to end and never appear
//! in `Debug` output, logs or error messages.
//!
//! **API Boundary**: the clients, their configs, the value types they return,
//! [`BaseUrl`], [`HttpSettings`], [`RequestBudget`], [`Stats`], [`UpstreamError`] and its
//! [`ErrorClass`], [`is_active_status`] (what Webex status strings mean), and
//! [`mask_url`], the one function every URL or connection string is shown
//! through (any password masked, whatever characters it holds).
//!
//! Every client shares the machinery in `http`: bounded body reads, retries
//! with exponential backoff and jitter on 5xx / timeouts / connection errors
//! / 429 (honouring `Retry-After` up to the backoff cap, failing fast
//! beyond it) and, for idempotent reads, on a 2xx whose body is malformed
//! or truncated (counted in [`Stats::malformed_retries`]), no redirects, `tracing` debug events per request (method,
//! path and query, status, elapsed; never headers; one debug line per
//! retry) and one warning per request that needed retries, when it ends.
//! [`series`] names the Prometheus series recorded through the `metrics`
//! facade (requests by call and outcome, their durations).
//! Text quoted from upstream bodies is scrubbed of token-like strings.
//! A [`RequestBudget`] in [`HttpSettings::budget`] rate-limits writes and
//! caps reads in flight across every client and task sharing it; a CMS
//! write that may have been applied despite failing is
//! [`UpstreamError::AmbiguousWrite`].

mod base_url;
mod cms;
mod error;
mod http;
mod lenient;
mod mask;
mod scrub;
pub mod series;
mod webex;
mod zoho;

#[cfg(test)]
mod proptests;

pub use base_url::{BaseUrl, BaseUrlError};
pub use cms::{CmsClient, CmsConfig, LeadUsers, MappingUpdate};
pub use error::{Api, ErrorClass, UpstreamError};
pub use http::{Fence, HttpSettings, RequestBudget, Stats};
pub use mask::mask_url;
pub use webex::{is_active_status, WebexClient, WebexConfig, WebexUser};
pub use zoho::{ThresholdUser, ZohoClient, ZohoConfig, ZohoUser};
