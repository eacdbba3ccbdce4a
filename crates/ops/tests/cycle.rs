//! The cycle and its loop, driven as a library against the embedded
//! sandbox (no binary spawned): what each outcome records, what reaches
//! the sandbox, and how the observer ends the loop.

use rebalancer_applier::{CycleOutcome, JournalLocation, Progress};
use rebalancer_ops::connect::{Source, World};
use rebalancer_ops::cycle::{self, CycleOptions, Ended, Flow, Observer};
use rebalancer_ops::schedule::Schedule;
use rebalancer_ops::session::{self, Session};
use rebalancer_ops::settings::Env;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WORLD: World = World {
    agents: 24,
    leads: 16,
    seed: 11,
};

/// A write session on a fresh sandbox, its journal in `dir`, writes fast.
async fn session_in(dir: &tempfile::TempDir) -> Session {
    let env = Env::from_pairs([
        ("REBALANCER_APPLY__PUTS_PER_SECOND", "500"),
        ("REBALANCER_APPLY__BURST", "50"),
    ]);
    let journal = dir.path().join("journal.sqlite");
    session::session(&Source::Sandbox(WORLD), &env, Some(journal), false)
        .await
        .expect("a sandbox session")
}

/// Keeps every cycle, applies seen, and stops after `stop_after` cycles.
#[derive(Default)]
struct Seen {
    cycles: Vec<Ended>,
    applies: usize,
    stop_after: usize,
}

impl Observer for Seen {
    fn apply_started(&mut self, _progress: &Progress) {
        self.applies += 1;
    }

    fn cycle_ended(&mut self, ended: Ended) -> Flow {
        self.cycles.push(ended);
        if self.cycles.len() >= self.stop_after {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

fn puts(s: &Session) -> usize {
    let sb = s.connected.connection.sandbox().expect("a sandbox session");
    sb.write_log().len()
}

#[tokio::test]
async fn a_dry_run_cycle_plans_records_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = session_in(&dir).await;
    let mut seen = Seen::default();
    let opts = CycleOptions {
        dry_run: true,
        guard: Duration::ZERO,
        ..CycleOptions::default()
    };
    let c = cycle::cycle(&s, opts, &CancellationToken::new(), &mut seen).await;
    assert!(c.error.is_none(), "{:?}", c.error);
    assert_eq!(
        c.record.outcome,
        CycleOutcome::Planned,
        "{}",
        c.record.detail
    );
    assert!(c.record.assigns + c.record.unassigns > 0, "{:?}", c.record);
    assert!(c.record.plan_hash.is_some() && c.record.snapshot_hash.is_some());
    assert_eq!(seen.applies, 0);
    assert_eq!(puts(&s), 0);
    s.close().await;
}

#[tokio::test]
async fn an_applied_cycle_reaches_the_target_and_the_next_has_nothing_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = session_in(&dir).await;
    let mut seen = Seen {
        stop_after: 1,
        ..Seen::default()
    };
    let stop = CancellationToken::new();
    let opts = CycleOptions::default();
    cycle::run(&s, None, false, opts, &stop, &mut seen)
        .await
        .unwrap();
    let first = &seen.cycles[0];
    assert!(first.cycle.error.is_none(), "{:?}", first.cycle.error);
    assert_eq!(first.cycle.record.outcome, CycleOutcome::Applied);
    let id = *first.recorded.as_ref().unwrap();
    assert!(id > 0);
    assert!(first.cycle.record.run.is_some());
    assert_eq!(seen.applies, 1);
    assert!(puts(&s) > 0);
    // Recorded: the journal lists the cycle with the run it made.
    let cycles = rebalancer_applier::cycles(&s.journal, 10).unwrap();
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0].id, id);
    assert_eq!(cycles[0].run, first.cycle.record.run);
    // The sandbox now holds the plan's target: replanning finds nothing.
    let before = puts(&s);
    let again = cycle::cycle(&s, opts, &stop, &mut seen).await;
    assert_eq!(
        again.record.outcome,
        CycleOutcome::NoChanges,
        "{}",
        again.record.detail
    );
    assert_eq!(puts(&s), before);
    s.close().await;
}

