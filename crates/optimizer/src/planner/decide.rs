//! From the optimum to the target mapping: safety unassigns, pins,
//! optimisation assigns with their reasons, the lead cap, keep-staffed, then
//! the gates in order ([`decide`]). The [`Draft`] is the plan being built.

use super::basis::{evaluate, restricted, Basis, Evaluation, Optimum};
use super::gates::{apply_lead_cap, blast_radius, dead_band, flap_guard, move_caps, Gates};
use super::{round6, Recent};
use crate::config::PlanConfig;
use crate::limits::{FIGURE_NOISE, FLOW_SLACK};
use crate::prepare::{Prepared, Standing};
use crate::stages::Instance;
use crate::OptimizerError;
use rebalancer_model::{Action, Change, Deferred, Reason};
use std::collections::BTreeSet;

/// The plan being built: target mapping, changes, deferrals, notes.
pub(crate) struct Draft {
    pub(super) target: Vec<BTreeSet<usize>>,
    pub(crate) changes: Vec<Change>,
    pub(super) deferred: Vec<Deferred>,
    pub(super) notes: Vec<String>,
}

impl Draft {
    /// The current mapping as the target, no changes yet, the prepared
    /// instance's notes.
    pub(super) fn new(prep: &Prepared) -> Draft {
        Draft {
            target: prep
                .leads
                .iter()
                .map(|l| l.current.iter().copied().collect())
                .collect(),
            changes: Vec::new(),
            deferred: Vec::new(),
            notes: prep.notes.clone(),
        }
    }
}

/// The target mapping after every phase and gate, and its evaluation.
pub(crate) struct Outcome {
    pub(crate) draft: Draft,
    pub(crate) after: Evaluation,
    pub(super) gates: Gates,
}

/// From the optimum to the target mapping: every phase and gate in order.
pub(crate) fn decide(
    basis: &Basis,
    cfg: &PlanConfig,
    opt: &Optimum,
    recent: &Recent,
) -> Result<Outcome, OptimizerError> {
    let (prep, before) = (&basis.prep, &basis.before);
    let inst = &prep.inst;
    let mut draft = Draft::new(prep);
    safety_unassigns(prep, &mut draft);
    pin_assigns(prep, opt, &mut draft);
    optimisation_assigns(prep, cfg, opt, before, &mut draft);
    if cfg.max_leads_per_agent > 0 {
        apply_lead_cap(prep, &opt.flows, cfg.max_leads_per_agent, &mut draft);
    }
    keep_leads_staffed(prep, &opt.load, &mut draft);

    // When the target carries every pair of the exact optimum, the optimum
    // itself is the target's evaluation (same shortfall and peak, and the
    // per-lead figures match the "optimum" column); otherwise solve again.
    let exact_optimum = opt.as_evaluation();
    let evaluate_target = |target: &[BTreeSet<usize>]| -> Result<Evaluation, OptimizerError> {
        let supported = inst
            .pairs
            .iter()
            .zip(&opt.flows)
            .all(|(p, &f)| f <= 0.0 || target[p.lead as usize].contains(&(p.agent as usize)));
        match &exact_optimum {
            Some(o) if supported => Ok(o.clone()),
            _ => evaluate(&restricted(prep, target)),
        }
    };
    // The flap guard first: the dead band then judges the gain of what is
    // left, and the caps count only moves that may go.
    let flap_guard = (!recent.is_empty()).then(|| flap_guard(prep, before, recent, &mut draft));
    if flap_guard.as_ref().is_some_and(|f| f.deferred > 0) {
        // A lead whose new agents were all held back keeps one.
        keep_leads_staffed(prep, &opt.load, &mut draft);
    }
    let pre_gate = evaluate_target(&draft.target)?;

    let deferred_before_gates = draft.deferred.len();
    let gate = dead_band(prep, cfg, before, &pre_gate, &mut draft);
    let caps = move_caps(prep, cfg, &mut draft);
    let after = if draft.deferred.len() == deferred_before_gates {
        pre_gate
    } else {
        // A lead whose new agents were all held back keeps one.
        keep_leads_staffed(prep, &opt.load, &mut draft);
        evaluate_target(&draft.target)?
    };
    if let Some(c) = &caps {
        if c.deferred > 0
            && after.shortfall >= before.shortfall
            && after.peak + FIGURE_NOISE >= before.peak
        {
            draft.notes.push(format!(
                "the move caps (plan.max_moves_per_run = {}, plan.max_moves_per_agent = {}) held back {} optimisation moves and the plan improves neither shortfall ({}) nor peak utilisation ({:.3}); raise the caps or apply as is to make the safety changes only",
                c.max_moves_per_run, c.max_moves_per_agent, c.deferred, before.shortfall, before.peak
            ));
        }
    }
    let current_pairs = prep.leads.iter().map(|l| l.current.len()).sum();
    let blocked = blast_radius(cfg, &draft.changes, current_pairs);
    Ok(Outcome {
        draft,
        after,
        gates: Gates {
            gate,
            caps,
            flap_guard,
            blocked,
        },
    })
}

