//! The console's errors: what stops it from serving (each names the
//! address and the fix), and [`Refusal`], what a request is refused with
//! (a status and a message), rendered as JSON by the API and as a page by
//! the pages. axum's own rejections (a path id that is not a number, a
//! malformed query or form) become refusals too, so every answer, even to
//! a bad URL, says what to send instead in the console's own shape.

use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use rebalancer_applier::ApplyError;
use std::net::SocketAddr;

/// Why the console cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot listen on {addr} (console.addr): {source}; fix: pick a free port (or stop what uses it), or \"127.0.0.1:0\" for any free one")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the console stopped serving: {0}")]
    Serve(std::io::Error),
}

/// A request refused: its status and what to tell the caller.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No (valid) credentials: 401.
    Unauthenticated,
    /// Signed in, but not allowed (a viewer's decision, a bad CSRF token):
    /// 403.
    Forbidden(String),
    /// 404.
    NotFound(String),
    /// The proposal is no longer pending: 409.
    Conflict(String),
    /// 400.
    BadRequest(String),
    /// Too many failed sign-ins: 429.
    TooMany,
    /// The journal could not answer: 503.
    Journal(String),
}

impl Refusal {
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode as S;
        match self {
            Refusal::Unauthenticated => S::UNAUTHORIZED,
            Refusal::Forbidden(_) => S::FORBIDDEN,
            Refusal::NotFound(_) => S::NOT_FOUND,
            Refusal::Conflict(_) => S::CONFLICT,
            Refusal::BadRequest(_) => S::BAD_REQUEST,
            Refusal::TooMany => S::TOO_MANY_REQUESTS,
            Refusal::Journal(_) => S::SERVICE_UNAVAILABLE,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Unauthenticated => {
                "sign in first: send `Authorization: Bearer TOKEN`, or sign in at /login".into()
            }
            Refusal::TooMany => "too many failed sign-ins; wait a minute and try again".into(),
            Refusal::Forbidden(m)
            | Refusal::NotFound(m)
            | Refusal::Conflict(m)
            | Refusal::BadRequest(m)
            | Refusal::Journal(m) => m.clone(),
        }
    }
}

impl From<ApplyError> for Refusal {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::NoSuchProposal(id) => Refusal::NotFound(format!("no plan {id}")),
            ApplyError::NoSuchRun(id) => Refusal::NotFound(format!("no run {id}")),
            e @ ApplyError::NotPending { .. } => Refusal::Conflict(e.to_string()),
            other => {
                tracing::error!(error = %other, "the journal could not answer the console");
                Refusal::Journal(format!("the journal could not answer: {other}"))
            }
        }
    }
}

impl From<PathRejection> for Refusal {
    fn from(r: PathRejection) -> Self {
        Refusal::BadRequest(format!(
            "{}; ids are whole numbers, as in /plans/12 or /api/runs/3",
            r.body_text()
        ))
    }
}

impl From<QueryRejection> for Refusal {
    fn from(r: QueryRejection) -> Self {
        Refusal::BadRequest(format!(
            "{}; `limit` is a whole number (at most {}) and `state` one of pending, approved, rejected, applied, superseded, expired",
            r.body_text(),
            crate::store::MAX_LIMIT
        ))
    }
}

impl From<FormRejection> for Refusal {
    fn from(r: FormRejection) -> Self {
        Refusal::BadRequest(format!(
            "{}; send the decision from the plan's page (csrf, decision, comment)",
            r.body_text()
        ))
    }
}
