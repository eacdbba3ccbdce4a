//! The `Plan`: what a rebalance would change, and why.
//!
//! A plan is self-describing: it names the snapshot it came from (hash and
//! fetch time), a digest of the planning config (no secrets), the solver,
//! the objective values before and after, every change with its reason, the
//! changes deferred by gates or caps, and the target assignment per lead.
//! It holds no wall-clock times, so the same snapshot and config give a
//! byte-identical plan.

use crate::io::{check_schema_version, parse_error, read_limited, write_atomic};
use crate::{AgentId, LeadKey, ModelError, Problem};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the plan JSON layout. Bump on any incompatible change.
///
/// 2: `objectives.churn`, `what_ifs`, `caps`, `flap_guard`, `blocked` and
/// `problems`.
/// 3: `objectives.balance` (utilisation target, `u*`, the cap worked
/// under), `objectives.new_pairs`, and the target in `balances_load`.
/// 4: `leads[].covered_before` (each lead's coverage before the plan).
pub const PLAN_SCHEMA_VERSION: u32 = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub schema_version: u32,
    /// SHA-256 (hex) of the snapshot's canonical JSON.
    pub snapshot_hash: String,
    pub snapshot_fetched_at: String,
    /// SHA-256 (hex) of the planning config's canonical JSON, the campaigns
    /// it was made over and its what-ifs (`PlanConfig::digest_with`).
    pub config_digest: String,
    /// `flow` (exact network flow) or `lp-<backend>`.
    pub solver: String,
    /// The system the plan's snapshot was read from: `apply` refuses a plan
    /// made for another CMS or contact center than its config names.
    pub system: TargetSystem,
    pub objectives: Objectives,
    pub summary: Summary,
    /// When set, the dead band held back every optimisation move; only
    /// safety changes remain.
    pub gate: Option<String>,
    /// Set when the plan must not be applied without a person's consent
    /// (`apply --allow-mass-unassign`): it unassigns more than
    /// `plan.max_unassign_share` of the current pairs. The plan is complete
    /// and shown all the same.
    pub blocked: Option<Blocked>,
    /// What the move caps held back; `None` when no cap is configured.
    pub caps: Option<CapReport>,
    /// What the flap guard (`run.min_move_interval`) held back; `None` when
    /// the plan was made without a record of recent moves (`plan`,
    /// `plan_with`), so the guard did not run.
    pub flap_guard: Option<FlapReport>,
    /// The what-ifs this plan was made under, canonical (`plan.<key>:
    /// value`) and sorted; empty when the plan is of the world as it is.
    pub what_ifs: Vec<String>,
    /// The snapshot's problems (agents that could not be joined, users
    /// unknown upstream, leads the CMS answered 404 for), sorted.
    pub problems: Vec<Problem>,
    /// Changes to make, sorted by lead, then unassigns before assigns, then agent.
    pub changes: Vec<Change>,
    /// Changes a gate or cap held back, with the reason in `deferred_by`.
    pub deferred: Vec<Deferred>,
    /// Target assignment and coverage per lead, sorted by lead.
    pub leads: Vec<LeadPlan>,
    /// Planned load per agent in some lead pool, before and after, sorted.
    pub agents: Vec<AgentPlan>,
    /// Notes an operator should read (frozen leads keeping inactive agents,
    /// leads that lose every agent, ...), sorted.
    pub notes: Vec<String>,
}

/// Which dialer CMS (and contact center) a plan was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSystem {
    /// The CMS base URL of the snapshot (no credentials).
    pub cms_base_url: String,
    /// The contact center id in the CMS paths; `None` for snapshots that
    /// did not record it (such a plan cannot be applied).
    pub contact_center_id: Option<u64>,
}

/// Objective values of the current mapping and of the plan's target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    pub before: Metrics,
    pub after: Metrics,
    /// The solver's optimum before rounding, gates and caps.
    pub optimum: Metrics,
    /// The third objective at the optimum: records routed over pairs outside
    /// the current mapping (pins count as current). Least among all flows
    /// with the optimum's shortfall within the balance cap
    /// (`balance.cap`), before the pair-count reduction.
    pub churn: f64,
    /// The utilisation target and the peak cap the plan worked under.
    pub balance: Balance,
    /// New pairs the optimum uses, before and after the pair-count
    /// reduction.
    pub new_pairs: NewPairs,
}

