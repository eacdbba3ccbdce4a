//! Client of Zoho CRM: the users configured on an assignment threshold
//! (GET settings/automation/assignment_thresholds/{id}/restrict_to, all
//! pages), with the OAuth refresh-token flow against the Zoho accounts
//! server and one access token cached and shared by all clones.
//!
//! Numbers from Zoho are bounded: a count outside 0..=10^9 is refused with
//! the user, the field and the value named. A token lifetime (`expires_in`)
//! is clamped to 60 s..24 h, so neither a huge value (overflow) nor zero
//! (a token per page) can hurt us.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

use crate::base_url::BaseUrl;
use crate::error::{Api, UpstreamError};
use crate::http::{
    check_base_url, endpoint_label, join_url, malformed, status_error, Http, HttpSettings, Replay,
    Reply, Stats,
};
use crate::lenient::{bool_like, field, first_text, i64_like, parse_json, string_like, u64_like};
use crate::scrub::scrub;

/// Upper bound on pages read for one threshold: going past it is an error.
const MAX_PAGES: u32 = 10_000;

/// Shortest and longest token lifetime believed (`expires_in` is clamped).
const MIN_LIFETIME: Duration = Duration::from_secs(60);
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Largest count (backlog, allowance, records) accepted from Zoho.
pub(crate) const MAX_COUNT: i64 = 1_000_000_000;

/// Access tokens are replaced this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// ASSUMPTION: a token response without `expires_in` lives one hour, Zoho's
/// documented lifetime.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// Settings of the Zoho client.
#[derive(Debug, Clone)]
pub struct ZohoConfig {
    /// Accounts server of the data center, e.g. https://accounts.zoho.com.
    pub accounts_url: BaseUrl,
    /// API domain, e.g. https://www.zohoapis.com.
    pub api_domain: BaseUrl,
    pub client_id: String,
    pub client_secret: SecretString,
    pub refresh_token: SecretString,
    /// e.g. "v8" (assignment thresholds need v8 or above).
    pub api_version: String,
    /// Module API name, e.g. "Leads".
    pub module: String,
    /// Records per page (Zoho allows at most 200).
    pub per_page: u32,
    pub http: HttpSettings,
}

/// One user configured on an assignment threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdUser {
    pub backlog_allow_count: i64,
    pub backlog_count: i64,
    pub record_allow_count: i64,
    pub record_assigned_count: i64,
    pub default_assignee: bool,
    /// The `type` field ("user").
    pub kind: Option<String>,
    pub user: ZohoUser,
}

/// A Zoho CRM user as named in a threshold entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZohoUser {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// Client of Zoho CRM. Cheap to clone; clones share one cached access token.
#[derive(Debug, Clone)]
pub struct ZohoClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: Http,
    token_url: Url,
    api_domain: BaseUrl,
    client_id: String,
    client_secret: SecretString,
    refresh_token: SecretString,
    api_version: String,
    module: String,
    per_page: u32,
    /// Held while a token is fetched, so concurrent callers wait for that
    /// one refresh instead of stampeding the token endpoint.
    token: Mutex<Option<CachedToken>>,
    refreshes: AtomicU64,
    /// How far this client's token clock runs ahead of the real one
    /// ([`ZohoClient::advance_clock`]), in milliseconds.
    clock_ahead_ms: AtomicU64,
}

#[derive(Debug)]
struct CachedToken {
    secret: SecretString,
    /// Which token this is (1 for the first one obtained).
    generation: u64,
    renew_at: Instant,
}

