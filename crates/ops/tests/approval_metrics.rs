//! The proposal metrics `run` serves, from what the journal says: the
//! pending gauge follows the open proposal; each decision is counted once,
//! by outcome, with its time from proposal to decision; decisions made
//! before the process started are not counted.

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rebalancer_applier::proposals::{self, Decision};
use rebalancer_applier::JournalLocation;
use rebalancer_ops::approval::Watch;
use rebalancer_ops::series::{DECISIONS, DECISION_TIME, PROPOSALS_PENDING};
use rebalancer_testkit::{plans::rebalance, sandbox};

/// The pending gauge, and the approved and rejected counts and
/// decision-time samples recorded since the last read (the debugging
/// recorder's snapshot drains counters and histograms).
fn read(recorder: &DebuggingRecorder) -> (f64, u64, u64, usize) {
    let (mut pending, mut approved, mut rejected, mut samples) = (f64::NAN, 0, 0, 0);
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        let key = key.key();
        let outcome = key
            .labels()
            .find(|l| l.key() == "outcome")
            .map(|l| l.value().to_owned());
        match (key.name(), value) {
            (PROPOSALS_PENDING, DebugValue::Gauge(v)) => pending = v.into_inner(),
            (DECISIONS, DebugValue::Counter(n)) if outcome.as_deref() == Some("approved") => {
                approved = n
            }
            (DECISIONS, DebugValue::Counter(n)) => rejected = n,
            (DECISION_TIME, DebugValue::Histogram(h)) => samples = h.len(),
            _ => {}
        }
    }
    (pending, approved, rejected, samples)
}

#[test]
fn each_decision_is_counted_once_and_the_pending_gauge_follows_the_journal() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sb = runtime.block_on(sandbox::start(7, 60, 20));
    let dir = tempfile::tempdir().unwrap();
    let journal = JournalLocation::Sqlite(dir.path().join("journal.sqlite"));
    let (one, two, three) = (rebalance(&sb, 2), rebalance(&sb, 3), rebalance(&sb, 1));
    // A decision made before this process looked.
    let old = proposals::propose(&journal, &one, "", "h:1").unwrap();
    let proposals::Proposed::New { id: old, .. } = old else {
        panic!("{old:?}")
    };
    proposals::decide(&journal, old, Decision::Reject, "bob", "no").unwrap();

    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        let mut watch = Watch::default();
        watch.look(&journal);
        assert_eq!(
            read(&recorder),
            (0.0, 0, 0, 0),
            "the old decision is not this process's"
        );

        let proposals::Proposed::New { id, .. } =
            proposals::propose(&journal, &two, "", "h:1").unwrap()
        else {
            panic!("a new proposal")
        };
        watch.look(&journal);
        assert_eq!(read(&recorder).0, 1.0, "one pending");
        proposals::decide(&journal, id, Decision::Approve, "ana", "ok").unwrap();
        watch.look(&journal);
        watch.look(&journal);
        assert_eq!(read(&recorder), (0.0, 1, 0, 1), "approved, counted once");

        proposals::expire(&journal, id, proposals::ProposalState::Approved, "test").unwrap();
        let proposals::Proposed::New { id, .. } =
            proposals::propose(&journal, &three, "", "h:1").unwrap()
        else {
            panic!("a new proposal")
        };
        proposals::decide(&journal, id, Decision::Reject, "bob", "not now").unwrap();
        watch.look(&journal);
        assert_eq!(read(&recorder), (0.0, 0, 1, 1), "one rejection since");
    });
    runtime.block_on(sb.shutdown());
}