/// How far the plan drives peak utilisation down (`plan.target_utilisation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balance {
    /// The target `X` (a share of headroom), or `None` for "optimal" (the
    /// least peak `u*`).
    pub target: Option<f64>,
    /// `u*`: the least peak utilisation any mapping can reach at the least
    /// shortfall.
    pub least_peak: f64,
    /// The cap every agent's planned load stays within: `max(u*, X)`, or
    /// `u*` without a target.
    pub cap: f64,
}

/// New pairs (assignments not in the current mapping) the optimum carries
/// records on. The change stage minimises records on new pairs; a local
/// search then reroutes the flow of light new pairs onto pairs already in
/// use, at the same shortfall and cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPairs {
    /// At the least-records optimum.
    pub least_records: usize,
    /// After the reduction (what the plan assigns for, before gates).
    pub reduced: usize,
}

/// A plan an `apply` must refuse unless a person allows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blocked {
    /// Why, naming the config key that blocks it.
    pub reason: String,
    /// Unassigns in the plan.
    pub unassigns: usize,
    /// Pairs in the current mapping.
    pub current_pairs: usize,
    /// `plan.max_unassign_share`: the largest share of current pairs a plan
    /// may unassign without consent.
    pub max_share: f64,
}

/// What the move caps (`plan.max_moves_per_run`, `plan.max_moves_per_agent`)
/// did. Only optimisation moves (covers shortfall, balances load, frees
/// capacity) count and are capped; safety moves always go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapReport {
    /// `plan.max_moves_per_run` (0 = no cap).
    pub max_moves_per_run: usize,
    /// `plan.max_moves_per_agent` (0 = no cap).
    pub max_moves_per_agent: usize,
    /// Optimisation moves the caps let through.
    pub kept: usize,
    /// Optimisation moves the caps held back (listed in `deferred`).
    pub deferred: usize,
}

/// What the flap guard did: an agent moved within `run.min_move_interval`
/// is not moved again, and a lead changed within it is left alone unless it
/// has shortfall or holds an ineligible agent. Only optimisation moves are
/// held back; safety moves always go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlapReport {
    /// Agents moved recently (as given to the planner).
    pub agents: usize,
    /// Leads changed recently (as given to the planner).
    pub leads: usize,
    /// Optimisation moves the guard held back (listed in `deferred` with
    /// `deferred_by` = `flap guard (run.min_move_interval)`).
    pub deferred: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Total demand the mapping cannot carry (records).
    pub shortfall: f64,
    /// Least achievable peak utilisation (load / headroom) over agents.
    pub peak_utilisation: f64,
    /// Leads with demand that no agent can carry any of.
    pub leads_uncovered: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub agents: usize,
    pub leads: usize,
    pub assigns: usize,
    pub unassigns: usize,
    pub deferred: usize,
    /// Current assignments kept.
    pub kept: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Unassign,
    Assign,
}

/// Why a change is in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reason {
    /// Webex reports the user inactive (or does not know it).
    Inactive { detail: String },
    /// Zoho backlog or record count at the allowance: no headroom.
    AtAllowance {
        used: i64,
        allowance: i64,
        counter: String,
    },
    /// Excluded from this lead or from every lead by config or a what-if.
    Excluded,
    /// Forced onto this lead by a pin.
    Pinned,
    /// More leads than `max_leads_per_agent`.
    LeadCap { cap: usize },
    /// The lead would otherwise lose its last agent.
    KeepsLeadStaffed,
    /// Carries demand the current mapping leaves uncovered.
    CoversShortfall { shortfall_before: f64 },
    /// Takes load off the lead's current agents: their peak utilisation
    /// before → after; `target` is the plan's utilisation target (none when
    /// the plan drives the peak to its least value).
    BalancesLoad {
        before: f64,
        after: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<f64>,
    },
    /// Carries this lead's work so that its current agents can cover
    /// shortfall on other leads.
    FreesCapacity {
        /// The short lead the freed agents' time goes to (the one among
        /// their optimum leads that gains the most coverage), when there is
        /// one.
        for_lead: Option<LeadKey>,
    },
}

impl Reason {
    /// Safety changes are never held back by gates or caps.
    pub fn is_safety(&self) -> bool {
        matches!(
            self,
            Reason::Inactive { .. }
                | Reason::AtAllowance { .. }
                | Reason::Excluded
                | Reason::Pinned
        )
    }

