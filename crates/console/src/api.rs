//! The JSON API: what the pages show, for scripts. Every route needs
//! credentials (`Authorization: Bearer TOKEN`, or a session cookie; a
//! session's writes also carry `X-CSRF-Token`); refusals are JSON
//! `{"error": "..."}` with 400, 401, 403, 404, 409, 429 or 503.
//!
//! `GET /api/overview`, `GET /api/plans?state=&limit=`, `GET
//! /api/plans/{id}` (the plan JSON), `GET /api/plans/{id}/report` (HTML),
//! `POST /api/plans/{id}/approve` and `/reject` (body `{"comment":
//! "..."}`), `GET /api/runs?limit=`, `GET /api/runs/{id}` (its leads and
//! PUTs), `GET /api/cycles?limit=`.

use crate::auth::{self, Who};
use crate::error::Refusal;
use crate::{store, Shared};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use axum_extra::extract::WithRejection;
use rebalancer_applier::proposals::{Decision, ProposalState};
use serde::Deserialize;

/// Longest decision comment, in bytes.
pub(crate) const MAX_COMMENT: usize = 2000;

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response =
            (status, Json(serde_json::json!({ "error": self.message() }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rebalancer console\""),
            );
        }
        response
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    pub state: Option<String>,
    pub limit: Option<usize>,
}

impl ListQuery {
    pub fn state(&self) -> Result<Option<ProposalState>, Refusal> {
        match self.state.as_deref().map(str::trim) {
            None | Some("") | Some("all") => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| {
                Refusal::BadRequest(format!(
                    "state `{s}` is not one of pending, approved, rejected, applied, superseded, expired"
                ))
            }),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, store::MAX_LIMIT)
    }
}

pub(crate) async fn overview(
    _caller: Who,
    State(state): State<Shared>,
) -> Result<Response, Refusal> {
    let o = store::overview(&state.console.journal, state.console.schedule.as_ref()).await?;
    Ok(Json(o).into_response())
}

pub(crate) async fn plans(
    _caller: Who,
    State(state): State<Shared>,
    WithRejection(Query(q), _): WithRejection<Query<ListQuery>, Refusal>,
) -> Result<Response, Refusal> {
    let list = store::proposals(&state.console.journal, q.state()?, q.limit()).await?;
    Ok(Json(list).into_response())
}

pub(crate) async fn plan(
    _caller: Who,
    State(state): State<Shared>,
    WithRejection(Path(id), _): WithRejection<Path<i64>, Refusal>,
) -> Result<Response, Refusal> {
    let json = store::plan_json(&state.console.journal, id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

pub(crate) async fn report(
    _caller: Who,
    State(state): State<Shared>,
    WithRejection(Path(id), _): WithRejection<Path<i64>, Refusal>,
) -> Result<Response, Refusal> {
    let html = store::report(&state.console.journal, id).await?;
    if html.is_empty() {
        return Err(Refusal::NotFound(format!(
            "plan {id} was proposed without a report"
        )));
    }
    Ok(Html(html).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionBody {
    #[serde(default)]
    pub comment: String,
}

pub(crate) async fn approve(
    who: Who,
    state: State<Shared>,
    headers: HeaderMap,
    id: WithRejection<Path<i64>, Refusal>,
    body: Bytes,
) -> Result<Response, Refusal> {
    decide(who, state, headers, id, body, Decision::Approve).await
}

pub(crate) async fn reject(
    who: Who,
    state: State<Shared>,
    headers: HeaderMap,
    id: WithRejection<Path<i64>, Refusal>,
    body: Bytes,
) -> Result<Response, Refusal> {
    decide(who, state, headers, id, body, Decision::Reject).await
}

async fn decide(
    who: Who,
    State(state): State<Shared>,
    headers: HeaderMap,
    WithRejection(Path(id), _): WithRejection<Path<i64>, Refusal>,
    body: Bytes,
    decision: Decision,
) -> Result<Response, Refusal> {
    who.check_csrf(headers.get(auth::CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    who.may_decide()?;
    let comment = checked_comment(&decision_body(&body)?.comment)?;
    let decided = store::decide(&state.console.journal, id, decision, who.name, comment).await?;
    Ok(Json(decided).into_response())
}

/// A decision's body: none, or JSON `{"comment": "..."}` whatever the
/// content type says (scripts often send none; accept them).
fn decision_body(body: &[u8]) -> Result<DecisionBody, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DecisionBody::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        Refusal::BadRequest(format!(
            "the body is not a decision ({e}); send {{\"comment\": \"why\"}} or no body"
        ))
    })
}

/// A decision's comment: at most [`MAX_COMMENT`] bytes, no control
/// characters but line breaks.
pub(crate) fn checked_comment(comment: &str) -> Result<String, Refusal> {
    let comment = comment.trim();
    if comment.len() > MAX_COMMENT {
        return Err(Refusal::BadRequest(format!(
            "the comment is {} bytes; at most {MAX_COMMENT}",
            comment.len()
        )));
    }
    if comment
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(Refusal::BadRequest(
            "the comment holds control characters; write plain text".into(),
        ));
    }
    Ok(comment.to_owned())
}

pub(crate) async fn runs(
    _caller: Who,
    State(state): State<Shared>,
    WithRejection(Query(q), _): WithRejection<Query<ListQuery>, Refusal>,
) -> Result<Response, Refusal> {
    Ok(Json(store::runs(&state.console.journal, q.limit()).await?).into_response())
}

pub(crate) async fn run(
    _caller: Who,
    State(state): State<Shared>,
    WithRejection(Path(id), _): WithRejection<Path<i64>, Refusal>,
) -> Result<Response, Refusal> {
    Ok(Json(store::run(&state.console.journal, id).await?).into_response())
}

pub(crate) async fn cycles(
    _caller: Who,
    State(state): State<Shared>,
    WithRejection(Query(q), _): WithRejection<Query<ListQuery>, Refusal>,
) -> Result<Response, Refusal> {
    Ok(Json(store::cycles(&state.console.journal, q.limit()).await?).into_response())
}

pub(crate) async fn not_found() -> Refusal {
    Refusal::NotFound("no such page; the console has /, /plans, /history and /api/...".into())
}
