//! Plan admission through the binary: every write path (`apply --plan`,
//! `resume`, `rollback`) refuses, before any PUT, a plan that does not fit
//! the config it was given or the time (issue 16, findings #4, #9, #10,
//! #11), with the exit code README.md documents; `resume` without a run id
//! continues only the newest run and says which; `show` prints whatever a
//! journal holds without panicking. Two sandboxes are two systems.

mod common;

use common::world::{setup, wait_child, Setup};
use common::{config_toml, p, plan_world, run_async as run, s, start};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fast() -> Vec<(String, String)> {
    vec![("REBALANCER_APPLY__PUTS_PER_SECOND".into(), "100".into())]
}

impl Setup {
    /// `command` with `--config CONFIG --journal JOURNAL` after `args`.
    fn args(&self, args: &[&str], config: &Path) -> Vec<String> {
        let mut v = s(args);
        v.extend(s(&["--config", &p(config), "--journal", &p(&self.journal)]));
        v
    }

    /// `apply --plan PLAN` with `config`.
    fn apply(&self, plan: &Path, config: &Path) -> Vec<String> {
        self.args(&["apply", "--plan", &p(plan)], config)
    }

    /// The plan file with `edit` applied to its JSON, saved as `name`.
    fn edited(&self, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&self.plan_path).unwrap()).unwrap();
        edit(&mut v);
        let path = self.dir.path().join(name);
        std::fs::write(&path, v.to_string()).unwrap();
        path
    }

    /// A copy of A's config with `edit` applied to its text, saved as `name`.
    fn config_with(&self, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, edit(config_toml(&self.sb))).unwrap();
        path
    }

    /// Start `apply --plan PLAN` in the background at 4 PUT/s, wait until
    /// the sandbox has seen 3 PUTs, and stop it with SIGTERM (exit 11: the
    /// run is interrupted, to be resumed).
    async fn interrupted_apply(&self, plan: &Path) {
        let child = Command::new(env!("CARGO_BIN_EXE_rebalancer"))
            .args(self.apply(plan, &self.config))
            .env("REBALANCER_APPLY__PUTS_PER_SECOND", "4")
            .env("REBALANCER_APPLY__BURST", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        self.wait_for_puts(3).await;
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let (code, stdout, stderr) = wait_child(child).await;
        assert_eq!(code, 11, "{stderr}\n{stdout}");
        assert!(
            self.sb.write_log().len() < self.plan.leads.len(),
            "the apply finished before it was stopped"
        );
    }

    /// The journal's runs, newest first.
    async fn runs(&self) -> Vec<serde_json::Value> {
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
        let runs: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        runs.as_array().unwrap().clone()
    }
}

/// RFC 3339, `secs` seconds from now (negative: ago).
fn from_now(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// #4: an interrupted apply of A's plan, resumed with the config of another
/// CMS (B), or after its plan grew older than `apply.max_plan_age_secs`, is
/// refused (exit 15) with nothing sent to either system; so is a rollback
/// into B. With A's config and a fresh enough plan it finishes; a rollback
/// does not look at the plan's age.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_into_another_system_or_with_a_stale_plan_is_refused_before_any_put() {
    let t = setup().await;
    let other = start(plan_world()).await;
    let b = t.dir.path().join("b.toml");
    std::fs::write(&b, config_toml(&other)).unwrap();
    // Fetched 50 minutes ago: within the default hour.
    let older = t.edited("older.json", |v| {
        v["snapshot_fetched_at"] = from_now(-3000).into();
    });
    t.interrupted_apply(&older).await;
    let sent = t.sb.write_log().len();

    let (code, _, stderr) = run(t.args(&["resume"], &b), fast()).await;
    assert_eq!(code, 15, "resume into B: {stderr}");
    assert!(
        stderr.contains("was made for CMS") && stderr.contains(&other.base_url()),
        "{stderr}"
    );
    let (code, _, stderr) = run(t.args(&["rollback", "1", "--yes"], &b), fast()).await;
    assert_eq!(code, 15, "rollback into B: {stderr}");
    let mut stale = fast();
    stale.push(("REBALANCER_APPLY__MAX_PLAN_AGE_SECS".into(), "600".into()));
    let (code, _, stderr) = run(t.args(&["resume"], &t.config), stale.clone()).await;
    assert_eq!(code, 15, "a stale resume: {stderr}");
    assert!(stderr.contains("apply.max_plan_age_secs = 600"), "{stderr}");
    assert!(other.write_log().is_empty(), "B received PUTs of A's plan");
    assert_eq!(t.sb.write_log().len(), sent, "a refused resume wrote to A");
    assert_eq!(t.runs().await.len(), 1, "a refused resume recorded a run");

    // A's config, a plan within the limit: the run finishes.
    let (code, stdout, stderr) = run(t.args(&["resume"], &t.config), fast()).await;
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert!(stdout.contains("Resuming run 1 (apply"), "{stdout}");
    assert_eq!(t.live(), t.target());
    // A rollback does not look at the plan's age (it undoes journaled PUTs
    // against the live mapping).
    let (code, _, stderr) = run(t.args(&["rollback", "1", "--yes"], &t.config), stale).await;
    assert_eq!(code, 0, "a rollback of an old run: {stderr}");
    assert!(other.write_log().is_empty());
    other.shutdown().await;
    t.sb.shutdown().await;
}

