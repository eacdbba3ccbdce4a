//! The gates and hard caps that hold changes back or block the plan: the
//! lead cap, the flap guard, the dead band, the move caps (most valuable
//! moves first) and the blast radius. Only optimisation moves are ever held
//! back by the flap guard, dead band and move caps.

use super::basis::Evaluation;
use super::decide::{change, Draft};
use super::Recent;
use crate::config::PlanConfig;
use crate::limits::FIGURE_NOISE;
use crate::prepare::{Prepared, Standing};
use rebalancer_model::{Action, Blocked, CapReport, Change, Deferred, FlapReport, LeadKey, Reason};
use std::collections::{BTreeMap, BTreeSet};

/// `deferred_by` of the changes the flap guard holds back.
pub const FLAP_GUARD: &str = "flap guard (run.min_move_interval)";

/// The flap guard: hold back every optimisation move that moves a recent
/// agent, or changes a recent lead that had no shortfall before the plan
/// and holds no ineligible agent (a lead with a safety unassign). Other
/// changes always go.
pub(super) fn flap_guard(
    prep: &Prepared,
    before: &Evaluation,
    recent: &Recent,
    draft: &mut Draft,
) -> FlapReport {
    let inst = &prep.inst;
    // Recent leads the guard leaves open: short before, or with an
    // ineligible agent to remove.
    let mut open: BTreeSet<LeadKey> = draft
        .changes
        .iter()
        .filter(|c| c.action == Action::Unassign && c.reason.is_safety())
        .map(|c| c.lead)
        .filter(|l| recent.leads.contains(l))
        .collect();
    open.extend(recent.leads.iter().copied().filter(|&l| {
        prep.lead_index(l)
            .is_some_and(|j| inst.demand[j] as f64 - before.carried[j] > FIGURE_NOISE)
    }));
    let held = draft.deferred.len();
    defer(prep, draft, |c| {
        let guarded = c.reason.is_optimisation()
            && (recent.agents.contains(&c.agent)
                || (recent.leads.contains(&c.lead) && !open.contains(&c.lead)));
        guarded.then(|| FLAP_GUARD.to_string())
    });
    let report = FlapReport {
        agents: recent.agents.len(),
        leads: recent.leads.len(),
        deferred: draft.deferred.len() - held,
    };
    tracing::debug!(
        agents = report.agents,
        leads = report.leads,
        deferred = report.deferred,
        "flap guard"
    );
    report
}

/// The dead band: when the plan gains less than both thresholds, every
/// optimisation move is held back. Returns the gate's explanation.
pub(super) fn dead_band(
    prep: &Prepared,
    cfg: &PlanConfig,
    before: &Evaluation,
    pre_gate: &Evaluation,
    draft: &mut Draft,
) -> Option<String> {
    let shortfall_gain = (before.shortfall - pre_gate.shortfall) as f64;
    let balance_gain = before.peak - pre_gate.peak;
    if shortfall_gain >= cfg.min_shortfall_gain
        || balance_gain >= cfg.min_balance_gain
        || !draft.changes.iter().any(|c| c.reason.is_optimisation())
    {
        return None;
    }
    defer(prep, draft, |c| {
        c.reason.is_optimisation().then(|| "dead band".to_string())
    });
    Some(format!(
        "dead band: shortfall gain {shortfall_gain:.1} < {} records and peak utilisation gain {balance_gain:.3} < {}",
        cfg.min_shortfall_gain, cfg.min_balance_gain
    ))
}

/// Value rank of an optimisation move, most valuable first: shortfall
/// covered (largest flow first), then load balanced (largest gain first),
/// then capacity freed (largest flow first).
fn move_value(c: &Change) -> (u8, f64) {
    match &c.reason {
        Reason::CoversShortfall { .. } => (0, -c.flow),
        Reason::BalancesLoad { before, after, .. } => (1, after - before),
        _ => (2, -c.flow),
    }
}

