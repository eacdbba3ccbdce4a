//! What an operator must be able to trust in a plan, on the sandbox world
//! (`tests/data/sandbox-seed7.json`: `rebalancer fetch --sandbox`, seed 7,
//! 200 agents, 40 leads) and on hand-made edge cases: move caps never hold
//! back safety and keep the most valuable moves, mass unassigns block the
//! plan, absurd numbers are typed errors, what-ifs are listed and their
//! side effects on demand said, and fetch problems reach the plan.

use rebalancer_model::{Action, Agent, Change, Plan, Reason, Snapshot};
use rebalancer_optimizer::whatif::{parse_allowance, LeadRef};
use rebalancer_optimizer::{plan, plan_with, OptimizerError, PlanConfig, WhatIfs};
use std::path::Path;

fn sandbox() -> Snapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sandbox-seed7.json");
    Snapshot::load(&path).unwrap()
}

fn optimisation(p: &Plan) -> Vec<&Change> {
    p.changes
        .iter()
        .filter(|c| c.reason.is_optimisation())
        .collect()
}

#[test]
fn a_cap_of_ten_makes_the_ten_most_valuable_moves_and_every_safety_change() {
    let snap = sandbox();
    let (free, _) = plan(&snap, &PlanConfig::default()).unwrap();
    // The world as the issue measured it.
    assert_eq!(free.objectives.before.shortfall, 696.0);
    assert_eq!(free.objectives.optimum.shortfall, 81.0);
    assert_eq!(free.summary.unassigns, 15);
    // 98 optimisation assigns at the least-records optimum; rerouting light
    // flows onto pairs in use leaves 70 (the shortfall stays 81).
    assert_eq!(free.objectives.new_pairs.least_records, 98);
    assert_eq!(optimisation(&free).len(), 70);
    assert!(free.caps.is_none());

    let cfg = PlanConfig {
        max_moves_per_run: 10,
        ..PlanConfig::default()
    };
    let (capped, _) = plan(&snap, &cfg).unwrap();
    let kept = optimisation(&capped);
    assert_eq!(kept.len(), 10);
    assert!(kept.iter().all(|c| c.action == Action::Assign));
    let caps = capped.caps.as_ref().unwrap();
    assert_eq!(
        (caps.max_moves_per_run, caps.kept, caps.deferred),
        (10, 10, 60)
    );
    assert!(capped.objectives.after.shortfall < capped.objectives.before.shortfall);
    // Every safety unassign of the uncapped plan is made.
    for c in free.changes.iter().filter(|c| !c.reason.is_optimisation()) {
        assert!(capped.changes.contains(c), "missing {c:?}");
    }
    assert_eq!(capped.summary.unassigns, 15);
    // The ten kept cover shortfall, and none deferred carries more flow.
    assert!(kept
        .iter()
        .all(|c| matches!(c.reason, Reason::CoversShortfall { .. })));
    let least_kept = kept.iter().map(|c| c.flow).fold(f64::INFINITY, f64::min);
    for d in &capped.deferred {
        assert_eq!(d.deferred_by, "max_moves_per_run");
        if matches!(d.change.reason, Reason::CoversShortfall { .. }) {
            assert!(d.change.flow <= least_kept, "{d:?} outranks a kept move");
        }
    }
    // A per-agent cap counts optimisation moves only.
    let cfg = PlanConfig {
        max_moves_per_agent: 1,
        ..PlanConfig::default()
    };
    let (per_agent, _) = plan(&snap, &cfg).unwrap();
    assert_eq!(per_agent.summary.unassigns, 15);
    let moved = optimisation(&per_agent);
    assert!(!moved.is_empty());
    for c in &moved {
        assert_eq!(moved.iter().filter(|d| d.agent == c.agent).count(), 1);
    }
}

#[test]
fn the_sandbox_plan_is_not_blocked_and_carries_the_fetch_problems() {
    let snap = sandbox();
    assert!(!snap.problems.is_empty());
    let (p, _) = plan(&snap, &PlanConfig::default()).unwrap();
    assert!(p.blocked.is_none(), "{:?}", p.blocked);
    assert_eq!(p.problems, snap.problems);
    assert!(p.problems.windows(2).all(|w| w[0] <= w[1]));
    assert!(p.what_ifs.is_empty());
}

/// Webex answered with no users: everyone is inactive.
fn webex_outage(mut snap: Snapshot) -> Snapshot {
    for a in &mut snap.agents {
        a.webex = None;
    }
    snap
}

