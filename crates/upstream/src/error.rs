//! The one error type of this crate, [`UpstreamError`]; [`Api`], the name
//! of the upstream service a failure came from; and [`ErrorClass`], what
//! kind of failure it is (for exit codes), decided here because only this
//! crate knows what each API's status and error codes mean.
//!
//! Every message names the API, the endpoint (method and path, including the
//! lead id / page / threshold id carried in the query or path) and what to do
//! about it. No message ever contains a password, API key, refresh token or
//! access token: endpoints never carry secrets (they travel in headers and
//! form bodies only) and token-endpoint bodies are never quoted.

use std::fmt;
use std::time::Duration;

/// What kind of failure an error is; the binary maps classes to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Credentials or permissions were refused (fix the keys or grants).
    Auth,
    /// The upstream answered something we cannot use (404, 400, malformed
    /// or implausible data, paging that makes no progress).
    Data,
    /// The upstream was unreachable, too slow, throttled or failing (5xx);
    /// running again later may succeed.
    Unavailable,
    /// Our configuration is wrong (bad URL, page size, CA file, a redirect
    /// away from the configured base URL).
    Config,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::Auth => "authentication or permission",
            ErrorClass::Data => "unusable upstream data",
            ErrorClass::Unavailable => "upstream unavailable",
            ErrorClass::Config => "configuration",
        })
    }
}

/// Which upstream service a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The dialer CMS (lead-user mapping).
    Cms,
    /// Webex Campaign (tenant users).
    Webex,
    /// Zoho CRM REST API (assignment thresholds).
    Zoho,
    /// Zoho accounts server (OAuth token endpoint).
    ZohoAccounts,
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::Cms => "CMS",
            Api::Webex => "Webex Campaign",
            Api::Zoho => "Zoho CRM",
            Api::ZohoAccounts => "Zoho accounts",
        })
    }
}

impl Api {
    /// The configuration keys that hold this API's base URL.
    fn base_url_key(self) -> &'static str {
        match self {
            Api::Cms => "cms.base_url",
            Api::Webex => "webex.base_url",
            Api::Zoho => "zoho.api_domain",
            Api::ZohoAccounts => "zoho.accounts_url",
        }
    }

    /// What to check when this API rejects our credentials.
    fn credential_hint(self) -> &'static str {
        match self {
            Api::Cms => "check cms.username and cms.password (HTTP Basic auth)",
            Api::Webex => "check webex.api_key (a Webex Campaign API key for this tenant)",
            Api::Zoho | Api::ZohoAccounts => {
                "check zoho.client_id, zoho.client_secret and zoho.refresh_token, and that \
                 zoho.accounts_url and zoho.api_domain belong to the same Zoho data center"
            }
        }
    }
}

