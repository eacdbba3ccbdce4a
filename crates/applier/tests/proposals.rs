//! Proposals in a real journal (a SQLite file, and a throwaway PostgreSQL
//! server when one is installed): the pending plan is kept while the
//! changes stay the same and superseded when they change; a decision
//! happens once (a second is `NotPending`); an approved plan waits for its
//! apply and is marked applied with the run that applied it, once (a
//! second apply of it sends nothing); rejected
//! changes are not proposed again; an open proposal can expire.

mod common;

use common::*;
use rebalancer_applier::proposals::{self, Decision, ProposalState, Proposed};
use rebalancer_applier::{apply_proposal, ApplyError, JournalLocation, Progress, RunOutcome};
use rebalancer_testkit::pg;
use tokio_util::sync::CancellationToken;

/// The whole life of two proposals on `journal`, ending in an apply.
async fn lifecycle(journal: &JournalLocation) {
    let sb = sandbox(7, 200, 40).await;
    let plan = rebalance(&sb, 2);
    let other = rebalance(&sb, 3);
    assert_ne!(
        proposals::changes_key(&plan),
        proposals::changes_key(&other)
    );

    // Proposed, then kept while the changes are the same.
    let first = proposals::propose(journal, &plan, "<html>1</html>", "host:1").unwrap();
    let Proposed::New {
        id: a,
        superseded: None,
    } = first
    else {
        panic!("{first:?}")
    };
    assert_eq!(
        proposals::propose(journal, &plan, "<html>1b</html>", "host:2").unwrap(),
        Proposed::Kept { id: a }
    );
    // Other changes supersede it, with the reason.
    let Proposed::New {
        id: b,
        superseded: Some(old),
    } = proposals::propose(journal, &other, "<html>2</html>", "host:1").unwrap()
    else {
        panic!("not superseded")
    };
    assert_eq!(old, a);
    let superseded = proposals::get(journal, a).unwrap();
    assert_eq!(superseded.state, ProposalState::Superseded);
    assert!(superseded
        .ended_reason
        .as_deref()
        .unwrap()
        .contains("other changes"));
    assert_eq!(
        proposals::list(journal, Some(ProposalState::Pending), 10)
            .unwrap()
            .len(),
        1
    );

    // Approved once; a second decision changes nothing.
    let approved = proposals::decide(journal, b, Decision::Approve, "ana", "looks right").unwrap();
    assert_eq!(approved.state, ProposalState::Approved);
    assert_eq!(approved.decided_by.as_deref(), Some("ana"));
    assert_eq!(approved.comment.as_deref(), Some("looks right"));
    match proposals::decide(journal, b, Decision::Reject, "bob", "no") {
        Err(ApplyError::NotPending {
            id,
            state: ProposalState::Approved,
        }) => assert_eq!(id, b),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        proposals::decide(journal, 999, Decision::Approve, "ana", ""),
        Err(ApplyError::NoSuchProposal(999))
    ));
    // While it waits for its apply, nothing else is proposed.
    assert_eq!(
        proposals::propose(journal, &plan, "<html>3</html>", "host:1").unwrap(),
        Proposed::AwaitingApply { id: b }
    );

    // The approved plan is the one proposed; applied, it is marked so.
    let (p, to_apply) = proposals::approved(journal).unwrap().unwrap();
    assert_eq!(p.id, b);
    assert_eq!(to_apply.to_json(), other.to_json());
    assert_eq!(proposals::report_of(journal, b).unwrap(), "<html>2</html>");
    let report = apply_proposal(
        journal,
        b,
        &to_apply,
        &upstreams(&sb, http(None)),
        &config(),
        &expected(&sb),
        CancellationToken::new(),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert!(report.puts_sent > 0);
    // A second replica that saw it approved gets the lease later: it finds
    // the proposal applied and sends nothing.
    let puts = sb.write_log().len();
    match apply_proposal(
        journal,
        b,
        &to_apply,
        &upstreams(&sb, http(None)),
        &config(),
        &expected(&sb),
        CancellationToken::new(),
        &Progress::default(),
    )
    .await
    {
        Err(ApplyError::NotPending {
            state: ProposalState::Applied,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(sb.write_log().len(), puts, "the second apply sent nothing");
    let applied = proposals::get(journal, b).unwrap();
    assert_eq!(
        (applied.state, applied.run),
        (ProposalState::Applied, Some(report.run))
    );
    assert!(proposals::approved(journal).unwrap().is_none());

    // Rejected changes are not proposed again; other changes are.
    let Proposed::New { id: c, .. } =
        proposals::propose(journal, &plan, "<html>4</html>", "host:1").unwrap()
    else {
        panic!("a new proposal after the apply")
    };
    proposals::decide(journal, c, Decision::Reject, "bob", "not now").unwrap();
    assert_eq!(
        proposals::propose(journal, &plan, "<html>5</html>", "host:1").unwrap(),
        Proposed::Rejected { id: c }
    );
    let Proposed::New { id: d, .. } =
        proposals::propose(journal, &other, "<html>6</html>", "host:1").unwrap()
    else {
        panic!("other changes are proposed")
    };
    // An open proposal expires with its reason, once.
    assert!(proposals::expire(journal, d, ProposalState::Pending, "the plan is 2 h old").unwrap());
    assert!(!proposals::expire(journal, d, ProposalState::Pending, "again").unwrap());
    let all = proposals::list(journal, None, 10).unwrap();
    let states: Vec<&str> = all.iter().map(|p| p.state.as_str()).collect();
    assert_eq!(
        states,
        ["expired", "rejected", "applied", "superseded"],
        "newest first"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_lives_through_approval_and_apply_in_a_sqlite_journal() {
    let dir = tempfile::tempdir().unwrap();
    lifecycle(&loc(&journal_path(dir.path()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_lives_through_approval_and_apply_in_a_postgresql_journal() {
    let Some(server) = pg::start() else {
        return;
    };
    lifecycle(&JournalLocation::Postgres(server.database().into())).await;
}

/// Two people deciding at once: exactly one decision is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_decisions_at_once_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let journal = loc(&journal_path(dir.path()));
    let sb = sandbox(7, 200, 40).await;
    let plan = rebalance(&sb, 2);
    let Proposed::New { id, .. } = proposals::propose(&journal, &plan, "", "h:1").unwrap() else {
        panic!("proposed")
    };
    let (j1, j2) = (journal.clone(), journal.clone());
    let approve = std::thread::spawn(move || {
        proposals::decide(&j1, id, Decision::Approve, "ana", "yes").is_ok()
    });
    let reject = std::thread::spawn(move || {
        proposals::decide(&j2, id, Decision::Reject, "bob", "no").is_ok()
    });
    let (a, r) = (approve.join().unwrap(), reject.join().unwrap());
    assert!(a ^ r, "approve {a}, reject {r}");
    let p = proposals::get(&journal, id).unwrap();
    let winner = if a { "ana" } else { "bob" };
    assert_eq!(p.decided_by.as_deref(), Some(winner));
    sb.shutdown().await;
}