impl ZohoClient {
    /// Builds the client; fails on a bad URL, version, module, page size or
    /// `ca_file`. No token is requested until the first call.
    pub fn new(cfg: ZohoConfig, stats: Stats) -> Result<Self, UpstreamError> {
        check_base_url("zoho.accounts_url", &cfg.accounts_url, &cfg.http)?;
        check_base_url("zoho.api_domain", &cfg.api_domain, &cfg.http)?;
        if cfg.per_page == 0 {
            return Err(UpstreamError::config("zoho.per_page", "must be at least 1"));
        }
        for (what, value) in [
            ("zoho.api_version", &cfg.api_version),
            ("zoho.module", &cfg.module),
        ] {
            if value.trim().is_empty() {
                return Err(UpstreamError::config(what, "must not be empty"));
            }
        }
        let token_url = join_url(&cfg.accounts_url, &["oauth", "v2", "token"])?;
        let http = Http::new("zoho", &cfg.http, stats)?;
        Ok(ZohoClient {
            inner: Arc::new(Inner {
                http,
                token_url,
                api_domain: cfg.api_domain,
                client_id: cfg.client_id,
                client_secret: cfg.client_secret,
                refresh_token: cfg.refresh_token,
                api_version: cfg.api_version,
                module: cfg.module,
                per_page: cfg.per_page,
                token: Mutex::new(None),
                refreshes: AtomicU64::new(0),
                clock_ahead_ms: AtomicU64::new(0),
            }),
        })
    }

    /// All pages of GET {api_domain}/crm/{version}/settings/automation/assignment_thresholds/{id}/restrict_to?module=&page=&per_page=
    ///
    /// Pages are read until `info.more_records` is false or missing (or a
    /// 204 / empty page). Users are de-duplicated by id, first seen wins. A
    /// page that brings no new user while `more_records` is true, and more
    /// than [`MAX_PAGES`] pages, are errors (`PagingStalled`), never a
    /// partial list.
    pub async fn threshold_users(
        &self,
        threshold_id: &str,
    ) -> Result<Vec<ThresholdUser>, UpstreamError> {
        let mut users = Vec::new();
        let mut seen = HashSet::new();
        for page in 1..=MAX_PAGES {
            let (batch, more, endpoint) = self.page(threshold_id, page).await?;
            let before = users.len();
            users.extend(batch.into_iter().filter(|u| seen.insert(u.user.id.clone())));
            if !more {
                return Ok(users);
            }
            if users.len() == before {
                return Err(UpstreamError::PagingStalled {
                    api: Api::Zoho,
                    endpoint,
                    detail: format!(
                        "page {page} of threshold {threshold_id} brought no new user but says \
                         more_records: true"
                    ),
                });
            }
        }
        Err(UpstreamError::PagingStalled {
            api: Api::Zoho,
            endpoint: format!("GET restrict_to of threshold {threshold_id}"),
            detail: format!("still more_records after {MAX_PAGES} pages"),
        })
    }

    /// ONE page (1-based) of a threshold's restrict_to users and whether
    /// Zoho says more follow (`info.more_records`), with the token flow of
    /// every call (a token is obtained first if none is cached): a cheap
    /// authenticated read (e.g. `rebalancer check`), not the whole list.
    pub async fn threshold_users_page(
        &self,
        threshold_id: &str,
        page: u32,
    ) -> Result<(Vec<ThresholdUser>, bool), UpstreamError> {
        let (users, more, _) = self.page(threshold_id, page.max(1)).await?;
        Ok((users, more))
    }

    /// Moves this client's token clock (shared by its clones) `by` ahead, as
    /// if that much time had passed: a cached access token is renewed when
    /// this clock says it is due. For tests of expiry by time, without
    /// waiting or short-lived tokens.
    pub fn advance_clock(&self, by: Duration) {
        self.inner
            .clock_ahead_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    /// Now, by this client's token clock.
    fn now(&self) -> Instant {
        let ahead = Duration::from_millis(self.inner.clock_ahead_ms.load(Ordering::Relaxed));
        let now = Instant::now();
        now.checked_add(ahead).unwrap_or(now)
    }

    /// Number of access tokens obtained so far (for tests).
    pub fn token_refreshes(&self) -> u64 {
        self.inner.refreshes.load(Ordering::Relaxed)
    }

    /// One page, with at most one token refresh: when Zoho rejects the
    /// access token (401 INVALID_TOKEN / AUTHENTICATION_FAILURE) a new token
    /// is obtained once and the page asked once more. A second rejection is
    /// returned: Zoho caps token requests, so never refresh in a loop.
    async fn page(
        &self,
        threshold_id: &str,
        page: u32,
    ) -> Result<(Vec<ThresholdUser>, bool, String), UpstreamError> {
        let inner = &self.inner;
        let mut url = join_url(
            &inner.api_domain,
            &[
                "crm",
                &inner.api_version,
                "settings",
                "automation",
                "assignment_thresholds",
                threshold_id,
                "restrict_to",
            ],
        )?;
        url.query_pairs_mut()
            .append_pair("module", &inner.module)
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &inner.per_page.to_string());
        let endpoint = endpoint_label("GET", &url);
        let (token, generation) = self.access_token(None).await?;
        let (users, more) = match self.get_page(&url, &endpoint, &token).await {
            Err(e) if token_rejected(&e) => {
                tracing::debug!(endpoint, "Zoho rejected the access token; refreshing once");
                let (token, _) = self.access_token(Some(generation)).await?;
                self.get_page(&url, &endpoint, &token).await?
            }
            other => other?,
        };
        Ok((users, more, endpoint))
    }

