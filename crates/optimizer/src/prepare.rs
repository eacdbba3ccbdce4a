//! Snapshot + planning config → the integer [`Instance`] the stages solve,
//! plus everything needed to explain the result.
//!
//! Decides each agent's standing (eligible with a capacity, frozen, or
//! ineligible with a reason), each lead's demand, which pairs the solver may
//! use, and checks every name and pin in the config against the snapshot.
//!
//! Rules, in precedence order, for an agent:
//! 1. listed in `frozen_agents` → frozen: current assignments stay exactly
//!    as they are; it may carry flow on them (up to its headroom, if active)
//!    but gets nothing new (an explicit freeze wins even over inactivity,
//!    with a note in the plan);
//! 2. in `exclude_agents` → ineligible (excluded);
//! 3. inactive in Webex, or unknown to Webex → ineligible (inactive):
//!    a deactivated user is unassigned whatever else is known of it;
//! 4. no Zoho threshold (unjoined) → `unjoined_policy`: `freeze` as in 1
//!    with no capacity, or `unlimited` with `unjoined_headroom`;
//! 5. zero headroom (after `set_allowance`) → ineligible (at allowance);
//! 6. otherwise eligible, capacity = headroom.
//!
//! Frozen leads keep their mapping; their current pairs still carry flow.

use crate::config::{PlanConfig, UnjoinedPolicy};
use crate::stages::{Instance, Pair};
use crate::OptimizerError;
use rebalancer_model::{Agent, AgentId, LeadKey, Reason, Snapshot};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How the plan treats one agent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Standing {
    Eligible,
    Frozen,
    Ineligible(Reason),
}

#[derive(Debug, Clone)]
pub(crate) struct AgentInfo {
    pub id: AgentId,
    pub standing: Standing,
    /// Headroom the solver may use (0 unless eligible or frozen and active).
    pub capacity: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct LeadInfo {
    pub key: LeadKey,
    pub process_id: u64,
    pub frozen: bool,
    pub demand: i64,
    /// Agent indices, sorted.
    pub current: Vec<usize>,
    pub pool: Vec<usize>,
}

pub(crate) struct Prepared {
    pub agents: Vec<AgentInfo>,
    pub leads: Vec<LeadInfo>,
    /// Pairs the solver may use; `current` is true for pairs in the current
    /// mapping and for pins (keeping them is free).
    pub inst: Instance,
    pub excluded_pairs: BTreeSet<(usize, usize)>,
    pub pins: BTreeSet<(usize, usize)>,
    /// Zoho's default assignee, if any agent is one.
    pub default_assignee: Option<AgentId>,
    pub notes: Vec<String>,
    lead_by_key: BTreeMap<LeadKey, usize>,
}

impl Prepared {
    pub fn agent_index(&self, id: &AgentId) -> Option<usize> {
        self.agents.binary_search_by(|a| a.id.cmp(id)).ok()
    }

    /// Index of the lead named `key`.
    pub fn lead_index(&self, key: LeadKey) -> Option<usize> {
        self.lead_by_key.get(&key).copied()
    }
}

fn parse_pair<'t>(key: &'static str, text: &'t str) -> Result<(AgentId, &'t str), OptimizerError> {
    let (agent, lead) = text
        .rsplit_once('@')
        .ok_or_else(|| OptimizerError::BadName {
            key,
            detail: format!("`{text}` is not AGENT@CAMPAIGN/LEAD (e.g. anav_agent@501/1003)"),
        })?;
    Ok((AgentId::new(agent), lead))
}

/// Headroom of an agent after the `set_allowance` what-if.
fn headroom(agent: &Agent, allowance: Option<i64>) -> Option<u64> {
    match allowance {
        None => agent.headroom,
        Some(allow) => {
            let mut rows = agent.thresholds.clone();
            for r in &mut rows {
                r.backlog_allow_count = allow;
            }
            rows.iter().map(|r| r.headroom()).min()
        }
    }
}

