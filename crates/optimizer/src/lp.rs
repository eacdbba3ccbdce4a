//! The assignment LP in good_lp: the general model and the cross-check of
//! the exact network-flow stages ([`crate::stages`]).
//!
//! Variables (DESIGN.md, "The LP"): a flow `f_k ≥ 0` per eligible pair, a
//! shortfall `s_j ≥ 0` per lead and the peak utilisation `u ∈ [0, 1]`, with
//!
//! - demand: `Σ_{k: lead(k)=j} f_k + s_j = D_j` for every lead `j`;
//! - thresholds: `Σ_{k: agent(k)=i} f_k ≤ u·h_i` for every agent `i`.
//!
//! The objectives are solved lexicographically, three solves on the same
//! constraints:
//!
//! 1. minimise `Σ_j s_j` → `S*`;
//! 2. add `Σ_j s_j ≤ S* + tol(S*)`, minimise `u` → `u*`;
//! 3. add `u ≤ c + tol(c)`, minimise `Σ_{k: !current} f_k` → `C*`, where
//!    the cap `c` is `u*`, or `max(u*, X)` under a utilisation target `X`
//!    ([`solve_lp_at`]).
//!
//! `tol(v) = STAGE_TOLERANCE · max(1, |v|)` (see [`STAGE_TOLERANCE`]); a
//! stage that fails under it is solved again under the wider slacks of
//! [`STAGE_SLACKS`]. The reported [`LpSolution`] carries the three stage
//! optima `S*`, `u*`, `C*`, the stage-3 flows and the slack used.
//!
//! Unlike the flow stages this path is floating point and general: side
//! constraints can be added here without a network form. Backends are
//! good_lp's microlp (pure Rust simplex, always built) and, behind the
//! optimizer's `coin_cbc`, `highs` and `clarabel` features, Clp/Cbc, HiGHS
//! and Clarabel (pure Rust interior point: its optima are approximate, see
//! `tests/lp_vs_flow.rs` for how close).

use std::time::Instant;

use good_lp::{
    constraint, variable, Constraint, Expression, ProblemVariables, ResolutionError, Solution,
    SolutionStatus, Solver, SolverModel, Variable,
};

use crate::stages::Instance;

/// Relative tolerance with which stage `k` keeps stage `k−1`'s optimum.
///
/// Stage 2 solves under `Σ s_j ≤ S* + STAGE_TOLERANCE · max(1, S*)` and
/// stage 3 under `u ≤ u* + STAGE_TOLERANCE · max(1, u*)`: an exact `≤ S*`
/// could be made infeasible by the solver's own rounding. Each slack is
/// exploited in full by the next stage: stage 2 may trade `tol(S*)` of
/// shortfall for `tol(S*)/h_i` of peak, stage 3 may drop up to
/// `tol(S*) + tol(u*)·Σ h_i` units of churn. So the value sits just above
/// microlp's working tolerance (`1e-10`) and well below the accuracy the
/// cross-check against the exact flow stages asks for (`1e-6` on `u*`,
/// `1e-5` relative on `C*`; measured worst case on 3,000 random small
/// instances: `1.5e-7` on `u*`). Clp and HiGHS work to their own primal
/// feasibility tolerance (`1e-7` by default), which then dominates.
pub const STAGE_TOLERANCE: f64 = 1e-9;

/// The relative slacks stages 2 and 3 try in turn, [`STAGE_TOLERANCE`]
/// first. A solver reports an optimum only to its own accuracy, and may
/// report it slightly on the infeasible side: Clarabel (interior point,
/// 1e-8 relative) has put `S*` 1.5e-8 below the true optimum, which makes
/// `Σ s_j ≤ S* + 1e-9·S*` truly infeasible, and has run out of iterations
/// in a stage-3 feasible set that thin. Then the stage is solved again
/// under the next, wider slack; only when the widest fails does the LP.
/// The slack used is reported ([`LpSolution::stage_slack`]).
pub const STAGE_SLACKS: [f64; 3] = [STAGE_TOLERANCE, 1e-7, 1e-5];

/// `slack` (relative) scaled to the magnitude of `value`.
fn tolerance(slack: f64, value: f64) -> f64 {
    slack * value.abs().max(1.0)
}

/// The LP solver behind good_lp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LpBackend {
    /// microlp: pure Rust simplex, always available.
    Microlp,
    /// Clp through Cbc (`coin_cbc` feature).
    #[cfg(feature = "coin_cbc")]
    CoinCbc,
    /// HiGHS (`highs` feature).
    #[cfg(feature = "highs")]
    Highs,
    /// Clarabel, a pure Rust interior-point solver (`clarabel` feature).
    #[cfg(feature = "clarabel")]
    Clarabel,
}

