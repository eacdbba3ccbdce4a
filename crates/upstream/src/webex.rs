//! Client of Webex Campaign: the tenant's users and their roles and status
//! (GET campaignapi/resources/v3/users/). Bearer API key. What the status
//! strings mean ([`is_active_status`], [`WebexUser::is_active`]) and what
//! the failure codes mean (`UpstreamError::class`) is decided here, in the
//! only crate that knows the wire format.

use std::sync::Arc;

use crate::base_url::BaseUrl;
use crate::error::{Api, UpstreamError};
use crate::http::{
    body_prefix, check_base_url, endpoint_label, join_url, malformed, status_error, Http,
    HttpSettings, Replay, Reply, Stats,
};
use crate::lenient::{field, first_text, parse_json, string_like};
use crate::scrub::scrub;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Keys under which the user list may be wrapped.
const LIST_KEYS: [&str; 4] = ["users", "data", "result", "items"];

/// Keys that may hold a failure message.
const MESSAGE_KEYS: [&str; 6] = [
    "message",
    "description",
    "error",
    "msg",
    "errorMessage",
    "error_description",
];

/// Settings of the Webex Campaign client.
#[derive(Debug, Clone)]
pub struct WebexConfig {
    /// The API domain of the tenant, maybe with a path prefix.
    pub base_url: BaseUrl,
    pub api_key: SecretString,
    pub http: HttpSettings,
}

/// One Webex Campaign user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebexUser {
    pub username: String,
    pub user_email: Option<String>,
    pub display_name: Option<String>,
    pub role_id: Option<String>,
    pub role_desc: Option<String>,
    pub user_status: Option<String>,
    pub role_status: Option<String>,
    pub user_id: Option<String>,
    pub user_first_name: Option<String>,
    pub user_last_name: Option<String>,
}

/// ASSUMPTION (the Webex contract lists `user_status`/`role_status` without
/// values): a status counts as active when it reads `active` or `enabled`
/// (any case, surrounding spaces ignored); anything else, or no status, is
/// not active.
pub fn is_active_status(status: Option<&str>) -> bool {
    status.is_some_and(|s| {
        let s = s.trim();
        s.eq_ignore_ascii_case("active") || s.eq_ignore_ascii_case("enabled")
    })
}

impl WebexUser {
    /// Whether the user may work: `user_status` active, and `role_status`
    /// active or missing (a missing role status does not make a user
    /// inactive; a missing user status does).
    pub fn is_active(&self) -> bool {
        let role_ok = self.role_status.is_none() || is_active_status(self.role_status.as_deref());
        is_active_status(self.user_status.as_deref()) && role_ok
    }
}

/// Client of Webex Campaign. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WebexClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: Http,
    base_url: BaseUrl,
    api_key: SecretString,
}

impl WebexClient {
    /// Builds the client; fails on a bad base URL or `ca_file`.
    pub fn new(cfg: WebexConfig, stats: Stats) -> Result<Self, UpstreamError> {
        check_base_url("webex.base_url", &cfg.base_url, &cfg.http)?;
        let http = Http::new("webex", &cfg.http, stats)?;
        Ok(WebexClient {
            inner: Arc::new(Inner {
                http,
                base_url: cfg.base_url,
                api_key: cfg.api_key,
            }),
        })
    }

    /// GET {base}/campaignapi/resources/v3/users/ with `Authorization: Bearer <key>`.
    pub async fn users(&self) -> Result<Vec<WebexUser>, UpstreamError> {
        let inner = &self.inner;
        let url = join_url(
            &inner.base_url,
            &["campaignapi", "resources", "v3", "users", ""],
        )?;
        let endpoint = endpoint_label("GET", &url);
        inner
            .http
            .execute(
                Api::Webex,
                &endpoint,
                Replay::Safe,
                || {
                    inner
                        .http
                        .client()
                        .get(url.clone())
                        .bearer_auth(inner.api_key.expose_secret())
                        .header(ACCEPT, "application/json")
                        .header(CONTENT_TYPE, "application/json")
                },
                |reply| interpret(&endpoint, reply),
            )
            .await
    }
}

fn interpret(endpoint: &str, reply: &Reply) -> Result<Vec<WebexUser>, UpstreamError> {
    let status = reply.status.as_u16();
    if reply.status.is_success() {
        return match parse_users(&reply.body) {
            Ok(WebexBody::Users(users)) => Ok(users),
            Ok(WebexBody::Failure { code, message }) => Err(UpstreamError::WebexFailure {
                code,
                message: scrub(&message),
            }),
            Err(detail) => Err(malformed(Api::Webex, endpoint, detail, &reply.body)),
        };
    }
    let (code, message) = parse_error_body(&reply.body);
    match status {
        498 => Err(UpstreamError::TokenExpired {
            endpoint: endpoint.to_string(),
        }),
        405 | 499 => Err(UpstreamError::WebexFailure {
            code: code.unwrap_or_else(|| status.to_string()),
            message: scrub(&message),
        }),
        _ => Err(status_error(Api::Webex, endpoint, reply, code, message)),
    }
}

/// What a success-status body said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WebexBody {
    Users(Vec<WebexUser>),
    /// A failure `code` in the body, e.g. 1010 "request not processed".
    Failure {
        code: String,
        message: String,
    },
}

