//! The dialer CMS: GET lead-user (a lead's assigned / unassigned agents) and
//! PUT campaignLeadUserMapping (assign / unassign), both with Basic auth.
//!
//! Paging ASSUMPTION (the contract only says "limit: number of records",
//! "offset: pagination offset"): `limit` (capped at `cms_max_limit`) and
//! `offset` apply to each list independently — a page holds
//! `assignedUserIds[offset..offset+limit]` and
//! `unassignedUserIds[offset..offset+limit]`, with the matching
//! `*CampaignUserIds`. A client pages until both lists come back shorter
//! than the limit. Lists are in username order.
//!
//! PUT: every user named must be a CMS user in the lead's pool (its assigned
//! and unassigned users), else 400, so pools never change. Every PUT
//! received is logged as a [`WriteRecord`], faulted and refused ones too.
//!
//! Error-body ASSUMPTION: the contract shows only the 404 body
//! (`CONF-1001`); 400, 401 and 500 use the same shape with invented codes
//! `CONF-1000`, `AUTH-1001` and `CONF-5000`. `limit` must be at least 1.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth;
use crate::faults::{
    html_response, json_response, malformed_response, AfterApply, Endpoint, Fault,
};
use crate::state::{Shared, WriteRecord};

/// The CMS routes.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/cms/configuration/cc/{cc}/process/{process}/campaign/{campaign}/lead-user",
            get(get_lead_user),
        )
        .route(
            "/cms/configuration/voice/campaignLeadUserMapping",
            put(put_mapping),
        )
}

/// A lead's mapping (GET) or the echo of a change (PUT).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LeadUser {
    campaign_lead_id: u64,
    assigned_campaign_user_ids: Vec<u64>,
    unassigned_campaign_user_ids: Vec<u64>,
    lead_id: u64,
    campaign_id: u64,
    assigned_user_ids: Vec<String>,
    unassigned_user_ids: Vec<String>,
}

/// The PUT body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MappingChange {
    lead_id: u64,
    campaign_id: u64,
    assigned_user_ids: Vec<String>,
    unassigned_user_ids: Vec<String>,
}

/// A CMS error body (the CONF-1001 shape of the contract).
fn error_body(status: u16, reason: &str, code: &str, message: &str) -> serde_json::Value {
    json!({
        "statusCode": status,
        "status": reason,
        "errorCode": code,
        "errorMessage": message,
    })
}

/// A CMS error response.
fn error(status: u16, reason: &str, code: &str, message: &str) -> Response {
    json_response(status, &error_body(status, reason, code, message), None)
}

fn bad_request(message: &str) -> Response {
    error(400, "Bad Request", "CONF-1000", message)
}

fn not_found() -> Response {
    error(404, "Not Found", "CONF-1001", "Object doesn't exist")
}

fn unauthorized() -> Response {
    error(401, "Unauthorized", "AUTH-1001", "Invalid credentials")
}

/// The CMS's answer to an injected fault.
fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Html => html_response(),
        Fault::Malformed => {
            malformed_response(r#"{"campaignLeadId":1,"assignedCampaignUserIds":[30"#)
        }
        Fault::Empty { null } => {
            let ids = if null { json!(null) } else { json!([]) };
            Json(json!({
                "assignedUserIds": ids, "unassignedUserIds": ids,
                "assignedCampaignUserIds": ids, "unassignedCampaignUserIds": ids,
            }))
            .into_response()
        }
        Fault::Status {
            status,
            retry_after,
        } => {
            let (reason, code, message) = match status {
                429 => ("Too Many Requests", "CONF-4290", "Too many requests"),
                400..=499 => ("Client Error", "CONF-1000", "Request rejected"),
                _ => (
                    "Internal Server Error",
                    "CONF-5000",
                    "Internal server error",
                ),
            };
            json_response(
                status,
                &error_body(status, reason, code, message),
                retry_after,
            )
        }
    }
}