impl LpBackend {
    /// Every backend this crate knows by name, with the cargo feature (of
    /// this crate, and of the `rebalancer` binary) that compiles it in;
    /// `None`: always built.
    pub const KNOWN: [(&'static str, Option<&'static str>); 4] = [
        ("microlp", None),
        ("coin_cbc", Some("coin_cbc")),
        ("highs", Some("highs")),
        ("clarabel", Some("clarabel")),
    ];

    /// The backend's name as [`LpBackend::parse`] accepts it.
    pub fn name(&self) -> &'static str {
        match self {
            LpBackend::Microlp => "microlp",
            #[cfg(feature = "coin_cbc")]
            LpBackend::CoinCbc => "coin_cbc",
            #[cfg(feature = "highs")]
            LpBackend::Highs => "highs",
            #[cfg(feature = "clarabel")]
            LpBackend::Clarabel => "clarabel",
        }
    }

    /// An interior-point method (Clarabel): its optima are approximate,
    /// within the solver's tolerances, never exactly at a vertex.
    pub fn is_interior_point(&self) -> bool {
        #[cfg(feature = "clarabel")]
        {
            *self == LpBackend::Clarabel
        }
        #[cfg(not(feature = "clarabel"))]
        {
            false
        }
    }

    /// The backends compiled into this build, microlp first.
    pub fn available() -> Vec<LpBackend> {
        vec![
            LpBackend::Microlp,
            #[cfg(feature = "coin_cbc")]
            LpBackend::CoinCbc,
            #[cfg(feature = "highs")]
            LpBackend::Highs,
            #[cfg(feature = "clarabel")]
            LpBackend::Clarabel,
        ]
    }

    /// A backend by name (case-insensitive; `cbc` and `clp` are aliases of
    /// `coin_cbc`). `None` for unknown names and for backends not compiled in.
    pub fn parse(s: &str) -> Option<LpBackend> {
        let s = s.trim().to_ascii_lowercase();
        LpBackend::available().into_iter().find(|b| {
            b.name() == s
                || (b.name() == "coin_cbc" && matches!(s.as_str(), "cbc" | "clp" | "coin-cbc"))
        })
    }
}

/// The lexicographic optimum: the three stage optima and the stage-3 flows.
#[derive(Debug, Clone, PartialEq)]
pub struct LpSolution {
    /// Stage 1: least total shortfall `S*`.
    pub shortfall: f64,
    /// Stage 2: least peak utilisation `u*` (0 when nothing can flow).
    pub peak: f64,
    /// The cap stage 3 worked under: `u*`, or `max(u*, X)` with a target.
    pub cap: f64,
    /// Stage 3: least flow on pairs outside the current mapping `C*`.
    pub new_pair_flow: f64,
    /// Stage-3 flow per pair, in `Instance::pairs` order (never negative).
    pub flows: Vec<f64>,
    /// The relative slack with which stages 2 and 3 kept the earlier
    /// optima: [`STAGE_TOLERANCE`], or a wider one of [`STAGE_SLACKS`]
    /// when a stage failed under the tighter one (see there).
    pub stage_slack: f64,
}

/// Why the LP could not be solved.
#[derive(Debug, thiserror::Error)]
pub enum LpError {
    #[error("the LP is infeasible at the {stage} stage")]
    Infeasible { stage: &'static str },
    #[error("the LP solver failed at the {stage} stage: {detail}")]
    Solver { stage: &'static str, detail: String },
}

/// Solve the three stages of the LP for `inst` with `backend`.
///
/// Pairs must refer to existing agents and leads (an [`LpError::Solver`] at
/// the `model` stage otherwise). An instance with negative demand is
/// infeasible.
pub fn solve_lp(inst: &Instance, backend: LpBackend) -> Result<LpSolution, LpError> {
    solve_lp_at(inst, backend, None)
}

/// Solve the three stages with stage 3 under the cap `max(u*, target)`
/// (`u*` when `target` is `None`): the LP form of
/// [`crate::stages::Stages::at`].
pub fn solve_lp_at(
    inst: &Instance,
    backend: LpBackend,
    target: Option<f64>,
) -> Result<LpSolution, LpError> {
    match backend {
        LpBackend::Microlp => Lexicographic::new(inst)?.solve(good_lp::microlp, target),
        #[cfg(feature = "coin_cbc")]
        LpBackend::CoinCbc => Lexicographic::new(inst)?.solve(good_lp::coin_cbc, target),
        #[cfg(feature = "highs")]
        LpBackend::Highs => Lexicographic::new(inst)?.solve(good_lp::highs, target),
        #[cfg(feature = "clarabel")]
        LpBackend::Clarabel => Lexicographic::new(inst)?.solve(good_lp::clarabel, target),
    }
}

/// Which objective a stage minimises.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Shortfall,
    Peak,
    Churn,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Shortfall => "shortfall",
            Stage::Peak => "peak",
            Stage::Churn => "churn",
        }
    }
}