/// `max_moves_per_run` and `max_moves_per_agent`: keep the most valuable
/// optimisation moves within both caps and defer the rest. Other changes
/// are never held back and do not count. `None` when no cap is set.
pub(super) fn move_caps(prep: &Prepared, cfg: &PlanConfig, draft: &mut Draft) -> Option<CapReport> {
    if cfg.max_moves_per_run == 0 && cfg.max_moves_per_agent == 0 {
        return None;
    }
    draft.changes.sort_by(|a, b| {
        let (ra, va) = move_value(a);
        let (rb, vb) = move_value(b);
        (!a.reason.is_optimisation())
            .cmp(&!b.reason.is_optimisation())
            .reverse()
            .then(ra.cmp(&rb))
            .then(va.total_cmp(&vb))
            .then_with(|| (a.lead, &a.agent).cmp(&(b.lead, &b.agent)))
    });
    let before = draft.deferred.len();
    let mut per_run = 0usize;
    let mut per_agent: BTreeMap<String, usize> = BTreeMap::new();
    defer(prep, draft, |c| {
        if !c.reason.is_optimisation() {
            return None;
        }
        let agent_moves = per_agent.entry(c.agent.0.to_string()).or_default();
        if cfg.max_moves_per_run > 0 && per_run >= cfg.max_moves_per_run {
            return Some("max_moves_per_run".to_string());
        }
        if cfg.max_moves_per_agent > 0 && *agent_moves >= cfg.max_moves_per_agent {
            return Some("max_moves_per_agent".to_string());
        }
        per_run += 1;
        *agent_moves += 1;
        None
    });
    Some(CapReport {
        max_moves_per_run: cfg.max_moves_per_run,
        max_moves_per_agent: cfg.max_moves_per_agent,
        kept: per_run,
        deferred: draft.deferred.len() - before,
    })
}

/// Move the changes `pick` selects into `deferred` (tagged `by`), undoing
/// each in `target`.
fn defer(prep: &Prepared, draft: &mut Draft, mut pick: impl FnMut(&Change) -> Option<String>) {
    let Draft {
        target,
        changes,
        deferred,
        ..
    } = draft;
    let mut kept = Vec::with_capacity(changes.len());
    for c in changes.drain(..) {
        match pick(&c) {
            Some(by) => {
                let j = prep.lead_index(c.lead).expect("changes name known leads");
                let i = prep
                    .agent_index(&c.agent)
                    .expect("changes name known agents");
                match c.action {
                    Action::Assign => target[j].remove(&i),
                    Action::Unassign => target[j].insert(i),
                };
                deferred.push(Deferred {
                    change: c,
                    deferred_by: by,
                });
            }
            None => kept.push(c),
        }
    }
    *changes = kept;
}

/// `max_leads_per_agent`: drop an over-cap agent's least-loaded leads,
/// new ones (never made: deferred) before current ones (unassigned).
/// Pins, frozen agents and frozen leads are never touched.
pub(super) fn apply_lead_cap(prep: &Prepared, flows: &[f64], cap: usize, draft: &mut Draft) {
    let inst = &prep.inst;
    let mut leads_of: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (j, t) in draft.target.iter().enumerate() {
        for &i in t {
            leads_of.entry(i).or_default().push(j);
        }
    }
    let mut pair_flow: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    for (k, p) in inst.pairs.iter().enumerate() {
        pair_flow.insert((p.agent as usize, p.lead as usize), flows[k]);
    }
    let mut drop_new: BTreeSet<(usize, usize)> = BTreeSet::new();
    for (&i, js) in &leads_of {
        if js.len() <= cap || prep.agents[i].standing == Standing::Frozen {
            continue;
        }
        let mut removable: Vec<(bool, f64, usize)> = js
            .iter()
            .filter(|&&j| !prep.leads[j].frozen && !prep.pins.contains(&(i, j)))
            .map(|&j| {
                let is_current = prep.leads[j].current.binary_search(&i).is_ok();
                (
                    is_current,
                    pair_flow.get(&(i, j)).copied().unwrap_or(0.0),
                    j,
                )
            })
            .collect();
        removable.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
        let excess = js.len() - cap;
        for &(is_current, _, j) in removable.iter().take(excess) {
            if is_current {
                draft.target[j].remove(&i);
                draft.changes.push(change(
                    prep,
                    j,
                    i,
                    Action::Unassign,
                    Reason::LeadCap { cap },
                    0.0,
                ));
            } else {
                drop_new.insert((i, j));
            }
        }
    }
    if !drop_new.is_empty() {
        defer(prep, draft, |c| {
            let j = prep.lead_index(c.lead)?;
            let i = prep.agent_index(&c.agent)?;
            (c.action == Action::Assign && drop_new.contains(&(i, j)))
                .then(|| "max_leads_per_agent".to_string())
        });
    }
}

