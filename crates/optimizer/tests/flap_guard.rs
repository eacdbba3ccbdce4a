//! The flap guard (`plan_guarded` with a `Recent`) on the sandbox world
//! (`tests/data/sandbox-seed7.json`): no optimisation move touches a
//! recent agent, or a recent lead that had no shortfall and holds no
//! ineligible agent; a recent lead with shortfall or an ineligible agent
//! still gets its moves; safety changes are those of the unguarded plan;
//! the report counts what was held back; the objectives after are those of
//! the target kept; the guard runs before the move caps; same inputs give
//! the same bytes.

use proptest::prelude::*;
use rebalancer_model::{Action, AgentId, Change, LeadKey, Plan, Reason, Snapshot};
use rebalancer_optimizer::{
    plan, plan_guarded, plan_with, PlanConfig, Recent, TargetUtilisation, WhatIfs, FLAP_GUARD,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

fn sandbox() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sandbox-seed7.json");
        Snapshot::load(&path).unwrap()
    })
}

/// A planning config and the unguarded plan of the sandbox world under it.
struct World {
    cfg: PlanConfig,
    free: Plan,
}

impl World {
    fn new(cfg: PlanConfig) -> World {
        let free = plan(sandbox(), &cfg).unwrap().0;
        World { cfg, free }
    }

    fn guarded(&self, recent: &Recent) -> Plan {
        plan_guarded(sandbox(), &self.cfg, &WhatIfs::default(), recent)
            .unwrap()
            .0
    }
}

/// The default config: every lead of this world is short, so every
/// optimisation move covers shortfall.
fn short_world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| World::new(PlanConfig::default()))
}

/// A tenth of the headroom as demand: some leads are short, others only
/// get moves that balance load or free capacity.
fn mixed_world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        World::new(PlanConfig {
            demand_share: 0.1,
            // Balance to the least peak: the guard then has load-balancing
            // moves on leads without shortfall to hold back.
            target_utilisation: TargetUtilisation::Optimal,
            ..PlanConfig::default()
        })
    })
}

fn optimisation(p: &Plan) -> impl Iterator<Item = &Change> {
    p.changes.iter().filter(|c| c.reason.is_optimisation())
}

/// Changes that no gate may touch: safety unassigns, pins, lead cap.
fn safety(p: &Plan) -> Vec<&Change> {
    p.changes
        .iter()
        .filter(|c| c.reason.is_safety() || matches!(c.reason, Reason::LeadCap { .. }))
        .collect()
}

fn held_by_guard(p: &Plan) -> Vec<&Change> {
    p.deferred
        .iter()
        .filter(|d| d.deferred_by == FLAP_GUARD)
        .map(|d| &d.change)
        .collect()
}

/// Leads the guard leaves open even when recent: short before the plan (an
/// optimisation move there covers shortfall) or with a safety unassign.
fn open_leads(p: &Plan) -> BTreeSet<LeadKey> {
    p.changes
        .iter()
        .chain(p.deferred.iter().map(|d| &d.change))
        .filter(|c| {
            matches!(c.reason, Reason::CoversShortfall { .. })
                || (c.action == Action::Unassign && c.reason.is_safety())
        })
        .map(|c| c.lead)
        .collect()
}

/// Whether the guard must hold back `c` under `recent`.
fn must_hold(c: &Change, recent: &Recent, open: &BTreeSet<LeadKey>) -> bool {
    c.reason.is_optimisation()
        && (recent.agents.contains(&c.agent)
            || (recent.leads.contains(&c.lead) && !open.contains(&c.lead)))
}

/// The snapshot with the plan's target mapping in place of the current one.
fn with_target(snap: &Snapshot, p: &Plan) -> Snapshot {
    let targets: BTreeMap<LeadKey, &Vec<AgentId>> =
        p.leads.iter().map(|l| (l.lead, &l.target)).collect();
    let mut out = snap.clone();
    for c in &mut out.campaigns {
        for l in &mut c.leads {
            let key = LeadKey {
                campaign_id: c.campaign_id,
                lead_id: l.lead_id,
            };
            let Some(target) = targets.get(&key) else {
                continue;
            };
            let pool: BTreeSet<AgentId> = l.pool().cloned().collect();
            l.assigned = target.to_vec();
            l.unassigned = pool.into_iter().filter(|a| !target.contains(a)).collect();
        }
    }
    out.normalize();
    out
}