/// Unassign every current pair whose agent may not stay: inactive, at
/// allowance, excluded (agent or pair). Frozen agents and leads stay.
fn safety_unassigns(prep: &Prepared, draft: &mut Draft) {
    for (j, lead) in prep.leads.iter().enumerate() {
        if lead.frozen {
            continue;
        }
        for &i in &lead.current {
            let reason = match &prep.agents[i].standing {
                Standing::Ineligible(r) => Some(r.clone()),
                // A frozen agent's assignments stay exactly as they are.
                Standing::Frozen => None,
                Standing::Eligible if prep.excluded_pairs.contains(&(i, j)) => {
                    Some(Reason::Excluded)
                }
                Standing::Eligible => None,
            };
            if let Some(reason) = reason {
                draft.target[j].remove(&i);
                draft
                    .changes
                    .push(change(prep, j, i, Action::Unassign, reason, 0.0));
            }
        }
    }
}

/// Assign every pin not already in the mapping.
fn pin_assigns(prep: &Prepared, opt: &Optimum, draft: &mut Draft) {
    for &(i, j) in &prep.pins {
        if draft.target[j].insert(i) {
            let f = flow_of(&prep.inst, &opt.flows, i, j);
            draft
                .changes
                .push(change(prep, j, i, Action::Assign, Reason::Pinned, f));
        }
    }
}

/// Assign every new pair the optimum routes at least `min_flow` over, with
/// the reason: covers shortfall, balances load, or frees capacity.
fn optimisation_assigns(
    prep: &Prepared,
    cfg: &PlanConfig,
    opt: &Optimum,
    before: &Evaluation,
    draft: &mut Draft,
) {
    let inst = &prep.inst;
    let utilisation = |load: f64, i: usize| {
        let c = prep.agents[i].capacity;
        if c > 0 {
            load / c as f64
        } else {
            0.0
        }
    };
    let mut optimum_leads = None;
    for (k, p) in inst.pairs.iter().enumerate() {
        let (i, j) = (p.agent as usize, p.lead as usize);
        if opt.flows[k] + FLOW_SLACK < cfg.min_flow
            || draft.target[j].contains(&i)
            || prep.leads[j].frozen
        {
            continue;
        }
        let short_before = inst.demand[j] as f64 - before.carried[j];
        let reason = if short_before > FIGURE_NOISE {
            Reason::CoversShortfall {
                shortfall_before: round6(short_before),
            }
        } else {
            // Peak utilisation of the lead's current agents, before → after.
            let peak = |load: &[f64]| {
                prep.leads[j]
                    .current
                    .iter()
                    .map(|&a| utilisation(load[a], a))
                    .fold(0.0, f64::max)
            };
            let (was, now) = (peak(&before.load), peak(&opt.load));
            if now + FIGURE_NOISE < was {
                Reason::BalancesLoad {
                    before: round6(was),
                    after: round6(now),
                    target: opt.target,
                }
            } else {
                Reason::FreesCapacity {
                    for_lead: freed_for(prep, opt, before, &mut optimum_leads, j),
                }
            }
        };
        draft.target[j].insert(i);
        draft
            .changes
            .push(change(prep, j, i, Action::Assign, reason, opt.flows[k]));
    }
}

/// For each agent, the leads it carries records on at the optimum.
type OptimumLeads = Vec<Vec<usize>>;

