//! An apply against the sandbox with its journal in PostgreSQL (a
//! throwaway server, `support/pg.rs`): the plan reaches its target, the
//! journal lists the run and its PUTs, and a second apply on the same
//! journal while the first holds the lease gets `LeaseHeld`. Skipped with a
//! notice when PostgreSQL is not installed.

mod common;
#[path = "support/pg.rs"]
mod pg;

use std::time::Duration;

use common::*;
use rebalancer_applier::{
    apply, cycles, history, show, ApplyError, JournalLocation, Progress, RunOutcome,
};
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

    // Two applies at once on one PostgreSQL journal: one holds the lease.
    let mut cfg = config();
    cfg.lease_ttl = Duration::from_secs(30);
    let plan = rebalance(&sb, 3);
    let progress = Progress::default();
    let want = expected(&sb);
    let (a, b) = tokio::join!(
        apply(
            &journal,
            &plan,
            &up,
            &cfg,
            &want,
            CancellationToken::new(),
            &progress
        ),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            apply(
                &journal,
                &plan,
                &up,
                &cfg,
                &want,
                CancellationToken::new(),
                &Progress::default(),
            )
            .await
        }
    );
    let held = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(ApplyError::LeaseHeld { .. })))
        .count();
    assert!(held <= 1, "{a:?} / {b:?}");
    assert!(a.is_ok() || b.is_ok(), "{a:?} / {b:?}");
    sb.shutdown().await;
}
