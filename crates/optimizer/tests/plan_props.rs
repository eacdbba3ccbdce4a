//! Properties of whole plans on random snapshots: safety (thresholds, no
//! inactive or zero-headroom agent assigned), optimality against the LP,
//! idempotence (replanning the target changes nothing), caps, staffing,
//! reasons, determinism; and the churn objective against the greedy baseline.

use proptest::prelude::*;
use rebalancer_model::{
    Action, Agent, AgentId, Campaign, Lead, Plan, Reason, Snapshot, SnapshotSource, ThresholdEntry,
    WebexStatus, SNAPSHOT_SCHEMA_VERSION,
};
use rebalancer_optimizer::greedy::greedy;
use rebalancer_optimizer::{
    plan, Instance, Pair, PlanConfig, SolverChoice, Stages, TargetUtilisation,
};

#[derive(Debug, Clone)]
struct AgentSpec {
    active: bool,
    /// None = no Zoho threshold (unjoined).
    allow_backlog: Option<(i64, i64)>,
}

#[derive(Debug, Clone)]
struct LeadSpec {
    /// (agent index, assigned)
    pool: Vec<(usize, bool)>,
}

fn agent_spec() -> impl Strategy<Value = AgentSpec> {
    (
        prop::bool::weighted(0.85),
        prop::option::weighted(0.9, (0i64..20, 0i64..25)),
    )
        .prop_map(|(active, allow_backlog)| AgentSpec {
            active,
            allow_backlog,
        })
}

fn world() -> impl Strategy<Value = (Vec<AgentSpec>, Vec<LeadSpec>)> {
    prop::collection::vec(agent_spec(), 1..14).prop_flat_map(|agents| {
        let n = agents.len();
        let lead = prop::collection::vec((0..n, prop::bool::weighted(0.3)), 0..8)
            .prop_map(|pool| LeadSpec { pool });
        (Just(agents), prop::collection::vec(lead, 1..7))
    })
}

fn name(i: usize) -> AgentId {
    AgentId::new(format!("a{i:02}"))
}

fn snapshot(agents: &[AgentSpec], leads: &[LeadSpec]) -> Snapshot {
    let mut snap = Snapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        fetched_at: "2026-11-23T00:00:00Z".into(),
        source: SnapshotSource {
            description: "proptest".into(),
            cms_base_url: String::new(),
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
                    assigned: l.pool.iter().filter(|p| p.1).map(|p| name(p.0)).collect(),
                    unassigned: l.pool.iter().filter(|p| !p.1).map(|p| name(p.0)).collect(),
                })
                .collect(),
        }],
        agents: agents
            .iter()
            .enumerate()
            .map(|(i, a)| Agent {
                id: name(i),
                in_cms: true,
                webex: Some(WebexStatus {
                    username: name(i).0.to_string(),
                    email: None,
                    display_name: None,
                    role_desc: None,
                    user_status: Some(if a.active { "Active" } else { "Inactive" }.into()),
                    role_status: None,
                    active: a.active,
                }),
                zoho: None,
                thresholds: a
                    .allow_backlog
                    .map(|(allow, backlog)| ThresholdEntry {
                        threshold_id: "t".into(),
                        backlog_allow_count: allow,
                        backlog_count: backlog,
                        record_allow_count: 100,
                        record_assigned_count: 0,
                        default_assignee: false,
                    })
                    .into_iter()
                    .collect(),
                headroom: None,
                default_assignee: false,
            })
            .collect(),
        problems: vec![],
    };
    snap.normalize();
    snap
}

fn usable(snap: &Snapshot, id: &AgentId) -> bool {
    let a = snap.agent(id).unwrap();
    a.is_active() && a.headroom.is_some_and(|h| h > 0)
}

