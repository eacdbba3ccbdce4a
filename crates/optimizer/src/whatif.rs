//! What-ifs: "plan as if" overrides, parsed once into typed values.
//!
//! The binary turns the what-if flags of `rebalancer plan` into a
//! [`WhatIfs`] with the `parse_*` functions here and hands it to
//! [`crate::plan_with`]; the config file's `plan.set_allowance` list is
//! parsed by the same functions ([`WhatIfs::from_config`]). Errors name the
//! config key the value belongs to (`plan.set_allowance`, `plan.demand`,
//! `plan.pins`, ...), never a command-line flag: the binary adds the flag.
//!
//! Textual forms: `AGENT=N` (allowance), `CAMPAIGN/LEAD=N` or `LEAD=N`
//! (demand), `AGENT@CAMPAIGN/LEAD` (pin). Names are checked against the
//! snapshot later, when the plan is made ([`crate::prepare`]); here only
//! their syntax and the size of numbers.

use crate::limits::MAX_RECORDS;
use crate::{OptimizerError, PlanConfig};
use rebalancer_model::{AgentId, LeadKey};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A lead as written: `CAMPAIGN/LEAD`, or a bare lead id that must be
/// unique across campaigns in the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeadRef {
    Key(LeadKey),
    Bare(u64),
}

impl LeadRef {
    /// Parse `CAMPAIGN/LEAD` or `LEAD`; errors name `key`.
    pub fn parse(key: &'static str, text: &str) -> Result<LeadRef, OptimizerError> {
        let text = text.trim();
        if text.contains('/') {
            return text
                .parse::<LeadKey>()
                .map(LeadRef::Key)
                .map_err(|detail| OptimizerError::BadName { key, detail });
        }
        text.parse::<u64>()
            .map(LeadRef::Bare)
            .map_err(|_| OptimizerError::BadName {
                key,
                detail: format!("`{text}` is not CAMPAIGN/LEAD or a lead id (e.g. 501/1003)"),
            })
    }
}

impl fmt::Display for LeadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeadRef::Key(k) => k.fmt(f),
            LeadRef::Bare(id) => id.fmt(f),
        }
    }
}

/// `AGENT@CAMPAIGN/LEAD`: one agent on one lead.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PairRef {
    pub agent: AgentId,
    pub lead: LeadRef,
}

impl PairRef {
    /// Parse `AGENT@CAMPAIGN/LEAD` (the last `@` splits); errors name `key`.
    pub fn parse(key: &'static str, text: &str) -> Result<PairRef, OptimizerError> {
        let (agent, lead) = text
            .rsplit_once('@')
            .filter(|(a, _)| !a.trim().is_empty())
            .ok_or_else(|| OptimizerError::BadName {
                key,
                detail: format!("`{text}` is not AGENT@CAMPAIGN/LEAD (e.g. anav_agent@501/1003)"),
            })?;
        Ok(PairRef {
            agent: AgentId::new(agent.trim()),
            lead: LeadRef::parse(key, lead)?,
        })
    }
}

impl fmt::Display for PairRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.agent, self.lead)
    }
}

/// A whole number of records, at most [`MAX_RECORDS`].
fn records(key: &'static str, text: &str, n: &str, example: &str) -> Result<u64, OptimizerError> {
    let n = n.trim();
    let value: u64 = n.parse().map_err(|_| OptimizerError::BadName {
        key,
        detail: format!("`{text}`: `{n}` is not a whole number ≥ 0 (e.g. {example})"),
    })?;
    if value > MAX_RECORDS as u64 {
        return Err(OptimizerError::BadValue {
            key,
            detail: format!("`{text}`: {value} is above the limit of {MAX_RECORDS} records"),
        });
    }
    Ok(value)
}

/// Parse `AGENT=N` for `plan.set_allowance`.
pub fn parse_allowance(text: &str) -> Result<(AgentId, u64), OptimizerError> {
    const KEY: &str = "plan.set_allowance";
    let (agent, n) = text
        .rsplit_once('=')
        .filter(|(a, _)| !a.trim().is_empty())
        .ok_or_else(|| OptimizerError::BadName {
            key: KEY,
            detail: format!("`{text}` is not AGENT=N (e.g. anav_agent=20)"),
        })?;
    Ok((
        AgentId::new(agent.trim()),
        records(KEY, text, n, "anav_agent=20")?,
    ))
}

/// Parse `CAMPAIGN/LEAD=N` (or `LEAD=N`) for `plan.demand`.
pub fn parse_demand(text: &str) -> Result<(LeadRef, u64), OptimizerError> {
    const KEY: &str = "plan.demand";
    let (lead, n) = text
        .rsplit_once('=')
        .ok_or_else(|| OptimizerError::BadName {
            key: KEY,
            detail: format!("`{text}` is not CAMPAIGN/LEAD=N (e.g. 501/1003=40)"),
        })?;
    Ok((
        LeadRef::parse(KEY, lead)?,
        records(KEY, text, n, "501/1003=40")?,
    ))
}

