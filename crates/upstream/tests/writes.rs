//! The write path of the shared HTTP layer: the [`RequestBudget`] (writes
//! rate-limited across concurrent tasks, measured by server-side arrival
//! times; reads capped in flight, measured by a server that counts open
//! requests) and the CMS PUT's outcomes: definite (echo, 400, 404, 429,
//! refused connection) or `AmbiguousWrite` (timeout or hang-up after
//! sending, 5xx, empty, malformed or mismatched 2xx echo).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rebalancer_upstream::{
    Api, BaseUrl, CmsClient, CmsConfig, ErrorClass, HttpSettings, MappingUpdate, RequestBudget,
    Stats, UpstreamError,
};
use secrecy::SecretString;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PUT_PATH: &str = "/cms/configuration/voice/campaignLeadUserMapping";

/// Fast retries (3), a 10 s timeout, and this budget.
fn fast_http(budget: Option<RequestBudget>) -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        max_retries: 3,
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        budget,
        ..HttpSettings::default()
    }
}

fn cms_at(base: &str, budget: Option<RequestBudget>) -> CmsClient {
    cms_with(base, fast_http(budget))
}

fn cms_with(base: &str, http: HttpSettings) -> CmsClient {
    let cfg = CmsConfig {
        base_url: BaseUrl::parse(base).unwrap(),
        username: "cms-user".into(),
        password: SecretString::from("cms-secret-pw"),
        contact_center_id: 9,
        page_size: 100,
        short_page_ends: true,
        http,
    };
    CmsClient::new(cfg, Stats::default()).unwrap()
}

fn update(lead_id: u64) -> MappingUpdate {
    MappingUpdate {
        lead_id,
        campaign_id: 1,
        assigned_user_ids: vec!["a".into()],
        unassigned_user_ids: vec!["b".into()],
    }
}