/// Why an agent has no headroom, for the reason text.
fn allowance_reason(agent: &Agent, allowance: Option<i64>) -> Reason {
    let tightest = agent
        .thresholds
        .iter()
        .map(|t| {
            let mut t = t.clone();
            if let Some(a) = allowance {
                t.backlog_allow_count = a;
            }
            t
        })
        .min_by_key(|t| t.headroom());
    match tightest {
        Some(t)
            if t.at_backlog_allowance() || t.record_allow_count - t.record_assigned_count > 0 =>
        {
            Reason::AtAllowance {
                used: t.backlog_count,
                allowance: t.backlog_allow_count,
                counter: "backlog".into(),
            }
        }
        Some(t) => Reason::AtAllowance {
            used: t.record_assigned_count,
            allowance: t.record_allow_count,
            counter: "record count".into(),
        },
        None => Reason::AtAllowance {
            used: 0,
            allowance: 0,
            counter: "backlog".into(),
        },
    }
}

pub(crate) fn prepare(snap: &Snapshot, cfg: &PlanConfig) -> Result<Prepared, OptimizerError> {
    if !(cfg.demand_share.is_finite() && cfg.demand_share >= 0.0) {
        return Err(OptimizerError::BadValue {
            key: "plan.demand_share",
            detail: format!("{} must be a non-negative number", cfg.demand_share),
        });
    }
    if !(cfg.min_flow.is_finite() && cfg.min_flow > 0.0) {
        return Err(OptimizerError::BadValue {
            key: "plan.min_flow",
            detail: format!("{} must be a positive number", cfg.min_flow),
        });
    }
    let known_agent = |key: &'static str, id: &str| -> Result<AgentId, OptimizerError> {
        let id = AgentId::new(id);
        match snap.agent(&id) {
            Some(_) => Ok(id),
            None => Err(OptimizerError::UnknownAgent { key, agent: id.0 }),
        }
    };
    let lead_index: BTreeMap<LeadKey, usize> =
        snap.leads().enumerate().map(|(i, (k, _))| (k, i)).collect();
    // ASSUMPTION: a lead may be named `CAMPAIGN/LEAD`, or just `LEAD` when
    // that lead id occurs in one campaign only (the issue's `--set-demand
    // LEAD=N` form); an ambiguous bare id is refused with the choices.
    let known_lead = |key: &'static str, text: &str| -> Result<usize, OptimizerError> {
        let text = text.trim();
        let unknown = || OptimizerError::UnknownLead {
            key,
            lead: text.to_owned(),
        };
        if text.contains('/') {
            let lead = text
                .parse::<LeadKey>()
                .map_err(|detail| OptimizerError::BadName { key, detail })?;
            return lead_index.get(&lead).copied().ok_or_else(unknown);
        }
        let id: u64 = text.parse().map_err(|_| OptimizerError::BadName {
            key,
            detail: format!("`{text}` is not CAMPAIGN/LEAD or a lead id (e.g. 501/1003)"),
        })?;
        let matches: Vec<(&LeadKey, &usize)> =
            lead_index.iter().filter(|(k, _)| k.lead_id == id).collect();
        match matches.as_slice() {
            [] => Err(unknown()),
            [(_, &j)] => Ok(j),
            many => Err(OptimizerError::BadName {
                key,
                detail: format!(
                    "lead {id} is in several campaigns ({}); name it CAMPAIGN/LEAD",
                    many.iter()
                        .map(|(k, _)| k.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    };

    let frozen_agents: BTreeSet<AgentId> = cfg
        .frozen_agents
        .iter()
        .map(|a| known_agent("plan.frozen_agents (--freeze-agent)", a))
        .collect::<Result<_, _>>()?;
    let excluded_agents: BTreeSet<AgentId> = cfg
        .exclude_agents
        .iter()
        .map(|a| known_agent("plan.exclude_agents (--exclude-agent)", a))
        .collect::<Result<_, _>>()?;
    let mut allowance: BTreeMap<AgentId, i64> = BTreeMap::new();
    for text in &cfg.set_allowance {
        let bad = || OptimizerError::BadName {
            key: "plan.set_allowance (--set-allowance)",
            detail: format!(
                "`{text}` is not AGENT=N with N a whole number ≥ 0 (e.g. anav_agent=20)"
            ),
        };
        let (a, n) = text.rsplit_once('=').ok_or_else(bad)?;
        let n: i64 = n.trim().parse().ok().filter(|n| *n >= 0).ok_or_else(bad)?;
        allowance.insert(
            known_agent("plan.set_allowance (--set-allowance)", a.trim())?,
            n,
        );
    }
    let frozen_leads: BTreeSet<usize> = cfg
        .frozen_leads
        .iter()
        .map(|l| known_lead("plan.frozen_leads (--freeze-lead)", l))
        .collect::<Result<_, _>>()?;

    // --- Agents.
    let mut notes = Vec::new();
    let agents: Vec<AgentInfo> = snap
        .agents
        .iter()
        .map(|a| {
            let allow = allowance.get(&a.id).copied();
            let room = headroom(a, allow);
            let active = a.is_active();
            let inactive_detail = || match &a.webex {
                None => "not in Webex Campaign".to_string(),
                Some(w) => format!(
                    "user_status={}, role_status={}",
                    w.user_status.as_deref().unwrap_or("missing"),
                    w.role_status.as_deref().unwrap_or("missing")
                ),
            };
            let (standing, capacity) = if frozen_agents.contains(&a.id) {
                if !active {
                    notes.push(format!(
                        "agent {} is frozen by config although inactive in Webex ({}); its assignments stay",
                        a.id,
                        inactive_detail()
                    ));
                }
                (Standing::Frozen, if active { room.unwrap_or(0) as i64 } else { 0 })
            } else if excluded_agents.contains(&a.id) {
                (Standing::Ineligible(Reason::Excluded), 0)
            } else if !active {
                (
                    Standing::Ineligible(Reason::Inactive {
                        detail: inactive_detail(),
                    }),
                    0,
                )
            } else {
                match room {
                    None if cfg.unjoined_policy == UnjoinedPolicy::Freeze => (Standing::Frozen, 0),
                    None => (Standing::Eligible, cfg.unjoined_headroom as i64),
                    Some(0) => (Standing::Ineligible(allowance_reason(a, allow)), 0),
                    Some(h) => (Standing::Eligible, h as i64),
                }
            };
            AgentInfo {
                id: a.id.clone(),
                standing,
                capacity,
            }
        })
        .collect();
    // Hashing beats binary search on strings here: every pair looks up an id.
    let by_id: HashMap<&str, usize> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.as_str(), i))
        .collect();
    let index_of = |id: &AgentId| -> usize {
        *by_id
            .get(id.as_str())
            .expect("snapshot leads only name known agents")
    };

    // --- Leads and demand.
    let total_capacity: i64 = agents.iter().map(|a| a.capacity).sum();
    let mut explicit: BTreeMap<usize, i64> = BTreeMap::new();
    for (l, &d) in &cfg.demand {
        let j = known_lead("plan.demand (--set-demand)", l)?;
        explicit.insert(j, d as i64);
    }
    let mut lead_weight: BTreeMap<usize, f64> = BTreeMap::new();
    for (l, &w) in &cfg.lead_weights {
        if !(w.is_finite() && w >= 0.0) {
            return Err(OptimizerError::BadValue {
                key: "plan.lead_weights",
                detail: format!("weight {w} for {l} must be a non-negative number"),
            });
        }
        lead_weight.insert(known_lead("plan.lead_weights", l)?, w);
    }
    let mut campaign_weight: BTreeMap<u64, f64> = BTreeMap::new();
    for (c, &w) in &cfg.campaign_weights {
        let id: u64 = c.trim().parse().map_err(|_| OptimizerError::BadName {
            key: "plan.campaign_weights",
            detail: format!("`{c}` is not a campaign id"),
        })?;
        if !snap.campaigns.iter().any(|x| x.campaign_id == id) {
            return Err(OptimizerError::UnknownLead {
                key: "plan.campaign_weights",
                lead: format!("campaign {id}"),
            });
        }
        if !(w.is_finite() && w >= 0.0) {
            return Err(OptimizerError::BadValue {
                key: "plan.campaign_weights",
                detail: format!("weight {w} for campaign {c} must be a non-negative number"),
            });
        }
        campaign_weight.insert(id, w);
    }
    let mut leads: Vec<LeadInfo> = Vec::new();
    for c in &snap.campaigns {
        for l in &c.leads {
            let j = leads.len();
            let mut current: Vec<usize> = l.assigned.iter().map(index_of).collect();
            current.sort_unstable();
            // `assigned` and `unassigned` are disjoint (Snapshot::normalize).
            let mut pool: Vec<usize> = current
                .iter()
                .copied()
                .chain(l.unassigned.iter().map(index_of))
                .collect();
            pool.sort_unstable();
            pool.dedup();
            leads.push(LeadInfo {
                key: LeadKey {
                    campaign_id: c.campaign_id,
                    lead_id: l.lead_id,
                },
                process_id: c.process_id,
                frozen: frozen_leads.contains(&j),
                demand: 0,
                current,
                pool,
            });
        }
    }
    let weights: Vec<f64> = leads
        .iter()
        .enumerate()
        .map(|(j, l)| {
            lead_weight.get(&j).copied().unwrap_or(1.0)
                * campaign_weight
                    .get(&l.key.campaign_id)
                    .copied()
                    .unwrap_or(1.0)
        })
        .collect();
    let weight_sum: f64 = (0..leads.len())
        .filter(|j| !explicit.contains_key(j))
        .map(|j| weights[j])
        .sum();
    for (j, lead) in leads.iter_mut().enumerate() {
        lead.demand = match explicit.get(&j) {
            Some(&d) => d,
            None if weight_sum > 0.0 => {
                (cfg.demand_share * total_capacity as f64 * weights[j] / weight_sum).round() as i64
            }
            None => 0,
        };
    }

    // --- Exclusions and pins.
    let mut excluded_pairs = BTreeSet::new();
    for text in &cfg.exclude_pairs {
        let (a, l) = parse_pair("plan.exclude_pairs", text)?;
        let i = index_of(&known_agent("plan.exclude_pairs", a.as_str())?);
        excluded_pairs.insert((i, known_lead("plan.exclude_pairs", l)?));
    }
    let mut pins = BTreeSet::new();
    for text in &cfg.pins {
        let (a, l) = parse_pair("plan.pins (--pin)", text)?;
        let i = index_of(&known_agent("plan.pins (--pin)", a.as_str())?);
        let j = known_lead("plan.pins (--pin)", l)?;
        let lead = &leads[j];
        let fail = |why: String| OptimizerError::InfeasiblePin {
            agent: a.0.clone(),
            lead: lead.key.to_string(),
            why,
        };
        if lead.pool.binary_search(&i).is_err() {
            return Err(fail(
                "the agent is not in the lead's pool in the CMS".into(),
            ));
        }
        if excluded_pairs.contains(&(i, j)) {
            return Err(fail("the same pair is in plan.exclude_pairs".into()));
        }
        let is_current = lead.current.binary_search(&i).is_ok();
        if lead.frozen && !is_current {
            return Err(fail("the lead is frozen (plan.frozen_leads)".into()));
        }
        match &agents[i].standing {
            Standing::Eligible => {}
            Standing::Frozen if is_current => {}
            Standing::Frozen => {
                return Err(fail(
                    "the agent is frozen (frozen_agents or unjoined with unjoined_policy = freeze)"
                        .into(),
                ))
            }
            Standing::Ineligible(reason) => return Err(fail(format!("the agent is {reason}"))),
        }
        pins.insert((i, j));
    }

    // --- Pairs the solver may use.
    let mut pairs = Vec::new();
    for (j, lead) in leads.iter().enumerate() {
        let candidates: &[usize] = if lead.frozen {
            &lead.current
        } else {
            &lead.pool
        };
        for &i in candidates {
            let agent = &agents[i];
            let is_current = lead.current.binary_search(&i).is_ok();
            let usable = match agent.standing {
                Standing::Eligible => true,
                Standing::Frozen => is_current,
                Standing::Ineligible(_) => false,
            };
            if !usable
                || agent.capacity == 0
                || (excluded_pairs.contains(&(i, j))
                    && !lead.frozen
                    && agent.standing == Standing::Eligible)
            {
                continue;
            }
            pairs.push(Pair {
                agent: i as u32,
                lead: j as u32,
                current: is_current || pins.contains(&(i, j)),
            });
        }
        if lead.frozen {
            for &i in &lead.current {
                if let Standing::Ineligible(reason) = &agents[i].standing {
                    notes.push(format!(
                        "lead {} is frozen: keeps {} although {reason}",
                        lead.key, agents[i].id
                    ));
                }
            }
        }
    }
    let default_assignee = snap
        .agents
        .iter()
        .find(|a| a.default_assignee)
        .map(|a| a.id.clone());
    let inst = Instance {
        capacity: agents.iter().map(|a| a.capacity).collect(),
        demand: leads.iter().map(|l| l.demand).collect(),
        pairs,
    };
    let lead_by_key = leads.iter().enumerate().map(|(j, l)| (l.key, j)).collect();
    Ok(Prepared {
        lead_by_key,
        agents,
        leads,
        inst,
        excluded_pairs,
        pins,
        default_assignee,
        notes,
    })
}
