//! Identifiers shared across the pipeline.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An agent, named by its CMS user id (`anav_agent`). The CMS user id equals
/// the Webex Campaign username; Zoho users are joined to it by email.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(pub String);

impl AgentId {
    pub fn new(id: impl Into<String>) -> Self {
        AgentId(id.into())
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
        AgentId(s.to_owned())
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
