//! Issue 16, #16, through the binary against an in-process sandbox: with 3 %
//! of the CMS GETs answered by a 200 whose body is truncated JSON or a
//! proxy's HTML page, `fetch` and `apply` retry those reads (a GET is
//! idempotent) and finish: exit 0, the fetch summary counts the malformed
//! bodies retried, and the CMS ends exactly at the plan's target.

mod common;

use common::{config_toml, http_get, p, plan_world, run_async as run, s, start};
use rebalancer_model::Plan;
use rebalancer_sandbox::{FaultSpec, Faults};
use std::collections::{BTreeMap, BTreeSet};

/// 3 % of CMS GETs: half truncated JSON, half an HTML page.
fn three_percent_malformed() -> Faults {
    Faults {
        cms_get: FaultSpec {
            p_malformed: 0.015,
            p_html: 0.015,
            ..FaultSpec::default()
        },
        ..Faults::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_under_3_percent_malformed_get_bodies_reaches_the_plan() {
    let sb = start(plan_world()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    // config_toml's two retries, and four: either way 3 % cannot last.
    std::fs::write(
        &config,
        config_toml(&sb).replace("max_retries = 2", "max_retries = 4"),
    )
    .unwrap();
    let plan_path = dir.path().join("plan.json");
    let journal = dir.path().join("journal.sqlite");
    let (code, _, stderr) = run(
        s(&["plan", "--config", &p(&config), "--out", &p(&plan_path)]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let plan = Plan::load(&plan_path).unwrap();
    assert!(plan.changes.len() > 20, "the world needs changes");

    sb.set_faults(three_percent_malformed());

    // `apply --config`: fetch, plan and apply in one go, every CMS read
    // under the faults. The world is the one planned above, so the plan
    // made now is that plan.
    let (code, stdout, stderr) = run(
        s(&[
            "apply",
            "--config",
            &p(&config),
            "--journal",
            &p(&journal),
            "--yes",
        ]),
        vec![("REBALANCER_APPLY__PUTS_PER_SECOND".into(), "200".into())],
    )
    .await;
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert!(
        stderr.contains("upstream request succeeded after")
            && stderr.contains("response could not be understood"),
        "the apply met no malformed body: the test proves nothing: {stderr}"
    );
    let puts = sb.write_log().len();
    assert!(puts > 0, "nothing was applied");

    let live: BTreeMap<String, BTreeSet<String>> = plan
        .leads
        .iter()
        .map(|l| {
            let (assigned, _) = sb
                .mapping(l.lead.campaign_id, l.lead.lead_id)
                .expect("the sandbox knows the plan's leads");
            (l.lead.to_string(), assigned.into_iter().collect())
        })
        .collect();
    let target: BTreeMap<String, BTreeSet<String>> = plan
        .leads
        .iter()
        .map(|l| {
            (
                l.lead.to_string(),
                l.target.iter().map(|a| a.0.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(live, target, "the CMS does not hold the plan's target");

    // The reviewed plan, applied under the same faults, finds every lead at
    // its target and sends nothing.
    let (code, stdout, stderr) = run(
        s(&[
            "apply",
            "--plan",
            &p(&plan_path),
            "--config",
            &p(&config),
            "--journal",
            &p(&journal),
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert_eq!(sb.write_log().len(), puts, "a second apply wrote again");

    // A fetch reads every lead (page size 7: several GETs per lead) and
    // says how many malformed bodies it read again.
    let (code, stdout, stderr) = run(
        s(&["fetch", "--config", &p(&config), "--format", "json"]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON summary");
    let malformed = summary["malformed_retried"].as_u64().expect("counted");
    assert!(
        malformed > 0,
        "no malformed body was served: the test proves nothing ({} GETs)",
        summary["cms_gets"]
    );
    assert!(summary["retries"].as_u64().unwrap() >= malformed);

    sb.shutdown().await;
}

/// `GET path` over plain HTTP/1.0: the body.
/// A `run` cycle under the same faults succeeds and its reads of malformed
/// bodies show in `/metrics` as `rebalancer_malformed_bodies_retried_total`.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cycle_counts_malformed_bodies_in_its_metrics() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let sb = start(plan_world()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        config_toml(&sb).replace("max_retries = 2", "max_retries = 4"),
    )
    .unwrap();
    sb.set_faults(three_percent_malformed());
    let mut child = Command::new(env!("CARGO_BIN_EXE_rebalancer"))
        .args(["run", "--every", "1h", "--format", "json", "--config"])
        .arg(&config)
        .arg("--journal")
        .arg(dir.path().join("journal.sqlite"))
        // Port 0: the address it bound is read back from its log.
        .env("REBALANCER_RUN__METRICS_ADDR", "127.0.0.1:0")
        .env("REBALANCER_APPLY__PUTS_PER_SECOND", "200")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let addr = common::metrics_addr_from(child.stderr.take().unwrap());
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first: serde_json::Value = serde_json::from_str(
        &lines
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("a cycle within two minutes"),
    )
    .expect("a JSON cycle line");
    let (_, metrics) = http_get(&addr, "/metrics");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert_eq!(first["outcome"], "applied", "{first}");
    let counted: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rebalancer_malformed_bodies_retried_total "))
        .unwrap_or_else(|| panic!("no malformed-bodies counter in /metrics:\n{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(counted > 0.0, "{metrics}");
    sb.shutdown().await;
}
