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

use crate::config::{PlanConfig, SolverChoice};
use crate::lp::{solve_lp, LpBackend};
use crate::prepare::{prepare, Prepared, Standing};
use crate::stages::{Instance, Pair, Stages};
use crate::OptimizerError;
use rebalancer_model::{
    Action, AgentPlan, Change, Deferred, LeadPlan, Metrics, Objectives, Plan, Reason, Snapshot,
    Summary, PLAN_SCHEMA_VERSION,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Beyond this many pairs microlp takes minutes (measured: 8.9 s at 20,000
/// pairs, no answer at 100,000); the plan warns before starting it.
const MICROLP_COMFORT_PAIRS: usize = 20_000;

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
struct Evaluation {
    shortfall: i64,
    peak: f64,
    /// Records carried per lead.
    carried: Vec<f64>,
    /// Planned load per agent.
    load: Vec<f64>,
}

/// Stages 1 and 2 on a mapping, with loads from a flow that reaches the
/// optimum (stage 3 is not needed for loads and coverage).
fn evaluate(inst: &Instance) -> Result<Evaluation, OptimizerError> {
    let stages = Stages::new(inst);
    let carried_total = stages.shortfall().map_err(|_| OptimizerError::Overflow)?;
    let (peak, _, flows) = stages
        .balance_with_flows(carried_total)
        .map_err(|_| OptimizerError::Overflow)?;
    let mut carried = vec![0.0; inst.demand.len()];
    let mut load = vec![0.0; inst.capacity.len()];
    for (p, &f) in inst.pairs.iter().zip(&flows) {
        let f = f as f64 / peak.den as f64;
        carried[p.lead as usize] += f;
        load[p.agent as usize] += f;
    }
    Ok(Evaluation {
        shortfall: inst.demand.iter().sum::<i64>() - carried_total,
        peak: peak.to_f64(),
        carried,
        load,
    })
}

fn metrics(inst: &Instance, e: &Evaluation) -> Metrics {
    Metrics {
        shortfall: e.shortfall as f64,
        peak_utilisation: e.peak,
        leads_uncovered: inst
            .demand
            .iter()
            .zip(&e.carried)
            .filter(|(&d, &c)| (d as f64) - c > SHORT)
            .count(),
    }
}

/// The instance restricted to a mapping (lead → agents).
fn restricted(prep: &Prepared, mapping: &[BTreeSet<usize>]) -> Instance {
    let pairs = prep
        .inst
        .pairs
        .iter()
        .filter(|p| mapping[p.lead as usize].contains(&(p.agent as usize)))
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

/// Make a plan for `snap` under `cfg`.
pub fn plan(snap: &Snapshot, cfg: &PlanConfig) -> Result<(Plan, PlanStats), OptimizerError> {
    // Hashing the snapshot (serialising it) is independent of the solve:
    // do it on a second core meanwhile.
    std::thread::scope(|scope| {
        let hash = scope.spawn(|| snap.content_hash());
        let planned = build(snap, cfg);
        let snapshot_hash = hash.join().expect("hashing a snapshot does not panic");
        planned.map(|(mut plan, mut stats)| {
            plan.snapshot_hash = snapshot_hash;
            stats.total_time = stats.started.elapsed();
            (plan, stats)
        })
    })
}

fn build(snap: &Snapshot, cfg: &PlanConfig) -> Result<(Plan, PlanStats), OptimizerError> {
    let started = Instant::now();
    let prep = prepare(snap, cfg)?;
    tracing::debug!(ms = ms(started), pairs = prep.inst.pairs.len(), "prepared");
    let inst = &prep.inst;

    // --- The optimum.
    let solve_started = Instant::now();
    let (solver, flows, optimum, balance_iterations) = match cfg.solver {
        SolverChoice::Flow => {
            let sol = Stages::new(inst)
                .solve()
                .map_err(|_| OptimizerError::Overflow)?;
            let flows: Vec<f64> = (0..inst.pairs.len()).map(|k| sol.flow(k)).collect();
            let opt = (sol.shortfall as f64, sol.peak.to_f64());
            ("flow".to_string(), flows, opt, sol.balance_iterations)
        }
        SolverChoice::Lp => {
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
            let sol = solve_lp(inst, backend)?;
            (
                format!("lp-{}", backend.name()),
                sol.flows,
                (sol.shortfall, sol.peak),
                0,
            )
        }
    };
    let solve_time = solve_started.elapsed();
    tracing::debug!(ms = ms(started), "solved");
    let mut opt_carried = vec![0.0; inst.demand.len()];
    let mut opt_load = vec![0.0; inst.capacity.len()];
    for (k, p) in inst.pairs.iter().enumerate() {
        opt_carried[p.lead as usize] += flows[k];
        opt_load[p.agent as usize] += flows[k];
    }

    // --- Before: what the current mapping can carry at best.
    let current: Vec<BTreeSet<usize>> = prep
        .leads
        .iter()
        .map(|l| l.current.iter().copied().collect())
        .collect();
    let before_inst = restricted(&prep, &current);
    let before = evaluate(&before_inst)?;
    tracing::debug!(ms = ms(started), "solved and evaluated the current mapping");
    let utilisation = |load: f64, i: usize| {
        let c = prep.agents[i].capacity;
        if c > 0 {
            load / c as f64
        } else {
            0.0
        }
    };

    // --- Target and changes.
    let mut changes: Vec<Change> = Vec::new();
    let mut target: Vec<BTreeSet<usize>> = current.clone();
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
                target[j].remove(&i);
                changes.push(change(&prep, j, i, Action::Unassign, reason, 0.0));
            }
        }
    }
    for &(i, j) in &prep.pins {
        if target[j].insert(i) {
            let f = flow_of(inst, &flows, i, j);
            changes.push(change(&prep, j, i, Action::Assign, Reason::Pinned, f));
        }
    }
    for (k, p) in inst.pairs.iter().enumerate() {
        let (i, j) = (p.agent as usize, p.lead as usize);
        if flows[k] + 1e-12 < cfg.min_flow || target[j].contains(&i) || prep.leads[j].frozen {
            continue;
        }
        let short_before = inst.demand[j] as f64 - before.carried[j];
        let reason = if short_before > 1e-9 {
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
            let (was, now) = (peak(&before.load), peak(&opt_load));
            if now + 1e-9 < was {
                Reason::BalancesLoad {
                    before: round6(was),
                    after: round6(now),
                }
            } else {
                Reason::FreesCapacity
            }
        };
        target[j].insert(i);
        changes.push(change(&prep, j, i, Action::Assign, reason, flows[k]));
    }
    let mut deferred: Vec<Deferred> = Vec::new();
    if cfg.max_leads_per_agent > 0 {
        apply_lead_cap(
            &prep,
            inst,
            &flows,
            cfg.max_leads_per_agent,
            &mut target,
            &mut changes,
            &mut deferred,
        );
    }
    let mut notes = prep.notes.clone();
    keep_leads_staffed(&prep, &opt_load, &mut target, &mut changes, &mut notes);

    // --- Gates: the dead band, then the move caps. Safety changes always go.
    tracing::debug!(ms = ms(started), "target built");
    // When the target carries every pair of the exact optimum, the optimum
    // itself is the target's evaluation (same shortfall and peak, and the
    // per-lead figures match the "optimum" column); otherwise solve again.
    let exact_optimum = matches!(cfg.solver, SolverChoice::Flow).then(|| Evaluation {
        shortfall: optimum.0 as i64,
        peak: optimum.1,
        carried: opt_carried.clone(),
        load: opt_load.clone(),
    });
    let evaluate_target = |target: &[BTreeSet<usize>]| -> Result<Evaluation, OptimizerError> {
        let supported = inst
            .pairs
            .iter()
            .zip(&flows)
            .all(|(p, &f)| f <= 0.0 || target[p.lead as usize].contains(&(p.agent as usize)));
        match &exact_optimum {
            Some(opt) if supported => Ok(opt.clone()),
            _ => evaluate(&restricted(&prep, target)),
        }
    };
    let pre_gate = evaluate_target(&target)?;
    tracing::debug!(ms = ms(started), "evaluated the target");
    let deferred_before_gates = deferred.len();
    let shortfall_gain = (before.shortfall - pre_gate.shortfall) as f64;
    let balance_gain = before.peak - pre_gate.peak;
    let mut gate = None;
    let deferrable = |c: &Change| {
        c.action == Action::Assign
            && matches!(
                c.reason,
                Reason::CoversShortfall { .. }
                    | Reason::BalancesLoad { .. }
                    | Reason::FreesCapacity
            )
    };
    if shortfall_gain < cfg.min_shortfall_gain
        && balance_gain < cfg.min_balance_gain
        && changes.iter().any(deferrable)
    {
        let why = format!(
            "dead band: shortfall gain {shortfall_gain:.1} < {} records and peak utilisation gain {balance_gain:.3} < {}",
            cfg.min_shortfall_gain, cfg.min_balance_gain
        );
        gate = Some(why);
        defer(&prep, &mut changes, &mut deferred, &mut target, |c| {
            deferrable(c).then(|| "dead band".to_string())
        });
    }
    if cfg.max_moves_per_run > 0 || cfg.max_moves_per_agent > 0 {
        // Most valuable first: safety, staffing and cap moves, then by flow.
        changes.sort_by(|a, b| {
            deferrable(a)
                .cmp(&deferrable(b))
                .then(b.flow.total_cmp(&a.flow))
                .then_with(|| (a.lead, &a.agent).cmp(&(b.lead, &b.agent)))
        });
        let mut per_run = 0usize;
        let mut per_agent: BTreeMap<String, usize> = BTreeMap::new();
        defer(&prep, &mut changes, &mut deferred, &mut target, |c| {
            let agent_moves = per_agent.entry(c.agent.0.clone()).or_default();
            if deferrable(c) {
                if cfg.max_moves_per_run > 0 && per_run >= cfg.max_moves_per_run {
                    return Some("max_moves_per_run".to_string());
                }
                if cfg.max_moves_per_agent > 0 && *agent_moves >= cfg.max_moves_per_agent {
                    return Some("max_moves_per_agent".to_string());
                }
            }
            per_run += 1;
            *agent_moves += 1;
            None
        });
    }

    // --- After: what the final target can carry (the pre-gate evaluation
    // when no gate or cap held anything back).
    let after = if deferred.len() == deferred_before_gates {
        pre_gate
    } else {
        evaluate_target(&target)?
    };
    let kept: usize = (0..prep.leads.len())
        .map(|j| target[j].intersection(&current[j]).count())
        .sum();
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
    let leads: Vec<LeadPlan> = prep
        .leads
        .iter()
        .enumerate()
        .map(|(j, l)| {
            let shortfall = (inst.demand[j] as f64 - after.carried[j]).max(0.0);
            LeadPlan {
                lead: l.key,
                process_id: l.process_id,
                demand: inst.demand[j] as f64,
                covered: round6(after.carried[j]),
                shortfall: round6(shortfall),
                target: target[j]
                    .iter()
                    .map(|&i| prep.agents[i].id.clone())
                    .collect(),
                current: l
                    .current
                    .iter()
                    .map(|&i| prep.agents[i].id.clone())
                    .collect(),
                frozen: l.frozen,
                default_assignee: if shortfall > 1e-9 {
                    prep.default_assignee.clone()
                } else {
                    None
                },
            }
        })
        .collect();
    let mut leads_before = vec![0usize; prep.agents.len()];
    let mut leads_after = vec![0usize; prep.agents.len()];
    for j in 0..prep.leads.len() {
        current[j].iter().for_each(|&i| leads_before[i] += 1);
        target[j].iter().for_each(|&i| leads_after[i] += 1);
    }
    let in_pool: BTreeSet<usize> = prep
        .leads
        .iter()
        .flat_map(|l| l.pool.iter().copied())
        .collect();
    let agents: Vec<AgentPlan> = in_pool
        .into_iter()
        .map(|i| AgentPlan {
            agent: prep.agents[i].id.clone(),
            headroom: prep.agents[i].capacity,
            load_before: round6(before.load[i]),
            load_after: round6(after.load[i]),
            leads_before: leads_before[i],
            leads_after: leads_after[i],
        })
        .collect();
    let summary = Summary {
        agents: snap.agents.iter().filter(|a| a.in_cms).count(),
        leads: prep.leads.len(),
        assigns: changes
            .iter()
            .filter(|c| c.action == Action::Assign)
            .count(),
        unassigns: changes
            .iter()
            .filter(|c| c.action == Action::Unassign)
            .count(),
        deferred: deferred.len(),
        kept,
    };
    let plan = Plan {
        schema_version: PLAN_SCHEMA_VERSION,
        snapshot_hash: String::new(), // filled in by `plan`
        snapshot_fetched_at: snap.fetched_at.clone(),
        config_digest: cfg.digest(),
        solver: solver.clone(),
        objectives: Objectives {
            before: metrics(&before_inst, &before),
            after: metrics(inst, &after),
            optimum: Metrics {
                shortfall: round6(optimum.0),
                peak_utilisation: optimum.1,
                leads_uncovered: inst
                    .demand
                    .iter()
                    .zip(&opt_carried)
                    .filter(|(&d, &c)| (d as f64) - c > SHORT)
                    .count(),
            },
        },
        summary,
        gate,
        changes,
        deferred,
        leads,
        agents,
        notes,
    };
    let stats = PlanStats {
        solver,
        pairs: inst.pairs.len(),
        solve_time,
        total_time: started.elapsed(),
        started,
        balance_iterations,
    };
    Ok((plan, stats))
}

