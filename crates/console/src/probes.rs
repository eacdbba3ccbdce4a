//! The probes, the only routes besides sign-in that need no credentials:
//! `/healthz` (the process answers: liveness) and `/readyz` (the journal
//! answers a read: readiness, so a console whose PostgreSQL is away is
//! taken out of its Service). They say nothing about the journal's
//! contents, and a failing journal's error goes to the log, not to the
//! unauthenticated caller.

use crate::{store, Shared};
use axum::extract::State;
use axum::http::StatusCode;

pub(crate) async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok\n")
}

pub(crate) async fn readyz(State(state): State<Shared>) -> (StatusCode, &'static str) {
    // The refusal's detail is logged where the journal's error becomes one.
    match store::cycles(&state.console.journal, 1).await {
        Ok(_) => (StatusCode::OK, "ready\n"),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the journal does not answer (the console's log says why)\n",
        ),
    }
}
