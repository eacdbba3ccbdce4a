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
use crate::limits::{MAX_RECORDS, MAX_TOTAL_RECORDS};
use crate::stages::{Instance, Pair};
use crate::whatif::{LeadRef, PairRef, WhatIfs};
use crate::OptimizerError;
use rebalancer_model::{Agent, AgentId, LeadKey, Reason, Snapshot};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};

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
    /// The what-ifs applied (config `set_allowance` and the caller's),
    /// canonical (`plan.<key>: value`, leads as CAMPAIGN/LEAD), sorted.
    pub what_ifs: Vec<String>,
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

/// Headroom of an agent after the `set_allowance` what-if.
fn headroom(agent: &Agent, allowance: Option<u64>) -> Option<u64> {
    match allowance {
        None => agent.headroom,
        Some(allow) => {
            let mut rows = agent.thresholds.clone();
            for r in &mut rows {
                // At most MAX_RECORDS (parse_allowance): fits i64.
                r.backlog_allow_count = allow as i64;
            }
            rows.iter().map(|r| r.headroom()).min()
        }
    }
}

/// Why an agent has no headroom, for the reason text.
fn allowance_reason(agent: &Agent, allowance: Option<u64>) -> Reason {
    let tightest = agent
        .thresholds
        .iter()
        .map(|t| {
            let mut t = t.clone();
            if let Some(a) = allowance {
                t.backlog_allow_count = a as i64;
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

/// Snapshot + config (+ what-ifs) → the prepared instance, in phases:
/// check the config's numbers, resolve every name to an index ([`Rules`]),
/// decide each agent's standing, lay out the leads, compute demand, check
/// pins, and list the pairs the solver may use.
pub(crate) fn prepare(
    snap: &Snapshot,
    cfg: &PlanConfig,
    what_ifs: &WhatIfs,
) -> Result<Prepared, OptimizerError> {
    check_numbers(cfg)?;
    let names = Names::new(snap);
    let effective = WhatIfs::from_config(cfg)?.merged(what_ifs);
    let rules = Rules::resolve(&names, cfg, &effective)?;
    let (agents, mut notes) = standings(snap, cfg, &rules)?;
    let mut leads = lay_out_leads(snap, &rules, &names);
    let demands = demand(cfg, &rules, &agents, &leads)?;
    if !effective.is_empty() {
        // What would demand be without the what-ifs? Default demand is a
        // share of all headroom: one what-if can move every lead's share.
        let base = Rules::resolve(&names, cfg, &WhatIfs::default())?;
        let (base_agents, _) = standings(snap, cfg, &base)?;
        let base_demand = demand(cfg, &base, &base_agents, &leads)?;
        notes.extend(demand_moved_note(
            &rules,
            &base,
            &base_demand,
            &demands,
            &effective,
        ));
    }
    for (lead, d) in leads.iter_mut().zip(&demands) {
        lead.demand = *d;
    }
    let pins = check_pins(&rules, &agents, &leads)?;
    let pairs = usable_pairs(&agents, &leads, &rules.excluded_pairs, &pins, &mut notes);
    let default_assignee = snap
        .agents
        .iter()
        .find(|a| a.default_assignee)
        .map(|a| a.id.clone());
    let inst = Instance {
        capacity: agents.iter().map(|a| a.capacity).collect(),
        demand: demands,
        pairs,
    };
    let lead_by_key = leads.iter().enumerate().map(|(j, l)| (l.key, j)).collect();
    Ok(Prepared {
        lead_by_key,
        agents,
        leads,
        inst,
        excluded_pairs: rules.excluded_pairs,
        pins,
        default_assignee,
        notes,
        what_ifs: rules.what_ifs,
    })
}

/// The config's plain numbers are in range.
fn check_numbers(cfg: &PlanConfig) -> Result<(), OptimizerError> {
    cfg.validate().map_err(|e| OptimizerError::OutOfRange {
        key: e.key,
        problem: e.problem,
    })
}

/// Name lookups against the snapshot.
struct Names<'s> {
    snap: &'s Snapshot,
    lead_index: BTreeMap<LeadKey, usize>,
}

impl<'s> Names<'s> {
    fn new(snap: &'s Snapshot) -> Self {
        Names {
            snap,
            lead_index: snap.leads().enumerate().map(|(j, (k, _))| (k, j)).collect(),
        }
    }

    /// Index of an agent (in `snap.agents` order) named under `key`.
    fn agent(&self, key: &'static str, id: &AgentId) -> Result<usize, OptimizerError> {
        self.snap
            .agents
            .binary_search_by(|a| a.id.cmp(id))
            .map_err(|_| OptimizerError::UnknownAgent {
                key,
                agent: id.0.to_string(),
            })
    }

    // ASSUMPTION: a lead may be named `CAMPAIGN/LEAD`, or just `LEAD` when
    // that lead id occurs in one campaign only (the issue's `--set-demand
    // LEAD=N` form); an ambiguous bare id is refused with the choices.
    fn lead(&self, key: &'static str, lead: LeadRef) -> Result<usize, OptimizerError> {
        let unknown = || OptimizerError::UnknownLead {
            key,
            lead: lead.to_string(),
        };
        let id = match lead {
            LeadRef::Key(k) => return self.lead_index.get(&k).copied().ok_or_else(unknown),
            LeadRef::Bare(id) => id,
        };
        let matches: Vec<(&LeadKey, &usize)> = self
            .lead_index
            .iter()
            .filter(|(k, _)| k.lead_id == id)
            .collect();
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
    }

    fn lead_text(&self, key: &'static str, text: &str) -> Result<usize, OptimizerError> {
        self.lead(key, LeadRef::parse(key, text)?)
    }

    fn key_of(&self, j: usize) -> LeadKey {
        *self
            .lead_index
            .iter()
            .find(|(_, &x)| x == j)
            .map(|(k, _)| k)
            .expect("lead indices come from the index")
    }
}

/// The config's rules and the what-ifs, every name resolved to an index
/// (agents in `snap.agents` order, leads in `Snapshot::leads` order).
struct Rules {
    frozen_agents: BTreeSet<usize>,
    excluded_agents: BTreeSet<usize>,
    allowance: BTreeMap<usize, u64>,
    frozen_leads: BTreeSet<usize>,
    /// Explicit demand per lead (config `demand`, then the what-ifs).
    demand: BTreeMap<usize, i64>,
    lead_weight: BTreeMap<usize, f64>,
    campaign_weight: BTreeMap<u64, f64>,
    excluded_pairs: BTreeSet<(usize, usize)>,
    /// Pins as (agent, lead) indices: config pins, then the what-ifs.
    pins: Vec<(usize, usize)>,
    what_ifs: Vec<String>,
}

impl Rules {
    /// Every rule of `cfg` and the what-ifs `w`, by agent and lead index;
    /// the what-ifs applied are listed, sorted, in `what_ifs`.
    fn resolve(names: &Names, cfg: &PlanConfig, w: &WhatIfs) -> Result<Rules, OptimizerError> {
        let mut what_ifs = Vec::new();
        let frozen_agents = agent_set(
            names,
            "plan.frozen_agents",
            &cfg.frozen_agents,
            &w.freeze_agents,
            &mut what_ifs,
        )?;
        let excluded_agents = agent_set(
            names,
            "plan.exclude_agents",
            &cfg.exclude_agents,
            &w.exclude_agents,
            &mut what_ifs,
        )?;
        let mut allowance = BTreeMap::new();
        for (a, &n) in &w.set_allowance {
            allowance.insert(names.agent("plan.set_allowance", a)?, n);
            what_ifs.push(format!("plan.set_allowance: {a}={n}"));
        }
        let frozen_leads = frozen_leads(names, cfg, w, &mut what_ifs)?;
        let demand = demand_overrides(names, cfg, w, &mut what_ifs)?;
        let lead_weight = lead_weights(names, cfg)?;
        let campaign_weight = campaign_weights(names, cfg)?;
        let (excluded_pairs, pins) = pairs(names, cfg, w, &mut what_ifs)?;
        what_ifs.sort();
        what_ifs.dedup();
        Ok(Rules {
            frozen_agents,
            excluded_agents,
            allowance,
            frozen_leads,
            demand,
            lead_weight,
            campaign_weight,
            excluded_pairs,
            pins,
            what_ifs,
        })
    }
}

/// The agents named by config key `key` (`config`) and by a what-if
/// (`extra`, each listed in `what_ifs`).
fn agent_set(
    names: &Names,
    key: &'static str,
    config: &[String],
    extra: &BTreeSet<AgentId>,
    what_ifs: &mut Vec<String>,
) -> Result<BTreeSet<usize>, OptimizerError> {
    let mut out = BTreeSet::new();
    for a in config {
        out.insert(names.agent(key, &AgentId::new(a.trim()))?);
    }
    for a in extra {
        out.insert(names.agent(key, a)?);
        what_ifs.push(format!("{key}: {a}"));
    }
    Ok(out)
}

/// `plan.frozen_leads` and the freeze what-ifs.
fn frozen_leads(
    names: &Names,
    cfg: &PlanConfig,
    w: &WhatIfs,
    what_ifs: &mut Vec<String>,
) -> Result<BTreeSet<usize>, OptimizerError> {
    let mut frozen = BTreeSet::new();
    for l in &cfg.frozen_leads {
        frozen.insert(names.lead_text("plan.frozen_leads", l)?);
    }
    for &l in &w.freeze_leads {
        let j = names.lead("plan.frozen_leads", l)?;
        frozen.insert(j);
        what_ifs.push(format!("plan.frozen_leads: {}", names.key_of(j)));
    }
    Ok(frozen)
}

/// `plan.demand` and the demand what-ifs, each within [`MAX_RECORDS`].
fn demand_overrides(
    names: &Names,
    cfg: &PlanConfig,
    w: &WhatIfs,
    what_ifs: &mut Vec<String>,
) -> Result<BTreeMap<usize, i64>, OptimizerError> {
    let explicit = |lead: &str, d: u64| -> Result<i64, OptimizerError> {
        if d > MAX_RECORDS as u64 {
            return Err(OptimizerError::BadValue {
                key: "plan.demand",
                detail: format!(
                    "lead {lead}: demand {d} is above the limit of {MAX_RECORDS} records"
                ),
            });
        }
        Ok(d as i64)
    };
    let mut demand = BTreeMap::new();
    for (l, &d) in &cfg.demand {
        let j = names.lead_text("plan.demand", l)?;
        demand.insert(j, explicit(l, d)?);
    }
    for (&l, &d) in &w.set_demand {
        let j = names.lead("plan.demand", l)?;
        let key = names.key_of(j);
        demand.insert(j, explicit(&key.to_string(), d)?);
        what_ifs.push(format!("plan.demand: {key}={d}"));
    }
    Ok(demand)
}

/// `plan.lead_weights`, each a non-negative number.
fn lead_weights(names: &Names, cfg: &PlanConfig) -> Result<BTreeMap<usize, f64>, OptimizerError> {
    let mut lead_weight = BTreeMap::new();
    for (l, &weight) in &cfg.lead_weights {
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(OptimizerError::BadValue {
                key: "plan.lead_weights",
                detail: format!("weight {weight} for {l} must be a non-negative number"),
            });
        }
        lead_weight.insert(names.lead_text("plan.lead_weights", l)?, weight);
    }
    Ok(lead_weight)
}

/// `plan.campaign_weights`: campaigns of the snapshot, each weight a
/// non-negative number.
fn campaign_weights(names: &Names, cfg: &PlanConfig) -> Result<BTreeMap<u64, f64>, OptimizerError> {
    let mut campaign_weight = BTreeMap::new();
    for (c, &weight) in &cfg.campaign_weights {
        let id: u64 = c.trim().parse().map_err(|_| OptimizerError::BadName {
            key: "plan.campaign_weights",
            detail: format!("`{c}` is not a campaign id"),
        })?;
        if !names.snap.campaigns.iter().any(|x| x.campaign_id == id) {
            return Err(OptimizerError::UnknownLead {
                key: "plan.campaign_weights",
                lead: format!("campaign {id}"),
            });
        }
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(OptimizerError::BadValue {
                key: "plan.campaign_weights",
                detail: format!("weight {weight} for campaign {c} must be a non-negative number"),
            });
        }
        campaign_weight.insert(id, weight);
    }
    Ok(campaign_weight)
}

/// `plan.exclude_pairs`, and the pins: `plan.pins`, then the pin what-ifs.
#[allow(clippy::type_complexity)]
fn pairs(
    names: &Names,
    cfg: &PlanConfig,
    w: &WhatIfs,
    what_ifs: &mut Vec<String>,
) -> Result<(BTreeSet<(usize, usize)>, Vec<(usize, usize)>), OptimizerError> {
    let pair = |key: &'static str, p: &PairRef| -> Result<(usize, usize), OptimizerError> {
        Ok((names.agent(key, &p.agent)?, names.lead(key, p.lead)?))
    };
    let mut excluded_pairs = BTreeSet::new();
    for text in &cfg.exclude_pairs {
        let p = PairRef::parse("plan.exclude_pairs", text)?;
        excluded_pairs.insert(pair("plan.exclude_pairs", &p)?);
    }
    let mut pins = Vec::new();
    for text in &cfg.pins {
        pins.push(pair("plan.pins", &PairRef::parse("plan.pins", text)?)?);
    }
    for p in &w.pins {
        let (i, j) = pair("plan.pins", p)?;
        pins.push((i, j));
        what_ifs.push(format!("plan.pins: {}@{}", p.agent, names.key_of(j)));
    }
    Ok((excluded_pairs, pins))
}

