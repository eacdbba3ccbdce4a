//! From a prepared instance and its optimum to a [`Plan`]: target mapping,
//! reasons, lead-cap and keep-staffed rules, dead band and move caps, and
//! the before/after objective values.
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
//! [`build`] runs the phases in order; each is a function below.

use crate::config::{PlanConfig, SolverChoice, TargetUtilisation};
use crate::limits::{FIGURE_NOISE, FLOW_SLACK, SHORT};
use crate::lp::{solve_lp_at, LpBackend};
use crate::prepare::{prepare, Prepared, Standing};
use crate::stages::{Base, Instance, Pair, Stages};
use crate::{OptimizerError, WhatIfs};
use rebalancer_model::{
    Action, AgentId, AgentPlan, Balance, Blocked, CapReport, Change, Deferred, FlapReport, LeadKey,
    LeadPlan, Metrics, NewPairs, Objectives, Plan, Reason, Snapshot, Summary, TargetSystem,
    PLAN_SCHEMA_VERSION,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Beyond this many pairs microlp takes minutes (measured: 8.9 s at 20,000
/// pairs, no answer at 100,000); the plan warns before starting it.
const MICROLP_COMFORT_PAIRS: usize = 20_000;

/// `deferred_by` of the changes the flap guard holds back.
pub const FLAP_GUARD: &str = "flap guard (run.min_move_interval)";

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

/// Flows and metrics of one mapping, solved exactly.
#[derive(Clone)]
pub(crate) struct Evaluation {
    pub(crate) shortfall: i64,
    pub(crate) peak: f64,
    /// Records carried per lead.
    carried: Vec<f64>,
    /// Planned load per agent.
    load: Vec<f64>,
}

/// Stages 1 and 2 on a mapping, with loads from a flow that reaches the
/// optimum (stage 3 is not needed for loads and coverage).
fn evaluate(inst: &Instance) -> Result<Evaluation, OptimizerError> {
    let stages = Stages::new(inst);
    let (carried_total, peak, _, flows) = stages
        .shortfall_and_balance()
        .map_err(|_| OptimizerError::Overflow)?;
    let mut carried = vec![0.0; inst.demand.len()];
    let mut load = vec![0.0; inst.capacity.len()];
    for (p, &f) in inst.pairs.iter().zip(&flows) {
        let f = f as f64 / peak.den as f64;
        carried[p.lead as usize] += f;
        load[p.agent as usize] += f;
    }
    // Demand is bounded by prepare (MAX_TOTAL_RECORDS): the sum fits.
    let demand: i64 = inst.demand.iter().sum();
    Ok(Evaluation {
        shortfall: demand - carried_total,
        peak: peak.to_f64(),
        carried,
        load,
    })
}

fn metrics(inst: &Instance, e: &Evaluation) -> Metrics {
    Metrics {
        shortfall: e.shortfall as f64,
        peak_utilisation: e.peak,
        leads_uncovered: uncovered(&inst.demand, &e.carried),
    }
}

/// Leads missing more than [`SHORT`] records.
fn uncovered(demand: &[i64], carried: &[f64]) -> usize {
    demand
        .iter()
        .zip(carried)
        .filter(|(&d, &c)| (d as f64) - c > SHORT)
        .count()
}

/// The instance restricted to a mapping (lead → agents).
fn restricted(prep: &Prepared, mapping: &[BTreeSet<usize>]) -> Instance {
    restricted_to(prep, |j, i| mapping[j].contains(&i))
}

/// The instance restricted to the current mapping (pins not included).
fn restricted_to_current(prep: &Prepared) -> Instance {
    restricted_to(prep, |j, i| prep.leads[j].current.binary_search(&i).is_ok())
}

/// The instance restricted to the pairs `(lead, agent)` that `keep` accepts.
fn restricted_to(prep: &Prepared, keep: impl Fn(usize, usize) -> bool) -> Instance {
    let pairs = prep
        .inst
        .pairs
        .iter()
        .filter(|p| keep(p.lead as usize, p.agent as usize))
        .map(|p| Pair {
            current: true,
            ..*p
        })
        .collect();
    Instance {
        capacity: prep.inst.capacity.clone(),
        demand: prep.inst.demand.clone(),
        pairs,
    }
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

/// The solver's optimum on the whole instance, under one utilisation target.
pub(crate) struct Optimum {
    solver: String,
    /// Flow per pair (records), in `Instance::pairs` order.
    flows: Vec<f64>,
    shortfall: f64,
    /// The highest utilisation the optimum's flows reach (at most `cap`).
    peak: f64,
    /// `u*` and the cap stage 3 worked under, `max(u*, target)`.
    pub(crate) least_peak: f64,
    pub(crate) cap: f64,
    /// The target, when the plan has one (`None`: "optimal").
    target: Option<f64>,
    /// Stage 3: least flow on pairs outside the current mapping.
    churn: f64,
    /// New pairs with flow at stage 3's optimum, and after the reduction.
    new_pairs_least_records: usize,
    pub(crate) new_pairs: usize,
    balance_iterations: u32,
    /// Records carried per lead / planned load per agent.
    carried: Vec<f64>,
    load: Vec<f64>,
}

impl Optimum {
    /// The target mapping's evaluation when it is the optimum's own: the
    /// mapping carries every pair the optimum uses and the optimum's peak is
    /// the least one (then no mapping with those pairs balances better).
    fn as_evaluation(&self) -> Option<Evaluation> {
        (self.solver == "flow" && self.cap <= self.least_peak).then(|| Evaluation {
            shortfall: self.shortfall as i64,
            peak: self.peak,
            carried: self.carried.clone(),
            load: self.load.clone(),
        })
    }
}

/// Stages 1 and 2 of the flow solver, shared by every target of a ladder.
fn flow_base(inst: &Instance, cfg: &PlanConfig) -> Result<Option<Base>, OptimizerError> {
    match cfg.solver {
        SolverChoice::Flow => Stages::new(inst)
            .base()
            .map(Some)
            .map_err(|_| OptimizerError::Overflow),
        SolverChoice::Lp => Ok(None),
    }
}

fn solve(
    inst: &Instance,
    cfg: &PlanConfig,
    base: Option<&Base>,
    target: TargetUtilisation,
) -> Result<Optimum, OptimizerError> {
    let (solver, flows, shortfall, least_peak, cap, churn, counts, balance_iterations) = match base
    {
        Some(base) => {
            let sol = Stages::new(inst)
                .at(base, target.ratio())
                .map_err(|_| OptimizerError::Overflow)?;
            let flows: Vec<f64> = (0..inst.pairs.len()).map(|k| sol.flow(k)).collect();
            let churn = sol.new_pair_flow_scaled as f64 / sol.peak.den as f64;
            (
                "flow".to_string(),
                flows,
                sol.shortfall as f64,
                sol.least_peak.to_f64(),
                sol.peak.to_f64(),
                churn,
                Some((sol.new_pairs_least_records, sol.new_pairs)),
                sol.balance_iterations,
            )
        }
        None => {
            let backend = LpBackend::parse(&cfg.lp_backend).ok_or_else(|| {
                let names: Vec<&str> = LpBackend::available().iter().map(|b| b.name()).collect();
                OptimizerError::UnknownBackend(cfg.lp_backend.clone(), names.join(", "))
            })?;
            if backend == LpBackend::Microlp && inst.pairs.len() > MICROLP_COMFORT_PAIRS {
                tracing::warn!(
                        pairs = inst.pairs.len(),
                        "microlp is slow beyond {MICROLP_COMFORT_PAIRS} pairs (minutes or more); the default flow solver gives the same optimum in well under a second"
                    );
            }
            let sol = solve_lp_at(inst, backend, target.value())?;
            let name = format!("lp-{}", backend.name());
            (
                name,
                sol.flows,
                sol.shortfall,
                sol.peak,
                sol.cap,
                sol.new_pair_flow,
                None,
                0,
            )
        }
    };
    let mut carried = vec![0.0; inst.demand.len()];
    let mut load = vec![0.0; inst.capacity.len()];
    for (k, p) in inst.pairs.iter().enumerate() {
        carried[p.lead as usize] += flows[k];
        load[p.agent as usize] += flows[k];
    }
    let used_new = || {
        inst.pairs
            .iter()
            .zip(&flows)
            .filter(|(p, &f)| !p.current && f > FIGURE_NOISE)
            .count()
    };
    let (new_pairs_least_records, new_pairs) = counts.unwrap_or_else(|| (used_new(), used_new()));
    let peak = load
        .iter()
        .zip(&inst.capacity)
        .filter(|(_, &h)| h > 0)
        .map(|(&l, &h)| l / h as f64)
        .fold(0.0, f64::max);
    Ok(Optimum {
        solver,
        flows,
        shortfall,
        peak,
        least_peak,
        cap,
        target: target.value(),
        churn,
        new_pairs_least_records,
        new_pairs,
        balance_iterations,
        carried,
        load,
    })
}

/// The plan being built: target mapping, changes, deferrals, notes.
pub(crate) struct Draft {
    target: Vec<BTreeSet<usize>>,
    pub(crate) changes: Vec<Change>,
    deferred: Vec<Deferred>,
    notes: Vec<String>,
}

/// What every utilisation target shares: the prepared instance, stages 1
/// and 2 of the flow solver, and the evaluation of the current mapping.
pub(crate) struct Basis {
    pub(crate) prep: Prepared,
    pub(crate) base: Option<Base>,
    pub(crate) before: Evaluation,
    /// Time spent in stages 1 and 2.
    base_time: Duration,
}

impl Basis {
    pub(crate) fn new(
        snap: &Snapshot,
        cfg: &PlanConfig,
        what_ifs: &WhatIfs,
        started: Instant,
    ) -> Result<Basis, OptimizerError> {
        let prep = prepare(snap, cfg, what_ifs)?;
        tracing::debug!(ms = ms(started), pairs = prep.inst.pairs.len(), "prepared");
        // Stages 1 and 2 and the evaluation of the current mapping are
        // independent: solve them on two cores.
        let base_started = Instant::now();
        let (base, before) = std::thread::scope(|scope| {
            // Before: what the current mapping can carry at best.
            let before = scope.spawn(|| evaluate(&restricted_to_current(&prep)));
            let base = flow_base(&prep.inst, cfg);
            let before = before.join().expect("evaluating a mapping does not panic");
            (base, before)
        });
        let (base, before) = (base?, before?);
        let base_time = base_started.elapsed();
        tracing::debug!(
            ms = ms(started),
            "stages 1 and 2 solved, current mapping evaluated"
        );
        Ok(Basis {
            prep,
            base,
            before,
            base_time,
        })
    }

    pub(crate) fn optimum(
        &self,
        cfg: &PlanConfig,
        target: TargetUtilisation,
    ) -> Result<Optimum, OptimizerError> {
        solve(&self.prep.inst, cfg, self.base.as_ref(), target)
    }
}

/// The target mapping after every phase and gate, and its evaluation.
pub(crate) struct Outcome {
    pub(crate) draft: Draft,
    pub(crate) after: Evaluation,
    gates: Gates,
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

/// From the optimum to the target mapping: every phase and gate in order.
pub(crate) fn decide(
    basis: &Basis,
    cfg: &PlanConfig,
    opt: &Optimum,
    recent: &Recent,
) -> Result<Outcome, OptimizerError> {
    let (prep, before) = (&basis.prep, &basis.before);
    let inst = &prep.inst;
    let mut draft = Draft {
        target: prep
            .leads
            .iter()
            .map(|l| l.current.iter().copied().collect())
            .collect(),
        changes: Vec::new(),
        deferred: Vec::new(),
        notes: prep.notes.clone(),
    };
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

/// The flap guard: hold back every optimisation move that moves a recent
/// agent, or changes a recent lead that had no shortfall before the plan
/// and holds no ineligible agent (a lead with a safety unassign). Other
/// changes always go.
fn flap_guard(
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
fn dead_band(
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
fn move_caps(prep: &Prepared, cfg: &PlanConfig, draft: &mut Draft) -> Option<CapReport> {
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

/// `max_unassign_share`: a plan that unassigns more than this share of the
/// current pairs is blocked (an outage upstream looks like mass inactivity).
fn blast_radius(cfg: &PlanConfig, changes: &[Change], current_pairs: usize) -> Option<Blocked> {
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
struct Gates {
    gate: Option<String>,
    caps: Option<CapReport>,
    flap_guard: Option<FlapReport>,
    blocked: Option<Blocked>,
}

/// Put the plan together from the phases' results.
fn assemble(
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
        leads: lead_plans(prep, &target, &after),
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
fn lead_plans(prep: &Prepared, target: &[BTreeSet<usize>], after: &Evaluation) -> Vec<LeadPlan> {
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

/// Milliseconds since `t`, for phase logs.
fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Round for display fields derived from floats (flows themselves are exact
/// fractions; this keeps JSON short and stable).
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn change(
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
fn apply_lead_cap(prep: &Prepared, flows: &[f64], cap: usize, draft: &mut Draft) {
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
