//! The plan's safety rules through the binary: a move cap keeps the most
//! valuable optimisation moves and every safety move; a world where every
//! agent looks inactive (a Webex outage) gives a BLOCKED plan with its own
//! exit code instead of a plan that empties the dialer; absurd numbers are
//! errors, never a plan.

mod common;

use common::{p, run_async as run, s};
use rebalancer_model::{Action, Plan, Snapshot};
use std::path::{Path, PathBuf};

/// The world `plan --sandbox` plans, saved.
async fn sandbox_snapshot(dir: &Path) -> PathBuf {
    let snap = dir.join("snap.json");
    let (code, _, stderr) = run(s(&["fetch", "--sandbox", "--out", &p(&snap)]), vec![]).await;
    assert_eq!(code, 0, "{stderr}");
    snap
}

async fn plan_of(snap: &Path, out: &Path, env: Vec<(String, String)>) -> (Plan, String) {
    let (code, stdout, stderr) =
        run(s(&["plan", "--snapshot", &p(snap), "--out", &p(out)]), env).await;
    assert_eq!(code, 0, "{stderr}");
    (Plan::load(out).unwrap(), stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_of_ten_keeps_ten_optimisation_moves_and_every_safety_move() {
    let dir = tempfile::tempdir().unwrap();
    let snap = sandbox_snapshot(dir.path()).await;
    let (free, _) = plan_of(&snap, &dir.path().join("free.json"), vec![]).await;
    let (capped, stdout) = plan_of(
        &snap,
        &dir.path().join("capped.json"),
        vec![("REBALANCER_PLAN__MAX_MOVES_PER_RUN".into(), "10".into())],
    )
    .await;
    let optimisation = |p: &Plan| {
        p.changes
            .iter()
            .filter(|c| c.reason.is_optimisation())
            .count()
    };
    assert!(
        optimisation(&free) > 10,
        "the world needs more than 10 moves"
    );
    assert_eq!(optimisation(&capped), 10, "{stdout}");
    let safety = |p: &Plan| -> Vec<_> {
        p.changes
            .iter()
            .filter(|c| c.reason.is_safety())
            .cloned()
            .collect()
    };
    assert!(!safety(&free).is_empty());
    assert_eq!(
        safety(&capped),
        safety(&free),
        "a cap held back a safety move"
    );
    let o = &capped.objectives;
    assert!(
        o.after.shortfall < o.before.shortfall,
        "the 10 kept moves must buy shortfall: {} → {}",
        o.before.shortfall,
        o.after.shortfall
    );
    let deferred = optimisation(&free) - 10;
    assert!(
        stdout.contains(&format!("10 optimisation moves kept, {deferred} deferred")),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webex_outage_blocks_the_plan_instead_of_unassigning_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let snap_path = sandbox_snapshot(dir.path()).await;
    // What a fetch would see if Webex answered `[]`: nobody is known to
    // Webex, so everybody looks inactive.
    let mut snap = Snapshot::load(&snap_path).unwrap();
    for a in &mut snap.agents {
        a.webex = None;
    }
    let outage = dir.path().join("outage.json");
    snap.save(&outage).unwrap();
    let out = dir.path().join("plan.json");
    let (code, stdout, stderr) = run(
        s(&["plan", "--snapshot", &p(&outage), "--out", &p(&out)]),
        vec![],
    )
    .await;
    assert_eq!(code, 10, "a blocked plan has its own exit code: {stderr}");
    assert!(
        stdout.contains("BLOCKED") && stdout.contains("plan.max_unassign_share"),
        "{stdout}"
    );
    let plan = Plan::load(&out).unwrap();
    let blocked = plan.blocked.expect("the plan records that it is blocked");
    assert!(blocked.unassigns > blocked.current_pairs / 2, "{blocked:?}");
    assert_eq!(
        plan.changes
            .iter()
            .filter(|c| c.action == Action::Unassign)
            .count(),
        blocked.unassigns
    );
    // Raising the guard on purpose lets it through.
    let (code, _, stderr) = run(
        s(&["plan", "--snapshot", &p(&outage)]),
        vec![("REBALANCER_PLAN__MAX_UNASSIGN_SHARE".into(), "1.0".into())],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_numbers_are_errors_naming_the_value_never_a_plan() {
    let dir = tempfile::tempdir().unwrap();
    let snap = sandbox_snapshot(dir.path()).await;
    let lead = Snapshot::load(&snap)
        .unwrap()
        .leads()
        .next()
        .map(|(k, _)| k.to_string())
        .unwrap();
    let out = dir.path().join("never.json");
    let (code, stdout, stderr) = run(
        s(&[
            "plan",
            "--snapshot",
            &p(&snap),
            "--set-demand",
            &format!("{lead}=18446744073709551615"),
            "--out",
            &p(&out),
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("18446744073709551615") && stderr.contains("--set-demand"),
        "{stderr}"
    );
    assert!(stdout.is_empty() && !out.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_webex_user_list_fails_the_fetch_and_writes_nothing() {
    use rebalancer_sandbox::{FaultSpec, Faults, SandboxConfig};
    for empty_null in [false, true] {
        let sb = common::start(SandboxConfig {
            faults: Faults {
                webex: FaultSpec {
                    p_empty: 1.0,
                    empty_null,
                    ..FaultSpec::default()
                },
                ..Faults::default()
            },
            ..common::small_world(61)
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, common::config_toml(&sb)).unwrap();
        let out = dir.path().join("snap.json");
        let (code, stdout, stderr) = run(
            s(&["fetch", "--config", &p(&cfg), "--out", &p(&out)]),
            vec![],
        )
        .await;
        assert_eq!(
            code, 7,
            "an outage is 'unavailable' (null: {empty_null}): {stderr}"
        );
        assert!(
            stderr.contains("fetch.min_webex_coverage") && stdout.is_empty(),
            "{stderr}"
        );
        assert!(!out.exists(), "a failed fetch left a snapshot");
        sb.shutdown().await;
    }
}