/// Variable values of one stage's solution.
struct Values {
    flows: Vec<f64>,
    shortfalls: Vec<f64>,
    peak: f64,
}

/// The instance with pairs grouped by agent and by lead.
struct Lexicographic<'a> {
    inst: &'a Instance,
    by_agent: Vec<Vec<usize>>,
    by_lead: Vec<Vec<usize>>,
}

impl<'a> Lexicographic<'a> {
    fn new(inst: &'a Instance) -> Result<Self, LpError> {
        let mut by_agent = vec![Vec::new(); inst.capacity.len()];
        let mut by_lead = vec![Vec::new(); inst.demand.len()];
        for (k, pair) in inst.pairs.iter().enumerate() {
            let (i, j) = (pair.agent as usize, pair.lead as usize);
            if i >= by_agent.len() || j >= by_lead.len() {
                return Err(LpError::Solver {
                    stage: "model",
                    detail: format!(
                        "pair {k} refers to agent {i} and lead {j}, but there are {} agents and {} leads",
                        by_agent.len(),
                        by_lead.len()
                    ),
                });
            }
            by_agent[i].push(k);
            by_lead[j].push(k);
        }
        Ok(Lexicographic {
            inst,
            by_agent,
            by_lead,
        })
    }

    fn solve<S>(&self, solver: S, target: Option<f64>) -> Result<LpSolution, LpError>
    where
        S: Solver + Copy,
        S::Model: SolverModel<Error = ResolutionError>,
    {
        let first = self.stage(solver, Stage::Shortfall, None, 1.0)?;
        let shortfall = first.shortfalls.iter().sum::<f64>().max(0.0);

        let (second, at) = widening(0, |slack| {
            self.stage(
                solver,
                Stage::Peak,
                Some(shortfall + tolerance(slack, shortfall)),
                1.0,
            )
        })?;
        // With no capacity or nothing to carry u is free; the minimum is 0.
        let peak = second.peak.clamp(0.0, 1.0);

        let cap = target.map_or(peak, |x| x.max(peak));
        // Stage 3 starts from the slack stage 2 needed.
        let (third, at) = widening(at, |slack| {
            self.stage(
                solver,
                Stage::Churn,
                Some(shortfall + tolerance(slack, shortfall)),
                (cap + tolerance(slack, cap)).min(1.0),
            )
        })?;
        let flows: Vec<f64> = third.flows.iter().map(|&f| f.max(0.0)).collect();
        let new_pair_flow = self
            .inst
            .pairs
            .iter()
            .zip(&flows)
            .filter(|(pair, _)| !pair.current)
            .map(|(_, &f)| f)
            .sum();
        Ok(LpSolution {
            shortfall,
            peak,
            cap,
            new_pair_flow,
            flows,
            stage_slack: STAGE_SLACKS[at],
        })
    }

