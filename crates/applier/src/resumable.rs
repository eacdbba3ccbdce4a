//! Which run a `resume` without a run id continues ([`latest_unfinished`]):
//! a pure decision over the journal's run list, so `resume` and its tests
//! share it.

use std::collections::BTreeSet;

use crate::error::ApplyError;
use crate::report::{RunKind, RunOutcome, RunRecord};

/// The run a `resume` without a run id continues: the newest run of the
/// journal, when it is unfinished (interrupted, or running when its process
/// died). `runs` is the journal's run list (any order).
///
/// Only the newest run is a candidate: an older unfinished run was followed
/// by later runs, and resuming it would undo their work (a rollback of it,
/// or a newer apply, would be reverted). It can still be resumed by naming
/// it; the refusal says which runs those are.
pub fn latest_unfinished(runs: &[RunRecord]) -> Result<&RunRecord, ApplyError> {
    let unfinished =
        |r: &RunRecord| matches!(r.outcome, RunOutcome::Interrupted | RunOutcome::Running);
    let Some(newest) = runs.iter().max_by_key(|r| r.id) else {
        return Err(ApplyError::NothingToResume {
            why: "the journal has no runs".into(),
            older: None,
        });
    };
    if unfinished(newest) {
        return Ok(newest);
    }
    let resumed: BTreeSet<i64> = runs
        .iter()
        .filter(|r| r.kind == RunKind::Resume)
        .filter_map(|r| r.parent)
        .collect();
    let mut superseded: Vec<i64> = runs
        .iter()
        .filter(|r| unfinished(r) && !resumed.contains(&r.id))
        .map(|r| r.id)
        .collect();
    superseded.sort_unstable();
    let mut why = format!(
        "the latest run, {} ({}), ended {}",
        newest.id, newest.kind, newest.outcome
    );
    if let Some(&last) = superseded.last() {
        let ids: Vec<String> = superseded.iter().map(i64::to_string).collect();
        why += &format!(
            "; older unfinished runs ({}) were followed by later runs, and resuming one would undo their work; to do it all the same, name run {last}",
            ids.join(", ")
        );
    }
    Err(ApplyError::NothingToResume {
        why,
        older: superseded.last().copied(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(id: i64, kind: RunKind, parent: Option<i64>, outcome: RunOutcome) -> RunRecord {
        RunRecord {
            id,
            kind,
            parent,
            plan_hash: String::new(),
            snapshot_hash: String::new(),
            config_digest: String::new(),
            started_at: String::new(),
            ended_at: None,
            outcome,
            puts_sent: 0,
            failed: 0,
            moves_made: 0,
            holder: String::new(),
        }
    }

    #[test]
    fn resume_takes_the_newest_run_only_when_it_is_unfinished() {
        use RunKind::*;
        use RunOutcome::*;
        // Run 1 interrupted, rolled back by run 2: nothing to resume, and run 1
        // is named as passed over.
        let runs = vec![
            record(2, Rollback, Some(1), Completed),
            record(1, Apply, None, Interrupted),
        ];
        let e = latest_unfinished(&runs).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("latest run, 2 (rollback), ended completed")
                && text.contains("(1)")
                && text.contains("name run 1"),
            "{text}"
        );
        assert!(matches!(
            e,
            ApplyError::NothingToResume { older: Some(1), .. }
        ));
        // Run 3 interrupted, resumed by run 4 (interrupted too): run 4.
        let runs = vec![
            record(1, Apply, None, Interrupted),
            record(3, Apply, None, Interrupted),
            record(4, Resume, Some(3), Interrupted),
        ];
        assert_eq!(latest_unfinished(&runs).unwrap().id, 4);
        // Resumed runs are not "passed over".
        let runs = vec![
            record(3, Apply, None, Interrupted),
            record(4, Resume, Some(3), Completed),
        ];
        let text = latest_unfinished(&runs).unwrap_err().to_string();
        assert!(!text.contains("older unfinished"), "{text}");
        assert!(matches!(
            latest_unfinished(&[]),
            Err(ApplyError::NothingToResume { .. })
        ));
    }

    fn arb_run() -> impl Strategy<Value = (RunKind, RunOutcome)> {
        (
            prop_oneof![
                Just(RunKind::Apply),
                Just(RunKind::Resume),
                Just(RunKind::Rollback)
            ],
            prop_oneof![
                Just(RunOutcome::Completed),
                Just(RunOutcome::CompletedWithFailures),
                Just(RunOutcome::Interrupted),
                Just(RunOutcome::Failed),
                Just(RunOutcome::Running),
            ],
        )
    }

    proptest! {
        /// Whatever the journal holds, `resume` picks the newest run or none:
        /// never an older one.
        #[test]
        fn resume_never_walks_back_to_an_older_run(
            runs in proptest::collection::vec(arb_run(), 1..20),
            order in any::<u64>(),
        ) {
            let mut records: Vec<RunRecord> = runs
                .iter()
                .enumerate()
                .map(|(i, &(kind, outcome))| {
                    let id = i as i64 + 1;
                    let parent = (kind != RunKind::Apply && id > 1).then_some(id - 1);
                    record(id, kind, parent, outcome)
                })
                .collect();
            let newest = records.len() as i64;
            let newest_unfinished = matches!(
                records.last().unwrap().outcome,
                RunOutcome::Interrupted | RunOutcome::Running
            );
            let n = records.len();
            records.rotate_left((order as usize) % n);
            match latest_unfinished(&records) {
                Ok(r) => {
                    prop_assert!(newest_unfinished);
                    prop_assert_eq!(r.id, newest);
                }
                Err(ApplyError::NothingToResume { .. }) => prop_assert!(!newest_unfinished),
                Err(e) => prop_assert!(false, "{}", e),
            }
        }
    }
}
