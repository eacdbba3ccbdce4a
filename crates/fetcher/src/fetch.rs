//! The fetch itself: reads CMS leads, Webex users and Zoho thresholds
//! concurrently, then joins them into a [`Snapshot`].
//!
//! Concurrency is bounded: at most `concurrency` CMS lead reads are in
//! flight at once (each lead pages sequentially); Webex and every Zoho
//! threshold are read alongside them. The first hard error ends the fetch:
//! a partial snapshot would make a plan that is wrong, so there is none.
//! A 404 on one lead is not a hard error unless `strict` is set: the lead is
//! left out and listed as a problem. When *every* configured lead of a
//! campaign answers 404, the campaign itself is wrong and the fetch fails.
//!
//! Two guards keep a sick upstream from producing a plausible but wrong
//! snapshot: the whole fetch has a deadline (`FetchOptions::deadline`), and
//! Webex must know at least `min_webex_coverage` of the CMS agents (an
//! empty user list is an outage, not "everyone inactive"). Progress is
//! published through [`FetchProgress`] for a progress bar.

use crate::join::{join, IdentityMap, JoinInput, LeadMapping};
use crate::FetchError;
use futures::stream::{self, StreamExt, TryStreamExt};
use rebalancer_model::{
    Agent, Problem, ProblemKind, Snapshot, SnapshotSource, SNAPSHOT_SCHEMA_VERSION,
};
use rebalancer_upstream::{
    Api, CmsClient, LeadUsers, Stats, ThresholdUser, WebexClient, WebexUser, ZohoClient,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The three upstream clients a fetch reads through.
#[derive(Clone)]
pub struct Clients {
    pub cms: CmsClient,
    pub webex: WebexClient,
    pub zoho: ZohoClient,
    /// The counters the clients were built with.
    pub stats: Stats,
}

/// One configured campaign and the leads to read in it (a `[[cms.campaigns]]`
/// table of the settings deserialises into this directly).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub process_id: u64,
    pub campaign_id: u64,
    pub lead_ids: Vec<u64>,
}

/// Default of [`FetchOptions::deadline`] (the binary's `fetch.deadline_secs`).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);

/// Default of [`FetchOptions::min_webex_coverage`].
pub const DEFAULT_MIN_WEBEX_COVERAGE: f64 = 0.5;

/// Live progress of a fetch, shared by clones (cheap `Arc`ed atomics). The
/// fetcher updates it as it goes; a CLI polls it to draw a progress bar.
/// Requests, retries and retry waits live in `upstream::Stats`.
#[derive(Debug, Clone, Default)]
pub struct FetchProgress {
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    leads_total: AtomicU64,
    leads_done: AtomicU64,
    thresholds_total: AtomicU64,
    thresholds_done: AtomicU64,
    webex_done: AtomicU64,
}

impl FetchProgress {
    /// CMS leads to read in this fetch (set when the fetch starts).
    pub fn leads_total(&self) -> u64 {
        self.counters.leads_total.load(Ordering::Relaxed)
    }

    /// CMS leads read so far (404s included).
    pub fn leads_done(&self) -> u64 {
        self.counters.leads_done.load(Ordering::Relaxed)
    }

    /// Zoho thresholds to read.
    pub fn thresholds_total(&self) -> u64 {
        self.counters.thresholds_total.load(Ordering::Relaxed)
    }

    /// Zoho thresholds read so far (all pages).
    pub fn thresholds_done(&self) -> u64 {
        self.counters.thresholds_done.load(Ordering::Relaxed)
    }

    /// Whether the Webex user list has been read.
    pub fn webex_done(&self) -> bool {
        self.counters.webex_done.load(Ordering::Relaxed) > 0
    }

