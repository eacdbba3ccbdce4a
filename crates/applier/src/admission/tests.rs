//! Unit and property tests of [`admit`]: a plan
//! that fits passes every write path; each single difference is refused
//! with its own reason, on exactly the paths that check it.

use super::*;
use proptest::prelude::*;
use rebalancer_model::{
    Balance, Blocked, LeadKey, LeadPlan, Metrics, NewPairs, Objectives, Summary,
};
use time::macros::datetime;

const URL: &str = "https://cms-a.example.com";
const NOW: OffsetDateTime = datetime!(2026-12-01 12:00:00 UTC);
const DIGEST: &str = "cd";

fn lead(campaign_id: u64, lead_id: u64, process_id: u64) -> LeadPlan {
    LeadPlan {
        lead: LeadKey {
            campaign_id,
            lead_id,
        },
        process_id,
        demand: 1.0,
        covered_before: 1.0,
        covered: 1.0,
        shortfall: 0.0,
        target: vec![],
        current: vec![],
        frozen: false,
        default_assignee: None,
    }
}

/// A plan fetched an hour before [`NOW`] from system A, over campaigns
/// (process 1, campaign 501: leads 1, 2) and (1, 502: lead 7).
fn plan() -> Plan {
    let m = Metrics {
        shortfall: 0.0,
        peak_utilisation: 0.5,
        leads_uncovered: 0,
    };
    Plan {
        schema_version: PLAN_SCHEMA_VERSION,
        snapshot_hash: "ab".repeat(32),
        snapshot_fetched_at: "2026-12-01T11:00:00Z".into(),
        config_digest: DIGEST.repeat(32),
        solver: "flow".into(),
        system: TargetSystem {
            cms_base_url: URL.into(),
            contact_center_id: Some(7),
        },
        objectives: Objectives {
            before: m.clone(),
            after: m.clone(),
            optimum: m,
            churn: 0.0,
            balance: Balance {
                target: Some(0.9),
                least_peak: 0.5,
                cap: 0.9,
            },
            new_pairs: NewPairs {
                least_records: 0,
                reduced: 0,
            },
        },
        summary: Summary {
            agents: 0,
            leads: 3,
            assigns: 0,
            unassigns: 0,
            deferred: 0,
            kept: 0,
        },
        gate: None,
        blocked: None,
        caps: None,
        flap_guard: None,
        what_ifs: vec![],
        problems: vec![],
        changes: vec![],
        deferred: vec![],
        leads: vec![lead(501, 1, 1), lead(501, 2, 1), lead(502, 7, 1)],
        agents: vec![],
        notes: vec![],
    }
}

/// The config the plan was made under: its digest is `cd…` with no
/// what-ifs, `ef…` otherwise.
fn expected() -> Expected {
    Expected {
        system: TargetSystem {
            cms_base_url: URL.into(),
            contact_center_id: Some(7),
        },
        campaigns: vec![
            ConfiguredCampaign {
                process_id: 1,
                campaign_id: 501,
                lead_ids: vec![1, 2, 3],
            },
            ConfiguredCampaign {
                process_id: 1,
                campaign_id: 502,
                lead_ids: vec![7],
            },
        ],
        config_digest: ConfigDigest::new(|w| {
            if w.is_empty() {
                DIGEST.repeat(32)
            } else {
                "ef".repeat(32)
            }
        }),
        max_plan_age: Duration::from_secs(3600),
        max_clock_skew: MAX_CLOCK_SKEW,
        now: NOW,
    }
}

const PATHS: [WritePath; 3] = [WritePath::Apply, WritePath::Resume, WritePath::Rollback];

#[test]
fn a_plan_that_fits_passes_every_path() {
    for path in PATHS {
        assert_eq!(admit(&plan(), &expected(), path, false), Ok(()), "{path}");
    }
}

/// One difference between plan and config, the reason it must be refused
/// for, and whether a rollback checks it.
struct Case {
    name: &'static str,
    change: fn(&mut Plan, &mut Expected),
    refused: fn(&Refusal) -> bool,
    rollback_checks: bool,
}

fn cases() -> Vec<Case> {
    [form_cases(), system_cases(), time_cases(), rules_cases()]
        .into_iter()
        .flatten()
        .collect()
}

/// The plan file's own form: schema version and hashes.
fn form_cases() -> Vec<Case> {
    vec![
        Case {
            name: "schema version",
            change: |p, _| p.schema_version = PLAN_SCHEMA_VERSION - 1,
            refused: |r| matches!(r, Refusal::SchemaVersion { .. }),
            rollback_checks: true,
        },
        Case {
            name: "non-ASCII snapshot hash",
            change: |p, _| p.snapshot_hash = format!("{}é", "a".repeat(62)),
            refused: |r| {
                matches!(
                    r,
                    Refusal::MalformedHash {
                        field: "snapshot_hash",
                        ..
                    }
                )
            },
            rollback_checks: true,
        },
        Case {
            name: "upper-case config digest",
            change: |p, e| {
                p.config_digest = "CD".repeat(32);
                e.config_digest = ConfigDigest::new(|_| "CD".repeat(32));
            },
            refused: |r| {
                matches!(
                    r,
                    Refusal::MalformedHash {
                        field: "config_digest",
                        ..
                    }
                )
            },
            rollback_checks: true,
        },
    ]
}

