//! A `journal.url` whose password holds `/` and `+` (issue 16, #5) is never
//! printed by `check`, `history`, `apply` or `run`: not on the error path
//! (an unreachable server, exit 8), and, where PostgreSQL is installed, not
//! in `history`'s header, `check`'s journal row or `apply`'s summary.
//! Every one of them shows `rebalancer:****@host`.

mod common;

use common::{config_toml, p, run_async as run, s, small_world, start};
use rebalancer_testkit::pg;

/// The password of the report: raw in the URL, `/` and `+` in it.
const PASSWORD: &str = "Zx9/Kq+secret";

fn url(port: u16, database: &str) -> String {
    format!("postgres://rebalancer:{PASSWORD}@127.0.0.1:{port}/{database}")
}

/// Neither the password nor any recognisable part or encoding of it shows,
/// and the URL is shown masked.
fn masked(what: &str, output: &str) {
    for part in [PASSWORD, "Kq+secret", "Zx9", "Zx9%2FKq%2Bsecret", "secret@"] {
        assert!(
            !output.contains(part),
            "{what} printed {part:?} of the password: {output}"
        );
    }
    assert!(
        output.contains("rebalancer:****@127.0.0.1"),
        "{what} does not show the masked URL: {output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_journal_url_never_prints_its_password() {
    let sb = start(small_world(16)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_toml(&sb)).unwrap();
    let (_held, port) = common::refused_port();
    let env = vec![(
        "REBALANCER_JOURNAL__URL".to_string(),
        url(port, "rebalancer"),
    )];
    let cfg = p(&config);

    let (code, stdout, stderr) = run(s(&["check", "--config", &cfg]), env.clone()).await;
    assert_eq!(code, 14, "{stdout}{stderr}");
    masked("check", &format!("{stdout}{stderr}"));
    let (code, stdout, stderr) = run(
        s(&["check", "--config", &cfg, "--format", "json"]),
        env.clone(),
    )
    .await;
    assert_eq!(code, 14, "{stdout}{stderr}");
    masked("check --format json", &format!("{stdout}{stderr}"));

    for args in [
        vec!["history", "--config", &cfg],
        vec!["apply", "--config", &cfg, "--yes"],
        vec!["run", "--once", "--config", &cfg],
    ] {
        let (code, stdout, stderr) = run(s(&args), env.clone()).await;
        assert_eq!(code, 8, "{args:?}: {stdout}{stderr}");
        masked(&format!("{args:?}"), &format!("{stdout}{stderr}"));
    }
    assert!(sb.write_log().is_empty(), "nothing may be written");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reachable_journal_url_is_shown_masked_by_history_check_and_apply() {
    let Some(server) = pg::start() else {
        return;
    };
    // Make the database through the harness, then name it with the
    // password of the report (the server trusts any password).
    let database = server.database();
    let name = database.rsplit('/').next().unwrap();
    let env = vec![(
        "REBALANCER_JOURNAL__URL".to_string(),
        url(server.port(), name),
    )];
    let sb = start(small_world(16)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_toml(&sb)).unwrap();
    let cfg = p(&config);

    let (code, stdout, stderr) = run(s(&["history", "--config", &cfg]), env.clone()).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    masked("history (empty)", &format!("{stdout}{stderr}"));

    let (code, stdout, stderr) = run(s(&["check", "--config", &cfg]), env.clone()).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    masked("check", &format!("{stdout}{stderr}"));

    let (code, stdout, stderr) = run(s(&["apply", "--config", &cfg, "--yes"]), env.clone()).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    masked("apply's summary", &format!("{stdout}{stderr}"));

    let (code, stdout, stderr) = run(s(&["history", "--config", &cfg]), env.clone()).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Runs in"), "{stdout}");
    masked("history", &format!("{stdout}{stderr}"));
    sb.shutdown().await;
}
