//! `rebalancer run` through the binary against an in-process sandbox: the
//! loop reacts to upstream changes on its next cycle (an agent goes
//! inactive, a backlog fills up) while the flap guard holds back moves of
//! agents it just moved; two loops on one journal never apply in the same
//! cycle, also on a PostgreSQL journal (a throwaway server; skipped with a
//! notice when PostgreSQL is not installed); bad schedules, an unwritable
//! journal and an unreachable PostgreSQL URL fail at start-up naming the
//! key (never printing the URL's password).

mod common;

use common::{config_toml, http_get, p, plan_world, run_async as run, s, start};
use rebalancer_sandbox::Sandbox;
use rebalancer_testkit::pg;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

async fn setup() -> (Sandbox, tempfile::TempDir, PathBuf, PathBuf) {
    let sb = start(plan_world()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_toml(&sb)).unwrap();
    let journal = dir.path().join("j.sqlite");
    (sb, dir, config, journal)
}

/// `run` in the background, its JSON cycle lines arriving on a channel.
struct Loop {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Loop {
    fn start(config: &Path, journal: &Path, extra: &[&str], env: &[(&str, &str)]) -> Loop {
        Loop::start_with(config, &["--journal", &p(journal)], extra, env)
    }

    /// With `journal` arguments of its own (none: from the config/env).
    fn start_with(config: &Path, journal: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Loop {
        Loop::spawn(config, journal, extra, env, Stdio::null())
    }

    /// As `start_with`, its log (stderr) going to `stderr`.
    fn spawn(
        config: &Path,
        journal: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Loop {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rebalancer"));
        cmd.args(["run", "--config", &p(config), "--format", "json"])
            .args(journal)
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the binary starts");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line).expect("a JSON cycle line");
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Loop { child, lines }
    }

    /// The next cycle's record (waits up to a minute).
    fn next(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a cycle within a minute")
    }

    fn stop(mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        status.code().unwrap_or(-1)
    }
}

/// A test that fails mid-way leaves no loop running.
impl Drop for Loop {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// When a cycle line says its cycle started.
fn started_at(cycle: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = cycle["started_at"]
        .as_str()
        .expect("a cycle has started_at");
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("started_at {text:?}: {e}"))
        .to_utc()
}

/// The runs of `history --format json` output, checked never to overlap
/// in time (timestamps compared as times, not text); there must be at
/// least `at_least` of them, so the check compares something.
fn assert_runs_never_overlap(history_json: &str, at_least: usize) {
    let runs: Vec<Value> = serde_json::from_str(history_json).unwrap();
    assert!(
        runs.len() >= at_least,
        "{} runs, the test needs {at_least}: {history_json}",
        runs.len()
    );
    let time = |v: &Value| {
        let text = v
            .as_str()
            .expect("every run has ended (the loops were stopped)");
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .to_utc()
    };
    let mut spans: Vec<_> = runs
        .iter()
        .map(|r| (time(&r["started_at"]), time(&r["ended_at"])))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "two runs overlap: {w:?}");
    }
}

/// Waits until one of the loops reports an applied cycle.
fn next_applied(loops: &[&Loop]) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        for l in loops {
            if let Ok(c) = l.lines.recv_timeout(Duration::from_millis(50)) {
                if c["outcome"] == "applied" {
                    return c;
                }
            }
        }
    }
    panic!("no loop applied anything within two minutes");
}

/// Every lead an agent is assigned to in the sandbox.
fn leads_of(sb: &Sandbox, agent: &str) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for c in sb.world().campaigns {
        for &l in &c.lead_ids {
            let (assigned, _) = sb.mapping(c.campaign_id, l).unwrap();
            if assigned.iter().any(|a| a == agent) {
                out.push((c.campaign_id, l));
            }
        }
    }
    out
}