    async fn get_page(
        &self,
        url: &Url,
        endpoint: &str,
        token: &SecretString,
    ) -> Result<(Vec<ThresholdUser>, bool), UpstreamError> {
        let http = &self.inner.http;
        http.execute(
            Api::Zoho,
            endpoint,
            Replay::Safe,
            || {
                // Marked sensitive so no HTTP-layer log or Debug shows it.
                let mut auth = reqwest::header::HeaderValue::from_str(&format!(
                    "Zoho-oauthtoken {}",
                    token.expose_secret()
                ))
                .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
                auth.set_sensitive(true);
                http.client()
                    .get(url.clone())
                    .header(AUTHORIZATION, auth)
                    .header(ACCEPT, "application/json")
            },
            |reply| interpret_page(endpoint, reply),
        )
        .await
    }

    /// The cached access token, or a new one. With `rejected`, the token of
    /// that generation was refused by Zoho: replace it, unless another
    /// caller already did.
    async fn access_token(
        &self,
        rejected: Option<u64>,
    ) -> Result<(SecretString, u64), UpstreamError> {
        let mut cached = self.inner.token.lock().await;
        if let Some(token) = cached.as_ref() {
            let fresh = self.now() < token.renew_at;
            if fresh && rejected != Some(token.generation) {
                return Ok((token.secret.clone(), token.generation));
            }
        }
        let (secret, lifetime) = self.fetch_token().await?;
        let generation = self.inner.refreshes.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.now();
        *cached = Some(CachedToken {
            secret: secret.clone(),
            generation,
            renew_at: now.checked_add(renew_after(lifetime)).unwrap_or(now),
        });
        Ok((secret, generation))
    }

    /// POST {accounts}/oauth/v2/token with grant_type=refresh_token. The
    /// secrets travel in the form body, never in the URL. Retried only when
    /// the request certainly did not reach Zoho (429, no connection): each
    /// grant counts against Zoho's token limits.
    async fn fetch_token(&self) -> Result<(SecretString, Duration), UpstreamError> {
        let inner = &self.inner;
        let endpoint = endpoint_label("POST", &inner.token_url);
        let token = inner
            .http
            .execute(
                Api::ZohoAccounts,
                &endpoint,
                Replay::OnlyIfNotProcessed,
                || {
                    inner
                        .http
                        .client()
                        .post(inner.token_url.clone())
                        .header(ACCEPT, "application/json")
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("client_id", inner.client_id.as_str()),
                            ("client_secret", inner.client_secret.expose_secret()),
                            ("refresh_token", inner.refresh_token.expose_secret()),
                        ])
                },
                |reply| interpret_token(&endpoint, reply),
            )
            .await?;
        tracing::debug!("obtained a Zoho access token");
        let lifetime = token_lifetime(token.expires_in);
        Ok((token.access_token, lifetime))
    }
}

/// The lifetime believed for a granted token: `expires_in` clamped to
/// 60 s..24 h (one hour when absent).
fn token_lifetime(expires_in: Option<u64>) -> Duration {
    expires_in.map_or(DEFAULT_LIFETIME, |secs| {
        Duration::from_secs(secs).clamp(MIN_LIFETIME, MAX_LIFETIME)
    })
}