/// The snapshot with every lead's assignment replaced by the plan's target.
fn applied(snap: &Snapshot, plan: &Plan) -> Snapshot {
    let mut next = snap.clone();
    for c in &mut next.campaigns {
        for l in &mut c.leads {
            let lp = plan
                .leads
                .iter()
                .find(|p| p.lead.campaign_id == c.campaign_id && p.lead.lead_id == l.lead_id)
                .unwrap();
            let pool: Vec<AgentId> = l.pool().cloned().collect();
            l.assigned = lp.target.clone();
            l.unassigned = pool
                .into_iter()
                .filter(|a| !lp.target.contains(a))
                .collect();
        }
    }
    next.normalize();
    next
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn plans_are_safe_and_explained((agents, leads) in world()) {
        let snap = snapshot(&agents, &leads);
        let (plan, _) = plan(&snap, &PlanConfig::default()).unwrap();
        for lp in &plan.leads {
            for a in &lp.target {
                if !lp.current.contains(a) {
                    // New assignments only for active agents with headroom.
                    prop_assert!(usable(&snap, a), "{a} assigned to {} without capacity", lp.lead);
                } else {
                    // A kept agent is active (unjoined ones are frozen, not dropped).
                    prop_assert!(snap.agent(a).unwrap().is_active(), "inactive {a} kept on {}", lp.lead);
                    prop_assert!(snap.agent(a).unwrap().headroom != Some(0), "{a} at allowance kept on {}", lp.lead);
                }
            }
            // Current pairs of usable agents stay.
            for a in &lp.current {
                if usable(&snap, a) {
                    prop_assert!(lp.target.contains(a), "{a} dropped from {} without reason", lp.lead);
                }
            }
            // A lead that had agents keeps one, or the plan says why not.
            if !lp.current.is_empty() && lp.target.is_empty() {
                let key = lp.lead.to_string();
                prop_assert!(plan.notes.iter().any(|n| n.contains(&key)), "{key} left unstaffed silently");
            }
        }
        for c in &plan.changes {
            if c.action == Action::Unassign {
                prop_assert!(matches!(c.reason, Reason::Inactive { .. } | Reason::AtAllowance { .. } | Reason::Excluded | Reason::LeadCap { .. }), "unassign without a stated reason: {c:?}");
            }
        }
        // Thresholds: planned load within headroom and within the peak.
        for a in &plan.agents {
            prop_assert!(a.load_after <= a.headroom as f64 + 1e-6, "{a:?}");
            if a.headroom > 0 {
                prop_assert!(a.load_after / a.headroom as f64 <= plan.objectives.after.peak_utilisation + 1e-6);
            }
        }
        prop_assert!(plan.objectives.after.shortfall <= plan.objectives.before.shortfall + 1e-9);
        prop_assert_eq!(plan.objectives.after.shortfall, plan.objectives.optimum.shortfall);
    }

    #[test]
    fn optimum_matches_the_lp((agents, leads) in world()) {
        let snap = snapshot(&agents, &leads);
        let (flow, _) = plan(&snap, &PlanConfig::default()).unwrap();
        let lp_cfg = PlanConfig { solver: SolverChoice::Lp, ..PlanConfig::default() };
        let (lp, _) = plan(&snap, &lp_cfg).unwrap();
        prop_assert!((flow.objectives.optimum.shortfall - lp.objectives.optimum.shortfall).abs() < 1e-6);
        // u* and the cap of the default target (0.9) agree; the peak each
        // solver's flows reach under the cap may differ (any flow within it
        // is optimal), so it is not compared.
        let (fb, lb) = (&flow.objectives.balance, &lp.objectives.balance);
        prop_assert!((fb.least_peak - lb.least_peak).abs() < 1e-6, "u*: {fb:?} vs {lb:?}");
        prop_assert!((fb.cap - lb.cap).abs() < 1e-6, "cap: {fb:?} vs {lb:?}");
        prop_assert!(flow.objectives.optimum.peak_utilisation <= fb.cap + 1e-9);
        // The third objective too: least flow on new pairs (the LP's stage
        // slack allows 1e-5 relative, see lp_vs_flow.rs). Rounded to 1e-6
        // in the plan.
        let (f, l) = (flow.objectives.churn, lp.objectives.churn);
        prop_assert!((f - l).abs() <= 1e-5 * f.max(1.0) + 1e-6, "churn: flow {f} vs lp {l}");
    }

    #[test]
    fn replanning_the_target_changes_nothing((agents, leads) in world()) {
        let snap = snapshot(&agents, &leads);
        let cfg = PlanConfig { min_shortfall_gain: 0.0, min_balance_gain: 0.0, ..PlanConfig::default() };
        let (first, _) = plan(&snap, &cfg).unwrap();
        let (second, _) = plan(&applied(&snap, &first), &cfg).unwrap();
        prop_assert!(second.changes.is_empty(), "second plan changes {:?}", second.changes);
        prop_assert_eq!(second.objectives.before.shortfall, first.objectives.after.shortfall);
    }

    #[test]
    fn moves_stay_within_caps((agents, leads) in world(), run in 0usize..6, per_agent in 0usize..3) {
        let snap = snapshot(&agents, &leads);
        // No dead band, so the caps alone decide.
        let free_cfg = PlanConfig { min_shortfall_gain: 0.0, min_balance_gain: 0.0, ..PlanConfig::default() };
        let cfg = PlanConfig { max_moves_per_run: run, max_moves_per_agent: per_agent, ..free_cfg.clone() };
        let (free, _) = plan(&snap, &free_cfg).unwrap();
        let (capped, _) = plan(&snap, &cfg).unwrap();
        let optimisation: Vec<_> = capped.changes.iter().filter(|c| c.reason.is_optimisation()).collect();
        if run > 0 {
            prop_assert!(optimisation.len() <= run, "{} optimisation moves, cap {run}", optimisation.len());
        }
        // Only optimisation moves count against the per-agent cap.
        if per_agent > 0 {
            for c in &optimisation {
                let moves = optimisation.iter().filter(|d| d.agent == c.agent).count();
                prop_assert!(moves <= per_agent, "{} has {moves} optimisation moves, cap {per_agent}", c.agent);
            }
        }
        // Every other change of the uncapped plan goes, capped or not.
        for c in free.changes.iter().filter(|c| !c.reason.is_optimisation()) {
            prop_assert!(capped.changes.contains(c), "cap dropped {c:?}");
        }
        // Nothing is lost: each uncapped change is made or deferred.
        for c in &free.changes {
            prop_assert!(
                capped.changes.contains(c) || capped.deferred.iter().any(|d| &d.change == c),
                "{c:?} neither made nor deferred"
            );
        }
        // Only optimisation moves are deferred, and the report adds up.
        prop_assert!(capped.deferred.iter().all(|d| d.change.reason.is_optimisation()));
        match &capped.caps {
            None => prop_assert!(run == 0 && per_agent == 0),
            Some(r) => {
                prop_assert_eq!(r.kept, optimisation.len());
                prop_assert_eq!(r.deferred, capped.deferred.len());
                prop_assert_eq!(r.kept + r.deferred, free.changes.iter().filter(|c| c.reason.is_optimisation()).count());
            }
        }
        // The cap keeps a shortfall move whenever it defers one of more flow
        // only if that move is worth as much (ranking: shortfall first).
        if run > 0 && per_agent == 0 {
            let kept_short = optimisation.iter().filter(|c| matches!(c.reason, Reason::CoversShortfall { .. })).count();
            let deferred_short = capped.deferred.iter().filter(|d| matches!(d.change.reason, Reason::CoversShortfall { .. })).count();
            if deferred_short > 0 {
                prop_assert_eq!(kept_short, optimisation.len(), "a lesser move kept while shortfall moves wait");
            }
        }
        // A capped plan never carries less than the current mapping.
        prop_assert!(capped.objectives.after.shortfall <= capped.objectives.before.shortfall + 1e-9);
    }

    #[test]
    fn same_input_same_bytes((agents, leads) in world()) {
        let snap = snapshot(&agents, &leads);
        let (a, _) = plan(&snap, &PlanConfig::default()).unwrap();
        let (b, _) = plan(&snap.clone(), &PlanConfig::default()).unwrap();
        prop_assert_eq!(a.to_json(), b.to_json());
    }

    #[test]
    fn churn_objective_never_above_greedy_at_equal_coverage(
        caps in prop::collection::vec(0i64..30, 1..10),
        dems in prop::collection::vec(0i64..40, 1..6),
        edges in prop::collection::vec((0usize..10, 0usize..6, prop::bool::ANY), 1..30),
    ) {
        let (na, nl) = (caps.len(), dems.len());
        let mut seen = std::collections::BTreeSet::new();
        let pairs = edges.into_iter()
            .map(|(i, j, current)| Pair { agent: (i % na) as u32, lead: (j % nl) as u32, current })
            .filter(|p| seen.insert((p.agent, p.lead)))
            .collect();
        let inst = Instance { capacity: caps, demand: dems, pairs };
        let sol = Stages::new(&inst).solve().unwrap();
        // Greedy under the same balance (caps u*·h): when it carries as much
        // as the optimum, its flow on new pairs is no lower than ours.
        let g = greedy(&inst, sol.peak.to_f64());
        let ours = sol.new_pair_flow_scaled as f64 / sol.peak.den as f64;
        if (g.shortfall - sol.shortfall as f64).abs() < 1e-9 {
            prop_assert!(ours <= g.new_pair_flow + 1e-6, "flow {ours} > greedy {}", g.new_pair_flow);
        }
        // And greedy never beats the optimum's shortfall.
        let plain = greedy(&inst, 1.0);
        prop_assert!(plain.shortfall + 1e-9 >= sol.shortfall as f64);
    }
}