#[tokio::test]
async fn the_observer_ends_a_scheduled_loop() {
    let dir = tempfile::tempdir().unwrap();
    let s = session_in(&dir).await;
    let every = Schedule::every("test", "1s").unwrap();
    let mut seen = Seen {
        stop_after: 2,
        ..Seen::default()
    };
    let opts = CycleOptions {
        dry_run: true,
        guard: Duration::ZERO,
        ..CycleOptions::default()
    };
    let stop = CancellationToken::new();
    let looped = cycle::run(&s, Some(&every), true, opts, &stop, &mut seen);
    // A bound on a failure, not an ordering: without the observer's Stop
    // the loop would run for ever.
    tokio::time::timeout(Duration::from_secs(60), looped)
        .await
        .expect("the observer's Stop ends the loop")
        .unwrap();
    assert_eq!(seen.cycles.len(), 2);
    // Never overlapped: the second started after the first ended.
    assert!(seen.cycles[1].started >= seen.cycles[0].ended);
    assert_eq!(rebalancer_applier::cycles(&s.journal, 10).unwrap().len(), 2);
    s.close().await;
}

#[tokio::test]
async fn a_cancelled_stop_token_ends_the_loop_before_its_next_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let s = session_in(&dir).await;
    let hourly = Schedule::every("test", "1h").unwrap();
    let mut seen = Seen {
        stop_after: usize::MAX,
        ..Seen::default()
    };
    let opts = CycleOptions {
        dry_run: true,
        guard: Duration::ZERO,
        ..CycleOptions::default()
    };
    let stop = CancellationToken::new();
    stop.cancel();
    // The first cycle runs at once; cancelled, the loop does not wait an
    // hour for the second.
    cycle::run(&s, Some(&hourly), true, opts, &stop, &mut seen)
        .await
        .unwrap();
    assert_eq!(seen.cycles.len(), 1);
    s.close().await;
}

#[tokio::test]
async fn an_empty_webex_user_list_fails_the_cycle_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = session_in(&dir).await;
    let journal: JournalLocation = s.journal.clone();
    let sb = s.connected.connection.sandbox().unwrap();
    sb.set_faults(rebalancer_sandbox::Faults {
        webex: rebalancer_sandbox::FaultSpec {
            p_empty: 1.0,
            ..Default::default()
        },
        ..Default::default()
    });
    let mut seen = Seen {
        stop_after: 1,
        ..Seen::default()
    };
    let stop = CancellationToken::new();
    cycle::run(&s, None, false, CycleOptions::default(), &stop, &mut seen)
        .await
        .unwrap();
    let c = &seen.cycles[0].cycle;
    assert_eq!(c.record.outcome, CycleOutcome::Failed);
    assert!(c.error.is_some());
    assert!(
        c.record.detail.contains("fetch failed"),
        "{}",
        c.record.detail
    );
    assert_eq!(puts(&s), 0);
    let recorded = rebalancer_applier::cycles(&journal, 10).unwrap();
    assert_eq!(recorded[0].outcome, CycleOutcome::Failed);
    s.close().await;
}

/// `run.approval = "always"`: the plan waits as a proposal and nothing is
/// sent, the same changes keep the proposal, an approved one is applied by
/// the next cycle (and marked applied with its run), after which nothing
/// is left to change.
#[tokio::test]
async fn an_approved_proposal_is_applied_by_the_next_cycle_and_not_before() {
    use rebalancer_applier::proposals::{self, Decision, ProposalState};
    use rebalancer_ops::approval::Approval;
    let dir = tempfile::tempdir().unwrap();
    let s = session_in(&dir).await;
    let opts = CycleOptions {
        approval: Approval::Always,
        ..CycleOptions::default()
    };
    let stop = CancellationToken::new();
    let mut seen = Seen::default();
    let first = cycle::cycle(&s, opts, &stop, &mut seen).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_eq!(first.record.outcome, CycleOutcome::AwaitingApproval);
    assert!(first
        .record
        .detail
        .contains("waits for a person's approval"));
    assert_eq!(puts(&s), 0, "nothing is sent before approval");
    let again = cycle::cycle(&s, opts, &stop, &mut seen).await;
    assert_eq!(again.record.outcome, CycleOutcome::AwaitingApproval);
    assert!(
        again.record.detail.contains("still waits"),
        "{}",
        again.record.detail
    );
    let pending = proposals::list(&s.journal, Some(ProposalState::Pending), 10).unwrap();
    assert_eq!(pending.len(), 1, "the same changes keep one proposal");
    assert_eq!(puts(&s), 0);
    let id = pending[0].id;
    proposals::decide(&s.journal, id, Decision::Approve, "ana", "go").unwrap();
    let applied = cycle::cycle(&s, opts, &stop, &mut seen).await;
    assert!(applied.error.is_none(), "{:?}", applied.error);
    assert_eq!(
        applied.record.outcome,
        CycleOutcome::Applied,
        "{}",
        applied.record.detail
    );
    assert!(
        applied.record.detail.contains("approved proposal")
            && applied.record.detail.contains("ana")
    );
    assert!(puts(&s) > 0);
    let p = proposals::get(&s.journal, id).unwrap();
    assert_eq!(
        (p.state, p.run),
        (ProposalState::Applied, applied.record.run)
    );
    let after = cycle::cycle(&s, opts, &stop, &mut seen).await;
    assert_eq!(
        after.record.outcome,
        CycleOutcome::NoChanges,
        "{}",
        after.record.detail
    );
    s.close().await;
}

