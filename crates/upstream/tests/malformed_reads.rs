//! A 2xx whose body is malformed or truncated (a proxy's HTML page, cut-off
//! JSON) on an idempotent read is retried within `max_retries` like a 5xx
//! and counted (`Stats::malformed_retries`); only a body that stays
//! malformed on every attempt fails, with the explanatory `Malformed`
//! message. A write (the CMS PUT) keeps its ambiguous-write meaning: sent
//! once, never retried on a malformed answer. Issue 16, #16.

use std::time::Duration;

use rebalancer_upstream::{
    BaseUrl, CmsClient, CmsConfig, ErrorClass, HttpSettings, MappingUpdate, Stats, UpstreamError,
    WebexClient, WebexConfig, ZohoClient, ZohoConfig,
};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TRUNCATED: &str = r#"{"campaignLeadId":1,"assignedUserIds":["anav_ag"#;
const PROXY_PAGE: &str =
    "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";

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

fn cms(server: &MockServer, stats: &Stats) -> CmsClient {
    let config = CmsConfig {
        base_url: BaseUrl::parse(&server.uri()).unwrap(),
        username: "cms-user".into(),
        password: SecretString::from("cms-secret-pw"),
        contact_center_id: 9,
        page_size: 100,
        short_page_ends: true,
        http: fast_http(),
    };
    CmsClient::new(config, stats.clone()).unwrap()
}

fn html(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/html")
        .set_body_string(body)
}

fn json_text(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/json")
        .set_body_string(body)
}

/// Mounts `bad` for the first `n` GETs, `good` after.
async fn bad_then_good(server: &MockServer, bad: ResponseTemplate, n: u64, good: ResponseTemplate) {
    Mock::given(method("GET"))
        .respond_with(bad)
        .up_to_n_times(n)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .respond_with(good)
        .with_priority(2)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_cms_read_with_malformed_bodies_is_retried_then_succeeds() {
    for bad in [html(PROXY_PAGE), json_text(TRUNCATED)] {
        let server = MockServer::start().await;
        bad_then_good(
            &server,
            bad,
            2,
            ResponseTemplate::new(200)
                .set_body_json(json!({"assignedUserIds": ["a1"], "unassignedUserIds": []})),
        )
        .await;
        let stats = Stats::default();
        let got = cms(&server, &stats).lead_users(1, 3, 7).await.unwrap();
        assert_eq!(got.assigned_user_ids, ["a1"]);
        assert_eq!(stats.requests(), 3);
        assert_eq!(stats.retries(), 2);
        assert_eq!(stats.malformed_retries(), 2);
    }
}

#[tokio::test]
async fn a_body_that_stays_malformed_fails_with_the_explanatory_message() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(html(PROXY_PAGE))
        .expect(4)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let err = cms(&server, &stats).lead_users(1, 3, 7).await.unwrap_err();
    assert!(err.is_malformed_body(), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Data);
    let text = err.to_string();
    assert!(
        text.contains("response could not be understood")
            && text.contains("502 Bad Gateway")
            && text.contains("lead-user")
            && text.contains("cms.base_url"),
        "{text}"
    );
    assert_eq!(stats.requests(), 4, "the first attempt and max_retries (3)");
    assert_eq!(stats.malformed_retries(), 3);
}

#[tokio::test]
async fn webex_and_zoho_reads_retry_malformed_bodies_too() {
    let server = MockServer::start().await;
    bad_then_good(
        &server,
        json_text(r#"{"users":[{"username":"agent0001","user_em"#),
        1,
        ResponseTemplate::new(200).set_body_json(json!({"code": 200, "users": [
            {"username": "a1", "user_email": "a1@x.com", "user_status": "Active", "role_status": "Active"}
        ]})),
    )
    .await;
    let stats = Stats::default();
    let webex = WebexClient::new(
        WebexConfig {
            base_url: BaseUrl::parse(&server.uri()).unwrap(),
            api_key: SecretString::from("webex-secret-key"),
            http: fast_http(),
        },
        stats.clone(),
    )
    .unwrap();
    assert_eq!(webex.users().await.unwrap().len(), 1);
    assert_eq!((stats.retries(), stats.malformed_retries()), (1, 1));

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600}),
        ))
        .mount(&server)
        .await;
    bad_then_good(
        &server,
        html(PROXY_PAGE),
        1,
        ResponseTemplate::new(200).set_body_json(json!({
            "restrict_to": [{
                "backlog_allow_count": 2, "default_assignee": false, "record_allow_count": 10,
                "record_assigned_count": 0, "type": "user", "backlog_count": 0,
                "user": {"name": "U", "id": "u1", "email": "u1@zylker.com"}
            }],
            "info": {"more_records": false}
        })),
    )
    .await;
    let stats = Stats::default();
    let base = BaseUrl::parse(&server.uri()).unwrap();
    let zoho = ZohoClient::new(
        ZohoConfig {
            accounts_url: base.clone(),
            api_domain: base,
            client_id: "1000.CLIENTID".into(),
            client_secret: SecretString::from("zoho-client-secret"),
            refresh_token: SecretString::from("1000.zoho-refresh-token"),
            api_version: "v8".into(),
            module: "Leads".into(),
            per_page: 200,
            http: fast_http(),
        },
        stats.clone(),
    )
    .unwrap();
    assert_eq!(zoho.threshold_users("186207").await.unwrap().len(), 1);
    assert_eq!((stats.retries(), stats.malformed_retries()), (1, 1));
}

#[tokio::test]
async fn a_malformed_answer_to_a_put_is_still_sent_once_and_ambiguous() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(json_text(TRUNCATED))
        .expect(1)
        .mount(&server)
        .await;
    let stats = Stats::default();
    let err = cms(&server, &stats)
        .put_mapping(&MappingUpdate {
            lead_id: 2,
            campaign_id: 1,
            assigned_user_ids: vec!["a1".into()],
            unassigned_user_ids: vec![],
        })
        .await
        .unwrap_err();
    assert!(err.is_ambiguous_write(), "{err:?}");
    assert!(!matches!(err, UpstreamError::Malformed { .. }));
    assert_eq!((stats.requests(), stats.retries()), (1, 0));
    assert_eq!(stats.malformed_retries(), 0);
}
