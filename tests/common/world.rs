//! A sandbox with a reviewed plan of it, for the tests that apply through
//! the binary (`cli_apply.rs`, `cli_admission.rs`): the sandbox, its
//! config, the plan, a journal path, and what the sandbox's write log says
//! (live mappings, each effective change and how often it was made).

use super::{config_toml, p, plan_world, run_async as run, s, start};
use rebalancer_model::Plan;
use rebalancer_sandbox::Sandbox;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A sandbox, its config, a reviewed plan of it and a journal path.
pub struct Setup {
    pub sb: Sandbox,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub plan_path: PathBuf,
    pub plan: Plan,
    pub journal: PathBuf,
}

pub async fn setup() -> Setup {
    let sb = start(plan_world()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_toml(&sb)).unwrap();
    let plan_path = dir.path().join("plan.json");
    let (code, _, stderr) = run(
        s(&["plan", "--config", &p(&config), "--out", &p(&plan_path)]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let plan = Plan::load(&plan_path).unwrap();
    assert!(plan.changes.len() > 20, "the world needs changes");
    let journal = dir.path().join("journal.sqlite");
    Setup {
        sb,
        dir,
        config,
        plan_path,
        plan,
        journal,
    }
}

impl Setup {
    pub fn apply_args(&self) -> Vec<String> {
        s(&[
            "apply",
            "--plan",
            &p(&self.plan_path),
            "--config",
            &p(&self.config),
            "--journal",
            &p(&self.journal),
        ])
    }

    /// Every lead's assigned users in the sandbox now.
    pub fn live(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.plan
            .leads
            .iter()
            .map(|l| {
                let (assigned, _) = self
                    .sb
                    .mapping(l.lead.campaign_id, l.lead.lead_id)
                    .expect("the sandbox knows the plan's leads");
                (l.lead.to_string(), assigned.into_iter().collect())
            })
            .collect()
    }

    pub fn target(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.plan
            .leads
            .iter()
            .map(|l| {
                (
                    l.lead.to_string(),
                    l.target.iter().map(|a| a.0.to_string()).collect(),
                )
            })
            .collect()
    }

    pub fn original(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.plan
            .leads
            .iter()
            .map(|l| {
                (
                    l.lead.to_string(),
                    l.current.iter().map(|a| a.0.to_string()).collect(),
                )
            })
            .collect()
    }

    /// Start `apply` in the background at `rate` PUT/s.
    pub fn spawn_apply(&self, rate: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_rebalancer"))
            .args(self.apply_args())
            .env("REBALANCER_APPLY__PUTS_PER_SECOND", rate)
            .env("REBALANCER_APPLY__BURST", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts")
    }

    /// Wait until the sandbox has received at least `n` PUTs.
    pub async fn wait_for_puts(&self, n: usize) {
        for _ in 0..600 {
            if self.sb.write_log().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the sandbox never saw {n} PUTs");
    }

    /// Each (lead, user, assign/unassign) the sandbox applied, with how
    /// often it really changed the lead.
    pub fn effective_changes(&self) -> BTreeMap<(rebalancer_model::LeadKey, String, bool), usize> {
        let original = self
            .plan
            .leads
            .iter()
            .map(|l| (l.lead, l.current.iter().map(|a| a.0.to_string()).collect()))
            .collect();
        rebalancer_testkit::writes::effective_changes(&self.sb.write_log(), &original)
    }

    pub async fn history(&self) -> serde_json::Value {
        let (code, stdout, stderr) = run(
            s(&[
                "history",
                "--journal",
                &p(&self.journal),
                "--format",
                "json",
            ]),
            vec![],
        )
        .await;
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str(&stdout).expect("history --format json is JSON")
    }
}

pub async fn wait_child(child: Child) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}
