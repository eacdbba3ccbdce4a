//! Planning configuration: the `[plan]` section of the config file. Plain
//! data; the binary reads it. What-ifs come typed beside it
//! ([`crate::WhatIfs`]).
//!
//! Leads are named `CAMPAIGN/LEAD` (e.g. `501/1003`), or by a bare lead id
//! when it occurs in one campaign only; agents by CMS user id.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What happens to agents that could not be joined to a Zoho threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnjoinedPolicy {
    /// Keep their current assignments as they are; give them nothing new.
    #[default]
    Freeze,
    /// Treat them as having `unjoined_headroom` records of headroom.
    Unlimited,
}

/// Which solver computes the flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolverChoice {
    /// Exact network-flow stages (default).
    #[default]
    Flow,
    /// The general LP model through good_lp.
    Lp,
}

/// How far the balance stage drives peak utilisation down
/// (`plan.target_utilisation`): a number `X` in (0, 1] caps every agent at
/// `max(u*, X)` of its headroom and no lower, so the change stage needs
/// fewer moves; `"optimal"` drives the peak to the exact least `u*`.
/// `1.0` means "shortfall first, then the fewest changes".
///
/// Written as a number (`0.9`) or the string `"optimal"`; a number given as
/// a string (`"0.9"`, as environment variables are) is read as the number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TargetUtilisation {
    Optimal,
    At(f64),
}

impl TargetUtilisation {
    /// Targets are kept to 4 decimals (exact fractions `n/10000`).
    pub const DENOMINATOR: i64 = 10_000;

    /// The target as a fraction; `None` for `Optimal`.
    pub fn ratio(self) -> Option<crate::Ratio> {
        match self {
            TargetUtilisation::Optimal => None,
            TargetUtilisation::At(x) => Some(crate::Ratio::nearest(x, Self::DENOMINATOR)),
        }
    }

    /// The target as a number; `None` for `Optimal`.
    pub fn value(self) -> Option<f64> {
        self.ratio().map(|r| r.to_f64())
    }

    /// Parse `"optimal"` or a number in (0, 1] (for
    /// `--target-utilisation`).
    pub fn parse(text: &str) -> Result<TargetUtilisation, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("optimal") {
            return Ok(TargetUtilisation::Optimal);
        }
        let x = text
            .parse::<f64>()
            .map_err(|_| format!("`{text}` is neither a number in (0, 1] nor \"optimal\""))?;
        TargetUtilisation::At(x).checked()
    }

    /// Itself when its share is in (0, 1]; else why not.
    pub fn checked(self) -> Result<TargetUtilisation, String> {
        match self {
            TargetUtilisation::At(x) if !(x.is_finite() && x > 0.0 && x <= 1.0) => Err(format!(
                "{x} is not a share in (0, 1] (0.9 = nobody above 90 % of their headroom); or use \"optimal\""
            )),
            t => Ok(t),
        }
    }
}

impl std::fmt::Display for TargetUtilisation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value() {
            None => f.write_str("optimal"),
            Some(x) => write!(f, "{x:.2}"),
        }
    }
}

impl Serialize for TargetUtilisation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TargetUtilisation::Optimal => s.serialize_str("optimal"),
            TargetUtilisation::At(x) => s.serialize_f64(*x),
        }
    }
}

