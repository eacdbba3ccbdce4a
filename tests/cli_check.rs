//! `rebalancer check` through the binary against an in-process sandbox:
//! every component OK exits 0; a wrong CMS password, a Zoho refresh token
//! without the assignment-threshold scope and a journal directory that
//! cannot be written each fail their row with the fix, exit 14, and never
//! print a secret.

mod common;

use common::{config_toml, p, run_async as run, s, small_world, start};
use rebalancer_sandbox::Sandbox;
use serde_json::Value;
use std::path::Path;

/// Runs `check --format json` and returns (exit code, the parsed rows by
/// component, stdout + stderr).
async fn check(config: &Path, journal: &Path, env: Vec<(String, String)>) -> (i32, Value, String) {
    let args = s(&[
        "check",
        "--config",
        &p(config),
        "--journal",
        &p(journal),
        "--format",
        "json",
    ]);
    let (code, stdout, stderr) = run(args, env).await;
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (code, json, format!("{stdout}\n{stderr}"))
}

fn row<'a>(json: &'a Value, component: &str) -> &'a Value {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["component"] == component)
        .unwrap_or_else(|| panic!("no {component} row in {json}"))
}

fn no_secrets(sb: &Sandbox, output: &str) {
    let c = sb.credentials();
    for secret in [
        &c.cms_password,
        &c.webex_api_key,
        &c.zoho_client_secret,
        &c.zoho_refresh_token,
    ] {
        assert!(
            !output.contains(secret.as_str()),
            "a secret leaked: {output}"
        );
    }
    assert!(!output.contains("wrong-password-7e1"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_fails_with_fixes_and_prints_no_secret() {
    let sb = start(small_world(61)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_toml(&sb)).unwrap();
    let journal = dir.path().join("journal.sqlite");

    // Everything reachable and accepted.
    let (code, json, out) = check(&config, &journal, vec![]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(json["ok"], true);
    for component in ["cms", "webex", "zoho", "journal"] {
        let r = row(&json, component);
        assert_eq!(r["ok"], true, "{r}");
        assert!(r["fix"].is_null(), "{r}");
    }
    assert!(row(&json, "zoho")["result"]
        .as_str()
        .unwrap()
        .contains("token granted"));
    no_secrets(&sb, &out);
    // The table says the same.
    let (code, table, _) = run(
        s(&["check", "--config", &p(&config), "--journal", &p(&journal)]),
        vec![],
    )
    .await;
    assert_eq!(code, 0);
    assert!(table.contains("All 4 checks passed."), "{table}");
    // The check leaves nothing behind in the journal's directory.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the config: {left:?}");

    // A wrong CMS password: the CMS row fails and names the key.
    let env = vec![(
        "REBALANCER_CMS__PASSWORD".to_owned(),
        "wrong-password-7e1".to_owned(),
    )];
    let (code, json, out) = check(&config, &journal, env).await;
    assert_eq!(code, 14, "{out}");
    assert_eq!(json["ok"], false);
    let cms = row(&json, "cms");
    assert_eq!(cms["ok"], false);
    assert!(
        cms["fix"].as_str().unwrap().contains("cms.password"),
        "{cms}"
    );
    assert!(cms["result"].as_str().unwrap().contains("401"), "{cms}");
    for component in ["webex", "zoho", "journal"] {
        assert_eq!(row(&json, component)["ok"], true);
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("error: check found a failing component: cms")),
        "{out}"
    );
    no_secrets(&sb, &out);

    // A refresh token without the assignment-threshold scope.
    sb.set_zoho_scope_granted(false);
    let (code, json, out) = check(&config, &journal, vec![]).await;
    assert_eq!(code, 14, "{out}");
    let zoho = row(&json, "zoho");
    assert_eq!(zoho["ok"], false);
    assert!(
        zoho["result"]
            .as_str()
            .unwrap()
            .contains("OAUTH_SCOPE_MISMATCH"),
        "{zoho}"
    );
    assert!(
        zoho["fix"]
            .as_str()
            .unwrap()
            .contains("ZohoCRM.settings.assignment_thresholds.READ"),
        "{zoho}"
    );
    assert_eq!(row(&json, "cms")["ok"], true);
    no_secrets(&sb, &out);
    sb.set_zoho_scope_granted(true);

    // A journal whose directory cannot be written: here a path under a
    // regular file (as root, permissions alone would not stop the write).
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let (code, json, out) = check(&config, &file.join("journal.sqlite"), vec![]).await;
    assert_eq!(code, 14, "{out}");
    let j = row(&json, "journal");
    assert_eq!(j["ok"], false);
    assert!(j["fix"].as_str().unwrap().contains("apply.journal"), "{j}");
    for component in ["cms", "webex", "zoho"] {
        assert_eq!(row(&json, component)["ok"], true);
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_needs_a_config() {
    let (code, _, stderr) = run(s(&["check"]), vec![]).await;
    assert_eq!(code, 2, "{stderr}");
}

/// A CMS that refuses connections is reported after one attempt, not after
/// `http.max_retries` backoffs (the config asks for 2 retries), and the
/// table's long cells wrap to 100 columns off a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_port_is_reported_at_once_in_a_table_that_fits() {
    let sb = start(small_world(3)).await;
    let (_held, port) = common::refused_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let text = config_toml(&sb).replacen(
        &format!("base_url = \"{}/\"", sb.base_url()),
        &format!("base_url = \"http://127.0.0.1:{port}/\""),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let journal = dir.path().join("journal.sqlite");
    let (code, table, stderr) = run(
        s(&[
            "check",
            "--config",
            &p(&config),
            "--journal",
            &p(&journal),
            "--log",
            "rebalancer_upstream=debug",
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 14, "{table}\n{stderr}");
    assert!(table.contains("1 of 4 checks failed."), "{table}");
    let attempts = stderr
        .lines()
        .filter(|l| l.contains("failed before a response") && l.contains("api=CMS"))
        .count();
    assert_eq!(attempts, 1, "one attempt at the refused CMS:\n{stderr}");
    assert!(!stderr.contains("retrying upstream request"), "{stderr}");
    let widest = table.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= 100, "{widest} columns:\n{table}");
    sb.shutdown().await;
}