/// `max_unassign_share`: a plan that unassigns more than this share of the
/// current pairs is blocked (an outage upstream looks like mass inactivity).
pub(super) fn blast_radius(
    cfg: &PlanConfig,
    changes: &[Change],
    current_pairs: usize,
) -> Option<Blocked> {
    let unassigns = changes
        .iter()
        .filter(|c| c.action == Action::Unassign)
        .count();
    if unassigns == 0 || unassigns as f64 <= cfg.max_unassign_share * current_pairs as f64 {
        return None;
    }
    Some(Blocked {
        reason: format!(
            "the plan unassigns {unassigns} of {current_pairs} current pairs ({:.0} %), more than plan.max_unassign_share = {} allows; an upstream outage (Webex listing no active users, Zoho counters at their limits) looks like this. Check the snapshot; a person must allow it before it is applied",
            100.0 * unassigns as f64 / current_pairs.max(1) as f64,
            cfg.max_unassign_share
        ),
        unassigns,
        current_pairs,
        max_share: cfg.max_unassign_share,
    })
}

/// What the gates did, for [`assemble`].
pub(super) struct Gates {
    pub(super) gate: Option<String>,
    pub(super) caps: Option<CapReport>,
    pub(super) flap_guard: Option<FlapReport>,
    pub(super) blocked: Option<Blocked>,
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{
        agent, change, config, covers, draft, evaluation, lead, prepared, snapshot, L,
    };
    use super::*;
    use rebalancer_model::AgentId;

    fn inactive() -> Reason {
        Reason::Inactive {
            detail: "gone".into(),
        }
    }

    fn unassigns(n: usize) -> Vec<Change> {
        (0..n)
            .map(|i| change(0, i, Action::Unassign, inactive(), 0.0))
            .collect()
    }

    /// Agent and lead of each deferred change, and what deferred it.
    fn deferred(d: &Draft) -> Vec<(AgentId, LeadKey, &str)> {
        d.deferred
            .iter()
            .map(|d| {
                (
                    d.change.agent.clone(),
                    d.change.lead,
                    d.deferred_by.as_str(),
                )
            })
            .collect()
    }

    fn kept(d: &Draft) -> Vec<(AgentId, LeadKey)> {
        d.changes
            .iter()
            .map(|c| (c.agent.clone(), c.lead))
            .collect()
    }

    #[test]
    fn blast_radius_blocks_above_the_share_and_not_at_it() {
        let cfg = PlanConfig {
            max_unassign_share: 0.25,
            ..PlanConfig::default()
        };
        // 2 of 8 is exactly the share: allowed.
        assert_eq!(blast_radius(&cfg, &unassigns(2), 8), None);
        let blocked = blast_radius(&cfg, &unassigns(3), 8).expect("3 of 8 is above 25 %");
        assert_eq!(
            (blocked.unassigns, blocked.current_pairs, blocked.max_share),
            (3, 8, 0.25)
        );
        assert!(blocked.reason.contains("unassigns 3 of 8"));
        // Assigns never count; no unassign never blocks, even of no pairs.
        let assigns: Vec<Change> = (0..5)
            .map(|i| change(0, i, Action::Assign, covers(1.0), 1.0))
            .collect();
        assert_eq!(blast_radius(&cfg, &assigns, 8), None);
        assert_eq!(blast_radius(&cfg, &[], 0), None);
    }

    /// Agents a0 (assigned to lead 0) and a1, a2; both leads pool all three.
    fn world() -> Prepared {
        let snap = snapshot(&[10, 10, 10], &[L(&[0], &[1, 2]), L(&[], &[0, 1, 2])]);
        prepared(&snap, &config(&[5, 5]))
    }

    #[test]
    fn dead_band_drops_small_optimisation_moves_and_keeps_safety_ones() {
        let prep = world();
        let cfg = PlanConfig::default(); // 1 record, 0.02 peak
        let changes = || {
            vec![
                change(0, 0, Action::Unassign, inactive(), 0.0),
                change(1, 1, Action::Assign, covers(3.0), 3.0),
            ]
        };
        let before = evaluation(10, 0.50, &[5.0, 0.0], &[5.0, 0.0, 0.0]);
        // Gains of 0.9 records and 0.019 peak: both below their thresholds.
        let small = evaluation(10, 0.481, &[5.0, 0.0], &[5.0, 0.0, 0.0]);
        let mut d = draft(&prep, changes());
        let gate = dead_band(&prep, &cfg, &before, &small, &mut d).expect("the gate holds");
        assert!(gate.starts_with("dead band"), "{gate}");
        assert_eq!(kept(&d), [(agent(0), lead(0))]);
        assert_eq!(deferred(&d), [(agent(1), lead(1), "dead band")]);
        assert!(!d.target[1].contains(&1), "the deferred assign is undone");
        assert!(!d.target[0].contains(&0), "the safety unassign stays made");
        // One record gained, or 0.02 of peak: the moves go.
        for enough in [
            evaluation(9, 0.5, &[5.0, 1.0], &[5.0, 1.0, 0.0]),
            evaluation(10, 0.48, &[5.0, 0.0], &[5.0, 0.0, 0.0]),
        ] {
            let mut d = draft(&prep, changes());
            assert_eq!(dead_band(&prep, &cfg, &before, &enough, &mut d), None);
            assert_eq!(d.changes.len(), 2);
            assert!(d.deferred.is_empty());
        }
    }

