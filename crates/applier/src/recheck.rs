//! Apply-time re-checks of the agents a run is about to assign: still
//! active in Webex Campaign (by the plan's `agents[].webex_username`; an
//! agent Webex does not know is inactive) and still under every Zoho
//! allowance (`threshold_users` of each configured threshold, rows of the
//! agent's `zoho_user_id`: `min(backlog_allow − backlog, record_allow −
//! record_assigned)` must be above 0). An agent the plan joined to no Zoho
//! user, or whom no threshold lists, has no allowance to re-check.
//!
//! Reads are cached for at most `apply.recheck_secs` and shared by the
//! leads in flight; a failed read is not cached. A read that fails for any
//! reason but credentials makes the affected assigns skipped (we cannot
//! show that they are safe); refused credentials are fatal to the run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rebalancer_model::Plan;
use rebalancer_upstream::{ErrorClass, UpstreamError, WebexClient, ZohoClient};
use tokio::sync::Mutex;

/// Whether an agent may be assigned now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Eligible,
    /// Why not, for the report.
    Ineligible(String),
}

/// Cached Webex and Zoho reads for one run.
pub struct Rechecker {
    webex: WebexClient,
    zoho: ZohoClient,
    threshold_ids: Vec<String>,
    ttl: Duration,
    /// Agent id → (Webex username, Zoho user id), from the plan.
    agents: HashMap<String, (Option<String>, Option<String>)>,
    /// Lower-case Webex username → active.
    webex_cache: Mutex<Option<(Instant, HashMap<String, bool>)>>,
    /// Zoho user id → least headroom over its threshold rows.
    zoho_cache: Mutex<Option<(Instant, HashMap<String, i64>)>>,
}

impl Rechecker {
    pub fn new(
        webex: WebexClient,
        zoho: ZohoClient,
        threshold_ids: Vec<String>,
        ttl: Duration,
        plan: &Plan,
    ) -> Self {
        let agents = plan
            .agents
            .iter()
            .map(|a| {
                (
                    a.agent.0.to_string(),
                    (a.webex_username.clone(), a.zoho_user_id.clone()),
                )
            })
            .collect();
        Rechecker {
            webex,
            zoho,
            threshold_ids,
            ttl,
            agents,
            webex_cache: Mutex::new(None),
            zoho_cache: Mutex::new(None),
        }
    }

    /// A checker that knows no agent (every assign is refused).
    #[cfg(test)]
    pub fn empty(webex: WebexClient, zoho: ZohoClient, ttl: Duration) -> Self {
        Rechecker {
            webex,
            zoho,
            threshold_ids: Vec::new(),
            ttl,
            agents: HashMap::new(),
            webex_cache: Mutex::new(None),
            zoho_cache: Mutex::new(None),
        }
    }

    /// Re-checks one agent. `Err` only for refused credentials.
    pub async fn check(&self, agent: &str) -> Result<Verdict, UpstreamError> {
        let Some((webex_name, zoho_id)) = self.agents.get(agent) else {
            return Ok(Verdict::Ineligible(
                "not among the plan's agents (no Webex username to re-check)".into(),
            ));
        };
        let Some(webex_name) = webex_name else {
            return Ok(Verdict::Ineligible("unknown to Webex when planned".into()));
        };
        match self.webex_active(webex_name).await? {
            Err(why) => return Ok(Verdict::Ineligible(why)),
            Ok(false) => {
                return Ok(Verdict::Ineligible(format!(
                    "inactive in Webex now ({webex_name})"
                )))
            }
            Ok(true) => {}
        }
        let Some(zoho_id) = zoho_id else {
            return Ok(Verdict::Eligible);
        };
        match self.zoho_headroom(zoho_id).await? {
            Err(why) => Ok(Verdict::Ineligible(why)),
            Ok(Some(h)) if h <= 0 => Ok(Verdict::Ineligible(format!(
                "at its Zoho allowance now (headroom {h}, Zoho user {zoho_id})"
            ))),
            Ok(_) => Ok(Verdict::Eligible),
        }
    }

    /// `Ok(Err(why))`: the read failed (not for credentials).
    async fn webex_active(&self, username: &str) -> Result<Result<bool, String>, UpstreamError> {
        let mut cache = self.webex_cache.lock().await;
        let fresh = cache
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < self.ttl);
        if !fresh {
            match self.webex.users().await {
                Ok(users) if users.is_empty() => {
                    return Ok(Err("cannot re-check: Webex Campaign returned no users (an outage, not everyone inactive)".into()))
                }
                Ok(users) => {
                    let map = users
                        .iter()
                        .map(|u| (u.username.to_lowercase(), u.is_active()))
                        .collect();
                    *cache = Some((Instant::now(), map));
                }
                Err(e) if e.class() == ErrorClass::Auth => return Err(e),
                Err(e) => return Ok(Err(format!("cannot re-check Webex: {e}"))),
            }
        }
        let (_, map) = cache.as_ref().expect("filled above");
        Ok(Ok(map
            .get(&username.to_lowercase())
            .copied()
            .unwrap_or(false)))
    }

    /// The least headroom of a Zoho user over the thresholds (`None`: no
    /// threshold lists it).
    async fn zoho_headroom(
        &self,
        zoho_id: &str,
    ) -> Result<Result<Option<i64>, String>, UpstreamError> {
        let mut cache = self.zoho_cache.lock().await;
        let fresh = cache
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < self.ttl);
        if !fresh {
            let mut map: HashMap<String, i64> = HashMap::new();
            for id in &self.threshold_ids {
                match self.zoho.threshold_users(id).await {
                    Ok(users) => {
                        for u in users {
                            let h = (u.backlog_allow_count.saturating_sub(u.backlog_count))
                                .min(u.record_allow_count.saturating_sub(u.record_assigned_count));
                            map.entry(u.user.id.clone())
                                .and_modify(|m| *m = (*m).min(h))
                                .or_insert(h);
                        }
                    }
                    Err(e) if e.class() == ErrorClass::Auth => return Err(e),
                    Err(e) => return Ok(Err(format!("cannot re-check Zoho allowances: {e}"))),
                }
            }
            *cache = Some((Instant::now(), map));
        }
        let (_, map) = cache.as_ref().expect("filled above");
        Ok(Ok(map.get(zoho_id).copied()))
    }
}
