//! `--log-format json` through the binary: every line on stderr is one JSON
//! object, `level` and `message` at the top level (not under `fields`),
//! fatal errors included (`error.chain`, `exit_code`), for a bad config
//! path, a missing snapshot, a bad flag value, an unknown flag, a bad log
//! filter and an upstream that refuses our credentials (the sandbox), the
//! chain being the text mode's `caused by:` lines; no progress bar on a
//! terminal; the text mode of the same failures is unchanged.

mod common;

use common::{config_toml, p, run_async as run, s, small_world, start};
use serde_json::Value;

/// Every stderr line, parsed; fails naming the line that is not JSON.
fn json_lines(stderr: &str) -> Vec<Value> {
    assert!(!stderr.trim().is_empty(), "nothing on stderr");
    stderr
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}\n{stderr}"));
            assert!(v.is_object(), "not an object: {line}");
            v
        })
        .collect()
}

/// Every line has a top-level `level`, `message`, `timestamp` and
/// `target`, and no `fields` nesting.
fn shaped(lines: &[Value]) {
    for v in lines {
        for key in ["level", "message", "timestamp", "target"] {
            assert!(v.get(key).is_some(), "no top-level `{key}`: {v}");
        }
        assert!(v.get("fields").is_none(), "nested fields: {v}");
    }
}

