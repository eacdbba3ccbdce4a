//! A sandbox for tests: started on 127.0.0.1 (port 0, held by the
//! sandbox), client settings that reach it with its fake credentials, and
//! readers of its world and live mapping.

use std::collections::{BTreeMap, BTreeSet};

use rebalancer_model::LeadKey;
use rebalancer_sandbox::{Faults, Sandbox, SandboxConfig, UserInfo};
use rebalancer_upstream::{BaseUrl, CmsConfig, HttpSettings, WebexConfig, ZohoConfig};

/// A sandbox with a generated world of `agents` and `leads`.
pub async fn start(seed: u64, agents: usize, leads: usize) -> Sandbox {
    let cfg = SandboxConfig {
        seed,
        agents,
        leads,
        faults: Faults::default(),
        ..SandboxConfig::default()
    };
    Sandbox::start(cfg, 0).await.expect("sandbox starts")
}

/// The sandbox's URL as every client takes it.
pub fn url(sb: &Sandbox) -> BaseUrl {
    BaseUrl::parse(&sb.base_url()).expect("the sandbox's own URL parses")
}

/// The CMS client's settings for `sb`, `page_size` per GET.
pub fn cms_config(sb: &Sandbox, page_size: u32, http: HttpSettings) -> CmsConfig {
    let c = sb.credentials();
    CmsConfig {
        base_url: url(sb),
        username: c.cms_username.clone(),
        password: c.cms_password.clone().into(),
        contact_center_id: sb.world().contact_center_id,
        page_size,
        short_page_ends: true,
        http,
    }
}

/// The Webex client's settings for `sb`.
pub fn webex_config(sb: &Sandbox, http: HttpSettings) -> WebexConfig {
    WebexConfig {
        base_url: url(sb),
        api_key: sb.credentials().webex_api_key.clone().into(),
        http,
    }
}

/// The Zoho client's settings for `sb`, `per_page` per restrict_to page.
pub fn zoho_config(sb: &Sandbox, per_page: u32, http: HttpSettings) -> ZohoConfig {
    let c = sb.credentials();
    ZohoConfig {
        accounts_url: url(sb),
        api_domain: url(sb),
        client_id: c.zoho_client_id.clone(),
        client_secret: c.zoho_client_secret.clone().into(),
        refresh_token: c.zoho_refresh_token.clone().into(),
        api_version: "v8".into(),
        module: sb.world().module.clone(),
        per_page,
        http,
    }
}

/// Every lead of the world with its process id.
pub fn leads(sb: &Sandbox) -> Vec<(LeadKey, u64)> {
    let mut out = Vec::new();
    for c in sb.world().campaigns {
        for &l in &c.lead_ids {
            out.push((
                LeadKey {
                    campaign_id: c.campaign_id,
                    lead_id: l,
                },
                c.process_id,
            ));
        }
    }
    out
}

pub fn assigned(sb: &Sandbox, lead: LeadKey) -> BTreeSet<String> {
    sb.mapping(lead.campaign_id, lead.lead_id)
        .unwrap()
        .0
        .into_iter()
        .collect()
}

pub fn pool(sb: &Sandbox, lead: LeadKey) -> BTreeSet<String> {
    let (a, u) = sb.mapping(lead.campaign_id, lead.lead_id).unwrap();
    a.into_iter().chain(u).collect()
}

/// The whole live mapping.
pub fn state(sb: &Sandbox) -> BTreeMap<LeadKey, BTreeSet<String>> {
    leads(sb)
        .into_iter()
        .map(|(l, _)| (l, assigned(sb, l)))
        .collect()
}

pub fn users(sb: &Sandbox) -> BTreeMap<String, UserInfo> {
    sb.world_users()
        .into_iter()
        .map(|u| (u.username.clone(), u))
        .collect()
}

/// May be assigned: active in Webex and with Zoho headroom.
pub fn eligible(u: &UserInfo) -> bool {
    u.active && u.in_zoho && u.headroom > 0
}

/// What the applier's re-check accepts: active in Webex, and under its Zoho
/// allowance when it has a Zoho user (one without is not re-checked).
pub fn may_be_assigned(u: &UserInfo) -> bool {
    u.active && (u.zoho_user_id.is_none() || u.headroom > 0)
}
