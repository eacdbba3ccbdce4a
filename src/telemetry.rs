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
//! Series: the cycles' own (`rebalancer_ops::series`: outcomes, stage
//! times, plan figures), the build and schedule gauges below; the upstream
//! clients' (`rebalancer_upstream::series`: requests by call and outcome,
//! their latency) and the applier's (`rebalancer_applier::series`: PUTs and
//! moves as each PUT ends) are described there and registered here at
//! start, with the process's own (`process_*`, from `metrics-process`,
//! read at each scrape). Every series an alert reads exists from the first
//! scrape: counters at 0, timestamps at 0, plan figures at NaN (no plan
//! yet), so "never succeeded" and "no data" cannot be mistaken for
//! healthy. Durations are histograms (buckets [`CYCLE_BUCKETS`],
//! [`REQUEST_BUCKETS`]), so quantiles aggregate across replicas.

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rebalancer_ops::series::{CYCLE_BUCKETS, CYCLE_DURATION};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// 1, labelled with the version (gauge).
pub const BUILD_INFO: &str = "rebalancer_build_info";
/// The schedule's nominal seconds between cycles; 0 under `--once`.
pub const INTERVAL: &str = "rebalancer_cycle_interval_seconds";

/// Buckets of the upstream request latency, seconds: local 1–10 ms, WAN
/// reads 50–500 ms, up to the default 30 s timeout.
pub const REQUEST_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

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
        rebalancer_ops::series::succeeded(ended);
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

/// Bind `addr` (`run.metrics_addr`), install the recorder, register every
/// series (`interval`: the schedule's nominal gap, `None` under `--once`)
/// and serve `/metrics`, `/healthz` and `/readyz`. A port in use is a
/// `TelemetryError::Bind`.
pub async fn serve(addr: SocketAddr, interval: Option<Duration>) -> anyhow::Result<Telemetry> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    let handle = recorder()?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let process = Arc::new(metrics_process::Collector::default());
    describe(interval);
    process.describe();
    let health = Arc::new(Health::default());
    let bound = listener.local_addr().unwrap_or(addr);
    let app = Router::new()
        .route("/metrics", get(render))
        .with_state((handle, process))
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

/// The exporter with this catalogue's histogram buckets.
fn recorder() -> anyhow::Result<PrometheusBuilder> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(CYCLE_DURATION.into()), &CYCLE_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(rebalancer_upstream::series::DURATION.into()),
                &REQUEST_BUCKETS,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(rebalancer_ops::series::DECISION_TIME.into()),
                &rebalancer_ops::series::DECISION_BUCKETS,
            )
        })
        .context("the metrics buckets are invalid")
}

/// HELP texts of every series, and each at its start value: counters 0,
/// timestamps 0, plan and fetch figures NaN.
pub fn describe(interval: Option<Duration>) {
    use metrics::{describe_gauge, Unit};
    rebalancer_upstream::series::describe();
    rebalancer_applier::series::describe();
    rebalancer_ops::series::describe();
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label says which rebalancer runs."
    );
    describe_gauge!(INTERVAL, Unit::Seconds, "Nominal seconds between cycles of the configured schedule (0 under --once): alerts compare the time since the last success with it.");
    for api in rebalancer_upstream::series::APIS {
        let _ = metrics::histogram!(rebalancer_upstream::series::DURATION, "api" => api);
    }
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    metrics::gauge!(INTERVAL).set(interval.map_or(0.0, |d| d.as_secs_f64()));
}