/// Everything that can go wrong talking to an upstream API.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The client could not be built from its configuration.
    #[error("invalid {what}: {detail}")]
    Config { what: String, detail: String },

    /// HTTP 401: the credentials were rejected.
    #[error("{api} {endpoint}: authentication failed (HTTP 401): {detail}; fix: {hint}", hint = .api.credential_hint())]
    Unauthorized {
        api: Api,
        endpoint: String,
        detail: String,
    },

    /// HTTP 403: the credentials are valid but lack permission.
    #[error("{api} {endpoint}: permission denied (HTTP 403): {detail}; fix: grant the configured {api} account access to this resource (ask the {api} administrator)")]
    Forbidden {
        api: Api,
        endpoint: String,
        detail: String,
    },

    /// HTTP 404: the object (lead, campaign, process, ...) does not exist.
    #[error("{api} {endpoint}: not found (HTTP 404{code}): {message}; fix: check that the ids in the request exist in {api} and that {key} points at the right server", code = code_suffix(.code), key = .api.base_url_key())]
    NotFound {
        api: Api,
        endpoint: String,
        code: Option<String>,
        message: String,
    },

    /// HTTP 400: the request was refused as invalid.
    #[error("{api} {endpoint}: request refused as invalid (HTTP 400{code}): {message}; fix: check the ids and parameters configured for this request", code = code_suffix(.code))]
    BadRequest {
        api: Api,
        endpoint: String,
        code: Option<String>,
        message: String,
    },

    /// HTTP 429 on every attempt: the API throttled us and retries ran out.
    #[error("{api} {endpoint}: throttled (HTTP 429) on every attempt{after}; fix: lower the request rate or concurrency, or run again later", after = retry_after_suffix(.retry_after))]
    Throttled {
        api: Api,
        endpoint: String,
        retry_after: Option<Duration>,
    },

    /// HTTP 429 with a `Retry-After` longer than the backoff cap
    /// (`HttpSettings::backoff_max`): we fail fast instead of sleeping.
    #[error("{api} {endpoint}: throttled (HTTP 429) and asked to wait {header:?} (Retry-After, {wait}), longer than the backoff cap of {cap} (http.backoff_max_ms); not waiting; fix: run again after that time, or raise http.backoff_max_ms to wait it out", wait = human(*.wait), cap = human(*.cap))]
    RetryAfterTooLong {
        api: Api,
        endpoint: String,
        /// The header value as the server sent it.
        header: String,
        wait: Duration,
        cap: Duration,
    },

    /// Webex Campaign HTTP 498: the API key is invalid or expired.
    #[error("Webex Campaign {endpoint}: the API key is invalid or has expired (HTTP 498); fix: issue a new API key in Webex Campaign and set webex.api_key")]
    TokenExpired { endpoint: String },

    /// Webex Campaign answered with a failure `code` (often with HTTP 200).
    #[error("Webex Campaign GET campaignapi/resources/v3/users/: failure code {code}: {message}; fix: {fix}", fix = webex_fix(.code))]
    WebexFailure { code: String, message: String },

    /// The Zoho accounts server would not exchange the refresh token for an
    /// access token.
    #[error("Zoho accounts POST /oauth/v2/token: could not obtain an access token: {code}: {message}; fix: {fix}", fix = zoho_auth_fix(.code))]
    ZohoAuth { code: String, message: String },

    /// Zoho CRM answered with an error `code` (INVALID_DATA, NO_PERMISSION, ...).
    ///
    /// Deviation from the first sketch of this API: `endpoint` was added so
    /// the message names the threshold id and page.
    #[error("Zoho CRM {endpoint}: HTTP {status} {code}: {message}; fix: {fix}", fix = zoho_resolution(.code))]
    Zoho {
        endpoint: String,
        status: u16,
        code: String,
        message: String,
    },

    /// A write that may or may not have been applied: it was sent, and then
    /// the answer was a timeout, a transport failure, a 5xx, an empty or
    /// malformed 2xx, or a 2xx echoing another lead or campaign. Never
    /// retried blindly: read the state back, then decide.
    #[error("{api} {endpoint}: the write may or may not have been applied: {detail}; fix: read the state back before sending it again (the applier does this); if it keeps happening, check that {key} is the {api} API and that it is healthy", key = .api.base_url_key())]
    AmbiguousWrite {
        api: Api,
        endpoint: String,
        detail: String,
    },

    /// HTTP 5xx (after retries, where retrying was allowed).
    #[error("{api} {endpoint}: server error (HTTP {status}); fix: the {api} service is failing, retry later and tell its operators if it persists")]
    Server {
        api: Api,
        endpoint: String,
        status: u16,
    },

    /// No complete response within `HttpSettings::timeout` (or no connection
    /// within `connect_timeout`); `key` is the setting that holds the limit.
    #[error("{api} {endpoint}: timed out after {limit} ({key}); fix: check that {base} is reachable and healthy, or raise {key} (for a write, read the state back before retrying: it may have been applied)", limit = human(*.limit), base = .api.base_url_key())]
    Timeout {
        api: Api,
        endpoint: String,
        limit: Duration,
        key: &'static str,
    },

    /// The request could not be sent or the response not received
    /// (connection refused, DNS, TLS, reset). `origin` is scheme, host and
    /// port; `detail` the cause chain (without the URL).
    #[error("{api} {endpoint} on {origin}: transport failure: {detail}; fix: check {key} in the config and that the service is reachable from this host (DNS, firewall, proxy, TLS certificate / ca_file)", key = .api.base_url_key())]
    Transport {
        api: Api,
        endpoint: String,
        origin: String,
        detail: String,
    },

    /// A 3xx: redirects are never followed, so credentials never travel to a
    /// host we were not given.
    #[error("{api} {endpoint}: redirected (HTTP {status}) to {location}; redirects are not followed (credentials must not be replayed elsewhere); fix: set {key} to the final address of the API", key = .api.base_url_key())]
    Redirected {
        api: Api,
        endpoint: String,
        status: u16,
        /// The `Location` header (scrubbed), or "(no Location header)".
        location: String,
    },

    /// Paging made no progress (a page with no new id while the server says
    /// there is more, or a page repeating the previous one), or went past
    /// the page cap.
    #[error("{api} {endpoint}: paging makes no progress: {detail}; fix: the {api} server does not page as documented; report it to its operators (no partial result is used)")]
    PagingStalled {
        api: Api,
        endpoint: String,
        detail: String,
    },

    /// The body did not parse as the expected JSON.
    #[error("{api} {endpoint}: response could not be understood: {detail}; body starts with {body_prefix:?}; fix: check that {key} points at the {api} API itself (not a proxy or login page), and report the body if it does", key = .api.base_url_key())]
    Malformed {
        api: Api,
        endpoint: String,
        detail: String,
        body_prefix: String,
    },

    /// The response was larger than `HttpSettings::max_body_bytes`.
    #[error("{api} {endpoint}: response body is larger than the limit of {limit} bytes; fix: use a smaller page size, or raise http max_body_bytes if responses this large are expected")]
    BodyTooLarge {
        api: Api,
        endpoint: String,
        limit: usize,
    },

    /// The caller's fence refused the request just before it would have
    /// been sent (the applier's journal lease was lost): nothing was sent.
    #[error("{api} {endpoint}: not sent: {detail}")]
    Fenced {
        api: Api,
        endpoint: String,
        detail: String,
    },

    /// Any other HTTP status (405, 409, ...).
    #[error("{api} {endpoint}: unexpected HTTP status {status}: {detail}; fix: check {key} (scheme, host, port and path prefix)", key = .api.base_url_key())]
    UnexpectedStatus {
        api: Api,
        endpoint: String,
        status: u16,
        detail: String,
    },
}

