//! Shared set-up of the applier's tests: the applier's own types for a
//! sandbox (its clients with an optional write budget, the options, what a
//! config expects of the plans, journal files), over the workspace's test
//! kit (`rebalancer_testkit`: the sandbox, plan builders, write-log
//! checks), re-exported here.

#![allow(dead_code)]

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rebalancer_applier::{
    ApplyConfig, ConfigDigest, ConfiguredCampaign, Expected, JournalLocation, OnDrift, RetryPolicy,
    Upstreams, MAX_CLOCK_SKEW,
};
use rebalancer_model::TargetSystem;
use rebalancer_sandbox::Sandbox;
use rebalancer_upstream::{CmsClient, HttpSettings, RequestBudget, Stats, WebexClient, ZohoClient};

#[allow(unused_imports)]
pub use rebalancer_testkit::{plans::*, sandbox::*, writes::*};

/// A sandbox with a generated world.
pub async fn sandbox(seed: u64, agents: usize, leads: usize) -> Sandbox {
    start(seed, agents, leads).await
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
    let stats = Stats::default();
    Upstreams {
        cms: CmsClient::new(cms_config(sb, 500, cms_http), stats.clone()).unwrap(),
        webex: WebexClient::new(webex_config(sb, http(None)), stats.clone()).unwrap(),
        zoho: ZohoClient::new(zoho_config(sb, 200, http(None)), stats).unwrap(),
        threshold_ids: sb.world().threshold_ids,
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
