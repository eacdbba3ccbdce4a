//! End-to-end fetch over real HTTP against the in-process sandbox: complete
//! data, paging, token refresh and expiry by time, retries, identity-join
//! problems, the Webex coverage guard, the deadline and progress.

mod common;

use common::{clients, options, small_world, start, Knobs};
use rebalancer_model::{AgentId, ProblemKind};
use rebalancer_sandbox::{FaultSpec, Faults};
use rebalancer_upstream::ErrorClass;
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_reads_every_lead_and_agent_exactly() {
    let sb = start(small_world(1)).await;
    let (snap, report) = rebalancer_fetcher::fetch(&clients(&sb, &Knobs::default()), &options(&sb))
        .await
        .unwrap();
    let world = sb.world();
    let configured: usize = world.campaigns.iter().map(|c| c.lead_ids.len()).sum();
    assert_eq!(snap.leads().count(), configured);
    assert_eq!(report.leads_read, configured);
    for (key, lead) in snap.leads() {
        let (assigned, unassigned) = sb.mapping(key.campaign_id, key.lead_id).unwrap();
        let got: Vec<String> = lead.assigned.iter().map(|a| a.0.to_string()).collect();
        assert_eq!(got, assigned, "assigned of lead {key}");
        let got: Vec<String> = lead.unassigned.iter().map(|a| a.0.to_string()).collect();
        assert_eq!(got, unassigned, "unassigned of lead {key}");
    }
    // Every user the world has in a CMS pool is an agent with in_cms.
    let pooled: BTreeSet<AgentId> = snap
        .leads()
        .flat_map(|(_, l)| l.pool().cloned().collect::<Vec<_>>())
        .collect();
    let in_cms: BTreeSet<AgentId> = snap
        .agents
        .iter()
        .filter(|a| a.in_cms)
        .map(|a| a.id.clone())
        .collect();
    assert_eq!(pooled, in_cms);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_pages_give_the_same_snapshot_as_large_pages() {
    let sb = start(rebalancer_sandbox::SandboxConfig {
        cms_max_limit: 4,
        zoho_max_per_page: 5,
        ..small_world(2)
    })
    .await;
    // The server caps `limit` at 4 without saying so: pages of 500 need the
    // empty-page rule (tests/fetch_short_pages.rs has short pages).
    let big = Knobs {
        cms_short_page_ends: false,
        ..Knobs::default()
    };
    let small = Knobs {
        cms_page_size: 3,
        cms_short_page_ends: false,
        zoho_per_page: 5,
        ..Knobs::default()
    };
    let (a, ra) = rebalancer_fetcher::fetch(&clients(&sb, &big), &options(&sb))
        .await
        .unwrap();
    let (b, rb) = rebalancer_fetcher::fetch(&clients(&sb, &small), &options(&sb))
        .await
        .unwrap();
    assert_eq!(a.campaigns, b.campaigns);
    assert_eq!(a.agents, b.agents);
    assert_eq!(a.problems, b.problems);
    // Paging really happened: more requests with small pages, on both APIs.
    assert!(
        rb.requests > ra.requests + 10,
        "{} vs {}",
        rb.requests,
        ra.requests
    );
    let zoho_users: usize = b.agents.iter().filter(|a| !a.thresholds.is_empty()).count();
    assert!(
        zoho_users > 10,
        "need several Zoho pages, have {zoho_users} users"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_zoho_token_is_refreshed_once() {
    let sb = start(small_world(3)).await;
    let c = clients(&sb, &Knobs::default());
    let opts = options(&sb);
    rebalancer_fetcher::fetch(&c, &opts).await.unwrap();
    assert_eq!(
        c.zoho.token_refreshes(),
        1,
        "one token for the whole first fetch"
    );
    sb.expire_tokens();
    let before = sb.counts().zoho_token;
    let (snap, _) = rebalancer_fetcher::fetch(&c, &opts).await.unwrap();
    assert!(snap.agents.iter().any(|a| a.headroom.is_some()));
    assert_eq!(
        c.zoho.token_refreshes(),
        2,
        "exactly one refresh after expiry"
    );
    assert_eq!(sb.counts().zoho_token - before, 1);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_500s_and_429s_are_retried_to_success() {
    let sb = start(small_world(4)).await;
    sb.set_faults(Faults {
        cms_get: FaultSpec {
            fail_first: 2,
            fail_status: 500,
            ..Default::default()
        },
        webex: FaultSpec {
            fail_first: 1,
            fail_status: 429,
            retry_after_secs: 1,
            ..Default::default()
        },
        zoho: FaultSpec {
            fail_first: 2,
            fail_status: 503,
            ..Default::default()
        },
        ..Default::default()
    });
    // Retry-After (1 s) is honoured when it is within the backoff cap.
    let mut knobs = Knobs::default();
    knobs.http.backoff_max = Duration::from_secs(2);
    let c = clients(&sb, &knobs);
    let (snap, report) = rebalancer_fetcher::fetch(&c, &options(&sb)).await.unwrap();
    // Exactly one retry per injected failure: 2 CMS + 1 Webex + 2 Zoho.
    assert_eq!(report.retries, 5);
    assert!(c.stats.retry_wait() >= Duration::from_secs(1));
    let world = sb.world();
    let configured: usize = world.campaigns.iter().map(|c| c.lead_ids.len()).sum();
    assert_eq!(report.leads_read, configured);
    assert_eq!(snap.leads().count(), configured);
    let counts = sb.counts();
    assert_eq!(counts.webex, 2);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_problems_are_reported_not_dropped() {
    let sb = start(rebalancer_sandbox::SandboxConfig {
        agents: 400,
        leads: 40,
        ..small_world(5)
    })
    .await;
    let (snap, _) = rebalancer_fetcher::fetch(&clients(&sb, &Knobs::default()), &options(&sb))
        .await
        .unwrap();
    let has = |k: ProblemKind| snap.problems.iter().any(|p| p.kind == k);
    assert!(
        has(ProblemKind::NotInZoho),
        "some agents are missing in Zoho"
    );
    assert!(
        has(ProblemKind::NotInWebex),
        "some agents are missing in Webex"
    );
    assert!(has(ProblemKind::NotInCms), "supervisors are reported");
    // Every CMS agent without a threshold has a problem naming it.
    for a in snap.agents.iter().filter(|a| a.in_cms && a.zoho.is_none()) {
        assert!(
            snap.problems.iter().any(|p| p.subject == a.id.as_str()),
            "agent {} is unjoined but not reported",
            a.id
        );
    }
    // Case-only email differences still join, and headroom matches the world.
    for u in sb.world_users().iter().filter(|u| u.in_cms && u.in_zoho) {
        let agent = snap.agent(&AgentId::new(u.username.clone()));
        if let Some(agent) = agent.filter(|a| a.webex.is_some()) {
            assert_eq!(
                agent.headroom,
                Some(u.headroom),
                "headroom of {}",
                u.username
            );
        }
    }
    assert!(
        snap.agents.iter().any(|a| a.in_cms && !a.is_active()),
        "some inactive"
    );
    assert!(
        snap.agents.iter().any(|a| a.in_cms && a.at_threshold()),
        "some at threshold"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_lead_is_a_problem_unless_strict() {
    let sb = start(small_world(6)).await;
    let mut opts = options(&sb);
    opts.campaigns[0].lead_ids.push(999_999);
    let c = clients(&sb, &Knobs::default());
    let (snap, report) = rebalancer_fetcher::fetch(&c, &opts).await.unwrap();
    assert_eq!(report.leads_missing, 1);
    assert!(snap
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::LeadNotFound && p.subject.ends_with("/999999")));
    opts.strict = true;
    let err = rebalancer_fetcher::fetch(&c, &opts).await.unwrap_err();
    assert!(
        matches!(
            err,
            rebalancer_fetcher::FetchError::LeadNotFoundStrict {
                lead_id: 999_999,
                ..
            }
        ),
        "{err}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_webex_answer_is_an_outage_not_a_fact() {
    let sb = start(small_world(7)).await;
    let c = clients(&sb, &Knobs::default());
    for null in [false, true] {
        sb.set_faults(Faults {
            webex: FaultSpec {
                p_empty: 1.0,
                empty_null: null,
                ..Default::default()
            },
            ..Default::default()
        });
        let err = rebalancer_fetcher::fetch(&c, &options(&sb))
            .await
            .unwrap_err();
        match &err {
            rebalancer_fetcher::FetchError::WebexCoverage {
                known, cms_agents, ..
            } => {
                assert_eq!(*known, 0);
                assert!(*cms_agents > 0);
            }
            other => panic!("expected WebexCoverage, got {other}"),
        }
        assert_eq!(err.class(), ErrorClass::Unavailable);
        assert!(
            err.to_string().contains("fetch.min_webex_coverage"),
            "{err}"
        );
    }
    // With the guard off, the same answer is taken at its word.
    let mut opts = options(&sb);
    opts.min_webex_coverage = 0.0;
    let (snap, _) = rebalancer_fetcher::fetch(&c, &opts).await.unwrap();
    assert!(snap.agents.iter().all(|a| a.webex.is_none()));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_past_its_deadline_fails_naming_the_key() {
    let sb = start(small_world(8)).await;
    sb.set_faults(Faults {
        webex: FaultSpec {
            latency: Duration::from_secs(30),
            ..Default::default()
        },
        ..Default::default()
    });
    let mut knobs = Knobs::default();
    knobs.http.timeout = Duration::from_secs(60);
    let mut opts = options(&sb);
    opts.deadline = Duration::from_secs(2);
    let err = rebalancer_fetcher::fetch(&clients(&sb, &knobs), &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(err, rebalancer_fetcher::FetchError::Deadline { limit } if limit == opts.deadline),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert!(
        err.to_string().contains("2 s (fetch.deadline_secs)"),
        "{err}"
    );
    // Dropped without a graceful shutdown: the slow Webex request is still
    // sleeping in the sandbox.
    drop(sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_token_expiry_by_time() {
    let sb = start(small_world(9)).await;
    let c = clients(&sb, &Knobs::default());
    let opts = options(&sb);
    rebalancer_fetcher::fetch(&c, &opts).await.unwrap();
    assert_eq!(sb.counts().zoho_token, 1);
    // An hour passes for both sides: the client renews before using the
    // token, so Zoho never has to refuse it.
    sb.advance_clock(Duration::from_secs(3601));
    c.zoho.advance_clock(Duration::from_secs(3601));
    let zoho_before = sb.counts().zoho;
    let (snap, _) = rebalancer_fetcher::fetch(&c, &opts).await.unwrap();
    assert_eq!(sb.counts().zoho_token, 2, "renewed once, proactively");
    assert_eq!(
        sb.counts().zoho - zoho_before,
        opts.threshold_ids.len() as u64,
        "one page per threshold, no request refused for an expired token"
    );
    assert!(snap.agents.iter().any(|a| a.headroom.is_some()));
    // Only the sandbox's hour passes: Zoho refuses the token (401) and the
    // client refreshes exactly once.
    sb.advance_clock(Duration::from_secs(3601));
    let refreshes = c.zoho.token_refreshes();
    rebalancer_fetcher::fetch(&c, &opts).await.unwrap();
    assert_eq!(c.zoho.token_refreshes(), refreshes + 1);
    assert_eq!(sb.counts().zoho_token, 3);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_counts_every_lead_threshold_and_webex() {
    let sb = start(small_world(10)).await;
    let opts = options(&sb);
    let progress = opts.progress.clone();
    assert_eq!((progress.leads_done(), progress.leads_total()), (0, 0));
    let (_, report) = rebalancer_fetcher::fetch(&clients(&sb, &Knobs::default()), &opts)
        .await
        .unwrap();
    let configured = report.leads_read + report.leads_missing;
    assert_eq!(progress.leads_total(), configured as u64);
    assert_eq!(progress.leads_done(), configured as u64);
    assert_eq!(progress.thresholds_total(), opts.threshold_ids.len() as u64);
    assert_eq!(progress.thresholds_done(), opts.threshold_ids.len() as u64);
    assert!(progress.webex_done());
    sb.shutdown().await;
}
