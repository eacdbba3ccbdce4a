//! The plan put together from the phases' results: sorted changes and
//! deferrals, the summary, objective values (before, after, optimum) and the
//! per-lead and per-agent tables.

use super::basis::{metrics, uncovered, Basis, Evaluation, Optimum};
use super::decide::{Draft, Outcome};
use super::gates::Gates;
use super::round6;
use crate::config::PlanConfig;
use crate::limits::FIGURE_NOISE;
use crate::prepare::Prepared;
use rebalancer_model::{
    Action, AgentId, AgentPlan, Balance, LeadPlan, Metrics, NewPairs, Objectives, Plan, Snapshot,
    Summary, TargetSystem, PLAN_SCHEMA_VERSION,
};
use std::collections::BTreeSet;

/// Put the plan together from the phases' results.
pub(super) fn assemble(
    snap: &Snapshot,
    cfg: &PlanConfig,
    basis: &Basis,
    opt: &Optimum,
    outcome: Outcome,
) -> Plan {
    let prep = &basis.prep;
    let Outcome {
        draft,
        after,
        gates,
    } = outcome;
    let Gates {
        gate,
        caps,
        flap_guard,
        blocked,
    } = gates;
    let Draft {
        target,
        mut changes,
        mut deferred,
        mut notes,
    } = draft;
    changes.sort_by(|a, b| (a.lead, a.action, &a.agent).cmp(&(b.lead, b.action, &b.agent)));
    deferred.sort_by(|a, b| {
        (a.change.lead, a.change.action, &a.change.agent).cmp(&(
            b.change.lead,
            b.change.action,
            &b.change.agent,
        ))
    });
    notes.sort();
    notes.dedup();
    let count = |action: Action| changes.iter().filter(|c| c.action == action).count();
    let summary = Summary {
        agents: snap.agents.iter().filter(|a| a.in_cms).count(),
        leads: prep.leads.len(),
        assigns: count(Action::Assign),
        unassigns: count(Action::Unassign),
        deferred: deferred.len(),
        kept: kept(prep, &target),
    };
    let mut problems = snap.problems.clone();
    problems.sort();
    Plan {
        schema_version: PLAN_SCHEMA_VERSION,
        snapshot_hash: String::new(), // filled in by `plan_with`
        snapshot_fetched_at: snap.fetched_at.clone(),
        config_digest: cfg.digest_with(
            &prep.what_ifs,
            &snap
                .campaigns
                .iter()
                .map(|c| (c.process_id, c.campaign_id))
                .collect::<Vec<_>>(),
        ),
        solver: opt.solver.clone(),
        system: TargetSystem {
            cms_base_url: snap.source.cms_base_url.clone(),
            contact_center_id: snap.source.contact_center_id,
        },
        objectives: objectives(basis, opt, &after),
        summary,
        gate,
        blocked,
        caps,
        flap_guard,
        what_ifs: prep.what_ifs.clone(),
        problems,
        changes,
        deferred,
        leads: lead_plans(prep, &target, &basis.before, &after),
        agents: agent_plans(snap, basis, &target, &after),
        notes,
    }
}

/// Current assignments the target keeps.
fn kept(prep: &Prepared, target: &[BTreeSet<usize>]) -> usize {
    prep.leads
        .iter()
        .zip(target)
        .map(|(lead, target)| {
            target
                .iter()
                .filter(|i| lead.current.binary_search(i).is_ok())
                .count()
        })
        .sum()
}

/// Objective values before, after and at the optimum, with the balance
/// target and the new-pair counts.
fn objectives(basis: &Basis, opt: &Optimum, after: &Evaluation) -> Objectives {
    let inst = &basis.prep.inst;
    Objectives {
        before: metrics(inst, &basis.before),
        after: metrics(inst, after),
        optimum: Metrics {
            shortfall: round6(opt.shortfall),
            peak_utilisation: opt.peak,
            leads_uncovered: uncovered(&inst.demand, &opt.carried),
        },
        churn: round6(opt.churn),
        balance: Balance {
            target: opt.target,
            least_peak: opt.least_peak,
            cap: opt.cap,
        },
        new_pairs: NewPairs {
            least_records: opt.new_pairs_least_records,
            reduced: opt.new_pairs,
        },
    }
}

/// Target assignment and coverage per lead, in lead order.
fn lead_plans(
    prep: &Prepared,
    target: &[BTreeSet<usize>],
    before: &Evaluation,
    after: &Evaluation,
) -> Vec<LeadPlan> {
    let names = |agents: &mut dyn Iterator<Item = usize>| -> Vec<AgentId> {
        agents.map(|i| prep.agents[i].id.clone()).collect()
    };
    prep.leads
        .iter()
        .enumerate()
        .map(|(j, l)| {
            let demand = prep.inst.demand[j] as f64;
            let shortfall = (demand - after.carried[j]).max(0.0);
            LeadPlan {
                lead: l.key,
                process_id: l.process_id,
                demand,
                covered_before: round6(before.carried[j]),
                covered: round6(after.carried[j]),
                shortfall: round6(shortfall),
                target: names(&mut target[j].iter().copied()),
                current: names(&mut l.current.iter().copied()),
                frozen: l.frozen,
                default_assignee: if shortfall > FIGURE_NOISE {
                    prep.default_assignee.clone()
                } else {
                    None
                },
            }
        })
        .collect()
}