/// Each agent's standing and usable capacity (see the module doc for the
/// precedence), with notes on frozen inactive agents. Headroom above
/// [`MAX_RECORDS`] is an error naming the agent: a broken Zoho counter.
fn standings(
    snap: &Snapshot,
    cfg: &PlanConfig,
    rules: &Rules,
) -> Result<(Vec<AgentInfo>, Vec<String>), OptimizerError> {
    let mut notes = Vec::new();
    let mut total: i64 = 0;
    let mut agents = Vec::with_capacity(snap.agents.len());
    for (i, a) in snap.agents.iter().enumerate() {
        let allow = rules.allowance.get(&i).copied();
        let room = match headroom(a, allow) {
            Some(h) if h > MAX_RECORDS as u64 => {
                return Err(OptimizerError::HeadroomOutOfRange {
                    agent: a.id.0.to_string(),
                    headroom: h,
                    limit: MAX_RECORDS,
                })
            }
            room => room.map(|h| h as i64),
        };
        let active = a.is_active();
        let inactive_detail = || match &a.webex {
            None => "not in Webex Campaign".to_string(),
            Some(w) => format!(
                "user_status={}, role_status={}",
                w.user_status.as_deref().unwrap_or("missing"),
                w.role_status.as_deref().unwrap_or("missing")
            ),
        };
        let (standing, capacity) = if rules.frozen_agents.contains(&i) {
            if !active {
                notes.push(format!(
                    "agent {} is frozen by config although inactive in Webex ({}); its assignments stay",
                    a.id,
                    inactive_detail()
                ));
            }
            (Standing::Frozen, if active { room.unwrap_or(0) } else { 0 })
        } else if rules.excluded_agents.contains(&i) {
            (Standing::Ineligible(Reason::Excluded), 0)
        } else if !active {
            let detail = inactive_detail();
            (Standing::Ineligible(Reason::Inactive { detail }), 0)
        } else {
            match room {
                None if cfg.unjoined_policy == UnjoinedPolicy::Freeze => (Standing::Frozen, 0),
                // At most MAX_RECORDS (check_numbers).
                None => (Standing::Eligible, cfg.unjoined_headroom as i64),
                Some(0) => (Standing::Ineligible(allowance_reason(a, allow)), 0),
                Some(h) => (Standing::Eligible, h),
            }
        };
        total = add_to_total(total, capacity, "the agents' headroom")?;
        agents.push(AgentInfo {
            id: a.id.clone(),
            standing,
            capacity,
        });
    }
    Ok((agents, notes))
}