fn plan_default(snap: &Snapshot) -> (Plan, rebalancer_optimizer::PlanStats) {
    plan(snap, &PlanConfig::default()).unwrap()
}

#[test]
fn all_inactive_unassigns_everyone_and_reports_every_lead() {
    let agents = vec![
        AgentSpec {
            active: false,
            allow_backlog: Some((10, 0))
        };
        4
    ];
    let leads = vec![
        LeadSpec {
            pool: vec![(0, true), (1, true), (2, false)],
        },
        LeadSpec {
            pool: vec![(3, true)],
        },
        LeadSpec { pool: vec![] },
    ];
    let snap = snapshot(&agents, &leads);
    let (plan, _) = plan_default(&snap);
    assert_eq!(plan.summary.unassigns, 3);
    assert_eq!(plan.summary.assigns, 0);
    assert!(plan.leads.iter().all(|l| l.target.is_empty()));
    // Demand is a share of usable headroom, which is zero: nothing is short,
    // but the plan says each staffed lead loses all its agents.
    for key in ["7/0", "7/1"] {
        assert!(
            plan.notes.iter().any(|n| n.contains(key)),
            "{key}: {:?}",
            plan.notes
        );
    }
}

#[test]
fn explicit_demand_with_no_usable_agent_is_uncovered() {
    let agents = vec![
        AgentSpec {
            active: false,
            allow_backlog: Some((10, 0))
        };
        2
    ];
    let leads = vec![LeadSpec {
        pool: vec![(0, true), (1, false)],
    }];
    let snap = snapshot(&agents, &leads);
    let cfg = PlanConfig {
        demand: [("7/0".to_string(), 25)].into(),
        ..PlanConfig::default()
    };
    let (plan, _) = plan(&snap, &cfg).unwrap();
    assert_eq!(plan.objectives.after.shortfall, 25.0);
    assert_eq!(plan.objectives.after.leads_uncovered, 1);
    assert_eq!(plan.leads[0].shortfall, 25.0);
}

