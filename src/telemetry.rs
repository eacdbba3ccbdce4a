//! What `rebalancer run` shows while it runs: Prometheus metrics at
//! `/metrics` and Kubernetes probes at `/healthz` (the process is up) and
//! `/readyz`, served with axum on `run.metrics_addr` (checked at load,
//! `settings::metrics_addr`; not served under `--once` unless
//! `run.metrics_on_once`).
//!
//! `/readyz` is ready only after a cycle has succeeded, and only until the
//! deadline that success set: the next expected start plus one nominal
//! interval plus the cycle's own time (`Schedule::ready_until`, computed
//! per cycle). A failed cycle changes nothing; the next success makes the
//! loop ready again. `Readiness::check` is the pure decision.
//!
//! Series (all prefixed `rebalancer_`):
//! - `cycle_duration_seconds{stage="fetch"|"plan"|"apply"}` (histogram),
//! - `cycles_total{outcome}`, `moves_applied_total`,
//!   `puts_total{outcome="sent"|"failed"}`, `retries_total`,
//!   `drifted_leads_total`, `journal_write_failures_total` (counters),
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
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The metrics server could not start (exit 8, like any output that
/// cannot be written).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot bind run.metrics_addr {addr}: {source}; another process listens there (9090 is Prometheus's own port): pick a free port, or leave run.metrics_addr empty")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What readiness is decided from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readiness {
    /// When the last successful cycle ended; `None`: none yet.
    pub last_success: Option<DateTime<Utc>>,
    /// Until when that success keeps the loop ready; `None`: no deadline
    /// (`--once`, or a schedule with no next time).
    pub until: Option<DateTime<Utc>>,
}

impl Readiness {
    /// Ready at `now`, or why not (the 503 body).
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), String> {
        let Some(last) = self.last_success else {
            return Err("no cycle has succeeded yet".into());
        };
        match self.until {
            Some(until) if now > until => Err(format!(
                "the last successful cycle ended at {}; another was expected by {}",
                last.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            _ => Ok(()),
        }
    }
}

/// Readiness, shared by the loop and the server.
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<Readiness>,
}

impl Health {
    /// A cycle succeeded at `ended`; it keeps the loop ready until `until`.
    pub fn succeeded(&self, ended: DateTime<Utc>, until: Option<DateTime<Utc>>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state = Readiness {
            last_success: Some(ended),
            until,
        };
        metrics::gauge!("rebalancer_last_success_timestamp_seconds")
            .set(ended.timestamp_millis() as f64 / 1000.0);
    }

    fn check(&self, now: DateTime<Utc>) -> Result<(), String> {
        let state = *self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.check(now)
    }
}

/// The metrics recorder and the server that shows it.
pub struct Telemetry {
    pub health: Arc<Health>,
}

/// Bind `addr` (`run.metrics_addr`), install the recorder and serve
/// `/metrics`, `/healthz` and `/readyz`. A port in use is a
/// `TelemetryError::Bind`.
pub async fn serve(addr: SocketAddr) -> anyhow::Result<Telemetry> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let health = Arc::new(Health::default());
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

async fn ready(State(health): State<Arc<Health>>) -> (StatusCode, String) {
    match health.check(Utc::now()) {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Schedule;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, h, m, s).unwrap()
    }

    /// Finding #13: after a failed first cycle the loop said ready.
    #[test]
    fn not_ready_before_a_cycle_has_succeeded() {
        let health = Health::default();
        let e = health.check(at(12, 0, 0)).unwrap_err();
        assert!(e.contains("no cycle has succeeded"), "{e}");
    }

    /// Finding #13: with `0,5 * * * * *` the window taken once at start
    /// made /readyz 503 for half of each minute while every cycle
    /// succeeded. Per cycle, each success lasts until after the next.
    #[test]
    fn each_success_keeps_the_loop_ready_until_the_next_is_overdue() {
        let s = Schedule::cron("run.cron", "0,5 * * * * *", "run.timezone", "UTC").unwrap();
        let health = Health::default();
        let second = chrono::Duration::seconds(1);
        // Cycles at :00 and :05 of each minute, each 1 s long, all
        // succeeding: ready at every second of three minutes.
        let mut start = at(12, 0, 0);
        let mut checked = at(12, 0, 1);
        while start < at(12, 3, 0) {
            let end = start + second;
            health.succeeded(end, s.ready_until(start, end));
            let next = s.next_start(start, end).unwrap();
            while checked < next + second {
                assert_eq!(health.check(checked), Ok(()), "at {checked}");
                checked += second;
            }
            start = next;
        }
        // The :00 cycle of 12:03 fails: still ready through its gap, not
        // ready once the :05 cycle is overdue too, ready on the next success.
        let last = at(12, 2, 5);
        let until = s.ready_until(last, last + second).unwrap();
        assert_eq!(until, at(12, 3, 6));
        assert_eq!(health.check(at(12, 3, 6)), Ok(()));
        let e = health.check(at(12, 3, 7)).unwrap_err();
        assert!(e.contains("12:02:06") && e.contains("12:03:06"), "{e}");
        health.succeeded(at(12, 3, 8), s.ready_until(at(12, 3, 7), at(12, 3, 8)));
        assert_eq!(health.check(at(12, 3, 9)), Ok(()));
    }

    /// Finding #13: a weekday expression stays ready over the weekend.
    #[test]
    fn a_weekday_schedule_is_ready_all_weekend() {
        let s = Schedule::cron("run.cron", "0 9 * * 1-5", "run.timezone", "UTC").unwrap();
        let friday = Utc.with_ymd_and_hms(2026, 1, 2, 9, 0, 0).unwrap();
        let ended = friday + chrono::Duration::minutes(2);
        let r = Readiness {
            last_success: Some(ended),
            until: s.ready_until(friday, ended),
        };
        let sunday = Utc.with_ymd_and_hms(2026, 1, 4, 23, 0, 0).unwrap();
        assert_eq!(r.check(sunday), Ok(()));
        // Monday's cycle failed: ready until Tuesday's would be done.
        let tuesday = Utc.with_ymd_and_hms(2026, 1, 6, 9, 2, 0).unwrap();
        assert_eq!(r.check(tuesday), Ok(()));
        assert!(r.check(tuesday + chrono::Duration::seconds(1)).is_err());
    }
}