impl UpstreamError {
    /// Whether trying the same request again later may succeed: timeouts,
    /// transport failures, 5xx, 429, and Webex failure codes that mean "not
    /// processed, try later". An `AmbiguousWrite` is not: it may only be
    /// sent again after reading the state back.
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::Timeout { .. }
            | UpstreamError::Transport { .. }
            | UpstreamError::Server { .. }
            | UpstreamError::Throttled { .. } => true,
            UpstreamError::WebexFailure { code, .. } => {
                matches!(code.as_str(), "1010" | "1003" | "429" | "500")
            }
            UpstreamError::Zoho { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// What kind of failure this is. Zoho codes OAUTH_SCOPE_MISMATCH,
    /// AUTHENTICATION_FAILURE, INVALID_TOKEN and NO_PERMISSION and Webex
    /// codes 430/498 are `Auth`; timeouts, transport failures, 5xx and
    /// throttling `Unavailable`; bad settings and redirects `Config`; the
    /// rest `Data`.
    pub fn class(&self) -> ErrorClass {
        match self {
            UpstreamError::Config { .. }
            | UpstreamError::Redirected { .. }
            | UpstreamError::Fenced { .. } => ErrorClass::Config,
            UpstreamError::Unauthorized { .. }
            | UpstreamError::Forbidden { .. }
            | UpstreamError::TokenExpired { .. } => ErrorClass::Auth,
            UpstreamError::ZohoAuth { code, .. } => {
                if code == "Access Denied" {
                    // Zoho's wording for "too many token requests".
                    ErrorClass::Unavailable
                } else {
                    ErrorClass::Auth
                }
            }
            UpstreamError::Timeout { .. }
            | UpstreamError::Transport { .. }
            | UpstreamError::Server { .. }
            | UpstreamError::Throttled { .. }
            | UpstreamError::AmbiguousWrite { .. }
            | UpstreamError::RetryAfterTooLong { .. } => ErrorClass::Unavailable,
            UpstreamError::Zoho { status, code, .. } => match code.as_str() {
                "OAUTH_SCOPE_MISMATCH"
                | "AUTHENTICATION_FAILURE"
                | "INVALID_TOKEN"
                | "NO_PERMISSION" => ErrorClass::Auth,
                "INTERNAL_ERROR" | "TOO_MANY_REQUESTS" => ErrorClass::Unavailable,
                _ if *status >= 500 || *status == 429 => ErrorClass::Unavailable,
                _ => ErrorClass::Data,
            },
            UpstreamError::WebexFailure { code, .. } => match code.as_str() {
                "430" | "498" => ErrorClass::Auth,
                "1010" | "1003" | "429" | "500" => ErrorClass::Unavailable,
                _ => ErrorClass::Data,
            },
            UpstreamError::NotFound { .. }
            | UpstreamError::BadRequest { .. }
            | UpstreamError::Malformed { .. }
            | UpstreamError::BodyTooLarge { .. }
            | UpstreamError::PagingStalled { .. }
            | UpstreamError::UnexpectedStatus { .. } => ErrorClass::Data,
        }
    }

    /// Whether a write may have been applied although it failed (see
    /// [`UpstreamError::AmbiguousWrite`]): the caller must read the state
    /// back before sending it again. False for every definite outcome: a
    /// refusal (400, 401, 403, 404), throttling (429) and a connection that
    /// was never made, where the server certainly did nothing.
    pub fn is_ambiguous_write(&self) -> bool {
        matches!(self, UpstreamError::AmbiguousWrite { .. })
    }

    /// Whether this is a 2xx whose body could not be understood (truncated
    /// JSON, a proxy's HTML page, an empty body where JSON was due). On an
    /// idempotent read (a GET) it is retried within `http.max_retries` like
    /// a 5xx, and returned only when every attempt was malformed; on a write
    /// it stays what it is (for the CMS PUT, an ambiguous write).
    pub fn is_malformed_body(&self) -> bool {
        matches!(self, UpstreamError::Malformed { .. })
    }

    /// Whether the upstream said the object does not exist (CMS CONF-1001,
    /// HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, UpstreamError::NotFound { .. })
    }

