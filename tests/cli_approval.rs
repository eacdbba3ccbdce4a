//! `run.approval` through the binary against an in-process sandbox: with
//! "always", a `run --once` cycle proposes its plan and sends nothing;
//! `proposals` lists it; `approve` records who and why (once: a second
//! decision is refused with nothing changed); the next `run --once`
//! applies it and `proposals` shows it applied with its run; `reject`
//! keeps the same changes from being sent.

mod common;

use common::{config_toml, p, plan_world, run_async as run, s, start};
use serde_json::Value;

fn env() -> Vec<(String, String)> {
    vec![
        ("REBALANCER_RUN__APPROVAL".into(), "always".into()),
        ("REBALANCER_APPLY__PUTS_PER_SECOND".into(), "500".into()),
        ("REBALANCER_APPLY__BURST".into(), "50".into()),
        ("REBALANCER_RUN__MIN_MOVE_INTERVAL".into(), "0s".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_waits_for_approval_and_the_next_cycle_applies_it() {
    let sb = start(plan_world()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_toml(&sb)).unwrap();
    let journal = dir.path().join("j.sqlite");
    let with = |args: &[&str]| {
        let mut v = s(args);
        v.extend(s(&["--config", &p(&config), "--journal", &p(&journal)]));
        v
    };
    let once = with(&["run", "--once", "--format", "json"]);

    let (code, out, err) = run(once.clone(), env()).await;
    assert_eq!(code, 0, "{err}");
    let cycle: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(cycle["outcome"], "awaiting_approval", "{out}");
    assert_eq!(sb.counts().cms_put, 0, "nothing is sent before approval");

    let (code, out, err) = run(with(&["proposals", "--format", "json"]), env()).await;
    assert_eq!(code, 0, "{err}");
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(list.len(), 1, "{out}");
    assert_eq!(list[0]["state"], "pending");
    let id = list[0]["id"].as_i64().unwrap().to_string();

    let (code, out, err) = run(
        with(&[
            "approve",
            &id,
            "--by",
            "ana",
            "--comment",
            "checked with the floor",
        ]),
        env(),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("approved by ana"), "{out}");
    let (code, _, err) = run(with(&["reject", &id, "--by", "bob"]), env()).await;
    assert_eq!(code, 4, "a second decision is refused: {err}");
    assert!(err.contains("no longer pending"), "{err}");

    let (code, out, err) = run(once.clone(), env()).await;
    assert_eq!(code, 0, "{err}");
    let cycle: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(cycle["outcome"], "applied", "{out}");
    assert!(sb.counts().cms_put > 0);
    let (_, out, _) = run(
        with(&["proposals", "--state", "applied", "--format", "json"]),
        env(),
    )
    .await;
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(list.len(), 1, "{out}");
    assert_eq!(list[0]["decided_by"], "ana");
    assert_eq!(list[0]["comment"], "checked with the floor");
    assert_eq!(list[0]["run"], cycle["run"]);
    let (code, table, _) = run(with(&["proposals"]), env()).await;
    assert_eq!(code, 0);
    assert!(
        table.contains("applied") && table.contains("ana"),
        "{table}"
    );
    // `history` shows the decision beside the runs: who, why, which run.
    let (code, history, _) = run(with(&["history"]), env()).await;
    assert_eq!(code, 0);
    assert!(
        history.contains(&format!("proposal {id} approved by ana at ")),
        "{history}"
    );
    assert!(
        history.contains(&format!(
            ": \"checked with the floor\" → applied by run {}",
            cycle["run"]
        )),
        "{history}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_changes_are_never_sent() {
    let sb = start(plan_world()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_toml(&sb)).unwrap();
    let journal = dir.path().join("j.sqlite");
    let with = |args: &[&str]| {
        let mut v = s(args);
        v.extend(s(&["--config", &p(&config), "--journal", &p(&journal)]));
        v
    };
    let once = with(&["run", "--once", "--format", "json"]);
    let (code, _, err) = run(once.clone(), env()).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        with(&["reject", "1", "--by", "bob", "--comment", "no"]),
        env(),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rejected by bob"), "{out}");
    let (code, out, err) = run(once, env()).await;
    assert_eq!(code, 0, "{err}");
    let cycle: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(cycle["outcome"], "rejected", "{out}");
    assert_eq!(sb.counts().cms_put, 0);
    let (_, history, _) = run(with(&["history"]), env()).await;
    assert!(
        history.contains("proposal 1 rejected by bob at "),
        "{history}"
    );
    sb.shutdown().await;
}
