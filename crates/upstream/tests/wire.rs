//! Wire-level tests of the three clients against wiremock servers: paging
//! (and paging that makes no progress), error mapping and classes, retries
//! and `Retry-After` (both forms, and the cap), redirects, token caching,
//! refresh and expiry by time, body limits, and that secrets stay out of
//! Debug output and error messages.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rebalancer_upstream::{
    Api, BaseUrl, CmsClient, CmsConfig, ErrorClass, HttpSettings, MappingUpdate, Stats,
    UpstreamError, WebexClient, WebexConfig, ZohoClient, ZohoConfig,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{
    basic_auth, bearer_token, body_json, body_string_contains, header, method, path, query_param,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CMS_PASSWORD: &str = "cms-secret-pw";
const WEBEX_KEY: &str = "webex-secret-key";
const ZOHO_CLIENT_SECRET: &str = "zoho-client-secret";
const ZOHO_REFRESH: &str = "1000.zoho-refresh-token";

const LEAD_PATH: &str = "/cms/configuration/cc/9/process/1/campaign/3/lead-user";

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

fn cms_config(base: &str) -> CmsConfig {
    CmsConfig {
        base_url: BaseUrl::parse(base).unwrap(),
        username: "cms-user".into(),
        password: SecretString::from(CMS_PASSWORD),
        contact_center_id: 9,
        page_size: 100,
        // The empty-page rule: the paging tests below need the second GET.
        short_page_ends: false,
        http: fast_http(),
    }
}

fn cms(server: &MockServer, stats: &Stats) -> CmsClient {
    CmsClient::new(cms_config(&server.uri()), stats.clone()).unwrap()
}

fn webex_config(base: &str) -> WebexConfig {
    WebexConfig {
        base_url: BaseUrl::parse(base).unwrap(),
        api_key: SecretString::from(WEBEX_KEY),
        http: fast_http(),
    }
}

fn zoho_config(base: &str) -> ZohoConfig {
    ZohoConfig {
        accounts_url: BaseUrl::parse(base).unwrap(),
        api_domain: BaseUrl::parse(base).unwrap(),
        client_id: "1000.CLIENTID".into(),
        client_secret: SecretString::from(ZOHO_CLIENT_SECRET),
        refresh_token: SecretString::from(ZOHO_REFRESH),
        api_version: "v8".into(),
        module: "Leads".into(),
        per_page: 200,
        http: fast_http(),
    }
}

fn zoho(server: &MockServer) -> ZohoClient {
    ZohoClient::new(zoho_config(&server.uri()), Stats::default()).unwrap()
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

// ---------------------------------------------------------------- CMS

#[tokio::test]
async fn cms_merges_pages_when_the_server_caps_the_limit() {
    let server = MockServer::start().await;
    let assigned = names("a", 5);
    let unassigned = names("u", 3);
    let (a, u) = (assigned.clone(), unassigned.clone());
    Mock::given(method("GET"))
        .and(path(LEAD_PATH))
        .and(query_param("leadId", "7"))
        .and(basic_auth("cms-user", CMS_PASSWORD))
        .and(header("accept", "application/json"))
        .respond_with(move |req: &Request| {
            // The server caps limit at 2 and pages each list independently.
            let limit = query(req, "limit")
                .unwrap()
                .parse::<usize>()
                .unwrap()
                .min(2);
            let offset = query(req, "offset").unwrap().parse::<usize>().unwrap();
            let slice = |v: &[String]| {
                v.iter()
                    .skip(offset)
                    .take(limit)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            ResponseTemplate::new(200).set_body_json(json!({
                "campaignLeadId": 11, "leadId": 7, "campaignId": 3,
                "assignedUserIds": slice(&a), "unassignedUserIds": slice(&u),
                "assignedCampaignUserIds": [1], "unassignedCampaignUserIds": [2, 3],
            }))
        })
        .expect(4) // offsets 0, 2, 4 and the empty page at 6
        .mount(&server)
        .await;
    let stats = Stats::default();
    let got = cms(&server, &stats).lead_users(1, 3, 7).await.unwrap();
    assert_eq!(got.assigned_user_ids, assigned);
    assert_eq!(got.unassigned_user_ids, unassigned);
    assert_eq!(got.campaign_lead_id, Some(11));
    assert_eq!((got.lead_id, got.campaign_id), (7, 3));
    assert_eq!(got.unassigned_campaign_user_ids, [2, 3]);
    assert_eq!(stats.requests(), 4);
    assert_eq!(stats.retries(), 0);
}

/// A mock CMS that pages both lists independently, capping `limit` at
/// `cap`; answers every GET of the lead.
async fn paging_cms(
    server: &MockServer,
    assigned: Vec<String>,
    unassigned: Vec<String>,
    cap: usize,
) {
    Mock::given(method("GET"))
        .and(path(LEAD_PATH))
        .and(query_param("leadId", "7"))
        .respond_with(move |req: &Request| {
            let limit = query(req, "limit")
                .unwrap()
                .parse::<usize>()
                .unwrap()
                .min(cap);
            let offset = query(req, "offset").unwrap().parse::<usize>().unwrap();
            let slice = |v: &[String]| {
                v.iter()
                    .skip(offset)
                    .take(limit)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            ResponseTemplate::new(200).set_body_json(json!({
                "leadId": 7, "campaignId": 3,
                "assignedUserIds": slice(&assigned), "unassignedUserIds": slice(&unassigned),
            }))
        })
        .mount(server)
        .await;
}

fn short_ends(server: &MockServer, stats: &Stats, page_size: u32) -> CmsClient {
    let cfg = CmsConfig {
        page_size,
        short_page_ends: true,
        ..cms_config(&server.uri())
    };
    CmsClient::new(cfg, stats.clone()).unwrap()
}

#[tokio::test]
async fn cms_short_page_ends_reads_a_lead_that_fits_a_page_in_one_get() {
    let server = MockServer::start().await;
    paging_cms(&server, names("a", 4), names("u", 2), 100).await;
    let stats = Stats::default();
    let got = short_ends(&server, &stats, 5)
        .lead_users(1, 3, 7)
        .await
        .unwrap();
    assert_eq!(got.assigned_user_ids, names("a", 4));
    assert_eq!(got.unassigned_user_ids, names("u", 2));
    assert_eq!((stats.requests(), stats.gets(Api::Cms)), (1, 1));
}

#[tokio::test]
async fn cms_short_page_ends_pages_on_after_a_full_page() {
    let server = MockServer::start().await;
    // 7 assigned with pages of 3: offsets 0 (3, full), 3 (3, full), 6 (1, short).
    paging_cms(&server, names("a", 7), names("u", 2), 100).await;
    let stats = Stats::default();
    let got = short_ends(&server, &stats, 3)
        .lead_users(1, 3, 7)
        .await
        .unwrap();
    assert_eq!(got.assigned_user_ids, names("a", 7));
    assert_eq!(got.unassigned_user_ids, names("u", 2));
    assert_eq!(stats.gets(Api::Cms), 3);
    // A lead of exactly one full page costs the empty page after it too.
    let server = MockServer::start().await;
    paging_cms(&server, names("a", 3), Vec::new(), 100).await;
    let stats = Stats::default();
    let got = short_ends(&server, &stats, 3)
        .lead_users(1, 3, 7)
        .await
        .unwrap();
    assert_eq!(got.assigned_user_ids, names("a", 3));
    assert_eq!(stats.gets(Api::Cms), 2);
}

/// The documented hazard of `short_page_ends`: a server that caps `limit`
/// below `page_size` without saying so is read truncated (nothing in the
/// page shows the cap); `short_page_ends = false` reads it completely.
#[tokio::test]
async fn cms_short_page_ends_trusts_limit_so_a_silent_cap_truncates() {
    let server = MockServer::start().await;
    paging_cms(&server, names("a", 5), names("u", 3), 2).await;
    let got = short_ends(&server, &Stats::default(), 100)
        .lead_users(1, 3, 7)
        .await
        .unwrap();
    assert_eq!(got.assigned_user_ids, names("a", 2), "truncated at the cap");
    let got = cms(&server, &Stats::default())
        .lead_users(1, 3, 7)
        .await
        .unwrap();
    assert_eq!(got.assigned_user_ids, names("a", 5));
    assert_eq!(got.unassigned_user_ids, names("u", 3));
}

#[tokio::test]
async fn cms_lead_users_page_is_one_get_with_the_limit_asked() {
    let server = MockServer::start().await;
    paging_cms(&server, names("a", 5), names("u", 3), 100).await;
    let stats = Stats::default();
    let got = cms(&server, &stats)
        .lead_users_page(1, 3, 7, 1, 0)
        .await
        .unwrap();
    assert_eq!(got.assigned_user_ids, ["a0"]);
    assert_eq!(got.unassigned_user_ids, ["u0"]);
    let got = cms(&server, &stats)
        .lead_users_page(1, 3, 7, 2, 4)
        .await
        .unwrap();
    assert_eq!(got.assigned_user_ids, ["a4"]);
    assert!(got.unassigned_user_ids.is_empty());
    assert_eq!((stats.gets(Api::Cms), stats.requests()), (2, 2));
}

#[tokio::test]
async fn cms_fails_when_the_server_ignores_offset() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(LEAD_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "assignedUserIds": ["x", "y"], "unassignedUserIds": ["z"]
        })))
        .expect(2)
        .mount(&server)
        .await;
    let err = cms(&server, &Stats::default())
        .lead_users(1, 3, 7)
        .await
        .unwrap_err();
    match &err {
        UpstreamError::PagingStalled { api, endpoint, .. } => {
            assert_eq!(*api, Api::Cms);
            assert!(endpoint.contains("offset=2"), "{endpoint}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::Data);
    assert!(err.to_string().contains("no new user id"), "{err}");
}

#[tokio::test]
async fn cms_missing_ids_default_to_the_ones_asked_for() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(LEAD_PATH))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "assignedUserIds": ["x", "y"], "unassignedUserIds": ["z"]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(LEAD_PATH))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let got = cms(&server, &Stats::default())
        .lead_users(1, 3, 7)
        .await
        .unwrap();
    assert_eq!(got.assigned_user_ids, ["x", "y"]);
    assert_eq!(got.unassigned_user_ids, ["z"]);
    assert_eq!(
        (got.lead_id, got.campaign_id, got.campaign_lead_id),
        (7, 3, None)
    );
}