    fn start(&self, leads: usize, thresholds: usize) {
        let c = &self.counters;
        c.leads_total.store(leads as u64, Ordering::Relaxed);
        c.thresholds_total
            .store(thresholds as u64, Ordering::Relaxed);
        c.leads_done.store(0, Ordering::Relaxed);
        c.thresholds_done.store(0, Ordering::Relaxed);
        c.webex_done.store(0, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub campaigns: Vec<CampaignSpec>,
    pub threshold_ids: Vec<String>,
    /// Most CMS lead reads in flight at once (at least 1).
    pub concurrency: usize,
    /// A 404 on any configured lead fails the fetch.
    pub strict: bool,
    pub identity: IdentityMap,
    /// Written into the snapshot as is (must hold no secrets).
    pub source: SnapshotSource,
    /// The whole fetch must finish within this (the binary's
    /// `fetch.deadline_secs`, default [`DEFAULT_DEADLINE`]).
    pub deadline: Duration,
    /// Smallest share (0..=1) of the CMS agents Webex must know, else the
    /// fetch fails (`fetch.min_webex_coverage`, default
    /// [`DEFAULT_MIN_WEBEX_COVERAGE`]); 0 turns the guard off.
    pub min_webex_coverage: f64,
    /// Updated as the fetch goes; pass a clone and poll it.
    pub progress: FetchProgress,
}

/// What the fetch cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// HTTP requests sent, every attempt counted.
    pub requests: u64,
    pub retries: u64,
    /// Of `retries`, those of a read whose 2xx body was malformed or
    /// truncated (a proxy's HTML page, cut-off JSON): retried within
    /// `http.max_retries` like a 5xx.
    pub malformed_retried: u64,
    pub elapsed: Duration,
    pub leads_read: usize,
    pub leads_missing: usize,
    /// CMS GET requests sent (every attempt, retries included): one per lead
    /// whose users fit a page with `cms.short_page_ends`, one more per lead
    /// without it.
    pub cms_gets: u64,
}

impl FetchReport {
    /// CMS GETs per lead asked for (read or 404); `None` when no lead was.
    pub fn cms_gets_per_lead(&self) -> Option<f64> {
        let leads = self.leads_read + self.leads_missing;
        (leads > 0).then(|| self.cms_gets as f64 / leads as f64)
    }
}

/// Read everything and build the snapshot, within `opts.deadline`.
pub async fn fetch(
    clients: &Clients,
    opts: &FetchOptions,
) -> Result<(Snapshot, FetchReport), FetchError> {
    match tokio::time::timeout(opts.deadline, fetch_unbounded(clients, opts)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Deadline {
            limit: opts.deadline,
        }),
    }
}

async fn fetch_unbounded(
    clients: &Clients,
    opts: &FetchOptions,
) -> Result<(Snapshot, FetchReport), FetchError> {
    let started = Instant::now();
    let requests_before = clients.stats.requests();
    let retries_before = clients.stats.retries();
    let malformed_before = clients.stats.malformed_retries();
    let cms_gets_before = clients.stats.gets(Api::Cms);

    let (leads, webex, zoho) = futures::try_join!(
        read_leads(clients, opts),
        read_webex(clients, opts),
        read_thresholds(clients, opts)
    )?;
    let read = lead_mappings(leads, opts)?;
    let (campaigns, agents, join_problems) = join(JoinInput {
        leads: read.mappings,
        webex: &webex,
        zoho,
        identity: &opts.identity,
    });
    let mut problems = read.problems;
    problems.extend(join_problems);
    check_webex_coverage(&agents, opts.min_webex_coverage)?;
    let mut snapshot = Snapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        fetched_at: now_rfc3339(),
        source: opts.source.clone(),
        campaigns,
        agents,
        problems,
    };
    snapshot.normalize();
    let report = FetchReport {
        requests: clients.stats.requests() - requests_before,
        retries: clients.stats.retries() - retries_before,
        malformed_retried: clients.stats.malformed_retries() - malformed_before,
        elapsed: started.elapsed(),
        leads_read: read.leads_read,
        leads_missing: read.leads_missing,
        cms_gets: clients.stats.gets(Api::Cms) - cms_gets_before,
    };
    tracing::info!(
        leads = report.leads_read,
        users_known = snapshot.agents.len(),
        problems = snapshot.problems.len(),
        requests = report.requests,
        cms_gets = report.cms_gets,
        retries = report.retries,
        malformed_retried = report.malformed_retried,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "fetch finished"
    );
    Ok((snapshot, report))
}

/// One configured lead as read: its users, or `None` for a tolerated 404.
type LeadRead = (u64, u64, u64, Option<LeadUsers>);

