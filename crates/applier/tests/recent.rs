//! `recent_moves` on journals written by real runs against the sandbox:
//! what it reports applied in a window is exactly what the sandbox's write
//! log says took effect in it (refused PUTs do not count, PUTs whose answer
//! was lost but that were applied do), over every run kind (apply and
//! rollback); `since` after a run sees nothing of it; a journal that does
//! not exist is nothing recent.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use rebalancer_applier::{apply, recent_moves, rollback, show, Progress, RecentMoves, RunKind};
use rebalancer_model::LeadKey;
use rebalancer_sandbox::{FaultSpec, Faults, WriteRecord};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// What the sandbox applied, by its own write log.
fn applied(log: &[WriteRecord]) -> RecentMoves {
    let mut out = RecentMoves::default();
    for r in log.iter().filter(|r| r.applied) {
        out.leads.insert(LeadKey {
            campaign_id: r.campaign_id,
            lead_id: r.lead_id,
        });
        out.agents.extend(r.assigned.iter().cloned());
        out.agents.extend(r.unassigned.iter().cloned());
    }
    out
}

/// The journal's resolution: its times are Unix milliseconds.
fn unix_ms(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos() / 1_000_000
}

/// A moment strictly between what happened before and after it, at the
/// journal's resolution: the first instant of a millisecond later than
/// the one this is called in (a condition on the clock, polled). What was
/// journaled before is in an earlier millisecond, what is journaled after
/// in this one or later.
async fn pause() -> OffsetDateTime {
    let called = unix_ms(OffsetDateTime::now_utc());
    loop {
        let t = OffsetDateTime::now_utc();
        if unix_ms(t) > called {
            return t;
        }
        tokio::time::sleep(Duration::from_micros(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_moves_are_what_the_sandbox_applied_in_the_window() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(None));
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());

    // No journal yet: nothing recent, and no file is made.
    let empty = recent_moves(&loc(&journal), OffsetDateTime::UNIX_EPOCH).unwrap();
    assert_eq!(empty, RecentMoves::default());
    assert!(!journal.exists());

    // The first PUTs are refused (400: not applied), some others are
    // applied but answered 500 (ambiguous, then resolved as applied).
    sb.set_faults(Faults {
        cms_put: FaultSpec {
            fail_first: 3,
            fail_status: 400,
            p_500_after_apply: 0.2,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let plan = rebalance(&sb, 2);
    let t0 = pause().await;
    let first = apply(
        &loc(&journal),
        &plan,
        &up,
        &config(),
        &common::expected(&sb),
        CancellationToken::new(),
        &Progress::default(),
    )
    .await
    .unwrap();
    let log = sb.write_log();
    assert!(log.iter().filter(|r| !r.applied).count() >= 3, "refusals");
    let puts = show(&loc(&journal), first.run).unwrap().puts;
    assert!(
        puts.iter()
            .any(|p| p.state == "resolved" && p.applied == Some(true)),
        "a PUT applied behind a 500"
    );
    let expected = applied(&log);
    assert!(expected.leads.len() > 20, "{expected:?}");

    let t1 = pause().await;
    let before = recent_moves(&loc(&journal), t0).unwrap();
    assert_eq!(before, expected);
    assert_eq!(
        recent_moves(&loc(&journal), OffsetDateTime::UNIX_EPOCH).unwrap(),
        expected
    );
    // A refused PUT's lead moved nothing (unless a later PUT of it did).
    for r in log.iter().filter(|r| !r.applied) {
        let lead = LeadKey {
            campaign_id: r.campaign_id,
            lead_id: r.lead_id,
        };
        let later = log
            .iter()
            .any(|w| w.applied && w.campaign_id == lead.campaign_id && w.lead_id == lead.lead_id);
        assert_eq!(before.leads.contains(&lead), later, "lead {lead}");
    }
    // Every agent the plan moved on a lead the run changed is recent.
    for c in plan
        .changes
        .iter()
        .filter(|c| before.leads.contains(&c.lead))
    {
        assert!(before.agents.contains(c.agent.as_str()), "{c:?}");
    }
    // After the run: nothing.
    assert!(recent_moves(&loc(&journal), t1).unwrap().is_empty());
    let future = OffsetDateTime::now_utc() + time::Duration::hours(1);
    assert!(recent_moves(&loc(&journal), future).unwrap().is_empty());

    // A rollback is a run too: its moves are recent from t1 on.
    sb.set_faults(Faults::default());
    let back = rollback(
        &loc(&journal),
        first.run,
        &up,
        &config(),
        &common::expected(&sb),
        CancellationToken::new(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(back.kind, RunKind::Rollback);
    let log_after = sb.write_log();
    let undone = applied(&log_after[log.len()..]);
    assert!(!undone.is_empty());
    assert_eq!(recent_moves(&loc(&journal), t1).unwrap(), undone);
    let both = recent_moves(&loc(&journal), t0).unwrap();
    assert_eq!(both, applied(&log_after));
    let union: BTreeSet<String> = expected.agents.union(&undone.agents).cloned().collect();
    assert_eq!(both.agents, union);
    let t2 = pause().await;
    assert!(recent_moves(&loc(&journal), t2).unwrap().is_empty());
}