/// A lead counts as short when it misses more than this many records
/// (absorbs float noise from the LP path).
const SHORT: f64 = 1e-6;

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
fn defer(
    prep: &Prepared,
    changes: &mut Vec<Change>,
    deferred: &mut Vec<Deferred>,
    target: &mut [BTreeSet<usize>],
    mut pick: impl FnMut(&Change) -> Option<String>,
) {
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
fn apply_lead_cap(
    prep: &Prepared,
    inst: &Instance,
    flows: &[f64],
    cap: usize,
    target: &mut [BTreeSet<usize>],
    changes: &mut Vec<Change>,
    deferred: &mut Vec<Deferred>,
) {
    let mut leads_of: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (j, t) in target.iter().enumerate() {
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
                target[j].remove(&i);
                changes.push(change(
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
        defer(prep, changes, deferred, target, |c| {
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
fn keep_leads_staffed(
    prep: &Prepared,
    load: &[f64],
    target: &mut [BTreeSet<usize>],
    changes: &mut Vec<Change>,
    notes: &mut Vec<String>,
) {
    for (j, lead) in prep.leads.iter().enumerate() {
        if lead.frozen || lead.current.is_empty() || !target[j].is_empty() {
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
                target[j].insert(i);
                changes.push(change(prep, j, i, Action::Assign, Reason::KeepsLeadStaffed, 0.0));
            }
            None => notes.push(format!(
                "lead {} loses all {} of its agents: every one must go (inactive, at allowance or excluded) and its pool has no eligible agent",
                lead.key,
                lead.current.len()
            )),
        }
    }
}
