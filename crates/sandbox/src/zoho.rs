//! Zoho: the OAuth token endpoint (`POST /oauth/v2/token`, refresh-token
//! grant; parameters in a form body or the query string) and the assignment
//! threshold users (`GET /crm/{version}/settings/automation/
//! assignment_thresholds/{threshold_id}/restrict_to`) with
//! `Authorization: Zoho-oauthtoken <token>`.
//!
//! A refresh token without the assignment-threshold scope (see
//! `Sandbox::set_zoho_scope_granted`) still gets access tokens; restrict_to
//! then answers 401 OAUTH_SCOPE_MISMATCH, as the contract lists.
//!
//! As Zoho does, bad client credentials or refresh token get HTTP 200
//! `{"error":"invalid_code"}`. A threshold with no users, or a page past the
//! end, gets 204 with an empty body.
//!
//! ASSUMPTIONS: the thresholds belong to the `Leads` module; another valid
//! module gets 400 INVALID_DATA (no such threshold there). A missing `module`
//! gets 400 REQUIRED_PARAM_MISSING; a non-integer or zero `page`/`per_page`
//! gets 400 INVALID_DATA; a version that is not `v<N>` gets 404
//! INVALID_URL_PATTERN. Module names match case-insensitively.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};

use crate::auth;
use crate::faults::{html_response, json_response, malformed_response, Endpoint, Fault};
use crate::generate::MODULE;
use crate::state::Shared;

/// The modules Zoho supports assignment thresholds for.
const MODULES: [&str; 5] = ["Leads", "Contacts", "Accounts", "Deals", "Cases"];

/// The Zoho routes (accounts and CRM API on the same base URL).
pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/oauth/v2/token", post(token)).route(
        "/crm/{version}/settings/automation/assignment_thresholds/{threshold_id}/restrict_to",
        get(restrict_to),
    )
}

#[derive(Debug, Serialize)]
struct ZohoUser<'a> {
    name: String,
    id: &'a str,
    email: &'a str,
}

#[derive(Debug, Serialize)]
struct Entry<'a> {
    backlog_allow_count: u64,
    default_assignee: bool,
    record_allow_count: u64,
    record_assigned_count: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    user: ZohoUser<'a>,
    backlog_count: u64,
}

#[derive(Debug, Serialize)]
struct Info {
    next_page: usize,
    per_page: usize,
    count: usize,
    more_records: bool,
}

#[derive(Debug, Serialize)]
struct RestrictTo<'a> {
    restrict_to: Vec<Entry<'a>>,
    info: Info,
}

/// A Zoho CRM error body.
fn error(status: u16, code: &str, message: &str, details: Value) -> Response {
    let body = json!({
        "code": code,
        "details": details,
        "message": message,
        "status": "error",
    });
    json_response(status, &body, None)
}

fn crm_fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Html => html_response(),
        Fault::Malformed => malformed_response(r#"{"restrict_to":[{"backlog_allow_count":4,"defa"#),
        Fault::Empty { null } => {
            let users = if null { json!(null) } else { json!([]) };
            Json(json!({"restrict_to": users, "info": {"count": 0, "more_records": false}}))
                .into_response()
        }
        Fault::Status {
            status,
            retry_after,
        } => {
            let (code, message) = match status {
                429 => ("TOO_MANY_REQUESTS", "too many requests"),
                401 => ("INVALID_TOKEN", "invalid oauth token"),
                400..=499 => ("INVALID_REQUEST", "the request was rejected"),
                _ => ("INTERNAL_ERROR", "Internal Server Error"),
            };
            let body = json!({"code": code, "details": {}, "message": message, "status": "error"});
            json_response(status, &body, retry_after)
        }
    }
}

fn token_fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Html => html_response(),
        Fault::Malformed => malformed_response(r#"{"access_token":"1000.3f"#),
        Fault::Empty { null } => {
            let body = if null {
                json!({"access_token": null})
            } else {
                json!({})
            };
            Json(body).into_response()
        }
        Fault::Status {
            status,
            retry_after,
        } => {
            let body = match status {
                429 => json!({
                    "error": "Access Denied",
                    "error_description": "You have made too many requests continuously. Please try again after some time."
                }),
                _ => json!({"error": "internal_server_error"}),
            };
            json_response(status, &body, retry_after)
        }
    }
}

async fn token(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(fault) = shared.before(Endpoint::ZohoToken, "").await {
        return token_fault_response(fault);
    }
    // Form body first, the query string fills in what the body lacks.
    let mut params = crate::params(Some(&body));
    for (k, v) in crate::params(query.as_deref().map(str::as_bytes)) {
        params.entry(k).or_insert(v);
    }
    let param = |name: &str| params.get(name).map(String::as_str);
    if param("grant_type") != Some("refresh_token") {
        return Json(json!({"error": "unsupported_grant_type"})).into_response();
    }
    let c = &shared.credentials;
    if param("client_id") != Some(c.zoho_client_id.as_str())
        || param("client_secret") != Some(c.zoho_client_secret.as_str())
        || param("refresh_token") != Some(c.zoho_refresh_token.as_str())
    {
        tracing::debug!("zoho token refused");
        return Json(json!({"error": "invalid_code"})).into_response();
    }
    let access_token = shared.issue_token();
    tracing::debug!("zoho token issued");
    Json(json!({
        "access_token": access_token,
        "api_domain": shared.base_url,
        "token_type": "Bearer",
        "expires_in": shared.token_ttl.as_secs(),
    }))
    .into_response()
}