    /// One solve: the LP's constraints, `Σ s_j ≤ shortfall_max` if given,
    /// `u ≤ u_max`, minimising the `stage`'s objective.
    fn stage<S>(
        &self,
        solver: S,
        stage: Stage,
        shortfall_max: Option<f64>,
        u_max: f64,
    ) -> Result<Values, LpError>
    where
        S: Solver,
        S::Model: SolverModel<Error = ResolutionError>,
    {
        let start = Instant::now();
        let inst = self.inst;
        let mut vars = ProblemVariables::new();
        let f: Vec<Variable> = vars.add_vector(variable().min(0.0), inst.pairs.len());
        let s: Vec<Variable> = vars.add_vector(variable().min(0.0), inst.demand.len());
        let u = vars.add(variable().min(0.0).max(u_max));

        let objective: Expression = match stage {
            Stage::Shortfall => s.iter().copied().sum(),
            Stage::Peak => u.into(),
            Stage::Churn => inst
                .pairs
                .iter()
                .zip(&f)
                .filter(|(pair, _)| !pair.current)
                .map(|(_, &v)| v)
                .sum(),
        };

        let mut constraints: Vec<Constraint> =
            Vec::with_capacity(inst.demand.len() + inst.capacity.len() + 1);
        for (j, pairs) in self.by_lead.iter().enumerate() {
            let carried: Expression = pairs.iter().map(|&k| f[k]).sum();
            constraints.push(constraint!(carried + s[j] == inst.demand[j] as f64));
        }
        for (i, pairs) in self.by_agent.iter().enumerate() {
            if pairs.is_empty() {
                continue; // 0 ≤ u·h_i holds for every u ≥ 0 when h_i ≥ 0
            }
            let load: Expression = pairs.iter().map(|&k| f[k]).sum();
            constraints.push(constraint!(load <= inst.capacity[i] as f64 * u));
        }
        if let Some(max) = shortfall_max {
            let total: Expression = s.iter().copied().sum();
            constraints.push(constraint!(total <= max));
        }

        let model = vars.minimise(objective).using(solver).with_all(constraints);
        let solution = model.solve().map_err(|e| stage_error(stage, e))?;
        match solution.status() {
            SolutionStatus::Optimal => {}
            status => {
                return Err(LpError::Solver {
                    stage: stage.name(),
                    detail: format!("the solver stopped early ({status:?})"),
                })
            }
        }
        let values = Values {
            flows: f.iter().map(|&v| solution.value(v)).collect(),
            shortfalls: s.iter().map(|&v| solution.value(v)).collect(),
            peak: solution.value(u),
        };
        tracing::debug!(
            stage = stage.name(),
            pairs = inst.pairs.len(),
            seconds = start.elapsed().as_secs_f64(),
            "LP stage solved"
        );
        Ok(values)
    }
}

/// `solve` under [`STAGE_SLACKS`] from `from` on, in turn, until one
/// succeeds: its values and that slack's index. A stage fails under a
/// slack when the solver's inaccuracy made it infeasible, or when the
/// solver gives up (an interior-point method can run out of iterations in
/// a feasible set as thin as a 1e-9 slack); the error under the widest
/// slack is the LP's.
fn widening<T>(
    from: usize,
    mut solve: impl FnMut(f64) -> Result<T, LpError>,
) -> Result<(T, usize), LpError> {
    let mut at = from.min(STAGE_SLACKS.len() - 1);
    loop {
        match solve(STAGE_SLACKS[at]) {
            Err(e) if at + 1 < STAGE_SLACKS.len() => {
                tracing::debug!(
                    slack = STAGE_SLACKS[at],
                    error = %e,
                    "LP stage failed under this slack; widening it"
                );
                at += 1;
            }
            result => return result.map(|values| (values, at)),
        }
    }
}

