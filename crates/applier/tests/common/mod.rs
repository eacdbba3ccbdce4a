//! Shared set-up of the applier's tests: a sandbox on 127.0.0.1, clients
//! for it (optionally with a write budget), plans made from the sandbox's
//! world (the optimizer is not a dependency, so plans are built here from
//! the live mapping), and readers of the journal and the sandbox state.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rebalancer_applier::{
    ApplyConfig, ConfigDigest, ConfiguredCampaign, Expected, JournalLocation, OnDrift, RetryPolicy,
    Upstreams, MAX_CLOCK_SKEW,
};
use rebalancer_model::{
    Action, AgentId, AgentPlan, Balance, Change, LeadKey, LeadPlan, Metrics, NewPairs, Objectives,
    Plan, Reason, Summary, TargetSystem, PLAN_SCHEMA_VERSION,
};
use rebalancer_sandbox::{Faults, Sandbox, SandboxConfig, UserInfo};
use rebalancer_upstream::{
    BaseUrl, CmsClient, CmsConfig, HttpSettings, RequestBudget, Stats, WebexClient, WebexConfig,
    ZohoClient, ZohoConfig,
};

pub async fn sandbox(seed: u64, agents: usize, leads: usize) -> Sandbox {
    let cfg = SandboxConfig {
        seed,
        agents,
        leads,
        faults: Faults::default(),
        ..SandboxConfig::default()
    };
    Sandbox::start(cfg, 0).await.expect("sandbox starts")
}

/// HTTP settings for tests: short backoff, optional write budget.
pub fn http(budget: Option<RequestBudget>) -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(5),
        max_retries: 6,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_secs(2),
        budget,
        ..HttpSettings::default()
    }
}

pub fn budget(per_second: u32, burst: u32) -> RequestBudget {
    RequestBudget::new(
        NonZeroU32::new(per_second).unwrap(),
        NonZeroU32::new(burst).unwrap(),
        8,
    )
}

pub fn upstreams(sb: &Sandbox, cms_http: HttpSettings) -> Upstreams {
    let base = BaseUrl::parse(&sb.base_url()).unwrap();
    let world = sb.world();
    let creds = sb.credentials();
    let stats = Stats::default();
    Upstreams {
        cms: CmsClient::new(
            CmsConfig {
                base_url: base.clone(),
                username: creds.cms_username.clone(),
                password: creds.cms_password.clone().into(),
                contact_center_id: world.contact_center_id,
                page_size: 500,
                short_page_ends: true,
                http: cms_http,
            },
            stats.clone(),
        )
        .unwrap(),
        webex: WebexClient::new(
            WebexConfig {
                base_url: base.clone(),
                api_key: creds.webex_api_key.clone().into(),
                http: http(None),
            },
            stats.clone(),
        )
        .unwrap(),
        zoho: ZohoClient::new(
            ZohoConfig {
                accounts_url: base.clone(),
                api_domain: base,
                client_id: creds.zoho_client_id.clone(),
                client_secret: creds.zoho_client_secret.clone().into(),
                refresh_token: creds.zoho_refresh_token.clone().into(),
                api_version: "v8".into(),
                module: world.module.clone(),
                per_page: 200,
                http: http(None),
            },
            stats,
        )
        .unwrap(),
        threshold_ids: world.threshold_ids,
    }
}

pub fn config() -> ApplyConfig {
    ApplyConfig {
        max_users_per_put: 50,
        on_drift: OnDrift::Skip,
        recheck: Duration::from_secs(60),
        concurrency: 4,
        lease_ttl: Duration::from_secs(30),
        max_unassign_share: 1.0,
        allow_mass_unassign: false,
        retry: RetryPolicy {
            retries: 6,
            backoff_initial: Duration::from_millis(5),
            backoff_max: Duration::from_millis(50),
        },
    }
}

/// The plans of [`plan_from`] were fetched at this time.
pub const FETCHED_AT: &str = "2026-11-30T00:00:00Z";

