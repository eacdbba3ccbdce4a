//! From a prepared instance and its optimum to a [`Plan`]: the entry points
//! and the pipeline. [`basis`] prepares the instance, evaluates the current
//! mapping and solves; [`decide`] turns the optimum into a target mapping
//! and its changes, running the [`gates`]; [`assemble`] writes the plan.
//!
//! Target rule: a current assignment of an agent that may stay (eligible or
//! frozen) stays, whatever its flow: an assignment with no planned flow adds
//! no planned load, so removing it would be churn without a reason. A new
//! assignment is made where the optimum puts at least `min_flow` records,
//! or a pin asks for it. Unassignments therefore always carry a stated
//! reason: inactive, at allowance, excluded, or over the per-agent lead cap.
//!
//! Gates: the flap guard, the dead band and the move caps hold back only
//! optimisation moves (covers shortfall, balances load, frees capacity);
//! safety unassigns, pins, lead-cap unassigns and keep-staffed assigns
//! always go and never count against a cap. They run in that order: the
//! flap guard ([`Recent`]: agents moved and leads changed within
//! `run.min_move_interval`) first, so that the dead band judges the gain of
//! what is left and the caps count only moves that may go. Within a cap the
//! most valuable moves go first: shortfall covered (largest flow), then load
//! balanced (largest gain), then capacity freed (largest flow). A plan that
//! unassigns more than `plan.max_unassign_share` of the current pairs is
//! marked blocked.
//!
//! [`build`] runs the phases in order: basis, optimum, decide, assemble.

mod assemble;
mod basis;
mod decide;
#[cfg(test)]
mod fixture;
mod gates;

use crate::config::PlanConfig;
use crate::{OptimizerError, WhatIfs};
use assemble::assemble;
use rebalancer_model::{AgentId, LeadKey, Plan, Snapshot};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

pub(crate) use basis::{Basis, Optimum};
pub(crate) use decide::decide;
pub use gates::FLAP_GUARD;

/// What moved recently (within `run.min_move_interval`), for the flap
/// guard of [`plan_guarded`]. The default is nothing recent: no guard.
/// Agents and leads the snapshot does not know are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recent {
    /// Agents assigned to or unassigned from some lead recently.
    pub agents: BTreeSet<AgentId>,
    /// Leads whose mapping changed recently.
    pub leads: BTreeSet<LeadKey>,
}

impl Recent {
    /// Nothing moved recently.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty() && self.leads.is_empty()
    }
}

/// What planning cost; printed by the CLI, never written into the plan
/// (plans stay byte-identical across runs).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanStats {
    pub solver: String,
    pub pairs: usize,
    pub solve_time: Duration,
    pub total_time: Duration,
    started: Instant,
    /// Max-flow solves the balance stage needed (flow solver only).
    pub balance_iterations: u32,
}

/// Make a plan for `snap` under `cfg`, with no what-ifs.
pub fn plan(snap: &Snapshot, cfg: &PlanConfig) -> Result<(Plan, PlanStats), OptimizerError> {
    plan_with(snap, cfg, &WhatIfs::default())
}

/// Make a plan for `snap` under `cfg` with `what_ifs` laid over both; the
/// plan lists the what-ifs it was made under.
pub fn plan_with(
    snap: &Snapshot,
    cfg: &PlanConfig,
    what_ifs: &WhatIfs,
) -> Result<(Plan, PlanStats), OptimizerError> {
    plan_guarded(snap, cfg, what_ifs, &Recent::default())
}

/// Make a plan as [`plan_with`] does, under the flap guard: an optimisation
/// move (covers shortfall, balances load, frees capacity) is held back
/// (`deferred_by` = [`FLAP_GUARD`]) when it moves an agent of
/// `recent.agents`, or changes a lead of `recent.leads` that had no
/// shortfall before the plan and holds no ineligible agent (no safety
/// unassign). Safety unassigns, pins, lead-cap unassigns and keep-staffed
/// assigns always go. The plan's `flap_guard` reports what the guard did;
/// it is `None` when `recent` is empty (then the plan is `plan_with`'s).
pub fn plan_guarded(
    snap: &Snapshot,
    cfg: &PlanConfig,
    what_ifs: &WhatIfs,
    recent: &Recent,
) -> Result<(Plan, PlanStats), OptimizerError> {
    // Hashing the snapshot (serialising it) is independent of the solve:
    // do it on a second core meanwhile.
    std::thread::scope(|scope| {
        let hash = scope.spawn(|| snap.content_hash());
        let planned = build(snap, cfg, what_ifs, recent);
        let snapshot_hash = hash.join().expect("hashing a snapshot does not panic");
        planned.map(|(mut plan, mut stats)| {
            plan.snapshot_hash = snapshot_hash;
            stats.total_time = stats.started.elapsed();
            (plan, stats)
        })
    })
}

fn build(
    snap: &Snapshot,
    cfg: &PlanConfig,
    what_ifs: &WhatIfs,
    recent: &Recent,
) -> Result<(Plan, PlanStats), OptimizerError> {
    let started = Instant::now();
    let basis = Basis::new(snap, cfg, what_ifs, started)?;
    let solve_started = Instant::now();
    let opt = basis.optimum(cfg, cfg.target_utilisation)?;
    let solve_time = basis.base_time + solve_started.elapsed();
    tracing::debug!(ms = ms(started), "solved");
    let outcome = decide(&basis, cfg, &opt, recent)?;
    let plan = assemble(snap, cfg, &basis, &opt, outcome);
    let stats = PlanStats {
        solver: opt.solver,
        pairs: basis.prep.inst.pairs.len(),
        solve_time,
        total_time: started.elapsed(),
        started,
        balance_iterations: opt.balance_iterations,
    };
    Ok((plan, stats))
}

/// Milliseconds since `t`, for phase logs.
pub(super) fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Round for display fields derived from floats (flows themselves are exact
/// fractions; this keeps JSON short and stable).
pub(super) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round6_rounds_to_six_decimal_places() {
        assert_eq!(round6(1.0 / 3.0), 0.333333);
        assert_eq!(round6(2.0 / 3.0), 0.666667);
        assert_eq!(round6(-0.0000004), 0.0);
        assert_eq!(round6(5.0), 5.0);
    }

    #[test]
    fn recent_is_empty_only_with_no_agent_and_no_lead() {
        assert!(Recent::default().is_empty());
        let agents = Recent {
            agents: [AgentId::new("a")].into(),
            leads: BTreeSet::new(),
        };
        let leads = Recent {
            agents: BTreeSet::new(),
            leads: [LeadKey {
                campaign_id: 1,
                lead_id: 2,
            }]
            .into(),
        };
        assert!(!agents.is_empty() && !leads.is_empty());
    }
}