/// A rejected proposal: nothing is sent, and the same changes are not
/// proposed again; a policy whose threshold the plan stays under applies
/// it at once.
#[tokio::test]
async fn rejected_changes_are_not_sent_and_small_plans_need_no_approval() {
    use rebalancer_applier::proposals::{self, Decision, ProposalState};
    use rebalancer_ops::approval::Approval;
    let dir = tempfile::tempdir().unwrap();
    let s = session_in(&dir).await;
    let stop = CancellationToken::new();
    let mut seen = Seen::default();
    let large = CycleOptions {
        approval: Approval::Large(0),
        ..CycleOptions::default()
    };
    let first = cycle::cycle(&s, large, &stop, &mut seen).await;
    assert_eq!(first.record.outcome, CycleOutcome::AwaitingApproval);
    let id = proposals::list(&s.journal, Some(ProposalState::Pending), 1).unwrap()[0].id;
    proposals::decide(&s.journal, id, Decision::Reject, "bob", "not today").unwrap();
    let rejected = cycle::cycle(&s, large, &stop, &mut seen).await;
    assert_eq!(
        rejected.record.outcome,
        CycleOutcome::Rejected,
        "{}",
        rejected.record.detail
    );
    assert_eq!(puts(&s), 0);
    assert_eq!(proposals::list(&s.journal, None, 10).unwrap().len(), 1);
    let small = CycleOptions {
        approval: Approval::Large(1_000_000),
        ..CycleOptions::default()
    };
    let applied = cycle::cycle(&s, small, &stop, &mut seen).await;
    assert_eq!(
        applied.record.outcome,
        CycleOutcome::Applied,
        "{}",
        applied.record.detail
    );
    assert!(puts(&s) > 0);
    s.close().await;
}

/// Approves the pending proposal when the first cycle has proposed it.
struct Approver {
    journal: JournalLocation,
    seen: Seen,
}

impl Observer for Approver {
    fn apply_started(&mut self, progress: &Progress) {
        self.seen.apply_started(progress);
    }

    fn cycle_ended(&mut self, ended: Ended) -> Flow {
        use rebalancer_applier::proposals::{self, Decision, ProposalState};
        if ended.cycle.record.outcome == CycleOutcome::AwaitingApproval {
            let id = proposals::list(&self.journal, Some(ProposalState::Pending), 1).unwrap()[0].id;
            proposals::decide(&self.journal, id, Decision::Approve, "ana", "go").unwrap();
        }
        self.seen.cycle_ended(ended)
    }
}

/// `run.approval_poll`: on an hourly schedule, a plan approved after the
/// first cycle is applied by a cycle that starts within the poll, not an
/// hour later; the schedule's own start stays where it was.
#[tokio::test]
async fn an_approved_plan_is_applied_within_the_poll_not_at_the_next_cycle() {
    use rebalancer_applier::proposals::{self, ProposalState};
    use rebalancer_ops::approval::Approval;
    let dir = tempfile::tempdir().unwrap();
    let s = session_in(&dir).await;
    let hourly = Schedule::every("test", "1h").unwrap();
    let opts = CycleOptions {
        approval: Approval::Always,
        approval_poll: Duration::from_millis(20),
        ..CycleOptions::default()
    };
    let mut approver = Approver {
        journal: s.journal.clone(),
        seen: Seen {
            stop_after: 2,
            ..Seen::default()
        },
    };
    let stop = CancellationToken::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        cycle::run(&s, Some(&hourly), true, opts, &stop, &mut approver),
    )
    .await
    .expect("the approved plan waited for the next hourly cycle")
    .unwrap();
    let cycles = &approver.seen.cycles;
    assert_eq!(
        cycles[0].cycle.record.outcome,
        CycleOutcome::AwaitingApproval
    );
    assert_eq!(
        cycles[1].cycle.record.outcome,
        CycleOutcome::Applied,
        "{}",
        cycles[1].cycle.record.detail
    );
    assert!(puts(&s) > 0);
    let applied = proposals::list(&s.journal, None, 1).unwrap().remove(0);
    assert_eq!(applied.state, ProposalState::Applied);
    assert_eq!(applied.run, cycles[1].cycle.record.run);
    s.close().await;
}
