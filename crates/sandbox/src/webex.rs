//! Webex Campaign: GET `/campaignapi/resources/v3/users/` (with or without the
//! trailing slash, optional `?username=` matching a username or, ignoring
//! case, an email), `Authorization: Bearer <api key>`.
//!
//! Body ASSUMPTION: the contract lists the per-user fields but not the
//! envelope; the sandbox answers `{"users":[...]}` (an empty list when the
//! `username` filter matches nobody). `user_groups` is an array of group
//! names, `user_id` and `role_id` are integers, dates are
//! `YYYY-MM-DD hh:mm:ss` strings.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::auth;
use crate::faults::{html_response, json_response, malformed_response, Endpoint, Fault};
use crate::generate::User;
use crate::state::Shared;

/// The Webex routes.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/campaignapi/resources/v3/users/", get(users))
        .route("/campaignapi/resources/v3/users", get(users))
}

/// One user as Webex Campaign prints it.
#[derive(Debug, Serialize)]
struct WireUser<'a> {
    username: &'a str,
    user_email: &'a str,
    display_name: String,
    role_id: u64,
    role_desc: &'a str,
    user_status: &'a str,
    role_status: &'a str,
    user_last_login_date: &'a str,
    user_groups: &'a [String],
    user_last_modified_date: &'a str,
    user_id: u64,
    user_first_name: &'a str,
    user_last_name: &'a str,
    user_creation_date: &'a str,
}

#[derive(Debug, Serialize)]
struct Users<'a> {
    users: Vec<WireUser<'a>>,
}

/// A user as Webex reports it, with `active` as it is now (tests may have
/// changed it).
fn wire(user: &User, active: bool) -> Option<WireUser<'_>> {
    let w = user.webex.as_ref()?;
    Some(WireUser {
        username: &user.username,
        user_email: &w.email,
        display_name: format!("{} {}", user.first_name, user.last_name),
        role_id: w.role_id,
        role_desc: w.role_desc,
        user_status: if active { "Active" } else { "Inactive" },
        role_status: "Active",
        user_last_login_date: &w.last_login,
        user_groups: &w.groups,
        user_last_modified_date: &w.last_modified,
        user_id: w.user_id,
        user_first_name: &user.first_name,
        user_last_name: &user.last_name,
        user_creation_date: &w.created,
    })
}

/// A Webex error body: `{"code":..,"message":..}`.
fn error(status: u16, code: u16, message: &str, retry_after: Option<u64>) -> Response {
    json_response(
        status,
        &json!({ "code": code, "message": message }),
        retry_after,
    )
}

/// Webex's answer to an injected fault. `fail_status` 200 gives the
/// "not processed" (1010) body with HTTP 200, 498 the expired-token body.
fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Html => html_response(),
        Fault::Malformed => malformed_response(r#"{"users":[{"username":"agent0001","user_em"#),
        Fault::Empty { null } => {
            let users = if null { json!(null) } else { json!([]) };
            Json(json!({ "users": users })).into_response()
        }
        Fault::Status {
            status,
            retry_after,
        } => match status {
            200 => error(200, 1010, "The request was not processed.", None),
            401 => unauthorized(),
            405 => error(405, 405, "Method not supported", None),
            429 => error(
                429,
                429,
                "Too many requests. Throttle limit reached for the time window.",
                retry_after,
            ),
            498 => error(498, 498, "Invalid token or Access token expired", None),
            499 => error(
                499,
                499,
                "Request failed. Check the exact reason of failure in application code and description of error stream.",
                None,
            ),
            other => error(other, 500, "Internal server error", None),
        },
    }
}

fn unauthorized() -> Response {
    error(
        401,
        430,
        "Authorization failed. This resource is not allowed to access using this TOKEN or KEY",
        None,
    )
}

async fn users(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let key = query.as_deref().unwrap_or("");
    if let Some(fault) = shared.before(Endpoint::Webex, key).await {
        return fault_response(fault);
    }
    if auth::bearer(&headers) != Some(shared.credentials.webex_api_key.as_str()) {
        return unauthorized();
    }
    let params = crate::params(query.as_deref().map(str::as_bytes));
    let world = &shared.world;
    let overrides = shared.overrides();
    let wire_user = |u: usize| wire(&world.users[u], overrides.active(u, &world.users[u]));
    let body = match params
        .get("username")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        Some(wanted) => {
            let found = world
                .user_by_name(wanted)
                .or_else(|| world.user_by_email(wanted));
            Users {
                users: found.and_then(wire_user).into_iter().collect(),
            }
        }
        None => Users {
            users: (0..world.users.len()).filter_map(wire_user).collect(),
        },
    };
    tracing::debug!(users = body.users.len(), "webex users");
    Json(body).into_response()
}
