//! `rebalancer apply`, `resume`, `rollback`, `history` and `show` through
//! the binary, against an in-process sandbox over real HTTP, with a real
//! SQLite journal: a reviewed plan reaches its target; a plan for another
//! system, a stale plan or one made under other rules is refused before any
//! write; `kill -9` and SIGTERM mid-apply are finished by `resume` with
//! nothing applied twice; `rollback` restores the original mapping; two
//! applies on one journal cannot run at once; no secret reaches the journal
//! or the output.

mod common;

use common::world::{setup, wait_child, Setup};
use common::{config_toml, p, plan_world, run_async as run, s, start};
use rebalancer_testkit::pg;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewed_plan_reaches_its_target_and_a_second_apply_changes_nothing() {
    let t = setup().await;
    let (code, stdout, stderr) = run(
        t.apply_args(),
        vec![("REBALANCER_APPLY__PUTS_PER_SECOND".into(), "100".into())],
    )
    .await;
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert!(
        stdout.contains("PUTs sent") && stdout.contains("write rate"),
        "{stdout}"
    );
    assert_eq!(
        t.live(),
        t.target(),
        "the CMS does not hold the plan's target"
    );
    for w in t.sb.write_log() {
        assert!(
            !(w.assigned.is_empty() && w.unassigned.is_empty()),
            "an empty PUT: {w:?}"
        );
    }
    let puts = t.sb.write_log().len();
    // The same plan again: every lead is at its target, nothing is sent.
    let (code, _, stderr) = run(
        t.apply_args(),
        vec![("REBALANCER_APPLY__PUTS_PER_SECOND".into(), "100".into())],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(t.sb.write_log().len(), puts, "a second apply wrote again");
    let runs = t.history().await;
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    // `show` lists the first run's PUTs.
    let first = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .min()
        .unwrap();
    let (code, stdout, stderr) = run(
        s(&[
            "show",
            &first.to_string(),
            "--journal",
            &p(&t.journal),
            "--format",
            "json",
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let detail: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(detail["puts"].as_array().unwrap().len(), puts);
    // No secret in the journal or the output.
    let journal = std::fs::read(&t.journal).unwrap();
    let creds = t.sb.credentials();
    for secret in [
        &creds.cms_password,
        &creds.webex_api_key,
        &creds.zoho_refresh_token,
        &creds.zoho_client_secret,
    ] {
        assert!(
            !journal
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "a secret is in the journal"
        );
        assert!(!stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()));
    }
    t.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_for_another_system_or_stale_or_under_other_rules_is_refused_before_any_write() {
    let t = setup().await;
    // Another system: a second sandbox's config.
    let other = start(plan_world()).await;
    let other_cfg = t.dir.path().join("other.toml");
    std::fs::write(&other_cfg, config_toml(&other)).unwrap();
    let (code, _, stderr) = run(
        s(&[
            "apply",
            "--plan",
            &p(&t.plan_path),
            "--config",
            &p(&other_cfg),
            "--journal",
            &p(&t.journal),
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 15, "{stderr}");
    assert!(stderr.contains("was made for CMS"), "{stderr}");
    // Stale: the snapshot was fetched two days ago.
    let mut stale: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&t.plan_path).unwrap()).unwrap();
    stale["snapshot_fetched_at"] = "2020-01-01T00:00:00Z".into();
    let stale_path = t.dir.path().join("stale.json");
    std::fs::write(&stale_path, stale.to_string()).unwrap();
    let (code, _, stderr) = run(
        s(&[
            "apply",
            "--plan",
            &p(&stale_path),
            "--config",
            &p(&t.config),
            "--journal",
            &p(&t.journal),
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 15, "{stderr}");
    assert!(stderr.contains("apply.max_plan_age_secs"), "{stderr}");
    // Other rules: the config's [plan] differs from the plan's.
    let (code, _, stderr) = run(
        t.apply_args(),
        vec![("REBALANCER_PLAN__MIN_BALANCE_GAIN".into(), "0.5".into())],
    )
    .await;
    assert_eq!(code, 15, "{stderr}");
    assert!(stderr.contains("other [plan] rules"), "{stderr}");
    // Without --yes and without a terminal, apply --config refuses.
    let (code, _, stderr) = run(
        s(&[
            "apply",
            "--config",
            &p(&t.config),
            "--journal",
            &p(&t.journal),
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert!(
        t.sb.write_log().is_empty() && other.write_log().is_empty(),
        "a refused apply wrote"
    );
    other.shutdown().await;
    t.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_apply_then_resume_reaches_the_target_with_nothing_applied_twice() {
    let t = setup().await;
    let mut child = t.spawn_apply("4");
    t.wait_for_puts(3).await;
    child.kill().unwrap(); // SIGKILL: no chance to record anything more, or to release the lease
    let _ = wait_child(child).await;
    let before_resume = t.sb.write_log().len();
    assert!(
        before_resume < t.plan.leads.len(),
        "the apply finished before the kill"
    );
    let (code, stdout, stderr) = run(
        s(&[
            "resume",
            "--config",
            &p(&t.config),
            "--journal",
            &p(&t.journal),
        ]),
        vec![("REBALANCER_APPLY__PUTS_PER_SECOND".into(), "100".into())],
    )
    .await;
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert_eq!(t.live(), t.target());
    for (change, n) in t.effective_changes() {
        assert_eq!(n, 1, "{change:?} was applied {n} times");
    }
    let runs = t.history().await;
    let kinds: BTreeSet<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["apply".into(), "resume".into()]),
        "{runs}"
    );
    t.sb.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_apply_exits_11_and_resume_finishes() {
    let t = setup().await;
    let child = t.spawn_apply("4");
    t.wait_for_puts(3).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, stdout, stderr) = wait_child(child).await;
    assert_eq!(code, 11, "{stderr}\n{stdout}");
    // The printed hint is run exactly as printed (the words between its
    // backticks, split as a shell would).
    let hint = stdout
        .split_once("Stopped before the end: `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(cmd, _)| cmd.to_owned())
        .unwrap_or_else(|| panic!("no resume hint in:\n{stdout}"));
    let words = shlex::split(&hint).expect("the hint is valid shell words");
    assert_eq!(words[..2], ["rebalancer", "resume"], "{hint}");
    // `show` of the interrupted run names what it left and how to go on.
    let id = words[2].clone();
    let show = |id: &str| {
        s(&[
            "show",
            id,
            "--config",
            &p(&t.config),
            "--journal",
            &p(&t.journal),
        ])
    };
    let (code, shown, stderr) = run(show(&id), vec![]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        shown.contains("of the plan were not reached by this run"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("Not resumed yet: `{hint}`")),
        "{shown}"
    );
    let (code, _, stderr) = run(
        words[1..].to_vec(),
        vec![("REBALANCER_APPLY__PUTS_PER_SECOND".into(), "100".into())],
    )
    .await;
    assert_eq!(code, 0, "`{hint}`: {stderr}");
    let (_, shown, _) = run(show(&id), vec![]).await;
    assert!(shown.contains("Continued by run "), "{shown}");
    assert_eq!(t.live(), t.target());
    for (change, n) in t.effective_changes() {
        assert_eq!(n, 1, "{change:?} was applied {n} times");
    }
    t.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applies_on_one_journal_cannot_run_at_once() {
    let t = setup().await;
    let mut first = t.spawn_apply("2");
    t.wait_for_puts(1).await;
    let (code, _, stderr) = run(t.apply_args(), vec![]).await;
    assert_eq!(code, 12, "{stderr}");
    assert!(
        stderr.contains(&format!(":{}", first.id())),
        "the holder is named: {stderr}"
    );
    first.kill().unwrap();
    let _ = wait_child(first).await;
    t.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_original_mapping() {
    let t = setup().await;
    let fast = vec![(
        "REBALANCER_APPLY__PUTS_PER_SECOND".to_owned(),
        "100".to_owned(),
    )];
    let (code, _, stderr) = run(t.apply_args(), fast.clone()).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(t.live(), t.target());
    let runs = t.history().await;
    let id = runs[0]["id"].as_i64().unwrap();
    // Without a terminal to ask on, and without --yes: refused, nothing sent.
    let sent = t.sb.write_log().len();
    let ask = s(&[
        "rollback",
        &id.to_string(),
        "--config",
        &p(&t.config),
        "--journal",
        &p(&t.journal),
    ]);
    let (code, _, stderr) = run(ask, fast.clone()).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert_eq!(t.sb.write_log().len(), sent);
    let (code, stdout, stderr) = run(
        s(&[
            "rollback",
            &id.to_string(),
            "--yes",
            "--config",
            &p(&t.config),
            "--journal",
            &p(&t.journal),
        ]),
        fast,
    )
    .await;
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    // Agents the plan unassigned for being inactive or at their allowance
    // cannot come back (rollback never assigns them); everything else is
    // as it was.
    let barred: BTreeSet<String> = t
        .plan
        .changes
        .iter()
        .filter(|c| c.reason.is_safety())
        .map(|c| c.agent.0.to_string())
        .collect();
    let strip = |m: BTreeMap<String, BTreeSet<String>>| -> BTreeMap<String, BTreeSet<String>> {
        m.into_iter()
            .map(|(k, v)| (k, v.into_iter().filter(|a| !barred.contains(a)).collect()))
            .collect()
    };
    // A lead whose original agents are all barred keeps the agent the plan
    // gave it: a rollback never leaves a lead that has agents with none.
    let (live, original) = (t.live(), t.original());
    let (live_kept, original_kept) = (strip(live.clone()), strip(original.clone()));
    let mut restored = 0;
    for (lead, want) in &original_kept {
        if want.is_empty() && !original[lead].is_empty() {
            assert!(!live[lead].is_empty(), "{lead} was left with no agent");
        } else {
            assert_eq!(&live_kept[lead], want, "{lead} was not restored");
            restored += 1;
        }
    }
    assert!(restored > 30, "only {restored} leads compared");
    t.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_puts_end_the_run_with_code_13() {
    use rebalancer_sandbox::{FaultSpec, Faults};
    let t = setup().await;
    t.sb.set_faults(Faults {
        cms_put: FaultSpec {
            fail_first: 10_000,
            fail_status: 400,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let (code, stdout, stderr) = run(
        t.apply_args(),
        vec![("REBALANCER_APPLY__PUTS_PER_SECOND".into(), "100".into())],
    )
    .await;
    assert_eq!(code, 13, "{stderr}\n{stdout}");
    assert_eq!(t.live(), t.original(), "a refused PUT changed something");
    t.sb.shutdown().await;
}

/// Sends `signal` (`STOP`, `CONT`) to `pid`.
#[cfg(unix)]
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Stops `pid` once it has sent at least three PUTs, at a moment it holds
/// no lock on the SQLite journal `sqlite` (when given). SQLite's locks
/// belong to the process: one stopped inside a journal write (the commit
/// after a PUT, a renewal) keeps the file locked until it continues, and no
/// one can take over. The race under test is a pause in the rate limiter's
/// wait, so a pause that lands inside a write is undone and tried again at
/// the next PUT. A PostgreSQL journal has no such window: each statement
/// commits on the server, whatever the client does next.
#[cfg(unix)]
async fn pause_outside_journal_writes(t: &Setup, pid: u32, sqlite: Option<&Path>) {
    let mut puts = 3;
    loop {
        t.wait_for_puts(puts).await;
        signal(pid, "STOP");
        let Some(path) = sqlite else { return };
        if journal_unlocked(path) {
            return;
        }
        signal(pid, "CONT");
        puts = t.sb.write_log().len() + 1;
    }
}

/// Whether another process holds a lock on the SQLite journal at `path`
/// that would stop a reader or a writer now (no waiting).
#[cfg(unix)]
fn journal_unlocked(path: &Path) -> bool {
    let conn = rusqlite::Connection::open(path).expect("the journal opens");
    conn.busy_timeout(Duration::ZERO).unwrap();
    let probe = conn.execute_batch("BEGIN IMMEDIATE; SELECT token FROM lease; ROLLBACK;");
    probe.is_ok()
}

/// The pause/takeover race (issue #1): `apply` with a 2 s lease is paused
/// (SIGSTOP) mid-run past its lease; `resume` takes the journal over and
/// finishes; the paused process, continued, must exit 12 without sending
/// anything more. The CMS sees every change exactly once. `journal` selects
/// the journal (the `--journal` flag, or the environment for PostgreSQL);
/// `sqlite` is its file when it is SQLite.
#[cfg(unix)]
async fn a_paused_holder_sends_nothing_after_a_takeover(
    t: &Setup,
    journal_args: &[String],
    sqlite: Option<&Path>,
    env: Vec<(String, String)>,
) {
    let mut args = s(&[
        "apply",
        "--plan",
        &p(&t.plan_path),
        "--config",
        &p(&t.config),
    ]);
    args.extend(journal_args.iter().cloned());
    let child = Command::new(env!("CARGO_BIN_EXE_rebalancer"))
        .args(&args)
        .envs(env.iter().cloned())
        .env("REBALANCER_APPLY__PUTS_PER_SECOND", "3")
        .env("REBALANCER_APPLY__BURST", "1")
        .env("REBALANCER_APPLY__LEASE_SECS", "2")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    pause_outside_journal_writes(t, child.id(), sqlite).await;
    let paused_at = t.sb.write_log().len();
    assert!(
        paused_at < t.plan.changes.len(),
        "the apply finished before the pause"
    );
    // `resume` is refused while the lease is unexpired (by the journal's
    // clock), then takes it over and finishes the run.
    let mut resume = s(&["resume", "--config", &p(&t.config)]);
    resume.extend(journal_args.iter().cloned());
    let mut env_fast = env.clone();
    env_fast.push(("REBALANCER_APPLY__PUTS_PER_SECOND".into(), "100".into()));
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    let (code, stdout, stderr) = loop {
        let (code, stdout, stderr) = run(resume.clone(), env_fast.clone()).await;
        if code != 12 || std::time::Instant::now() > give_up {
            break (code, stdout, stderr);
        }
        assert!(stderr.contains("lease held by"), "{stderr}");
    };
    assert_eq!(code, 0, "resume: {stderr}\n{stdout}");
    assert_eq!(t.live(), t.target(), "resume reached the target");
    let after_resume = t.sb.write_log().len();
    // The paused holder wakes up with a stale lease.
    signal(child.id(), "CONT");
    let (code, stdout, stderr) = wait_child(child).await;
    assert_eq!(code, 12, "the stale holder exits 12: {stderr}\n{stdout}");
    assert!(stderr.contains("lease was lost to"), "{stderr}");
    assert_eq!(
        t.sb.write_log().len(),
        after_resume,
        "the stale holder sent PUTs after the takeover"
    );
    assert_eq!(t.live(), t.target());
    let changes = t.effective_changes();
    for (change, n) in &changes {
        assert_eq!(*n, 1, "{change:?} was applied {n} times");
    }
    eprintln!(
        "pause/takeover: {} PUTs for {} changes ({} before the pause)",
        t.sb.write_log().len(),
        changes.len(),
        paused_at
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_holder_sends_nothing_after_a_takeover_on_sqlite() {
    let t = setup().await;
    a_paused_holder_sends_nothing_after_a_takeover(
        &t,
        &s(&["--journal", &p(&t.journal)]),
        Some(&t.journal),
        vec![],
    )
    .await;
    t.sb.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_holder_sends_nothing_after_a_takeover_on_postgresql() {
    let Some(server) = pg::start() else {
        return;
    };
    let t = setup().await;
    let env = vec![("REBALANCER_JOURNAL__URL".to_string(), server.database())];
    a_paused_holder_sends_nothing_after_a_takeover(&t, &[], None, env).await;
    t.sb.shutdown().await;
}

/// `faketime`, where installed; CI installs it and sets
/// `REBALANCER_REQUIRE_FAKETIME`, which makes its absence a failure.
fn faketime() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("faketime"))
            .find(|f| f.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("REBALANCER_REQUIRE_FAKETIME").is_none(),
            "REBALANCER_REQUIRE_FAKETIME is set but faketime is not installed (apt-get install faketime)"
        );
        eprintln!("SKIPPED: faketime is not installed (Debian: apt-get install faketime); the clock-skew test did not run");
    }
    found
}

/// Two replicas on one PostgreSQL journal, one host's clock 40 s ahead
/// (issue #2): the journal's clock decides, so the replica from the future
/// does not take over a lease its holder is renewing.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_clock_40_s_ahead_does_not_take_over_a_live_lease() {
    let Some(faketime) = faketime() else {
        return;
    };
    let Some(server) = pg::start() else {
        return;
    };
    let t = setup().await;
    let url = server.database();
    let holder = Command::new(env!("CARGO_BIN_EXE_rebalancer"))
        .args(s(&[
            "apply",
            "--plan",
            &p(&t.plan_path),
            "--config",
            &p(&t.config),
        ]))
        .env("REBALANCER_JOURNAL__URL", &url)
        .env("REBALANCER_APPLY__PUTS_PER_SECOND", "2")
        .env("REBALANCER_APPLY__BURST", "1")
        .env("REBALANCER_APPLY__LEASE_SECS", "30")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    t.wait_for_puts(1).await;
    let skewed = Command::new(&faketime)
        .args(["-f", "+40s", env!("CARGO_BIN_EXE_rebalancer")])
        .args(s(&["resume", "--config", &p(&t.config)]))
        .env("REBALANCER_JOURNAL__URL", &url)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&skewed.stderr);
    assert_eq!(
        skewed.status.code(),
        Some(12),
        "the replica 40 s ahead must find the lease held: {stderr}"
    );
    assert!(
        stderr.contains(&format!(":{}", holder.id())),
        "the holder is named: {stderr}"
    );
    let (code, stdout, stderr) = wait_child(holder).await;
    assert_eq!(
        code, 0,
        "the holder finishes undisturbed: {stderr}\n{stdout}"
    );
    assert_eq!(t.live(), t.target());
    for (change, n) in t.effective_changes() {
        assert_eq!(n, 1, "{change:?} was applied {n} times");
    }
    t.sb.shutdown().await;
}