    #[test]
    fn move_caps_defer_the_lowest_value_moves_first_and_report_counts() {
        let prep = world();
        let balances = Reason::BalancesLoad {
            before: 0.9,
            after: 0.5,
            target: None,
        };
        let frees = Reason::FreesCapacity { for_lead: None };
        let changes = || {
            vec![
                change(1, 2, Action::Assign, frees.clone(), 4.0),
                change(1, 0, Action::Assign, balances.clone(), 1.0),
                change(0, 0, Action::Unassign, inactive(), 0.0),
                change(1, 1, Action::Assign, covers(1.0), 1.0),
                change(0, 2, Action::Assign, covers(2.0), 2.0),
            ]
        };
        let run = PlanConfig {
            max_moves_per_run: 2,
            ..PlanConfig::default()
        };
        let mut d = draft(&prep, changes());
        let report = move_caps(&prep, &run, &mut d).expect("a cap is set");
        assert_eq!((report.kept, report.deferred), (2, 2));
        // Both shortfall moves go (largest flow first), and the safety one.
        let mut went = kept(&d);
        went.sort();
        assert_eq!(
            went,
            [
                (agent(0), lead(0)),
                (agent(1), lead(1)),
                (agent(2), lead(0))
            ]
        );
        assert_eq!(
            deferred(&d),
            [
                (agent(0), lead(1), "max_moves_per_run"),
                (agent(2), lead(1), "max_moves_per_run")
            ]
        );
        assert!(!d.target[1].contains(&0) && !d.target[1].contains(&2));

        // One move per agent: a2's larger shortfall move beats its freeing
        // one; a0 has only its balancing move.
        let per_agent = PlanConfig {
            max_moves_per_agent: 1,
            ..PlanConfig::default()
        };
        let mut d = draft(&prep, changes());
        let report = move_caps(&prep, &per_agent, &mut d).unwrap();
        assert_eq!((report.kept, report.deferred), (3, 1));
        assert_eq!(deferred(&d), [(agent(2), lead(1), "max_moves_per_agent")]);

        // A run cap of 1 keeps the largest shortfall move, never a balancing
        // one before it.
        let one = PlanConfig {
            max_moves_per_run: 1,
            ..PlanConfig::default()
        };
        let mut d = draft(&prep, changes());
        move_caps(&prep, &one, &mut d).unwrap();
        assert!(d
            .changes
            .iter()
            .any(|c| c.agent == agent(2) && c.lead == lead(0)));
        assert_eq!(d.changes.len(), 2);

        // No cap: no report, nothing moves.
        let mut d = draft(&prep, changes());
        assert_eq!(move_caps(&prep, &PlanConfig::default(), &mut d), None);
        assert_eq!(d.changes.len(), 5);
    }

    #[test]
    fn move_value_ranks_shortfall_then_balance_then_freed_capacity() {
        let shortfall = |f| change(0, 0, Action::Assign, covers(f), f);
        let balance = |before, after| {
            change(
                0,
                0,
                Action::Assign,
                Reason::BalancesLoad {
                    before,
                    after,
                    target: None,
                },
                0.0,
            )
        };
        let frees = change(
            0,
            0,
            Action::Assign,
            Reason::FreesCapacity { for_lead: None },
            9.0,
        );
        let rank = |c: &Change| move_value(c);
        assert!(rank(&shortfall(5.0)) < rank(&shortfall(1.0)));
        assert!(rank(&shortfall(0.1)) < rank(&balance(0.9, 0.1)));
        assert!(rank(&balance(0.9, 0.1)) < rank(&balance(0.9, 0.8)));
        assert!(rank(&balance(0.9, 0.9)) < rank(&frees));
    }