impl<'de> Deserialize<'de> for TargetUtilisation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(x) => Ok(TargetUtilisation::At(x)),
            Raw::Text(t) => TargetUtilisation::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanConfig {
    pub solver: SolverChoice,
    /// good_lp backend for `solver = "lp"`: `microlp`, `coin_cbc`, `highs`.
    pub lp_backend: String,
    /// Default demand: this share of the agents' total headroom, split over
    /// leads by weight.
    pub demand_share: f64,
    /// Explicit demand (records) per lead, `"CAMPAIGN/LEAD" = N`.
    pub demand: BTreeMap<String, u64>,
    /// Lead weights for the default demand, `"CAMPAIGN/LEAD" = w` (default 1).
    pub lead_weights: BTreeMap<String, f64>,
    /// Campaign weights, `"CAMPAIGN" = w`, multiplied into lead weights.
    pub campaign_weights: BTreeMap<String, f64>,
    /// A new pair is assigned when its planned flow reaches this (records).
    pub min_flow: f64,
    /// How far the balance stage drives peak utilisation down.
    pub target_utilisation: TargetUtilisation,
    pub unjoined_policy: UnjoinedPolicy,
    /// Headroom given to unjoined agents under `unjoined_policy = "unlimited"`.
    pub unjoined_headroom: u64,
    /// Most leads one agent may hold after the plan (0 = no cap).
    pub max_leads_per_agent: usize,
    /// Dead band: optimisation moves are made only when the plan lowers
    /// shortfall by at least this many records...
    pub min_shortfall_gain: f64,
    /// ...or lowers peak utilisation by at least this much (0.05 = 5 points).
    pub min_balance_gain: f64,
    /// Most optimisation moves (covers shortfall, balances load, frees
    /// capacity) per run (0 = no cap). Safety, pin, lead-cap and
    /// keep-staffed changes always go and do not count.
    pub max_moves_per_run: usize,
    /// Most optimisation moves per agent per run (0 = no cap); counted as
    /// `max_moves_per_run` is.
    pub max_moves_per_agent: usize,
    /// Blast radius: a plan that unassigns more than this share of the
    /// current pairs is blocked until a person allows it.
    pub max_unassign_share: f64,
    /// Agents whose assignments stay exactly as they are.
    pub frozen_agents: Vec<String>,
    /// Leads whose assignments stay exactly as they are.
    pub frozen_leads: Vec<String>,
    /// Agents never assigned anywhere (and unassigned where they are).
    pub exclude_agents: Vec<String>,
    /// `"AGENT@CAMPAIGN/LEAD"`: this agent never on this lead.
    pub exclude_pairs: Vec<String>,
    /// `"AGENT@CAMPAIGN/LEAD"`: this agent always on this lead.
    pub pins: Vec<String>,
    /// What-if: `"AGENT=N"` sets the agent's Zoho backlog allowance to N.
    /// (A list, not a table: agent ids are case-sensitive.)
    pub set_allowance: Vec<String>,
}

/// A `[plan]` value outside its range: the key (a map entry as
/// `plan.lead_weights."501/7"`) and the problem, worded after the key
/// ("is 1.5; it must be ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    pub key: String,
    pub problem: String,
}

/// Most a lead or campaign weight may be: weights are multiplied and
/// summed, and 10^6 keeps every product finite and meaningful.
pub const MAX_WEIGHT: f64 = 1e6;