#[test]
fn balanced_snapshot_gives_zero_changes() {
    // Two active agents with room, both on the one lead: nothing to do.
    let agents = vec![
        AgentSpec {
            active: true,
            allow_backlog: Some((10, 0))
        };
        2
    ];
    let leads = vec![LeadSpec {
        pool: vec![(0, true), (1, true)],
    }];
    let (plan, _) = plan_default(&snapshot(&agents, &leads));
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert_eq!(plan.summary.kept, 2);
}

#[test]
fn infeasible_pins_and_unknown_names_are_named() {
    let agents = vec![
        AgentSpec {
            active: true,
            allow_backlog: Some((10, 0)),
        },
        AgentSpec {
            active: false,
            allow_backlog: Some((10, 0)),
        },
    ];
    let leads = vec![
        LeadSpec {
            pool: vec![(0, false), (1, false)],
        },
        LeadSpec { pool: vec![] },
    ];
    let snap = snapshot(&agents, &leads);
    let err = |cfg: PlanConfig| plan(&snap, &cfg).unwrap_err().to_string();
    let e = err(PlanConfig {
        pins: vec!["a01@7/0".into()],
        ..PlanConfig::default()
    });
    assert!(
        e.contains("a01") && e.contains("7/0") && e.contains("inactive"),
        "{e}"
    );
    let e = err(PlanConfig {
        pins: vec!["a00@7/1".into()],
        ..PlanConfig::default()
    });
    assert!(e.contains("not in the lead's pool"), "{e}");
    let e = err(PlanConfig {
        exclude_agents: vec!["ghost".into()],
        ..PlanConfig::default()
    });
    assert!(
        e.contains("ghost") && e.contains("plan.exclude_agents"),
        "{e}"
    );
    let e = err(PlanConfig {
        frozen_leads: vec!["7/99".into()],
        ..PlanConfig::default()
    });
    assert!(e.contains("7/99") && e.contains("plan.frozen_leads"), "{e}");
    // Errors name config keys, never command-line flags.
    assert!(!e.contains("--"), "{e}");
    let e = err(PlanConfig {
        pins: vec!["a00-7/0".into()],
        ..PlanConfig::default()
    });
    assert!(e.contains("AGENT@CAMPAIGN/LEAD"), "{e}");
    // A bare lead id is accepted when it is unique.
    let (p, _) = plan(
        &snap,
        &PlanConfig {
            demand: [("1".to_string(), 9)].into(),
            ..PlanConfig::default()
        },
    )
    .unwrap();
    assert_eq!(p.leads[1].demand, 9.0);
    let e = err(PlanConfig {
        demand: [("abc".to_string(), 9)].into(),
        ..PlanConfig::default()
    });
    assert!(e.contains("CAMPAIGN/LEAD"), "{e}");
    // A feasible pin is honoured.
    let (p, _) = plan(
        &snap,
        &PlanConfig {
            pins: vec!["a00@7/0".into()],
            ..PlanConfig::default()
        },
    )
    .unwrap();
    assert!(p
        .changes
        .iter()
        .any(|c| c.agent.as_str() == "a00" && c.reason == Reason::Pinned));
}