/// Everything the guard promises, for a guarded plan against the unguarded
/// one of its world (no caps).
fn check(w: &World, g: &Plan, recent: &Recent) {
    let free = &w.free;
    let open = open_leads(free);
    // No optimisation change that the guard must hold back went.
    for c in optimisation(g) {
        assert!(!must_hold(c, recent, &open), "{c:?} went");
    }
    // Exactly the unguarded optimisation moves the rule names were held.
    let expected: Vec<&Change> = optimisation(free)
        .filter(|c| must_hold(c, recent, &open))
        .collect();
    let mut held = held_by_guard(g);
    held.sort_by(|a, b| (a.lead, a.action, &a.agent).cmp(&(b.lead, b.action, &b.agent)));
    assert_eq!(held, expected);
    // The rest went, unchanged, unless the dead band (which judges what the
    // guard left) held every one of them.
    for c in optimisation(free).filter(|c| !must_hold(c, recent, &open)) {
        let went = g.changes.contains(c);
        let banded = g.gate.is_some()
            && g.deferred
                .iter()
                .any(|d| &d.change == c && d.deferred_by == "dead band");
        assert!(went || banded, "{c:?} was held");
    }
    // Safety, pins and lead cap exactly as without the guard.
    assert_eq!(safety(g), safety(free));
    // Every keep-staffed assign of the unguarded plan is still made.
    for c in free
        .changes
        .iter()
        .filter(|c| c.reason == Reason::KeepsLeadStaffed)
    {
        assert!(g.changes.contains(c), "{c:?}");
    }
    // The report.
    let report = g.flap_guard.as_ref().expect("a flap report");
    assert_eq!(report.agents, recent.agents.len());
    assert_eq!(report.leads, recent.leads.len());
    assert_eq!(report.deferred, expected.len());
    assert_eq!(g.summary.deferred, g.deferred.len());
    // The targets are the current mapping plus the changes that went.
    for l in &g.leads {
        let mut t: BTreeSet<&AgentId> = l.current.iter().collect();
        for c in g.changes.iter().filter(|c| c.lead == l.lead) {
            match c.action {
                Action::Assign => assert!(t.insert(&c.agent)),
                Action::Unassign => assert!(t.remove(&c.agent)),
            }
        }
        assert_eq!(t, l.target.iter().collect(), "lead {}", l.lead);
    }
    // The objectives after are those of the target kept.
    let (replan, _) = plan(&with_target(sandbox(), g), &w.cfg).unwrap();
    let (a, b) = (&g.objectives.after, &replan.objectives.before);
    assert!(
        (a.shortfall - b.shortfall).abs() < 1e-6
            && (a.peak_utilisation - b.peak_utilisation).abs() < 1e-9
            && a.leads_uncovered == b.leads_uncovered,
        "after {a:?} vs the target's own {b:?}"
    );
}

#[test]
fn nothing_recent_is_the_unguarded_plan() {
    for w in [short_world(), mixed_world()] {
        let g = w.guarded(&Recent::default());
        let (with, _) = plan_with(sandbox(), &w.cfg, &WhatIfs::default()).unwrap();
        assert_eq!(g.to_json(), with.to_json());
        assert_eq!(g.to_json(), w.free.to_json());
        assert!(g.flap_guard.is_none());
        assert!(held_by_guard(&g).is_empty());
    }
}

#[test]
fn a_recent_agent_is_not_moved_again_by_optimisation() {
    for w in [short_world(), mixed_world()] {
        let free = &w.free;
        // Every other agent that the unguarded plan moves for optimisation,
        // plus every agent it unassigns for safety (those must still go).
        let moved: BTreeSet<AgentId> = optimisation(free).map(|c| c.agent.clone()).collect();
        let mut agents: BTreeSet<AgentId> = moved.iter().step_by(2).cloned().collect();
        agents.extend(safety(free).iter().map(|c| c.agent.clone()));
        agents.insert(AgentId::new("nobody-the-snapshot-knows"));
        let recent = Recent {
            agents: agents.clone(),
            leads: BTreeSet::new(),
        };
        let g = w.guarded(&recent);
        check(w, &g, &recent);
        assert!(optimisation(&g).all(|c| !agents.contains(&c.agent)));
        assert!(held_by_guard(&g).len() >= moved.len() / 2);
        assert!(g.objectives.after.shortfall >= free.objectives.after.shortfall);
    }
}