/// The short lead that an assign to lead `j` frees capacity for: among the
/// leads that `j`'s current agents carry at the optimum and that were short
/// before, the one whose coverage grows most (ties: the first lead). The
/// per-agent index is built on first use: most plans never need it.
fn freed_for(
    prep: &Prepared,
    opt: &Optimum,
    before: &Evaluation,
    index: &mut Option<OptimumLeads>,
    j: usize,
) -> Option<rebalancer_model::LeadKey> {
    let inst = &prep.inst;
    let index = index.get_or_insert_with(|| {
        let mut leads = vec![Vec::new(); inst.capacity.len()];
        for (k, p) in inst.pairs.iter().enumerate() {
            if opt.flows[k] > FIGURE_NOISE {
                leads[p.agent as usize].push(p.lead as usize);
            }
        }
        leads
    });
    let short_before = |l: usize| inst.demand[l] as f64 - before.carried[l] > FIGURE_NOISE;
    let gain = |l: usize| opt.carried[l] - before.carried[l];
    prep.leads[j]
        .current
        .iter()
        .flat_map(|&a| index[a].iter().copied())
        .filter(|&l| l != j && short_before(l) && gain(l) > FIGURE_NOISE)
        .max_by(|&a, &b| gain(a).total_cmp(&gain(b)).then(b.cmp(&a)))
        .map(|l| prep.leads[l].key)
}

pub(super) fn change(
    prep: &Prepared,
    j: usize,
    i: usize,
    action: Action,
    reason: Reason,
    flow: f64,
) -> Change {
    Change {
        lead: prep.leads[j].key,
        agent: prep.agents[i].id.clone(),
        action,
        reason,
        flow: round6(flow),
    }
}

fn flow_of(inst: &Instance, flows: &[f64], i: usize, j: usize) -> f64 {
    inst.pairs
        .iter()
        .position(|p| p.agent as usize == i && p.lead as usize == j)
        .map(|k| flows[k])
        .unwrap_or(0.0)
}

