//! Small hand-built worlds for the planner's unit tests: a snapshot of
//! active agents (`a0`, `a1`, …, each with a headroom) and leads of one
//! campaign (`7/0`, `7/1`, …, each with assigned and pool-only agents),
//! prepared under a config with an explicit demand per lead.

use super::basis::{Basis, Evaluation};
use super::decide::Draft;
use crate::config::PlanConfig;
use crate::prepare::{prepare, Prepared};
use crate::WhatIfs;
use rebalancer_model::{
    Action, Agent, AgentId, Campaign, Change, Lead, LeadKey, Reason, Snapshot, SnapshotSource,
    ThresholdEntry, WebexStatus, SNAPSHOT_SCHEMA_VERSION,
};
use std::time::Instant;

/// One lead: the agents assigned and the agents only in its pool.
pub(super) struct L(pub &'static [usize], pub &'static [usize]);

pub(super) fn agent(i: usize) -> AgentId {
    AgentId::new(format!("a{i}"))
}

pub(super) fn lead(j: usize) -> LeadKey {
    LeadKey {
        campaign_id: 7,
        lead_id: j as u64,
    }
}

/// A snapshot with one active agent per headroom and the given leads.
pub(super) fn snapshot(headroom: &[i64], leads: &[L]) -> Snapshot {
    let mut snap = Snapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        fetched_at: "2026-12-01T00:00:00Z".into(),
        source: SnapshotSource {
            description: "unit".into(),
            cms_base_url: "http://cms".into(),
            contact_center_id: Some(1),
            webex_base_url: String::new(),
            zoho_api_domain: String::new(),
            zoho_module: "Leads".into(),
            threshold_ids: vec!["t".into()],
        },
        campaigns: vec![Campaign {
            process_id: 1,
            campaign_id: 7,
            leads: leads
                .iter()
                .enumerate()
                .map(|(j, l)| Lead {
                    lead_id: j as u64,
                    campaign_lead_id: None,
                    assigned: l.0.iter().map(|&i| agent(i)).collect(),
                    unassigned: l.1.iter().map(|&i| agent(i)).collect(),
                })
                .collect(),
        }],
        agents: headroom
            .iter()
            .enumerate()
            .map(|(i, &h)| Agent {
                id: agent(i),
                in_cms: true,
                webex: Some(WebexStatus {
                    username: format!("w{i}"),
                    email: None,
                    display_name: None,
                    role_desc: None,
                    user_status: Some("Active".into()),
                    role_status: None,
                    active: true,
                }),
                zoho: None,
                thresholds: vec![ThresholdEntry {
                    threshold_id: "t".into(),
                    backlog_allow_count: h,
                    backlog_count: 0,
                    record_allow_count: 1000,
                    record_assigned_count: 0,
                    default_assignee: false,
                }],
                headroom: None,
                default_assignee: false,
            })
            .collect(),
        problems: vec![],
    };
    snap.normalize();
    snap
}

/// The default config with an explicit demand per lead (`7/j` = `d`).
pub(super) fn config(demand: &[u64]) -> PlanConfig {
    PlanConfig {
        demand: demand
            .iter()
            .enumerate()
            .map(|(j, &d)| (lead(j).to_string(), d))
            .collect(),
        ..PlanConfig::default()
    }
}

/// `snap` prepared under `cfg`.
pub(super) fn prepared(snap: &Snapshot, cfg: &PlanConfig) -> Prepared {
    prepare(snap, cfg, &WhatIfs::default()).expect("the fixture prepares")
}

/// The basis of `snap` under `cfg`.
pub(super) fn basis(snap: &Snapshot, cfg: &PlanConfig) -> Basis {
    Basis::new(snap, cfg, &WhatIfs::default(), Instant::now()).expect("the fixture solves")
}

/// An evaluation with the given figures.
pub(super) fn evaluation(shortfall: i64, peak: f64, carried: &[f64], load: &[f64]) -> Evaluation {
    Evaluation {
        shortfall,
        peak,
        carried: carried.to_vec(),
        load: load.to_vec(),
    }
}

/// A change of agent `i` on lead `j`.
pub(super) fn change(j: usize, i: usize, action: Action, reason: Reason, flow: f64) -> Change {
    Change {
        lead: lead(j),
        agent: agent(i),
        action,
        reason,
        flow,
    }
}

/// A draft with the current mapping as its target, plus `changes` made
/// (assigns inserted, unassigns removed).
pub(super) fn draft(prep: &Prepared, changes: Vec<Change>) -> Draft {
    let mut draft = Draft::new(prep);
    for c in &changes {
        let j = prep.lead_index(c.lead).unwrap();
        let i = prep.agent_index(&c.agent).unwrap();
        match c.action {
            Action::Assign => draft.target[j].insert(i),
            Action::Unassign => draft.target[j].remove(&i),
        };
    }
    draft.changes = changes;
    draft
}

pub(super) fn covers(flow: f64) -> Reason {
    Reason::CoversShortfall {
        shortfall_before: flow,
    }
}
