//! Errors from a fetch: which upstream call failed, for which campaign,
//! lead or threshold, and (through the wrapped upstream error, given as the
//! `source`, not repeated in this message) what to do. [`FetchError::class`]
//! says what kind of failure it is, for exit codes.

use std::time::Duration;

use rebalancer_upstream::{ErrorClass, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("reading the CMS lead-user mapping of process {process_id}, campaign {campaign_id}, lead {lead_id} failed")]
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
    #[error("reading the Webex Campaign users failed")]
    Webex(#[source] UpstreamError),
    #[error("reading Zoho restrict_to of threshold {threshold_id} failed")]
    Zoho {
        threshold_id: String,
        #[source]
        source: UpstreamError,
    },
    /// The whole fetch took longer than `FetchOptions::deadline`.
    #[error("the fetch did not finish within {} s (fetch.deadline_secs); fix: check that the upstreams are healthy (see the retry warnings), or raise fetch.deadline_secs", .limit.as_secs_f64())]
    Deadline { limit: Duration },
    /// Webex knows too few of the CMS agents: an empty or nearly empty user
    /// list is an outage, not a fact (planning on it would unassign everyone).
    #[error("Webex Campaign knows only {known} of the {cms_agents} CMS agents ({share:.0} %), below fetch.min_webex_coverage = {min:.0} %; an empty or partial user list is treated as an outage, not as \"everyone inactive\"; fix: check Webex Campaign (webex.base_url, webex.api_key, the tenant) and run again, or lower fetch.min_webex_coverage if this is expected", share = 100.0 * *.known as f64 / (*.cms_agents).max(1) as f64, min = 100.0 * .min_share)]
    WebexCoverage {
        known: usize,
        cms_agents: usize,
        min_share: f64,
    },
}

impl FetchError {
    /// The upstream error underneath, if any.
    pub fn upstream(&self) -> Option<&UpstreamError> {
        match self {
            FetchError::Lead { source, .. } | FetchError::Zoho { source, .. } => Some(source),
            FetchError::Webex(source) => Some(source),
            FetchError::LeadNotFoundStrict { .. }
            | FetchError::UnknownCampaign { .. }
            | FetchError::Deadline { .. }
            | FetchError::WebexCoverage { .. } => None,
        }
    }

    /// What kind of failure this is: the upstream error's class when there
    /// is one; a missed deadline and a Webex outage are `Unavailable`; the
    /// rest (unknown leads and campaigns) `Data`.
    pub fn class(&self) -> ErrorClass {
        match self {
            FetchError::Deadline { .. } | FetchError::WebexCoverage { .. } => {
                ErrorClass::Unavailable
            }
            other => other
                .upstream()
                .map_or(ErrorClass::Data, UpstreamError::class),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let d = FetchError::Deadline {
            limit: Duration::from_secs(300),
        };
        assert_eq!(d.class(), ErrorClass::Unavailable);
        assert!(d.to_string().contains("300 s (fetch.deadline_secs)"), "{d}");
        let c = FetchError::WebexCoverage {
            known: 0,
            cms_agents: 40,
            min_share: 0.5,
        };
        assert_eq!(c.class(), ErrorClass::Unavailable);
        assert!(c.to_string().contains("0 of the 40"), "{c}");
        let u = FetchError::UnknownCampaign {
            process_id: 1,
            campaign_id: 2,
            leads: 3,
        };
        assert_eq!(u.class(), ErrorClass::Data);
        let w = FetchError::Webex(UpstreamError::TokenExpired {
            endpoint: "GET /u".into(),
        });
        assert_eq!(w.class(), ErrorClass::Auth);
        // The cause is the source, not repeated in the message.
        assert!(!w.to_string().contains("API key"), "{w}");
        assert!(std::error::Error::source(&w).is_some());
    }
}