/// Parses a users response.
///
/// ASSUMPTION (the contract shows fields, not the envelope): accept a
/// top-level array of users; an object holding the array under `users`,
/// `data`, `result` or `items`; or a single user object (one with a
/// `username`). An object with a `code` other than 200/0 and no users is a
/// failure. Field values may be strings or numbers.
pub(crate) fn parse_users(bytes: &[u8]) -> Result<WebexBody, String> {
    let value = parse_json(bytes)?;
    let list = match &value {
        Value::Array(items) => Some(items.as_slice()),
        Value::Object(_) => LIST_KEYS
            .iter()
            .filter_map(|k| field(&value, k))
            .find_map(Value::as_array)
            .map(Vec::as_slice),
        _ => return Err("expected a JSON array or object".to_string()),
    };
    let failure = field(&value, "code")
        .and_then(string_like)
        .filter(|code| !matches!(code.trim(), "200" | "0" | ""));
    if let Some(code) = failure {
        if list.is_none_or(<[Value]>::is_empty) && field(&value, "username").is_none() {
            let message = first_text(&value, &MESSAGE_KEYS).unwrap_or_default();
            return Ok(WebexBody::Failure { code, message });
        }
    }
    if let Some(items) = list {
        let users = items
            .iter()
            .enumerate()
            .filter(|(_, item)| !item.is_null())
            .map(|(i, item)| parse_user(item).map_err(|e| format!("user #{i}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(WebexBody::Users(users));
    }
    if field(&value, "username").is_some() {
        return Ok(WebexBody::Users(vec![parse_user(&value)?]));
    }
    // ASSUMPTION: an object that names its list with a null or a known
    // success code but holds no list means "no users".
    if LIST_KEYS
        .iter()
        .any(|k| value.get(k).is_some_and(Value::is_null))
    {
        return Ok(WebexBody::Users(Vec::new()));
    }
    Err(format!(
        "expected a list of users (top-level array, or under one of {LIST_KEYS:?}) or a user object"
    ))
}

/// One user object. ASSUMPTION: a user without `username` is identified by
/// its `user_email`; one with neither is refused rather than dropped.
fn parse_user(value: &Value) -> Result<WebexUser, String> {
    if !value.is_object() {
        return Err("not a JSON object".to_string());
    }
    let text = |key: &str| field(value, key).and_then(string_like);
    let user_email = text("user_email");
    let username = text("username")
        .filter(|u| !u.is_empty())
        .or_else(|| user_email.clone())
        .ok_or("has neither `username` nor `user_email`")?;
    Ok(WebexUser {
        username,
        user_email,
        display_name: text("display_name"),
        role_id: text("role_id"),
        role_desc: text("role_desc"),
        user_status: text("user_status"),
        role_status: text("role_status"),
        user_id: text("user_id"),
        user_first_name: text("user_first_name"),
        user_last_name: text("user_last_name"),
    })
}

/// Code and message of an error body; bodies that are not JSON are quoted.
fn parse_error_body(bytes: &[u8]) -> (Option<String>, String) {
    match parse_json(bytes) {
        Ok(v) if v.is_object() => (
            field(&v, "code").and_then(string_like),
            first_text(&v, &MESSAGE_KEYS).unwrap_or_default(),
        ),
        _ => (None, body_prefix(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(body: &str) -> Vec<WebexUser> {
        match parse_users(body.as_bytes()).unwrap() {
            WebexBody::Users(u) => u,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn envelopes() {
        let one = r#"{"username":"anav_agent","user_email":"a@x.com","role_id":3,"user_status":"Active"}"#;
        assert_eq!(users(&format!("[{one}]")).len(), 1);
        for key in LIST_KEYS {
            assert_eq!(
                users(&format!(r#"{{"code":200,"{key}":[{one},{one}]}}"#)).len(),
                2
            );
        }
        let single = users(one);
        assert_eq!(single[0].username, "anav_agent");
        assert_eq!(single[0].role_id.as_deref(), Some("3"));
        assert!(users("[]").is_empty());
        assert!(users(r#"{"users":null}"#).is_empty());
    }

    #[test]
    fn status_strings() {
        assert!(is_active_status(Some(" ACTIVE ")));
        assert!(is_active_status(Some("enabled")));
        assert!(!is_active_status(Some("Inactive")));
        assert!(!is_active_status(None));
        let mut u = WebexUser {
            user_status: Some("Active".into()),
            ..WebexUser::default()
        };
        assert!(u.is_active());
        u.role_status = Some("Disabled".into());
        assert!(!u.is_active());
        u.role_status = None;
        u.user_status = None;
        assert!(!u.is_active());
    }

    #[test]
    fn failures() {
        assert_eq!(
            parse_users(br#"{"code":1010,"message":"The request was not processed."}"#).unwrap(),
            WebexBody::Failure {
                code: "1010".into(),
                message: "The request was not processed.".into()
            }
        );
        assert!(matches!(
            parse_users(br#"{"code":"1003","users":[]}"#).unwrap(),
            WebexBody::Failure { .. }
        ));
        assert!(parse_users(br#"{"hello":1}"#).is_err());
        assert!(parse_users(br#"[{"display_name":"no id"}]"#).is_err());
        assert!(parse_users(b"42").is_err());
    }
}
