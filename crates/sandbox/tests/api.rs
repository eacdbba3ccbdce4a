//! End-to-end tests of the sandbox: a real server on a random port, driven
//! with reqwest, checking the wire behaviour the contracts describe.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rebalancer_sandbox::{FaultSpec, Faults, Sandbox, SandboxConfig};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

async fn start(cfg: SandboxConfig) -> Sandbox {
    Sandbox::start(cfg, 0).await.expect("sandbox starts")
}

fn cms_get_url(sb: &Sandbox, campaign: u64, lead: u64, limit: u64, offset: u64) -> String {
    let w = sb.world();
    let process = w
        .campaigns
        .iter()
        .find(|c| c.campaign_id == campaign)
        .map_or(1, |c| c.process_id);
    format!(
        "{}/cms/configuration/cc/{}/process/{process}/campaign/{campaign}/lead-user?leadId={lead}&limit={limit}&offset={offset}",
        sb.base_url(),
        w.contact_center_id
    )
}

fn cms_auth(sb: &Sandbox, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let c = sb.credentials();
    req.basic_auth(&c.cms_username, Some(&c.cms_password))
}

async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The lead with the biggest pool.
fn biggest_lead(sb: &Sandbox) -> (u64, u64, usize) {
    let mut best = (0, 0, 0);
    for c in sb.world().campaigns {
        for l in c.lead_ids {
            let (a, u) = sb.mapping(c.campaign_id, l).unwrap();
            if a.len() + u.len() > best.2 {
                best = (c.campaign_id, l, a.len() + u.len());
            }
        }
    }
    best
}