/// Leads in snapshot order with their current agents and pools as agent
/// indices (demand is filled in later).
fn lay_out_leads(snap: &Snapshot, rules: &Rules, names: &Names) -> Vec<LeadInfo> {
    // Every pool entry looks up an id (millions at scale). A lead's entry
    // usually shares its text with the agent's own `AgentId` (the fetcher
    // and the generators intern names), so look the shared pointer up
    // first: no string is hashed or compared; otherwise hash the text.
    let by_ptr: FxHashMap<*const u8, usize> = snap
        .agents
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.as_str().as_ptr(), i))
        .collect();
    let by_id: FxHashMap<&str, usize> = snap
        .agents
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.as_str(), i))
        .collect();
    let index_of = |id: &AgentId| -> usize {
        let text = id.as_str();
        match by_ptr.get(&text.as_ptr()) {
            Some(&i) if snap.agents[i].id.as_str().len() == text.len() => i,
            _ => *by_id
                .get(text)
                .expect("snapshot leads only name known agents (Snapshot::validate)"),
        }
    };
    let mut leads: Vec<LeadInfo> = Vec::with_capacity(names.lead_index.len());
    for c in &names.snap.campaigns {
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
                frozen: rules.frozen_leads.contains(&j),
                demand: 0,
                current,
                pool,
            });
        }
    }
    leads
}