    /// The wait the server asked for, if this is a throttling error.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn config(what: impl Into<String>, detail: impl Into<String>) -> Self {
        UpstreamError::Config {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

fn code_suffix(code: &Option<String>) -> String {
    match code {
        Some(c) => format!(", {c}"),
        None => String::new(),
    }
}

fn retry_after_suffix(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (last Retry-After: {})", human(*d)),
        None => String::new(),
    }
}

/// "30 s", "1.5 s", "200 ms".
pub(crate) fn human(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The fix for each failure code in the Webex Campaign contract.
fn webex_fix(code: &str) -> &'static str {
    match code {
        "1010" => "the request was not processed; retry later",
        "1003" => "Webex Campaign could not read its profile store; retry later and contact Webex support if it persists",
        "1001" | "1002" => "the request was refused as invalid input; this is a bug in rebalancer, please report it",
        "430" => "authorization failed; check webex.api_key (a key allowed to read users)",
        "405" => "method not supported; check that webex.base_url is the API domain of your tenant",
        "429" => "throttled; lower the request rate or run again later",
        "499" => "Webex Campaign failed to process the request; see the message, retry later",
        "500" => "Webex Campaign internal error; retry later",
        _ => "see the message; check webex.base_url and webex.api_key",
    }
}

/// The fix for the Zoho accounts token endpoint's error codes.
fn zoho_auth_fix(code: &str) -> &'static str {
    match code {
        "invalid_code" => "the refresh token is invalid, revoked or from another data center; generate a new refresh token (self client grant token, then exchange it) and set zoho.refresh_token",
        "invalid_client" | "invalid_client_secret" => "check zoho.client_id and zoho.client_secret, and that zoho.accounts_url is the accounts server of your Zoho data center",
        "Access Denied" | "access_denied" => "too many token requests in a short time; wait a few minutes before running again",
        _ => "check zoho.client_id, zoho.client_secret and zoho.refresh_token (generate a new refresh token if in doubt) and zoho.accounts_url",
    }
}