/// An agent assigned somewhere that is active with headroom.
fn an_assigned_agent(sb: &Sandbox, not: &[&str]) -> String {
    sb.world_users()
        .into_iter()
        .filter(|u| u.active && u.in_zoho && u.headroom > 0)
        .map(|u| u.username)
        .find(|u| !not.contains(&u.as_str()) && !leads_of(sb, u).is_empty())
        .expect("an assigned eligible agent")
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_reacts_to_upstream_changes_on_its_next_cycle() {
    let (sb, _dir, config, journal) = setup().await;
    let fast = [("REBALANCER_APPLY__PUTS_PER_SECOND", "200")];
    let l = Loop::start(&config, &journal, &["--every", "1s"], &fast);
    let first = l.next();
    assert_eq!(first["outcome"], "applied", "{first}");
    assert_eq!(first["mode"], "apply");
    // The world changes under the loop: an agent goes inactive, another's
    // backlog fills up to its allowance.
    let gone = an_assigned_agent(&sb, &[]);
    let full = an_assigned_agent(&sb, &[gone.as_str()]);
    sb.set_webex_active(&gone, false).unwrap();
    sb.set_zoho_counts(&full, 1_000_000).unwrap();
    // Cycles that started before this instant may have fetched the world
    // as it was; the first one that started after it must react.
    let changed_at = chrono::Utc::now();
    let mut seen = Vec::new();
    loop {
        let c = l.next();
        let after = started_at(&c) > changed_at;
        seen.push(c);
        if after {
            break;
        }
    }
    assert!(
        leads_of(&sb, &gone).is_empty() && leads_of(&sb, &full).is_empty(),
        "the first cycle that started after the change left the inactive or the full agent assigned: {seen:#?}"
    );
    let reacted = seen.iter().rev().find(|c| c["outcome"] == "applied");
    assert!(
        reacted.is_some(),
        "safety moves are applied even right after a cycle moved things: {seen:#?}"
    );
    let code = l.stop();
    assert_eq!(code, 0, "a loop stopped between cycles ends cleanly");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flap_guard_holds_back_moves_of_agents_just_moved() {
    let (sb, _dir, config, journal) = setup().await;
    let once = |extra: Vec<&'static str>, env: Vec<(String, String)>| {
        let mut args = s(&[
            "run",
            "--once",
            "--config",
            &p(&config),
            "--journal",
            &p(&journal),
            "--format",
            "json",
        ]);
        args.extend(extra.into_iter().map(String::from));
        run(args, env)
    };
    let fast = vec![(
        "REBALANCER_APPLY__PUTS_PER_SECOND".to_owned(),
        "200".to_owned(),
    )];
    let (code, stdout, stderr) = once(vec![], fast.clone()).await;
    assert_eq!(code, 0, "{stderr}");
    let first: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(first["outcome"], "applied", "{first}");
    let hash = first["snapshot_hash"].as_str().unwrap_or_default();
    assert!(
        hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "the cycle records its snapshot's hash: {first}"
    );
    // Knock out several agents: the leads they leave need new agents, and
    // the agents the first cycle just moved are the guard's business.
    let mut gone: Vec<String> = Vec::new();
    for _ in 0..6 {
        let refs: Vec<&str> = gone.iter().map(String::as_str).collect();
        let a = an_assigned_agent(&sb, &refs);
        sb.set_webex_active(&a, false).unwrap();
        gone.push(a);
    }
    let dry = |interval: &str| {
        let mut env = fast.clone();
        env.push(("REBALANCER_RUN__MIN_MOVE_INTERVAL".into(), interval.into()));
        once(vec!["--dry-run"], env)
    };
    let (code, guarded, stderr) = dry("1h").await;
    assert_eq!(code, 0, "{stderr}");
    let (code, free, stderr) = dry("0s").await;
    assert_eq!(code, 0, "{stderr}");
    let (guarded, free): (Value, Value) = (
        serde_json::from_str(guarded.trim()).unwrap(),
        serde_json::from_str(free.trim()).unwrap(),
    );
    assert_eq!(guarded["outcome"], "planned");
    assert_eq!(free["held_back"], 0, "{free}");
    let held = guarded["held_back"].as_u64().unwrap();
    assert!(held > 0, "nothing was held back: {guarded}");
    // Safety unassigns are never held back: the guarded plan unassigns at
    // least every lead of the agents that went inactive.
    let unassigns_needed: usize = gone.iter().map(|a| leads_of(&sb, a).len()).sum();
    assert!(guarded["unassigns"].as_u64().unwrap() as usize >= unassigns_needed);
    assert_eq!(
        guarded["assigns"].as_u64().unwrap() + held,
        free["assigns"].as_u64().unwrap(),
        "every held-back move is an assign the unguarded plan makes: {guarded} vs {free}"
    );
    sb.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_loops_on_one_journal_never_apply_in_the_same_cycle() {
    let (sb, _dir, config, journal) = setup().await;
    let slow = [("REBALANCER_APPLY__PUTS_PER_SECOND", "10")];
    let a = Loop::start(&config, &journal, &["--every", "1s"], &slow);
    let b = Loop::start(&config, &journal, &["--every", "1s"], &slow);
    let (first_a, first_b) = (a.next(), b.next());
    let outcomes = [first_a["outcome"].clone(), first_b["outcome"].clone()];
    assert!(
        outcomes.contains(&Value::from("applied")) && outcomes.contains(&Value::from("skipped")),
        "one applies, the other skips its cycle: {first_a} / {first_b}"
    );
    // The world changes: a second run is needed, by whichever loop.
    sb.set_webex_active(&an_assigned_agent(&sb, &[]), false)
        .unwrap();
    next_applied(&[&a, &b]);
    let _ = (a.stop(), b.stop());
    // The journal's runs never overlap in time.
    let (code, stdout, stderr) = run(
        s(&["history", "--journal", &p(&journal), "--format", "json"]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_runs_never_overlap(&stdout, 2);
    sb.shutdown().await;
}

/// (arguments, environment, the key the error must name).
type StartCase = (Vec<String>, Vec<(String, String)>, &'static str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_and_an_unwritable_journal_fail_at_start_up() {
    let (sb, dir, config, journal) = setup().await;
    let base = |extra: &[&str]| {
        let mut a = s(&["run", "--config", &p(&config), "--journal", &p(&journal)]);
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let cases: Vec<StartCase> = vec![
        (base(&["--every", "soon"]), vec![], "--every"),
        (
            base(&[]),
            vec![("REBALANCER_RUN__CRON".into(), "61 * * * *".into())],
            "run.cron",
        ),
        (
            base(&[]),
            vec![
                ("REBALANCER_RUN__CRON".into(), "0 9 * * *".into()),
                ("REBALANCER_RUN__TIMEZONE".into(), "Mars/Olympus".into()),
            ],
            "run.timezone",
        ),
        (base(&[]), vec![], "run.every"),
        (
            base(&["--once"]),
            vec![("REBALANCER_RUN__MIN_MOVE_INTERVAL".into(), "a while".into())],
            "run.min_move_interval",
        ),
    ];
    for (args, env, key) in cases {
        let (code, _, stderr) = run(args, env).await;
        assert_eq!(code, 3, "{key}: {stderr}");
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
    let unwritable = dir.path().join("no/such/dir/j.sqlite");
    let (code, _, stderr) = run(
        s(&[
            "run",
            "--once",
            "--config",
            &p(&config),
            "--journal",
            &p(&unwritable),
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 8, "{stderr}");
    assert!(stderr.contains("apply.journal"), "{stderr}");
    assert!(
        sb.write_log().is_empty(),
        "a failed start-up wrote upstream"
    );
    sb.shutdown().await;
}

/// `GET path` over plain HTTP/1.0: (status, body).
impl Loop {
    /// With `run.metrics_addr` on port 0: the address the loop bound, read
    /// from its start-up log line (the port is never let go in between).
    fn with_metrics(
        config: &Path,
        journal: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (Loop, String) {
        let mut env = env.to_vec();
        env.push(("REBALANCER_RUN__METRICS_ADDR", "127.0.0.1:0"));
        env.push(("RUST_LOG", "info"));
        let mut l = Loop::spawn(
            config,
            &["--journal", &p(journal)],
            extra,
            &env,
            Stdio::piped(),
        );
        let addr = common::metrics_addr_from(l.child.stderr.take().unwrap());
        (l, addr)
    }
}

/// The value of the series line `name{labels}` (exactly so) in `metrics`.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

/// `promtool check metrics` on `text`: its complaints (empty: none).
/// Without promtool, `None` and a notice; `REBALANCER_REQUIRE_PROMTOOL=1`
/// (as in CI) makes that a failure.
fn promtool_check(text: &str) -> Option<String> {
    use std::io::Write;
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            assert!(
                std::env::var("REBALANCER_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
                "promtool is required (REBALANCER_REQUIRE_PROMTOOL=1) but cannot run ({e}); install it with `apt-get install --no-install-recommends prometheus`"
            );
            eprintln!("skipped `promtool check metrics`: promtool cannot run here ({e}); `apt-get install prometheus` provides it");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() || !said.trim().is_empty(),
        "promtool failed silently"
    );
    Some(said)
}

/// Every series is on /metrics before the first cycle (the cron schedule's
/// first time is weeks away), and promtool finds nothing to say about it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_is_served_before_the_first_cycle_and_passes_promtool() {
    let (sb, _dir, config, journal) = setup().await;
    let (l, addr) = Loop::with_metrics(&config, &journal, &["--cron", "0 0 0 1 1 *"], &[]);
    let (status, metrics) = http_get(&addr, "/metrics");
    assert_eq!(status, 200);
    for (series, value) in [
        ("rebalancer_cycles_total{outcome=\"failed\"}", 0.0),
        ("rebalancer_cycles_total{outcome=\"applied\"}", 0.0),
        ("rebalancer_last_success_timestamp_seconds", 0.0),
        ("rebalancer_last_cycle_timestamp_seconds", 0.0),
        ("rebalancer_puts_total{outcome=\"sent\"}", 0.0),
        ("rebalancer_lease_lost_total", 0.0),
        (
            "rebalancer_upstream_requests_total{api=\"cms_get\",outcome=\"5xx\"}",
            0.0,
        ),
        // January 1st, yearly: 365 days between the next two.
        ("rebalancer_cycle_interval_seconds", 365.0 * 86400.0),
    ] {
        assert_eq!(sample(&metrics, series), value, "{series}");
    }
    assert!(sample(&metrics, "rebalancer_shortfall_records").is_nan());
    for family in [
        "# TYPE rebalancer_cycle_duration_seconds histogram",
        "# TYPE rebalancer_upstream_request_duration_seconds histogram",
        "# HELP rebalancer_build_info ",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_cpu_seconds_total counter",
        "# HELP process_open_fds ",
    ] {
        assert!(metrics.contains(family), "no `{family}`:\n{metrics}");
    }
    if let Some(said) = promtool_check(&metrics) {
        assert_eq!(
            said.trim(),
            "",
            "promtool check metrics:\n{said}\n{metrics}"
        );
    }
    // CI checks the shipped alerts and dashboard against this scrape
    // (`.ci/alert-checks FILE`): every series they read must exist.
    if let Some(out) = std::env::var_os("REBALANCER_METRICS_OUT") {
        std::fs::write(out, &metrics).expect("REBALANCER_METRICS_OUT is writable");
    }
    assert_eq!(l.stop(), 0);
    sb.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_probes_answer_while_the_loop_runs() {
    let (sb, _dir, config, journal) = setup().await;
    let (l, addr) = Loop::with_metrics(
        &config,
        &journal,
        &["--every", "1s"],
        &[("REBALANCER_APPLY__PUTS_PER_SECOND", "200")],
    );
    let first = l.next();
    assert_eq!(first["outcome"], "applied", "{first}");
    let (status, body) = http_get(&addr, "/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, _) = http_get(&addr, "/readyz");
    assert_eq!(status, 200, "ready after a successful cycle");
    let (status, metrics) = http_get(&addr, "/metrics");
    assert_eq!(status, 200);
    // Counted as each PUT ended: every PUT the sandbox took, and no more
    // (the next cycle may have started: at least the first's).
    let puts = sb.write_log().len() as f64;
    let sent = sample(&metrics, "rebalancer_puts_total{outcome=\"sent\"}");
    assert!(
        sent >= 1.0 && sent <= puts,
        "sent {sent}, sandbox took {puts}"
    );
    let put_oks = sample(
        &metrics,
        "rebalancer_upstream_requests_total{api=\"cms_put\",outcome=\"ok\"}",
    );
    assert_eq!(put_oks, sent, "each PUT is one cms_put request");
    for series in [
        "rebalancer_upstream_requests_total{api=\"cms_get\",outcome=\"ok\"}",
        "rebalancer_upstream_requests_total{api=\"webex_users\",outcome=\"ok\"}",
        "rebalancer_upstream_requests_total{api=\"zoho_restrict_to\",outcome=\"ok\"}",
        "rebalancer_upstream_requests_total{api=\"zoho_token\",outcome=\"ok\"}",
        "rebalancer_moves_applied_total",
        "rebalancer_cycles_total{outcome=\"applied\"}",
        "rebalancer_last_cycle_outcome{outcome=\"applied\"}",
        "rebalancer_last_success_timestamp_seconds",
        "rebalancer_cycle_duration_seconds_count{stage=\"fetch\"}",
        "rebalancer_cycle_duration_seconds_count{stage=\"plan\"}",
        "rebalancer_cycle_duration_seconds_count{stage=\"apply\"}",
        "rebalancer_upstream_request_duration_seconds_count{api=\"cms_get\"}",
    ] {
        assert!(sample(&metrics, series) >= 1.0, "{series}:\n{metrics}");
    }
    assert!(sample(&metrics, "rebalancer_peak_utilisation") > 0.0);
    assert_eq!(sample(&metrics, "rebalancer_cycle_interval_seconds"), 1.0);
    if let Some(said) = promtool_check(&metrics) {
        assert_eq!(said.trim(), "", "promtool check metrics:\n{said}");
    }
    assert_eq!(l.stop(), 0);
    sb.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_cycle_records_the_run_as_interrupted() {
    let (sb, _dir, config, journal) = setup().await;
    let l = Loop::start(
        &config,
        &journal,
        &["--every", "1s"],
        &[
            ("REBALANCER_APPLY__PUTS_PER_SECOND", "2"),
            ("REBALANCER_APPLY__BURST", "1"),
        ],
    );
    for _ in 0..600 {
        if sb.write_log().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sb.write_log().len() >= 2, "the first cycle never wrote");
    let puts_at_signal = sb.write_log().len();
    let _ = Command::new("kill")
        .args(["-TERM", &l.child.id().to_string()])
        .status();
    let cycle = l.next();
    assert_eq!(cycle["outcome"], "interrupted", "{cycle}");
    let code = l.stop();
    assert_eq!(code, 11, "a loop stopped mid-apply exits 11");
    // At 2 PUTs a second with a burst of 1, at most one PUT can have been
    // on its way when the signal came; nothing new is started after it.
    let puts = sb.write_log().len();
    assert!(
        puts <= puts_at_signal + 1,
        "{} PUTs went out after SIGTERM (beyond the one in flight)",
        puts - puts_at_signal
    );
    let (code, stdout, _) = run(
        s(&["history", "--journal", &p(&journal), "--format", "json"]),
        vec![],
    )
    .await;
    assert_eq!(code, 0);
    let runs: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(runs[0]["outcome"], "interrupted", "{stdout}");
    // Every PUT that went out, the one in flight included, is in the
    // journal with its outcome: none left pending.
    let run_id = runs[0]["id"].to_string();
    let (code, stdout, stderr) = run(
        s(&[
            "show",
            &run_id,
            "--journal",
            &p(&journal),
            "--format",
            "json",
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    let journaled = shown["puts"].as_array().expect("show lists the PUTs");
    // Those that waited for the write budget when the stop came are
    // recorded as never sent.
    let went_out: Vec<&Value> = journaled
        .iter()
        .filter(|p| p["state"] != "unsent")
        .collect();
    assert_eq!(went_out.len(), puts, "journal and CMS disagree: {stdout}");
    assert!(
        went_out.iter().all(|put| put["state"] == "applied"),
        "a PUT without its outcome: {stdout}"
    );
    sb.shutdown().await;
}

/// Two loops on one PostgreSQL journal (`REBALANCER_JOURNAL__URL`): one
/// applies, the other skips its first cycle; their runs never overlap.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_loops_on_one_postgresql_journal_never_apply_in_the_same_cycle() {
    let Some(server) = pg::start() else {
        return;
    };
    let url = server.database();
    let (sb, _dir, config, _) = setup().await;
    let env = [
        ("REBALANCER_APPLY__PUTS_PER_SECOND", "10"),
        ("REBALANCER_JOURNAL__URL", url.as_str()),
    ];
    let a = Loop::start_with(&config, &[], &["--every", "1s"], &env);
    let b = Loop::start_with(&config, &[], &["--every", "1s"], &env);
    let (first_a, first_b) = (a.next(), b.next());
    let outcomes = [first_a["outcome"].clone(), first_b["outcome"].clone()];
    assert!(
        outcomes.contains(&Value::from("applied")) && outcomes.contains(&Value::from("skipped")),
        "one applies, the other skips its cycle: {first_a} / {first_b}"
    );
    sb.set_webex_active(&an_assigned_agent(&sb, &[]), false)
        .unwrap();
    next_applied(&[&a, &b]);
    let _ = (a.stop(), b.stop());
    let (code, stdout, stderr) = run(
        s(&["history", "--format", "json"]),
        vec![("REBALANCER_JOURNAL__URL".into(), url.clone())],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_runs_never_overlap(&stdout, 2);
    let (code, stdout, stderr) = run(
        s(&["history"]),
        vec![("REBALANCER_JOURNAL__URL".into(), url)],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("rebalancer:****@127.0.0.1"), "{stdout}");
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));
    sb.shutdown().await;
}

/// An unreachable PostgreSQL URL fails `run --once` at start-up: exit 8,
/// naming journal.url, never printing the password, nothing written
/// upstream. Needs no server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgresql_journal_fails_at_start_up() {
    let (sb, _dir, config, _) = setup().await;
    let (_held, port) = common::refused_port();
    let url = format!("postgres://rebalancer:hunter2-secret@127.0.0.1:{port}/journal");
    let (code, stdout, stderr) = run(
        s(&["run", "--once", "--config", &p(&config)]),
        vec![("REBALANCER_JOURNAL__URL".into(), url)],
    )
    .await;
    assert_eq!(code, 8, "{stderr}");
    assert!(stderr.contains("journal.url"), "{stderr}");
    assert!(stderr.contains("rebalancer:****@127.0.0.1"), "{stderr}");
    assert!(
        !stderr.contains("hunter2") && !stdout.contains("hunter2"),
        "{stderr}"
    );
    assert!(
        sb.write_log().is_empty(),
        "a failed start-up wrote upstream"
    );
    // Not a PostgreSQL URL at all: a config error naming the key, masked.
    let (code, _, stderr) = run(
        s(&["run", "--once", "--config", &p(&config)]),
        vec![(
            "REBALANCER_JOURNAL__URL".into(),
            "mysql://u:hunter2-secret@h/db".into(),
        )],
    )
    .await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("journal.url"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_runs_never_write_the_configured_journal() {
    let dir = tempfile::tempdir().unwrap();
    let production = dir.path().join("production.sqlite");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rebalancer"));
    let out = cmd
        .args(["run", "--sandbox", "--once", "--dry-run"])
        .current_dir(dir.path())
        .env("REBALANCER_APPLY__JOURNAL", &production)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !production.exists(),
        "a sandbox run wrote the configured journal"
    );
    assert!(dir
        .path()
        .join("rebalancer-sandbox-journal.sqlite")
        .is_file());
}

/// Finding #13: the first cycle of a cron schedule ran at start-up, so
/// every restart applied off-schedule. It waits for the first cron time
/// (a second a few seconds ahead here), unless `--now`.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_cron_cycle_waits_for_the_first_cron_time_unless_now() {
    use chrono::Timelike;
    let (sb, _dir, config, journal) = setup().await;
    let launched = chrono::Utc::now();
    let second = (launched.second() + 5) % 60;
    let cron = format!("{second} * * * * *");
    let l = Loop::start(&config, &journal, &["--cron", &cron, "--dry-run"], &[]);
    let first = l.next();
    assert_eq!(first["outcome"], "planned", "{first}");
    let at = started_at(&first);
    assert!(
        at > launched && at.second() == second,
        "the first cycle started at {at}, not at the cron time (second {second}; launched {launched})"
    );
    assert_eq!(l.stop(), 0);
    // `--now` runs the first cycle at once: before that second comes round.
    let launched = chrono::Utc::now();
    let second = (launched.second() + 30) % 60;
    let cron = format!("{second} * * * * *");
    let l = Loop::start(
        &config,
        &journal,
        &["--cron", &cron, "--dry-run", "--now"],
        &[],
    );
    let first = l.next();
    let at = started_at(&first);
    assert!(
        at - launched < chrono::Duration::seconds(25),
        "with --now the first cycle started at {at} (launched {launched})"
    );
    assert_eq!(l.stop(), 0);
    sb.shutdown().await;
}

/// A free port on 127.0.0.1, and a listener holding another one.
fn busy_port() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

/// Finding #7: a port in use under `run --once` was exit 1, "this is a
/// bug"; a host name or a bare `:port` also exit 1. Now `--once` binds no
/// port unless `run.metrics_on_once`, a busy port is exit 8 naming the
/// address, and `run.metrics_addr` is checked at load (exit 3 naming it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_addr_is_checked_at_load_and_a_busy_port_is_exit_8() {
    let (sb, _dir, config, journal) = setup().await;
    let (_holder, busy) = busy_port();
    let once = |env: &[(&str, &str)]| {
        run(
            s(&[
                "run",
                "--once",
                "--dry-run",
                "--config",
                &p(&config),
                "--journal",
                &p(&journal),
            ]),
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    // --once serves nothing by default: the busy port does not matter.
    let (code, _, stderr) = once(&[("REBALANCER_RUN__METRICS_ADDR", &busy)]).await;
    assert_eq!(code, 0, "{stderr}");
    // Asked to serve under --once, or in the loop: exit 8, the address named.
    for args in [vec![("REBALANCER_RUN__METRICS_ON_ONCE", "true")], vec![]] {
        let mut env = vec![("REBALANCER_RUN__METRICS_ADDR".to_owned(), busy.clone())];
        env.extend(args.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut argv = s(&["run", "--config", &p(&config), "--journal", &p(&journal)]);
        if args.is_empty() {
            argv.extend(s(&["--every", "1h", "--dry-run"]));
        } else {
            argv.extend(s(&["--once", "--dry-run"]));
        }
        let (code, _, stderr) = run(argv, env).await;
        assert_eq!(code, 8, "{stderr}");
        assert!(
            stderr.contains("cannot bind") && stderr.contains(&busy),
            "{stderr}"
        );
        assert!(!stderr.contains("bug"), "{stderr}");
    }
    // Bad values fail at load, naming the key and the fix.
    for (value, says) in [
        ("9090", "no port"),
        ("127.0.0.1:99999", "port"),
        ("no-such-host.invalid:9090", "cannot be resolved"),
        ("[::1:9090", "not a host and a port"),
    ] {
        let (code, _, stderr) = once(&[("REBALANCER_RUN__METRICS_ADDR", value)]).await;
        assert_eq!(code, 3, "{value}: {stderr}");
        assert!(
            stderr.contains("run.metrics_addr") && stderr.contains(says),
            "{value}: {stderr}"
        );
    }
    // A bare :port (every interface) and a host name that resolves serve.
    for value in [":0", "localhost:0"] {
        let (code, _, stderr) = once(&[
            ("REBALANCER_RUN__METRICS_ADDR", value),
            ("REBALANCER_RUN__METRICS_ON_ONCE", "true"),
        ])
        .await;
        assert_eq!(code, 0, "{value}: {stderr}");
    }
    sb.shutdown().await;
}

/// Finding #13: after a failed first cycle /readyz said ready. It is not
/// ready until a cycle succeeds; a failed cycle does not end the loop, and
/// the next success makes it ready.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_a_successful_cycle() {
    let (sb, _dir, config, journal) = setup().await;
    // Zoho refuses the thresholds: every cycle's fetch fails.
    sb.set_zoho_scope_granted(false);
    let (l, addr) = Loop::with_metrics(&config, &journal, &["--every", "1s", "--dry-run"], &[]);
    let first = l.next();
    assert_eq!(first["outcome"], "failed", "{first}");
    let (status, body) = http_get(&addr, "/readyz");
    assert_eq!(status, 503, "ready after a failed first cycle: {body}");
    assert!(body.contains("no cycle has succeeded"), "{body}");
    sb.set_zoho_scope_granted(true);
    let mut planned = None;
    for _ in 0..20 {
        let c = l.next();
        if c["outcome"] == "planned" {
            planned = Some(c);
            break;
        }
    }
    planned.expect("the loop went on after failed cycles and planned once Zoho answered");
    let (status, body) = http_get(&addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(l.stop(), 0);
    sb.shutdown().await;
}

/// `pg_ctl` on the harness's server, run as the harness runs it (as
/// `postgres` when we are root).
fn pg_ctl(server: &pg::PgServer, args: &[&str]) {
    let bin = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("pg_ctl"))
                .find(|f| f.is_file())
        })
        .or_else(|| {
            let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|e| Some(e.ok()?.path().join("bin/pg_ctl")))
                .filter(|f| f.is_file())
                .collect();
            found.sort();
            found.pop()
        })
        .expect("pg_ctl, found when the server started");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    let out = cmd
        .args(args)
        .current_dir(server.dir())
        .output()
        .expect("pg_ctl runs");
    assert!(
        out.status.success(),
        "pg_ctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Finding #8: PostgreSQL stopped under `run --every`: the loop exited
/// after one failed cycle. Now the failed cycles are logged (the journal
/// cannot record them: id 0), the loop goes on, and once the server is
/// back the next cycles are recorded in it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_under_run_does_not_end_the_loop() {
    let Some(server) = pg::start() else {
        return;
    };
    let url = server.database();
    let (sb, dir, config, _) = setup().await;
    let run_log = dir.path().join("run.log");
    let mut l = Loop::spawn(
        &config,
        &[],
        &["--every", "1s", "--dry-run"],
        &[("REBALANCER_JOURNAL__URL", url.as_str())],
        std::fs::File::create(&run_log).unwrap().into(),
    );
    let first = l.next();
    assert_eq!(first["outcome"], "planned", "{first}");
    assert!(first["id"].as_i64().unwrap() > 0, "{first}");
    let data = server.dir().join("data");
    let data = p(&data);
    pg_ctl(&server, &["-D", &data, "-m", "fast", "-w", "stop"]);
    let mut failed = None;
    for _ in 0..20 {
        let c = l.next();
        if c["outcome"] == "failed" {
            failed = Some(c);
            break;
        }
    }
    let failed = failed.expect("a cycle failed while PostgreSQL was down");
    assert_eq!(failed["id"], 0, "an unrecorded cycle shows id 0: {failed}");
    assert!(
        !failed["detail"].as_str().unwrap().contains("hunter2"),
        "{failed}"
    );
    // Another failed cycle: the loop did not end with the first.
    let again = l.next();
    assert_eq!(again["outcome"], "failed", "{again}");
    assert!(l.child.try_wait().unwrap().is_none(), "the loop exited");
    let options = format!(
        "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
        server.port(),
        p(server.dir())
    );
    let server_log = p(&server.dir().join("server.log"));
    pg_ctl(
        &server,
        &[
            "-D",
            &data,
            "-l",
            &server_log,
            "-o",
            &options,
            "-w",
            "start",
        ],
    );
    let mut recorded = None;
    for _ in 0..20 {
        let c = l.next();
        if c["outcome"] == "planned" && c["id"].as_i64().unwrap_or(0) > 0 {
            recorded = Some(c);
            break;
        }
    }
    let recorded = recorded.expect("a cycle recorded after PostgreSQL came back");
    assert_eq!(l.stop(), 0);
    let location = rebalancer_applier::JournalLocation::Postgres(url.clone().into());
    let cycles = rebalancer_applier::cycles(&location, 100).unwrap();
    assert!(
        cycles
            .iter()
            .any(|c| c.id == recorded["id"].as_i64().unwrap()),
        "the cycle after the restart is in PostgreSQL"
    );
    assert!(
        cycles.iter().all(|c| c.outcome == "planned"),
        "only the cycles PostgreSQL saw are in it"
    );
    let log = std::fs::read_to_string(&run_log).unwrap();
    assert!(
        log.contains("the journal could not record this cycle"),
        "the unrecorded cycles are logged: {log}"
    );
    assert!(!log.contains("hunter2"), "{log}");
    sb.shutdown().await;
}

/// libfaketime's multi-threaded library (preloaded, so the child is the
/// binary itself and SIGTERM reaches it), or why not: `None` skips with a
/// notice; `REBALANCER_REQUIRE_FAKETIME` set makes a missing one a failure.
fn libfaketime() -> Option<PathBuf> {
    let found = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
        "/usr/local/lib",
    ]
    .iter()
    .map(|d| Path::new(d).join("faketime/libfaketimeMT.so.1"))
    .find(|f| f.is_file());
    if found.is_none() {
        assert!(
            std::env::var("REBALANCER_REQUIRE_FAKETIME").is_err(),
            "libfaketime is not installed and REBALANCER_REQUIRE_FAKETIME is set; install it (Debian: apt-get install faketime)"
        );
        eprintln!("skipped: libfaketime is not installed (Debian: apt-get install faketime); set REBALANCER_REQUIRE_FAKETIME=1 to make this a failure");
    }
    found
}

/// Waits (up to 30 s) until `log` has a line containing `needle`.
fn wait_for_log(log: &Path, needle: &str) -> String {
    for _ in 0..600 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{needle:?} never logged:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Finding #6 through the binary, its clock set by libfaketime to the
/// October change in Berlin (02:00–03:00 seen twice: 00:00–01:00 UTC at
/// +02:00, then 01:00–02:00 UTC at +01:00). Started 3 s before 02:30 of
/// the second pass, the next start fell an hour in the past and the loop
/// spun; started 3 s before 02:45 of the first pass, it skipped the second
/// pass's hour. Now: each next start is the next quarter hour in UTC.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dst_fold_neither_spins_nor_skips_under_run() {
    let Some(lib) = libfaketime() else {
        return;
    };
    let lib = p(&lib);
    let (sb, dir, config, journal) = setup().await;
    for (fake_now, second_start, then) in [
        (
            "2026-10-25 01:29:57",
            "2026-10-25T01:30:00",
            "2026-10-25T01:45:00",
        ),
        (
            "2026-10-25 00:44:57",
            "2026-10-25T00:45:00",
            "2026-10-25T01:00:00",
        ),
    ] {
        let log = dir.path().join("fold.log");
        let at = format!("@{fake_now}");
        let l = Loop::spawn(
            &config,
            &["--journal", &p(&journal)],
            &["--cron", "*/15 * * * *", "--now", "--dry-run"],
            &[
                ("LD_PRELOAD", &lib),
                ("FAKETIME", &at),
                ("TZ", "UTC"),
                ("REBALANCER_RUN__TIMEZONE", "Europe/Berlin"),
            ],
            std::fs::File::create(&log).unwrap().into(),
        );
        let first = l.next();
        assert!(
            first["started_at"].as_str().unwrap() < second_start,
            "--now: the first cycle at once: {first}"
        );
        let second = l.next();
        let started = second["started_at"].as_str().unwrap();
        assert!(
            started >= second_start && started < format!("{second_start}.999").as_str(),
            "the second cycle started at {started}, not at {second_start}Z"
        );
        let text = wait_for_log(&log, &format!("next={then}"));
        assert!(!text.contains("next=2026-10-25T00:30"), "{text}");
        assert_eq!(l.stop(), 0);
    }
    sb.shutdown().await;
}

/// An HTTP server on 127.0.0.1 that answers every request with a redirect
/// (an upstream URL that needs fixing: `UpstreamError::Redirected`, a
/// configuration error); its base URL.
fn redirector() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://elsewhere.invalid/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    url
}

/// A cycle refused by the configuration ends the loop (exit 3, the error
/// shown), where an upstream or journal failure does not.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_error_in_a_cycle_ends_the_loop() {
    let (sb, dir, config, journal) = setup().await;
    let url = redirector();
    let log = dir.path().join("run.log");
    let mut l = Loop::spawn(
        &config,
        &["--journal", &p(&journal)],
        &["--every", "1s", "--dry-run"],
        &[("REBALANCER_CMS__BASE_URL", &url)],
        std::fs::File::create(&log).unwrap().into(),
    );
    let first = l.next();
    assert_eq!(first["outcome"], "failed", "{first}");
    let mut code = None;
    for _ in 0..600 {
        if let Some(status) = l.child.try_wait().unwrap() {
            code = status.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("a configuration error ends the loop"), "{log}");
    sb.shutdown().await;
}

/// Each outcome of a `run --once` cycle and its exit code: `blocked` (10)
/// by a plan over `plan.max_unassign_share`, `failed` (the error's code: 5
/// for Zoho refusing the thresholds' scope), `applied_with_failures` (13)
/// when the CMS refuses every PUT, then `applied` (0) and, on the world
/// the apply left, `no_changes` (0). Each cycle is in the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_once_outcome_has_its_exit_code() {
    use rebalancer_sandbox::{FaultSpec, Faults};
    let (sb, _dir, config, journal) = setup().await;
    let once = |env: Vec<(&str, &str)>| {
        let args = s(&[
            "run",
            "--once",
            "--config",
            &p(&config),
            "--journal",
            &p(&journal),
            "--format",
            "json",
        ]);
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        env.push(("REBALANCER_APPLY__PUTS_PER_SECOND".into(), "200".into()));
        async move {
            let (code, stdout, stderr) = run(args, env).await;
            let record: Value = serde_json::from_str(stdout.trim())
                .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
            (
                code,
                record["outcome"].as_str().unwrap_or_default().to_owned(),
                stderr,
            )
        }
    };
    let (code, outcome, stderr) =
        once(vec![("REBALANCER_PLAN__MAX_UNASSIGN_SHARE", "0.001")]).await;
    assert_eq!((code, outcome.as_str()), (10, "blocked"), "{stderr}");
    assert!(sb.write_log().is_empty(), "a blocked cycle wrote");

    sb.set_zoho_scope_granted(false);
    let (code, outcome, stderr) = once(vec![]).await;
    assert_eq!((code, outcome.as_str()), (5, "failed"), "{stderr}");
    sb.set_zoho_scope_granted(true);

    sb.set_faults(Faults {
        cms_put: FaultSpec {
            fail_first: 100_000,
            fail_status: 400,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let (code, outcome, stderr) = once(vec![]).await;
    assert_eq!(
        (code, outcome.as_str()),
        (13, "applied_with_failures"),
        "{stderr}"
    );
    assert!(!sb.write_log().is_empty(), "no PUT was tried");
    sb.set_faults(Faults::default());

    let (code, outcome, stderr) = once(vec![]).await;
    assert_eq!((code, outcome.as_str()), (0, "applied"), "{stderr}");
    let (code, outcome, stderr) = once(vec![]).await;
    assert_eq!((code, outcome.as_str()), (0, "no_changes"), "{stderr}");

    let conn = rusqlite::Connection::open(&journal).unwrap();
    let mut stmt = conn
        .prepare("SELECT outcome FROM cycles ORDER BY id")
        .unwrap();
    let recorded: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        recorded,
        [
            "blocked",
            "failed",
            "applied_with_failures",
            "applied",
            "no_changes"
        ]
    );
    sb.shutdown().await;
}