/// Demand per lead: explicit where set, otherwise `demand_share` of all
/// usable headroom split by weight; every figure and the total in range.
fn demand(
    cfg: &PlanConfig,
    rules: &Rules,
    agents: &[AgentInfo],
    leads: &[LeadInfo],
) -> Result<Vec<i64>, OptimizerError> {
    // In range: standings checked the sum.
    let total_capacity: i64 = agents.iter().map(|a| a.capacity).sum();
    let weights: Vec<f64> = leads
        .iter()
        .enumerate()
        .map(|(j, l)| {
            rules.lead_weight.get(&j).copied().unwrap_or(1.0)
                * rules
                    .campaign_weight
                    .get(&l.key.campaign_id)
                    .copied()
                    .unwrap_or(1.0)
        })
        .collect();
    let weight_sum: f64 = (0..leads.len())
        .filter(|j| !rules.demand.contains_key(j))
        .map(|j| weights[j])
        .sum();
    let mut total: i64 = 0;
    let mut out = Vec::with_capacity(leads.len());
    for (j, lead) in leads.iter().enumerate() {
        let d = match rules.demand.get(&j) {
            Some(&d) => d,
            None if weight_sum > 0.0 => {
                let d =
                    (cfg.demand_share * total_capacity as f64 * weights[j] / weight_sum).round();
                if !(d.is_finite() && d <= MAX_RECORDS as f64) {
                    return Err(OptimizerError::BadValue {
                        key: "plan.demand_share",
                        detail: format!(
                            "lead {}: the default demand {d} is above the limit of {MAX_RECORDS} records",
                            lead.key
                        ),
                    });
                }
                d as i64
            }
            None => 0,
        };
        total = add_to_total(total, d, "the leads' demand")?;
        out.push(d);
    }
    Ok(out)
}

