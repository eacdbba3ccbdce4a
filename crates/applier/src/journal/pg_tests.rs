//! The journal on a real PostgreSQL server (`rebalancer_testkit::pg`): the
//! same answers as the SQLite file. One server for all the checks, a new
//! database for each; skipped with a notice when PostgreSQL is not
//! installed (a failure when `REBALANCER_REQUIRE_POSTGRES` is set).

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::report::{CycleMode, CycleOutcome, PutState, RunKind};
use rebalancer_testkit::pg::{self as test_server, PgServer};

fn location(url: &str) -> JournalLocation {
    JournalLocation::Postgres(url.to_string().into())
}

/// A run of `j`, taking the lease first if `j` holds none.
fn new_run(j: &Journal, kind: RunKind, parent: Option<i64>) -> i64 {
    if j.token() == 0 {
        j.acquire_lease(Duration::from_secs(60)).unwrap();
    }
    j.start_run(NewRun {
        kind,
        parent,
        snapshot_hash: "s",
        config_digest: "c",
        plan_json: br#"{"not":"a plan"}"#,
        plan_hash: "h",
        holder: "h:1",
    })
    .unwrap()
}

const LEAD: LeadKey = LeadKey {
    campaign_id: 3,
    lead_id: 4,
};

fn applied() -> PutOutcome<'static> {
    PutOutcome {
        state: PutState::Applied,
        applied: Some(true),
        status: Some(200),
        echo: Some("{}"),
        message: None,
    }
}

#[test]
fn the_journal_on_postgresql() {
    let Some(server) = test_server::start() else {
        return;
    };
    migrates_once_when_opened_by_several_at_once(&server);
    migrates_a_version_1_database_keeping_its_puts(&server);
    runs_leads_and_puts_write_before_send(&server);
    one_lease_at_a_time_and_expired_ones_are_taken_over(&server);
    cycles_and_recent_puts(&server);
    a_failed_write_is_a_journal_error(&server);
    an_unreachable_server_names_the_key_and_hides_the_password(&server);
}

fn migrates_once_when_opened_by_several_at_once(server: &PgServer) {
    let url = server.database();
    let opened: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| Journal::open(location(&url))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for j in opened {
        let j = j.expect("every concurrent opening succeeds");
        assert!(j.runs(5).unwrap().is_empty());
    }
    // Re-opening an up-to-date journal is a no-op; existing opens too.
    let j = Journal::open(location(&url)).unwrap();
    let run = new_run(&j, RunKind::Apply, None);
    let again = Journal::open_existing(location(&url)).unwrap().unwrap();
    assert_eq!(again.runs(5).unwrap()[0].id, run);
}

fn runs_leads_and_puts_write_before_send(server: &PgServer) {
    let url = server.database();
    let j = Journal::open(location(&url)).unwrap();
    let other = Journal::open(location(&url)).unwrap();
    let run = new_run(&j, RunKind::Apply, None);
    assert_eq!(j.latest_unfinished().unwrap(), Some(run));
    let before: BTreeSet<String> = ["a".to_string()].into_iter().collect();
    j.set_lead(run, LEAD, LeadState::Pending, "", Some(&before))
        .unwrap();
    let body = &rebalancer_upstream::MappingUpdate {
        lead_id: 4,
        campaign_id: 3,
        assigned_user_ids: vec!["b".into()],
        unassigned_user_ids: vec![],
    }
    .to_body();
    let put = j.put_pending(run, LEAD, 1, body).unwrap();
    // Committed before the PUT is sent: another connection sees it pending.
    let seen = other.puts(&[run]).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].state, "pending");
    assert_eq!(seen[0].applied, None);
    j.put_done(put, applied()).unwrap();
    j.set_lead(run, LEAD, LeadState::Done, "ok", None).unwrap();
    j.count_run(run, 1, 0, 1).unwrap();
    j.end_run(run, RunOutcome::Completed, 1, 0, 1).unwrap();
    let puts = other.puts(&[run]).unwrap();
    assert_eq!(
        (puts[0].state.as_str(), puts[0].applied, puts[0].status),
        ("applied", Some(true), Some(200))
    );
    assert!(puts[0].done_at.is_some());
    let record = other.run(run).unwrap().unwrap();
    assert_eq!(record.outcome, RunOutcome::Completed);
    assert_eq!((record.puts_sent, record.moves_made), (1, 1));
    assert!(other.run(run + 100).unwrap().is_none());
    let leads = other.leads(run).unwrap();
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0].state, LeadState::Done);
    // The first `before` is kept; a resume joins the family.
    let resume = new_run(&j, RunKind::Resume, Some(run));
    j.set_lead(resume, LEAD, LeadState::Failed, "x", None)
        .unwrap();
    assert_eq!(j.family(resume).unwrap(), vec![run, resume]);
    let history = j.lead_history(&[run, resume]).unwrap();
    assert_eq!(history[&LEAD], (LeadState::Failed, Some(before)));
    let e = j.plan_of(run).unwrap_err();
    assert!(e.to_string().contains("does not parse"), "{e}");
    assert_eq!(j.runs(10).unwrap()[0].id, resume);
}

