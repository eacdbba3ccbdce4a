//! An apply against the sandbox with its journal in PostgreSQL (a
//! throwaway server, `support/pg.rs`): the plan reaches its target, the
//! journal lists the run and its PUTs, and a second apply on the same
//! journal while the first holds the lease (it has sent a PUT) gets
//! `LeaseHeld`. Skipped with a
//! notice when PostgreSQL is not installed.

mod common;

use std::time::Duration;

use common::*;
use rebalancer_applier::{
    apply, cycles, history, show, ApplyError, JournalLocation, Progress, RunOutcome,
};
use rebalancer_testkit::pg;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_with_a_postgresql_journal_reaches_its_target() {
    let Some(server) = pg::start() else {
        return;
    };
    let journal = JournalLocation::Postgres(server.database().into());
    assert!(!journal.to_string().contains("hunter2"), "{journal}");
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(None));
    let plan = rebalance(&sb, 2);
    let report = apply(
        &journal,
        &plan,
        &up,
        &config(),
        &expected(&sb),
        CancellationToken::new(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed, "{report:#?}");
    assert_eq!(state(&sb), targets(&plan));
    let runs = history(&journal, 10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, report.run);
    assert_eq!(runs[0].puts_sent, report.puts_sent);
    let detail = show(&journal, report.run).unwrap();
    assert_eq!(detail.puts.len() as u64, report.puts_sent);
    assert!(detail.puts.iter().all(|p| p.applied == Some(true)));
    assert!(cycles(&journal, 5).unwrap().is_empty());

    // Two applies on one PostgreSQL journal: the second starts once the
    // first has sent a PUT (so it surely holds the lease; the first is slowed
    // to 2 PUTs a second) and is refused with `LeaseHeld`; the first then
    // stops on request.
    let mut cfg = config();
    cfg.lease_ttl = Duration::from_secs(30);
    let plan = rebalance(&sb, 3);
    let slow = upstreams(&sb, http(Some(budget(2, 1))));
    let progress = Progress::default();
    let want = expected(&sb);
    let stop = CancellationToken::new();
    let first = apply(&journal, &plan, &slow, &cfg, &want, stop.clone(), &progress);
    let second = async {
        // Waits for a condition (the first PUT), polled; it orders nothing.
        while progress.puts_sent() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = apply(
            &journal,
            &plan,
            &up,
            &cfg,
            &want,
            CancellationToken::new(),
            &Progress::default(),
        )
        .await;
        stop.cancel();
        refused
    };
    let (a, b) = tokio::join!(first, second);
    assert!(
        matches!(b, Err(ApplyError::LeaseHeld { .. })),
        "the second apply was not refused: {b:?}"
    );
    let a = a.expect("the first apply ends on its own terms");
    assert!(
        matches!(a.outcome, RunOutcome::Interrupted | RunOutcome::Completed),
        "{a:#?}"
    );
    sb.shutdown().await;
}