/// Planned load and lead counts, before and after, per agent in some lead
/// pool, with the agent's Webex and Zoho names from the snapshot.
fn agent_plans(
    snap: &Snapshot,
    basis: &Basis,
    target: &[BTreeSet<usize>],
    after: &Evaluation,
) -> Vec<AgentPlan> {
    let prep = &basis.prep;
    let mut leads_before = vec![0usize; prep.agents.len()];
    let mut leads_after = vec![0usize; prep.agents.len()];
    for (lead, target) in prep.leads.iter().zip(target) {
        lead.current.iter().for_each(|&i| leads_before[i] += 1);
        target.iter().for_each(|&i| leads_after[i] += 1);
    }
    // Agents in some pool, in index order (a mark per agent: one pass
    // over the pools, which hold every pair).
    let mut in_pool = vec![false; prep.agents.len()];
    for l in &prep.leads {
        l.pool.iter().for_each(|&i| in_pool[i] = true);
    }
    (0..prep.agents.len())
        .filter(|&i| in_pool[i])
        .map(|i| {
            let id = &prep.agents[i].id;
            let known = snap
                .agents
                .binary_search_by(|a| a.id.cmp(id))
                .ok()
                .map(|k| &snap.agents[k]);
            AgentPlan {
                webex_username: known
                    .and_then(|a| a.webex.as_ref())
                    .map(|w| w.username.clone()),
                zoho_user_id: known
                    .and_then(|a| a.zoho.as_ref())
                    .map(|z| z.user_id.clone()),
                agent: id.clone(),
                headroom: prep.agents[i].capacity,
                load_before: round6(basis.before.load[i]),
                load_after: round6(after.load[i]),
                leads_before: leads_before[i],
                leads_after: leads_after[i],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{agent, basis, config, evaluation, lead, snapshot, L};
    use super::*;
    use rebalancer_model::Snapshot;

    /// a0 (headroom 10) carries lead 0 (demand 14), a1 (headroom 10)
    /// carries lead 1 (demand 2) and may help on lead 0.
    fn world() -> (Snapshot, PlanConfig, Basis) {
        let snap = snapshot(&[10, 10], &[L(&[0], &[1]), L(&[1], &[])]);
        let cfg = config(&[14, 2]);
        let basis = basis(&snap, &cfg);
        (snap, cfg, basis)
    }

    /// The target that adds a1 to lead 0.
    fn target() -> Vec<BTreeSet<usize>> {
        vec![[0, 1].into(), [1].into()]
    }

    #[test]
    fn kept_counts_the_current_pairs_the_target_keeps() {
        let (_, _, basis) = world();
        let prep = &basis.prep;
        assert_eq!(kept(prep, &target()), 2);
        assert_eq!(kept(prep, &[[1].into(), [1].into()]), 1);
        assert_eq!(kept(prep, &[[1].into(), BTreeSet::new()]), 0);
    }

    #[test]
    fn objectives_give_before_after_and_the_optimum() {
        let (_, cfg, basis) = world();
        let opt = basis.optimum(&cfg, cfg.target_utilisation).unwrap();
        let after = evaluation(0, 0.8, &[14.0, 2.0], &[8.0, 8.0]);
        let o = objectives(&basis, &opt, &after);
        let m = |shortfall, peak_utilisation, leads_uncovered| Metrics {
            shortfall,
            peak_utilisation,
            leads_uncovered,
        };
        assert_eq!(o.before, m(4.0, 1.0, 1));
        assert_eq!(o.after, m(0.0, 0.8, 0));
        // At the 0.9 target a0 keeps 9 records and a1 takes 5 new ones.
        assert_eq!(o.optimum, m(0.0, 0.9, 0));
        assert_eq!(o.churn, 5.0);
        assert_eq!(
            o.balance,
            Balance {
                target: Some(0.9),
                least_peak: 0.8,
                cap: 0.9
            }
        );
        assert_eq!(
            o.new_pairs,
            NewPairs {
                least_records: 1,
                reduced: 1
            }
        );
    }

    #[test]
    fn lead_plans_give_coverage_and_the_default_assignee_only_when_short() {
        let (_, _, mut basis) = world();
        basis.prep.default_assignee = Some(agent(1));
        let after = evaluation(2, 1.0, &[11.5, 2.0], &[10.0, 3.5]);
        let plans = lead_plans(&basis.prep, &target(), &basis.before, &after);
        let l0 = &plans[0];
        assert_eq!((l0.lead, l0.process_id, l0.frozen), (lead(0), 1, false));
        assert_eq!((l0.demand, l0.covered, l0.shortfall), (14.0, 11.5, 2.5));
        assert_eq!(l0.target, [agent(0), agent(1)]);
        assert_eq!(l0.current, [agent(0)]);
        assert_eq!(l0.default_assignee, Some(agent(1)));
        let l1 = &plans[1];
        assert_eq!((l1.demand, l1.covered, l1.shortfall), (2.0, 2.0, 0.0));
        assert_eq!(
            (l1.target.clone(), l1.current.clone()),
            (vec![agent(1)], vec![agent(1)])
        );
        assert_eq!(l1.default_assignee, None, "a covered lead needs none");
    }

    #[test]
    fn agent_plans_give_loads_and_lead_counts_before_and_after() {
        let (snap, _, basis) = world();
        let after = evaluation(0, 0.8, &[14.0, 2.0], &[8.0, 8.0]);
        let plans = agent_plans(&snap, &basis, &target(), &after);
        let rows: Vec<_> = plans
            .iter()
            .map(|a| {
                (
                    a.agent.clone(),
                    a.webex_username.clone().unwrap(),
                    a.headroom,
                    (a.load_before, a.load_after),
                    (a.leads_before, a.leads_after),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (agent(0), "w0".to_string(), 10, (10.0, 8.0), (1, 1)),
                (agent(1), "w1".to_string(), 10, (2.0, 8.0), (1, 2)),
            ]
        );
    }
}