/// The note saying how the what-ifs moved the default demand of leads they
/// do not name (compare demand with and without them), if they did.
fn demand_moved_note(
    rules: &Rules,
    base: &Rules,
    before: &[i64],
    after: &[i64],
    w: &WhatIfs,
) -> Option<String> {
    let moved: Vec<(i64, i64)> = (0..after.len())
        .filter(|j| !rules.demand.contains_key(j) && !base.demand.contains_key(j))
        .filter(|&j| before[j] != after[j])
        .map(|j| (before[j], after[j]))
        .collect();
    if moved.is_empty() {
        return None;
    }
    let mut causes = Vec::new();
    for (set, key) in [
        (!w.set_allowance.is_empty(), "set_allowance"),
        (!w.exclude_agents.is_empty(), "exclude_agents"),
        (!w.freeze_agents.is_empty(), "frozen_agents"),
        (!w.set_demand.is_empty(), "demand"),
    ] {
        if set {
            causes.push(key);
        }
    }
    let causes = if causes.is_empty() {
        "the what-ifs".to_string()
    } else {
        causes.join(" and ")
    };
    let first = moved[0];
    let how = if moved.iter().all(|&m| m == first) {
        format!("{} → {} records each", first.0, first.1)
    } else {
        let (b, a) = moved.iter().fold((0i128, 0i128), |(b, a), m| {
            (b + m.0 as i128, a + m.1 as i128)
        });
        format!("{b} → {a} records in all")
    };
    Some(format!(
        "what-if {causes} changed the default demand of {} leads ({how}): default demand is plan.demand_share of all usable headroom",
        moved.len()
    ))
}