#[test]
fn an_empty_webex_answer_blocks_the_plan() {
    let snap = webex_outage(sandbox());
    let (p, _) = plan(&snap, &PlanConfig::default()).unwrap();
    let b = p.blocked.as_ref().expect("a mass unassign is blocked");
    let current: usize = p.leads.iter().map(|l| l.current.len()).sum();
    assert_eq!(b.current_pairs, current);
    assert_eq!(b.unassigns, p.summary.unassigns);
    assert_eq!(b.unassigns, current, "everyone inactive: every pair goes");
    assert_eq!(b.max_share, 0.25);
    assert!(b.reason.contains("plan.max_unassign_share"), "{}", b.reason);
    // The plan is still complete.
    assert!(p.changes.iter().all(|c| c.action == Action::Unassign));
    // Allowing every pair to go lifts the block; a bad share is refused.
    let cfg = PlanConfig {
        max_unassign_share: 1.0,
        ..PlanConfig::default()
    };
    assert!(plan(&snap, &cfg).unwrap().0.blocked.is_none());
    let cfg = PlanConfig {
        max_unassign_share: 1.5,
        ..PlanConfig::default()
    };
    let e = plan(&snap, &cfg).unwrap_err().to_string();
    assert!(e.contains("plan.max_unassign_share"), "{e}");
}

fn broken_counts(agent: &mut Agent, allow: i64, count: i64) {
    for t in &mut agent.thresholds {
        t.backlog_allow_count = allow;
        t.backlog_count = count;
        t.record_allow_count = i64::MAX;
        t.record_assigned_count = 0;
    }
    agent.derive();
}

#[test]
fn counts_near_i64_max_are_a_typed_error_naming_the_agent() {
    for (allow, count) in [(i64::MAX, 0), (i64::MAX - 1, 1), (5, i64::MIN)] {
        let mut snap = sandbox();
        let i = snap
            .agents
            .iter()
            .position(|a| a.is_active() && a.in_cms && !a.thresholds.is_empty())
            .unwrap();
        broken_counts(&mut snap.agents[i], allow, count);
        let id = snap.agents[i].id.clone();
        let e = plan(&snap, &PlanConfig::default()).unwrap_err();
        assert!(
            matches!(&e, OptimizerError::HeadroomOutOfRange { agent, .. } if agent.as_str() == id.as_str()),
            "{e}"
        );
        assert!(e.to_string().contains(id.as_str()), "{e}");
    }
    // Many agents just under the limit: the total is refused, not wrapped.
    let mut snap = sandbox();
    for a in snap
        .agents
        .iter_mut()
        .filter(|a| a.is_active() && !a.thresholds.is_empty())
    {
        broken_counts(a, rebalancer_optimizer::limits::MAX_RECORDS, 0);
    }
    match plan(&snap, &PlanConfig::default()) {
        // 10^12 each over fewer than 1,000 agents fits; then the plan's
        // figures must be sane (never negative demand).
        Ok((p, _)) => assert!(p.leads.iter().all(|l| l.demand >= 0.0)),
        // Or demand (a share of that headroom) is refused by its key.
        Err(e) => assert!(
            matches!(
                e,
                OptimizerError::TotalOutOfRange { .. }
                    | OptimizerError::Overflow
                    | OptimizerError::BadValue {
                        key: "plan.demand_share",
                        ..
                    }
            ),
            "{e}"
        ),
    }
}

#[test]
fn a_demand_of_u64_max_is_a_typed_error_naming_the_lead() {
    let snap = sandbox();
    let (key, _) = snap.leads().next().unwrap();
    let cfg = PlanConfig {
        demand: [(key.to_string(), u64::MAX)].into(),
        ..PlanConfig::default()
    };
    let e = plan(&snap, &cfg).unwrap_err().to_string();
    assert!(
        e.contains(&key.to_string())
            && e.contains("18446744073709551615")
            && e.contains("plan.demand"),
        "{e}"
    );
    // The same through a typed what-if.
    let mut w = WhatIfs::default();
    w.set_demand.insert(LeadRef::Key(key), u64::MAX);
    let e = plan_with(&snap, &PlanConfig::default(), &w)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&key.to_string()) && e.contains("plan.demand"),
        "{e}"
    );
    // And a default share that would overflow.
    let cfg = PlanConfig {
        demand_share: 1e300,
        ..PlanConfig::default()
    };
    let e = plan(&snap, &cfg).unwrap_err().to_string();
    assert!(e.contains("plan.demand_share"), "{e}");
}