#[test]
fn unjoined_agents_follow_the_policy() {
    // a00 unjoined (no threshold), a01 joined with room; one lead, a00 in pool.
    let agents = vec![
        AgentSpec {
            active: true,
            allow_backlog: None,
        },
        AgentSpec {
            active: true,
            allow_backlog: Some((5, 5)),
        },
    ];
    let leads = vec![LeadSpec {
        pool: vec![(0, false), (1, true)],
    }];
    let snap = snapshot(&agents, &leads);
    let demand = [("7/0".to_string(), 8u64)].into();
    // freeze: a00 gets nothing new; a01 is at allowance and must go.
    let (frozen, _) = plan(
        &snap,
        &PlanConfig {
            demand: Clone::clone(&demand),
            ..PlanConfig::default()
        },
    )
    .unwrap();
    assert!(!frozen
        .changes
        .iter()
        .any(|c| c.agent.as_str() == "a00" && c.reason != Reason::KeepsLeadStaffed));
    // unlimited: a00 has unjoined_headroom and covers the lead.
    let cfg = PlanConfig {
        demand,
        unjoined_policy: rebalancer_optimizer::UnjoinedPolicy::Unlimited,
        unjoined_headroom: 10,
        ..PlanConfig::default()
    };
    let (open, _) = plan(&snap, &cfg).unwrap();
    assert!(open
        .changes
        .iter()
        .any(|c| c.agent.as_str() == "a00" && c.action == Action::Assign));
    assert_eq!(open.objectives.after.shortfall, 0.0);
}

#[test]
fn lead_cap_and_frozen_leads_are_hard_rules() {
    let agents = vec![
        AgentSpec {
            active: true,
            allow_backlog: Some((30, 0))
        };
        2
    ];
    let leads = vec![
        LeadSpec {
            pool: vec![(0, true), (1, true)],
        },
        LeadSpec {
            pool: vec![(0, true), (1, false)],
        },
        LeadSpec {
            pool: vec![(0, true), (1, false)],
        },
    ];
    let snap = snapshot(&agents, &leads);
    let cfg = PlanConfig {
        max_leads_per_agent: 2,
        ..PlanConfig::default()
    };
    let (p, _) = plan(&snap, &cfg).unwrap();
    for a in &p.agents {
        assert!(a.leads_after <= 2, "{a:?}");
    }
    assert!(p
        .changes
        .iter()
        .any(|c| c.reason == Reason::LeadCap { cap: 2 }));
    // Freezing lead 7/2 keeps a00 there whatever the cap says.
    let cfg = PlanConfig {
        max_leads_per_agent: 2,
        frozen_leads: vec!["7/2".into()],
        ..PlanConfig::default()
    };
    let (p, _) = plan(&snap, &cfg).unwrap();
    let l2 = p.leads.iter().find(|l| l.lead.lead_id == 2).unwrap();
    assert_eq!(l2.target, l2.current);
    assert!(l2.frozen);
}