/// #4: `resume` without a run id continues only the newest run. Here the
/// interrupted run 1 was rolled back by run 2: resuming run 1 would apply
/// again what the rollback undid, so `resume` refuses, naming run 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_without_a_run_id_never_walks_back_past_a_newer_run() {
    let t = setup().await;
    t.interrupted_apply(&t.plan_path).await;
    let (code, _, stderr) = run(t.args(&["rollback", "1", "--yes"], &t.config), fast()).await;
    assert_eq!(code, 0, "{stderr}");
    let undone = t.sb.write_log().len();
    let (code, stdout, stderr) = run(t.args(&["resume"], &t.config), fast()).await;
    assert_eq!(code, 4, "{stderr}\n{stdout}");
    assert!(
        stderr.contains("nothing to resume")
            && stderr.contains("latest run, 2 (rollback)")
            && stderr.contains("to resume run 1 all the same: `rebalancer resume 1 --config"),
        "{stderr}"
    );
    assert_eq!(t.sb.write_log().len(), undone, "resume re-applied run 1");
    assert_eq!(t.runs().await.len(), 2);
    // The command it names runs as printed, and resumes run 1.
    let hint = stderr
        .split_once("all the same: `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(cmd, _)| cmd.to_owned())
        .unwrap();
    let words = shlex::split(&hint).unwrap();
    assert_eq!(words[..3], ["rebalancer", "resume", "1"], "{hint}");
    let (code, _, stderr) = run(words[1..].to_vec(), fast()).await;
    assert_eq!(code, 0, "`{hint}`: {stderr}");
    assert_eq!(t.runs().await.len(), 3, "run 1 was resumed by name");
    t.sb.shutdown().await;
}

