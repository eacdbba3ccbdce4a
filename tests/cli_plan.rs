//! `rebalancer plan` end to end: byte-identical plans across processes, the
//! dry run never writes upstream, what-if flags, and bad input files or pins
//! refused with the file, agent or lead named and a distinct exit code.

mod common;

use common::{config_toml, run_bin, small_world, start};
use rebalancer_model::{Action, Plan, Reason};
use std::path::Path;

async fn run(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_bin(&args, &[])
    })
    .await
    .unwrap()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A saved sandbox snapshot in `dir`.
async fn snapshot_file(dir: &Path) -> std::path::PathBuf {
    let snap = dir.join("snap.json");
    let (code, _, stderr) = run(s(&["fetch", "--sandbox", "--seed", "3", "--out", p(&snap)])).await;
    assert_eq!(code, 0, "{stderr}");
    snap
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_snapshot_gives_byte_identical_plans_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot_file(dir.path()).await;
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    for out in [&a, &b] {
        let (code, _, stderr) = run(s(&["plan", "--snapshot", p(&snap), "--out", p(out)])).await;
        assert_eq!(code, 0, "{stderr}");
    }
    let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(bytes_a, bytes_b, "two runs gave different plans");
    let plan = Plan::load(&a).unwrap();
    assert!(!plan.changes.is_empty(), "the sandbox world needs changes");
    let snapshot = rebalancer_model::Snapshot::load(&snap).unwrap();
    assert_eq!(plan.snapshot_hash, snapshot.content_hash());
    // --format json prints the same plan.
    let (code, stdout, _) = run(s(&["plan", "--snapshot", p(&snap), "--format", "json"])).await;
    assert_eq!(code, 0);
    assert_eq!(stdout.as_bytes(), &bytes_a[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reads_but_never_writes_upstream() {
    let sb = start(small_world(31)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config_toml(&sb)).unwrap();
    let (code, stdout, stderr) = run(s(&["plan", "--config", p(&cfg), "--all"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("DRY RUN"), "{stdout}");
    for label in [
        "assign",
        "unassign",
        "shortfall",
        "peak utilisation",
        "leads short",
        "Solver flow",
    ] {
        assert!(stdout.contains(label), "summary lacks {label}:\n{stdout}");
    }
    let counts = sb.counts();
    assert!(counts.cms_get > 0, "the plan fetched live");
    assert_eq!(counts.cms_put, 0, "a dry run wrote upstream");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_if_flags_change_the_plan_without_touching_zoho() {
    // The snapshot comes from a sandbox that then watches every request:
    // planning what-ifs from the saved file must send none.
    let sb = start(small_world(32)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    // This small world's own plan unassigns 29 % of its pairs (many
    // inactive agents): raise the blast-radius guard for it.
    std::fs::write(
        &cfg,
        format!("{}\n[plan]\nmax_unassign_share = 0.6\n", config_toml(&sb)),
    )
    .unwrap();
    let snap_path = dir.path().join("snap.json");
    let (code, _, stderr) = run(s(&["fetch", "--config", p(&cfg), "--out", p(&snap_path)])).await;
    assert_eq!(code, 0, "{stderr}");
    let counts_after_fetch = sb.counts();
    let snapshot = rebalancer_model::Snapshot::load(&snap_path).unwrap();
    // An active agent with headroom that is assigned somewhere.
    let agent = snapshot
        .agents
        .iter()
        .find(|a| {
            a.is_active()
                && a.headroom.is_some_and(|h| h > 0)
                && snapshot.leads().any(|(_, l)| l.assigned.contains(&a.id))
        })
        .expect("the sandbox has a usable assigned agent")
        .id
        .clone();
    let out = dir.path().join("p.json");
    let (code, _, stderr) = run(s(&[
        "plan",
        "--snapshot",
        p(&snap_path),
        "--config",
        p(&cfg),
        "--exclude-agent",
        agent.as_str(),
        "--out",
        p(&out),
    ]))
    .await;
    assert_eq!(code, 0, "{stderr}");
    let plan = Plan::load(&out).unwrap();
    let removed: Vec<_> = plan.changes.iter().filter(|c| c.agent == agent).collect();
    assert!(!removed.is_empty());
    assert!(removed
        .iter()
        .all(|c| c.action == Action::Unassign && c.reason == Reason::Excluded));

    let what_if = format!("{agent}=0");
    let (code, _, stderr) = run(s(&[
        "plan",
        "--snapshot",
        p(&snap_path),
        "--config",
        p(&cfg),
        "--set-allowance",
        &what_if,
        "--out",
        p(&out),
    ]))
    .await;
    assert_eq!(code, 0, "{stderr}");
    let plan = Plan::load(&out).unwrap();
    let moved: Vec<_> = plan.changes.iter().filter(|c| c.agent == agent).collect();
    assert!(!moved.is_empty(), "an allowance of 0 must unassign {agent}");
    assert!(moved
        .iter()
        .all(|c| c.action == Action::Unassign && matches!(c.reason, Reason::AtAllowance { .. })));
    // The snapshot file is untouched by what-ifs, and no upstream saw a
    // single request while they were planned.
    assert_eq!(
        rebalancer_model::Snapshot::load(&snap_path).unwrap(),
        snapshot
    );
    assert_eq!(
        sb.counts(),
        counts_after_fetch,
        "a what-if plan talked to an upstream"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_name_the_problem_and_exit_distinctly() {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot_file(dir.path()).await;
    let text = std::fs::read_to_string(&snap).unwrap();
    let out = dir.path().join("never.json");
    let bad = |name: &str, body: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let cases: Vec<(std::path::PathBuf, i32, &str)> = vec![
        (
            bad("trunc.json", text[..text.len() / 2].to_string()),
            4,
            "trunc.json",
        ),
        (
            bad(
                "old.json",
                text.replacen("\"schema_version\": 1", "\"schema_version\": 0", 1),
            ),
            4,
            "schema version 0",
        ),
        (
            bad(
                "type.json",
                text.replacen("\"lead_id\": ", "\"lead_id\": \"x\", \"y\": ", 1),
            ),
            4,
            "type.json",
        ),
        (dir.path().join("missing.json"), 4, "missing.json"),
    ];
    for (path, want, text) in cases {
        let (code, _, stderr) = run(s(&["plan", "--snapshot", p(&path), "--out", p(&out)])).await;
        assert_eq!(code, want, "{}: {stderr}", path.display());
        assert!(
            stderr.contains(text),
            "{}: stderr lacks {text}: {stderr}",
            path.display()
        );
        assert!(!stderr.contains("panicked"));
        assert!(!out.exists());
    }
    // An infeasible pin names agent and lead and exits 3.
    let snapshot = rebalancer_model::Snapshot::load(&snap).unwrap();
    let (key, _) = snapshot
        .leads()
        .find(|(_, l)| !l.unassigned.is_empty())
        .unwrap();
    let inactive = snapshot
        .agents
        .iter()
        .find(|a| !a.is_active() && a.in_cms)
        .unwrap();
    let pin = format!("{}@{key}", inactive.id);
    let (code, _, stderr) = run(s(&["plan", "--snapshot", p(&snap), "--pin", &pin])).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(inactive.id.as_str()) && stderr.contains(&key.to_string()),
        "{stderr}"
    );
    // Bad what-if syntax is a usage error.
    let (code, _, stderr) = run(s(&["plan", "--snapshot", p(&snap), "--set-demand", "lots"])).await;
    assert_eq!(code, 2, "{stderr}");
    // A plan file given as a snapshot is refused with the file named.
    let plan_path = dir.path().join("plan.json");
    let (code, _, _) = run(s(&["plan", "--snapshot", p(&snap), "--out", p(&plan_path)])).await;
    assert_eq!(code, 0);
    let (code, _, stderr) = run(s(&["plan", "--snapshot", p(&plan_path)])).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("plan.json"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_pipe_ends_quietly() {
    // `rebalancer plan ... | head -c 10`: the reader goes away early.
    tokio::task::spawn_blocking(|| {
        use std::io::Read;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rebalancer"))
            .args([
                "plan",
                "--sandbox",
                "--agents",
                "2000",
                "--leads",
                "200",
                "--format",
                "json",
            ])
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 10];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // stdout is dropped here: the rest of the plan meets a closed pipe.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(out.status.code(), Some(0), "{stderr}");
    })
    .await
    .unwrap();
}

/// `plan --tradeoff`: JSON rows of six fields of one type each, the
/// optimal rung first, shortfall equal on every rung, and each row is what `plan
/// --target-utilisation` at that target says; the table names the
/// configured rung.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tradeoff_rows_are_the_plans_at_their_targets() {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot_file(dir.path()).await;
    // A low demand share leaves room to balance (u* < 1).
    let env = || {
        vec![(
            "REBALANCER_PLAN__DEMAND_SHARE".to_string(),
            "0.3".to_string(),
        )]
    };
    let (code, out, err) = common::run_async(
        s(&[
            "plan",
            "--snapshot",
            p(&snap),
            "--tradeoff",
            "--format",
            "json",
        ]),
        env(),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(rows.len() >= 3, "{out}");
    assert_eq!(rows[0]["optimal"], true);
    for row in &rows {
        let mut keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "assigns",
                "optimal",
                "peak_utilisation",
                "shortfall",
                "target",
                "unassigns"
            ]
        );
        assert!(
            row["target"].is_number() && row["shortfall"].is_u64(),
            "{row}"
        );
        assert_eq!(row["shortfall"], rows[0]["shortfall"]);
    }
    for row in [&rows[0], &rows[rows.len() / 2], rows.last().unwrap()] {
        let target = match row["optimal"].as_bool().unwrap() {
            true => "optimal".to_owned(),
            false => row["target"].to_string(),
        };
        let (code, out, err) = common::run_async(
            s(&[
                "plan",
                "--snapshot",
                p(&snap),
                "--target-utilisation",
                &target,
                "--format",
                "json",
            ]),
            env(),
        )
        .await;
        assert_eq!(code, 0, "{err}");
        let plan: Plan = serde_json::from_str(&out).unwrap();
        assert_eq!(
            plan.summary.assigns as u64,
            row["assigns"].as_u64().unwrap(),
            "{target}"
        );
        assert_eq!(
            plan.summary.unassigns as u64,
            row["unassigns"].as_u64().unwrap()
        );
        let peak = plan.objectives.after.peak_utilisation;
        assert_eq!(
            (peak * 1e4).round() / 1e4,
            row["peak_utilisation"].as_f64().unwrap()
        );
        assert_eq!(
            plan.objectives.balance.target,
            (target != "optimal").then(|| target.parse::<f64>().unwrap())
        );
    }
    let (code, table, err) =
        common::run_async(s(&["plan", "--snapshot", p(&snap), "--tradeoff"]), env()).await;
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("The price of balance"), "{table}");
    let configured = table
        .lines()
        .find(|l| l.contains("configured") && l.starts_with('│'));
    assert!(configured.is_some_and(|l| l.contains("0.90")), "{table}");
}

/// A target outside (0, 1] is a usage error naming the flag; in the config
/// (here from the environment) it is a config error naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_target_is_refused_by_flag_and_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot_file(dir.path()).await;
    for bad in ["1.5", "0", "lots"] {
        let (code, _, err) = run(s(&[
            "plan",
            "--snapshot",
            p(&snap),
            "--target-utilisation",
            bad,
        ]))
        .await;
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("--target-utilisation"), "{err}");
    }
    let (code, _, err) = common::run_async(
        s(&["plan", "--snapshot", p(&snap)]),
        vec![("REBALANCER_PLAN__TARGET_UTILISATION".into(), "1.2".into())],
    )
    .await;
    assert_eq!(code, 3, "bad configuration: {err}");
    assert!(err.contains("plan.target_utilisation"), "{err}");
    let (code, out, err) = common::run_async(
        s(&["plan", "--snapshot", p(&snap), "--format", "json"]),
        vec![(
            "REBALANCER_PLAN__TARGET_UTILISATION".into(),
            "optimal".into(),
        )],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let plan: Plan = serde_json::from_str(&out).unwrap();
    assert_eq!(plan.objectives.balance.target, None);
}

/// The sandbox plan's header says what each agent count counts, and the
/// balance line says in plain words why a target cannot be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_count_names_what_it_counts() {
    let (code, stdout, stderr) = run(s(&["plan", "--sandbox"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("seed 7, 200 agents and 40 leads generated"),
        "{stdout}"
    );
    assert!(
        stdout.contains("agents in the leads' pools, 40 leads"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the target 0.90 (plan.target_utilisation) cannot be reached")
            && stdout.contains("every agent who can take these leads is at its allowance"),
        "{stdout}"
    );
    assert!(!stdout.contains("u*"), "no jargon: {stdout}");
    assert!(
        stdout.contains("so a lead's new records can exceed its shortfall"),
        "{stdout}"
    );
}