/// What a config of `sb` expects of the plans built here: its system and
/// campaigns, their config digest (`cd…`), asked an hour after
/// [`FETCHED_AT`] (a fixed moment, so the tests do not depend on the
/// clock).
pub fn expected(sb: &Sandbox) -> Expected {
    let world = sb.world();
    Expected {
        system: TargetSystem {
            cms_base_url: sb.base_url(),
            contact_center_id: Some(world.contact_center_id),
        },
        campaigns: world
            .campaigns
            .iter()
            .map(|c| ConfiguredCampaign {
                process_id: c.process_id,
                campaign_id: c.campaign_id,
                lead_ids: c.lead_ids.clone(),
            })
            .collect(),
        config_digest: ConfigDigest::new(|_| "cd".repeat(32)),
        max_plan_age: Duration::from_secs(3600 * 24),
        max_clock_skew: MAX_CLOCK_SKEW,
        now: time::OffsetDateTime::parse(
            FETCHED_AT,
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
            + time::Duration::hours(1),
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

/// A plan from explicit targets: `targets[lead]` is the wanted assigned
/// set; `current` the snapshot (normally the live mapping).
pub fn plan_from(
    sb: &Sandbox,
    current: &BTreeMap<LeadKey, BTreeSet<String>>,
    targets: &BTreeMap<LeadKey, BTreeSet<String>>,
) -> Plan {
    let users = users(sb);
    let process: BTreeMap<LeadKey, u64> = leads(sb).into_iter().collect();
    let mut changes = Vec::new();
    let mut lead_plans = Vec::new();
    let mut in_pools = BTreeSet::new();
    for (lead, cur) in current {
        let target = targets.get(lead).unwrap_or(cur);
        for a in target.difference(cur) {
            changes.push(change(*lead, a, Action::Assign));
        }
        for u in cur.difference(target) {
            changes.push(change(*lead, u, Action::Unassign));
        }
        in_pools.extend(pool(sb, *lead));
        lead_plans.push(LeadPlan {
            lead: *lead,
            process_id: process[lead],
            demand: 10.0,
            covered: 10.0,
            shortfall: 0.0,
            target: target.iter().map(|a| AgentId::new(a.clone())).collect(),
            current: cur.iter().map(|a| AgentId::new(a.clone())).collect(),
            frozen: false,
            default_assignee: None,
        });
    }
    changes.sort_by(|a, b| (a.lead, a.action, &a.agent).cmp(&(b.lead, b.action, &b.agent)));
    let agents = in_pools
        .iter()
        .filter_map(|name| users.get(name))
        .map(|u| AgentPlan {
            agent: AgentId::new(u.username.clone()),
            headroom: u.headroom as i64,
            load_before: 0.0,
            load_after: 0.0,
            leads_before: 0,
            leads_after: 0,
            webex_username: u.in_webex.then(|| u.username.clone()),
            zoho_user_id: u.zoho_user_id.clone(),
        })
        .collect();
    let m = Metrics {
        shortfall: 0.0,
        peak_utilisation: 0.5,
        leads_uncovered: 0,
    };
    let assigns = changes
        .iter()
        .filter(|c| c.action == Action::Assign)
        .count();
    Plan {
        schema_version: PLAN_SCHEMA_VERSION,
        snapshot_hash: "ab".repeat(32),
        snapshot_fetched_at: FETCHED_AT.into(),
        config_digest: "cd".repeat(32),
        solver: "test".into(),
        system: TargetSystem {
            cms_base_url: sb.base_url(),
            contact_center_id: Some(sb.world().contact_center_id),
        },
        objectives: Objectives {
            before: m.clone(),
            after: m.clone(),
            optimum: m,
            churn: 0.0,
            balance: Balance {
                target: Some(0.9),
                least_peak: 0.5,
                cap: 0.9,
            },
            new_pairs: NewPairs {
                least_records: 1,
                reduced: 1,
            },
        },
        summary: Summary {
            agents: users.len(),
            leads: lead_plans.len(),
            assigns,
            unassigns: changes.len() - assigns,
            deferred: 0,
            kept: 0,
        },
        gate: None,
        blocked: None,
        caps: None,
        flap_guard: None,
        what_ifs: vec![],
        problems: vec![],
        changes,
        deferred: vec![],
        leads: lead_plans,
        agents,
        notes: vec![],
    }
}

fn change(lead: LeadKey, agent: &str, action: Action) -> Change {
    Change {
        lead,
        agent: AgentId::new(agent),
        action,
        reason: match action {
            Action::Assign => Reason::CoversShortfall {
                shortfall_before: 1.0,
            },
            Action::Unassign => Reason::Excluded,
        },
        flow: 1.0,
    }
}

/// A rebalance of the live world: on each lead, unassign the agents that
/// may not work (inactive, no headroom) and one eligible agent on every
/// third lead, and assign up to `per_lead` eligible agents of the pool.
/// The target keeps at least one agent on a lead that had some.
pub fn rebalance(sb: &Sandbox, per_lead: usize) -> Plan {
    let users = users(sb);
    let current = state(sb);
    let mut targets = BTreeMap::new();
    for (i, (lead, cur)) in current.iter().enumerate() {
        let ok = |a: &String| users.get(a).is_some_and(eligible);
        let mut target: BTreeSet<String> = cur.iter().filter(|a| ok(a)).cloned().collect();
        if i % 3 == 0 && target.len() > 1 {
            let first = target.iter().next().unwrap().clone();
            target.remove(&first);
        }
        let add: Vec<String> = pool(sb, *lead)
            .into_iter()
            .filter(|a| !cur.contains(a) && ok(a))
            .take(per_lead)
            .collect();
        target.extend(add);
        if target.is_empty() && !cur.is_empty() {
            target.insert(cur.iter().next().unwrap().clone());
        }
        targets.insert(*lead, target);
    }
    plan_from(sb, &current, &targets)
}

/// The planned target of every lead of a plan.
pub fn targets(plan: &Plan) -> BTreeMap<LeadKey, BTreeSet<String>> {
    plan.leads
        .iter()
        .map(|l| (l.lead, l.target.iter().map(|a| a.0.to_string()).collect()))
        .collect()
}

/// The SQLite journal at `path`.
pub fn loc(path: &Path) -> JournalLocation {
    JournalLocation::Sqlite(path.to_path_buf())
}

pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join("journal.sqlite")
}

/// Every byte of the journal's files (main, WAL, shared memory).
pub fn journal_bytes(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(b) = std::fs::read(&p) {
            out.extend(b);
        }
    }
    out
}