fn echo(lead_id: u64, campaign_id: u64) -> serde_json::Value {
    json!({
        "campaignLeadId": 5, "leadId": lead_id, "campaignId": campaign_id,
        "assignedUserIds": ["a"], "unassignedUserIds": ["b"],
        "assignedCampaignUserIds": [1], "unassignedCampaignUserIds": [2]
    })
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

// ------------------------------------------------------ a raw HTTP server

/// What the raw server does with each request.
#[derive(Clone, Copy)]
enum Answer {
    /// 200 with this JSON body, after the latency.
    Json(&'static str),
    /// Read the request, then close the connection without a word.
    HangUp,
}

/// A minimal HTTP/1.1 server that records when each request arrived (its
/// head and body read) and how many requests were open at once, exactly:
/// a request counts from arrival until just before its answer is written.
struct Raw {
    base: String,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    max_in_flight: Arc<AtomicUsize>,
}

async fn raw_server(latency: Duration, answer: Answer) -> Raw {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let (a, f, m) = (arrivals.clone(), in_flight.clone(), max_in_flight.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (a, f, m) = (a.clone(), f.clone(), m.clone());
            tokio::spawn(async move {
                if !read_request(&mut socket).await {
                    return;
                }
                a.lock().unwrap().push(Instant::now());
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(latency).await;
                f.fetch_sub(1, Ordering::SeqCst);
                match answer {
                    Answer::HangUp => drop(socket),
                    Answer::Json(body) => {
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(reply.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    }
                }
            });
        }
    });
    Raw {
        base,
        arrivals,
        max_in_flight,
    }
}

/// Reads one request (head, then `content-length` bytes of body).
async fn read_request(socket: &mut tokio::net::TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return true;
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The most arrivals in any closed window of `width` (sliding, starting at
/// each arrival).
fn max_in_window(arrivals: &[Instant], width: Duration) -> usize {
    let mut sorted = arrivals.to_vec();
    sorted.sort();
    (0..sorted.len())
        .map(|i| {
            sorted[i..]
                .iter()
                .take_while(|t| t.duration_since(sorted[i]) <= width)
                .count()
        })
        .max()
        .unwrap_or(0)
}

// ---------------------------------------------------------------- budget

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_share_one_rate_across_tasks() {
    let server = raw_server(
        Duration::ZERO,
        Answer::Json(r#"{"leadId":2,"campaignId":1,"assignedUserIds":["a"]}"#),
    )
    .await;
    let budget = RequestBudget::new(nz(20), nz(2), 4);
    // Two clients with the same budget: it is the budget that is shared.
    let clients = [
        cms_at(&server.base, Some(budget.clone())),
        cms_at(&server.base, Some(budget.clone())),
    ];
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let client = clients[t % 2].clone();
            let next = next.clone();
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::SeqCst) < 60 {
                    client.put_mapping(&update(2)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let arrivals = server.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 60);
    assert_eq!(budget.writes(), 60);
    let busiest = max_in_window(&arrivals, Duration::from_secs(1));
    assert!(busiest <= 22, "{busiest} writes arrived within one second");
    // 2 at once, then one per 50 ms: 58 × 50 ms = 2.9 s.
    assert!(elapsed >= Duration::from_millis(2600), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_capped_in_flight_and_use_no_write_budget() {
    let server = raw_server(
        Duration::from_millis(150),
        Answer::Json(r#"{"assignedUserIds":[],"unassignedUserIds":[]}"#),
    )
    .await;
    let budget = RequestBudget::new(nz(1), nz(1), 3);
    let client = cms_at(&server.base, Some(budget.clone()));
    let tasks: Vec<_> = (0..12)
        .map(|lead| {
            let client = client.clone();
            tokio::spawn(async move { client.lead_users(1, 3, lead).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(server.arrivals.lock().unwrap().len(), 12);
    let most = server.max_in_flight.load(Ordering::SeqCst);
    assert!((1..=3).contains(&most), "{most} reads in flight at once");
    assert_eq!(budget.writes(), 0);

    // Without a budget the same reads all go at once.
    let server = raw_server(
        Duration::from_millis(300),
        Answer::Json(r#"{"assignedUserIds":[],"unassignedUserIds":[]}"#),
    )
    .await;
    let client = cms_at(&server.base, None);
    let tasks: Vec<_> = (0..12)
        .map(|lead| {
            let client = client.clone();
            tokio::spawn(async move { client.lead_users(1, 3, lead).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(server.max_in_flight.load(Ordering::SeqCst) > 3);
}

#[tokio::test]
async fn every_write_attempt_takes_a_token() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(echo(2, 1)))
        .with_priority(2)
        .mount(&server)
        .await;
    let budget = RequestBudget::new(nz(1000), nz(10), 1);
    let client = cms_at(&server.uri(), Some(budget.clone()));
    client.put_mapping(&update(2)).await.unwrap();
    assert_eq!(budget.writes(), 3);
    assert!(format!("{budget:?}").contains("writes: 3"), "{budget:?}");
}

/// The fence is asked after the budget's wait, before every attempt
/// (a retry after 429 included); when it refuses, that attempt is not sent.
#[tokio::test]
async fn a_fence_is_asked_before_every_attempt_and_a_refusal_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(echo(2, 1)))
        .with_priority(2)
        .mount(&server)
        .await;
    let budget = RequestBudget::new(nz(1000), nz(10), 1);
    let client = cms_at(&server.uri(), Some(budget.clone()));
    let asked = AtomicUsize::new(0);
    let fence = || -> Result<(), String> {
        asked.fetch_add(1, Ordering::SeqCst);
        Ok(())
    };
    client
        .put_mapping_fenced(&update(2), Some(&fence))
        .await
        .unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 2, "once per attempt");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);

    // The second attempt (after a 429) is fenced off: only the first went.
    server.reset().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(429))
        .mount(&server)
        .await;
    let attempts = AtomicUsize::new(0);
    let fence = || -> Result<(), String> {
        if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(())
        } else {
            Err("lease lost to h:2".into())
        }
    };
    let err = client
        .put_mapping_fenced(&update(2), Some(&fence))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Fenced { detail, .. } if detail == "lease lost to h:2"),
        "{err:?}"
    );
    assert!(!err.is_retryable() && !err.is_ambiguous_write());
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

// ------------------------------------------------------- ambiguous writes

/// The error of one PUT answered by `response`, and how many PUTs were sent.
async fn put_answered(response: ResponseTemplate) -> (UpstreamError, usize) {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(response)
        .mount(&server)
        .await;
    let err = cms_at(&server.uri(), None)
        .put_mapping(&update(2))
        .await
        .unwrap_err();
    let sent = server.received_requests().await.unwrap().len();
    (err, sent)
}

fn assert_ambiguous(err: &UpstreamError, says: &str) {
    assert!(
        matches!(err, UpstreamError::AmbiguousWrite { api: Api::Cms, .. }),
        "{err:?}"
    );
    assert!(err.is_ambiguous_write());
    assert!(!err.is_retryable());
    assert_eq!(err.class(), ErrorClass::Unavailable);
    let text = err.to_string();
    assert!(text.contains(says), "{text}");
    assert!(
        text.contains("leadId=2") && text.contains(PUT_PATH),
        "{text}"
    );
    assert!(text.contains("read the state back"), "{text}");
}

#[tokio::test]
async fn a_5xx_is_ambiguous_and_not_retried() {
    for status in [500, 502, 503] {
        let (err, sent) = put_answered(ResponseTemplate::new(status)).await;
        assert_ambiguous(&err, &format!("HTTP {status}"));
        assert_eq!(sent, 1);
    }
}

#[tokio::test]
async fn an_empty_success_is_ambiguous() {
    for status in [200, 204] {
        let (err, sent) = put_answered(ResponseTemplate::new(status)).await;
        assert_ambiguous(&err, "empty body");
        assert_eq!(sent, 1);
    }
    let (err, _) = put_answered(ResponseTemplate::new(200).set_body_string("  \n")).await;
    assert_ambiguous(&err, "empty body");
}

#[tokio::test]
async fn a_malformed_success_is_ambiguous() {
    let (err, sent) = put_answered(
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/json")
            .set_body_string(r#"{"campaignLeadId":1,"assignedCampaignUserIds":[30"#),
    )
    .await;
    assert_ambiguous(&err, "could not be understood");
    assert!(err.to_string().contains("assignedCampaignUserIds"), "{err}");
    assert_eq!(sent, 1);
    let (err, _) =
        put_answered(ResponseTemplate::new(200).set_body_string("<html>ok</html>")).await;
    assert_ambiguous(&err, "could not be understood");
}

#[tokio::test]
async fn an_echo_of_another_lead_or_campaign_is_ambiguous() {
    let (err, _) = put_answered(ResponseTemplate::new(200).set_body_json(echo(3, 1))).await;
    assert_ambiguous(&err, "echoing leadId 3, not 2");
    let (err, _) = put_answered(ResponseTemplate::new(200).set_body_json(echo(2, 7))).await;
    assert_ambiguous(&err, "echoing campaignId 7, not 1");
}

#[tokio::test]
async fn an_echo_without_ids_is_taken_as_ours() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"assignedUserIds": ["a"]})))
        .mount(&server)
        .await;
    let got = cms_at(&server.uri(), None)
        .put_mapping(&update(2))
        .await
        .unwrap();
    assert_eq!((got.lead_id, got.campaign_id), (2, 1));
    assert_eq!(got.assigned_user_ids, ["a"]);
}

#[tokio::test]
async fn a_timeout_after_sending_is_ambiguous() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(echo(2, 1))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let http = HttpSettings {
        timeout: Duration::from_millis(200),
        ..fast_http(None)
    };
    let err = cms_with(&server.uri(), http)
        .put_mapping(&update(2))
        .await
        .unwrap_err();
    assert_ambiguous(
        &err,
        "no complete response within 200 ms (http.timeout_secs)",
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_hang_up_after_sending_is_ambiguous() {
    let server = raw_server(Duration::ZERO, Answer::HangUp).await;
    let err = cms_at(&server.base, None)
        .put_mapping(&update(2))
        .await
        .unwrap_err();
    assert_ambiguous(&err, "transport failure after the request was sent");
    assert_eq!(server.arrivals.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_definite() {
    // Bound, never listening: refused, and the port is ours until the end.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = held.local_addr().unwrap().port();
    let budget = RequestBudget::new(nz(1000), nz(10), 1);
    let err = cms_at(&format!("http://127.0.0.1:{port}"), Some(budget.clone()))
        .put_mapping(&update(2))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Transport { .. }), "{err:?}");
    assert!(!err.is_ambiguous_write());
    assert_eq!(budget.writes(), 4, "the first attempt and 3 retries");
}

#[tokio::test]
async fn throttling_is_retried_and_definite() {
    let (err, sent) = put_answered(ResponseTemplate::new(429)).await;
    assert!(matches!(err, UpstreamError::Throttled { .. }), "{err:?}");
    assert!(!err.is_ambiguous_write());
    assert_eq!(sent, 4);
}

#[tokio::test]
async fn refusals_are_definite_and_carry_the_message() {
    let body = |status: u16, code: &str, message: &str| {
        ResponseTemplate::new(status).set_body_json(json!({
            "statusCode": status, "status": "x", "errorCode": code, "errorMessage": message
        }))
    };
    let (err, sent) = put_answered(body(400, "CONF-1000", "Invalid user id 'zz'")).await;
    assert!(matches!(err, UpstreamError::BadRequest { .. }), "{err:?}");
    assert!(!err.is_ambiguous_write() && !err.is_retryable());
    assert!(err.to_string().contains("Invalid user id 'zz'"), "{err}");
    assert_eq!(sent, 1);
    let (err, sent) = put_answered(body(404, "CONF-1001", "Object doesn't exist")).await;
    assert!(err.is_not_found() && !err.is_ambiguous_write(), "{err:?}");
    assert!(err.to_string().contains("Object doesn't exist"), "{err}");
    assert_eq!(sent, 1);
    let (err, _) = put_answered(body(401, "AUTH-1001", "Invalid credentials")).await;
    assert!(!err.is_ambiguous_write(), "{err:?}");
}
