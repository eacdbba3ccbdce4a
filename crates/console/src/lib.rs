//! `rebalancer console`: web pages and a JSON API over the journal, where
//! people see what the engine did and will do, and approve or reject the
//! plans `run` proposes (`run.approval`). It reads and writes the same
//! journal as `run` (SQLite or PostgreSQL), so it works beside replicas:
//! a decision is one conditional change in the journal, and the replica
//! holding the lease applies an approved plan.
//!
//! - `auth`: users (`[[console.users]]`, tokens kept as SHA-256 digests and
//!   compared in constant time), browser sessions (an HttpOnly,
//!   SameSite=Strict cookie), CSRF tokens, the failed-login limit;
//! - `api`: the JSON API (`/api/...`, `Authorization: Bearer TOKEN` or a
//!   session with its `X-CSRF-Token`);
//! - `pages`: the HTML pages (overview, plans, a plan with its report and
//!   the decision form, runs and cycles, login), no script anywhere;
//! - `store`: the journal's reads and decisions, off the async threads;
//! - `headers`: the security headers of every response (a
//!   Content-Security-Policy that allows no script at all);
//! - `probes`: `/healthz` and `/readyz` (the journal answers), without
//!   credentials, for a process supervisor or Kubernetes.
//!
//! Deliberately absent: TLS (serve it behind a TLS-terminating proxy),
//! single sign-on, sessions that survive a restart or span console
//! replicas (each console keeps its own; a restart signs everyone out).

mod api;
mod auth;
mod error;
mod headers;
mod pages;
mod probes;
mod store;

pub use auth::{new_token, token_digest_hex};
pub use error::ConsoleError;

use axum::routing::{get, post};
use axum::Router;
use rebalancer_applier::JournalLocation;
use rebalancer_ops::console::ConsoleSettings;
use rebalancer_ops::schedule::Schedule;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the console serves.
#[derive(Debug, Clone)]
pub struct Console {
    pub settings: ConsoleSettings,
    pub journal: JournalLocation,
    /// `run`'s schedule, for the overview's next cycle (`None`: `run` is
    /// not scheduled by this config).
    pub schedule: Option<Schedule>,
}

/// The console's shared state.
pub(crate) struct State {
    pub console: Console,
    pub sessions: auth::Sessions,
    pub logins: auth::LoginLimit,
}

pub(crate) type Shared = Arc<State>;

/// The console's routes.
pub fn router(console: Console) -> Router {
    let state: Shared = Arc::new(State {
        sessions: auth::Sessions::new(console.settings.session_ttl),
        logins: auth::LoginLimit::new(),
        console,
    });
    Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/plans", get(pages::plans))
        .route("/plans/{id}", get(pages::plan))
        .route("/plans/{id}/decide", post(pages::decide))
        .route("/history", get(pages::history))
        .route("/runs/{id}", get(pages::run))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/api/overview", get(api::overview))
        .route("/api/plans", get(api::plans))
        .route("/api/plans/{id}", get(api::plan))
        .route("/api/plans/{id}/report", get(api::report))
        .route("/api/plans/{id}/approve", post(api::approve))
        .route("/api/plans/{id}/reject", post(api::reject))
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{id}", get(api::run))
        .route("/api/cycles", get(api::cycles))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(headers::secure))
        .with_state(state)
}

/// Serve the console on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Console,
    stop: CancellationToken,
) -> Result<(), ConsoleError> {
    let app = router(console);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(ConsoleError::Serve)
}

/// Bind `console.addr` (a busy port is [`ConsoleError::Bind`]).
pub async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, ConsoleError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ConsoleError::Bind { addr, source })
}