/// #9: the config digest covers `[[cms.campaigns]]`. A config that no
/// longer lists one of the plan's campaigns (or one of its leads) refuses
/// the plan, naming the campaign; a plan made over fewer campaigns than
/// the config now lists is refused as made under other rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_whose_campaigns_differ_from_the_plans_refuses_it() {
    let t = setup().await;
    let world = t.sb.world();
    let dropped = world.campaigns.last().unwrap().clone();
    let table = |c: &rebalancer_sandbox::CampaignInfo| {
        let leads: Vec<String> = c.lead_ids.iter().map(u64::to_string).collect();
        format!(
            "[[cms.campaigns]]\nprocess_id = {}\ncampaign_id = {}\nlead_ids = [{}]\n\n",
            c.process_id,
            c.campaign_id,
            leads.join(", ")
        )
    };
    assert!(config_toml(&t.sb).contains(&table(&dropped)));
    let fewer = t.config_with("fewer.toml", |c| c.replace(&table(&dropped), ""));
    let (code, _, stderr) = run(t.apply(&t.plan_path, &fewer), fast()).await;
    assert_eq!(code, 15, "{stderr}");
    assert!(
        stderr.contains(&format!("campaign {}", dropped.campaign_id))
            && stderr.contains("[[cms.campaigns]]"),
        "{stderr}"
    );
    // One lead fewer in a campaign.
    let mut shorter = dropped.clone();
    let gone = shorter.lead_ids.pop().unwrap();
    assert!(!shorter.lead_ids.is_empty(), "the campaign has two leads");
    let one_lead_fewer = t.config_with("lead.toml", |c| {
        c.replace(&table(&dropped), &table(&shorter))
    });
    let (code, _, stderr) = run(t.apply(&t.plan_path, &one_lead_fewer), fast()).await;
    assert_eq!(code, 15, "{stderr}");
    assert!(
        stderr.contains(&format!("{}/{gone}", dropped.campaign_id)),
        "{stderr}"
    );
    // A plan made over fewer campaigns, applied with the full config.
    let narrow = t.dir.path().join("narrow.json");
    let (code, _, stderr) = run(
        s(&["plan", "--config", &p(&fewer), "--out", &p(&narrow)]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run(t.apply(&narrow, &t.config), fast()).await;
    assert_eq!(code, 15, "{stderr}");
    assert!(stderr.contains("[[cms.campaigns]]"), "{stderr}");
    assert!(t.sb.write_log().is_empty(), "a refused plan was written");
    // Its own config applies it.
    let (code, _, stderr) = run(t.apply(&narrow, &fewer), fast()).await;
    assert_eq!(code, 0, "{stderr}");
    t.sb.shutdown().await;
}

/// #10: a plan whose snapshot is dated in the future is refused (exit 15),
/// beyond the clock-skew tolerance of 5 minutes; within it, it applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_dated_in_the_future_is_refused() {
    let t = setup().await;
    let future = t.edited("future.json", |v| {
        v["snapshot_fetched_at"] = from_now(3600).into();
    });
    let (code, _, stderr) = run(t.apply(&future, &t.config), fast()).await;
    assert_eq!(code, 15, "{stderr}");
    assert!(
        stderr.contains("ahead of this host's clock") && stderr.contains("NTP"),
        "{stderr}"
    );
    assert!(t.sb.write_log().is_empty(), "a future plan was written");
    let skewed = t.edited("skewed.json", |v| {
        v["snapshot_fetched_at"] = from_now(120).into();
    });
    let (code, _, stderr) = run(t.apply(&skewed, &t.config), fast()).await;
    assert_eq!(code, 0, "two minutes of skew are tolerated: {stderr}");
    assert_eq!(t.live(), t.target());
    t.sb.shutdown().await;
}

/// #11: a plan whose hashes are not SHA-256 hex is refused (exit 4, naming
/// the field), and `show` / `history` print a journal that holds such a
/// hash (written by an older version) instead of panicking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_hashes_are_refused_and_show_prints_any_journal() {
    let t = setup().await;
    for (field, value) in [
        (
            "snapshot_hash",
            format!("{}é{}", "a".repeat(11), "b".repeat(51)),
        ),
        ("config_digest", "not a digest".to_owned()),
    ] {
        let bad = t.edited("bad.json", |v| v[field] = value.clone().into());
        let (code, _, stderr) = run(t.apply(&bad, &t.config), fast()).await;
        assert_eq!(code, 4, "{field}: {stderr}");
        assert!(stderr.contains(field), "{stderr}");
    }
    assert!(t.sb.write_log().is_empty(), "a malformed plan was written");
    let (code, _, stderr) = run(t.apply(&t.plan_path, &t.config), fast()).await;
    assert_eq!(code, 0, "{stderr}");
    // What an older version let into the journal.
    let db = rusqlite::Connection::open(&t.journal).unwrap();
    let hash = format!("{}é{}", "a".repeat(11), "b".repeat(51));
    db.execute(
        "UPDATE runs SET snapshot_hash = ?1, config_digest = ?2, holder = ?3",
        rusqlite::params![hash, "日本語のダイジェスト", "host\u{1b}[2J:1"],
    )
    .unwrap();
    drop(db);
    let journal = p(&t.journal);
    let (code, stdout, stderr) = run(s(&["show", "1", "--journal", &journal]), vec![]).await;
    assert_eq!(code, 0, "show: {stderr}");
    assert!(
        stdout.contains("aaaaaaaaaaaé") && !stdout.contains('\u{1b}'),
        "{stdout}"
    );
    for args in [
        s(&["show", "1", "--journal", &journal, "--format", "json"]),
        s(&["history", "--journal", &journal]),
    ] {
        let (code, _, stderr) = run(args.clone(), vec![]).await;
        assert_eq!(code, 0, "{args:?}: {stderr}");
    }
    t.sb.shutdown().await;
}