#[tokio::test]
async fn cms_404_conf_1001_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "statusCode": 404, "status": "Not Found",
            "errorCode": "CONF-1001", "errorMessage": "Object doesn't exist"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = cms(&server, &Stats::default())
        .lead_users(1, 3, 7)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(err.class(), ErrorClass::Data);
    match &err {
        UpstreamError::NotFound {
            api, code, message, ..
        } => {
            assert_eq!(*api, Api::Cms);
            assert_eq!(code.as_deref(), Some("CONF-1001"));
            assert_eq!(message, "Object doesn't exist");
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("CMS") && text.contains(LEAD_PATH) && text.contains("leadId=7"),
        "{text}"
    );
}

#[tokio::test]
async fn cms_401_is_unauthorized_without_leaking_the_password() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Unauthorized"))
        .expect(1)
        .mount(&server)
        .await;
    let err = cms(&server, &Stats::default())
        .lead_users(1, 3, 7)
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Unauthorized { api: Api::Cms, .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Auth);
    let text = err.to_string();
    assert!(
        text.contains("cms.username") && !text.contains(CMS_PASSWORD),
        "{text}"
    );
}

#[tokio::test]
async fn error_bodies_are_scrubbed_of_tokens() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "errorCode": "CONF-1000",
            "errorMessage": "bad header Bearer sk-live-abc123 and {\"access_token\":\"1000.deadbeef\"}"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = cms(&server, &Stats::default())
        .lead_users(1, 3, 7)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, UpstreamError::BadRequest { .. }), "{err:?}");
    assert!(
        !text.contains("sk-live-abc123") && !text.contains("1000.deadbeef"),
        "{text}"
    );
    assert!(
        text.contains("CONF-1000") && text.contains("****"),
        "{text}"
    );

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<html>session Zoho-oauthtoken 1000.aa11bb22cc33dd44ee55ff66 expired</html>",
        ))
        // A malformed 2xx on a read is retried (max_retries 3) before it fails.
        .expect(4)
        .mount(&server)
        .await;
    let err = cms(&server, &Stats::default())
        .lead_users(1, 3, 7)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Malformed { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("aa11bb22"), "{text}");
    assert!(text.contains("session Zoho-oauthtoken ****"), "{text}");
}

