//! The Prometheus series this crate records, through the `metrics` facade
//! (whatever recorder the binary installs; none: nothing is kept):
//!
//! - `rebalancer_upstream_requests_total{api, outcome}`: every attempt sent,
//!   counted when it ends. `outcome` is `ok`, `retried` (it failed and
//!   another attempt follows), or how a last attempt failed: `4xx`, `5xx`,
//!   `timeout`, `malformed` (a 2xx body we cannot use), `transport` (no
//!   reply: connection refused or reset, TLS), `redirect`.
//! - `rebalancer_upstream_request_duration_seconds{api}` (histogram): each
//!   attempt, from sending to the end of its body.
//!
//! `api` names the call, not the host: `cms_get`, `cms_put`,
//! `webex_users`, `zoho_restrict_to`, `zoho_token`. [`describe`] gives
//! every series its HELP text and registers each `api` × `outcome` at 0, so
//! a scrape before the first request already shows them.

use crate::error::{Api, UpstreamError};

/// Attempts sent, by call and outcome.
pub const REQUESTS: &str = "rebalancer_upstream_requests_total";
/// Seconds per attempt, by call.
pub const DURATION: &str = "rebalancer_upstream_request_duration_seconds";

/// Every value of the `api` label.
pub const APIS: [&str; 5] = [
    "cms_get",
    "cms_put",
    "webex_users",
    "zoho_restrict_to",
    "zoho_token",
];

/// Every value of the `outcome` label.
pub const OUTCOMES: [&str; 8] = [
    "ok",
    "retried",
    "4xx",
    "5xx",
    "timeout",
    "malformed",
    "transport",
    "redirect",
];

/// HELP texts, and every `api` × `outcome` series at 0.
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        "Upstream HTTP attempts, by call (api) and how each ended (outcome: ok, retried, or the last attempt's failure: 4xx, 5xx, timeout, malformed, transport, redirect)."
    );
    metrics::describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "Time of each upstream HTTP attempt, from sending to the end of its body, by call (api)."
    );
    for api in APIS {
        for outcome in OUTCOMES {
            metrics::counter!(REQUESTS, "api" => api, "outcome" => outcome).absolute(0);
        }
    }
}

/// The `api` label of a request to `api`; `write` for the CMS PUT.
pub(crate) fn api_label(api: Api, write: bool) -> &'static str {
    match api {
        Api::Cms if write => "cms_put",
        Api::Cms => "cms_get",
        Api::Webex => "webex_users",
        Api::Zoho => "zoho_restrict_to",
        Api::ZohoAccounts => "zoho_token",
    }
}

/// The `outcome` label of an attempt that failed with `e` and is not
/// retried.
pub(crate) fn failure_label(e: &UpstreamError) -> &'static str {
    let by_status = |status: u16| match status {
        300..=399 => "redirect",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "malformed",
    };
    match e {
        UpstreamError::Timeout { .. } => "timeout",
        UpstreamError::Transport { .. } | UpstreamError::Config { .. } => "transport",
        UpstreamError::Redirected { .. } => "redirect",
        UpstreamError::Malformed { .. }
        | UpstreamError::BodyTooLarge { .. }
        | UpstreamError::PagingStalled { .. } => "malformed",
        UpstreamError::Server { status, .. }
        | UpstreamError::Zoho { status, .. }
        | UpstreamError::UnexpectedStatus { status, .. } => by_status(*status),
        UpstreamError::AmbiguousWrite { .. } => "5xx",
        UpstreamError::Unauthorized { .. }
        | UpstreamError::Forbidden { .. }
        | UpstreamError::NotFound { .. }
        | UpstreamError::BadRequest { .. }
        | UpstreamError::Throttled { .. }
        | UpstreamError::RetryAfterTooLong { .. }
        | UpstreamError::TokenExpired { .. }
        | UpstreamError::WebexFailure { .. }
        | UpstreamError::ZohoAuth { .. }
        | UpstreamError::Fenced { .. } => "4xx",
    }
}

/// Count one ended attempt.
pub(crate) fn count(api: &'static str, outcome: &'static str) {
    metrics::counter!(REQUESTS, "api" => api, "outcome" => outcome).increment(1);
}

/// Record one attempt's time.
pub(crate) fn time(api: &'static str, seconds: f64) {
    metrics::histogram!(DURATION, "api" => api).record(seconds);
}