/// Parse `AGENT@CAMPAIGN/LEAD` for `plan.pins`.
pub fn parse_pin(text: &str) -> Result<PairRef, OptimizerError> {
    PairRef::parse("plan.pins", text)
}

/// Parse a lead name for `plan.frozen_leads`.
pub fn parse_frozen_lead(text: &str) -> Result<LeadRef, OptimizerError> {
    LeadRef::parse("plan.frozen_leads", text)
}

/// "Plan as if": overrides laid over the snapshot and the `[plan]` rules
/// for one plan. Each is listed in the plan (`Plan::what_ifs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WhatIfs {
    /// Zoho backlog allowance per agent (`plan.set_allowance`).
    pub set_allowance: BTreeMap<AgentId, u64>,
    /// Demand (records) per lead, over the config (`plan.demand`).
    pub set_demand: BTreeMap<LeadRef, u64>,
    /// Agents unassigned everywhere and given nothing (`plan.exclude_agents`).
    pub exclude_agents: BTreeSet<AgentId>,
    /// Agents kept exactly as they are (`plan.frozen_agents`).
    pub freeze_agents: BTreeSet<AgentId>,
    /// Leads kept exactly as they are (`plan.frozen_leads`).
    pub freeze_leads: BTreeSet<LeadRef>,
    /// Agents forced onto leads (`plan.pins`).
    pub pins: BTreeSet<PairRef>,
}

impl WhatIfs {
    /// The what-ifs the config file itself carries: `plan.set_allowance`.
    pub fn from_config(cfg: &PlanConfig) -> Result<WhatIfs, OptimizerError> {
        let mut w = WhatIfs::default();
        for text in &cfg.set_allowance {
            let (agent, n) = parse_allowance(text)?;
            w.set_allowance.insert(agent, n);
        }
        Ok(w)
    }

    /// `other` laid over `self`: its allowances and demands win, its sets
    /// are added.
    pub fn merged(mut self, other: &WhatIfs) -> WhatIfs {
        self.set_allowance
            .extend(other.set_allowance.iter().map(|(a, n)| (a.clone(), *n)));
        self.set_demand
            .extend(other.set_demand.iter().map(|(l, n)| (*l, *n)));
        self.exclude_agents
            .extend(other.exclude_agents.iter().cloned());
        self.freeze_agents
            .extend(other.freeze_agents.iter().cloned());
        self.freeze_leads.extend(other.freeze_leads.iter().copied());
        self.pins.extend(other.pins.iter().cloned());
        self
    }

    pub fn is_empty(&self) -> bool {
        *self == WhatIfs::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textual_forms_parse_and_errors_name_the_key() {
        assert_eq!(
            parse_allowance("anav_agent = 20").unwrap(),
            (AgentId::new("anav_agent"), 20)
        );
        let (lead, n) = parse_demand("501/1003=40").unwrap();
        assert_eq!((lead.to_string(), n), ("501/1003".into(), 40));
        assert_eq!(parse_demand("1003=4").unwrap().0, LeadRef::Bare(1003));
        let pin = parse_pin("a@b@501/1003").unwrap();
        assert_eq!(pin.agent.as_str(), "a@b");
        assert_eq!(pin.to_string(), "a@b@501/1003");
        for (err, key) in [
            (parse_allowance("x").unwrap_err(), "plan.set_allowance"),
            (parse_allowance("x=-1").unwrap_err(), "plan.set_allowance"),
            (parse_allowance("=3").unwrap_err(), "plan.set_allowance"),
            (parse_demand("lots").unwrap_err(), "plan.demand"),
            (parse_demand("a/b=3").unwrap_err(), "plan.demand"),
            (parse_pin("nobody").unwrap_err(), "plan.pins"),
            (parse_frozen_lead("x").unwrap_err(), "plan.frozen_leads"),
        ] {
            let msg = err.to_string();
            assert!(msg.starts_with(key), "{msg}");
            assert!(!msg.contains("--"), "names a flag: {msg}");
        }
    }

    #[test]
    fn numbers_beyond_the_record_limit_are_refused_not_wrapped() {
        let e = parse_demand("501/1003=18446744073709551615").unwrap_err();
        assert!(
            e.to_string().contains("18446744073709551615") && e.to_string().contains("plan.demand"),
            "{e}"
        );
        assert!(parse_allowance(&format!("a={}", i64::MAX)).is_err());
        assert!(parse_allowance(&format!("a={MAX_RECORDS}")).is_ok());
    }

    #[test]
    fn merge_lays_the_second_over_the_first() {
        let mut a = WhatIfs::default();
        a.set_allowance.insert(AgentId::new("x"), 1);
        let mut b = WhatIfs::default();
        b.set_allowance.insert(AgentId::new("x"), 2);
        b.pins.insert(parse_pin("x@1/2").unwrap());
        let m = a.merged(&b);
        assert_eq!(m.set_allowance[&AgentId::new("x")], 2);
        assert_eq!(m.pins.len(), 1);
        assert!(!m.is_empty() && WhatIfs::default().is_empty());
    }
}