#[tokio::test]
async fn cms_retries_5xx_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"assignedUserIds": []})))
        .with_priority(2)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let got = cms(&server, &stats).lead_users(1, 3, 7).await.unwrap();
    assert!(got.assigned_user_ids.is_empty());
    assert_eq!(stats.retries(), 2);
    assert_eq!(stats.requests(), 3);
}

#[tokio::test]
async fn cms_gives_up_after_max_retries_with_the_last_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .expect(4)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let err = cms(&server, &stats).lead_users(1, 3, 7).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Server { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert_eq!(stats.retries(), 3);
    assert_eq!(stats.requests(), 4);
}

#[tokio::test]
async fn cms_put_sends_camel_case_and_returns_the_echo() {
    let server = MockServer::start().await;
    let echo = json!({
        "campaignLeadId": 1, "assignedCampaignUserIds": [1], "unassignedCampaignUserIds": [3817, 3802],
        "leadId": 2, "campaignId": 1, "assignedUserIds": ["anav_agent"],
        "unassignedUserIds": ["madhur1", "exe_gs"]
    });
    Mock::given(method("PUT"))
        .and(path("/cms/configuration/voice/campaignLeadUserMapping"))
        .and(basic_auth("cms-user", CMS_PASSWORD))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "leadId": 2, "campaignId": 1,
            "assignedUserIds": ["anav_agent"], "unassignedUserIds": ["exe_gs", "madhur1"]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(echo))
        .expect(1)
        .mount(&server)
        .await;
    let update = MappingUpdate {
        lead_id: 2,
        campaign_id: 1,
        assigned_user_ids: vec!["anav_agent".into()],
        unassigned_user_ids: vec!["exe_gs".into(), "madhur1".into()],
    };
    let got = cms(&server, &Stats::default())
        .put_mapping(&update)
        .await
        .unwrap();
    assert_eq!(got.assigned_user_ids, ["anav_agent"]);
    assert_eq!(got.unassigned_user_ids, ["madhur1", "exe_gs"]);
    assert_eq!(got.campaign_lead_id, Some(1));
}

