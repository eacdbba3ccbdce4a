//! Two `run` replicas (two `cycle::run` loops, each with its own
//! `Session`) and the review console on one PostgreSQL journal and one
//! sandbox, the replicas under `run.approval = "always"` with a 20 ms
//! `run.approval_poll` on an hourly schedule: the console lists the
//! proposed plan, a person approves it through the console's API
//! (`POST /api/plans/{id}/approve`), and it is applied exactly once. Both
//! loops wake on the approval by polling, so they race for it: exactly one
//! cycle applies it (its run is the proposal's `applied` run, the only run
//! in the journal), every planned change reaches the sandbox exactly once
//! (on its write log), nothing is written before the approval, and the
//! other replica writes nothing: it skips (the lease is held, or the
//! proposal is already applied) or never sees the plan approved; and a
//! cycle of each replica afterwards applies nothing more. The runs, not
//! the write log, are what show a second apply of the same proposal: it
//! would find every lead at its target and send nothing. Several rounds,
//! each on a fresh journal database and sandbox, exercise the race.
//! Skipped with a notice without PostgreSQL, a failure when
//! `REBALANCER_REQUIRE_POSTGRES` is set.

use rebalancer_applier::proposals::{self, ProposalState};
use rebalancer_applier::{CycleOutcome, JournalLocation};
use rebalancer_console::{new_token, token_digest_hex, Console};
use rebalancer_model::{Action, LeadKey};
use rebalancer_ops::approval::Approval;
use rebalancer_ops::connect::{sandbox_config_toml, Source};
use rebalancer_ops::console::{ConsoleSettings, ConsoleUser, Role};
use rebalancer_ops::cycle::{self, CycleOptions, Ended, Flow, Observer};
use rebalancer_ops::schedule::Schedule;
use rebalancer_ops::session::{self, Session};
use rebalancer_ops::settings::Env;
use rebalancer_sandbox::{FaultSpec, Faults};
use rebalancer_testkit::{pg, plans, sandbox, writes};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How many times the race is run, each on a fresh database and sandbox.
const ROUNDS: u64 = 5;
/// Each round's CMS GET latency: the time from a replica waking to its
/// claim (it reads every changed lead first, the blast radius) spans from
/// well under one 20 ms poll to several, so the other replica's poll lands
/// before the claim (it contends for the lease) or after it (it never sees
/// the plan approved) in different rounds.
const GET_LATENCY_MS: [u64; ROUNDS as usize] = [0, 5, 10, 20, 40];
/// The bound on any one awaited event (a failure, never an ordering).
const BOUND: Duration = Duration::from_secs(60);
/// After the apply, how long the other replica has to end its loop by
/// itself (a skipped cycle) before it is stopped: 50 of its polls, so a
/// replica that would apply the plan a second time gets to.
const GRACE: Duration = Duration::from_secs(1);

fn opts() -> CycleOptions {
    CycleOptions {
        approval: Approval::Always,
        approval_poll: Duration::from_millis(20),
        ..CycleOptions::default()
    }
}