#[test]
fn a_recent_lead_without_shortfall_is_left_alone() {
    let w = mixed_world();
    let free = &w.free;
    let open = open_leads(free);
    // Leads whose optimisation moves only balance load or free capacity,
    // and that hold no ineligible agent.
    let calm: BTreeSet<LeadKey> = optimisation(free)
        .map(|c| c.lead)
        .filter(|l| !open.contains(l))
        .collect();
    assert!(calm.len() >= 3, "the world has leads without shortfall");
    let recent = Recent {
        agents: BTreeSet::new(),
        leads: calm.clone(),
    };
    let g = w.guarded(&recent);
    check(w, &g, &recent);
    assert!(optimisation(&g).all(|c| !calm.contains(&c.lead)));
    let held = held_by_guard(&g);
    assert_eq!(
        held.len(),
        optimisation(free)
            .filter(|c| calm.contains(&c.lead))
            .count()
    );
    assert!(held.iter().all(|c| calm.contains(&c.lead)));
    // Their mapping is the current one.
    for l in g.leads.iter().filter(|l| calm.contains(&l.lead)) {
        assert_eq!(l.target, l.current, "lead {}", l.lead);
    }
}

#[test]
fn a_recent_lead_with_shortfall_or_an_ineligible_agent_keeps_its_moves() {
    for w in [short_world(), mixed_world()] {
        let free = &w.free;
        let short: BTreeSet<LeadKey> = optimisation(free)
            .filter(|c| matches!(c.reason, Reason::CoversShortfall { .. }))
            .map(|c| c.lead)
            .collect();
        let unsafe_leads: BTreeSet<LeadKey> = free
            .changes
            .iter()
            .filter(|c| c.action == Action::Unassign && c.reason.is_safety())
            .map(|c| c.lead)
            .collect();
        assert!(!short.is_empty() && !unsafe_leads.is_empty());
        let leads: BTreeSet<LeadKey> = short.union(&unsafe_leads).copied().collect();
        let recent = Recent {
            agents: BTreeSet::new(),
            leads: leads.clone(),
        };
        let g = w.guarded(&recent);
        check(w, &g, &recent);
        assert!(held_by_guard(&g).is_empty());
        assert_eq!(g.changes, free.changes);
        assert_eq!(g.objectives, free.objectives);
        let report = g.flap_guard.unwrap();
        assert_eq!((report.leads, report.deferred), (leads.len(), 0));
    }
    // The second exception on its own: a lead not short before, holding an
    // ineligible agent, keeps its moves that balance load or free capacity.
    let w = mixed_world();
    let free = &w.free;
    let unsafe_calm: BTreeSet<LeadKey> = free
        .changes
        .iter()
        .filter(|c| c.action == Action::Unassign && c.reason.is_safety())
        .map(|c| c.lead)
        .filter(|&l| {
            optimisation(free).any(|c| c.lead == l)
                && optimisation(free)
                    .filter(|c| c.lead == l)
                    .all(|c| !matches!(c.reason, Reason::CoversShortfall { .. }))
        })
        .collect();
    assert!(!unsafe_calm.is_empty());
    let recent = Recent {
        agents: BTreeSet::new(),
        leads: unsafe_calm.clone(),
    };
    let g = w.guarded(&recent);
    check(w, &g, &recent);
    assert!(held_by_guard(&g).is_empty());
    assert!(optimisation(&g).any(|c| unsafe_calm.contains(&c.lead)));
}