/// The documented resolution of each Zoho CRM error code.
fn zoho_resolution(code: &str) -> &'static str {
    match code {
        "INVALID_DATA" => "provide a valid assignment threshold id (use the GET Assignment Threshold API to list them)",
        "NO_PERMISSION" => "the Zoho user lacks permission to read assignment thresholds; contact your CRM administrator",
        "INVALID_MODULE" => "set zoho.module to a valid module API name (see the GET Modules Metadata API)",
        "NOT_SUPPORTED" => "assignment thresholds exist only for Leads, Contacts, Accounts, Deals, Cases and custom modules; fix zoho.module",
        "FEATURE_NOT_SUPPORTED" => "assignment thresholds need the Professional edition or above; upgrade the CRM edition",
        "API_NOT_SUPPORTED" => "assignment thresholds need API version v8 or above; fix zoho.api_version",
        "INVALID_REQUEST_METHOD" => "the HTTP method is not valid for this URL; this is a bug in rebalancer, please report it",
        "OAUTH_SCOPE_MISMATCH" => "create a new refresh token with the scope ZohoCRM.settings.assignment_thresholds.READ (or .ALL)",
        "AUTHENTICATION_FAILURE" | "INVALID_TOKEN" => "the access token was rejected even after a refresh; check zoho.client_id/client_secret/refresh_token and that zoho.accounts_url and zoho.api_domain belong to the same data center",
        "INVALID_URL_PATTERN" => "the request URL is wrong; check zoho.api_domain and zoho.api_version",
        "INTERNAL_ERROR" => "unexpected error inside Zoho CRM; retry later and contact Zoho support if it persists",
        "TOO_MANY_REQUESTS" => "Zoho API limits reached; lower the request rate or run again later",
        _ => "see the Zoho CRM API documentation for this code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names() {
        assert_eq!(Api::Cms.to_string(), "CMS");
        assert_eq!(Api::Webex.to_string(), "Webex Campaign");
        assert_eq!(Api::Zoho.to_string(), "Zoho CRM");
        assert_eq!(Api::ZohoAccounts.to_string(), "Zoho accounts");
    }

    #[test]
    fn messages_name_api_endpoint_and_fix() {
        let e = UpstreamError::NotFound {
            api: Api::Cms,
            endpoint: "GET /cms/x?leadId=7".into(),
            code: Some("CONF-1001".into()),
            message: "Object doesn't exist".into(),
        };
        let s = e.to_string();
        assert!(s.contains("CMS") && s.contains("leadId=7") && s.contains("CONF-1001"));
        assert!(s.contains("fix:"));
        assert!(e.is_not_found() && !e.is_retryable());

        let e = UpstreamError::Unauthorized {
            api: Api::Webex,
            endpoint: "GET /u".into(),
            detail: "430".into(),
        };
        assert!(e.to_string().contains("webex.api_key"));
    }
}