#[tokio::test]
async fn cms_put_is_not_retried_after_a_5xx_but_is_after_429() {
    let update = MappingUpdate {
        lead_id: 2,
        campaign_id: 1,
        assigned_user_ids: vec!["a".into()],
        unassigned_user_ids: vec![],
    };

    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let err = cms(&server, &stats).put_mapping(&update).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::AmbiguousWrite { .. }) && err.is_ambiguous_write(),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTTP 502"), "{err}");
    assert!(err.to_string().contains("leadId=2"), "{err}");
    assert_eq!(stats.retries(), 0);

    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "leadId": 2, "campaignId": 1, "assignedUserIds": ["a"], "unassignedUserIds": []
        })))
        .with_priority(2)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let got = cms(&server, &stats).put_mapping(&update).await.unwrap();
    assert_eq!(stats.retries(), 1);
    assert_eq!(got.assigned_user_ids, ["a"]);
}

#[tokio::test]
async fn timeouts_retry_for_reads_but_not_for_the_put() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = cms_config(&server.uri());
    cfg.http.timeout = Duration::from_millis(200);
    cfg.http.max_retries = 1;
    let stats = Stats::default();
    let client = CmsClient::new(cfg, stats.clone()).unwrap();
    let err = client.lead_users(1, 3, 7).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Timeout { api: Api::Cms, .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert!(
        err.to_string()
            .contains("timed out after 200 ms (http.timeout_secs)"),
        "{err}"
    );
    assert_eq!(stats.retries(), 1);
    let update = MappingUpdate {
        lead_id: 2,
        campaign_id: 1,
        assigned_user_ids: vec!["a".into()],
        unassigned_user_ids: vec![],
    };
    let err = client.put_mapping(&update).await.unwrap_err();
    assert!(err.is_ambiguous_write(), "{err:?}");
    assert!(err.to_string().contains("200 ms"), "{err}");
    assert!(err.to_string().contains("read the state back"), "{err}");
    assert_eq!(stats.retries(), 1);
}

#[tokio::test]
async fn malformed_body_names_the_endpoint_and_shows_its_start() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("<html><body>Login required</body></html>"),
        )
        .mount(&server)
        .await;
    let err = cms(&server, &Stats::default())
        .lead_users(1, 3, 7)
        .await
        .unwrap_err();
    match &err {
        UpstreamError::Malformed {
            endpoint,
            body_prefix,
            ..
        } => {
            assert!(endpoint.contains(LEAD_PATH));
            assert!(body_prefix.starts_with("<html><body>Login"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("Login required"));
}

#[tokio::test]
async fn body_over_the_limit_is_refused() {
    let server = MockServer::start().await;
    let big = json!({ "assignedUserIds": names("agent", 500) });
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(big))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = cms_config(&server.uri());
    cfg.http.max_body_bytes = 1000;
    let err = CmsClient::new(cfg, Stats::default())
        .unwrap()
        .lead_users(1, 3, 7)
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::BodyTooLarge { limit: 1000, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_naming_the_url() {
    // Bound, never listening: refused, and the port is ours until the end.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = held.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}/prefix/");
    let stats = Stats::default();
    let err = CmsClient::new(cms_config(&base), stats.clone())
        .unwrap()
        .lead_users(1, 3, 7)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Transport { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Unavailable);
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("cms.base_url"),
        "{text}"
    );
    assert!(text.contains("/prefix/cms/configuration"), "{text}");
    // The URL is said once, not again by reqwest's own message.
    assert_eq!(
        text.matches(&format!("127.0.0.1:{port}")).count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.matches("/prefix/cms/configuration").count(),
        1,
        "{text}"
    );
    assert_eq!(stats.retries(), 3);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let server = MockServer::start().await;
    let location = format!("{}/cms/login", elsewhere.uri());
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", location.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let err = cms(&server, &stats).lead_users(1, 3, 7).await.unwrap_err();
    match &err {
        UpstreamError::Redirected {
            status,
            location: l,
            ..
        } => {
            assert_eq!(*status, 302);
            assert_eq!(l, &location);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::Config);
    assert!(err.to_string().contains(&location), "{err}");
    assert_eq!(stats.retries(), 0);

    // Webex too: the bearer key never reaches the other host.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(301).insert_header("Location", location.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    let err = webex(&server, &Stats::default(), 3)
        .users()
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Redirected { status: 301, .. }),
        "{err:?}"
    );
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn base_url_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/gw{LEAD_PATH}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let client = CmsClient::new(
        cms_config(&format!("{}/gw/", server.uri())),
        Stats::default(),
    )
    .unwrap();
    client.lead_users(1, 3, 7).await.unwrap();
}

// ---------------------------------------------------------------- Webex

const USERS_PATH: &str = "/campaignapi/resources/v3/users/";

fn webex(server: &MockServer, stats: &Stats, max_retries: u32) -> WebexClient {
    let mut cfg = webex_config(&server.uri());
    cfg.http.max_retries = max_retries;
    WebexClient::new(cfg, stats.clone()).unwrap()
}

#[tokio::test]
async fn webex_lists_users_with_the_bearer_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(USERS_PATH))
        .and(bearer_token(WEBEX_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"username": "anav_agent", "user_email": "Anav@X.com", "user_status": "Active", "user_id": 5},
            {"username": "exe_gs", "user_status": "Inactive"}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let users = webex(&server, &Stats::default(), 3).users().await.unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].username, "anav_agent");
    assert_eq!(users[0].user_id.as_deref(), Some("5"));
    assert_eq!(users[1].user_status.as_deref(), Some("Inactive"));
}