/// Another system than the config names.
fn system_cases() -> Vec<Case> {
    vec![
        Case {
            name: "other CMS",
            change: |_, e| e.system.cms_base_url = "https://cms-b.example.com".into(),
            refused: |r| matches!(r, Refusal::OtherSystem { .. }),
            rollback_checks: true,
        },
        Case {
            name: "other contact center",
            change: |_, e| e.system.contact_center_id = Some(8),
            refused: |r| matches!(r, Refusal::OtherSystem { .. }),
            rollback_checks: true,
        },
        Case {
            name: "no contact center",
            change: |p, e| {
                p.system.contact_center_id = None;
                e.system.contact_center_id = None;
            },
            refused: |r| matches!(r, Refusal::NoContactCenter),
            rollback_checks: true,
        },
    ]
}

/// When the plan's snapshot was fetched.
fn time_cases() -> Vec<Case> {
    vec![
        Case {
            name: "too old",
            change: |p, _| p.snapshot_fetched_at = "2026-12-01T10:59:59Z".into(),
            refused: |r| {
                matches!(
                    r,
                    Refusal::TooOld {
                        age_secs: 3601,
                        max_secs: 3600,
                        ..
                    }
                )
            },
            rollback_checks: false,
        },
        Case {
            name: "from the future",
            change: |p, _| p.snapshot_fetched_at = "2026-12-01T12:05:01Z".into(),
            refused: |r| {
                matches!(
                    r,
                    Refusal::FromTheFuture {
                        ahead_secs: 301,
                        tolerance_secs: 300,
                        ..
                    }
                )
            },
            rollback_checks: false,
        },
        Case {
            name: "not a time",
            change: |p, _| p.snapshot_fetched_at = "yesterday".into(),
            refused: |r| matches!(r, Refusal::BadFetchTime { .. }),
            rollback_checks: false,
        },
    ]
}

/// The campaigns and rules of the config, and the blast-radius guard.
fn rules_cases() -> Vec<Case> {
    vec![
        Case {
            name: "campaign dropped from the config",
            change: |_, e| e.campaigns.retain(|c| c.campaign_id != 502),
            refused: |r| {
                matches!(
                    r,
                    Refusal::CampaignNotConfigured {
                        campaign_id: 502,
                        ..
                    }
                )
            },
            rollback_checks: false,
        },
        Case {
            name: "lead dropped from a campaign",
            change: |_, e| e.campaigns[0].lead_ids = vec![1],
            refused: |r| matches!(r, Refusal::CampaignNotConfigured { lead, .. } if lead == "501/2"),
            rollback_checks: false,
        },
        Case {
            name: "campaign under another process",
            change: |_, e| e.campaigns[1].process_id = 2,
            refused: |r| matches!(r, Refusal::CampaignNotConfigured { .. }),
            rollback_checks: false,
        },
        Case {
            name: "other rules",
            change: |_, e| e.config_digest = ConfigDigest::new(|_| "00".repeat(32)),
            refused: |r| matches!(r, Refusal::OtherRules { .. }),
            rollback_checks: false,
        },
        Case {
            name: "what-ifs the config digest does not cover",
            change: |p, _| p.what_ifs = vec!["plan.set_allowance: a=1".into()],
            refused: |r| matches!(r, Refusal::OtherRules { .. }),
            rollback_checks: false,
        },
        Case {
            name: "blocked",
            change: |p, _| {
                p.blocked = Some(Blocked {
                    reason: "unassigns 9 of 10 pairs, more than plan.max_unassign_share".into(),
                    unassigns: 9,
                    current_pairs: 10,
                    max_share: 0.25,
                })
            },
            refused: |r| matches!(r, Refusal::Blocked { reason } if reason.contains("plan.max_unassign_share")),
            rollback_checks: false,
        },
    ]
}

#[test]
fn each_difference_is_refused_for_its_own_reason_on_the_paths_that_check_it() {
    for case in cases() {
        let (mut p, mut e) = (plan(), expected());
        (case.change)(&mut p, &mut e);
        for path in PATHS {
            let got = admit(&p, &e, path, false);
            if path == WritePath::Rollback && !case.rollback_checks {
                assert_eq!(got, Ok(()), "{}: a rollback does not check it", case.name);
                continue;
            }
            let r = got.expect_err(case.name);
            assert!((case.refused)(&r), "{} on {path}: {r}", case.name);
            assert!(r.to_string().contains("fix: "), "{}: {r}", case.name);
        }
    }
}

