//! Plans for tests of the write side, built from a sandbox's world
//! without the optimizer (the applier does not depend on it): explicit
//! targets ([`plan_from`]) or a rebalance of the live mapping
//! ([`rebalance`]).

use std::collections::{BTreeMap, BTreeSet};

use rebalancer_model::{
    Action, AgentId, AgentPlan, Balance, Change, LeadKey, LeadPlan, Metrics, NewPairs, Objectives,
    Plan, Reason, Summary, TargetSystem, PLAN_SCHEMA_VERSION,
};
use rebalancer_sandbox::Sandbox;

use crate::sandbox::{eligible, leads, pool, state, users};

/// The plans built here were fetched at this time.
pub const FETCHED_AT: &str = "2026-11-30T00:00:00Z";

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
            covered_before: 10.0,
            covered: 10.0,
            shortfall: 0.0,
            target: target.iter().map(|a| AgentId::new(a.clone())).collect(),
            current: cur.iter().map(|a| AgentId::new(a.clone())).collect(),
            frozen: false,
            default_assignee: None,
        });
    }
    changes.sort_by(|a, b| (a.lead, a.action, &a.agent).cmp(&(b.lead, b.action, &b.agent)));
    let agents = agent_plans(&users, &in_pools);
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

/// The plan's agents: every known user in some pool, with its headroom.
fn agent_plans(
    users: &BTreeMap<String, rebalancer_sandbox::UserInfo>,
    in_pools: &BTreeSet<String>,
) -> Vec<AgentPlan> {
    in_pools
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
        .collect()
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