#[tokio::test]
async fn webex_200_with_1010_is_a_failure() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"code": 1010, "message": "The request was not processed."})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = webex(&server, &Stats::default(), 0)
        .users()
        .await
        .unwrap_err();
    match &err {
        UpstreamError::WebexFailure { code, message } => {
            assert_eq!(code, "1010");
            assert_eq!(message, "The request was not processed.");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert!(err.to_string().contains("retry later"));
}

#[tokio::test]
async fn webex_498_is_token_expired() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(498).set_body_string("Invalid token"))
        .expect(1)
        .mount(&server)
        .await;
    let err = webex(&server, &Stats::default(), 3)
        .users()
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::TokenExpired { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(err.to_string().contains("new API key"));
}

#[tokio::test]
async fn webex_401_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 430, "description": "Authorization failed"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = webex(&server, &Stats::default(), 3)
        .users()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::Unauthorized {
                api: Api::Webex,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("430") && text.contains("webex.api_key") && !text.contains(WEBEX_KEY),
        "{text}"
    );
}

#[tokio::test]
async fn webex_429_honours_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"users": [{"username": "u1"}]})),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let mut cfg = webex_config(&server.uri());
    cfg.http.backoff_max = Duration::from_secs(2);
    let users = WebexClient::new(cfg, stats.clone())
        .unwrap()
        .users()
        .await
        .unwrap();
    assert_eq!(users[0].username, "u1");
    assert_eq!(stats.retries(), 1);
    assert_eq!(stats.requests(), 2);
    // The wait decided before the retry honoured the server's second.
    assert!(
        stats.retry_wait() >= Duration::from_secs(1),
        "{:?}",
        stats.retry_wait()
    );
}

#[tokio::test]
async fn webex_429_every_time_is_throttled() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429))
        .expect(2)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let err = webex(&server, &stats, 1).users().await.unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::Throttled {
                api: Api::Webex,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert_eq!((stats.requests(), stats.retries()), (2, 1));
}

#[tokio::test]
async fn retry_after_above_the_backoff_cap_fails_fast() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .expect(1)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let err = webex(&server, &stats, 3).users().await.unwrap_err();
    match &err {
        UpstreamError::RetryAfterTooLong {
            header, wait, cap, ..
        } => {
            assert_eq!(header, "120");
            assert_eq!(*wait, Duration::from_secs(120));
            assert_eq!(*cap, fast_http().backoff_max);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::Unavailable);
    let text = err.to_string();
    assert!(
        text.contains("\"120\"") && text.contains("http.backoff_max_ms"),
        "{text}"
    );
    assert_eq!((stats.requests(), stats.retries()), (1, 0));
}