/// Faults (for the request `key`), then Basic auth.
async fn admit(
    shared: &Shared,
    endpoint: Endpoint,
    key: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    if let Some(fault) = shared.before(endpoint, key).await {
        return Some(fault_response(fault));
    }
    let c = &shared.credentials;
    if !auth::basic(headers, &c.cms_username, &c.cms_password) {
        return Some(unauthorized());
    }
    None
}

/// A required non-negative integer query parameter; the error is the
/// message of the 400 answer.
fn required(params: &BTreeMap<String, String>, name: &str) -> Result<u64, String> {
    let value = params
        .get(name)
        .ok_or_else(|| format!("Required parameter '{name}' is missing"))?;
    value
        .trim()
        .parse()
        .map_err(|_| format!("Parameter '{name}' must be a non-negative integer"))
}

async fn get_lead_user(
    State(shared): State<Arc<Shared>>,
    Path((cc, process, campaign)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    // Faults are keyed by the campaign and the query (lead, page).
    let key = format!("{campaign}?{}", query.as_deref().unwrap_or(""));
    if let Some(rejected) = admit(&shared, Endpoint::CmsGet, &key, &headers).await {
        return rejected;
    }
    let (Ok(cc), Ok(process), Ok(campaign)) = (
        cc.parse::<u64>(),
        process.parse::<u64>(),
        campaign.parse::<u64>(),
    ) else {
        return bad_request("Path parameters must be integers");
    };
    let params = crate::params(query.as_deref().map(str::as_bytes));
    let (lead_id, limit, offset) = match (
        required(&params, "leadId"),
        required(&params, "limit"),
        required(&params, "offset"),
    ) {
        (Ok(l), Ok(n), Ok(o)) => (l, n, o),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return bad_request(&e),
    };
    if limit == 0 {
        return bad_request("Parameter 'limit' must be at least 1");
    }
    let world = &shared.world;
    let known_campaign = world
        .campaign(campaign)
        .is_some_and(|c| c.process_id == process);
    let lead = match world.lead(campaign, lead_id) {
        Some(lead) if cc == world.contact_center_id && known_campaign => lead,
        _ => return not_found(),
    };
    let limit = (limit as usize).min(shared.cms_max_limit);
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let (assigned, unassigned) = shared.with_mapping(lead, |m| {
        let page = |set: &std::collections::BTreeSet<usize>| -> Vec<usize> {
            set.iter().skip(offset).take(limit).copied().collect()
        };
        (page(&m.assigned), page(&m.unassigned))
    });
    tracing::debug!(campaign, lead_id, offset, limit, "cms lead-user");
    Json(lead_user(&shared, lead, &assigned, &unassigned)).into_response()
}

/// The response body for these users of a lead.
fn lead_user(shared: &Shared, lead: usize, assigned: &[usize], unassigned: &[usize]) -> LeadUser {
    let users = &shared.world.users;
    let ids = |v: &[usize]| -> Vec<u64> {
        v.iter()
            .filter_map(|&u| users[u].campaign_user_id)
            .collect()
    };
    let names =
        |v: &[usize]| -> Vec<String> { v.iter().map(|&u| users[u].username.clone()).collect() };
    let l = &shared.world.leads[lead];
    LeadUser {
        campaign_lead_id: l.campaign_lead_id,
        assigned_campaign_user_ids: ids(assigned),
        unassigned_campaign_user_ids: ids(unassigned),
        lead_id: l.lead_id,
        campaign_id: l.campaign_id,
        assigned_user_ids: names(assigned),
        unassigned_user_ids: names(unassigned),
    }
}

async fn put_mapping(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = shared.put_started();
    let at = shared.elapsed();
    let change = serde_json::from_slice::<MappingChange>(&body).map_err(|e| e.to_string());
    let (response, assigned_after) = put_answer(&shared, &headers, &change).await;
    let sent = change.as_ref().ok();
    shared.log_write(WriteRecord {
        at,
        campaign_id: sent.map_or(0, |c| c.campaign_id),
        lead_id: sent.map_or(0, |c| c.lead_id),
        assigned: sent
            .map(|c| c.assigned_user_ids.clone())
            .unwrap_or_default(),
        unassigned: sent
            .map(|c| c.unassigned_user_ids.clone())
            .unwrap_or_default(),
        applied: assigned_after.is_some(),
        assigned_after: assigned_after.unwrap_or_default(),
        status: response.status().as_u16(),
    });
    response
}

/// The answer to one PUT and, when the change was applied, the lead's
/// assigned usernames (sorted) right after it.
///
/// Order: faults decided before the change (latency, `fail_first`, 500,
/// 429, malformed, empty: nothing is applied), Basic auth, the body (400),
/// the lead (404), the users (400: unknown, not a CMS user, outside the
/// lead's pool, or in both lists), then the change, then an after-apply
/// fault if one was drawn.
async fn put_answer(
    shared: &Shared,
    headers: &HeaderMap,
    change: &Result<MappingChange, String>,
) -> (Response, Option<Vec<String>>) {
    // Faults are keyed by the lead written (the body's, when it parses).
    let key = match change {
        Ok(c) => format!("{}/{}", c.campaign_id, c.lead_id),
        Err(_) => String::new(),
    };
    let (fault, after_apply) = shared.before_write(Endpoint::CmsPut, &key).await;
    if let Some(fault) = fault {
        return (fault_response(fault), None);
    }
    let c = &shared.credentials;
    if !auth::basic(headers, &c.cms_username, &c.cms_password) {
        return (unauthorized(), None);
    }
    let change = match change {
        Ok(change) => change,
        Err(e) => return (bad_request(&format!("Invalid request body: {e}")), None),
    };
    let world = &shared.world;
    let Some(lead) = world.lead(change.campaign_id, change.lead_id) else {
        return (not_found(), None);
    };
    // Every id must be a CMS user of the contact center in the lead's pool,
    // and in one list only.
    let pool = world.pool(lead);
    let resolve = |names: &[String]| -> Result<Vec<usize>, String> {
        names
            .iter()
            .map(|name| {
                let u = world
                    .user_by_name(name)
                    .filter(|&u| world.users[u].campaign_user_id.is_some())
                    .ok_or_else(|| format!("Invalid user id '{name}'"))?;
                if pool.contains(&u) {
                    Ok(u)
                } else {
                    Err(format!(
                        "User id '{name}' is not a user of lead {} in campaign {}",
                        change.lead_id, change.campaign_id
                    ))
                }
            })
            .collect()
    };
    let (assign, unassign) = match (
        resolve(&change.assigned_user_ids),
        resolve(&change.unassigned_user_ids),
    ) {
        (Ok(a), Ok(u)) => (a, u),
        (Err(e), _) | (_, Err(e)) => return (bad_request(&e), None),
    };
    if let Some(both) = assign.iter().find(|u| unassign.contains(u)) {
        let name = &world.users[*both].username;
        let message = format!("User id '{name}' is in both assignedUserIds and unassignedUserIds");
        return (bad_request(&message), None);
    }
    let assigned_after = shared.with_mapping(lead, |m| {
        for &u in &assign {
            m.unassigned.remove(&u);
            m.assigned.insert(u);
        }
        for &u in &unassign {
            m.assigned.remove(&u);
            m.unassigned.insert(u);
        }
        let mut names: Vec<String> = m
            .assigned
            .iter()
            .map(|&u| world.users[u].username.clone())
            .collect();
        names.sort();
        names
    });
    tracing::debug!(
        campaign = change.campaign_id,
        lead = change.lead_id,
        assigned = assign.len(),
        unassigned = unassign.len(),
        "cms mapping changed"
    );
    let response = match after_apply {
        Some(AfterApply::Status500) => fault_response(Fault::Status {
            status: 500,
            retry_after: None,
        }),
        Some(AfterApply::Malformed) => fault_response(Fault::Malformed),
        None => {
            let mut echo = lead_user(shared, lead, &assign, &unassign);
            echo.assigned_user_ids = change.assigned_user_ids.clone();
            echo.unassigned_user_ids = change.unassigned_user_ids.clone();
            Json(echo).into_response()
        }
    };
    (response, Some(assigned_after))
}
