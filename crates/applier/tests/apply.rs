//! The applier against the sandbox over real HTTP, with real SQLite
//! journals in temporary directories: a plan reaches its target and a
//! second apply changes nothing; drift is skipped or rebased; re-checks
//! never assign an inactive or over-allowance agent; the live blast radius
//! blocks before any PUT; a stop then `resume` reaches the target without
//! applying anything twice; `rollback` restores the original mapping; one
//! applier per journal; no secret in the journal.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use rebalancer_applier::{
    apply, history, resume, rollback, show, ApplyError, LeadState, OnDrift, Progress, Refusal,
    RunKind, RunOutcome,
};
use rebalancer_model::Blocked;
use rebalancer_upstream::{MappingUpdate, UpstreamError};
use tokio_util::sync::CancellationToken;

fn no_stop() -> CancellationToken {
    CancellationToken::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_reaches_its_target_and_a_second_apply_changes_nothing() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(None));
    let plan = rebalance(&sb, 2);
    assert!(
        plan.changes.len() > 40,
        "a plan with work: {}",
        plan.changes.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());
    std::fs::write(&journal, b"").unwrap(); // an empty file is migrated
    let progress = Progress::default();
    let report = apply(
        &loc(&journal),
        &plan,
        &up,
        &config(),
        &expected(&sb),
        no_stop(),
        &progress,
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed, "{report:#?}");
    assert_eq!(report.kind, RunKind::Apply);
    assert!(report.verify_mismatches.is_empty());
    assert_eq!(state(&sb), targets(&plan));
    assert_eq!(report.moves_made, plan.changes.len());
    assert_eq!(progress.puts_sent(), report.puts_sent);
    assert_eq!(progress.leads_done(), progress.leads_total());
    // One PUT per lead with changes (all fit in 50 ids).
    let changed: BTreeSet<_> = plan.changes.iter().map(|c| c.lead).collect();
    assert_eq!(report.puts_sent as usize, changed.len());
    assert_eq!(sb.counts().cms_put, report.puts_sent);

    let again = apply(
        &loc(&journal),
        &plan,
        &up,
        &config(),
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(again.puts_sent, 0);
    assert_eq!(again.moves_made, 0);
    assert!(again.leads.iter().all(|l| l.state == LeadState::Unchanged));

    let runs = history(&loc(&journal), 10).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].id, again.run);
    assert_eq!(runs[1].outcome, RunOutcome::Completed);
    assert_eq!(runs[1].puts_sent, report.puts_sent);
    let detail = show(&loc(&journal), report.run).unwrap();
    assert_eq!(detail.puts.len() as u64, report.puts_sent);
    assert!(detail
        .puts
        .iter()
        .all(|p| p.state == "applied" && p.applied == Some(true)));
    assert!(detail.puts.iter().all(|p| p.body.contains("\"leadId\"")));
    assert!(matches!(
        show(&loc(&journal), 999),
        Err(ApplyError::NoSuchRun(999))
    ));

    // No credential anywhere in the journal's files.
    let bytes = journal_bytes(&journal);
    let creds = sb.credentials();
    for secret in [
        &creds.cms_password,
        &creds.webex_api_key,
        &creds.zoho_client_secret,
        &creds.zoho_refresh_token,
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a secret is in the journal"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_changes_are_chunked_and_still_reach_the_target() {
    let sb = sandbox(11, 120, 12).await;
    let up = upstreams(&sb, http(None));
    let plan = rebalance(&sb, 6);
    let dir = tempfile::tempdir().unwrap();
    let cfg = rebalancer_applier::ApplyConfig {
        max_users_per_put: 2,
        ..config()
    };
    let report = apply(
        &loc(&journal_path(dir.path())),
        &plan,
        &up,
        &cfg,
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert_eq!(state(&sb), targets(&plan));
    let detail = show(&loc(&journal_path(dir.path())), report.run).unwrap();
    let mut seen_unassign: BTreeMap<_, bool> = BTreeMap::new();
    for p in &detail.puts {
        let body: serde_json::Value = serde_json::from_str(&p.body).unwrap();
        let (a, u) = (
            body["assignedUserIds"].as_array().unwrap().len(),
            body["unassignedUserIds"].as_array().unwrap().len(),
        );
        assert!(a + u >= 1 && a + u <= 2, "PUT of {} ids", a + u);
        let seen = seen_unassign.entry(p.lead).or_default();
        assert!(
            !(*seen && a > 0),
            "an assign after an unassign on {}",
            p.lead
        );
        *seen |= u > 0;
    }
    assert!(report.puts_sent as usize > plan.changes.len() / 2);
}

/// Another writer changes a lead between plan and apply.
async fn drift(
    up: &rebalancer_applier::Upstreams,
    lead: rebalancer_model::LeadKey,
    add: &str,
    remove: &str,
) {
    up.cms
        .put_mapping(&MappingUpdate {
            lead_id: lead.lead_id,
            campaign_id: lead.campaign_id,
            assigned_user_ids: vec![add.to_string()],
            unassigned_user_ids: vec![remove.to_string()],
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drifted_leads_are_skipped_or_rebased() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(None));
    let plan = rebalance(&sb, 2);
    let users = users(&sb);
    // A lead the plan changes, that keeps an agent the plan does not touch.
    let lp = plan
        .leads
        .iter()
        .find(|l| {
            l.current != l.target
                && l.current.iter().any(|a| l.target.contains(a))
                && pool(&sb, l.lead).iter().any(|u| {
                    !l.current.iter().any(|c| c.as_str() == u.as_str())
                        && !l.target.iter().any(|t| t.as_str() == u.as_str())
                })
        })
        .expect("a lead to drift");
    let lead = lp.lead;
    let kept = lp
        .current
        .iter()
        .find(|a| lp.target.contains(a))
        .unwrap()
        .0
        .clone();
    let stranger = pool(&sb, lead)
        .into_iter()
        .find(|u| {
            !lp.current.iter().any(|c| c.as_str() == u.as_str())
                && !lp.target.iter().any(|t| t.as_str() == u.as_str())
        })
        .unwrap();
    drift(&up, lead, &stranger, &kept).await;
    let drifted = assigned(&sb, lead);

    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());
    let report = apply(
        &loc(&journal),
        &plan,
        &up,
        &config(),
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.skipped_drift, 1);
    let lr = report.leads.iter().find(|l| l.lead == lead).unwrap();
    assert_eq!(lr.state, LeadState::Drifted);
    assert!(lr.detail.contains(&stranger), "{}", lr.detail);
    assert_eq!(assigned(&sb, lead), drifted, "a skipped lead is left alone");
    assert_eq!(report.verify_mismatches, vec![]);

    let cfg = rebalancer_applier::ApplyConfig {
        on_drift: OnDrift::Rebase,
        ..config()
    };
    let report = apply(
        &loc(&journal),
        &plan,
        &up,
        &cfg,
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    let lr = report.leads.iter().find(|l| l.lead == lead).unwrap();
    assert_eq!(lr.state, LeadState::Rebased, "{}", lr.detail);
    let now = assigned(&sb, lead);
    assert!(
        now.contains(&stranger),
        "rebase never removes an agent the plan did not name"
    );
    assert!(
        !now.contains(&*kept),
        "rebase does not restore what someone else removed"
    );
    for c in plan.changes.iter().filter(|c| c.lead == lead) {
        let eligible_now = users.get(c.agent.as_str()).is_some_and(eligible);
        match c.action {
            rebalancer_model::Action::Assign if eligible_now => {
                assert!(now.contains(c.agent.as_str()))
            }
            rebalancer_model::Action::Unassign => assert!(!now.contains(c.agent.as_str())),
            _ => {}
        }
    }
    // The rebased lead differs from the plan's target, so verify names it.
    assert_eq!(report.verify_mismatches, vec![lead]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_and_over_allowance_agents_are_never_assigned() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(None));
    let users = users(&sb);
    let current = state(&sb);
    // On each lead, try to assign every pool member not assigned: eligible
    // or not (the plan is "stale": it believes they all may work).
    let mut targets = BTreeMap::new();
    let mut bad = 0;
    for (lead, cur) in &current {
        let mut t = cur.clone();
        for u in pool(&sb, *lead).difference(cur) {
            if !may_be_assigned(&users[u]) {
                bad += 1;
            }
            t.insert(u.clone());
        }
        targets.insert(*lead, t);
    }
    assert!(bad > 5, "the world has ineligible pool members: {bad}");
    let plan = plan_from(&sb, &current, &targets);
    let dir = tempfile::tempdir().unwrap();
    let report = apply(
        &loc(&journal_path(dir.path())),
        &plan,
        &up,
        &config(),
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.skipped_recheck, bad);
    for (lead, now) in state(&sb) {
        for a in now.difference(&current[&lead]) {
            assert!(
                may_be_assigned(&users[a]),
                "{a} was assigned to {lead} but may not work"
            );
        }
    }
    let detail = report
        .leads
        .iter()
        .map(|l| l.detail.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        detail.contains("inactive in Webex now") || detail.contains("unknown to Webex"),
        "{detail}"
    );
    assert!(detail.contains("Zoho allowance"), "{detail}");
    // Those leads differ from the (stale) target: verify says so.
    assert!(!report.verify_mismatches.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_whose_replacements_are_refused_keeps_an_agent() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(None));
    let users = users(&sb);
    let current = state(&sb);
    // A lead with agents and an ineligible pool member: the plan swaps all
    // its agents for that one.
    let (lead, bad) = current
        .iter()
        .filter(|(_, cur)| !cur.is_empty())
        .find_map(|(lead, cur)| {
            pool(&sb, *lead)
                .difference(cur)
                .find(|u| !may_be_assigned(&users[*u]))
                .map(|u| (*lead, u.clone()))
        })
        .expect("a lead with an ineligible pool member");
    let mut targets = current.clone();
    targets.insert(lead, [bad.clone()].into());
    let plan = plan_from(&sb, &current, &targets);
    let dir = tempfile::tempdir().unwrap();
    let report = apply(
        &loc(&journal_path(dir.path())),
        &plan,
        &up,
        &config(),
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    let now = assigned(&sb, lead);
    assert!(!now.contains(&bad));
    assert!(!now.is_empty(), "the lead kept an agent");
    let lr = &report.leads[0];
    assert!(lr.detail.contains("keeping"), "{}", lr.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_blast_radius_blocks_before_any_put() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(None));
    let current = state(&sb);
    // Unassign all but one agent everywhere.
    let targets: BTreeMap<_, _> = current
        .iter()
        .map(|(l, c)| (*l, c.iter().take(1).cloned().collect::<BTreeSet<_>>()))
        .collect();
    let mut plan = plan_from(&sb, &current, &targets);
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());
    let cfg = rebalancer_applier::ApplyConfig {
        max_unassign_share: 0.2,
        ..config()
    };
    match apply(
        &loc(&journal),
        &plan,
        &up,
        &cfg,
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    {
        Err(e @ ApplyError::Blocked { .. }) => {
            let s = e.to_string();
            assert!(
                s.contains("plan.max_unassign_share") && s.contains("--allow-mass-unassign"),
                "{s}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sb.counts().cms_put, 0);
    // A plan the planner blocked is refused too, whatever the live share.
    plan.blocked = Some(Blocked {
        reason: "plan.max_unassign_share".into(),
        unassigns: 9,
        current_pairs: 10,
        max_share: 0.5,
    });
    assert!(matches!(
        apply(
            &loc(&journal),
            &plan,
            &up,
            &config(),
            &expected(&sb),
            no_stop(),
            &Progress::default()
        )
        .await,
        Err(ApplyError::Refused {
            refusal: Refusal::Blocked { .. },
            ..
        })
    ));
    assert_eq!(sb.counts().cms_put, 0);
    assert!(history(&loc(&journal), 10).unwrap().is_empty());
    // A person allows it.
    let allowed = rebalancer_applier::ApplyConfig {
        allow_mass_unassign: true,
        ..cfg
    };
    let report = apply(
        &loc(&journal),
        &plan,
        &up,
        &allowed,
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert_eq!(state(&sb), targets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_resumes_to_the_target_without_applying_anything_twice() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(Some(budget(25, 1))));
    let plan = rebalance(&sb, 2);
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());
    let stop = CancellationToken::new();
    let progress = Progress::default();
    let (p, s) = (progress.clone(), stop.clone());
    let watcher = tokio::spawn(async move {
        while p.puts_sent() < 8 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        s.cancel();
    });
    let first = apply(
        &loc(&journal),
        &plan,
        &up,
        &config(),
        &expected(&sb),
        stop,
        &progress,
    )
    .await
    .unwrap();
    watcher.await.unwrap();
    assert_eq!(first.outcome, RunOutcome::Interrupted);
    // Stopped after its 8th PUT: at 25 PUTs a second with a burst of 1 at
    // most one more was on its way; PUTs still waiting for the write
    // budget were not sent.
    assert!(
        (8..=9).contains(&first.puts_sent),
        "{} PUTs sent after a stop at 8",
        first.puts_sent
    );
    assert_eq!(
        sb.counts().cms_put,
        first.puts_sent,
        "the CMS saw those only"
    );
    assert_ne!(state(&sb), targets(&plan));
    assert!(matches!(
        rollback(
            &loc(&journal),
            12345,
            &up,
            &config(),
            &expected(&sb),
            no_stop(),
            &Progress::default()
        )
        .await,
        Err(ApplyError::NoSuchRun(12345))
    ));

    let second = resume(
        &loc(&journal),
        None,
        &up,
        &config(),
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(second.kind, RunKind::Resume);
    assert_eq!(second.outcome, RunOutcome::Completed, "{second:#?}");
    assert_eq!(state(&sb), targets(&plan));
    assert!(second.verify_mismatches.is_empty());
    // Every PUT the CMS saw is in the journal, and no lead got its change twice.
    let runs = history(&loc(&journal), 10).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].parent, Some(first.run));
    assert_eq!(runs[1].outcome, RunOutcome::Interrupted);
    // (PUTs that waited for the write budget when the stop came are
    // journaled as `unsent`: they never reached the CMS.)
    let puts: Vec<_> = [first.run, second.run]
        .iter()
        .flat_map(|r| show(&loc(&journal), *r).unwrap().puts)
        .filter(|p| p.state != "unsent")
        .collect();
    assert_eq!(sb.counts().cms_put as usize, puts.len());
    let mut per_lead: BTreeMap<_, usize> = BTreeMap::new();
    for p in &puts {
        *per_lead.entry(p.lead).or_default() += 1;
    }
    assert!(per_lead.values().all(|&n| n == 1), "{per_lead:?}");
    assert_eq!(first.moves_made + second.moves_made, plan.changes.len());
    // Nothing left to resume.
    assert!(matches!(
        resume(
            &loc(&journal),
            None,
            &up,
            &config(),
            &expected(&sb),
            no_stop(),
            &Progress::default()
        )
        .await,
        Err(ApplyError::NothingToResume { .. })
    ));
    assert!(matches!(
        resume(
            &loc(&journal),
            Some(second.run),
            &up,
            &config(),
            &expected(&sb),
            no_stop(),
            &Progress::default()
        )
        .await,
        Err(ApplyError::NotResumable {
            outcome: RunOutcome::Completed,
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_original_mapping() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(None));
    let original = state(&sb);
    let plan = rebalance(&sb, 2);
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());
    let run = apply(
        &loc(&journal),
        &plan,
        &up,
        &config(),
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(state(&sb), targets(&plan));
    let back = rollback(
        &loc(&journal),
        run.run,
        &up,
        &config(),
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(back.kind, RunKind::Rollback);
    // The plan only removed ineligible agents and one eligible agent here
    // and there: an agent that may not work is not assigned back.
    let users = users(&sb);
    let now = state(&sb);
    for (lead, before) in &original {
        let restorable: BTreeSet<_> = before
            .iter()
            .filter(|a| may_be_assigned(&users[*a]) || targets(&plan)[lead].contains(*a))
            .cloned()
            .collect();
        if restorable.is_empty() && !before.is_empty() {
            // Nothing of the original may come back: the lead keeps one of
            // the agents the run gave it rather than going empty.
            assert_eq!(now[lead].len(), 1, "lead {lead}");
            assert!(now[lead].is_subset(&targets(&plan)[lead]));
        } else {
            assert_eq!(now[lead], restorable, "lead {lead}");
        }
    }
    assert!(
        back.skipped_recheck
            >= plan
                .changes
                .iter()
                .filter(|c| c.action == rebalancer_model::Action::Unassign
                    && !may_be_assigned(&users[c.agent.as_str()]))
                .count()
    );
    let runs = history(&loc(&journal), 10).unwrap();
    assert_eq!(runs[0].kind, RunKind::Rollback);
    assert_eq!(runs[0].parent, Some(run.run));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applies_on_one_journal_one_gets_lease_held() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(Some(budget(10, 1))));
    let plan = rebalance(&sb, 2);
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());
    let cfg = config();
    let progress = Progress::default();
    let at = loc(&journal);
    let want = expected(&sb);
    let (a, b) = tokio::join!(
        apply(&at, &plan, &up, &cfg, &want, no_stop(), &progress),
        async {
            // Once the first has sent a PUT it surely holds the lease
            // (a condition, polled; it orders nothing).
            while progress.puts_sent() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            apply(
                &loc(&journal),
                &plan,
                &up,
                &cfg,
                &want,
                no_stop(),
                &Progress::default(),
            )
            .await
        }
    );
    assert_eq!(a.unwrap().outcome, RunOutcome::Completed);
    match b {
        Err(ApplyError::LeaseHeld { holder, .. }) => {
            assert!(
                holder.ends_with(&format!(":{}", std::process::id())),
                "{holder}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Released at the end: the next apply takes it.
    apply(
        &loc(&journal),
        &plan,
        &up,
        &cfg,
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_the_run() {
    let sb = sandbox(7, 60, 6).await;
    let mut up = upstreams(&sb, http(None));
    let plan = rebalance(&sb, 2);
    let world = sb.world();
    up.cms = rebalancer_upstream::CmsClient::new(
        rebalancer_upstream::CmsConfig {
            base_url: rebalancer_upstream::BaseUrl::parse(&sb.base_url()).unwrap(),
            username: "nobody".into(),
            password: "wrong".to_string().into(),
            contact_center_id: world.contact_center_id,
            page_size: 500,
            short_page_ends: true,
            http: http(None),
        },
        Default::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = apply(
        &loc(&journal_path(dir.path())),
        &plan,
        &up,
        &config(),
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, ApplyError::Upstream(UpstreamError::Unauthorized { .. })),
        "{e}"
    );
    assert_eq!(sb.counts().cms_put, 0);
}

#[tokio::test]
async fn plans_too_old_or_from_the_future_are_refused_before_any_put() {
    let sb = sandbox(7, 60, 6).await;
    let up = upstreams(&sb, http(None));
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());
    let mut plan = rebalance(&sb, 1);
    let mut e = expected(&sb);
    e.max_plan_age = Duration::from_secs(3600);
    for (fetched_at, refused) in [
        // 1 h 00 min 01 s before `now`: too old.
        ("2026-11-29T23:59:59Z", "apply.max_plan_age_secs"),
        // 5 min 01 s after `now`: from the future.
        ("2026-11-30T01:05:01Z", "ahead of this host's clock"),
    ] {
        plan.snapshot_fetched_at = fetched_at.into();
        let err = apply(
            &loc(&journal),
            &plan,
            &up,
            &config(),
            &e,
            no_stop(),
            &Progress::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ApplyError::Refused { .. }), "{err}");
        assert!(err.to_string().contains(refused), "{err}");
    }
    assert_eq!(sb.counts().cms_put, 0);
    assert!(history(&loc(&journal), 10).unwrap().is_empty());
    // Within the window (4 min ahead is clock skew, not the future): applied.
    plan.snapshot_fetched_at = "2026-11-30T01:04:00Z".into();
    let report = apply(
        &loc(&journal),
        &plan,
        &up,
        &config(),
        &e,
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
}
