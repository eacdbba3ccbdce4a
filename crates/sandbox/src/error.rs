//! [`SandboxError`]: why a test's change to the sandbox's world was refused
//! (an unknown lead or user, a user outside a lead's pool, in Webex or in
//! Zoho). Wire errors are not here: handlers answer them as HTTP bodies.

/// A state change asked of the sandbox that does not fit its world.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// No lead with this (campaign, lead) id.
    #[error("sandbox: no lead {lead_id} in campaign {campaign_id}")]
    UnknownLead { campaign_id: u64, lead_id: u64 },
    /// No user with this username (or email, or Zoho user id).
    #[error("sandbox: no user {who:?}")]
    UnknownUser { who: String },
    /// The user is not in the lead's pool (its assigned and unassigned users).
    #[error(
        "sandbox: user {username:?} is not in the pool of lead {lead_id} of campaign {campaign_id}"
    )]
    NotInPool {
        username: String,
        campaign_id: u64,
        lead_id: u64,
    },
    /// The user has no Webex Campaign account.
    #[error("sandbox: user {username:?} is not a Webex Campaign user")]
    NotInWebex { username: String },
    /// The user has no Zoho assignment threshold entry.
    #[error("sandbox: user {who:?} has no Zoho assignment threshold entry")]
    NotInZoho { who: String },
}