#[test]
fn what_ifs_are_listed_and_their_effect_on_demand_is_said() {
    let snap = sandbox();
    // The agent whose headroom grows most when its backlog allowance no
    // longer binds (then its record count does).
    let record_room = |a: &Agent| {
        a.thresholds
            .iter()
            .map(|t| t.record_allow_count - t.record_assigned_count)
            .min()
            .unwrap_or(0)
    };
    let agent = snap
        .agents
        .iter()
        .filter(|a| a.is_active() && a.in_cms && a.headroom.is_some_and(|h| h > 0))
        .max_by_key(|a| (record_room(a) - a.headroom.unwrap() as i64, a.id.clone()))
        .unwrap();
    let backlog = agent
        .thresholds
        .iter()
        .map(|t| t.backlog_count)
        .max()
        .unwrap();
    let allow = backlog + record_room(agent);
    let text = format!("{}={allow}", agent.id);
    let mut w = WhatIfs::default();
    let (id, n) = parse_allowance(&text).unwrap();
    w.set_allowance.insert(id, n);
    let (base, _) = plan(&snap, &PlanConfig::default()).unwrap();
    let (p, _) = plan_with(&snap, &PlanConfig::default(), &w).unwrap();
    assert_eq!(p.what_ifs, vec![format!("plan.set_allowance: {text}")]);
    assert_ne!(p.config_digest, base.config_digest);
    let note = p
        .notes
        .iter()
        .find(|n| n.contains("changed the default demand"))
        .unwrap_or_else(|| panic!("no demand note in {:?}", p.notes));
    assert!(
        note.contains("set_allowance") && note.contains(&format!("of {} leads", p.leads.len())),
        "{note}"
    );
    let (b, a) = (base.leads[0].demand, p.leads[0].demand);
    assert!(note.contains(&format!("{b} → {a} records each")), "{note}");
    // The same what-if from the config file is listed the same way.
    let cfg = PlanConfig {
        set_allowance: vec![text.clone()],
        ..PlanConfig::default()
    };
    let (q, _) = plan(&snap, &cfg).unwrap();
    assert_eq!(q.what_ifs, p.what_ifs);
    // Unknown names in what-ifs name the key.
    let mut w = WhatIfs::default();
    w.exclude_agents.insert("ghost".into());
    let e = plan_with(&snap, &PlanConfig::default(), &w)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ghost") && e.contains("plan.exclude_agents"),
        "{e}"
    );
}

#[test]
fn same_snapshot_and_what_ifs_same_bytes() {
    let snap = sandbox();
    let mut w = WhatIfs::default();
    w.freeze_leads
        .insert(LeadRef::Key(snap.leads().next().unwrap().0));
    let cfg = PlanConfig {
        max_moves_per_run: 10,
        ..PlanConfig::default()
    };
    let (a, _) = plan_with(&snap, &cfg, &w).unwrap();
    let (b, _) = plan_with(&snap.clone(), &cfg, &w).unwrap();
    assert_eq!(a.to_json(), b.to_json());
}

#[test]
fn freed_capacity_names_the_short_lead_it_helps() {
    let snap = sandbox();
    let (p, _) = plan(&snap, &PlanConfig::default()).unwrap();
    let freeing: Vec<&Change> = p
        .changes
        .iter()
        .filter(|c| matches!(c.reason, Reason::FreesCapacity { .. }))
        .collect();
    assert!(
        !freeing.is_empty(),
        "the sandbox world frees capacity somewhere"
    );
    let lead_plan = |k| p.leads.iter().find(|l| l.lead == k).unwrap();
    for c in freeing {
        let Reason::FreesCapacity {
            for_lead: Some(helped),
        } = c.reason
        else {
            panic!("{c:?} names no lead");
        };
        assert_ne!(helped, c.lead, "{c:?}");
        // One of the freed lead's current agents serves the helped lead,
        // and the helped lead is better covered than its current mapping
        // could manage alone (it had shortfall before).
        let freed = lead_plan(c.lead);
        let target = &lead_plan(helped).target;
        assert!(
            freed.current.iter().any(|a| target.contains(a)),
            "{c:?}: no agent of {} serves {helped}",
            c.lead
        );
        assert!(
            c.reason.to_string().contains(&helped.to_string()),
            "{}",
            c.reason
        );
    }
}
