//! The `rebalancer` binary end to end: `fetch` against a sandbox the test
//! starts, secrets never in any output, bad configuration refused with a
//! named key and a distinct exit code, and no partial snapshot left behind.

mod common;

use common::{config_toml, run_async as run, s, small_world, start};
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_output() {
    let sb = start(small_world(21)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "c.toml", &config_toml(&sb));
    let out = dir.path().join("snap.json");
    let (code, stdout, stderr) = run(
        s(&[
            "fetch",
            "--config",
            &cfg,
            "--out",
            out.to_str().unwrap(),
            "--log",
            "trace",
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("Wrote the snapshot to {}.", out.display())),
        "the summary says where the snapshot went:\n{stdout}"
    );
    assert!(
        stderr.contains("DEBUG") || stderr.contains("TRACE"),
        "debug logs were on"
    );
    let snapshot = std::fs::read_to_string(&out).unwrap();
    let c = sb.credentials().clone();
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.cms_username, c.cms_password))
    };
    for secret in [
        &c.cms_password,
        &c.webex_api_key,
        &c.zoho_client_secret,
        &c.zoho_refresh_token,
        &basic,
    ] {
        for (name, text) in [
            ("stdout", &stdout),
            ("stderr", &stderr),
            ("snapshot", &snapshot),
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into {name}"
            );
        }
    }
    // Zoho access tokens the sandbox issued never show either.
    assert!(
        !stderr.contains("1000."),
        "an access token leaked into the logs"
    );
    // An error path too: a wrong password must not be echoed.
    let (code, stdout, stderr) = run(
        s(&["fetch", "--config", &cfg, "--log", "debug"]),
        vec![("REBALANCER_CMS__PASSWORD".into(), "wrong-pass-8812".into())],
    )
    .await;
    assert_eq!(code, 5, "{stderr}");
    assert!(!stdout.contains("wrong-pass-8812") && !stderr.contains("wrong-pass-8812"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_writes_a_loadable_snapshot_and_summary() {
    let sb = start(small_world(22)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "c.toml", &config_toml(&sb));
    let out = dir.path().join("snap.json");
    let (code, stdout, stderr) = run(
        s(&["fetch", "--config", &cfg, "--out", out.to_str().unwrap()]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    for label in [
        "campaigns",
        "leads",
        "agents",
        "inactive",
        "at their Zoho allowance",
        "unjoined",
        "HTTP requests",
        "time",
    ] {
        assert!(stdout.contains(label), "summary lacks {label}:\n{stdout}");
    }
    let snap = rebalancer_model::Snapshot::load(&out).unwrap();
    let configured: usize = sb.world().campaigns.iter().map(|c| c.lead_ids.len()).sum();
    assert_eq!(snap.leads().count(), configured);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_overrides_the_file() {
    let sb = start(small_world(23)).await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_toml(&sb).replace(&sb.credentials().cms_password, "placeholder");
    let cfg = write(dir.path(), "c.toml", &text);
    let (code, _, stderr) = run(s(&["fetch", "--config", &cfg]), vec![]).await;
    assert_eq!(code, 5, "the file's password is wrong: {stderr}");
    let (code, _, stderr) = run(
        s(&["fetch", "--config", &cfg]),
        vec![(
            "REBALANCER_CMS__PASSWORD".into(),
            sb.credentials().cms_password.clone(),
        )],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_names_the_key_and_leaves_no_file() {
    let sb = start(small_world(24)).await;
    let dir = tempfile::tempdir().unwrap();
    let good = config_toml(&sb);
    let out = dir.path().join("never.json");
    let out_s = out.to_str().unwrap().to_owned();
    let pw_line = format!("password = \"{}\"\n", sb.credentials().cms_password);
    let cases: Vec<(&str, String, i32, &str)> = vec![
        ("missing key", good.replace(&pw_line, ""), 3, "cms.password"),
        (
            "wrong type",
            good.replace("page_size = 7", "page_size = \"seven\""),
            3,
            "page_size",
        ),
        (
            "unknown key",
            good.replace("page_size = 7", "page_size = 7\npage_sise = 7"),
            3,
            "page_sise",
        ),
        (
            "bad url",
            good.replacen(
                &format!("base_url = \"{}/\"", sb.base_url()),
                "base_url = \"cms.local\"",
                1,
            ),
            3,
            "cms.base_url",
        ),
        (
            "no thresholds",
            good.replace("threshold_ids = [", "threshold_ids = []\n# ["),
            3,
            "zoho.threshold_ids",
        ),
        (
            "unknown campaign",
            good.replacen("campaign_id = ", "campaign_id = 9", 1),
            6,
            "unknown to the CMS",
        ),
        (
            "unreachable url",
            good.replacen(
                &format!("base_url = \"{}/\"", sb.base_url()),
                "base_url = \"http://127.0.0.1:9\"",
                1,
            ),
            7,
            "127.0.0.1:9",
        ),
        ("not toml", "this is = = not toml".into(), 3, "c.toml"),
    ];
    for (name, text, want_code, want_text) in cases {
        let cfg = write(dir.path(), "c.toml", &text);
        let (code, _, stderr) = run(s(&["fetch", "--config", &cfg, "--out", &out_s]), vec![]).await;
        assert_eq!(code, want_code, "{name}: {stderr}");
        assert!(
            stderr.contains(want_text),
            "{name}: stderr does not name {want_text}:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(!out.exists(), "{name}: a snapshot was left behind");
    }
    let (code, _, stderr) = run(s(&["fetch", "--config", "/nonexistent/c.toml"]), vec![]).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("/nonexistent/c.toml"));
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 1, "only the config file remains: {files:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sandbox_needs_no_config() {
    let (code, stdout, stderr) = run(
        s(&["fetch", "--sandbox", "--agents", "80", "--leads", "10"]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    // The table's rows carry the world's figures, not just their labels.
    let row = |label: &str| -> String {
        let line = stdout
            .lines()
            .find(|l| {
                l.split('┆')
                    .next()
                    .is_some_and(|c| c.trim_start_matches('│').trim() == label)
            })
            .unwrap_or_else(|| panic!("no `{label}` row:\n{stdout}"));
        line.split('┆')
            .nth(1)
            .unwrap()
            .trim_end_matches('│')
            .trim()
            .to_owned()
    };
    assert_eq!(row("leads"), "10");
    assert_eq!(row("leads not found (404)"), "0");
    let agents: usize = row("agents (in CMS pools)").parse().unwrap();
    assert!(
        (70..=90).contains(&agents),
        "{agents} agents for --agents 80"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let (code, _, stderr) = run(s(&["fetch"]), vec![]).await;
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = run(s(&["fetch", "--sandbox", "--agents", "many"]), vec![]).await;
    assert_eq!(code, 2);
}