fn stage_error(stage: Stage, error: ResolutionError) -> LpError {
    match error {
        ResolutionError::Infeasible => LpError::Infeasible {
            stage: stage.name(),
        },
        other => LpError::Solver {
            stage: stage.name(),
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(capacity: &[i64], demand: &[i64], pairs: &[(usize, usize, bool)]) -> Instance {
        Instance::new(capacity.to_vec(), demand.to_vec(), pairs.iter().copied())
    }

    /// `a` equals `b` to 1e-6 relative (absolute below 1): microlp works to
    /// 1e-10, Clp and HiGHS to their default primal feasibility tolerance
    /// of 1e-7, and these instances have at most 6 rows and values below 15.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    /// The instance solved by every backend compiled into this build.
    fn solve_all(i: &Instance) -> Vec<(LpBackend, LpSolution)> {
        LpBackend::available()
            .into_iter()
            .map(|b| {
                let s = solve_lp(i, b).unwrap_or_else(|e| panic!("{}: {e}", b.name()));
                (b, s)
            })
            .collect()
    }

    #[test]
    fn balanced_split() {
        // One lead of demand 3 over two agents of cap 2: u* = 3/4, the
        // current pair carries its full 1.5 and the new pair the rest.
        for (b, s) in solve_all(&inst(&[2, 2], &[3], &[(0, 0, true), (1, 0, false)])) {
            assert!(close(s.shortfall, 0.0), "{b:?}: {s:?}");
            assert!(close(s.peak, 0.75), "{b:?}: {s:?}");
            assert!(close(s.new_pair_flow, 1.5), "{b:?}: {s:?}");
            assert!(
                close(s.flows[0], 1.5) && close(s.flows[1], 1.5),
                "{b:?}: {s:?}"
            );
        }
    }

    #[test]
    fn skewed_peak_and_shortfall() {
        // Lead 0 (demand 12) only on agent 0 (cap 10): shortfall 2, u* = 1.
        // Lead 1 (demand 2) on agents 1 and 2; both pairs are new.
        for (b, s) in solve_all(&inst(
            &[10, 10, 10],
            &[12, 2],
            &[(0, 0, true), (1, 1, false), (2, 1, false)],
        )) {
            assert!(close(s.shortfall, 2.0), "{b:?}: {s:?}");
            assert!(close(s.peak, 1.0), "{b:?}: {s:?}");
            assert!(close(s.new_pair_flow, 2.0), "{b:?}: {s:?}");
            assert!(close(s.flows[0], 10.0), "{b:?}: {s:?}");
        }
    }

    #[test]
    fn churn_prefers_current_pairs() {
        // Two leads of demand 2, two agents of cap 4, all pairs eligible:
        // u* = 1/2 and the current diagonal carries everything.
        for (b, s) in solve_all(&inst(
            &[4, 4],
            &[2, 2],
            &[(0, 0, true), (0, 1, false), (1, 0, false), (1, 1, true)],
        )) {
            assert!(
                close(s.shortfall, 0.0) && close(s.peak, 0.5),
                "{b:?}: {s:?}"
            );
            assert!(close(s.new_pair_flow, 0.0), "{b:?}: {s:?}");
            assert!(
                close(s.flows[0], 2.0) && close(s.flows[3], 2.0),
                "{b:?}: {s:?}"
            );
        }
    }

    #[test]
    fn zero_capacity_agents_carry_nothing() {
        for (b, s) in solve_all(&inst(&[0, 4], &[3], &[(0, 0, true), (1, 0, false)])) {
            assert!(
                close(s.shortfall, 0.0) && close(s.peak, 0.75),
                "{b:?}: {s:?}"
            );
            assert!(
                close(s.flows[0], 0.0) && close(s.flows[1], 3.0),
                "{b:?}: {s:?}"
            );
            assert!(close(s.new_pair_flow, 3.0), "{b:?}: {s:?}");
        }
    }

    #[test]
    fn all_capacities_zero() {
        for (b, s) in solve_all(&inst(&[0, 0], &[5], &[(0, 0, true), (1, 0, false)])) {
            assert!(
                close(s.shortfall, 5.0) && close(s.peak, 0.0),
                "{b:?}: {s:?}"
            );
            assert!(s.flows.iter().all(|&f| close(f, 0.0)), "{b:?}: {s:?}");
        }
    }

    #[test]
    fn no_pairs_and_zero_demand() {
        for (b, s) in solve_all(&inst(&[3], &[4, 0], &[])) {
            assert!(
                close(s.shortfall, 4.0) && close(s.peak, 0.0),
                "{b:?}: {s:?}"
            );
            assert!(s.flows.is_empty());
        }

        for (b, s) in solve_all(&inst(&[3, 2], &[0], &[(0, 0, false), (1, 0, true)])) {
            assert!(
                close(s.shortfall, 0.0) && close(s.peak, 0.0),
                "{b:?}: {s:?}"
            );
            assert!(close(s.new_pair_flow, 0.0), "{b:?}: {s:?}");
        }

        for (b, s) in solve_all(&Instance::default()) {
            let optimum = (s.shortfall, s.peak, s.new_pair_flow);
            if b.is_interior_point() {
                // Stops inside the feasible set: u* ≈ 1e-9, not 0.
                let (a, u, c) = optimum;
                assert!(
                    close(a, 0.0) && close(u, 0.0) && close(c, 0.0),
                    "{b:?}: {s:?}"
                );
            } else {
                assert_eq!(optimum, (0.0, 0.0, 0.0), "{b:?}");
            }
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for b in LpBackend::available() {
            let err = solve_lp(&inst(&[3], &[1], &[(1, 0, false)]), b).unwrap_err();
            assert!(
                matches!(err, LpError::Solver { stage: "model", .. }),
                "{b:?}: {err}"
            );
            let err = solve_lp(&inst(&[3], &[-1], &[(0, 0, false)]), b).unwrap_err();
            assert!(
                matches!(err, LpError::Infeasible { stage: "shortfall" }),
                "{b:?}: {err}"
            );
        }
    }

    #[test]
    fn backend_names_round_trip() {
        for b in LpBackend::available() {
            assert_eq!(LpBackend::parse(b.name()), Some(b));
        }
        assert_eq!(LpBackend::parse(" MicroLP "), Some(LpBackend::Microlp));
        assert_eq!(LpBackend::parse("gurobi"), None);
        for b in LpBackend::available() {
            assert!(
                LpBackend::KNOWN.iter().any(|(n, _)| *n == b.name()),
                "{b:?}"
            );
        }
    }
}
