//! Configuration through the binary: the same layering (defaults < file <
//! environment) in every input mode, environment values byte for byte,
//! errors that name the variable, and the flags whose misuse is an error.

mod common;

use common::{config_toml, p, run_async as run, s, small_world, start};
use rebalancer_model::{Plan, Reason, Snapshot};
use rebalancer_sandbox::{Credentials, SandboxConfig};
use std::path::{Path, PathBuf};

fn e(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

async fn snapshot_file(dir: &Path, seed: &str) -> PathBuf {
    let snap = dir.join("snap.json");
    let (code, _, stderr) = run(
        s(&["fetch", "--sandbox", "--seed", seed, "--out", &p(&snap)]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    snap
}

/// The first active agent with headroom that holds a lead, in the snapshot.
fn an_assigned_eligible_agent(snap: &Snapshot) -> String {
    snap.leads()
        .flat_map(|(_, l)| l.assigned.iter())
        .find(|id| {
            snap.agents
                .iter()
                .any(|a| &a.id == *id && a.is_active() && a.headroom.is_some_and(|h| h > 0))
        })
        .expect("the sandbox world has an eligible assigned agent")
        .0
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_overrides_apply_to_a_saved_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot_file(dir.path(), "5").await;
    let agent = an_assigned_eligible_agent(&Snapshot::load(&snap).unwrap());
    let out = dir.path().join("plan.json");
    let (code, stdout, stderr) = run(
        s(&["plan", "--snapshot", &p(&snap), "--out", &p(&out)]),
        vec![e("REBALANCER_PLAN__EXCLUDE_AGENTS", &agent)],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Config: defaults < env (1 key: REBALANCER_PLAN__EXCLUDE_AGENTS)"),
        "the header names the layers:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("Wrote the plan to {}.", out.display())),
        "{stdout}"
    );
    let plan = Plan::load(&out).unwrap();
    assert!(
        plan.changes
            .iter()
            .any(|c| c.agent.as_str() == agent && c.reason == Reason::Excluded),
        "the excluded agent {agent} was not unassigned"
    );
    // A bad value is an error that names the variable, not a config file.
    let (code, _, stderr) = run(
        s(&["plan", "--snapshot", &p(&snap)]),
        vec![e("REBALANCER_PLAN__MAX_MOVES_PER_RUN", "ten")],
    )
    .await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("environment variable REBALANCER_PLAN__MAX_MOVES_PER_RUN")
            && stderr.contains("plan.max_moves_per_run")
            && !stderr.contains("config file"),
        "{stderr}"
    );
    // With a file, the file is a layer too, and the environment wins.
    let cfg = dir.path().join("plan.toml");
    std::fs::write(&cfg, "[plan]\nmax_moves_per_run = 3\n").unwrap();
    let (code, stdout, stderr) = run(
        s(&["plan", "--snapshot", &p(&snap), "--config", &p(&cfg)]),
        vec![
            e("REBALANCER_PLAN__MIN_BALANCE_GAIN", "0.5"),
            e("REBALANCER_VERSION", "x"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "Config: defaults < plan.toml < env (1 key: REBALANCER_PLAN__MIN_BALANCE_GAIN)"
        ),
        "{stdout}"
    );
    // An offline replan says so, and names the file it replayed.
    assert!(
        stdout.contains(&format!("replayed offline from {}", snap.display())),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_overrides_apply_to_the_embedded_sandbox_but_credentials_do_not() {
    let (code, stdout, stderr) = run(
        s(&["plan", "--sandbox", "--agents", "60", "--leads", "12"]),
        vec![
            e("REBALANCER_PLAN__MIN_BALANCE_GAIN", "0.5"),
            e("REBALANCER_CMS__PASSWORD", "a-real-password"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "Config: defaults < embedded sandbox < env (1 key: REBALANCER_PLAN__MIN_BALANCE_GAIN)"
        ),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_the_environment_are_sent_byte_for_byte() {
    let twenty_digits = "01234567890123456789";
    let sb = start(SandboxConfig {
        credentials: Credentials {
            cms_password: "007".into(),
            webex_api_key: twenty_digits.into(),
            ..Credentials::default()
        },
        ..small_world(41)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config_toml(&sb)).unwrap();
    let (code, _, stderr) = run(
        s(&["fetch", "--config", &p(&cfg)]),
        vec![
            e("REBALANCER_CMS__PASSWORD", "007"),
            e("REBALANCER_WEBEX__API_KEY", twenty_digits),
        ],
    )
    .await;
    assert_eq!(code, 0, "the CMS and Webex refused what we sent: {stderr}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_item_list_from_the_environment_works() {
    let sb = start(small_world(42)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config_toml(&sb)).unwrap();
    let id = sb.world().threshold_ids[0].clone();
    let out = dir.path().join("snap.json");
    let (code, _, stderr) = run(
        s(&["fetch", "--config", &p(&cfg), "--out", &p(&out)]),
        vec![e("REBALANCER_ZOHO__THRESHOLD_IDS", &id)],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let snap = Snapshot::load(&out).unwrap();
    assert_eq!(snap.source.threshold_ids, vec![id]);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lp_backend_without_the_lp_solver_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot_file(dir.path(), "6").await;
    let (code, stdout, stderr) = run(
        s(&["plan", "--snapshot", &p(&snap), "--lp-backend", "microlp"]),
        vec![],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--solver lp") && stdout.is_empty(),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(
        s(&[
            "plan",
            "--snapshot",
            &p(&snap),
            "--solver",
            "lp",
            "--lp-backend",
            "microlp",
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Solver lp-microlp"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detailed_exitcode_says_whether_changes_are_pending() {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot_file(dir.path(), "8").await;
    let (code, _, stderr) = run(
        s(&["plan", "--snapshot", &p(&snap), "--detailed-exitcode"]),
        vec![],
    )
    .await;
    assert_eq!(code, 2, "the sandbox world needs changes: {stderr}");
    // Every lead frozen: nothing may change.
    let leads: Vec<String> = Snapshot::load(&snap)
        .unwrap()
        .leads()
        .map(|(key, _)| key.to_string())
        .collect();
    let (code, stdout, stderr) = run(
        s(&["plan", "--snapshot", &p(&snap), "--detailed-exitcode"]),
        vec![e("REBALANCER_PLAN__FROZEN_LEADS", &leads.join(","))],
    )
    .await;
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert!(stdout.contains("No changes."), "{stdout}");
    // Without the flag, pending changes still exit 0.
    let (code, _, _) = run(s(&["plan", "--snapshot", &p(&snap)]), vec![]).await;
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_json_summary_matches_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snap.json");
    let (code, stdout, stderr) = run(
        s(&[
            "fetch",
            "--sandbox",
            "--agents",
            "80",
            "--leads",
            "10",
            "--format",
            "json",
            "--out",
            &p(&out),
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let snap = Snapshot::load(&out).unwrap();
    assert_eq!(summary["leads"], snap.leads().count());
    assert_eq!(summary["leads"], 10);
    assert_eq!(
        summary["agents_in_cms"],
        snap.agents.iter().filter(|a| a.in_cms).count()
    );
    assert_eq!(summary["snapshot_hash"], snap.content_hash());
    assert!(summary["requests"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbosity_flags_set_the_log_level() {
    let quiet = run(s(&["fetch", "--sandbox", "-q"]), vec![]).await;
    let verbose = run(s(&["fetch", "--sandbox", "-vv"]), vec![]).await;
    assert_eq!((quiet.0, verbose.0), (0, 0));
    assert!(quiet.2.is_empty(), "-q logs only errors: {}", quiet.2);
    assert!(verbose.2.contains("DEBUG"), "-vv logs debug: {}", verbose.2);
    let (code, _, stderr) = run(s(&["fetch", "--sandbox", "-q", "-v"]), vec![]).await;
    assert_eq!(code, 2, "-q and -v conflict: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let (code, _, stderr) = run(
        s(&["fetch", "--sandbox", "-v", "--log-format", "json"]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty(), "-v logs something");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["message"].is_string() && v.get("fields").is_none(),
            "{line}"
        );
    }
}
