//! The journal's own tests on SQLite files: migrations from every older
//! version, the reads and writes, and the fenced lease (tokens that only
//! grow, the journal's clock, takeover, stale writers refused, holders in
//! other PID namespaces). `pg_tests.rs` runs the lease and fencing checks
//! ([`lease_and_fencing`]) on PostgreSQL too.

use super::*;
use crate::journal::db::Value;
use crate::report::{CycleMode, CycleOutcome, PutState, RunKind};
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

fn version(path: &Path) -> u32 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn migrates_an_empty_file_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    std::fs::write(&path, b"").unwrap();
    Journal::open(&path).unwrap();
    assert_eq!(version(&path), schema::VERSION);
    let mode: String = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Opening again is a no-op.
    let j = Journal::open(&path).unwrap();
    let sync =
        j.db.query_one("PRAGMA synchronous", &[])
            .unwrap()
            .int(0)
            .unwrap();
    assert_eq!(sync, 2, "synchronous = FULL");
}

#[test]
fn migrates_a_version_1_journal_keeping_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute_batch(
            "INSERT INTO runs (kind, plan_hash, snapshot_hash, config_digest, plan_json, started_at, outcome, holder)
               VALUES ('apply', 'p', 's', 'c', x'7b7d', '2026-01-01T00:00:00Z', 'completed', 'h:1');
             INSERT INTO puts (run, campaign_id, lead_id, seq, body, state, sent_at)
               VALUES (1, 5, 6, 1, '{}', 'applied', '2026-01-01T00:00:00Z');
             INSERT INTO lease (id, holder, host, pid, expires_at) VALUES (1, 'h:1', 'h', 1, 'x');",
        )
        .unwrap();
    }
    let j = Journal::open(&path).unwrap();
    assert_eq!(version(&path), schema::VERSION);
    let runs = j.runs(10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, RunOutcome::Completed);
    let puts = j.puts(&[1]).unwrap();
    assert_eq!(puts[0].applied, Some(true));
    // The version-1 lease (no token) is gone: the lease is free.
    j.acquire_lease(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_version_2_journal_gains_cycles_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.sqlite");
    {
        let mut c = Connection::open(&path).unwrap();
        for (i, sql) in schema::MIGRATIONS[..2].iter().enumerate() {
            let tx = c.transaction().unwrap();
            tx.execute_batch(sql).unwrap();
            tx.pragma_update(None, "user_version", i as u32 + 1)
                .unwrap();
            tx.commit().unwrap();
        }
    }
    let j = Journal::open(&path).unwrap();
    assert_eq!(version(&path), schema::VERSION);
    assert!(j.cycles(5).unwrap().is_empty());
    let cycle = CycleRecord {
        started_at: "2026-01-01T00:00:00Z".into(),
        ended_at: "2026-01-01T00:00:03Z".into(),
        mode: CycleMode::DryRun,
        outcome: CycleOutcome::Planned,
        assigns: 3,
        held_back: 1,
        shortfall_before: Some(10.0),
        detail: "3 assigns planned".into(),
        ..CycleRecord::default()
    };
    let first = j.record_cycle(&cycle, "h:1").unwrap();
    let second = j.record_cycle(&cycle, "h:1").unwrap();
    let read = j.cycles(5).unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].id, second, "newest first");
    assert_eq!(read[1], CycleRecord { id: first, ..cycle });
}