/// Every configured lead's mapping, at most `concurrency` in flight. A 404
/// is `None` unless `strict`; any other failure ends the fetch.
async fn read_leads(clients: &Clients, opts: &FetchOptions) -> Result<Vec<LeadRead>, FetchError> {
    let progress = &opts.progress;
    let jobs: Vec<(u64, u64, u64)> = opts
        .campaigns
        .iter()
        .flat_map(|c| {
            c.lead_ids
                .iter()
                .map(move |&l| (c.process_id, c.campaign_id, l))
        })
        .collect();
    progress.start(jobs.len(), opts.threshold_ids.len());
    stream::iter(jobs)
        .map(|(process_id, campaign_id, lead_id)| async move {
            let read = clients
                .cms
                .lead_users(process_id, campaign_id, lead_id)
                .await;
            progress.counters.leads_done.fetch_add(1, Ordering::Relaxed);
            match read {
                Ok(u) => Ok((process_id, campaign_id, lead_id, Some(u))),
                Err(e) if e.is_not_found() && !opts.strict => {
                    tracing::warn!(
                        campaign_id,
                        lead_id,
                        "lead not found in the CMS (404); left out of the snapshot"
                    );
                    Ok((process_id, campaign_id, lead_id, None))
                }
                Err(e) if e.is_not_found() => Err(FetchError::LeadNotFoundStrict {
                    campaign_id,
                    lead_id,
                }),
                Err(source) => Err(FetchError::Lead {
                    process_id,
                    campaign_id,
                    lead_id,
                    source,
                }),
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .try_collect()
        .await
}

/// The Webex tenant's users.
async fn read_webex(clients: &Clients, opts: &FetchOptions) -> Result<Vec<WebexUser>, FetchError> {
    let users = clients.webex.users().await.map_err(FetchError::Webex);
    opts.progress
        .counters
        .webex_done
        .store(1, Ordering::Relaxed);
    users
}

/// Every configured threshold's users, all at once.
async fn read_thresholds(
    clients: &Clients,
    opts: &FetchOptions,
) -> Result<BTreeMap<String, Vec<ThresholdUser>>, FetchError> {
    let progress = &opts.progress;
    stream::iter(opts.threshold_ids.iter().cloned())
        .map(|threshold_id| async move {
            let read = clients.zoho.threshold_users(&threshold_id).await;
            progress
                .counters
                .thresholds_done
                .fetch_add(1, Ordering::Relaxed);
            match read {
                Ok(rows) => Ok((threshold_id, rows)),
                Err(source) => Err(FetchError::Zoho {
                    threshold_id,
                    source,
                }),
            }
        })
        .buffer_unordered(opts.threshold_ids.len().max(1))
        .try_collect()
        .await
}

/// The leads read, as join input, with a problem per tolerated 404.
struct LeadsRead {
    mappings: Vec<LeadMapping>,
    problems: Vec<Problem>,
    leads_read: usize,
    leads_missing: usize,
}

/// Turns the reads into mappings and 404 problems; a campaign whose every
/// lead answered 404 is misconfigured and fails the fetch.
fn lead_mappings(leads: Vec<LeadRead>, opts: &FetchOptions) -> Result<LeadsRead, FetchError> {
    let mut problems = Vec::new();
    let mut mappings = Vec::with_capacity(leads.len());
    let mut missing_per_campaign: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    for (process_id, campaign_id, lead_id, users) in leads {
        match users {
            Some(u) => mappings.push(LeadMapping {
                process_id,
                campaign_id,
                lead_id,
                campaign_lead_id: u.campaign_lead_id,
                assigned: u.assigned_user_ids,
                unassigned: u.unassigned_user_ids,
            }),
            None => {
                *missing_per_campaign
                    .entry((process_id, campaign_id))
                    .or_default() += 1;
                problems.push(Problem {
                    kind: ProblemKind::LeadNotFound,
                    subject: format!("{campaign_id}/{lead_id}"),
                    detail: format!("the CMS answered 404 CONF-1001 for lead {lead_id} of campaign {campaign_id}; left out of this snapshot"),
                });
            }
        }
    }
    for c in &opts.campaigns {
        let missing = missing_per_campaign
            .get(&(c.process_id, c.campaign_id))
            .copied()
            .unwrap_or(0);
        if missing > 0 && missing == c.lead_ids.len() {
            return Err(FetchError::UnknownCampaign {
                process_id: c.process_id,
                campaign_id: c.campaign_id,
                leads: missing,
            });
        }
    }
    Ok(LeadsRead {
        leads_read: mappings.len(),
        leads_missing: missing_per_campaign.values().sum(),
        mappings,
        problems,
    })
}

/// Fails when Webex knows fewer than `min_share` of the CMS agents.
fn check_webex_coverage(agents: &[Agent], min_share: f64) -> Result<(), FetchError> {
    let cms_agents = agents.iter().filter(|a| a.in_cms).count();
    let known = agents
        .iter()
        .filter(|a| a.in_cms && a.webex.is_some())
        .count();
    if cms_agents > 0 && (known as f64) < min_share * cms_agents as f64 {
        return Err(FetchError::WebexCoverage {
            known,
            cms_agents,
            min_share,
        });
    }
    Ok(())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_spec_deserialises_strictly() {
        let spec: CampaignSpec =
            serde_json::from_str(r#"{"process_id":1,"campaign_id":2,"lead_ids":[3,4]}"#).unwrap();
        assert_eq!(
            spec,
            CampaignSpec {
                process_id: 1,
                campaign_id: 2,
                lead_ids: vec![3, 4]
            }
        );
        let err = serde_json::from_str::<CampaignSpec>(
            r#"{"process_id":1,"campaign_id":2,"lead_ids":[],"leads":[1]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `leads`"), "{err}");
    }
}
