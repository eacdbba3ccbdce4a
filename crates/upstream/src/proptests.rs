//! Property tests of the wire-format parsers: arbitrary bytes, truncated
//! and mutated valid bodies must give `Ok` or `Err`, never a panic, and
//! absurdly nested bodies must be refused.

use proptest::prelude::*;

use crate::cms::parse_lead_users;
use crate::webex::parse_users;
use crate::zoho::{parse_threshold_page, parse_token};

const CMS: &str = r#"{"campaignLeadId":1,"assignedCampaignUserIds":[1],"unassignedCampaignUserIds":[3817,3802],"leadId":2,"campaignId":1,"assignedUserIds":["anav_agent"],"unassignedUserIds":["madhur1","exe_gs"]}"#;
const WEBEX: &str = r#"{"code":200,"users":[{"username":"anav_agent","user_email":"anav@x.com","display_name":"Anav","role_id":"3","role_desc":"Agent","user_status":"Active","role_status":"Active","user_id":17,"user_first_name":"A","user_last_name":"N"}]}"#;
const ZOHO: &str = r#"{"restrict_to":[{"backlog_allow_count":2,"default_assignee":false,"record_allow_count":10,"record_assigned_count":0,"type":"user","user":{"name":"Patricia Boyle","id":"1862079000000440001","email":"patricia.boyle@zylker.com"},"backlog_count":0}],"info":{"next_page":2,"per_page":200,"count":1,"more_records":true}}"#;
const TOKEN: &str = r#"{"access_token":"1000.abc.def","api_domain":"https://www.zohoapis.com","token_type":"Bearer","expires_in":3600}"#;

/// Runs every parser on `bytes`; the results are irrelevant, panics are not.
fn run_all(bytes: &[u8]) {
    let _ = parse_lead_users(bytes);
    let _ = parse_users(bytes);
    let _ = parse_threshold_page(bytes);
    let _ = parse_token(bytes);
}

/// A valid body with some bytes overwritten.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8).prop_map(
        move |edits| {
            let mut bytes = base.as_bytes().to_vec();
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes
        },
    )
}

fn valid_body() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(CMS), Just(WEBEX), Just(ZOHO), Just(TOKEN)]
}

proptest! {
    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        run_all(&bytes);
    }

    #[test]
    fn arbitrary_text(text in "\\PC{0,256}") {
        run_all(text.as_bytes());
    }

    #[test]
    fn truncated_valid_bodies(body in valid_body(), cut in any::<prop::sample::Index>()) {
        let bytes = body.as_bytes();
        run_all(&bytes[..cut.index(bytes.len() + 1)]);
    }

    #[test]
    fn mutated_cms(bytes in mutated(CMS)) { run_all(&bytes); }

    #[test]
    fn mutated_webex(bytes in mutated(WEBEX)) { run_all(&bytes); }

    #[test]
    fn mutated_zoho(bytes in mutated(ZOHO)) { run_all(&bytes); }

    #[test]
    fn mutated_token(bytes in mutated(TOKEN)) { run_all(&bytes); }
}

#[test]
fn valid_bodies_parse() {
    assert!(parse_lead_users(CMS.as_bytes()).is_ok());
    assert!(parse_users(WEBEX.as_bytes()).is_ok());
    assert!(parse_threshold_page(ZOHO.as_bytes()).is_ok());
    assert!(parse_token(TOKEN.as_bytes()).is_ok());
}

#[test]
fn deeply_nested_bodies_are_refused() {
    for open in ["[", "{\"a\":"] {
        let deep = open.repeat(100_000);
        assert!(parse_lead_users(deep.as_bytes()).is_err());
        assert!(parse_users(deep.as_bytes()).is_err());
        assert!(parse_threshold_page(deep.as_bytes()).is_err());
        assert!(parse_token(deep.as_bytes()).is_err());
    }
    // Nesting inside an otherwise valid envelope too.
    let nested = format!(r#"{{"assignedUserIds":{}}}"#, "[".repeat(100_000));
    assert!(parse_lead_users(nested.as_bytes()).is_err());
}