impl PlanConfig {
    /// Every range rule of `[plan]`, in one place: the binary's settings
    /// call it at load (naming where the key was set), the planner before
    /// it plans (for library callers). Names and pins are checked against
    /// the snapshot when planning.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        let records = crate::limits::MAX_RECORDS as f64;
        let bad = |key: &str, problem: String| InvalidValue {
            key: key.to_owned(),
            problem,
        };
        let share = |key: &str, v: f64, zero_ok: bool| {
            let ok = v.is_finite() && v <= 1.0 && if zero_ok { v >= 0.0 } else { v > 0.0 };
            let range = if zero_ok {
                "between 0 and"
            } else {
                "above 0 and at most"
            };
            ok.then_some(())
                .ok_or_else(|| bad(key, format!("is {v}; it must be a number {range} 1")))
        };
        let up_to = |key: &str, v: f64, max: f64, means: &str| {
            (v.is_finite() && (0.0..=max).contains(&v))
                .then_some(())
                .ok_or_else(|| {
                    bad(
                        key,
                        format!("is {v}; it must be a number between 0 and {max} ({means})"),
                    )
                })
        };
        share("plan.demand_share", self.demand_share, false)?;
        share("plan.max_unassign_share", self.max_unassign_share, true)?;
        if let TargetUtilisation::At(x) = self.target_utilisation {
            share("plan.target_utilisation", x, false)?;
        }
        up_to(
            "plan.min_shortfall_gain",
            self.min_shortfall_gain,
            records,
            "the planner's limit of 10^12 records",
        )?;
        up_to(
            "plan.min_balance_gain",
            self.min_balance_gain,
            1.0,
            "a gain of 100 points of utilisation",
        )?;
        if !(self.min_flow.is_finite() && self.min_flow > 0.0 && self.min_flow <= records) {
            return Err(bad(
                "plan.min_flow",
                format!(
                    "is {}; it must be a number above 0 and at most {records} (the planner's limit of 10^12 records)",
                    self.min_flow
                ),
            ));
        }
        for (lead, &w) in &self.lead_weights {
            up_to(
                &format!("plan.lead_weights.\"{lead}\""),
                w,
                MAX_WEIGHT,
                "a million",
            )?;
        }
        for (campaign, &w) in &self.campaign_weights {
            up_to(
                &format!("plan.campaign_weights.\"{campaign}\""),
                w,
                MAX_WEIGHT,
                "a million",
            )?;
        }
        for (lead, &d) in &self.demand {
            if d > crate::limits::MAX_RECORDS as u64 {
                return Err(bad(
                    &format!("plan.demand.\"{lead}\""),
                    format!("is {d}; it must be at most 10^12 records (the planner's limit)"),
                ));
            }
        }
        if self.unjoined_headroom > crate::limits::MAX_RECORDS as u64 {
            return Err(bad(
                "plan.unjoined_headroom",
                format!(
                    "is {}; it must be between 0 and {} (the planner's limit of 10^12 records)",
                    self.unjoined_headroom,
                    crate::limits::MAX_RECORDS
                ),
            ));
        }
        Ok(())
    }
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            solver: SolverChoice::Flow,
            lp_backend: "microlp".into(),
            demand_share: 0.8,
            demand: BTreeMap::new(),
            lead_weights: BTreeMap::new(),
            campaign_weights: BTreeMap::new(),
            min_flow: 1e-6,
            target_utilisation: TargetUtilisation::At(0.9),
            unjoined_policy: UnjoinedPolicy::Freeze,
            unjoined_headroom: 10,
            max_leads_per_agent: 0,
            min_shortfall_gain: 1.0,
            min_balance_gain: 0.02,
            max_moves_per_run: 0,
            max_moves_per_agent: 0,
            max_unassign_share: 0.25,
            frozen_agents: Vec::new(),
            frozen_leads: Vec::new(),
            exclude_agents: Vec::new(),
            exclude_pairs: Vec::new(),
            pins: Vec::new(),
            set_allowance: Vec::new(),
        }
    }
}

impl PlanConfig {
    /// SHA-256 (hex) of the canonical JSON of this config alone (no
    /// campaigns, no what-ifs). Holds no secrets.
    pub fn digest(&self) -> String {
        self.digest_with(&[], &[])
    }

    /// The digest a plan records (`config_digest`): this config, the
    /// campaigns it was made over (`[[cms.campaigns]]`, as `(process_id,
    /// campaign_id)`, any order, duplicates ignored) and its what-ifs
    /// (canonical lines, sorted). Plans with the same digest were made under
    /// the same `[plan]` rules, over the same campaigns, with the same
    /// what-ifs; a config that drops or adds a campaign gives another
    /// digest. Deterministic: the campaigns are sorted here, and none of the
    /// three parts can be mistaken for another (the config is one line of
    /// JSON, the campaigns one line starting `[[cms.campaigns]]`, every
    /// what-if line starts `plan.`). With no campaigns and no what-ifs,
    /// equal to [`PlanConfig::digest`].
    pub fn digest_with(&self, what_ifs: &[String], campaigns: &[(u64, u64)]) -> String {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(serde_json::to_vec(self).expect("a plan config always serialises"));
        if !campaigns.is_empty() {
            let mut sorted = campaigns.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            hasher.update(b"\n[[cms.campaigns]]");
            for (process, campaign) in sorted {
                hasher.update(format!(" {process}:{campaign}").as_bytes());
            }
        }
        for w in what_ifs {
            hasher.update(b"\n");
            hasher.update(w.as_bytes());
        }
        format!("{:x}", hasher.finalize())
    }
}

#[cfg(test)]
mod digest_tests {
    use super::PlanConfig;
    use proptest::prelude::*;

