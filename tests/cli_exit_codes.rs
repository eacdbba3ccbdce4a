//! Every exit code of README.md's table (src/exit.rs `CODES`), produced
//! by the binary, in this file, for the cause the table names. Code 1 (an
//! internal error) is a bug by definition: nothing the user does should
//! produce it, so it has no case.
//!
//! [`PRODUCERS`] says which test here produces which codes; each test
//! checks the codes it saw against its entry, and
//! [`every_documented_exit_code_has_a_producer`] that the entries cover the
//! table.

mod common;

use common::world::{setup, wait_child};
use common::{config_toml, p, run_async as run, s, small_world, start};
use rebalancer_sandbox::{FaultSpec, Faults};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Each test of this file, and the exit codes it produces with the binary.
const PRODUCERS: &[(&str, &[i32])] = &[
    (
        "every_documented_exit_code_has_its_cause",
        &[0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14],
    ),
    ("the_apply_exit_codes_have_their_causes", &[11, 12, 13, 15]),
];

/// The codes [`PRODUCERS`] lists for `test`.
fn registered(test: &str) -> BTreeSet<i32> {
    let (_, codes) = PRODUCERS
        .iter()
        .find(|(name, _)| *name == test)
        .unwrap_or_else(|| panic!("{test} is not in PRODUCERS"));
    codes.iter().copied().collect()
}

// The names in PRODUCERS are this file's tests: this does not compile
// otherwise.
const _: [fn(); 2] = [
    every_documented_exit_code_has_its_cause,
    the_apply_exit_codes_have_their_causes,
];

/// The codes README.md's exit-code table lists.
fn readme_codes() -> BTreeSet<i32> {
    let readme = include_str!("../README.md");
    let table = readme
        .split("### Exit codes")
        .nth(1)
        .expect("README has an exit-code table");
    table
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_start_matches('|')
                .split('|')
                .next()
                .unwrap()
                .trim()
                .parse()
                .expect("a numeric code")
        })
        .collect()
}

/// (expected code, the cause, arguments, environment).
type Case<'a> = (i32, &'a str, Vec<String>, Vec<(String, String)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_exit_code_has_its_cause() {
    let sb = start(small_world(51)).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, config_toml(&sb)).unwrap();
    let snap = dir.path().join("snap.json");
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"schema_version\": 1, \"nope\": true}").unwrap();
    // A campaign the CMS does not know: every lead answers 404.
    let first_campaign = sb.world().campaigns[0].campaign_id;
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown,
        config_toml(&sb).replace(
            &format!("campaign_id = {first_campaign}\n"),
            "campaign_id = 987654\n",
        ),
    )
    .unwrap();
    // Nothing listens on port 9 of loopback.
    let unreachable = dir.path().join("unreachable.toml");
    std::fs::write(
        &unreachable,
        config_toml(&sb).replace(&sb.base_url(), "http://127.0.0.1:9"),
    )
    .unwrap();
    let no_dir = dir.path().join("no/such/dir/snap.json");
    let no_retries = || vec![("REBALANCER_HTTP__MAX_RETRIES".to_owned(), "0".to_owned())];

    let cases: Vec<Case> = vec![
        (
            0,
            "a fetch that works",
            s(&["fetch", "--config", &p(&good), "--out", &p(&snap)]),
            vec![],
        ),
        (
            2,
            "an unknown flag",
            s(&["fetch", "--sandbox", "--frobnicate"]),
            vec![],
        ),
        (
            3,
            "a config file that does not exist",
            s(&["fetch", "--config", &p(&dir.path().join("missing.toml"))]),
            vec![],
        ),
        (
            4,
            "a snapshot file that is not a snapshot",
            s(&["plan", "--snapshot", &p(&garbage)]),
            vec![],
        ),
        (
            5,
            "a wrong CMS password",
            s(&["fetch", "--config", &p(&good)]),
            vec![("REBALANCER_CMS__PASSWORD".into(), "wrong".into())],
        ),
        (
            6,
            "a campaign the CMS does not know",
            s(&["fetch", "--config", &p(&unknown)]),
            vec![],
        ),
        (
            7,
            "an upstream nobody listens for",
            s(&["fetch", "--config", &p(&unreachable)]),
            no_retries(),
        ),
        (
            8,
            "an output path that cannot be written",
            s(&["fetch", "--sandbox", "--out", &p(&no_dir)]),
            vec![],
        ),
        (
            14,
            "a check that finds a failing component",
            s(&[
                "check",
                "--config",
                &p(&good),
                "--journal",
                &p(&dir.path().join("journal.sqlite")),
            ]),
            vec![("REBALANCER_CMS__PASSWORD".into(), "wrong".into())],
        ),
    ];
    let mut seen = BTreeSet::new();
    for (want, cause, args, env) in cases {
        let (code, _, stderr) = run(args, env).await;
        assert_eq!(code, want, "{cause}: {stderr}");
        if want != 0 {
            assert!(
                stderr.lines().any(|l| l.starts_with("error: ")),
                "{cause}: {stderr}"
            );
        }
        seen.insert(code);
    }
    // The plan-level codes need a snapshot; they have their own cases.
    // (This small world's own plan unassigns 28 % of its pairs, so the
    // blast-radius guard is raised for it.)
    let (code, _, stderr) = run(
        s(&["plan", "--snapshot", &p(&snap), "--detailed-exitcode"]),
        vec![("REBALANCER_PLAN__MAX_UNASSIGN_SHARE".into(), "0.5".into())],
    )
    .await;
    assert_eq!(code, 2, "changes pending: {stderr}");
    seen.extend(plan_level_codes(dir.path(), &snap).await);
    assert_eq!(seen, registered("every_documented_exit_code_has_its_cause"));
    sb.shutdown().await;
}