#[test]
fn allow_mass_unassign_lets_a_blocked_plan_through_and_nothing_else() {
    let mut p = plan();
    p.blocked = Some(Blocked {
        reason: "r".into(),
        unassigns: 9,
        current_pairs: 10,
        max_share: 0.25,
    });
    let mut e = expected();
    assert_eq!(admit(&p, &e, WritePath::Apply, true), Ok(()));
    e.system.contact_center_id = Some(8);
    assert!(matches!(
        admit(&p, &e, WritePath::Apply, true),
        Err(Refusal::OtherSystem { .. })
    ));
}

#[test]
fn what_ifs_recorded_in_the_plan_are_laid_over_the_config() {
    let mut p = plan();
    p.what_ifs = vec!["plan.set_allowance: a=1".into()];
    p.config_digest = "ef".repeat(32);
    assert_eq!(admit(&p, &expected(), WritePath::Resume, false), Ok(()));
}

#[test]
fn messages_quote_stored_text_escaped_and_cut() {
    let mut p = plan();
    p.snapshot_hash = format!("é\u{7}{}", "x".repeat(500));
    let r = admit(&p, &expected(), WritePath::Apply, false).unwrap_err();
    let text = r.to_string();
    assert!(text.contains(r"\u{e9}\u{7}xxx"), "{text}");
    assert!(text.len() < 700, "{text}");
}

#[test]
fn a_plan_for_another_system_never_shows_a_password_of_its_url() {
    let mut p = plan();
    p.system.cms_base_url = "https://api:Zx9/Kq+secret@cms-b.example.com".into();
    let r = admit(&p, &expected(), WritePath::Apply, false).unwrap_err();
    let text = r.to_string();
    assert!(matches!(r, Refusal::OtherSystem { .. }), "{text}");
    assert!(
        !text.contains("Kq+secret") && !text.contains("Zx9"),
        "{text}"
    );
    assert!(text.contains("api:****@cms-b.example.com"), "{text}");
}

proptest! {
    /// A hash passes exactly when it is 64 lowercase hex digits.
    #[test]
    fn hashes_pass_exactly_when_64_lowercase_hex(
        s in prop_oneof![
            "[0-9a-f]{64}",
            "[0-9a-fA-F]{60,68}",
            "\\PC{0,80}",
            "[0-9a-f]{63}[g-zé ]",
        ]
    ) {
        let mut p = plan();
        p.snapshot_hash = s.clone();
        let well_formed = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let got = admit(&p, &expected(), WritePath::Apply, false);
        prop_assert_eq!(got.is_ok(), well_formed, "{:?}: {:?}", s, got);
        if !well_formed {
            let is_malformed_hash = matches!(got, Err(Refusal::MalformedHash { field: "snapshot_hash", .. }));
            prop_assert!(is_malformed_hash);
        }
    }

    /// A snapshot `offset` seconds before now is admitted exactly when
    /// `-skew <= offset <= max_age`; otherwise refused as too old or from
    /// the future, never as anything else. Rollbacks ignore the date.
    #[test]
    fn age_is_admitted_exactly_within_the_window(
        offset in -4000i64..8000,
        millis in 0i64..1000,
        max_age in 0u64..7200,
        skew in 0u64..600,
    ) {
        let fetched = NOW - time::Duration::seconds(offset) + time::Duration::milliseconds(millis);
        let mut p = plan();
        p.snapshot_fetched_at = fetched.format(&Rfc3339).unwrap();
        let mut e = expected();
        e.max_plan_age = Duration::from_secs(max_age);
        e.max_clock_skew = Duration::from_secs(skew);
        let age_ms = offset * 1000 - millis;
        let got = admit(&p, &e, WritePath::Apply, false);
        if age_ms > max_age as i64 * 1000 {
            let too_old = matches!(got, Err(Refusal::TooOld { .. }));
            prop_assert!(too_old, "{:?}", got);
        } else if -age_ms > skew as i64 * 1000 {
            let future = matches!(got, Err(Refusal::FromTheFuture { .. }));
            prop_assert!(future, "{:?}", got);
        } else {
            prop_assert_eq!(got, Ok(()));
        }
        prop_assert_eq!(admit(&p, &e, WritePath::Rollback, false), Ok(()));
    }

    /// A plan passes the campaign check exactly when every lead it covers
    /// is listed under its own process and campaign.
    #[test]
    fn campaigns_pass_exactly_when_every_plan_lead_is_configured(
        plan_leads in proptest::collection::btree_set((1u64..3, 500u64..503, 1u64..5), 0..8),
        configured in proptest::collection::btree_set((1u64..3, 500u64..503, 1u64..5), 0..12),
    ) {
        let mut p = plan();
        p.leads = plan_leads.iter().map(|&(proc_, c, l)| lead(c, l, proc_)).collect();
        let mut e = expected();
        e.campaigns = configured
            .iter()
            .map(|&(process_id, campaign_id, l)| ConfiguredCampaign {
                process_id,
                campaign_id,
                lead_ids: vec![l],
            })
            .collect();
        let covered = plan_leads.is_subset(&configured);
        let got = admit(&p, &e, WritePath::Resume, false);
        prop_assert_eq!(got.is_ok(), covered, "{:?}", got);
    }
}