async fn render(
    State((handle, process)): State<(PrometheusHandle, Arc<metrics_process::Collector>)>,
) -> String {
    process.collect();
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
    use chrono::TimeZone;
    use rebalancer_applier::CycleOutcome;
    use rebalancer_ops::schedule::Schedule;
    use rebalancer_ops::series::{
        cycle_ended, CYCLES, DECISIONS, DECISION_TIME, DRIFTED, GETS_PER_LEAD, JOURNAL_FAILURES,
        LAST_CYCLE, LAST_OUTCOME, LAST_SUCCESS, LEASE_LOST, MALFORMED, PEAK, PROPOSALS_PENDING,
        SHORTFALL,
    };

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, h, m, s).unwrap()
    }

    /// What `/metrics` shows before any cycle, rendered by this catalogue's
    /// exporter through a local recorder.
    fn rendered_at_start() -> String {
        let recorder = recorder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || describe(Some(Duration::from_secs(900))));
        handle.render()
    }

    #[test]
    fn every_series_has_help_and_type_and_a_start_value_before_any_cycle() {
        let text = rendered_at_start();
        let families = [
            (CYCLES, "counter"),
            (CYCLE_DURATION, "histogram"),
            (BUILD_INFO, "gauge"),
            (INTERVAL, "gauge"),
            (LAST_SUCCESS, "gauge"),
            (LAST_CYCLE, "gauge"),
            (LAST_OUTCOME, "gauge"),
            (SHORTFALL, "gauge"),
            (PEAK, "gauge"),
            (GETS_PER_LEAD, "gauge"),
            (MALFORMED, "counter"),
            (DRIFTED, "counter"),
            (JOURNAL_FAILURES, "counter"),
            (LEASE_LOST, "counter"),
            (PROPOSALS_PENDING, "gauge"),
            (DECISIONS, "counter"),
            (DECISION_TIME, "histogram"),
            (rebalancer_upstream::series::REQUESTS, "counter"),
            (rebalancer_upstream::series::DURATION, "histogram"),
            (rebalancer_applier::series::PUTS, "counter"),
            (rebalancer_applier::series::MOVES, "counter"),
        ];
        for (name, kind) in families {
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {name}:\n{text}"
            );
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} is not a {kind}:\n{text}"
            );
        }
        for line in [
            "rebalancer_cycles_total{outcome=\"failed\"} 0",
            "rebalancer_last_cycle_outcome{outcome=\"blocked\"} 0",
            "rebalancer_last_success_timestamp_seconds 0",
            "rebalancer_cycle_interval_seconds 900",
            "rebalancer_shortfall_records NaN",
            "rebalancer_peak_utilisation NaN",
            "rebalancer_lease_lost_total 0",
            "rebalancer_puts_total{outcome=\"failed\"} 0",
            "rebalancer_upstream_requests_total{api=\"zoho_token\",outcome=\"timeout\"} 0",
            "rebalancer_cycle_duration_seconds_bucket{stage=\"apply\",le=\"600\"} 0",
            "rebalancer_upstream_request_duration_seconds_bucket{api=\"cms_put\",le=\"0.005\"} 0",
            "rebalancer_proposals_pending 0",
            "rebalancer_proposal_decisions_total{outcome=\"rejected\"} 0",
            "rebalancer_proposal_decision_seconds_bucket{le=\"86400\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}`:\n{text}");
        }
        let version = format!(
            "rebalancer_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.lines().any(|l| l == version), "{text}");
    }

    #[test]
    fn a_cycle_sets_its_outcome_alone_and_the_time() {
        let recorder = recorder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe(None);
            cycle_ended(CycleOutcome::Failed, at(12, 0, 0));
            cycle_ended(CycleOutcome::Blocked, at(12, 15, 0));
        });
        let text = handle.render();
        let value = |line: &str| -> String {
            text.lines()
                .find_map(|l| l.strip_prefix(line))
                .unwrap_or_else(|| panic!("no {line}:\n{text}"))
                .trim()
                .to_owned()
        };
        assert_eq!(
            value("rebalancer_last_cycle_outcome{outcome=\"blocked\"}"),
            "1"
        );
        assert_eq!(
            value("rebalancer_last_cycle_outcome{outcome=\"failed\"}"),
            "0"
        );
        assert_eq!(value("rebalancer_cycles_total{outcome=\"failed\"}"), "1");
        assert_eq!(value("rebalancer_cycles_total{outcome=\"blocked\"}"), "1");
        assert_eq!(value("rebalancer_cycles_total{outcome=\"applied\"}"), "0");
        let ended = at(12, 15, 0).timestamp().to_string();
        assert_eq!(value("rebalancer_last_cycle_timestamp_seconds "), ended);
        assert_eq!(value("rebalancer_cycle_interval_seconds "), "0");
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