#[tokio::test]
async fn retry_after_as_an_http_date() {
    // A date far ahead is over the cap: fail fast, quoting the date.
    let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", later.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    let err = webex(&server, &Stats::default(), 3)
        .users()
        .await
        .unwrap_err();
    match &err {
        UpstreamError::RetryAfterTooLong { header, wait, .. } => {
            assert_eq!(header, &later);
            assert!(*wait > Duration::from_secs(3000), "{wait:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(&later), "{err}");

    // A date already past means "now": retried at once, then success.
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", past.as_str()))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"username": "u1"}])))
        .with_priority(2)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let users = webex(&server, &stats, 3).users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!((stats.requests(), stats.retries()), (2, 1));
    assert!(
        stats.retry_wait() <= fast_http().backoff_max,
        "{:?}",
        stats.retry_wait()
    );
}

// ---------------------------------------------------------------- Zoho

const TOKEN_PATH: &str = "/oauth/v2/token";
const THRESHOLD_PATH: &str = "/crm/v8/settings/automation/assignment_thresholds/186207/restrict_to";

fn token_body(token: &str) -> Value {
    json!({"access_token": token, "api_domain": "https://www.zohoapis.com", "token_type": "Bearer", "expires_in": 3600})
}

fn threshold_entry(id: &str) -> Value {
    json!({
        "backlog_allow_count": 2, "default_assignee": false, "record_allow_count": 10,
        "record_assigned_count": 0, "type": "user", "backlog_count": 0,
        "user": {"name": format!("User {id}"), "id": id, "email": format!("{id}@zylker.com")}
    })
}

async fn mount_token(server: &MockServer, token: &str, times: Option<u64>, priority: u8) {
    let mock = Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("client_secret=zoho-client-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body(token)))
        .with_priority(priority);
    match times {
        Some(n) => mock.up_to_n_times(n).mount(server).await,
        None => mock.mount(server).await,
    }
}

fn token_requests(requests: &[Request]) -> usize {
    requests
        .iter()
        .filter(|r| r.url.path() == TOKEN_PATH)
        .count()
}

#[tokio::test]
async fn zoho_reuses_one_token_across_pages() {
    let server = MockServer::start().await;
    mount_token(&server, "tok1", None, 1).await;
    for (page, more) in [("1", true), ("2", false)] {
        Mock::given(method("GET"))
            .and(path(THRESHOLD_PATH))
            .and(query_param("module", "Leads"))
            .and(query_param("per_page", "200"))
            .and(query_param("page", page))
            .and(header("authorization", "Zoho-oauthtoken tok1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "restrict_to": [threshold_entry(&format!("u{page}"))],
                "info": {"per_page": 200, "count": 1, "more_records": more}
            })))
            .expect(2)
            .mount(&server)
            .await;
    }
    let client = zoho(&server);
    let users = client.threshold_users("186207").await.unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[1].user.id, "u2");
    // A clone shares the cached token: reading again through it asks for
    // no new token.
    let again = client.clone().threshold_users("186207").await.unwrap();
    assert_eq!(again, users);
    assert_eq!(client.token_refreshes(), 1);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(token_requests(&requests), 1);
    assert_eq!(requests.len(), 1 + 2 * 2);
    // Secrets travel in the form body, never in the URL.
    assert!(requests
        .iter()
        .all(|r| !r.url.as_str().contains("secret") && !r.url.as_str().contains(ZOHO_REFRESH)));
}

#[tokio::test]
async fn zoho_refreshes_once_after_invalid_token() {
    let server = MockServer::start().await;
    mount_token(&server, "tok1", Some(1), 1).await;
    mount_token(&server, "tok2", None, 2).await;
    Mock::given(method("GET"))
        .and(header("authorization", "Zoho-oauthtoken tok1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Zoho-oauthtoken tok2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "restrict_to": [threshold_entry("u1")], "info": {"more_records": false}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = zoho(&server);
    let users = client.threshold_users("186207").await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(client.token_refreshes(), 2);
}

#[tokio::test]
async fn zoho_second_rejection_is_returned_without_looping() {
    let server = MockServer::start().await;
    mount_token(&server, "1000.access-zz", None, 1).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"
        })))
        .expect(2)
        .mount(&server)
        .await;
    let client = zoho(&server);
    let err = client.threshold_users("186207").await.unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Zoho { status: 401, code, .. } if code == "INVALID_TOKEN"),
        "{err:?}"
    );
    assert_eq!(client.token_refreshes(), 2);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(token_requests(&requests), 2);
    assert!(!err.to_string().contains("access-zz"), "{err}");
    assert!(!format!("{err:?}").contains("access-zz"), "{err:?}");
}

#[tokio::test]
async fn zoho_204_is_an_empty_list() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", None, 1).await;
    Mock::given(method("GET"))
        .and(path(THRESHOLD_PATH))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    assert!(zoho(&server)
        .threshold_users("186207")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn zoho_error_codes_carry_the_resolution() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", None, 1).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": "INVALID_DATA", "details": {}, "message": "the id given seems to be invalid", "status": "error"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = zoho(&server).threshold_users("186207").await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, UpstreamError::Zoho { status: 400, .. }),
        "{err:?}"
    );
    assert!(
        text.contains("INVALID_DATA") && text.contains("186207") && text.contains("page=1"),
        "{text}"
    );
    assert!(text.contains("valid assignment threshold id"), "{text}");
}