    proptest! {
        /// The digest depends on the set of campaigns, not on their order
        /// or repeats, and every campaign added or dropped changes it.
        #[test]
        fn campaigns_are_in_the_digest_as_a_set(
            campaigns in proptest::collection::vec((0u64..4, 0u64..6), 1..8),
            extra in (4u64..8, 0u64..6),
            seed in any::<u64>(),
        ) {
            let cfg = PlanConfig::default();
            let what_ifs = vec!["plan.set_allowance: a=1".to_string()];
            let d = cfg.digest_with(&what_ifs, &campaigns);
            let mut shuffled = campaigns.clone();
            shuffled.rotate_left((seed as usize) % campaigns.len());
            shuffled.push(campaigns[0]);
            prop_assert_eq!(&d, &cfg.digest_with(&what_ifs, &shuffled));
            let mut more = campaigns.clone();
            more.push(extra);
            prop_assert_ne!(&d, &cfg.digest_with(&what_ifs, &more));
            let first = campaigns[0];
            let fewer: Vec<_> = campaigns.iter().copied().filter(|c| *c != first).collect();
            prop_assert_ne!(&d, &cfg.digest_with(&what_ifs, &fewer));
            prop_assert_ne!(&d, &cfg.digest_with(&[], &campaigns));
            prop_assert_eq!(d.len(), 64);
        }
    }

    #[test]
    fn without_campaigns_or_what_ifs_the_digest_is_the_configs() {
        let cfg = PlanConfig::default();
        assert_eq!(cfg.digest(), cfg.digest_with(&[], &[]));
        assert_ne!(cfg.digest(), cfg.digest_with(&[], &[(1, 501)]));
    }
}

#[cfg(test)]
mod validate_tests {
    use super::*;

    /// Each range rule of `[plan]` refuses just outside its bound, naming
    /// the key, and accepts the bound itself.
    #[test]
    fn validate_names_the_key_outside_each_range_and_accepts_the_bounds() {
        let base = PlanConfig::default;
        let refused = [
            (
                PlanConfig {
                    demand_share: 0.0,
                    ..base()
                },
                "plan.demand_share",
            ),
            (
                PlanConfig {
                    demand_share: 1.01,
                    ..base()
                },
                "plan.demand_share",
            ),
            (
                PlanConfig {
                    max_unassign_share: -0.1,
                    ..base()
                },
                "plan.max_unassign_share",
            ),
            (
                PlanConfig {
                    target_utilisation: TargetUtilisation::At(0.0),
                    ..base()
                },
                "plan.target_utilisation",
            ),
            (
                PlanConfig {
                    min_shortfall_gain: f64::INFINITY,
                    ..base()
                },
                "plan.min_shortfall_gain",
            ),
            (
                PlanConfig {
                    min_balance_gain: 1.5,
                    ..base()
                },
                "plan.min_balance_gain",
            ),
            (
                PlanConfig {
                    min_flow: 0.0,
                    ..base()
                },
                "plan.min_flow",
            ),
            (
                PlanConfig {
                    lead_weights: [("2/3".to_string(), 1e7)].into(),
                    ..base()
                },
                "plan.lead_weights.\"2/3\"",
            ),
            (
                PlanConfig {
                    campaign_weights: [("2".to_string(), f64::NAN)].into(),
                    ..base()
                },
                "plan.campaign_weights.\"2\"",
            ),
            (
                PlanConfig {
                    demand: [("2/3".to_string(), 1_000_000_000_001)].into(),
                    ..base()
                },
                "plan.demand.\"2/3\"",
            ),
            (
                PlanConfig {
                    unjoined_headroom: 1_000_000_000_001,
                    ..base()
                },
                "plan.unjoined_headroom",
            ),
        ];
        for (cfg, key) in refused {
            let e = cfg.validate().expect_err(key);
            assert_eq!(e.key, key, "{e:?}");
            assert!(e.problem.starts_with("is "), "{e:?}");
        }
        let at_the_bounds = PlanConfig {
            demand_share: 1.0,
            max_unassign_share: 0.0,
            target_utilisation: TargetUtilisation::At(1.0),
            min_shortfall_gain: 1e12,
            min_balance_gain: 1.0,
            min_flow: 1e12,
            lead_weights: [("2/3".to_string(), MAX_WEIGHT)].into(),
            demand: [("2/3".to_string(), 1_000_000_000_000)].into(),
            unjoined_headroom: 1_000_000_000_000,
            ..base()
        };
        assert_eq!(at_the_bounds.validate(), Ok(()));
        assert!(TargetUtilisation::parse("1.5").is_err());
        assert_eq!(
            TargetUtilisation::parse(" optimal "),
            Ok(TargetUtilisation::Optimal)
        );
    }
}
