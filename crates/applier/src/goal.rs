//! What a run wants of each lead ([`LeadGoal`]), read from a plan, and the
//! drift decision ([`decide`]) made against the lead's live mapping just
//! before its first PUT. Pure functions; no I/O.
//!
//! Drift rules: a fresh apply expects the live mapping to be exactly the
//! plan's snapshot (`leads[].current`). A resume expects it to lie on the
//! way from current to target (it differs from current only by changes the
//! plan itself makes), because the interrupted run may have applied part of
//! the lead. Whatever the rule, a lead with nothing left to do is
//! `Unchanged`, and a drifted lead is skipped (`apply.on_drift = "skip"`) or
//! rebased: only the plan's assigns still missing and unassigns still
//! present are sent, so an agent the plan did not name is never removed.

use std::collections::{BTreeMap, BTreeSet};

use rebalancer_model::{Action, LeadKey, Plan};

use crate::batch::remaining;
use crate::error::ApplyError;
use crate::OnDrift;

/// One lead's part of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadGoal {
    pub lead: LeadKey,
    pub process_id: u64,
    /// The assigned set the plan was made from (the drift reference).
    pub current: BTreeSet<String>,
    /// The assigned set the plan wants.
    pub target: BTreeSet<String>,
    pub assign: BTreeSet<String>,
    pub unassign: BTreeSet<String>,
}

/// How strictly the live mapping must match `current`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftRule {
    /// Live = current (a fresh apply or rollback).
    Exact,
    /// Live differs from current only by the goal's own changes (a resume).
    OnPath,
}

/// What to do with a lead given its live mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing left to do.
    Unchanged,
    /// Send these (before the re-checks).
    Proceed {
        rebased: bool,
        assign: BTreeSet<String>,
        unassign: BTreeSet<String>,
    },
    /// Drifted and `on_drift = skip`: the detail names the difference.
    Drifted(String),
}

/// The decision for one lead.
pub fn decide(
    goal: &LeadGoal,
    live: &BTreeSet<String>,
    rule: DriftRule,
    on_drift: OnDrift,
) -> Decision {
    let (assign, unassign) = remaining(&goal.assign, &goal.unassign, live);
    if assign.is_empty() && unassign.is_empty() {
        return Decision::Unchanged;
    }
    let added: Vec<&String> = live.difference(&goal.current).collect();
    let removed: Vec<&String> = goal.current.difference(live).collect();
    let in_line = match rule {
        DriftRule::Exact => added.is_empty() && removed.is_empty(),
        DriftRule::OnPath => {
            added.iter().all(|a| goal.assign.contains(*a))
                && removed.iter().all(|r| goal.unassign.contains(*r))
        }
    };
    if in_line {
        return Decision::Proceed {
            rebased: false,
            assign,
            unassign,
        };
    }
    match on_drift {
        OnDrift::Skip => Decision::Drifted(format!(
            "the live mapping differs from the plan's snapshot (assigned since: [{}]; removed since: [{}])",
            join(&added),
            join(&removed)
        )),
        OnDrift::Rebase => Decision::Proceed {
            rebased: true,
            assign,
            unassign,
        },
    }
}

fn join(ids: &[&String]) -> String {
    ids.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The goals of the plan's leads that have changes, in lead order. Every
/// lead with a change must be in `plan.leads` (for its process id and
/// snapshot mapping).
pub fn goals_from_plan(plan: &Plan) -> Result<Vec<LeadGoal>, ApplyError> {
    let leads: BTreeMap<LeadKey, &rebalancer_model::LeadPlan> =
        plan.leads.iter().map(|l| (l.lead, l)).collect();
    let mut goals: BTreeMap<LeadKey, LeadGoal> = BTreeMap::new();
    for change in &plan.changes {
        let goal = match goals.get_mut(&change.lead) {
            Some(goal) => goal,
            None => {
                let lp = leads.get(&change.lead).ok_or_else(|| {
                    ApplyError::InvalidPlan(format!(
                        "lead {} has changes but is missing from the plan's leads",
                        change.lead
                    ))
                })?;
                goals.entry(change.lead).or_insert(LeadGoal {
                    lead: change.lead,
                    process_id: lp.process_id,
                    current: lp.current.iter().map(|a| a.0.to_string()).collect(),
                    target: lp.target.iter().map(|a| a.0.to_string()).collect(),
                    assign: BTreeSet::new(),
                    unassign: BTreeSet::new(),
                })
            }
        };
        let agent = change.agent.0.to_string();
        match change.action {
            Action::Assign => goal.assign.insert(agent.clone()),
            Action::Unassign => goal.unassign.insert(agent.clone()),
        };
        if goal.assign.contains(&agent) && goal.unassign.contains(&agent) {
            return Err(ApplyError::InvalidPlan(format!(
                "lead {} both assigns and unassigns {agent}",
                change.lead
            )));
        }
    }
    Ok(goals.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn goal() -> LeadGoal {
        LeadGoal {
            lead: LeadKey {
                campaign_id: 1,
                lead_id: 2,
            },
            process_id: 1,
            current: set(&["a", "b"]),
            target: set(&["b", "c"]),
            assign: set(&["c"]),
            unassign: set(&["a"]),
        }
    }

    #[test]
    fn exact_rule() {
        let g = goal();
        assert!(matches!(
            decide(&g, &set(&["a", "b"]), DriftRule::Exact, OnDrift::Skip),
            Decision::Proceed { rebased: false, .. }
        ));
        assert_eq!(
            decide(&g, &set(&["b", "c"]), DriftRule::Exact, OnDrift::Skip),
            Decision::Unchanged
        );
        // Someone added x: skipped, or rebased without touching x.
        let live = set(&["a", "b", "x"]);
        assert!(matches!(
            decide(&g, &live, DriftRule::Exact, OnDrift::Skip),
            Decision::Drifted(d) if d.contains('x')
        ));
        assert_eq!(
            decide(&g, &live, DriftRule::Exact, OnDrift::Rebase),
            Decision::Proceed {
                rebased: true,
                assign: set(&["c"]),
                unassign: set(&["a"])
            }
        );
        // Half done is drift for a fresh apply, on the way for a resume.
        let half = set(&["a", "b", "c"]);
        assert!(matches!(
            decide(&g, &half, DriftRule::Exact, OnDrift::Skip),
            Decision::Drifted(_)
        ));
        assert_eq!(
            decide(&g, &half, DriftRule::OnPath, OnDrift::Skip),
            Decision::Proceed {
                rebased: false,
                assign: set(&[]),
                unassign: set(&["a"])
            }
        );
    }

    #[test]
    fn rebase_only_sends_what_the_plan_names() {
        let g = goal();
        // b (kept by the plan) was removed by someone, a is gone already.
        assert_eq!(
            decide(&g, &set(&["y"]), DriftRule::Exact, OnDrift::Rebase),
            Decision::Proceed {
                rebased: true,
                assign: set(&["c"]),
                unassign: set(&[])
            }
        );
    }
}