/// A config file for `sb` with the journal at `url` and fast writes.
fn config_file(dir: &Path, sb: &rebalancer_sandbox::Sandbox, url: &str) -> PathBuf {
    let mut text = sandbox_config_toml(sb).expect("the sandbox's config");
    text.push_str(&format!(
        "\n[apply]\nputs_per_second = 500\nburst = 50\n\n[journal]\nurl = \"{url}\"\n"
    ));
    let path = dir.join("replica.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The PostgreSQL URL of a journal.
fn url_of(journal: &JournalLocation) -> Option<&str> {
    use secrecy::ExposeSecret;
    match journal {
        JournalLocation::Postgres(url) => Some(url.expose_secret()),
        JournalLocation::Sqlite(_) => None,
    }
}

/// One replica's write session, from the config file as `run --config`.
async fn replica(config: &Path) -> Session {
    let source = Source::Live {
        config: config.to_path_buf(),
    };
    session::session(&source, &Env::default(), None, false)
        .await
        .expect("a write session on the sandbox")
}

/// For the one cycle run outside the loops.
struct Quiet;

impl Observer for Quiet {
    fn cycle_ended(&mut self, _ended: Ended) -> Flow {
        Flow::Continue
    }
}

/// A cycle as a replica's observer saw it.
#[derive(Debug, Clone)]
struct Seen {
    replica: char,
    outcome: CycleOutcome,
    run: Option<i64>,
    detail: String,
    error: Option<String>,
    recorded: bool,
}

impl Seen {
    fn of(replica: char, cycle: &cycle::Cycle, recorded: bool) -> Seen {
        Seen {
            replica,
            outcome: cycle.record.outcome,
            run: cycle.record.run,
            detail: cycle.record.detail.clone(),
            error: cycle.error.as_ref().map(|e| cycle::chain_text(e)),
            recorded,
        }
    }
}

/// Sends each cycle to the test; stops its loop after a cycle that made
/// a run or was skipped.
struct Replica {
    name: char,
    tx: mpsc::UnboundedSender<Seen>,
}

impl Observer for Replica {
    fn cycle_ended(&mut self, ended: Ended) -> Flow {
        let seen = Seen::of(self.name, &ended.cycle, ended.recorded.is_ok());
        let done = seen.run.is_some() || seen.outcome == CycleOutcome::Skipped;
        let _ = self.tx.send(seen);
        if done {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

/// Replica `name`'s loop on an hourly schedule, in its own task; the
/// session back when the loop ends.
fn start_loop(
    session: Session,
    name: char,
    tx: mpsc::UnboundedSender<Seen>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Session> {
    tokio::spawn(async move {
        let hourly = Schedule::every("test", "1h").unwrap();
        let mut observer = Replica { name, tx };
        cycle::run(&session, Some(&hourly), false, opts(), &stop, &mut observer)
            .await
            .expect("the loop runs");
        session
    })
}

/// The next cycle either loop reports.
async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(BOUND, rx.recv())
        .await
        .expect("a replica's cycle within the bound")
        .expect("a loop ended before its cycle was seen")
}

/// Every cycle reported until both loops have ended.
async fn drain(rx: &mut mpsc::UnboundedReceiver<Seen>, seen: &mut Vec<Seen>) {
    while let Some(s) = rx.recv().await {
        seen.push(s);
    }
}

/// Each planned change as the write log's effective changes name it.
fn planned_changes(plan: &rebalancer_model::Plan) -> BTreeMap<(LeadKey, String, bool), usize> {
    plan.changes
        .iter()
        .map(|c| ((c.lead, c.agent.to_string(), c.action == Action::Assign), 1))
        .collect()
}

/// `rebalancer console` on `journal` with one approver: its base URL, its
/// stop token and the approver's token.
async fn console_on(journal: &JournalLocation) -> (String, CancellationToken, String) {
    let token = new_token();
    let digest = hex::decode(token_digest_hex(&token)).unwrap();
    let settings = ConsoleSettings {
        addr: "127.0.0.1:0".parse().unwrap(),
        users: vec![ConsoleUser {
            name: "ana".into(),
            role: Role::Approver,
            token_sha256: digest.try_into().unwrap(),
        }],
        session_ttl: Duration::from_secs(3600),
        trust_forwarded_proto: false,
    };
    let listener = rebalancer_console::bind(settings.addr).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let console = Console {
        settings,
        journal: journal.clone(),
        schedule: None,
    };
    tokio::spawn(rebalancer_console::serve(listener, console, stop.clone()));
    (base, stop, token)
}

/// The console's plans in `state` (`GET /api/plans?state=`).
async fn plans_in(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    state: &str,
) -> Vec<serde_json::Value> {
    http.get(format!("{base}/api/plans?state={state}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// One race: a proposal, both loops waiting, the approval; returns which
/// replica applied it and what the other did.
async fn round(server: &pg::PgServer, n: u64) -> (char, String) {
    let url = server.database();
    let sb = sandbox::start(11 + n, 24, 16).await;
    let latency = Duration::from_millis(GET_LATENCY_MS[n as usize]);
    sb.set_faults(Faults {
        cms_get: FaultSpec {
            latency,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let original = sandbox::state(&sb);
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &sb, &url);
    let (a, b) = (replica(&config).await, replica(&config).await);
    let journal: JournalLocation = a.journal.clone();
    assert_eq!(
        (url_of(&journal), url_of(&b.journal)),
        (Some(url.as_str()), Some(url.as_str())),
        "both replicas journal to the PostgreSQL database"
    );

    // The console, on the same PostgreSQL journal.
    let (base, console_stop, token) = console_on(&journal).await;
    let http = reqwest::Client::new();

    // 1. Replica A's cycle proposes the plan and writes nothing.
    let first = cycle::cycle(&a, opts(), &CancellationToken::new(), &mut Quiet).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_eq!(
        first.record.outcome,
        CycleOutcome::AwaitingApproval,
        "{}",
        first.record.detail
    );
    assert!(sb.write_log().is_empty(), "nothing is sent before approval");
    let pending = plans_in(&http, &base, &token, "pending").await;
    assert_eq!(
        pending.len(),
        1,
        "the console lists the pending plan: {pending:?}"
    );
    let id = pending[0]["id"].as_i64().expect("a plan id");
    let plan = proposals::plan_of(&journal, id).unwrap();
    assert!(
        !plan.changes.is_empty(),
        "round {n}: the world needs changes"
    );

    // 2. Both loops, hourly. An interval schedule's first cycle starts at
    // once: each finds the same changes still waiting; after it, only the
    // approval poll can wake a loop within the hour.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let loop_a = start_loop(a, 'A', tx.clone(), stop_a.clone());
    let loop_b = start_loop(b, 'B', tx, stop_b.clone());
    let mut seen = Vec::new();
    for _ in 0..2 {
        let s = next(&mut rx).await;
        assert_eq!(s.outcome, CycleOutcome::AwaitingApproval, "{s:?}");
        assert!(s.detail.contains("still waits"), "{s:?}");
        seen.push(s);
    }
    assert!(
        seen.iter().any(|s| s.replica == 'A') && seen.iter().any(|s| s.replica == 'B'),
        "each loop's first cycle: {seen:?}"
    );
    let waited = seen.len();

    // 5. Nothing was written before the approval.
    assert!(
        sb.write_log().is_empty(),
        "a PUT before the approval: {:?}",
        sb.write_log()
    );

    // 3. A person approves it in the console.
    let r = http
        .post(format!("{base}/api/plans/{id}/approve"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "comment": "ok" }))
        .send()
        .await
        .unwrap();
    let approved_at = Instant::now();
    assert_eq!(r.status(), reqwest::StatusCode::OK, "{:?}", r.text().await);

    // 4. Both loops wake within their poll; one applies.
    let winner = loop {
        let s = next(&mut rx).await;
        let ran = s.run.is_some();
        let replica = s.replica;
        seen.push(s);
        if ran {
            break replica;
        }
    };
    let took = approved_at.elapsed();
    // The winner's loop has stopped; the other gets GRACE to end by itself
    // (a skipped cycle). One that never saw the plan approved keeps
    // waiting for its hourly cycle, and is stopped.
    if tokio::time::timeout(GRACE, drain(&mut rx, &mut seen))
        .await
        .is_err()
    {
        stop_a.cancel();
        stop_b.cancel();
        tokio::time::timeout(BOUND, drain(&mut rx, &mut seen))
            .await
            .expect("the stop token ends the waiting loop");
    }
    let mut sessions = Vec::new();
    for l in [loop_a, loop_b] {
        sessions.push(
            tokio::time::timeout(BOUND, l)
                .await
                .expect("the loop ends")
                .expect("the loop's task"),
        );
    }
    // Afterwards a cycle of each replica applies nothing more: the
    // approved plan was applied once, for good.
    let mut after = Vec::new();
    for (name, s) in ['A', 'B'].into_iter().zip(&sessions) {
        let c = cycle::cycle(s, opts(), &CancellationToken::new(), &mut Quiet).await;
        after.push(Seen::of(name, &c, true));
    }

    // Every cycle recorded, none failed.
    for s in seen.iter().chain(&after) {
        assert!(s.error.is_none() && s.recorded, "{s:?}");
        assert_ne!(s.outcome, CycleOutcome::Failed, "{s:?}");
    }
    // Every planned change was PUT exactly once, and nothing else.
    let log = sb.write_log();
    writes::check_write_log(&sb, &original);
    assert_eq!(
        writes::effective_changes(&log, &original),
        planned_changes(&plan),
        "the write log against the approved plan"
    );
    let live = sandbox::state(&sb);
    for (lead, target) in plans::targets(&plan) {
        assert_eq!(live[&lead], target, "lead {lead:?}");
    }
    // Exactly one cycle, across both replicas and the cycles after, made
    // a run: it applied.
    let runs: Vec<&Seen> = seen
        .iter()
        .chain(&after)
        .filter(|s| s.run.is_some())
        .collect();
    assert_eq!(
        runs.len(),
        1,
        "one apply across both replicas: {seen:#?} then {after:#?}"
    );
    let applied = runs[0];
    assert_eq!(applied.outcome, CycleOutcome::Applied, "{applied:?}");
    assert!(
        applied
            .detail
            .contains(&format!("approved proposal {id} (by ana)")),
        "{applied:?}"
    );
    // The proposal is applied by that run, the journal's only run.
    let p = proposals::get(&journal, id).unwrap();
    assert_eq!(
        (p.state, p.run),
        (ProposalState::Applied, applied.run),
        "{p:?}"
    );
    let history = rebalancer_applier::history(&journal, 10).unwrap();
    assert_eq!(history.len(), 1, "{history:#?}");
    assert_eq!(Some(history[0].id), applied.run);
    assert!(proposals::approved(&journal).unwrap().is_none());
    // The other replica wrote nothing: it skipped, or saw no approved plan
    // (planned afresh, or kept waiting).
    let skipped_because = [
        "another apply holds the journal".to_string(),
        format!("proposal {id} is applied (another replica took it)"),
    ];
    let mut other = Vec::new();
    for s in seen[waited..].iter().filter(|s| s.replica != winner) {
        match s.outcome {
            CycleOutcome::Skipped => assert!(
                skipped_because.iter().any(|why| s.detail.contains(why)),
                "{s:?}"
            ),
            CycleOutcome::AwaitingApproval | CycleOutcome::NoChanges => {}
            _ => panic!("the other replica's cycle: {s:?}"),
        }
        other.push(format!("{:?}: {}", s.outcome, s.detail));
    }
    for s in &after {
        assert!(
            matches!(
                s.outcome,
                CycleOutcome::NoChanges | CycleOutcome::AwaitingApproval
            ),
            "a cycle after the apply: {s:?}"
        );
    }
    let other = if other.is_empty() {
        "kept waiting (never saw the plan approved)".to_string()
    } else {
        other.join("; ")
    };
    eprintln!(
        "round {n} (GET latency {latency:?}): replica {winner} applied proposal {id} {took:?} after the approval ({} PUTs); the other: {other}",
        log.len()
    );
    // The console shows it applied, by that run.
    let applied_list = plans_in(&http, &base, &token, "applied").await;
    assert!(
        applied_list
            .iter()
            .any(|p| p["id"] == id && p["run"].as_i64() == applied.run),
        "{applied_list:?}"
    );
    console_stop.cancel();
    sb.shutdown().await;
    (winner, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_polling_one_postgresql_journal_exactly_one_applies_an_approved_plan() {
    let Some(server) = pg::start() else {
        return;
    };
    let mut outcomes = Vec::new();
    for n in 0..ROUNDS {
        outcomes.push(round(&server, n).await);
    }
    assert_eq!(outcomes.len() as u64, ROUNDS);
}