fn one_lease_at_a_time_and_expired_ones_are_taken_over(server: &PgServer) {
    let url = server.database();
    super::tests::lease_and_fencing(&|| Journal::open(location(&url)).unwrap());
    // On PostgreSQL no holder is ever "certainly gone" by a process check
    // of another host: a planted lease of an unknown instance holds.
    let a = Journal::open(location(&url)).unwrap();
    super::tests::plant_lease(&a, "elsewhere:1", "another-boot/pid:[1]/1/1", true);
    assert!(matches!(
        a.acquire_lease(Duration::from_secs(30)),
        Err(ApplyError::LeaseHeld { .. })
    ));
    a.db.execute(
        "UPDATE lease SET holder = '', expires_ms = 0 WHERE id = 1",
        &[],
    )
    .unwrap();
    // Many acquirers at once: exactly one wins.
    let won = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    let j = Journal::open(location(&url)).unwrap();
                    j.acquire_lease(Duration::from_secs(30)).is_ok()
                })
            })
            .collect();
        handles
            .into_iter()
            .filter(|_| true)
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count()
    });
    assert_eq!(
        won, 1,
        "exactly one of the concurrent acquirers holds the lease"
    );
}

fn cycles_and_recent_puts(server: &PgServer) {
    let url = server.database();
    let j = Journal::open(location(&url)).unwrap();
    assert!(j.cycles(5).unwrap().is_empty());
    let run = new_run(&j, RunKind::Apply, None);
    let cycle = CycleRecord {
        id: 0,
        started_at: now(),
        ended_at: now(),
        mode: CycleMode::Apply,
        outcome: CycleOutcome::Applied,
        run: Some(run),
        snapshot_hash: Some("s".into()),
        plan_hash: None,
        assigns: 2,
        unassigns: 1,
        deferred: 0,
        held_back: 3,
        shortfall_before: Some(1.5),
        shortfall_after: None,
        peak_before: Some(0.5),
        peak_after: Some(0.25),
        detail: "d".into(),
    };
    let first = j.record_cycle(&cycle, "h:1").unwrap();
    let second = j.record_cycle(&cycle, "h:2").unwrap();
    let got = j.cycles(5).unwrap();
    assert_eq!(
        got.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![second, first]
    );
    assert_eq!((got[0].assigns, got[0].held_back), (2, 3));
    assert_eq!(got[0].shortfall_before, Some(1.5));
    assert_eq!(got[0].run, Some(run));

    let body = &rebalancer_upstream::MappingUpdate {
        lead_id: 4,
        campaign_id: 3,
        assigned_user_ids: vec!["a".into()],
        unassigned_user_ids: vec!["b".into()],
    }
    .to_body();
    let t0 = unix_ms(time::OffsetDateTime::now_utc());
    let ok = j.put_pending(run, LEAD, 1, body).unwrap();
    j.put_done(ok, applied()).unwrap();
    let refused = j.put_pending(run, LEAD, 2, body).unwrap();
    j.put_done(
        refused,
        PutOutcome {
            state: PutState::Failed,
            applied: Some(false),
            status: Some(400),
            echo: None,
            message: Some("no"),
        },
    )
    .unwrap();
    j.put_pending(run, LEAD, 3, body).unwrap(); // pending: unknown
    let since = j.applied_since(t0).unwrap();
    assert_eq!(since, vec![(LEAD, body.to_string())]);
    assert!(j.applied_since(i64::MAX).unwrap().is_empty());
    let recent = crate::recent_moves(&location(&url), time::OffsetDateTime::UNIX_EPOCH).unwrap();
    assert_eq!(
        recent.agents,
        ["a", "b"].into_iter().map(String::from).collect()
    );
}