/// The one fatal-error object: the last line, ERROR, with its exit code
/// and a chain of causes.
fn fatal(lines: &[Value], code: i32) -> &Value {
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR", "{last}");
    assert_eq!(last["exit_code"], code, "{last}");
    assert!(last["error"]["chain"].is_array(), "{last}");
    assert!(
        !last["message"].as_str().unwrap().is_empty(),
        "empty message: {last}"
    );
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_path_is_one_json_error_with_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let (code, stdout, stderr) = run(
        s(&["check", "--config", &p(&missing), "--log-format", "json"]),
        vec![],
    )
    .await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let lines = json_lines(&stderr);
    shaped(&lines);
    let e = fatal(&lines, 3);
    let text = e.to_string();
    assert!(text.contains("nope.toml"), "the file is named: {e}");
    // The same failure as text is as before: `error: ...`, not JSON.
    let (code, _, text_err) = run(s(&["check", "--config", &p(&missing)]), vec![]).await;
    assert_eq!(code, 3);
    assert!(text_err.starts_with("error: "), "{text_err}");
    assert!(!text_err.contains('{'), "{text_err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_snapshot_is_one_json_error_as_the_text_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("snap.json");
    let (code, _, stderr) = run(
        s(&["--log-format", "json", "plan", "--snapshot", &p(&missing)]),
        vec![],
    )
    .await;
    assert_eq!(code, 4, "{stderr}");
    let lines = json_lines(&stderr);
    shaped(&lines);
    let e = fatal(&lines, 4);
    // The chain is what the text mode shows as `caused by:` lines.
    let (_, _, text) = run(s(&["plan", "--snapshot", &p(&missing)]), vec![]).await;
    let caused: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  caused by: "))
        .collect();
    let chain: Vec<&str> = e["error"]["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(chain, caused, "{e}\n{text}");
    assert_eq!(
        format!("error: {}", e["message"].as_str().unwrap()),
        text.lines().next().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_are_json_with_exit_code_2() {
    for args in [
        // A bad flag value, the format flag after the subcommand.
        s(&[
            "plan",
            "--sandbox",
            "--target-utilisation",
            "7",
            "--log-format",
            "json",
        ]),
        // An unknown flag, the format flag first, `=` form.
        s(&["--log-format=json", "plan", "--no-such-flag"]),
        // A --config on the command line still conflicts with --sandbox.
        s(&[
            "--log-format",
            "json",
            "plan",
            "--sandbox",
            "--config",
            "x.toml",
        ]),
    ] {
        let (code, stdout, stderr) = run(args.clone(), vec![]).await;
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        let lines = json_lines(&stderr);
        assert_eq!(lines.len(), 1, "{stderr}");
        shaped(&lines);
        let e = fatal(&lines, 2);
        let message = e["message"].as_str().unwrap();
        assert!(message.starts_with("error: "), "clap's message: {e}");
        assert!(message.contains("--help"), "{e}");
        assert!(!message.contains('\u{1b}'), "no colour codes: {e}");
    }
    // Text mode: clap's own text.
    let (code, _, stderr) = run(s(&["plan", "--no-such-flag"]), vec![]).await;
    assert_eq!(code, 2);
    assert!(stderr.starts_with("error: unexpected argument"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_log_filter_warns_in_json() {
    let (code, stdout, stderr) = run(
        s(&[
            "--log-format",
            "json",
            "--log",
            "rebalancer=[",
            "plan",
            "--sandbox",
            "--format",
            "json",
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with('{'), "the plan on stdout");
    let lines = json_lines(&stderr);
    shaped(&lines);
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN" && l["message"].as_str().unwrap().contains("log filter")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_lines_have_the_message_at_the_top_level() {
    let (code, _, stderr) = run(
        s(&["--log-format", "json", "-v", "fetch", "--sandbox"]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let lines = json_lines(&stderr);
    shaped(&lines);
    assert!(
        lines.iter().any(|l| l["level"] == "INFO"),
        "some info lines: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_json_lines_and_exit_5() {
    let sb = start(small_world(18)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let password = sb.credentials().cms_password.clone();
    let text = config_toml(&sb).replace(
        &format!("password = \"{password}\""),
        "password = \"wrong-password-18\"",
    );
    assert!(text.contains("wrong-password-18"));
    std::fs::write(&config, text).unwrap();
    let (code, stdout, stderr) = run(
        s(&[
            "fetch",
            "--config",
            &p(&config),
            "--log-format",
            "json",
            "-vv",
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 5, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let lines = json_lines(&stderr);
    shaped(&lines);
    let e = fatal(&lines, 5);
    assert!(!stderr.contains("wrong-password-18"), "a secret leaked");
    assert!(!stderr.contains(&password), "a secret leaked");
    // The causes, with the fix, as the text mode's `caused by:` lines.
    let chain = e["error"]["chain"].as_array().unwrap();
    let (code, _, text) = run(s(&["fetch", "--config", &p(&config)]), vec![]).await;
    assert_eq!(code, 5, "{text}");
    let caused = text
        .lines()
        .filter(|l| l.starts_with("  caused by: "))
        .count();
    assert_eq!(chain.len(), caused, "{e}\n{text}");
    let last = chain.last().unwrap().as_str().unwrap();
    assert!(
        last.contains("HTTP 401") && last.contains("fix: check cms.username"),
        "{e}"
    );
    assert_eq!(
        format!("error: {}", e["message"].as_str().unwrap()),
        text.lines().next().unwrap()
    );
    sb.shutdown().await;
}

/// On a terminal (a pty from util-linux `script`), text mode draws the
/// fetch's progress bar; JSON mode draws none: stderr stays JSON lines.
#[cfg(unix)]
#[test]
fn no_progress_bar_on_a_terminal_in_json_mode() {
    let bin = env!("CARGO_BIN_EXE_rebalancer");
    let on_a_pty = |args: &str| -> Option<String> {
        let out = std::process::Command::new("script")
            .args(["-qec", &format!("{bin} {args} >/dev/null"), "/dev/null"])
            .env_remove("RUST_LOG")
            .output()
            .ok()?;
        assert!(out.status.success(), "{args}: {out:?}");
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let Some(text) = on_a_pty("fetch --sandbox") else {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    assert!(
        text.contains("fetching: leads"),
        "the bar in text mode: {text:?}"
    );
    let json = on_a_pty("--log-format json -v fetch --sandbox").unwrap();
    assert!(!json.contains("fetching"), "a bar in JSON mode: {json:?}");
    let lines = json_lines(&json.replace("\r\n", "\n"));
    shaped(&lines);
}