#[tokio::test]
async fn zoho_invalid_refresh_token_is_zoho_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"error": "invalid_code"})))
        .expect(1)
        .mount(&server)
        .await;
    let client = zoho(&server);
    let err = client.threshold_users("186207").await.unwrap_err();
    assert!(
        matches!(&err, UpstreamError::ZohoAuth { code, .. } if code == "invalid_code"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("new refresh token") && !text.contains(ZOHO_REFRESH),
        "{text}"
    );
    assert_eq!(client.token_refreshes(), 0);
}

#[tokio::test]
async fn zoho_malformed_token_response_does_not_show_the_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"access_token": "1000.leaked-token", "#),
        )
        .mount(&server)
        .await;
    let err = zoho(&server).threshold_users("186207").await.unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::Malformed {
                api: Api::ZohoAccounts,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("leaked-token"), "{err}");
    assert!(!format!("{err:?}").contains("leaked-token"), "{err:?}");
}

#[tokio::test]
async fn zoho_concurrent_callers_share_one_token_request() {
    let server = MockServer::start().await;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(move |_: &Request| {
            counter.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(200)
                .set_body_json(token_body("tok"))
                .set_delay(Duration::from_millis(100))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"restrict_to": [threshold_entry("u")]})),
        )
        .mount(&server)
        .await;
    let client = zoho(&server);
    let calls = (0..8).map(|_| {
        let c = client.clone();
        tokio::spawn(async move { c.threshold_users("186207").await })
    });
    for call in futures::future::join_all(calls).await {
        assert_eq!(call.unwrap().unwrap().len(), 1);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(client.token_refreshes(), 1);
}

/// Mounts a threshold with `pages` pages of one user each, accepting any
/// access token.
async fn mount_pages(server: &MockServer, pages: u32) {
    for page in 1..=pages {
        Mock::given(method("GET"))
            .and(path(THRESHOLD_PATH))
            .and(query_param("page", page.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "restrict_to": [threshold_entry(&format!("u{page}"))],
                "info": {"more_records": page < pages}
            })))
            .mount(server)
            .await;
    }
}

async fn mount_token_expiring(server: &MockServer, expires_in: Value) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "tok", "token_type": "Bearer", "expires_in": expires_in}),
        ))
        .mount(server)
        .await;
}

#[tokio::test]
async fn zoho_token_is_renewed_when_its_time_is_up() {
    let server = MockServer::start().await;
    mount_token_expiring(&server, json!(3600)).await;
    mount_pages(&server, 2).await;
    let client = zoho(&server);
    assert_eq!(client.threshold_users("186207").await.unwrap().len(), 2);
    // 50 minutes later the token is still good ...
    client.clone().advance_clock(Duration::from_secs(3000));
    client.threshold_users("186207").await.unwrap();
    assert_eq!(client.token_refreshes(), 1);
    // ... at 60 minutes (renewed a minute before expiry) it is replaced
    // before use, without waiting for a 401.
    client.advance_clock(Duration::from_secs(600));
    client.threshold_users("186207").await.unwrap();
    assert_eq!(client.token_refreshes(), 2);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(token_requests(&requests), 2);
}

#[tokio::test]
async fn zoho_extreme_expires_in_is_clamped() {
    // u64::MAX seconds must not overflow the clock.
    let server = MockServer::start().await;
    mount_token_expiring(&server, json!(u64::MAX)).await;
    mount_pages(&server, 3).await;
    let client = zoho(&server);
    assert_eq!(client.threshold_users("186207").await.unwrap().len(), 3);
    assert_eq!(client.token_refreshes(), 1);
    // Clamped to a day: two days later it is renewed.
    client.advance_clock(Duration::from_secs(2 * 86_400));
    client.threshold_users("186207").await.unwrap();
    assert_eq!(client.token_refreshes(), 2);

    // 0 seconds must not mean a token per page: the floor is a minute.
    let server = MockServer::start().await;
    mount_token_expiring(&server, json!(0)).await;
    mount_pages(&server, 3).await;
    let client = zoho(&server);
    assert_eq!(client.threshold_users("186207").await.unwrap().len(), 3);
    client.threshold_users("186207").await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(token_requests(&requests), 1, "one token for six pages");
    assert_eq!(client.token_refreshes(), 1);
}