/// A positive integer parameter with a default; `None` if invalid.
fn positive(value: Option<&String>, default: usize) -> Option<usize> {
    match value {
        None => Some(default),
        Some(v) => v.trim().parse().ok().filter(|&n: &usize| n > 0),
    }
}

fn invalid_param(name: &str) -> Response {
    error(
        400,
        "INVALID_DATA",
        "invalid data",
        json!({"param_name": name}),
    )
}

async fn restrict_to(
    State(shared): State<Arc<Shared>>,
    Path((version, threshold_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let key = format!("{threshold_id}?{}", query.as_deref().unwrap_or(""));
    if let Some(fault) = shared.before(Endpoint::Zoho, &key).await {
        return crm_fault_response(fault);
    }
    if let Some(refused) = token_refusal(&shared, &headers).or_else(|| version_refusal(&version)) {
        return refused;
    }
    restrict_to_page(&shared, &threshold_id, query.as_deref())
}

/// Zoho's answer to a missing, unknown or under-scoped OAuth token, if
/// any.
fn token_refusal(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = auth::zoho_oauthtoken(headers) else {
        return Some(error(
            401,
            "AUTHENTICATION_FAILURE",
            "Authentication failed",
            json!({}),
        ));
    };
    if !shared.token_valid(token) {
        return Some(error(
            401,
            "INVALID_TOKEN",
            "invalid oauth token",
            json!({}),
        ));
    }
    if shared.zoho_scope_missing() {
        return Some(error(
            401,
            "OAUTH_SCOPE_MISMATCH",
            "invalid oauth scope to access this URL",
            json!({}),
        ));
    }
    None
}

/// Zoho's answer to an API version other than `v8` or later, if any.
fn version_refusal(version: &str) -> Option<Response> {
    let Some(version) = version
        .strip_prefix('v')
        .and_then(|n| n.parse::<u32>().ok())
    else {
        return Some(error(
            404,
            "INVALID_URL_PATTERN",
            "Please check if the URL trying to access is a correct one",
            json!({}),
        ));
    };
    if version < 8 {
        return Some(error(
            400,
            "API_NOT_SUPPORTED",
            "this API is not supported in this version",
            json!({"supported_version": 8}),
        ));
    }
    None
}

/// One page of a threshold's `restrict_to` users, or Zoho's answer to a
/// bad module, threshold or paging parameter.
fn restrict_to_page(shared: &Shared, threshold_id: &str, query: Option<&str>) -> Response {
    let params = crate::params(query.map(str::as_bytes));
    let Some(module) = params.get("module") else {
        return error(
            400,
            "REQUIRED_PARAM_MISSING",
            "One of the expected parameter is missing",
            json!({"param_name": "module"}),
        );
    };
    if !MODULES.iter().any(|m| m.eq_ignore_ascii_case(module)) {
        return error(
            400,
            "INVALID_MODULE",
            "the module name given seems to be invalid",
            json!({"param_name": "module"}),
        );
    }
    let world = &shared.world;
    let threshold = match world.threshold(threshold_id) {
        Some(t) if module.eq_ignore_ascii_case(MODULE) => t,
        _ => {
            return error(
                400,
                "INVALID_DATA",
                "the id given seems to be invalid",
                json!({"resource_path_index": 0}),
            )
        }
    };
    let Some(page) = positive(params.get("page"), 1) else {
        return invalid_param("page");
    };
    let Some(per_page) = positive(params.get("per_page"), 200) else {
        return invalid_param("per_page");
    };
    let per_page = per_page.min(shared.zoho_max_per_page);
    let users = &world.thresholds[threshold];
    let start = (page - 1).saturating_mul(per_page);
    if start >= users.len() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let end = start.saturating_add(per_page).min(users.len());
    let overrides = shared.overrides();
    let restrict_to: Vec<Entry<'_>> = users[start..end]
        .iter()
        .filter_map(|&u| {
            let user = &world.users[u];
            // The counts as they are now (tests may have changed them).
            let z = overrides.zoho(u, user)?;
            let id = &user.zoho.as_ref()?.user_id;
            Some(Entry {
                backlog_allow_count: z.backlog_allow_count,
                default_assignee: z.default_assignee,
                record_allow_count: z.record_allow_count,
                record_assigned_count: z.record_assigned_count,
                kind: "user",
                user: ZohoUser {
                    name: format!("{} {}", user.first_name, user.last_name),
                    id,
                    email: &user.email,
                },
                backlog_count: z.backlog_count,
            })
        })
        .collect();
    tracing::debug!(
        threshold_id,
        page,
        per_page,
        count = restrict_to.len(),
        "zoho restrict_to"
    );
    let info = Info {
        next_page: page + 1,
        per_page,
        count: restrict_to.len(),
        more_records: end < users.len(),
    };
    Json(RestrictTo { restrict_to, info }).into_response()
}