/// A lead that had agents and would have none keeps (or gets) one eligible
/// agent from its pool: the one with the most spare planned capacity. When
/// its pool has none, the plan says so.
fn keep_leads_staffed(prep: &Prepared, load: &[f64], draft: &mut Draft) {
    for (j, lead) in prep.leads.iter().enumerate() {
        if lead.frozen || lead.current.is_empty() || !draft.target[j].is_empty() {
            continue;
        }
        let best = lead
            .pool
            .iter()
            .copied()
            .filter(|&i| {
                prep.agents[i].standing == Standing::Eligible
                    && prep.agents[i].capacity > 0
                    && !prep.excluded_pairs.contains(&(i, j))
            })
            .max_by(|&a, &b| {
                let spare = |i: usize| prep.agents[i].capacity as f64 - load[i];
                spare(a).total_cmp(&spare(b)).then(b.cmp(&a))
            });
        match best {
            Some(i) => {
                draft.target[j].insert(i);
                draft.changes.push(change(
                    prep,
                    j,
                    i,
                    Action::Assign,
                    Reason::KeepsLeadStaffed,
                    0.0,
                ));
            }
            None => draft.notes.push(format!(
                "lead {} loses all {} of its agents: every one must go (inactive, at allowance or excluded) and its pool has no eligible agent",
                lead.key,
                lead.current.len()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{agent, basis, config, lead, prepared, snapshot, L};
    use super::*;
    use crate::config::TargetUtilisation;

    #[test]
    fn keep_leads_staffed_never_leaves_a_staffed_lead_empty() {
        // a0 is leaving; lead 0 can take a1 (spare 2) or a2 (spare 5),
        // lead 1 never had anyone, lead 3's pool has no one else.
        let snap = snapshot(
            &[10, 10, 5],
            &[L(&[0], &[1, 2]), L(&[], &[1]), L(&[1], &[]), L(&[0], &[])],
        );
        let mut prep = prepared(&snap, &config(&[1, 1, 1, 1]));
        prep.agents[0].standing = Standing::Ineligible(Reason::Excluded);
        prep.agents[0].capacity = 0;
        let mut d = Draft::new(&prep);
        safety_unassigns(&prep, &mut d);
        assert!(d.target[0].is_empty() && d.target[3].is_empty());
        keep_leads_staffed(&prep, &[0.0, 8.0, 0.0], &mut d);
        assert_eq!(d.target[0], [2].into(), "the most spare capacity");
        assert!(d.target[1].is_empty(), "a lead never staffed stays empty");
        assert_eq!(d.target[2], [1].into());
        let staffing: Vec<_> = d
            .changes
            .iter()
            .filter(|c| c.reason == Reason::KeepsLeadStaffed)
            .map(|c| (c.agent.clone(), c.lead, c.action))
            .collect();
        assert_eq!(staffing, [(agent(2), lead(0), Action::Assign)]);
        // Lead 3 cannot be staffed: the plan says so.
        assert!(
            d.notes
                .iter()
                .any(|n| n.starts_with("lead 7/3 loses all 1")),
            "{:?}",
            d.notes
        );
        for (j, l) in prep.leads.iter().enumerate() {
            let said = d.notes.iter().any(|n| n.contains(&l.key.to_string()));
            assert!(l.current.is_empty() || !d.target[j].is_empty() || said);
        }
    }

    #[test]
    fn safety_unassigns_remove_ineligible_and_excluded_pairs_but_not_frozen_ones() {
        let snap = snapshot(&[10, 10, 10], &[L(&[0, 1, 2], &[]), L(&[0], &[])]);
        let mut prep = prepared(&snap, &config(&[1, 1]));
        let inactive = Reason::Inactive {
            detail: "gone".into(),
        };
        prep.agents[0].standing = Standing::Ineligible(inactive.clone());
        prep.agents[1].standing = Standing::Frozen;
        prep.excluded_pairs.insert((2, 0));
        prep.leads[1].frozen = true;
        let mut d = Draft::new(&prep);
        safety_unassigns(&prep, &mut d);
        let made: Vec<_> = d
            .changes
            .iter()
            .map(|c| (c.agent.clone(), c.lead, c.action, c.reason.clone()))
            .collect();
        assert_eq!(
            made,
            [
                (agent(0), lead(0), Action::Unassign, inactive),
                (agent(2), lead(0), Action::Unassign, Reason::Excluded),
            ]
        );
        assert_eq!(d.target[0], [1].into());
        assert_eq!(d.target[1], [0].into(), "a frozen lead keeps its mapping");
    }

    #[test]
    fn decide_assigns_where_the_optimum_covers_shortfall() {
        // a0 alone carries lead 0 (demand 14, headroom 10); a1 carries lead
        // 2 records of lead 1 and may help on lead 0.
        let snap = snapshot(&[10, 10], &[L(&[0], &[1]), L(&[1], &[])]);
        let cfg = config(&[14, 2]);
        let basis = basis(&snap, &cfg);
        assert_eq!(basis.before.shortfall, 4);
        let opt = basis.optimum(&cfg, cfg.target_utilisation).unwrap();
        let outcome = decide(&basis, &cfg, &opt, &Recent::default()).unwrap();
        let c = &outcome.draft.changes;
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!((c[0].agent.clone(), c[0].lead), (agent(1), lead(0)));
        assert_eq!(
            c[0].reason,
            Reason::CoversShortfall {
                shortfall_before: 4.0
            }
        );
        // At the 0.9 target a0 keeps 9 records: a1 takes 5.
        assert_eq!(c[0].flow, 5.0);
        assert_eq!(outcome.after.shortfall, 0);
        assert_eq!(outcome.draft.target[0], [0, 1].into());
        assert!(outcome.gates.gate.is_none() && outcome.gates.blocked.is_none());
    }

    #[test]
    fn an_assign_that_lowers_the_current_agents_peak_balances_load() {
        let snap = snapshot(&[10, 10], &[L(&[0], &[1])]);
        let cfg = PlanConfig {
            target_utilisation: TargetUtilisation::Optimal,
            ..config(&[8])
        };
        let basis = basis(&snap, &cfg);
        let opt = basis.optimum(&cfg, cfg.target_utilisation).unwrap();
        let outcome = decide(&basis, &cfg, &opt, &Recent::default()).unwrap();
        let c = &outcome.draft.changes;
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            c[0].reason,
            Reason::BalancesLoad {
                before: 0.8,
                after: 0.4,
                target: None
            }
        );
        assert_eq!(c[0].flow, 4.0);
        assert_eq!(outcome.after.peak, 0.4);
    }

    #[test]
    fn change_rounds_its_flow_and_flow_of_is_zero_off_the_pairs() {
        let snap = snapshot(&[10, 10], &[L(&[0], &[]), L(&[], &[1])]);
        let prep = prepared(&snap, &config(&[1, 1]));
        let c = change(&prep, 1, 1, Action::Assign, Reason::Pinned, 1.0 / 3.0);
        assert_eq!((c.agent, c.lead, c.flow), (agent(1), lead(1), 0.333333));
        let flows: Vec<f64> = (1..=prep.inst.pairs.len()).map(|k| k as f64).collect();
        let k = prep
            .inst
            .pairs
            .iter()
            .position(|p| (p.agent, p.lead) == (1, 1))
            .unwrap();
        assert_eq!(flow_of(&prep.inst, &flows, 1, 1), flows[k]);
        assert_eq!(
            flow_of(&prep.inst, &flows, 1, 0),
            0.0,
            "a1 is not in lead 0's pool"
        );
    }
}