#[test]
fn dead_band_holds_back_optimisation_but_not_safety() {
    // a00 inactive on lead 0 (safety unassign); a01 could balance lead 1.
    let agents = vec![
        AgentSpec {
            active: false,
            allow_backlog: Some((10, 0)),
        },
        AgentSpec {
            active: true,
            allow_backlog: Some((10, 0)),
        },
        AgentSpec {
            active: true,
            allow_backlog: Some((10, 0)),
        },
    ];
    let leads = vec![
        LeadSpec {
            pool: vec![(0, true), (1, true)],
        },
        LeadSpec {
            pool: vec![(1, true), (2, false)],
        },
    ];
    let snap = snapshot(&agents, &leads);
    let cfg = PlanConfig {
        min_shortfall_gain: 1e9,
        min_balance_gain: 1.0,
        ..PlanConfig::default()
    };
    let (p, _) = plan(&snap, &cfg).unwrap();
    assert!(p
        .changes
        .iter()
        .all(|c| c.reason.is_safety() || c.reason == Reason::KeepsLeadStaffed));
    assert!(p
        .changes
        .iter()
        .any(|c| matches!(c.reason, Reason::Inactive { .. })));
    // a02 taking lead 1 would cover a01's shortfall: held back by the band.
    assert!(!p.deferred.is_empty(), "the dead band deferred nothing");
    assert!(p.gate.as_deref().unwrap().starts_with("dead band"));
    assert!(p.deferred.iter().all(|d| d.deferred_by == "dead band"));
}

#[test]
fn a_cap_that_improves_nothing_says_so() {
    // a00 (room 10) carries lead 0 (demand 10); lead 1 (demand 10) can only
    // use a00. The optimum moves a01 onto lead 0 (frees capacity) and a00
    // onto lead 1 (covers shortfall). A cap of one keeps the shortfall move
    // alone, which carries nothing more: the plan must say so.
    let agents = vec![
        AgentSpec {
            active: true,
            allow_backlog: Some((10, 0))
        };
        2
    ];
    let leads = vec![
        LeadSpec {
            pool: vec![(0, true), (1, false)],
        },
        LeadSpec {
            pool: vec![(0, false)],
        },
    ];
    let snap = snapshot(&agents, &leads);
    let cfg = PlanConfig {
        demand: [("7/0".to_string(), 10), ("7/1".to_string(), 10)].into(),
        min_shortfall_gain: 0.0,
        min_balance_gain: 0.0,
        max_moves_per_run: 1,
        ..PlanConfig::default()
    };
    let (p, _) = plan(&snap, &cfg).unwrap();
    assert_eq!(p.objectives.optimum.shortfall, 0.0);
    assert_eq!(p.objectives.after.shortfall, p.objectives.before.shortfall);
    let caps = p.caps.as_ref().unwrap();
    assert_eq!((caps.kept, caps.deferred), (1, 1));
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("improves neither") && n.contains("plan.max_moves_per_run = 1")),
        "{:?}",
        p.notes
    );
    // Uncapped, both moves go and no such note appears.
    let (free, _) = plan(
        &snap,
        &PlanConfig {
            max_moves_per_run: 0,
            ..cfg
        },
    )
    .unwrap();
    assert_eq!(free.objectives.after.shortfall, 0.0);
    assert!(!free.notes.iter().any(|n| n.contains("improves neither")));
}

/// Gates off, at `target`.
fn at_target(target: TargetUtilisation) -> PlanConfig {
    PlanConfig {
        min_shortfall_gain: 0.0,
        min_balance_gain: 0.0,
        target_utilisation: target,
        ..PlanConfig::default()
    }
}