#[tokio::test]
async fn zoho_page_without_new_users_but_more_records_is_an_error() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", None, 1).await;
    Mock::given(method("GET"))
        .and(path(THRESHOLD_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "restrict_to": [threshold_entry("u1")], "info": {"more_records": true}
        })))
        .expect(2)
        .mount(&server)
        .await;
    let err = zoho(&server).threshold_users("186207").await.unwrap_err();
    match &err {
        UpstreamError::PagingStalled { api, detail, .. } => {
            assert_eq!(*api, Api::Zoho);
            assert!(
                detail.contains("page 2") && detail.contains("186207"),
                "{detail}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::Data);

    // An empty page that says there is more is no progress either.
    let server = MockServer::start().await;
    mount_token(&server, "tok", None, 1).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "restrict_to": [], "info": {"more_records": true}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = zoho(&server).threshold_users("186207").await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::PagingStalled { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn zoho_implausible_counts_are_refused_naming_user_and_field() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", None, 1).await;
    let mut entry = threshold_entry("1862079000000440001");
    entry["backlog_count"] = json!(i64::MAX);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "restrict_to": [entry], "info": {"more_records": false}
        })))
        .mount(&server)
        .await;
    let err = zoho(&server).threshold_users("186207").await.unwrap_err();
    assert!(matches!(err, UpstreamError::Malformed { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Data);
    let text = err.to_string();
    assert!(
        text.contains("1862079000000440001")
            && text.contains("backlog_count")
            && text.contains(&i64::MAX.to_string()),
        "{text}"
    );
}

#[tokio::test]
async fn zoho_429_is_retried_then_throttled() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", None, 1).await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0")
                .set_body_json(json!({"code": "TOO_MANY_REQUESTS", "status": "error"})),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "restrict_to": [threshold_entry("u1")], "info": {"more_records": false}
        })))
        .with_priority(2)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let client = ZohoClient::new(zoho_config(&server.uri()), stats.clone()).unwrap();
    assert_eq!(client.threshold_users("186207").await.unwrap().len(), 1);
    // One token request, three page attempts, two of them retries.
    assert_eq!((stats.requests(), stats.retries()), (4, 2));

    let server = MockServer::start().await;
    mount_token(&server, "tok", None, 1).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429))
        .expect(4)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let client = ZohoClient::new(zoho_config(&server.uri()), stats.clone()).unwrap();
    let err = client.threshold_users("186207").await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Throttled { api: Api::Zoho, .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert_eq!(stats.retries(), u64::from(fast_http().max_retries));
}

#[tokio::test]
async fn zoho_permission_codes_are_auth_class() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", None, 1).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "code": "NO_PERMISSION", "details": {}, "message": "permission denied", "status": "error"
        })))
        .mount(&server)
        .await;
    let err = zoho(&server).threshold_users("186207").await.unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Zoho { code, .. } if code == "NO_PERMISSION"),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Auth);
}

// ---------------------------------------------------------------- secrets

#[test]
fn debug_output_never_shows_secrets() {
    let base = "http://127.0.0.1:9";
    let cms_cfg = cms_config(base);
    let webex_cfg = webex_config(base);
    let zoho_cfg = zoho_config(base);
    let shown = [
        format!("{cms_cfg:?}"),
        format!("{webex_cfg:?}"),
        format!("{zoho_cfg:?}"),
        format!("{:?}", CmsClient::new(cms_cfg, Stats::default()).unwrap()),
        format!(
            "{:?}",
            WebexClient::new(webex_cfg, Stats::default()).unwrap()
        ),
        format!("{:?}", ZohoClient::new(zoho_cfg, Stats::default()).unwrap()),
    ];
    for text in shown {
        for secret in [CMS_PASSWORD, WEBEX_KEY, ZOHO_CLIENT_SECRET, ZOHO_REFRESH] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

#[test]
fn bad_configs_are_refused() {
    let mut cfg = cms_config("http://127.0.0.1:9");
    cfg.page_size = 0;
    let err = CmsClient::new(cfg, Stats::default()).unwrap_err();
    assert!(matches!(err, UpstreamError::Config { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Config);
    assert!(BaseUrl::parse("ftp://h/").is_err());
    // Plain http to a remote host only with allow_insecure.
    let mut cfg = webex_config("http://127.0.0.1:9");
    cfg.base_url = BaseUrl::parse_with("http://webex.internal", true).unwrap();
    let err = WebexClient::new(cfg.clone(), Stats::default()).unwrap_err();
    assert!(err.to_string().contains("http.allow_insecure"), "{err}");
    cfg.http.allow_insecure = true;
    assert!(WebexClient::new(cfg, Stats::default()).is_ok());
    let mut cfg = zoho_config("http://127.0.0.1:9");
    cfg.http.ca_file = Some(std::env::temp_dir().join("rebalancer-upstream-no-such-ca.pem"));
    let err = ZohoClient::new(cfg, Stats::default()).unwrap_err();
    assert!(err.to_string().contains("ca_file"), "{err}");
}

#[test]
fn default_settings() {
    let s = HttpSettings::default();
    assert_eq!(s.timeout, Duration::from_secs(30));
    assert_eq!(s.max_retries, 4);
    assert_eq!(s.max_body_bytes, 64 << 20);
    assert!(s.user_agent.starts_with("rebalancer/"));
}