/// Every pin is feasible: the agent is in the lead's pool, may take it, and
/// no other rule forbids the pair.
fn check_pins(
    rules: &Rules,
    agents: &[AgentInfo],
    leads: &[LeadInfo],
) -> Result<BTreeSet<(usize, usize)>, OptimizerError> {
    let mut pins = BTreeSet::new();
    for &(i, j) in &rules.pins {
        let lead = &leads[j];
        let fail = |why: String| OptimizerError::InfeasiblePin {
            agent: agents[i].id.0.to_string(),
            lead: lead.key.to_string(),
            why,
        };
        if lead.pool.binary_search(&i).is_err() {
            return Err(fail(
                "the agent is not in the lead's pool in the CMS".into(),
            ));
        }
        if rules.excluded_pairs.contains(&(i, j)) {
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
                    "the agent is frozen (plan.frozen_agents, or unjoined with plan.unjoined_policy = \"freeze\")"
                        .into(),
                ))
            }
            Standing::Ineligible(reason) => return Err(fail(format!("the agent is {reason}"))),
        }
        pins.insert((i, j));
    }
    Ok(pins)
}

/// The pairs the solver may use: a frozen lead only its current pairs, a
/// frozen agent only its current pairs, an eligible agent its pool minus
/// excluded pairs; never an agent without capacity.
fn usable_pairs(
    agents: &[AgentInfo],
    leads: &[LeadInfo],
    excluded_pairs: &BTreeSet<(usize, usize)>,
    pins: &BTreeSet<(usize, usize)>,
    notes: &mut Vec<String>,
) -> Vec<Pair> {
    // At most one pair per pool entry: allocate once (millions at scale).
    let mut pairs = Vec::with_capacity(leads.iter().map(|l| l.pool.len()).sum());
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
    pairs
}

/// `total + x`, refused past [`MAX_TOTAL_RECORDS`] (`what` names the sum).
fn add_to_total(total: i64, x: i64, what: &'static str) -> Result<i64, OptimizerError> {
    total
        .checked_add(x)
        .filter(|&t| t <= MAX_TOTAL_RECORDS)
        .ok_or(OptimizerError::TotalOutOfRange {
            what,
            limit: MAX_TOTAL_RECORDS,
        })
}
