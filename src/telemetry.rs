//! What `rebalancer run` shows while it runs: Prometheus metrics at
//! `/metrics` and Kubernetes probes at `/healthz` (the process is up) and
//! `/readyz` (the last cycle succeeded within two intervals), served with
//! axum on `run.metrics_addr`.
//!
//! Series (all prefixed `rebalancer_`):
//! - `cycle_duration_seconds{stage="fetch"|"plan"|"apply"}` (histogram),
//! - `cycles_total{outcome}`, `moves_applied_total`,
//!   `puts_total{outcome="sent"|"failed"}`, `retries_total`,
//!   `drifted_leads_total` (counters),
//! - `shortfall_records`, `peak_utilisation` (after each cycle's plan),
//!   `cms_gets_per_lead` (the cycle's fetch) and
//!   `last_success_timestamp_seconds` (gauges),
//! - `malformed_bodies_retried_total` (counter): reads of a cycle, its
//!   fetch's and its apply's, whose 2xx body was malformed or truncated and
//!   was read again.

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Readiness: when the last cycle succeeded, and how often cycles come.
#[derive(Debug)]
pub struct Health {
    /// Unix seconds of the last successful cycle; 0 = none yet.
    last_success: AtomicI64,
    interval: Duration,
    started: i64,
}

impl Health {
    fn unix_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    /// A cycle succeeded now.
    pub fn succeeded(&self) {
        let now = Self::unix_now();
        self.last_success.store(now, Ordering::Relaxed);
        metrics::gauge!("rebalancer_last_success_timestamp_seconds").set(now as f64);
    }

    /// Ready when a cycle succeeded within two intervals (and, before the
    /// first success, while the first cycle may still be running).
    fn ready(&self) -> bool {
        let window = (2 * self.interval.as_secs().max(1)) as i64;
        let now = Self::unix_now();
        match self.last_success.load(Ordering::Relaxed) {
            0 => now - self.started <= window,
            t => now - t <= window,
        }
    }
}

/// The metrics recorder and the server that shows it.
pub struct Telemetry {
    pub health: Arc<Health>,
}

/// Install the recorder and serve `/metrics`, `/healthz` and `/readyz` on
/// `addr` (`run.metrics_addr`).
pub async fn serve(addr: &str, interval: Duration) -> anyhow::Result<Telemetry> {
    let addr: SocketAddr = addr.parse().with_context(|| {
        format!("run.metrics_addr = {addr:?} is not an address like \"0.0.0.0:9090\"; fix the key")
    })?;
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let health = Arc::new(Health {
        last_success: AtomicI64::new(0),
        interval,
        started: Health::unix_now(),
    });
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on run.metrics_addr {addr}; pick a free address")
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let app = Router::new()
        .route("/metrics", get(render))
        .with_state(handle)
        .merge(
            Router::new()
                .route("/healthz", get(|| async { "ok\n" }))
                .route("/readyz", get(ready))
                .with_state(health.clone()),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });
    tracing::info!(addr = %bound, "metrics at /metrics, probes at /healthz and /readyz");
    Ok(Telemetry { health })
}

async fn render(State(handle): State<PrometheusHandle>) -> String {
    handle.render()
}

async fn ready(State(health): State<Arc<Health>>) -> (StatusCode, &'static str) {
    if health.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no successful cycle within two intervals\n",
        )
    }
}