/// When to renew a token of `lifetime`: a minute early, or at half-life for
/// short-lived ones.
fn renew_after(lifetime: Duration) -> Duration {
    if lifetime > EXPIRY_MARGIN * 2 {
        lifetime - EXPIRY_MARGIN
    } else {
        lifetime / 2
    }
}

/// Whether Zoho refused the access token itself (worth one refresh).
fn token_rejected(e: &UpstreamError) -> bool {
    matches!(e, UpstreamError::Zoho { status: 401, code, .. }
        if code == "INVALID_TOKEN" || code == "AUTHENTICATION_FAILURE")
}

fn interpret_page(
    endpoint: &str,
    reply: &Reply,
) -> Result<(Vec<ThresholdUser>, bool), UpstreamError> {
    if reply.status.is_success() {
        // A 204 (or an empty 200) means no configured users.
        if reply.status == StatusCode::NO_CONTENT || reply.body.iter().all(u8::is_ascii_whitespace)
        {
            return Ok((Vec::new(), false));
        }
        return parse_threshold_page(&reply.body)
            .map(|page| (page.users, page.more_records))
            .map_err(|d| malformed(Api::Zoho, endpoint, d, &reply.body));
    }
    if reply.status == StatusCode::TOO_MANY_REQUESTS {
        return Err(status_error(
            Api::Zoho,
            endpoint,
            reply,
            None,
            String::new(),
        ));
    }
    let body = parse_json(&reply.body).ok();
    let code = body.as_ref().and_then(|v| first_text(v, &["code"]));
    let message = body
        .as_ref()
        .and_then(|v| first_text(v, &["message", "error"]))
        .map(|m| scrub(&m))
        .unwrap_or_default();
    Err(match code {
        Some(code) => UpstreamError::Zoho {
            endpoint: endpoint.to_string(),
            status: reply.status.as_u16(),
            code,
            message,
        },
        None => status_error(Api::Zoho, endpoint, reply, None, message),
    })
}

/// One page of restrict_to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ThresholdPage {
    pub users: Vec<ThresholdUser>,
    pub more_records: bool,
}

