//! Benchmark instance families, as `../shared/bench-instances.md` defines
//! them, built as snapshots so a benchmark measures the whole plan (prepare,
//! every stage, rounding, diff), not just the solver.
//!
//! - `uniform`: the family the reference figures were measured on.
//!   splitmix64 from `seed`; headroom `below(51)`; each agent draws
//!   `min(k, L)` distinct leads (`k = 20`), the first 2 current; lead weight
//!   `0.5 + unit()`; demand `round(0.8 · Σh · w_j / Σw)`.
//! - `skewed` (ours): the same generator with `k = 6`, 5 % of leads drawn
//!   hot (weight × 4) and demand share 0.6, so the balance stage has real
//!   work (u* > F*/Σh) while all demand can still be carried.

use crate::config::{PlanConfig, TargetUtilisation};
use rebalancer_model::{
    Agent, AgentId, Campaign, Lead, Snapshot, SnapshotSource, ThresholdEntry, WebexStatus,
    SNAPSHOT_SCHEMA_VERSION,
};
use std::collections::BTreeMap;

/// splitmix64, exactly as the bench-instances spec gives it.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Uniform,
    Skewed,
}

impl Family {
    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "uniform" => Some(Family::Uniform),
            "skewed" => Some(Family::Skewed),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Family::Uniform => "uniform",
            Family::Skewed => "skewed",
        }
    }
}

/// One generated instance: headroom, pairs (agent, lead, current), demand.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub headroom: Vec<u64>,
    pub pairs: Vec<(usize, usize, bool)>,
    pub demand: Vec<u64>,
}

/// Generate `agents × leads` of a family with `seed`.
pub fn generate(family: Family, agents: usize, leads: usize, seed: u64) -> Generated {
    let (k, share, hot) = match family {
        Family::Uniform => (20, 0.8, false),
        Family::Skewed => (6, 0.6, true),
    };
    let mut rng = SplitMix64::new(seed);
    let headroom: Vec<u64> = (0..agents).map(|_| rng.below(51)).collect();
    let mut pairs = Vec::with_capacity(agents * k.min(leads));
    let mut drawn = Vec::with_capacity(k);
    for i in 0..agents {
        drawn.clear();
        while drawn.len() < k.min(leads) {
            let j = rng.below(leads as u64) as usize;
            if !drawn.contains(&j) {
                drawn.push(j);
            }
        }
        for (n, &j) in drawn.iter().enumerate() {
            pairs.push((i, j, n < 2));
        }
    }
    let weights: Vec<f64> = (0..leads)
        .map(|_| {
            let w = 0.5 + rng.unit();
            if hot && rng.below(20) == 0 {
                w * 4.0
            } else {
                w
            }
        })
        .collect();
    let total: u64 = headroom.iter().sum();
    let weight_sum: f64 = weights.iter().sum();
    let demand = weights
        .iter()
        .map(|w| (share * total as f64 * w / weight_sum).round() as u64)
        .collect();
    Generated {
        headroom,
        pairs,
        demand,
    }
}

impl Generated {
    /// The instance as the stages see it (for solver-only benches and the
    /// greedy baseline).
    pub fn to_instance(&self) -> crate::Instance {
        crate::Instance::new(
            self.headroom.iter().map(|&h| h as i64).collect(),
            self.demand.iter().map(|&d| d as i64).collect(),
            self.pairs.iter().copied(),
        )
    }

    /// The instance as a snapshot (agents `a000000`…, one campaign, lead
    /// ids = indices) plus a planning config carrying the exact demands.
    pub fn to_snapshot(&self) -> (Snapshot, PlanConfig) {
        // One shared name per agent: leads hold clones (reference counts).
        let names: Vec<AgentId> = (0..self.headroom.len())
            .map(|i| AgentId::new(format!("a{i:06}")))
            .collect();
        let name = |i: usize| names[i].clone();
        let mut leads: Vec<Lead> = (0..self.demand.len())
            .map(|j| Lead {
                lead_id: j as u64,
                campaign_lead_id: None,
                assigned: Vec::new(),
                unassigned: Vec::new(),
            })
            .collect();
        for &(i, j, current) in &self.pairs {
            if current {
                leads[j].assigned.push(name(i));
            } else {
                leads[j].unassigned.push(name(i));
            }
        }
        let agents = self
            .headroom
            .iter()
            .enumerate()
            .map(|(i, &h)| Agent {
                id: name(i),
                in_cms: true,
                webex: Some(WebexStatus {
                    username: name(i).0.to_string(),
                    email: None,
                    display_name: None,
                    role_desc: None,
                    user_status: Some("Active".into()),
                    role_status: Some("Active".into()),
                    active: true,
                }),
                zoho: None,
                thresholds: vec![ThresholdEntry {
                    threshold_id: "bench".into(),
                    backlog_allow_count: h as i64,
                    backlog_count: 0,
                    record_allow_count: 1_000_000,
                    record_assigned_count: 0,
                    default_assignee: false,
                }],
                headroom: None,
                default_assignee: false,
            })
            .collect();
        let mut snap = Snapshot {
            schema_version: SNAPSHOT_SCHEMA_VERSION,
            fetched_at: "1970-01-01T00:00:00Z".into(),
            source: SnapshotSource {
                description: "benchmark family".into(),
                cms_base_url: String::new(),
                contact_center_id: Some(1),
                webex_base_url: String::new(),
                zoho_api_domain: String::new(),
                zoho_module: "Leads".into(),
                threshold_ids: vec!["bench".into()],
            },
            campaigns: vec![Campaign {
                process_id: 1,
                campaign_id: 1,
                leads,
            }],
            agents,
            problems: Vec::new(),
        };
        snap.normalize();
        let demand: BTreeMap<String, u64> = self
            .demand
            .iter()
            .enumerate()
            .map(|(j, &d)| (format!("1/{j}"), d))
            .collect();
        let cfg = PlanConfig {
            demand,
            min_shortfall_gain: 0.0,
            min_balance_gain: 0.0,
            // The spec's figures are of the exact least peak u*.
            target_utilisation: TargetUtilisation::Optimal,
            ..PlanConfig::default()
        };
        (snap, cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_matches_the_reference_table() {
        // bench-instances.md: 100 × 10 has Σh = 2,249; 1,000 × 100 has 24,370.
        let g = generate(Family::Uniform, 100, 10, 42);
        assert_eq!(g.headroom.iter().sum::<u64>(), 2249);
        assert_eq!(g.pairs.len(), 1000);
        let g = generate(Family::Uniform, 1000, 100, 42);
        assert_eq!(g.headroom.iter().sum::<u64>(), 24370);
        assert_eq!(g.pairs.len(), 20_000);
    }
}