    /// Optimisation moves (covers shortfall, balances load, frees capacity)
    /// are the only ones the flap guard, the dead band and the move caps may
    /// hold back;
    /// every other change (safety, pins, lead cap, keep-staffed) always goes.
    pub fn is_optimisation(&self) -> bool {
        matches!(
            self,
            Reason::CoversShortfall { .. }
                | Reason::BalancesLoad { .. }
                | Reason::FreesCapacity { .. }
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Inactive { detail } => write!(f, "inactive in Webex ({detail})"),
            Reason::AtAllowance {
                used,
                allowance,
                counter,
            } => write!(f, "{counter} at allowance ({used}/{allowance})"),
            Reason::Excluded => f.write_str("excluded by config"),
            Reason::Pinned => f.write_str("pinned"),
            Reason::LeadCap { cap } => write!(f, "over the per-agent cap of {cap} leads"),
            Reason::KeepsLeadStaffed => f.write_str("keeps the lead staffed"),
            Reason::CoversShortfall { shortfall_before } => {
                write!(
                    f,
                    "covers shortfall on the lead ({shortfall_before:.0} records short)"
                )
            }
            Reason::BalancesLoad {
                before,
                after,
                target: Some(target),
            } if before > target => write!(
                f,
                "balances load: agent above the {target:.2} target (u {before:.4} → {after:.4})"
            ),
            Reason::BalancesLoad { before, after, .. } => {
                write!(f, "balances load (u {before:.4} → {after:.4})")
            }
            Reason::FreesCapacity {
                for_lead: Some(lead),
            } => write!(
                f,
                "frees capacity for {lead} (this lead's agents cover shortfall there)"
            ),
            Reason::FreesCapacity { for_lead: None } => {
                f.write_str("frees the lead's agents to cover shortfall elsewhere")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub lead: LeadKey,
    pub agent: AgentId,
    pub action: Action,
    pub reason: Reason,
    /// Planned records on this pair (0 for unassigns).
    pub flow: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deferred {
    pub change: Change,
    /// `flap guard (run.min_move_interval)`, `dead band`,
    /// `max_moves_per_run`, `max_moves_per_agent`, `max_leads_per_agent`.
    pub deferred_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadPlan {
    pub lead: LeadKey,
    pub process_id: u64,
    pub demand: f64,
    /// Records the current mapping carries at its best (before the plan).
    /// Plans of schema 3 lack it (read as 0).
    #[serde(default)]
    pub covered_before: f64,
    /// Planned records carried by the target.
    pub covered: f64,
    pub shortfall: f64,
    /// Agents assigned after the plan, sorted.
    pub target: Vec<AgentId>,
    /// Agents assigned now, sorted (for drift checks at apply time).
    pub current: Vec<AgentId>,
    pub frozen: bool,
    /// Zoho's default assignee, named for leads left short.
    pub default_assignee: Option<AgentId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentPlan {
    pub agent: AgentId,
    /// Headroom the plan may use (0 for inactive, at allowance, excluded or
    /// frozen-without-threshold agents).
    pub headroom: i64,
    /// Planned records under the current mapping (at its best).
    pub load_before: f64,
    /// Planned records under the target mapping.
    pub load_after: f64,
    /// Leads assigned now / after the plan.
    pub leads_before: usize,
    pub leads_after: usize,
    /// The agent's Webex username, for re-checking at apply time that it is
    /// still active (`None`: unknown to Webex).
    pub webex_username: Option<String>,
    /// The Zoho user the agent was joined to, for re-checking its
    /// allowances at apply time (`None`: not joined).
    pub zoho_user_id: Option<String>,
}

impl Plan {
    /// Canonical JSON bytes (pretty, trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a plan always serialises");
        out.push(b'\n');
        out
    }

    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Plan, ModelError> {
        check_schema_version(bytes, path, "plan", PLAN_SCHEMA_VERSION, "plan --out FILE")?;
        AgentId::interning(|| serde_json::from_slice(bytes))
            .map_err(|e| parse_error(e, path, "plan", "plan --out FILE"))
    }

    pub fn load(path: &Path) -> Result<Plan, ModelError> {
        let bytes = read_limited(path, "plan")?;
        Plan::from_json(&bytes, path)
    }

    /// Write atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        write_atomic(path, &self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Plan {
        let m = Metrics {
            shortfall: 3.0,
            peak_utilisation: 0.75,
            leads_uncovered: 1,
        };
        let lead = LeadKey {
            campaign_id: 1,
            lead_id: 2,
        };
        Plan {
            schema_version: PLAN_SCHEMA_VERSION,
            snapshot_hash: "ab".repeat(32),
            snapshot_fetched_at: "2026-11-23T12:00:00Z".into(),
            config_digest: "cd".repeat(32),
            solver: "flow".into(),
            system: TargetSystem {
                cms_base_url: "https://cms.example.com".into(),
                contact_center_id: Some(7),
            },
            objectives: Objectives {
                before: m.clone(),
                after: m.clone(),
                optimum: m,
                churn: 2.5,
                balance: Balance {
                    target: Some(0.9),
                    least_peak: 0.5,
                    cap: 0.9,
                },
                new_pairs: NewPairs {
                    least_records: 1,
                    reduced: 1,
                },
            },
            summary: Summary {
                agents: 2,
                leads: 1,
                assigns: 1,
                unassigns: 1,
                deferred: 0,
                kept: 0,
            },
            gate: None,
            blocked: None,
            caps: None,
            flap_guard: Some(FlapReport {
                agents: 1,
                leads: 2,
                deferred: 0,
            }),
            what_ifs: vec![],
            problems: vec![],
            changes: vec![
                Change {
                    lead,
                    agent: AgentId::new("a"),
                    action: Action::Unassign,
                    reason: Reason::Inactive {
                        detail: "user_status=Inactive".into(),
                    },
                    flow: 0.0,
                },
                Change {
                    lead,
                    agent: AgentId::new("b"),
                    action: Action::Assign,
                    reason: Reason::BalancesLoad {
                        before: 1.0,
                        after: 0.5,
                        target: None,
                    },
                    flow: 2.5,
                },
            ],
            deferred: vec![],
            leads: vec![],
            agents: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn round_trips_and_reasons_read_well() {
        let p = sample();
        let back = Plan::from_json(&p.to_json(), Path::new("p.json")).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            p.changes[1].reason.to_string(),
            "balances load (u 1.0000 → 0.5000)"
        );
        assert!(p.changes[0].reason.is_safety() && !p.changes[1].reason.is_safety());
    }

    #[test]
    fn a_balance_move_names_the_target_it_serves() {
        let above = Reason::BalancesLoad {
            before: 0.95,
            after: 0.9,
            target: Some(0.9),
        };
        assert_eq!(
            above.to_string(),
            "balances load: agent above the 0.90 target (u 0.9500 → 0.9000)"
        );
        let json = serde_json::to_value(&above).unwrap();
        assert_eq!(json["target"], 0.9);
        // Below the target (the balance came with a shortfall move): no claim.
        let below = Reason::BalancesLoad {
            before: 0.8,
            after: 0.7,
            target: Some(0.9),
        };
        assert_eq!(below.to_string(), "balances load (u 0.8000 → 0.7000)");
    }

    #[test]
    fn other_version_and_snapshot_files_are_refused_by_name() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["schema_version"] = 7.into();
        let e = Plan::from_json(v.to_string().as_bytes(), Path::new("old-plan.json")).unwrap_err();
        assert!(
            e.to_string().contains("old-plan.json") && e.to_string().contains("version 7"),
            "{e}"
        );
        // A plan of the previous layout (1) is refused by its version.
        v["schema_version"] = 1.into();
        let e = Plan::from_json(v.to_string().as_bytes(), Path::new("v1.json")).unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::SchemaVersion {
                    found: 1,
                    expected: PLAN_SCHEMA_VERSION,
                    ..
                }
            ),
            "{e}"
        );
        let e = Plan::from_json(
            format!(r#"{{"schema_version": {PLAN_SCHEMA_VERSION}, "campaigns": []}}"#).as_bytes(),
            Path::new("snap.json"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("snap.json"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn truncated_or_mutated_plans_never_panic(cut in 0usize..2000, pos in 0usize..2000, byte in proptest::prelude::any::<u8>()) {
            let mut bytes = sample().to_json();
            let n = bytes.len();
            bytes[pos % n] = byte;
            let _ = Plan::from_json(&bytes, Path::new("m.json"));
            let good = sample().to_json();
            proptest::prop_assert!(Plan::from_json(&good[..cut.min(n - 2)], Path::new("t.json")).is_err());
        }
    }
}