/// Parses one restrict_to page. Liberal: a missing `restrict_to` is an
/// empty page, missing `info.more_records` means no more; counts may be
/// numbers or numeric strings, `user.id` a number; missing
/// `default_assignee` is false. A missing count is an error: inventing one
/// would make the planner move agents on made-up numbers.
pub(crate) fn parse_threshold_page(bytes: &[u8]) -> Result<ThresholdPage, String> {
    let value = parse_json(bytes)?;
    if !value.is_object() {
        return Err("expected a JSON object".to_string());
    }
    let users = match field(&value, "restrict_to") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                parse_threshold_user(item).map_err(|e| format!("restrict_to[{i}]: {e}"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`restrict_to` is not an array".to_string()),
    };
    let more_records = field(&value, "info")
        .and_then(|info| field(info, "more_records"))
        .and_then(bool_like)
        .unwrap_or(false);
    Ok(ThresholdPage {
        users,
        more_records,
    })
}

fn parse_threshold_user(value: &Value) -> Result<ThresholdUser, String> {
    if !value.is_object() {
        return Err("not a JSON object".to_string());
    }
    let user = field(value, "user").ok_or("`user` is missing")?;
    if !user.is_object() {
        return Err("`user` is not an object".to_string());
    }
    let text = |v: &Value, key: &str| field(v, key).and_then(string_like);
    let who = match (text(user, "id"), text(user, "email")) {
        (Some(id), Some(email)) => format!("user {id} ({email})"),
        (Some(id), None) => format!("user {id}"),
        (None, Some(email)) => format!("user {email}"),
        (None, None) => "a user without id".to_string(),
    };
    let count = |key: &str| -> Result<i64, String> {
        let v = field(value, key).ok_or_else(|| format!("{who}: `{key}` is missing"))?;
        let shown = || v.to_string().chars().take(40).collect::<String>();
        let n =
            i64_like(v).ok_or_else(|| format!("{who}: `{key}` = {} is not an integer", shown()))?;
        if !(0..=MAX_COUNT).contains(&n) {
            return Err(format!(
                "{who}: `{key}` = {n} is outside the plausible range 0..={MAX_COUNT}"
            ));
        }
        Ok(n)
    };
    Ok(ThresholdUser {
        backlog_allow_count: count("backlog_allow_count")?,
        backlog_count: count("backlog_count")?,
        record_allow_count: count("record_allow_count")?,
        record_assigned_count: count("record_assigned_count")?,
        default_assignee: field(value, "default_assignee")
            .and_then(bool_like)
            .unwrap_or(false),
        kind: text(value, "type"),
        user: ZohoUser {
            id: text(user, "id")
                .filter(|id| !id.is_empty())
                .ok_or("`user.id` is missing")?,
            name: text(user, "name"),
            email: text(user, "email"),
        },
    })
}

fn interpret_token(endpoint: &str, reply: &Reply) -> Result<TokenGrant, UpstreamError> {
    let status = reply.status.as_u16();
    if status == 429 || reply.status.is_server_error() {
        return Err(status_error(
            Api::ZohoAccounts,
            endpoint,
            reply,
            None,
            String::new(),
        ));
    }
    let parsed = parse_token(&reply.body);
    if !reply.status.is_success() {
        return Err(match parsed {
            Ok(TokenBody::Error { code, message }) => UpstreamError::ZohoAuth {
                code: scrub(&code),
                message: scrub(&message),
            },
            // Token bodies are never quoted: they may carry an access token.
            _ => UpstreamError::ZohoAuth {
                code: format!("HTTP {status}"),
                message: "the token endpoint refused the request (body withheld)".to_string(),
            },
        });
    }
    match parsed {
        Ok(TokenBody::Grant(grant)) => Ok(grant),
        Ok(TokenBody::Error { code, message }) => Err(UpstreamError::ZohoAuth {
            code: scrub(&code),
            message: scrub(&message),
        }),
        Err(detail) => Err(UpstreamError::Malformed {
            api: Api::ZohoAccounts,
            endpoint: endpoint.to_string(),
            detail,
            body_prefix: "(withheld: token responses carry secrets)".to_string(),
        }),
    }
}

/// An access token as granted.
#[derive(Debug)]
pub(crate) struct TokenGrant {
    pub access_token: SecretString,
    pub expires_in: Option<u64>,
}

/// What the token endpoint said.
#[derive(Debug)]
pub(crate) enum TokenBody {
    Grant(TokenGrant),
    /// `{"error":"invalid_code"}`, which Zoho sends even with HTTP 200.
    Error {
        code: String,
        message: String,
    },
}

/// Parses a token response. Error texts never quote the body.
///
/// ASSUMPTION: the `api_domain` in the response is ignored; the configured
/// `zoho.api_domain` is used (so the sandbox and proxies work).
pub(crate) fn parse_token(bytes: &[u8]) -> Result<TokenBody, String> {
    let value = parse_json(bytes).map_err(|_| "token response is not valid JSON".to_string())?;
    if !value.is_object() {
        return Err("token response is not a JSON object".to_string());
    }
    if let Some(token) = field(&value, "access_token").and_then(Value::as_str) {
        if !token.is_empty() {
            // Older accounts servers say `expires_in_sec`.
            let expires_in = ["expires_in", "expires_in_sec"]
                .iter()
                .find_map(|k| field(&value, k).and_then(u64_like));
            return Ok(TokenBody::Grant(TokenGrant {
                access_token: SecretString::from(token),
                expires_in,
            }));
        }
    }
    if let Some(code) = field(&value, "error").and_then(string_like) {
        let message = first_text(&value, &["error_description", "message"])
            .unwrap_or_else(|| "the refresh token was refused".to_string());
        return Ok(TokenBody::Error { code, message });
    }
    Err("token response has neither `access_token` nor `error`".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"restrict_to":[{"backlog_allow_count":2,"default_assignee":false,
        "record_allow_count":10,"record_assigned_count":0,"type":"user",
        "user":{"name":"Patricia Boyle","id":"1862079000000440001","email":"patricia.boyle@zylker.com"},
        "backlog_count":0}],"info":{"next_page":2,"per_page":200,"count":1,"more_records":false}}"#;

    #[test]
    fn parses_the_contract_sample() {
        let page = parse_threshold_page(SAMPLE.as_bytes()).unwrap();
        assert!(!page.more_records);
        let u = &page.users[0];
        assert_eq!(u.backlog_allow_count, 2);
        assert_eq!(u.record_allow_count, 10);
        assert_eq!(u.kind.as_deref(), Some("user"));
        assert_eq!(u.user.id, "1862079000000440001");
        assert_eq!(u.user.email.as_deref(), Some("patricia.boyle@zylker.com"));
    }

    #[test]
    fn liberal_fields() {
        let body = r#"{"restrict_to":[{"backlog_allow_count":"5","backlog_count":1,
            "record_allow_count":3.0,"record_assigned_count":"0","user":{"id":42}}],
            "info":{"more_records":"true"}}"#;
        let page = parse_threshold_page(body.as_bytes()).unwrap();
        assert!(page.more_records);
        assert_eq!(page.users[0].backlog_allow_count, 5);
        assert_eq!(page.users[0].record_allow_count, 3);
        assert!(!page.users[0].default_assignee);
        assert_eq!(page.users[0].user.id, "42");
        assert!(parse_threshold_page(b"{}").unwrap().users.is_empty());
        assert!(parse_threshold_page(br#"{"restrict_to":[{"user":{"id":1}}]}"#).is_err());
    }

    #[test]
    fn counts_are_bounded_and_named() {
        let entry = |field: &str, value: &str| {
            let body = format!(
                r#"{{"restrict_to":[{{"backlog_allow_count":5,"backlog_count":1,
                "record_allow_count":3,"record_assigned_count":0,"{field}":{value},
                "user":{{"id":"77","email":"x@y.com"}}}}]}}"#
            );
            parse_threshold_page(body.as_bytes())
        };
        for (field, value) in [
            ("backlog_count", "9223372036854775807"),
            ("backlog_allow_count", "-1"),
            ("record_allow_count", "1000000001"),
            ("record_assigned_count", "\"9223372036854775806\""),
        ] {
            let err = entry(field, value).unwrap_err();
            assert!(
                err.contains("user 77 (x@y.com)") && err.contains(field) && err.contains("outside"),
                "{err}"
            );
        }
        let err = entry("backlog_count", "1e300").unwrap_err();
        assert!(
            err.contains("backlog_count") && err.contains("1e+300"),
            "{err}"
        );
        assert_eq!(
            entry("backlog_count", "1000000000").unwrap().users[0].backlog_count,
            1_000_000_000
        );
    }

    #[test]
    fn token_lifetimes_are_clamped() {
        assert_eq!(token_lifetime(None), DEFAULT_LIFETIME);
        assert_eq!(token_lifetime(Some(0)), MIN_LIFETIME);
        assert_eq!(token_lifetime(Some(u64::MAX)), MAX_LIFETIME);
        assert_eq!(token_lifetime(Some(3600)), Duration::from_secs(3600));
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(renew_after(MIN_LIFETIME), Duration::from_secs(30));
    }

    #[test]
    fn token_bodies() {
        let grant = parse_token(br#"{"access_token":"1000.abc","api_domain":"https://x","token_type":"Bearer","expires_in":3600}"#).unwrap();
        assert!(matches!(
            grant,
            TokenBody::Grant(TokenGrant {
                expires_in: Some(3600),
                ..
            })
        ));
        assert!(!format!("{grant:?}").contains("1000.abc"));
        let err = parse_token(br#"{"error":"invalid_code"}"#).unwrap();
        assert!(matches!(err, TokenBody::Error { ref code, .. } if code == "invalid_code"));
        let bad = parse_token(br#"{"access_token": 5, "x": "1000.secret"}"#).unwrap_err();
        assert!(!bad.contains("1000.secret"));
    }
}
