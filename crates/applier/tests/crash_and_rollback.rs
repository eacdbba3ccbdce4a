//! Runs that end badly, against the sandbox with real SQLite journals: a
//! crash between a PUT's `pending` row and the PUT (both read-back
//! outcomes on `resume`), an interrupted rollback resumed, a rollback of a
//! rollback, and a run with nothing to undo (`NotRollbackable`).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use rebalancer_applier::{
    apply, history, resume, rollback, show, ApplyError, LeadKey, Progress, PutState, RunKind,
    RunOutcome,
};
use rebalancer_model::Plan;
use rebalancer_upstream::MappingUpdate;
use tokio_util::sync::CancellationToken;

fn no_stop() -> CancellationToken {
    CancellationToken::new()
}

fn stopped() -> CancellationToken {
    let stop = CancellationToken::new();
    stop.cancel();
    stop
}

/// The PUT body the applier would send to take `lead` from `now` to
/// `target` (as the journal stores it).
fn body(lead: LeadKey, now: &BTreeSet<String>, target: &BTreeSet<String>) -> String {
    serde_json::to_string(&MappingUpdate {
        lead_id: lead.lead_id,
        campaign_id: lead.campaign_id,
        assigned_user_ids: target.difference(now).cloned().collect(),
        unassigned_user_ids: now.difference(target).cloned().collect(),
    })
    .unwrap()
}

/// What a crash right after journaling a PUT leaves: its `pending` row in
/// run `run`, as the applier writes it before sending (committed, no
/// outcome).
fn journal_pending(journal: &Path, run: i64, lead: LeadKey, body: &str) {
    let conn = rusqlite::Connection::open(journal).unwrap();
    conn.execute(
        "INSERT INTO puts (run, campaign_id, lead_id, seq, body, state, sent_at)
         VALUES (?1, ?2, ?3, 1, ?4, 'pending', '2026-11-30T01:00:00Z')",
        rusqlite::params![run, lead.campaign_id, lead.lead_id, body],
    )
    .unwrap();
}

/// Two leads the plan changes.
fn two_changed_leads(plan: &Plan) -> (LeadKey, LeadKey) {
    let changed: BTreeSet<LeadKey> = plan.changes.iter().map(|c| c.lead).collect();
    let mut it = changed.into_iter();
    (it.next().unwrap(), it.next().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_pending_row_and_the_put_is_read_back_on_resume() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(None));
    let plan = rebalance(&sb, 2);
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());
    // A run that sent nothing (stopped before its first PUT) ...
    let first = apply(
        &loc(&journal),
        &plan,
        &up,
        &config(),
        &expected(&sb),
        stopped(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(first.outcome, RunOutcome::Interrupted);
    assert_eq!(sb.counts().cms_put, 0);
    // ... then crashed after journaling two PUTs: one reached the CMS
    // (someone applied it: the sandbox holds its target), one did not.
    let (reached, lost) = two_changed_leads(&plan);
    let (now, target) = (state(&sb), targets(&plan));
    for lead in [reached, lost] {
        journal_pending(
            &journal,
            first.run,
            lead,
            &body(lead, &now[&lead], &target[&lead]),
        );
    }
    let reached_target: Vec<&str> = target[&reached].iter().map(String::as_str).collect();
    sb.set_lead_users(reached.campaign_id, reached.lead_id, &reached_target)
        .unwrap();

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
    assert_eq!(second.outcome, RunOutcome::Completed, "{second:#?}");
    assert_eq!(state(&sb), targets(&plan));
    // Each pending PUT was resolved by reading its lead back.
    let puts = show(&loc(&journal), first.run).unwrap().puts;
    let outcome = |lead: LeadKey| {
        let p = puts.iter().find(|p| p.lead == lead).unwrap();
        (p.state, p.applied)
    };
    assert_eq!(outcome(reached), (PutState::Resolved, Some(true)));
    assert_eq!(outcome(lost), (PutState::Resolved, Some(false)));
    // The lead the lost PUT was for got it now, once; the one that reached
    // the CMS was not sent again.
    let sent_to = |lead: LeadKey| {
        sb.write_log()
            .iter()
            .filter(|w| w.campaign_id == lead.campaign_id && w.lead_id == lead.lead_id)
            .count()
    };
    assert_eq!(sent_to(lost), 1);
    assert_eq!(sent_to(reached), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_applied_nothing_is_not_rollbackable() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(None));
    let plan = rebalance(&sb, 2);
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());
    let nothing = apply(
        &loc(&journal),
        &plan,
        &up,
        &config(),
        &expected(&sb),
        stopped(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(nothing.puts_sent, 0);
    let e = rollback(
        &loc(&journal),
        nothing.run,
        &up,
        &config(),
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, ApplyError::NotRollbackable { run, .. } if run == nothing.run),
        "{e:?}"
    );
    assert_eq!(sb.counts().cms_put, 0);
    assert_eq!(
        history(&loc(&journal), 10).unwrap().len(),
        1,
        "a run was recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rollback_resumes_and_a_rollback_can_be_rolled_back() {
    let sb = sandbox(7, 200, 40).await;
    let up = upstreams(&sb, http(None));
    let original = state(&sb);
    let plan = rebalance(&sb, 2);
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());
    let applied = apply(
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
    let after_apply = state(&sb);
    // A rollback stopped before its first PUT ...
    let puts = sb.counts().cms_put;
    let stopped_back = rollback(
        &loc(&journal),
        applied.run,
        &up,
        &config(),
        &expected(&sb),
        stopped(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        (stopped_back.kind, stopped_back.outcome),
        (RunKind::Rollback, RunOutcome::Interrupted)
    );
    assert_eq!(sb.counts().cms_put, puts);
    // ... is what `resume` finishes: as a rollback, to where a whole
    // rollback goes.
    let resumed = resume(
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
    assert_eq!(
        (resumed.kind, resumed.outcome),
        (RunKind::Resume, RunOutcome::Completed)
    );
    assert_eq!(
        history(&loc(&journal), 10).unwrap()[0].parent,
        Some(stopped_back.run)
    );
    let rolled_back = state(&sb);
    assert_ne!(
        rolled_back, after_apply,
        "the resumed rollback undid nothing"
    );
    let changed: BTreeSet<LeadKey> = plan.changes.iter().map(|c| c.lead).collect();
    for (lead, now) in &rolled_back {
        if !changed.contains(lead) {
            assert_eq!(now, &original[lead], "{lead} was not in the plan");
        }
    }
    // A rollback of the rollback puts back what the rollback undid.
    let again = rollback(
        &loc(&journal),
        stopped_back.run,
        &up,
        &config(),
        &expected(&sb),
        no_stop(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        (again.kind, again.outcome),
        (RunKind::Rollback, RunOutcome::Completed)
    );
    assert_eq!(
        history(&loc(&journal), 10).unwrap()[0].parent,
        Some(stopped_back.run)
    );
    assert_eq!(again.moves_made, resumed.moves_made);
    assert_eq!(state(&sb), after_apply);
}