#[test]
fn the_guard_runs_before_the_caps_and_they_count_what_is_left() {
    for w in [short_world(), mixed_world()] {
        let free = &w.free;
        let moved: Vec<AgentId> = optimisation(free)
            .map(|c| c.agent.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .step_by(3)
            .collect();
        let recent = Recent {
            agents: moved.into_iter().collect(),
            leads: BTreeSet::new(),
        };
        let cfg = PlanConfig {
            max_moves_per_run: 10,
            ..w.cfg.clone()
        };
        let (g, _) = plan_guarded(sandbox(), &cfg, &WhatIfs::default(), &recent).unwrap();
        let open = open_leads(free);
        let guard_held = optimisation(free)
            .filter(|c| must_hold(c, &recent, &open))
            .count();
        let total = optimisation(free).count();
        let caps = g.caps.as_ref().unwrap();
        let report = g.flap_guard.as_ref().unwrap();
        assert!(guard_held > 0 && total - guard_held > 10);
        assert_eq!(report.deferred, guard_held);
        assert_eq!(caps.kept, 10);
        assert_eq!(caps.kept + caps.deferred + report.deferred, total);
        assert_eq!(held_by_guard(&g).len(), guard_held);
        assert!(optimisation(&g).all(|c| !recent.agents.contains(&c.agent)));
        assert_eq!(safety(&g), safety(free));
        assert_eq!(g.summary.deferred, g.deferred.len());
    }
}

#[test]
fn the_dead_band_judges_what_the_guard_left() {
    // Hold back every optimisation move but one small one: what is left
    // gains less than the dead band asks, so the dead band holds it too.
    let w = mixed_world();
    let free = &w.free;
    let keep = optimisation(free)
        .min_by(|a, b| a.flow.total_cmp(&b.flow).then(a.lead.cmp(&b.lead)))
        .unwrap()
        .clone();
    let recent = Recent {
        agents: optimisation(free)
            .map(|c| c.agent.clone())
            .filter(|a| *a != keep.agent)
            .collect(),
        leads: BTreeSet::new(),
    };
    // A dead band the whole plan passes (its shortfall gain exactly).
    let gain = free.objectives.before.shortfall - free.objectives.after.shortfall;
    assert!(gain > 0.0);
    let cfg = PlanConfig {
        min_shortfall_gain: gain,
        min_balance_gain: 1.0,
        ..w.cfg.clone()
    };
    let (unguarded, _) = plan(sandbox(), &cfg).unwrap();
    assert!(unguarded.gate.is_none());
    assert_eq!(unguarded.changes, free.changes);
    let (g, _) = plan_guarded(sandbox(), &cfg, &WhatIfs::default(), &recent).unwrap();
    assert!(g.gate.is_some(), "{:?}", g.gate);
    assert_eq!(optimisation(&g).count(), 0);
    assert!(g
        .deferred
        .iter()
        .any(|d| d.deferred_by == "dead band" && d.change.agent == keep.agent));
    assert_eq!(
        g.flap_guard.as_ref().unwrap().deferred,
        held_by_guard(&g).len()
    );
    assert_eq!(safety(&g), safety(free));
}

#[test]
fn same_inputs_give_the_same_bytes() {
    let w = mixed_world();
    let free = &w.free;
    let recent = Recent {
        agents: optimisation(free)
            .map(|c| c.agent.clone())
            .step_by(5)
            .collect(),
        leads: free.leads.iter().map(|l| l.lead).step_by(4).collect(),
    };
    let a = w.guarded(&recent).to_json();
    let b = w.guarded(&recent.clone()).to_json();
    assert_eq!(a, b);
    let back = Plan::from_json(&a, Path::new("guarded.json")).unwrap();
    assert_eq!(back.to_json(), a);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any set of recent agents and leads, in either world: every promise
    /// holds.
    #[test]
    fn every_promise_holds_for_any_recent_set(
        mixed in any::<bool>(),
        agent_mask in prop::collection::vec(prop::bool::weighted(0.2), 200),
        lead_mask in prop::collection::vec(prop::bool::weighted(0.3), 40),
    ) {
        let w = if mixed { mixed_world() } else { short_world() };
        let agents: BTreeSet<AgentId> = sandbox()
            .agents
            .iter()
            .zip(&agent_mask)
            .filter(|(_, &m)| m)
            .map(|(a, _)| a.id.clone())
            .collect();
        let leads: BTreeSet<LeadKey> = w
            .free
            .leads
            .iter()
            .zip(&lead_mask)
            .filter(|(_, &m)| m)
            .map(|l| l.0.lead)
            .collect();
        let recent = Recent { agents, leads };
        let g = w.guarded(&recent);
        if recent.is_empty() {
            prop_assert!(g.flap_guard.is_none());
        } else {
            check(w, &g, &recent);
        }
    }
}