async fn zoho_token(sb: &Sandbox, client: &Client) -> String {
    let c = sb.credentials();
    let resp = client
        .post(format!("{}/oauth/v2/token", sb.base_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", c.zoho_client_id.as_str()),
            ("client_secret", c.zoho_client_secret.as_str()),
            ("refresh_token", c.zoho_refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["api_domain"], sb.base_url());
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("1000."));
    token
}

fn restrict_to_url(sb: &Sandbox, version: &str, threshold: &str, query: &str) -> String {
    format!(
        "{}/crm/{version}/settings/automation/assignment_thresholds/{threshold}/restrict_to?{query}",
        sb.base_url()
    )
}

#[tokio::test]
async fn same_seed_same_world() {
    let cfg = SandboxConfig {
        seed: 9,
        ..SandboxConfig::default()
    };
    let a = start(cfg.clone()).await;
    let b = start(cfg).await;
    assert_eq!(a.world_users(), b.world_users());
    let (wa, wb) = (a.world(), b.world());
    assert_eq!(format!("{:?}", wa.campaigns), format!("{:?}", wb.campaigns));
    for c in &wa.campaigns {
        for &l in &c.lead_ids {
            assert_eq!(a.mapping(c.campaign_id, l), b.mapping(c.campaign_id, l));
        }
    }
    assert_eq!(wa.agents, 200);
    assert_eq!(wa.leads, 40);
    assert_eq!(wa.module, "Leads");
    assert_eq!(wa.threshold_ids.len(), 2);
    assert!(wa.campaigns.len() >= 2);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn cms_paging_returns_every_id_once_with_limit_capped() {
    let sb = start(SandboxConfig {
        cms_max_limit: 3,
        ..SandboxConfig::default()
    })
    .await;
    let client = Client::new();
    let (campaign, lead, _) = biggest_lead(&sb);
    // Make the assigned list longer than one page too.
    let (_, unassigned) = sb.mapping(campaign, lead).unwrap();
    let put = json!({"leadId": lead, "campaignId": campaign,
        "assignedUserIds": unassigned[..4], "unassignedUserIds": []});
    let resp = cms_auth(
        &sb,
        client.put(format!(
            "{}/cms/configuration/voice/campaignLeadUserMapping",
            sb.base_url()
        )),
    )
    .json(&put)
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);

    let (want_a, want_u) = sb.mapping(campaign, lead).unwrap();
    assert!(want_a.len() > 3 && want_u.len() > 3);
    let (mut got_a, mut got_u) = (Vec::new(), Vec::new());
    let mut offset = 0;
    loop {
        let resp = cms_auth(
            &sb,
            client.get(cms_get_url(&sb, campaign, lead, 100, offset)),
        )
        .send()
        .await
        .unwrap();
        let (status, body) = json_of(resp).await;
        assert_eq!(status, 200, "{body}");
        let a: Vec<String> = serde_json::from_value(body["assignedUserIds"].clone()).unwrap();
        let u: Vec<String> = serde_json::from_value(body["unassignedUserIds"].clone()).unwrap();
        assert!(a.len() <= 3 && u.len() <= 3, "limit is capped");
        assert_eq!(
            body["assignedCampaignUserIds"].as_array().unwrap().len(),
            a.len()
        );
        assert_eq!(
            body["unassignedCampaignUserIds"].as_array().unwrap().len(),
            u.len()
        );
        assert_eq!(body["leadId"], lead);
        assert_eq!(body["campaignId"], campaign);
        assert!(body["campaignLeadId"].is_u64());
        let done = a.len() < 3 && u.len() < 3;
        got_a.extend(a);
        got_u.extend(u);
        if done {
            break;
        }
        offset += 3;
    }
    got_a.sort();
    got_u.sort();
    assert_eq!(got_a, want_a);
    assert_eq!(got_u, want_u);
    sb.shutdown().await;
}

#[tokio::test]
async fn cms_errors() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    let w = sb.world();
    let c = &w.campaigns[0];
    let lead = c.lead_ids[0];

    // No auth, wrong password.
    let (status, body) = json_of(
        client
            .get(cms_get_url(&sb, c.campaign_id, lead, 10, 0))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["statusCode"], 401);
    let resp = client
        .get(cms_get_url(&sb, c.campaign_id, lead, 10, 0))
        .basic_auth(&sb.credentials().cms_username, Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Unknown lead, campaign, process.
    let not_found = json!({"statusCode":404,"status":"Not Found","errorCode":"CONF-1001","errorMessage":"Object doesn't exist"});
    for url in [
        cms_get_url(&sb, c.campaign_id, 999_999, 10, 0),
        cms_get_url(&sb, 999_999, lead, 10, 0),
        format!(
            "{}/cms/configuration/cc/{}/process/999/campaign/{}/lead-user?leadId={lead}&limit=10&offset=0",
            sb.base_url(),
            w.contact_center_id,
            c.campaign_id
        ),
    ] {
        let (status, body) = json_of(cms_auth(&sb, client.get(url)).send().await.unwrap()).await;
        assert_eq!(status, 404);
        assert_eq!(body, not_found);
    }

    // Missing / invalid query parameters.
    let base = cms_get_url(&sb, c.campaign_id, lead, 10, 0);
    let prefix = base.split('?').next().unwrap();
    for query in [
        "limit=10&offset=0",
        &format!("leadId={lead}&offset=0"),
        &format!("leadId={lead}&limit=x&offset=0"),
        &format!("leadId={lead}&limit=10&offset=-1"),
    ] {
        let (status, body) = json_of(
            cms_auth(&sb, client.get(format!("{prefix}?{query}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["statusCode"], 400);
    }

    // PUT: unknown user, user in both lists, malformed body → 400; unknown lead → 404.
    let put_url = format!(
        "{}/cms/configuration/voice/campaignLeadUserMapping",
        sb.base_url()
    );
    let (assigned, unassigned) = sb.mapping(c.campaign_id, lead).unwrap();
    let someone = assigned
        .first()
        .or(unassigned.first())
        .cloned()
        .unwrap_or("agent0001".into());
    for body in [
        json!({"leadId": lead, "campaignId": c.campaign_id, "assignedUserIds": ["ghost_agent"], "unassignedUserIds": []}),
        json!({"leadId": lead, "campaignId": c.campaign_id, "assignedUserIds": ["supervisor01"], "unassignedUserIds": []}),
        json!({"leadId": lead, "campaignId": c.campaign_id, "assignedUserIds": [someone], "unassignedUserIds": [someone]}),
        json!({"leadId": lead, "campaignId": c.campaign_id, "assignedUserIds": []}),
    ] {
        let (status, resp) = json_of(
            cms_auth(&sb, client.put(&put_url))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(resp["statusCode"], 400);
    }
    assert_eq!(
        sb.mapping(c.campaign_id, lead).unwrap(),
        (assigned, unassigned),
        "rejected PUTs change nothing"
    );
    let body = json!({"leadId": 999_999, "campaignId": c.campaign_id, "assignedUserIds": [], "unassignedUserIds": []});
    let (status, resp) = json_of(
        cms_auth(&sb, client.put(&put_url))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(resp, not_found);
    let (status, _) = json_of(client.put(&put_url).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(sb.counts().cms_put, 6);
    sb.shutdown().await;
}

#[tokio::test]
async fn cms_put_changes_state() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    let (campaign, lead) = sb
        .world()
        .campaigns
        .iter()
        .flat_map(|c| c.lead_ids.iter().map(|&l| (c.campaign_id, l)))
        .find(|&(c, l)| {
            sb.mapping(c, l)
                .is_some_and(|(a, u)| !a.is_empty() && !u.is_empty())
        })
        .unwrap();
    let (assigned, unassigned) = sb.mapping(campaign, lead).unwrap();
    let to_assign = unassigned[0].clone();
    let to_unassign = assigned[0].clone();
    let pool: BTreeSet<_> = assigned.iter().chain(&unassigned).cloned().collect();
    let put_url = format!(
        "{}/cms/configuration/voice/campaignLeadUserMapping",
        sb.base_url()
    );
    // A CMS agent from outside the pool can be neither assigned nor
    // unassigned: 400, and nothing changes.
    let outsider = sb
        .world_users()
        .into_iter()
        .find(|u| u.in_cms && !pool.contains(&u.username))
        .unwrap()
        .username;
    for body in [
        json!({"leadId": lead, "campaignId": campaign,
            "assignedUserIds": [to_assign, outsider], "unassignedUserIds": [to_unassign]}),
        json!({"leadId": lead, "campaignId": campaign,
            "assignedUserIds": [], "unassignedUserIds": [outsider]}),
    ] {
        let (status, resp) = json_of(
            cms_auth(&sb, client.put(&put_url))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{resp}");
        assert_eq!(resp["errorCode"], "CONF-1000");
        assert!(
            resp["errorMessage"].as_str().unwrap().contains(&outsider),
            "{resp}"
        );
    }
    assert_eq!(
        sb.mapping(campaign, lead).unwrap(),
        (assigned.clone(), unassigned.clone())
    );
    let body = json!({"leadId": lead, "campaignId": campaign,
        "assignedUserIds": [to_assign], "unassignedUserIds": [to_unassign]});
    for _ in 0..2 {
        // Idempotent: the second PUT gives the same answer and state.
        let (status, resp) = json_of(
            cms_auth(&sb, client.put(&put_url))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{resp}");
        assert_eq!(resp["leadId"], lead);
        assert_eq!(resp["campaignId"], campaign);
        assert_eq!(resp["assignedUserIds"], json!([to_assign]));
        assert_eq!(resp["unassignedUserIds"], json!([to_unassign]));
        assert_eq!(resp["assignedCampaignUserIds"].as_array().unwrap().len(), 1);
        assert_eq!(
            resp["unassignedCampaignUserIds"].as_array().unwrap().len(),
            1
        );
    }
    let (a, u) = sb.mapping(campaign, lead).unwrap();
    assert!(a.contains(&to_assign) && !a.contains(&to_unassign));
    assert!(u.contains(&to_unassign) && !u.contains(&to_assign));
    assert_eq!(a.len() + u.len(), pool.len(), "the pool never changes");

    let (status, got) = json_of(
        cms_auth(&sb, client.get(cms_get_url(&sb, campaign, lead, 500, 0)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let mut ga: Vec<String> = serde_json::from_value(got["assignedUserIds"].clone()).unwrap();
    let mut gu: Vec<String> = serde_json::from_value(got["unassignedUserIds"].clone()).unwrap();
    ga.sort();
    gu.sort();
    assert_eq!((ga, gu), (a, u));
    sb.shutdown().await;
}

#[tokio::test]
async fn webex_users_and_auth() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    let url = format!("{}/campaignapi/resources/v3/users/", sb.base_url());
    let denied = json!({"code":430,"message":"Authorization failed. This resource is not allowed to access using this TOKEN or KEY"});
    for req in [client.get(&url), client.get(&url).bearer_auth("wrong")] {
        let (status, body) = json_of(req.send().await.unwrap()).await;
        assert_eq!(status, 401);
        assert_eq!(body, denied);
    }
    let key = sb.credentials().webex_api_key.clone();
    let (status, body) = json_of(client.get(&url).bearer_auth(&key).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let users = body["users"].as_array().unwrap();
    let world = sb.world_users();
    assert_eq!(users.len(), world.iter().filter(|u| u.in_webex).count());
    let fields = [
        "username",
        "user_email",
        "display_name",
        "role_id",
        "role_desc",
        "user_status",
        "role_status",
        "user_last_login_date",
        "user_groups",
        "user_last_modified_date",
        "user_id",
        "user_first_name",
        "user_last_name",
        "user_creation_date",
    ];
    for u in users {
        for f in fields {
            assert!(u.get(f).is_some(), "{f} missing in {u}");
        }
        assert!(["Active", "Inactive"].contains(&u["user_status"].as_str().unwrap()));
        assert_eq!(u["role_status"], "Active");
    }
    let inactive = users
        .iter()
        .filter(|u| u["user_status"] == "Inactive")
        .count();
    assert_eq!(
        inactive,
        world.iter().filter(|u| u.in_webex && !u.active).count()
    );

    // Filter by username, by email in another case, without trailing slash.
    let someone = world.iter().find(|u| u.in_webex).unwrap();
    let by_name = format!(
        "{}/campaignapi/resources/v3/users?username={}",
        sb.base_url(),
        someone.username
    );
    let (_, body) = json_of(client.get(&by_name).bearer_auth(&key).send().await.unwrap()).await;
    assert_eq!(body["users"].as_array().unwrap().len(), 1);
    assert_eq!(body["users"][0]["username"], someone.username.as_str());
    let by_email = format!("{url}?username={}", someone.email.to_uppercase());
    let (_, body) = json_of(
        client
            .get(&by_email)
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["users"][0]["username"], someone.username.as_str());
    let (_, body) = json_of(
        client
            .get(format!("{url}?username=nobody"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["users"], json!([]));
    assert_eq!(sb.counts().webex, 6);
    sb.shutdown().await;
}

#[tokio::test]
async fn zoho_token_flow_and_paging() {
    let sb = start(SandboxConfig {
        zoho_max_per_page: 50,
        ..SandboxConfig::default()
    })
    .await;
    let client = Client::new();
    let c = sb.credentials().clone();
    let token_url = format!("{}/oauth/v2/token", sb.base_url());

    // Bad refresh token: HTTP 200 with an error, as Zoho does.
    let (status, body) = json_of(
        client
            .post(&token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &c.zoho_client_id),
                ("client_secret", &c.zoho_client_secret),
                ("refresh_token", "1000.stale"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"error": "invalid_code"}));

    // Parameters in the query string work too.
    let query_url = format!(
        "{token_url}?grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
        c.zoho_client_id, c.zoho_client_secret, c.zoho_refresh_token
    );
    let (status, body) = json_of(client.post(&query_url).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(body["access_token"].as_str().unwrap().starts_with("1000."));

    let token = zoho_token(&sb, &client).await;
    let auth = format!("Zoho-oauthtoken {token}");
    let threshold = sb.world().threshold_ids[0].clone();

    // No header, unknown token.
    let url = restrict_to_url(&sb, "v8", &threshold, "module=Leads");
    let (status, body) = json_of(client.get(&url).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code":"AUTHENTICATION_FAILURE","details":{},"message":"Authentication failed","status":"error"})
    );
    let (status, body) = json_of(
        client
            .get(&url)
            .header("Authorization", "Zoho-oauthtoken 1000.forged")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"})
    );

    // Page through the threshold: per_page is capped at 50.
    let world = sb.world_users();
    let expected: BTreeSet<String> = world
        .iter()
        .filter(|u| u.threshold_ids.contains(&threshold))
        .map(|u| u.zoho_user_id.clone().unwrap())
        .collect();
    let mut seen = Vec::new();
    let mut page = 1;
    loop {
        let url = restrict_to_url(
            &sb,
            "v8",
            &threshold,
            &format!("module=Leads&page={page}&per_page=200"),
        );
        let (status, body) = json_of(
            client
                .get(&url)
                .header("Authorization", &auth)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let entries = body["restrict_to"].as_array().unwrap();
        assert!(entries.len() <= 50);
        assert_eq!(body["info"]["per_page"], 50);
        assert_eq!(body["info"]["count"], entries.len());
        assert_eq!(body["info"]["next_page"], page + 1);
        for e in entries {
            assert_eq!(e["type"], "user");
            for f in [
                "backlog_allow_count",
                "default_assignee",
                "record_allow_count",
                "record_assigned_count",
                "backlog_count",
            ] {
                assert!(e.get(f).is_some(), "{f}");
            }
            seen.push(e["user"]["id"].as_str().unwrap().to_owned());
        }
        if body["info"]["more_records"] == false {
            break;
        }
        page += 1;
    }
    assert_eq!(seen.len(), expected.len());
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);

    // A page past the end: 204, empty body.
    let url = restrict_to_url(
        &sb,
        "v8",
        &threshold,
        &format!("module=Leads&page={}", page + 5),
    );
    let resp = client
        .get(&url)
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());

    // Version, module, threshold errors.
    for (url, code) in [
        (
            restrict_to_url(&sb, "v7", &threshold, "module=Leads"),
            "API_NOT_SUPPORTED",
        ),
        (
            restrict_to_url(&sb, "v8", &threshold, "module=Widgets"),
            "INVALID_MODULE",
        ),
        (
            restrict_to_url(&sb, "v8", "123", "module=Leads"),
            "INVALID_DATA",
        ),
    ] {
        let (status, body) = json_of(
            client
                .get(&url)
                .header("Authorization", &auth)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{url}");
        assert_eq!(body["code"], code);
        assert_eq!(body["status"], "error");
    }

    // Expired tokens: 401 INVALID_TOKEN; a fresh token works again.
    sb.expire_tokens();
    let url = restrict_to_url(&sb, "v8", &threshold, "module=Leads");
    let (status, body) = json_of(
        client
            .get(&url)
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "INVALID_TOKEN");
    let fresh = zoho_token(&sb, &client).await;
    assert_ne!(fresh, token);
    let resp = client
        .get(&url)
        .header("Authorization", format!("Zoho-oauthtoken {fresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(sb.counts().zoho_token, 4);
    sb.shutdown().await;
}

#[tokio::test]
async fn zoho_token_lifetime() {
    // Expiry by (the sandbox's) time, without a short lifetime or a sleep:
    // the token clock is moved ahead.
    let sb = start(SandboxConfig {
        token_ttl: Duration::from_secs(3600),
        ..SandboxConfig::default()
    })
    .await;
    let client = Client::new();
    let token = zoho_token(&sb, &client).await;
    let url = restrict_to_url(&sb, "v8", &sb.world().threshold_ids[1], "module=Leads");
    let auth = format!("Zoho-oauthtoken {token}");
    let status = |auth: String| {
        let request = client.get(&url).header("Authorization", auth);
        async move { json_of(request.send().await.unwrap()).await }
    };
    assert_eq!(status(auth.clone()).await.0, 200);
    sb.advance_clock(Duration::from_secs(3599));
    assert_eq!(status(auth.clone()).await.0, 200, "valid until its ttl");
    sb.advance_clock(Duration::from_secs(2));
    let (code, body) = status(auth.clone()).await;
    assert_eq!(code, 401);
    assert_eq!(body["code"], "INVALID_TOKEN");
    // A token issued now lives its full ttl from now.
    let fresh = zoho_token(&sb, &client).await;
    assert_eq!(status(format!("Zoho-oauthtoken {fresh}")).await.0, 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_refresh_token_without_the_scope_gets_oauth_scope_mismatch() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    sb.set_zoho_scope_granted(false);
    // The token endpoint still issues tokens; the CRM refuses the scope.
    let token = zoho_token(&sb, &client).await;
    let url = restrict_to_url(&sb, "v8", &sb.world().threshold_ids[0], "module=Leads");
    let get = || {
        client
            .get(&url)
            .header("Authorization", format!("Zoho-oauthtoken {token}"))
            .send()
    };
    let (status, body) = json_of(get().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "OAUTH_SCOPE_MISMATCH");
    sb.set_zoho_scope_granted(true);
    assert_eq!(get().await.unwrap().status(), 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn empty_answers_are_injected_per_endpoint() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    let key = sb.credentials().webex_api_key.clone();
    let url = format!("{}/campaignapi/resources/v3/users/", sb.base_url());
    let (status, body) = json_of(client.get(&url).bearer_auth(&key).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(!body["users"].as_array().unwrap().is_empty());
    for (null, want) in [
        (false, json!({"users": []})),
        (true, json!({"users": null})),
    ] {
        sb.set_faults(Faults {
            webex: FaultSpec {
                p_empty: 1.0,
                empty_null: null,
                ..FaultSpec::default()
            },
            ..Faults::default()
        });
        let (status, body) =
            json_of(client.get(&url).bearer_auth(&key).send().await.unwrap()).await;
        assert_eq!((status, body), (StatusCode::OK, want));
    }
    sb.set_faults(Faults {
        cms_get: FaultSpec {
            p_empty: 1.0,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let c = &sb.world().campaigns[0];
    let (status, body) = json_of(
        cms_auth(
            &sb,
            client.get(cms_get_url(&sb, c.campaign_id, c.lead_ids[0], 10, 0)),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["assignedUserIds"], json!([]));
    assert_eq!(body["unassignedUserIds"], json!([]));
    sb.shutdown().await;
}

#[tokio::test]
async fn fail_first_then_success() {
    let sb = start(SandboxConfig {
        faults: Faults {
            cms_get: FaultSpec {
                fail_first: 2,
                fail_status: 500,
                ..FaultSpec::default()
            },
            ..Faults::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let client = Client::new();
    let c = &sb.world().campaigns[0];
    let url = cms_get_url(&sb, c.campaign_id, c.lead_ids[0], 10, 0);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, body) = json_of(cms_auth(&sb, client.get(&url)).send().await.unwrap()).await;
        if status == 500 {
            assert_eq!(body["statusCode"], 500);
        }
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [500, 500, 200]);
    assert_eq!(sb.counts().cms_get, 3);

    // set_faults resets the counter; faults come before auth.
    sb.set_faults(Faults {
        cms_get: FaultSpec {
            fail_first: 1,
            fail_status: 503,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    assert_eq!(client.get(&url).send().await.unwrap().status(), 503);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    sb.shutdown().await;
}

#[tokio::test]
async fn throttling_carries_retry_after_and_webex_special_faults() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    let key = sb.credentials().webex_api_key.clone();
    let url = format!("{}/campaignapi/resources/v3/users/", sb.base_url());

    sb.set_faults(Faults {
        webex: FaultSpec {
            p_429: 1.0,
            retry_after_secs: 7,
            ..FaultSpec::default()
        },
        zoho_token: FaultSpec {
            fail_first: 1,
            fail_status: 429,
            retry_after_secs: 2,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let resp = client.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let (_, body) = json_of(resp).await;
    assert_eq!(
        body,
        json!({"code":429,"message":"Too many requests. Throttle limit reached for the time window."})
    );
    let resp = client
        .post(format!("{}/oauth/v2/token", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");

    sb.set_faults(Faults {
        webex: FaultSpec {
            fail_first: 1,
            fail_status: 200,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let (status, body) = json_of(client.get(&url).bearer_auth(&key).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"code":1010,"message":"The request was not processed."})
    );

    sb.set_faults(Faults {
        webex: FaultSpec {
            fail_first: 1,
            fail_status: 498,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let (status, body) = json_of(client.get(&url).bearer_auth(&key).send().await.unwrap()).await;
    assert_eq!(status.as_u16(), 498);
    assert_eq!(
        body,
        json!({"code":498,"message":"Invalid token or Access token expired"})
    );

    // Malformed bodies do not parse; latency is added.
    sb.set_faults(Faults {
        webex: FaultSpec {
            p_malformed: 1.0,
            latency: Duration::from_millis(150),
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let started = Instant::now();
    let resp = client.get(&url).bearer_auth(&key).send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(resp.status(), 200);
    assert!(serde_json::from_slice::<Value>(&resp.bytes().await.unwrap()).is_err());

    // A proxy's HTML page: a 200, text/html, no JSON.
    sb.set_faults(Faults {
        webex: FaultSpec {
            p_html: 1.0,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let resp = client.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let body = resp.bytes().await.unwrap();
    assert!(body.starts_with(b"<!DOCTYPE html>"));
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    sb.shutdown().await;
}

#[tokio::test]
async fn generator_proportions() {
    let sb = start(SandboxConfig {
        seed: 2024,
        agents: 2_000,
        leads: 200,
        ..SandboxConfig::default()
    })
    .await;
    let users = sb.world_users();
    let agents: Vec<_> = users.iter().filter(|u| u.in_cms).collect();
    assert_eq!(agents.len(), 2_000);
    let share = |n: usize| n as f64 / agents.len() as f64;
    let between =
        |x: f64, lo: f64, hi: f64| assert!((lo..=hi).contains(&x), "{x} not in {lo}..={hi}");

    between(
        share(agents.iter().filter(|u| u.in_webex && !u.active).count()),
        0.05,
        0.11,
    );
    between(
        share(agents.iter().filter(|u| !u.in_zoho).count()),
        0.02,
        0.04,
    );
    between(
        share(agents.iter().filter(|u| !u.in_webex).count()),
        0.01,
        0.03,
    );
    between(
        share(
            agents
                .iter()
                .filter(|u| u.in_zoho && u.headroom == 0)
                .count(),
        ),
        0.07,
        0.13,
    );
    let case_differs = users
        .iter()
        .filter(|u| {
            u.webex_email
                .as_ref()
                .is_some_and(|w| *w != u.email && w.to_lowercase() == u.email)
        })
        .count();
    between(case_differs as f64 / users.len() as f64, 0.03, 0.07);
    // A spread of headroom among the rest.
    let headrooms: BTreeSet<u64> = agents
        .iter()
        .filter(|u| u.in_zoho)
        .map(|u| u.headroom)
        .collect();
    assert!(headrooms.len() > 20);

    let supervisors: Vec<_> = users.iter().filter(|u| u.supervisor).collect();
    assert_eq!(supervisors.len(), 2_000 / 50 + 1);
    assert!(supervisors
        .iter()
        .all(|u| !u.in_cms && u.in_webex && u.in_zoho));
    let defaults = users.iter().filter(|u| u.default_assignee).count();
    assert!((1..=2).contains(&defaults));
    let in_both = users.iter().filter(|u| u.threshold_ids.len() == 2).count();
    assert!(in_both > 0);

    // Emails and usernames.
    assert!(agents
        .iter()
        .all(|u| u.username.starts_with("agent") && u.email.ends_with("@example.com")));

    // Leads: pools of 0 or 5..=30, some empty, some with nobody assigned.
    let w = sb.world();
    assert_eq!(w.campaigns.len(), 20);
    let mut leads = BTreeSet::new();
    let (mut empty, mut unassigned_only) = (0, 0);
    for c in &w.campaigns {
        for &l in &c.lead_ids {
            assert!(leads.insert(l), "lead ids are unique");
            let (a, u) = sb.mapping(c.campaign_id, l).unwrap();
            let pool = a.len() + u.len();
            assert!(pool == 0 || (5..=30).contains(&pool));
            assert!(a.len() <= 5);
            empty += usize::from(pool == 0);
            unassigned_only += usize::from(pool > 0 && a.is_empty());
        }
    }
    assert_eq!(leads.len(), 200);
    assert!((5..=20).contains(&empty), "{empty}");
    assert!(unassigned_only >= 5, "{unassigned_only}");
    let processes: BTreeSet<u64> = w.campaigns.iter().map(|c| c.process_id).collect();
    assert!((2..=3).contains(&processes.len()));
    sb.shutdown().await;
}

#[tokio::test]
async fn large_world_starts_and_serves() {
    // Speed is measured by the fetch figures (`rebalancer fetch --sandbox
    // --agents 20000 --leads 2000`), not asserted in a test.
    let sb = start(SandboxConfig {
        agents: 20_000,
        leads: 2_000,
        ..SandboxConfig::default()
    })
    .await;
    let client = Client::new();
    let w = sb.world();
    let c = w.campaigns.last().unwrap();
    let url = cms_get_url(&sb, c.campaign_id, *c.lead_ids.last().unwrap(), 500, 0);
    for _ in 0..50 {
        let resp = cms_auth(&sb, client.get(&url)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = client
        .get(format!("{}/campaignapi/resources/v3/users/", sb.base_url()))
        .bearer_auth(&sb.credentials().webex_api_key)
        .send()
        .await
        .unwrap();
    let (_, body) = json_of(resp).await;
    assert!(body["users"].as_array().unwrap().len() > 19_000);
    sb.shutdown().await;
}

// ------------------------------------------------- support for applier tests

const PUT_PATH: &str = "/cms/configuration/voice/campaignLeadUserMapping";

/// A lead with both assigned and unassigned users in its pool.
fn mixed_lead(sb: &Sandbox) -> (u64, u64, Vec<String>, Vec<String>) {
    for c in sb.world().campaigns {
        for l in c.lead_ids {
            let (a, u) = sb.mapping(c.campaign_id, l).unwrap();
            if a.len() >= 2 && u.len() >= 2 {
                return (c.campaign_id, l, a, u);
            }
        }
    }
    panic!("no lead with two assigned and two unassigned users");
}

/// PUTs `body`; the status and the raw body text.
async fn put(sb: &Sandbox, client: &Client, body: &Value) -> (u16, String) {
    let resp = cms_auth(sb, client.put(format!("{}{PUT_PATH}", sb.base_url())))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn write_log_records_every_put() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    let (campaign, lead, assigned, unassigned) = mixed_lead(&sb);
    assert!(sb.write_log().is_empty());

    // Applied.
    let body = json!({"leadId": lead, "campaignId": campaign,
        "assignedUserIds": [unassigned[0]], "unassignedUserIds": [assigned[0]]});
    assert_eq!(put(&sb, &client, &body).await.0, 200);
    let after_first = sb.mapping(campaign, lead).unwrap().0;
    // Refused: a user outside the CMS.
    let refused = json!({"leadId": lead, "campaignId": campaign,
        "assignedUserIds": ["ghost_agent"], "unassignedUserIds": []});
    assert_eq!(put(&sb, &client, &refused).await.0, 400);
    // Unauthenticated.
    let resp = client
        .put(format!("{}{PUT_PATH}", sb.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Faulted before applying.
    sb.set_faults(Faults {
        cms_put: FaultSpec {
            fail_first: 1,
            fail_status: 503,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    assert_eq!(put(&sb, &client, &body).await.0, 503);
    // A body that is not a mapping change.
    let resp = cms_auth(&sb, client.put(format!("{}{PUT_PATH}", sb.base_url())))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let log = sb.write_log();
    assert_eq!(log.len(), 5);
    assert_eq!(sb.counts().cms_put, 5);
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    let first = &log[0];
    assert_eq!((first.campaign_id, first.lead_id), (campaign, lead));
    assert_eq!(first.assigned, [unassigned[0].clone()]);
    assert_eq!(first.unassigned, [assigned[0].clone()]);
    assert_eq!((first.status, first.applied), (200, true));
    assert_eq!(first.assigned_after, after_first);
    assert!(first.assigned_after.contains(&unassigned[0]));
    assert!(!first.assigned_after.contains(&assigned[0]));
    let statuses: Vec<(u16, bool)> = log.iter().map(|r| (r.status, r.applied)).collect();
    assert_eq!(
        statuses,
        [
            (200, true),
            (400, false),
            (401, false),
            (503, false),
            (400, false)
        ]
    );
    assert_eq!(log[1].assigned, ["ghost_agent"]);
    assert!(log[1..].iter().all(|r| r.assigned_after.is_empty()));
    assert_eq!((log[4].campaign_id, log[4].lead_id), (0, 0));
    sb.clear_write_log();
    assert!(sb.write_log().is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn put_faults_after_apply_change_state_then_fail() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    let (campaign, lead, assigned, unassigned) = mixed_lead(&sb);

    sb.set_faults(Faults {
        cms_put: FaultSpec {
            p_500_after_apply: 1.0,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let body = json!({"leadId": lead, "campaignId": campaign,
        "assignedUserIds": [unassigned[0]], "unassignedUserIds": []});
    let (status, text) = put(&sb, &client, &body).await;
    assert_eq!(status, 500);
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["statusCode"], 500);
    let now = sb.mapping(campaign, lead).unwrap().0;
    assert!(now.contains(&unassigned[0]), "applied before the 500");

    sb.set_faults(Faults {
        cms_put: FaultSpec {
            p_malformed_after_apply: 1.0,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let body = json!({"leadId": lead, "campaignId": campaign,
        "assignedUserIds": [], "unassignedUserIds": [assigned[0]]});
    let (status, text) = put(&sb, &client, &body).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    let now = sb.mapping(campaign, lead).unwrap().0;
    assert!(
        !now.contains(&assigned[0]),
        "applied before the malformed 200"
    );

    let log = sb.write_log();
    assert_eq!(
        log.iter()
            .map(|r| (r.status, r.applied))
            .collect::<Vec<_>>(),
        [(500, true), (200, true)]
    );
    assert!(log[0].assigned_after.contains(&unassigned[0]));
    assert_eq!(log[1].assigned_after, now);
    sb.shutdown().await;
}

#[tokio::test]
async fn put_faults_before_apply_change_nothing() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    let (campaign, lead, _, unassigned) = mixed_lead(&sb);
    let before = sb.mapping(campaign, lead).unwrap();
    let body = json!({"leadId": lead, "campaignId": campaign,
        "assignedUserIds": [unassigned[0]], "unassignedUserIds": []});
    for (spec, want) in [
        (
            FaultSpec {
                p_500: 1.0,
                ..FaultSpec::default()
            },
            500,
        ),
        (
            FaultSpec {
                p_429: 1.0,
                retry_after_secs: 2,
                ..FaultSpec::default()
            },
            429,
        ),
    ] {
        sb.set_faults(Faults {
            cms_put: spec,
            ..Faults::default()
        });
        let resp = cms_auth(&sb, client.put(format!("{}{PUT_PATH}", sb.base_url())))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want);
        if want == 429 {
            assert_eq!(resp.headers()["retry-after"], "2");
        }
        assert_eq!(sb.mapping(campaign, lead).unwrap(), before);
    }
    // Latency delays the PUT, which then applies.
    sb.set_faults(Faults {
        cms_put: FaultSpec {
            latency: Duration::from_millis(300),
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let started = Instant::now();
    assert_eq!(put(&sb, &client, &body).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(sb
        .mapping(campaign, lead)
        .unwrap()
        .0
        .contains(&unassigned[0]));
    let log = sb.write_log();
    assert_eq!(
        log.iter()
            .map(|r| (r.status, r.applied))
            .collect::<Vec<_>>(),
        [(500, false), (429, false), (200, true)]
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn set_lead_users_is_seen_by_get_and_put() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    let (campaign, lead, assigned, unassigned) = mixed_lead(&sb);
    let pool = sorted(assigned.iter().chain(&unassigned).cloned().collect());
    // Someone else assigns exactly these two.
    let now = [unassigned[0].as_str(), assigned[1].as_str()];
    sb.set_lead_users(campaign, lead, &now).unwrap();
    let (a, u) = sb.mapping(campaign, lead).unwrap();
    assert_eq!(a, sorted(now.iter().map(|s| s.to_string()).collect()));
    let expected_unassigned: Vec<String> =
        pool.iter().filter(|n| !a.contains(n)).cloned().collect();
    assert_eq!(u, expected_unassigned);
    let (status, got) = json_of(
        cms_auth(&sb, client.get(cms_get_url(&sb, campaign, lead, 500, 0)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let got_a: Vec<String> = serde_json::from_value(got["assignedUserIds"].clone()).unwrap();
    assert_eq!(sorted(got_a), a);
    // Nobody assigned.
    sb.set_lead_users(campaign, lead, &[]).unwrap();
    assert_eq!(sb.mapping(campaign, lead).unwrap(), (vec![], pool.clone()));
    // Refusals change nothing.
    let err = sb
        .set_lead_users(campaign, lead, &[assigned[0].as_str(), "ghost_agent"])
        .unwrap_err();
    assert!(err.to_string().contains("ghost_agent"), "{err}");
    assert!(sb.set_lead_users(campaign, 999_999, &[]).is_err());
    assert_eq!(sb.mapping(campaign, lead).unwrap(), (vec![], pool));
    sb.shutdown().await;
}

#[tokio::test]
async fn set_webex_active_is_seen_by_the_users_endpoint() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    let users = sb.world_users();
    let on = users
        .iter()
        .find(|u| u.in_cms && u.active)
        .unwrap()
        .username
        .clone();
    let off = users
        .iter()
        .find(|u| u.in_cms && u.in_webex && !u.active)
        .unwrap()
        .username
        .clone();
    sb.set_webex_active(&on, false).unwrap();
    sb.set_webex_active(&off, true).unwrap();
    let key = sb.credentials().webex_api_key.clone();
    let url = format!("{}/campaignapi/resources/v3/users/", sb.base_url());
    let (_, body) = json_of(client.get(&url).bearer_auth(&key).send().await.unwrap()).await;
    let status_of = |name: &str| {
        body["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["user_status"]
            .clone()
    };
    assert_eq!(status_of(&on), "Inactive");
    assert_eq!(status_of(&off), "Active");
    let (_, one) = json_of(
        client
            .get(format!("{url}?username={on}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(one["users"][0]["user_status"], "Inactive");
    let now = sb.world_users();
    assert!(!now.iter().find(|u| u.username == on).unwrap().active);
    assert!(now.iter().find(|u| u.username == off).unwrap().active);
    let missing = users.iter().find(|u| u.in_cms && !u.in_webex).unwrap();
    assert!(sb.set_webex_active(&missing.username, true).is_err());
    assert!(sb.set_webex_active("nobody_at_all", true).is_err());
    sb.shutdown().await;
}

#[tokio::test]
async fn set_zoho_counts_puts_an_agent_at_its_allowance() {
    let sb = start(SandboxConfig::default()).await;
    let client = Client::new();
    let users = sb.world_users();
    let agent = users
        .iter()
        .find(|u| u.in_cms && u.in_zoho && u.headroom > 0)
        .unwrap()
        .clone();
    let threshold = agent.threshold_ids[0].clone();
    let token = zoho_token(&sb, &client).await;
    let entry_of = |body: &Value| {
        body["restrict_to"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["user"]["email"] == agent.email.as_str())
            .cloned()
            .unwrap()
    };
    let url = restrict_to_url(&sb, "v8", &threshold, "module=Leads&per_page=200");
    let fetch = || async {
        let mut all = Vec::new();
        for page in 1.. {
            let resp = client
                .get(format!("{url}&page={page}"))
                .header("Authorization", format!("Zoho-oauthtoken {token}"))
                .send()
                .await
                .unwrap();
            if resp.status() == 204 {
                break;
            }
            let (_, body) = json_of(resp).await;
            let more = body["info"]["more_records"] == true;
            all.extend(body["restrict_to"].as_array().unwrap().clone());
            if !more {
                break;
            }
        }
        json!({ "restrict_to": all })
    };
    let before = entry_of(&fetch().await);
    let allowance = before["backlog_allow_count"].as_u64().unwrap();
    // By email in another case.
    sb.set_zoho_counts(&agent.email.to_uppercase(), allowance + 3)
        .unwrap();
    let after = entry_of(&fetch().await);
    assert_eq!(after["backlog_count"], allowance + 3);
    assert_eq!(after["record_allow_count"], before["record_allow_count"]);
    let info = sb
        .world_users()
        .into_iter()
        .find(|u| u.username == agent.username)
        .unwrap();
    assert_eq!(info.headroom, 0);
    // By Zoho user id, back under the allowance.
    sb.set_zoho_counts(agent.zoho_user_id.as_deref().unwrap(), 0)
        .unwrap();
    assert_eq!(entry_of(&fetch().await)["backlog_count"], 0);
    assert!(sb.set_zoho_counts("nobody@example.invalid", 1).is_err());
    let outside = users.iter().find(|u| u.in_cms && !u.in_zoho).unwrap();
    assert!(sb.set_zoho_counts(&outside.username, 1).is_err());
    sb.shutdown().await;
}