fn a_failed_write_is_a_journal_error(server: &PgServer) {
    let url = server.database();
    let j = Journal::open(location(&url)).unwrap();
    let run = new_run(&j, RunKind::Apply, None);
    // A read-only opening neither migrates nor writes.
    let reader = Journal::open_read(location(&url)).unwrap().unwrap();
    assert_eq!(reader.runs(5).unwrap()[0].id, run);
    let e = reader.acquire_lease(Duration::from_secs(5)).unwrap_err();
    assert!(e.to_string().contains("25006"), "{e}");
    let fresh = server.database();
    assert!(Journal::open_read(location(&fresh)).unwrap().is_none());
    j.break_for_test();
    let e = j.put_pending(run, LEAD, 1, "{}").unwrap_err();
    assert!(matches!(e, ApplyError::Journal { .. }), "{e}");
    assert!(e.to_string().contains("journal.url"), "{e}");
}

fn an_unreachable_server_names_the_key_and_hides_the_password(server: &PgServer) {
    // A port nothing listens on (the server's, plus one, is free enough).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://rebalancer:hunter2-secret@127.0.0.1:{port}/journal");
    let e = Journal::open(location(&url)).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ApplyError::Journal { .. }), "{text}");
    assert!(text.contains("journal.url"), "{text}");
    assert!(text.contains("rebalancer:****@127.0.0.1"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!format!("{e:?}").contains("hunter2"));
    // A database that does not exist: the same, no password.
    let e = Journal::open(location(&server.url("missing"))).unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(e.to_string().contains("missing"), "{e}");
}

fn migrates_a_version_1_database_keeping_its_puts(server: &PgServer) {
    let url = server.database();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(schema::PG_MIGRATIONS[0])
            .await
            .unwrap();
        client
            .batch_execute(
                "CREATE TABLE rebalancer_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
                 INSERT INTO rebalancer_schema VALUES (1, 1);
                 INSERT INTO runs (kind, plan_hash, snapshot_hash, config_digest, plan_json, started_at, outcome, holder)
                   VALUES ('apply', 'p', 's', 'c', '\\x7b7d', '2026-01-01T00:00:00Z', 'completed', 'h:1');
                 INSERT INTO puts (run, campaign_id, lead_id, seq, body, state, applied, sent_at, done_ms)
                   VALUES (1, 5, 6, 1, '{}', 'applied', true, '2026-01-01T00:00:00Z', 5),
                          (1, 5, 7, 1, '{}', 'failed', false, '2026-01-01T00:00:00Z', 6);
                 INSERT INTO lease VALUES (1, 'h:1', 'h', 1, 'x', 'old-token', 99999999999999);",
            )
            .await
            .unwrap();
    });
    // An older schema is not read as if it were current...
    let e = Journal::open_read(location(&url)).unwrap_err();
    assert!(
        matches!(e, ApplyError::JournalNeedsMigration { found: 1, .. }),
        "{e}"
    );
    // ...a writing opening migrates it, keeping what it holds.
    let j = Journal::open(location(&url)).unwrap();
    let puts = j.puts(&[1]).unwrap();
    assert_eq!(
        puts.iter().map(|p| p.applied).collect::<Vec<_>>(),
        [Some(true), Some(false)]
    );
    assert_eq!(j.applied_since(0).unwrap().len(), 1);
    // The version-1 lease (a text token) is gone: the lease is free.
    let lease = j.acquire_lease(Duration::from_secs(5)).unwrap();
    assert_eq!(lease.token(), 1);
}