proptest! {
    /// Once the mapping carries the least shortfall, a target of 1.0 makes
    /// no optimisation move at all (safety moves may remain).
    #[test]
    fn target_one_moves_nothing_once_shortfall_is_least((agents, leads) in world()) {
        let snap = snapshot(&agents, &leads);
        let (first, _) = plan(&snap, &at_target(TargetUtilisation::Optimal)).unwrap();
        let settled = applied(&snap, &first);
        let (p, _) = plan(&settled, &at_target(TargetUtilisation::At(1.0))).unwrap();
        prop_assert!((p.objectives.before.shortfall - p.objectives.optimum.shortfall).abs() < 1e-9);
        let moved: Vec<_> = p.changes.iter().filter(|c| c.reason.is_optimisation()).collect();
        prop_assert!(moved.is_empty(), "optimisation moves at target 1.0: {moved:?}");
    }

    /// Shortfall is never traded for balance: every target plans the least
    /// shortfall, so lowering the target never raises it; and no agent's
    /// planned load exceeds the cap.
    #[test]
    fn lowering_the_target_never_raises_shortfall((agents, leads) in world()) {
        let snap = snapshot(&agents, &leads);
        let mut last: Option<f64> = None;
        for target in [
            TargetUtilisation::At(1.0),
            TargetUtilisation::At(0.9),
            TargetUtilisation::At(0.7),
            TargetUtilisation::At(0.5),
            TargetUtilisation::At(0.2),
            TargetUtilisation::Optimal,
        ] {
            let (p, _) = plan(&snap, &at_target(target)).unwrap();
            let o = &p.objectives;
            prop_assert!((o.after.shortfall - o.optimum.shortfall).abs() < 1e-6, "{target}: {o:?}");
            if let Some(l) = last {
                prop_assert!(o.after.shortfall <= l + 1e-6, "{target}: {} > {l}", o.after.shortfall);
            }
            last = Some(o.after.shortfall);
            prop_assert!(o.balance.cap + 1e-12 >= o.balance.least_peak);
            prop_assert!(o.optimum.peak_utilisation <= o.balance.cap + 1e-9, "{target}: {o:?}");
            prop_assert!(o.new_pairs.reduced <= o.new_pairs.least_records);
        }
    }
}

#[test]
fn an_agent_under_the_target_keeps_its_lead_alone_and_optimal_still_balances() {
    // Agent 0 (headroom 20) carries the lead's 10 records alone: 50 %.
    // Agent 1 (headroom 20) is in the pool. u* = 10/40 = 0.25.
    let agents = vec![
        AgentSpec {
            active: true,
            allow_backlog: Some((20, 0))
        };
        2
    ];
    let leads = vec![LeadSpec {
        pool: vec![(0, true), (1, false)],
    }];
    let mut snap = snapshot(&agents, &leads);
    let demand = |cfg: PlanConfig| PlanConfig {
        demand: [("7/0".to_string(), 10)].into(),
        ..cfg
    };
    snap.normalize();
    for target in [
        TargetUtilisation::At(0.9),
        TargetUtilisation::At(0.5),
        TargetUtilisation::At(1.0),
    ] {
        let (p, _) = plan(&snap, &demand(at_target(target))).unwrap();
        assert!(p.changes.is_empty(), "{target}: {:?}", p.changes);
        assert_eq!(p.objectives.balance.least_peak, 0.25);
        assert_eq!(p.objectives.balance.cap, target.value().unwrap());
    }
    // 0.4 is below the agent's 50 %: it gets help, named by the target.
    let (p, _) = plan(&snap, &demand(at_target(TargetUtilisation::At(0.4)))).unwrap();
    assert_eq!(p.changes.len(), 1);
    assert_eq!(
        p.changes[0].reason.to_string(),
        "balances load: agent above the 0.40 target (u 0.5000 → 0.4000)"
    );
    assert_eq!(p.changes[0].flow, 2.0);
    let (p, _) = plan(&snap, &demand(at_target(TargetUtilisation::Optimal))).unwrap();
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].flow, 5.0);
    assert_eq!(
        p.changes[0].reason.to_string(),
        "balances load (u 0.5000 → 0.2500)"
    );
}

#[test]
fn a_target_outside_zero_to_one_is_a_config_error_naming_the_key() {
    let snap = snapshot(
        &[AgentSpec {
            active: true,
            allow_backlog: Some((5, 0)),
        }],
        &[LeadSpec {
            pool: vec![(0, true)],
        }],
    );
    for bad in [0.0, -0.1, 1.5, f64::NAN] {
        let e = plan(&snap, &at_target(TargetUtilisation::At(bad)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("plan.target_utilisation"), "{e}");
    }
}
