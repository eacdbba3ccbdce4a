//! What the clients record in the `metrics` series of `series` (requests by
//! call and outcome, each attempt's time) and how a retried request is
//! logged: one warning when it ends, not one per attempt. Each test runs
//! its client on a current-thread runtime inside a local recorder and a
//! local log subscriber, so tests in parallel do not see each other.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rebalancer_upstream::series::{APIS, DURATION, OUTCOMES, REQUESTS};
use rebalancer_upstream::{
    BaseUrl, CmsClient, CmsConfig, HttpSettings, MappingUpdate, Stats, WebexClient, WebexConfig,
};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fast_http() -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        max_retries: 3,
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        ..HttpSettings::default()
    }
}

fn cms(server: &MockServer) -> CmsClient {
    let config = CmsConfig {
        base_url: BaseUrl::parse(&server.uri()).unwrap(),
        username: "cms-user".into(),
        password: SecretString::from("cms-secret-pw"),
        contact_center_id: 9,
        page_size: 100,
        short_page_ends: true,
        http: fast_http(),
    };
    CmsClient::new(config, Stats::default()).unwrap()
}

/// What one run of `work` recorded: counter values by (api, outcome), the
/// number of duration samples by api, and the log lines at WARN.
struct Recorded {
    counters: Vec<((String, String), u64)>,
    timed: Vec<(String, usize)>,
    warnings: Vec<String>,
}

impl Recorded {
    fn samples(&self, api: &str) -> usize {
        self.timed
            .iter()
            .find(|(a, _)| a == api)
            .map_or(0, |(_, n)| *n)
    }

    /// Every counter but `except` is 0.
    fn only(&self, except: &[(&str, &str, u64)]) {
        for ((api, outcome), n) in &self.counters {
            let want = except
                .iter()
                .find(|(a, o, _)| a == api && o == outcome)
                .map_or(0, |(_, _, n)| *n);
            assert_eq!(*n, want, "{api} {outcome}");
        }
    }
}

/// Run `work` (which starts a mock server itself) with its own recorder
/// and log subscriber; `describe` registers the series first, as the
/// binary does at start.
fn recorded<F: Future<Output = ()>>(work: impl FnOnce() -> F) -> Recorded {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let log = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let log = log.clone();
        move || Writer(log.clone())
    };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(writer)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        tracing::subscriber::with_default(subscriber, || {
            rebalancer_upstream::series::describe();
            runtime.block_on(work());
        })
    });
    let mut counters = Vec::new();
    let mut timed = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_string())
                .unwrap_or_default()
        };
        match value {
            DebugValue::Counter(n) if key.name() == REQUESTS => {
                counters.push(((label("api"), label("outcome")), n))
            }
            DebugValue::Histogram(samples) if key.name() == DURATION => {
                timed.push((label("api"), samples.len()))
            }
            _ => {}
        }
    }
    let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    Recorded {
        counters,
        timed,
        warnings: text.lines().map(str::to_owned).collect(),
    }
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_call_and_outcome_is_registered_at_zero() {
    let r = recorded(|| async {});
    assert_eq!(r.counters.len(), APIS.len() * OUTCOMES.len());
    r.only(&[]);
}

#[test]
fn a_read_retried_twice_counts_two_retried_and_one_ok_and_warns_once() {
    let r = recorded(|| async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"assignedUserIds": ["a1"], "unassignedUserIds": []})),
            )
            .with_priority(2)
            .mount(&server)
            .await;
        cms(&server).lead_users(1, 3, 7).await.unwrap();
    });
    r.only(&[("cms_get", "retried", 2), ("cms_get", "ok", 1)]);
    assert_eq!(r.samples("cms_get"), 3, "each attempt is timed");
    assert_eq!(r.warnings.len(), 1, "{:#?}", r.warnings);
    let w = &r.warnings[0];
    assert!(
        w.contains("succeeded after 2 retries") && w.contains("attempts=3") && w.contains("503"),
        "{w}"
    );
}

#[test]
fn a_read_that_keeps_failing_counts_its_last_attempt_as_5xx_and_warns_once() {
    let r = recorded(|| async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(502))
            .mount(&server)
            .await;
        cms(&server).lead_users(1, 3, 7).await.unwrap_err();
    });
    r.only(&[("cms_get", "retried", 3), ("cms_get", "5xx", 1)]);
    assert_eq!(r.warnings.len(), 1, "{:#?}", r.warnings);
    assert!(
        r.warnings[0].contains("failed after 4 attempts"),
        "{}",
        r.warnings[0]
    );
}

#[test]
fn a_refused_webex_key_is_one_4xx_and_no_warning() {
    let r = recorded(|| async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        let webex = WebexClient::new(
            WebexConfig {
                base_url: BaseUrl::parse(&server.uri()).unwrap(),
                api_key: SecretString::from("webex-key"),
                http: fast_http(),
            },
            Stats::default(),
        )
        .unwrap();
        webex.users().await.unwrap_err();
    });
    r.only(&[("webex_users", "4xx", 1)]);
    assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
}

#[test]
fn a_put_is_counted_as_cms_put_and_a_fenced_one_not_at_all() {
    let update = MappingUpdate {
        lead_id: 7,
        campaign_id: 3,
        assigned_user_ids: vec!["a1".into()],
        unassigned_user_ids: vec![],
    };
    let r = recorded(|| async {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "campaignLeadId": 5, "leadId": 7, "campaignId": 3,
                "assignedUserIds": ["a1"], "unassignedUserIds": [],
                "assignedCampaignUserIds": [1], "unassignedCampaignUserIds": []
            })))
            .mount(&server)
            .await;
        let client = cms(&server);
        client.put_mapping(&update).await.unwrap();
        let refuse = || Err("the lease is gone".to_string());
        client
            .put_mapping_fenced(&update, Some(&refuse))
            .await
            .unwrap_err();
    });
    r.only(&[("cms_put", "ok", 1)]);
    assert_eq!(r.samples("cms_put"), 1, "the fenced PUT was never sent");
}