    #[test]
    fn flap_guard_holds_back_a_recent_agents_optimisation_move_never_a_safety_unassign() {
        let prep = world();
        let changes = || {
            vec![
                change(0, 0, Action::Unassign, inactive(), 0.0),
                change(1, 0, Action::Assign, covers(2.0), 2.0),
                change(1, 1, Action::Assign, covers(3.0), 3.0),
            ]
        };
        let no_shortfall = evaluation(0, 0.5, &[5.0, 5.0], &[5.0, 0.0, 0.0]);
        let recent = Recent {
            agents: [agent(0)].into(),
            leads: Default::default(),
        };
        let mut d = draft(&prep, changes());
        let report = flap_guard(&prep, &no_shortfall, &recent, &mut d);
        assert_eq!((report.agents, report.leads, report.deferred), (1, 0, 1));
        assert_eq!(deferred(&d), [(agent(0), lead(1), FLAP_GUARD)]);
        assert_eq!(kept(&d), [(agent(0), lead(0)), (agent(1), lead(1))]);
        assert!(!d.target[1].contains(&0), "the held assign is undone");

        // A recent lead with no shortfall and no safety unassign is held…
        let lead1 = Recent {
            agents: Default::default(),
            leads: [lead(1)].into(),
        };
        let mut d = draft(&prep, changes());
        flap_guard(&prep, &no_shortfall, &lead1, &mut d);
        assert_eq!(d.deferred.len(), 2);
        assert_eq!(kept(&d), [(agent(0), lead(0))]);
        // …but not when it was short before the plan.
        let short = evaluation(5, 0.5, &[5.0, 0.0], &[5.0, 0.0, 0.0]);
        let mut d = draft(&prep, changes());
        flap_guard(&prep, &short, &lead1, &mut d);
        assert!(d.deferred.is_empty());
    }

    #[test]
    fn a_recent_lead_with_a_safety_unassign_stays_open() {
        let prep = world();
        let changes = vec![
            change(0, 0, Action::Unassign, inactive(), 0.0),
            change(0, 1, Action::Assign, covers(2.0), 2.0),
        ];
        let no_shortfall = evaluation(0, 0.5, &[5.0, 5.0], &[5.0, 0.0, 0.0]);
        let lead0 = Recent {
            agents: Default::default(),
            leads: [lead(0)].into(),
        };
        let mut d = draft(&prep, changes);
        let report = flap_guard(&prep, &no_shortfall, &lead0, &mut d);
        assert_eq!(report.deferred, 0);
        assert_eq!(d.changes.len(), 2);
    }

    #[test]
    fn lead_cap_defers_new_leads_before_unassigning_current_ones() {
        // a0 is current on leads 0 and 1, and gets lead 2 as new.
        let snap = snapshot(&[10, 10], &[L(&[0], &[1]), L(&[0], &[1]), L(&[], &[0, 1])]);
        let prep = prepared(&snap, &config(&[5, 5, 5]));
        let flow = |lead: usize, f: f64| (0usize, lead, f);
        let flows_of = |wanted: &[(usize, usize, f64)]| -> Vec<f64> {
            prep.inst
                .pairs
                .iter()
                .map(|p| {
                    wanted
                        .iter()
                        .find(|w| (w.0, w.1) == (p.agent as usize, p.lead as usize))
                        .map_or(0.0, |w| w.2)
                })
                .collect()
        };
        let new_assign = || vec![change(2, 0, Action::Assign, covers(5.0), 5.0)];
        // Cap 2: the new lead goes, current ones stay.
        let flows = flows_of(&[flow(0, 1.0), flow(1, 2.0), flow(2, 5.0)]);
        let mut d = draft(&prep, new_assign());
        apply_lead_cap(&prep, &flows, 2, &mut d);
        assert_eq!(deferred(&d), [(agent(0), lead(2), "max_leads_per_agent")]);
        assert!(d.changes.is_empty());
        // Cap 1: then the current lead with the least flow (lead 0) is
        // unassigned for the cap.
        let mut d = draft(&prep, new_assign());
        apply_lead_cap(&prep, &flows, 1, &mut d);
        assert_eq!(d.deferred.len(), 1);
        assert_eq!(kept(&d), [(agent(0), lead(0))]);
        assert_eq!(d.changes[0].reason, Reason::LeadCap { cap: 1 });
        assert_eq!(d.target[0], BTreeSet::new());
        assert_eq!(d.target[1], [0].into());
    }
}