#[test]
fn every_documented_exit_code_has_a_producer() {
    let produced: BTreeSet<i32> = PRODUCERS
        .iter()
        .flat_map(|(_, codes)| codes.iter().copied())
        .collect();
    let mut documented = readme_codes();
    assert!(documented.remove(&1), "README documents code 1");
    let missing: Vec<_> = documented.difference(&produced).collect();
    assert!(
        missing.is_empty(),
        "documented codes no test here produces: {missing:?}"
    );
    let unknown: Vec<_> = produced.difference(&documented).collect();
    assert!(unknown.is_empty(), "undocumented codes: {unknown:?}");
}

/// 10 (a blocked plan), from a saved snapshot in which Webex knows nobody;
/// 9 (the solver failed), from one whose agents each have room for almost
/// 10^12 records (the limit of one counter): the balance stage scales each
/// headroom by the numerator of the peak utilisation, which overflows 64
/// bits with the exact flow solver.
async fn plan_level_codes(dir: &Path, snap: &Path) -> BTreeSet<i32> {
    let mut snapshot = rebalancer_model::Snapshot::load(snap).unwrap();
    let original = snapshot.clone();
    for a in &mut snapshot.agents {
        a.webex = None;
    }
    let outage = dir.join("outage.json");
    snapshot.save(&outage).unwrap();
    let (blocked, _, stderr) = run(s(&["plan", "--snapshot", &p(&outage)]), vec![]).await;
    assert_eq!(blocked, 10, "a blocked plan: {stderr}");

    let mut snapshot = original;
    for (k, a) in snapshot.agents.iter_mut().enumerate() {
        for t in &mut a.thresholds {
            t.backlog_allow_count = 1_000_000_000_000 - 7 * k as i64 - 1;
            t.backlog_count = 0;
            t.record_allow_count = 1_000_000_000_000 - 3 * k as i64 - 2;
            t.record_assigned_count = 0;
        }
        a.derive();
    }
    let huge = dir.join("huge.json");
    snapshot.save(&huge).unwrap();
    let (solver, _, stderr) = run(
        s(&["plan", "--snapshot", &p(&huge)]),
        vec![
            ("REBALANCER_PLAN__DEMAND_SHARE".into(), "0.1".into()),
            ("REBALANCER_PLAN__MAX_UNASSIGN_SHARE".into(), "1".into()),
        ],
    )
    .await;
    assert_eq!(solver, 9, "the solver overflowed: {stderr}");
    assert!(stderr.contains("overflowed 64-bit"), "{stderr}");
    BTreeSet::from([blocked, solver])
}

/// 12 (a second apply while one holds the journal), 11 (SIGTERM mid-apply),
/// 13 (a resume whose PUTs the CMS refuses) and 15 (a plan too old for
/// `apply.max_plan_age_secs`), one after another on one world.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apply_exit_codes_have_their_causes() {
    let t = setup().await;
    let mut seen = BTreeSet::new();
    let first = t.spawn_apply("2");
    t.wait_for_puts(1).await;
    let (busy, _, stderr) = run(t.apply_args(), vec![]).await;
    assert_eq!(busy, 12, "a second apply: {stderr}");
    seen.insert(busy);

    let status = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (interrupted, stdout, stderr) = wait_child(first).await;
    assert_eq!(interrupted, 11, "SIGTERM mid-apply: {stderr}\n{stdout}");
    seen.insert(interrupted);

    let sent = t.sb.write_log().len();
    assert!(
        sent < t.plan.leads.len(),
        "the apply finished before SIGTERM"
    );
    let stopped = t.live();
    t.sb.set_faults(Faults {
        cms_put: FaultSpec {
            fail_first: 10_000,
            fail_status: 400,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let (incomplete, stdout, stderr) = run(
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
    assert_eq!(incomplete, 13, "refused PUTs: {stderr}\n{stdout}");
    assert!(t.sb.write_log().len() > sent, "resume sent nothing");
    assert_eq!(t.live(), stopped, "a refused PUT changed something");
    let sent = t.sb.write_log().len();
    seen.insert(incomplete);

    let mut stale: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&t.plan_path).unwrap()).unwrap();
    stale["snapshot_fetched_at"] = "2020-01-01T00:00:00Z".into();
    let stale_path = t.dir.path().join("stale.json");
    std::fs::write(&stale_path, stale.to_string()).unwrap();
    let (mismatch, _, stderr) = run(
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
    assert_eq!(mismatch, 15, "a plan too old: {stderr}");
    assert!(stderr.contains("apply.max_plan_age_secs"), "{stderr}");
    seen.insert(mismatch);
    assert_eq!(t.sb.write_log().len(), sent, "a refused apply wrote");
    assert_eq!(seen, registered("the_apply_exit_codes_have_their_causes"));
    t.sb.shutdown().await;
}