#[test]
fn migrates_a_version_2_journal_filling_the_done_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.sqlite");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.execute_batch(schema::MIGRATIONS[1]).unwrap();
        c.pragma_update(None, "user_version", 2).unwrap();
        c.execute_batch(
            "INSERT INTO runs (kind, plan_hash, snapshot_hash, config_digest, plan_json, started_at, outcome, holder)
               VALUES ('apply', 'p', 's', 'c', x'7b7d', '2026-01-01T00:00:00Z', 'completed', 'h:1');
             INSERT INTO puts (run, campaign_id, lead_id, seq, body, state, applied, sent_at, done_at) VALUES
               (1, 5, 6, 1, '{}', 'applied', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
               (1, 5, 7, 1, '{}', 'applied', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00.5Z'),
               (1, 5, 8, 1, '{}', 'resolved', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:01.123456789Z'),
               (1, 5, 9, 1, '{}', 'failed', 0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:02Z'),
               (1, 5, 10, 1, '{}', 'pending', NULL, '2026-01-01T00:00:03Z', NULL);",
        )
        .unwrap();
    }
    let j = Journal::open(&path).unwrap();
    assert_eq!(version(&path), schema::VERSION);
    let base = unix_ms(time::macros::datetime!(2026-01-01 00:00:00 UTC));
    let done: Vec<Option<i64>> = {
        let c = Connection::open(&path).unwrap();
        let mut stmt = c.prepare("SELECT done_ms FROM puts ORDER BY id").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(
        done,
        [
            Some(base),
            Some(base + 500),
            Some(base + 1123),
            Some(base + 2000),
            None
        ]
    );
    let leads = |since: i64| -> Vec<u64> {
        j.applied_since(since)
            .unwrap()
            .into_iter()
            .map(|(l, _)| l.lead_id)
            .collect()
    };
    assert_eq!(leads(base), [6, 7, 8]);
    assert_eq!(leads(base + 500), [7, 8]);
    assert_eq!(leads(base + 501), [8]);
    assert_eq!(leads(base + 1124), Vec::<u64>::new());
}

#[test]
fn only_puts_that_took_effect_are_applied_since_and_the_index_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.sqlite");
    let j = Journal::open(&path).unwrap();
    j.acquire_lease(Duration::from_secs(60)).unwrap();
    let run = j
        .start_run(NewRun {
            kind: RunKind::Apply,
            parent: None,
            snapshot_hash: "s",
            config_digest: "c",
            plan_json: b"{}",
            plan_hash: "h",
            holder: "h:1",
        })
        .unwrap();
    let start = unix_ms(time::OffsetDateTime::now_utc());
    let outcomes: [(PutState, Option<bool>); 6] = [
        (PutState::Applied, Some(true)),
        (PutState::Failed, Some(false)),
        (PutState::Ambiguous, None),
        (PutState::Resolved, Some(true)),
        (PutState::Resolved, Some(false)),
        (PutState::Pending, None),
    ];
    for (k, (state, applied)) in outcomes.into_iter().enumerate() {
        let lead = LeadKey {
            campaign_id: 1,
            lead_id: k as u64,
        };
        let id = j.put_pending(run, lead, 1, "{}").unwrap();
        if state != PutState::Pending {
            j.put_done(
                id,
                PutOutcome {
                    state,
                    applied,
                    status: None,
                    echo: None,
                    message: None,
                },
            )
            .unwrap();
        }
    }
    let found: Vec<u64> = j
        .applied_since(start)
        .unwrap()
        .into_iter()
        .map(|(l, _)| l.lead_id)
        .collect();
    assert_eq!(found, [0, 3]);
    let later = unix_ms(time::OffsetDateTime::now_utc()) + 1;
    assert!(j.applied_since(later).unwrap().is_empty());
    let plan: Vec<String> = {
        let c = Connection::open(&path).unwrap();
        let mut stmt = c
            .prepare("EXPLAIN QUERY PLAN SELECT campaign_id, lead_id, body FROM puts WHERE applied = 1 AND done_ms >= ?1 ORDER BY done_ms, id")
            .unwrap();
        let rows = stmt.query_map([0], |r| r.get(3)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    assert!(
        plan.iter().any(|d| d.contains("puts_applied_by_time")),
        "{plan:?}"
    );
}

#[test]
fn refuses_a_newer_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.sqlite");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let e = Journal::open(&path).unwrap_err();
    assert!(e.to_string().contains("version 99"), "{e}");
}

fn new_run(j: &Journal, kind: RunKind, parent: Option<i64>) -> Result<i64, ApplyError> {
    j.start_run(NewRun {
        kind,
        parent,
        snapshot_hash: "s",
        config_digest: "c",
        plan_json: b"{}",
        plan_hash: "h",
        holder: "h:1",
    })
}

const LEAD: LeadKey = LeadKey {
    campaign_id: 3,
    lead_id: 4,
};

/// The lease and its fencing on the journal `open` opens (each call a new
/// handle on the same journal): the checks both backends must pass.
pub(super) fn lease_and_fencing(open: &dyn Fn() -> Journal) {
    let (a, b) = (open(), open());
    // Nothing may be written for a run without the lease.
    assert!(matches!(
        new_run(&a, RunKind::Apply, None),
        Err(ApplyError::LeaseLost { .. })
    ));
    let la = a.acquire_lease(Duration::from_secs(30)).unwrap();
    match b.acquire_lease(Duration::from_secs(5)) {
        Err(ApplyError::LeaseHeld { holder, .. }) => assert_eq!(holder, la.holder),
        other => panic!("{other:?}"),
    }
    let run = new_run(&a, RunKind::Apply, None).unwrap();
    let put = a.put_pending(run, LEAD, 1, "{}").unwrap();
    a.fence(&la).unwrap();
    assert!(la.valid_for(Duration::from_secs(20)));
    // The lease runs out by the journal's clock (a renewal with no time
    // left: the holder paused); another process takes it over with a
    // higher token.
    a.db.execute(
        "UPDATE lease SET expires_ms = rb_now_ms() WHERE id = 1",
        &[],
    )
    .unwrap();
    let lb = b.acquire_lease(Duration::from_secs(30)).unwrap();
    assert!(lb.token() > la.token(), "tokens only grow");
    // The old holder is fenced off: no renewal, no write, no PUT.
    assert!(!a.renew_lease(&la).unwrap());
    for refused in [
        a.fence(&la),
        a.put_pending(run, LEAD, 2, "{}").map(|_| ()),
        a.put_done(
            put,
            PutOutcome {
                state: PutState::Applied,
                applied: Some(true),
                status: Some(200),
                echo: None,
                message: None,
            },
        ),
        a.set_lead(run, LEAD, LeadState::Done, "", None),
        a.count_run(run, 1, 0, 1),
        a.end_run(run, RunOutcome::Completed, 1, 0, 1),
        new_run(&a, RunKind::Apply, None).map(|_| ()),
    ] {
        match refused {
            Err(ApplyError::LeaseLost { holder, .. }) => assert_eq!(holder, lb.holder),
            other => panic!("a stale holder's write went through: {other:?}"),
        }
    }
    // Nothing of the stale writes landed: the PUT is still pending, the
    // run still running, for the new holder to resolve.
    let puts = b.puts(&[run]).unwrap();
    assert_eq!((puts.len(), puts[0].state.as_str()), (1, "pending"));
    assert_eq!(b.run(run).unwrap().unwrap().outcome, RunOutcome::Running);
    // The new holder writes; releasing keeps the token, so the next is
    // higher still; a release by the stale holder changes nothing.
    b.put_done(
        put,
        PutOutcome {
            state: PutState::Resolved,
            applied: Some(true),
            status: None,
            echo: None,
            message: None,
        },
    )
    .unwrap();
    a.release_lease(&la).unwrap();
    assert!(matches!(
        a.acquire_lease(Duration::from_secs(5)),
        Err(ApplyError::LeaseHeld { .. })
    ));
    b.release_lease(&lb).unwrap();
    let lc = a.acquire_lease(Duration::from_secs(5)).unwrap();
    assert!(lc.token() > lb.token());
    // A lease taken with no time at all is expired at once.
    a.release_lease(&lc).unwrap();
    let short = a.acquire_lease(Duration::ZERO).unwrap();
    let next = b.acquire_lease(Duration::from_secs(5)).unwrap();
    assert!(next.token() > short.token());
    b.release_lease(&next).unwrap();
}

/// Sets the lease row as another process would have left it.
pub(super) fn plant_lease(j: &Journal, holder: &str, instance: &str, epoch_is_ours: bool) {
    j.db.execute(
        "UPDATE lease SET token = token + 1, holder = ?1, instance = ?2,
           epoch = CASE WHEN ?3 = 1 THEN rb_epoch() ELSE 'another-epoch' END,
           expires_ms = rb_now_ms() + 3600000 WHERE id = 1",
        &[
            Value::from(holder),
            Value::from(instance),
            Value::from(epoch_is_ours),
        ],
    )
    .unwrap();
}

#[test]
fn the_lease_is_fenced_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    lease_and_fencing(&|| Journal::open(&path).unwrap());
}

#[cfg(target_os = "linux")]
#[test]
fn a_holder_that_is_certainly_gone_is_taken_over_at_once_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    let j = Journal::open(&path).unwrap();
    let me = identity::instance();
    let parts: Vec<&str> = me.split('/').collect();
    // Same boot and PID namespace, a pid that runs nothing: gone.
    let dead = format!("{}/{}/99999999/{}", parts[0], parts[1], parts[3]);
    plant_lease(&j, "this-host:99999999", &dead, true);
    j.acquire_lease(Duration::from_secs(5)).unwrap();
    // The same host name and a dead pid, but another PID namespace (a
    // container with a fixed `hostname:`): the expiry decides (#3).
    let other_ns = format!("{}/pid:[1]/99999999/{}", parts[0], parts[3]);
    plant_lease(&j, "this-host:99999999", &other_ns, true);
    match j.acquire_lease(Duration::from_secs(5)) {
        Err(ApplyError::LeaseHeld { holder, .. }) => assert_eq!(holder, "this-host:99999999"),
        other => panic!("took the lease of a holder in another PID namespace: {other:?}"),
    }
    // A live holder (this very process, another handle) keeps it.
    plant_lease(&j, "me", &me, true);
    assert!(matches!(
        Journal::open(&path)
            .unwrap()
            .acquire_lease(Duration::from_secs(5)),
        Err(ApplyError::LeaseHeld { .. })
    ));
    // A SQLite lease from another boot: its boot-clock expiry means
    // nothing now, so it is expired.
    plant_lease(&j, "old-boot:1", &other_ns, false);
    j.acquire_lease(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_loop_of_run_parents_is_an_error_naming_the_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loop.sqlite");
    let j = Journal::open(&path).unwrap();
    j.acquire_lease(Duration::from_secs(60)).unwrap();
    let first = new_run(&j, RunKind::Apply, None).unwrap();
    let second = new_run(&j, RunKind::Resume, Some(first)).unwrap();
    // Hand-edited: run 1 becomes a resume of run 2.
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE runs SET kind = 'resume', parent = ?1 WHERE id = ?2",
            [second, first],
        )
        .unwrap();
    match j.family(second) {
        Err(ApplyError::CorruptJournal { detail, .. }) => {
            assert!(detail.contains("run 2 → run 1 → run 2"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reading_opens_without_migrating_or_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite");
    assert!(
        Journal::open_read(&path).unwrap().is_none(),
        "no file: no journal"
    );
    assert!(!path.exists(), "reading creates nothing");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
    }
    let e = Journal::open_read(&path).unwrap_err();
    assert!(
        matches!(e, ApplyError::JournalNeedsMigration { found: 1, .. }),
        "{e}"
    );
    assert_eq!(version(&path), 1, "not migrated");
    Journal::open(&path).unwrap();
    let j = Journal::open_read(&path).unwrap().unwrap();
    assert!(j.runs(5).unwrap().is_empty());
    assert!(
        j.acquire_lease(Duration::from_secs(5)).is_err(),
        "read-only"
    );
}
