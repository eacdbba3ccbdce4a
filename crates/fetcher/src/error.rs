//! Errors from a fetch: which upstream call failed, for which campaign,
//! lead or threshold, and (through the wrapped upstream error) what to do.

use rebalancer_upstream::UpstreamError;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "CMS lead-user for process {process_id}, campaign {campaign_id}, lead {lead_id}: {source}"
    )]
    Lead {
        process_id: u64,
        campaign_id: u64,
        lead_id: u64,
        #[source]
        source: UpstreamError,
    },
    #[error("lead {lead_id} of campaign {campaign_id} does not exist in the CMS (404 CONF-1001) and fetch.strict is on; remove it from [[cms.campaigns]] lead_ids or turn fetch.strict off to report it and go on")]
    LeadNotFoundStrict { campaign_id: u64, lead_id: u64 },
    #[error("campaign {campaign_id} (process {process_id}) is unknown to the CMS: all {leads} configured leads answered 404 CONF-1001; check process_id/campaign_id in [[cms.campaigns]]")]
    UnknownCampaign {
        process_id: u64,
        campaign_id: u64,
        leads: usize,
    },
    #[error("Webex Campaign users: {0}")]
    Webex(#[source] UpstreamError),
    #[error("Zoho restrict_to for threshold {threshold_id}: {source}")]
    Zoho {
        threshold_id: String,
        #[source]
        source: UpstreamError,
    },
}

impl FetchError {
    /// The upstream error underneath, if any (for exit-code mapping).
    pub fn upstream(&self) -> Option<&UpstreamError> {
        match self {
            FetchError::Lead { source, .. } | FetchError::Zoho { source, .. } => Some(source),
            FetchError::Webex(source) => Some(source),
            FetchError::LeadNotFoundStrict { .. } | FetchError::UnknownCampaign { .. } => None,
        }
    }
}
