//! Identifiers shared across the pipeline.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// An agent, named by its CMS user id (`anav_agent`). The CMS user id equals
/// the Webex Campaign username; Zoho users are joined to it by email.
///
/// Shared, immutable text: a clone is a reference count, not a copy, so
/// plans that name an agent on every lead of its pool (millions of entries
/// at bench scale) hold each name once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(pub Arc<str>);

impl AgentId {
    pub fn new(id: impl AsRef<str>) -> Self {
        AgentId(Arc::from(id.as_ref()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AgentId {
    fn from(s: &str) -> Self {
        AgentId(Arc::from(s))
    }
}

/// A lead, named by the campaign it belongs to and its lead id. Lead ids are
/// assumed unique only within a campaign, so both are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeadKey {
    pub campaign_id: u64,
    pub lead_id: u64,
}

impl fmt::Display for LeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.campaign_id, self.lead_id)
    }
}

impl std::str::FromStr for LeadKey {
    type Err = String;

    /// Parses `CAMPAIGN/LEAD`, e.g. `501/1003`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (c, l) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not CAMPAIGN/LEAD (e.g. 501/1003)"))?;
        let num = |part: &str, what: &str| {
            part.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{s}`: the {what} id `{part}` is not a whole number"))
        };
        Ok(LeadKey {
            campaign_id: num(c, "campaign")?,
            lead_id: num(l, "lead")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_key_round_trips_through_text() {
        let k: LeadKey = "501/1003".parse().unwrap();
        assert_eq!(
            k,
            LeadKey {
                campaign_id: 501,
                lead_id: 1003
            }
        );
        assert_eq!(k.to_string(), "501/1003");
        assert!("501".parse::<LeadKey>().is_err());
        assert!("a/1".parse::<LeadKey>().unwrap_err().contains("campaign"));
    }
}
