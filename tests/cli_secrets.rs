//! Secrets and config the way platforms deliver them, through the binary
//! (issue 18, item 4): every secret read from a file (`*_file` keys and
//! `REBALANCER_*_FILE` variables) against the sandbox; a secret file that
//! group or others can read warns; a key and its `_file` together, a
//! missing secret file, several missing keys and an empty variable are
//! each one config error (exit 3) that names everything at once. No
//! secret ever shows on stdout or stderr.

mod common;

use common::{config_toml, p, run_async as run, s, small_world, start};
use rebalancer_sandbox::Sandbox;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn e(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

/// The sandbox's four secrets, as (key, value).
fn secrets(sb: &Sandbox) -> [(&'static str, String); 4] {
    let c = sb.credentials();
    [
        ("cms.password", c.cms_password.clone()),
        ("webex.api_key", c.webex_api_key.clone()),
        ("zoho.client_secret", c.zoho_client_secret.clone()),
        ("zoho.refresh_token", c.zoho_refresh_token.clone()),
    ]
}

/// `config_toml(sb)` with no inline secret: every `password = `,
/// `api_key = `, `client_secret = ` and `refresh_token = ` line removed.
fn config_without_secrets(sb: &Sandbox) -> String {
    let text: String = config_toml(sb)
        .lines()
        .filter(|l| {
            ![
                "password =",
                "api_key =",
                "client_secret =",
                "refresh_token =",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    for (_, value) in secrets(sb) {
        assert!(!text.contains(&value), "the config still holds a secret");
    }
    text
}

/// Write `value` and a newline (as `echo` does) to `path` with `mode`.
fn secret_file(path: &Path, value: &str, mode: u32) {
    std::fs::write(path, format!("{value}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// No secret of the sandbox shows in `output`.
fn no_secret(sb: &Sandbox, what: &str, output: &str) {
    for (key, value) in secrets(sb) {
        assert!(
            !output.contains(&value),
            "{what} printed the value of {key}: {output}"
        );
    }
}

/// A config naming the CMS password and Webex key files (one relative to
/// the config's directory, one absolute), and the variables naming the two
/// Zoho files (absolute); all files mode `mode`. Returns the config and
/// the variables.
fn secrets_in_files(sb: &Sandbox, dir: &Path, mode: u32) -> (PathBuf, Vec<(String, String)>) {
    let [cms, webex, client_secret, refresh_token] = secrets(sb);
    std::fs::create_dir(dir.join("secrets")).unwrap();
    let path = |name: &str| dir.join("secrets").join(name);
    secret_file(&path("cms-password"), &cms.1, mode);
    secret_file(&path("webex-api-key"), &webex.1, mode);
    secret_file(&path("zoho-client-secret"), &client_secret.1, mode);
    secret_file(&path("zoho-refresh-token"), &refresh_token.1, mode);
    let text = config_without_secrets(sb)
        .replace(
            "[cms]\n",
            "[cms]\npassword_file = \"secrets/cms-password\"\n",
        )
        .replace(
            "[webex]\n",
            &format!(
                "[webex]\napi_key_file = \"{}\"\n",
                p(&path("webex-api-key"))
            ),
        );
    let config = dir.join("c.toml");
    std::fs::write(&config, text).unwrap();
    let vars = vec![
        e(
            "REBALANCER_ZOHO__CLIENT_SECRET_FILE",
            &p(&path("zoho-client-secret")),
        ),
        e(
            "REBALANCER_ZOHO__REFRESH_TOKEN_FILE",
            &p(&path("zoho-refresh-token")),
        ),
    ];
    (config, vars)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_whose_secrets_exist_only_in_files_succeeds_without_warning() {
    let sb = start(small_world(181)).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, vars) = secrets_in_files(&sb, dir.path(), 0o600);
    let out = dir.path().join("snap.json");
    let (code, stdout, stderr) = run(
        s(&["fetch", "--config", &p(&config), "--out", &p(&out)]),
        vars,
    )
    .await;
    assert_eq!(
        code, 0,
        "every upstream took the secrets read from files: {stderr}"
    );
    assert!(out.is_file(), "the snapshot was written");
    assert!(
        !stderr.contains("chmod"),
        "mode 0600 is not warned about: {stderr}"
    );
    no_secret(&sb, "fetch", &format!("{stdout}{stderr}"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_file_readable_by_others_warns_naming_key_path_mode_and_chmod() {
    let sb = start(small_world(182)).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, vars) = secrets_in_files(&sb, dir.path(), 0o600);
    let world = dir.path().join("secrets/cms-password");
    std::fs::set_permissions(&world, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Our own file, readable by its group: no use to us, so warned about.
    let group = dir.path().join("secrets/webex-api-key");
    std::fs::set_permissions(&group, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, stdout, stderr) = run(s(&["fetch", "--config", &p(&config)]), vars).await;
    assert_eq!(code, 0, "a readable file is still read: {stderr}");
    let warning = |key: &str| {
        stderr
            .lines()
            .find(|l| l.contains("WARN") && l.contains(&format!("`{key}`")))
            .unwrap_or_else(|| panic!("no WARN about {key}'s file: {stderr}"))
    };
    for (key, path, says) in [
        (
            "cms.password",
            &world,
            "can be read by any user (mode 0644)",
        ),
        (
            "webex.api_key",
            &group,
            "can be read by its group (mode 0640)",
        ),
    ] {
        let line = warning(key);
        assert!(
            line.contains(&p(path))
                && line.contains(says)
                && line.contains(&format!("chmod 600 {}", p(path)))
                && line.contains("defaultMode: 0400"),
            "{line}"
        );
    }
    assert_eq!(
        stderr.matches("chmod 600").count(),
        2,
        "the 0600 files are not warned about: {stderr}"
    );
    no_secret(&sb, "fetch", &format!("{stdout}{stderr}"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_and_its_file_together_is_exit_3_naming_both() {
    let sb = start(small_world(183)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_toml(&sb)).unwrap();
    let file = dir.path().join("cms-password");
    secret_file(&file, &sb.credentials().cms_password, 0o600);
    let (code, stdout, stderr) = run(
        s(&["fetch", "--config", &p(&config)]),
        vec![e("REBALANCER_CMS__PASSWORD_FILE", &p(&file))],
    )
    .await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("`cms.password` is set twice")
            && stderr.contains(&format!("config file {}", p(&config)))
            && stderr.contains("environment variable REBALANCER_CMS__PASSWORD_FILE")
            && stderr.contains("`cms.password_file`"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    no_secret(&sb, "fetch", &stderr);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_file_is_exit_3_naming_the_key_and_the_path() {
    let sb = start(small_world(184)).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, mut vars) = secrets_in_files(&sb, dir.path(), 0o600);
    let gone = dir.path().join("secrets/no-such-token");
    vars[1] = e("REBALANCER_ZOHO__REFRESH_TOKEN_FILE", &p(&gone));
    let (code, stdout, stderr) = run(s(&["fetch", "--config", &p(&config)]), vars).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("environment variable REBALANCER_ZOHO__REFRESH_TOKEN_FILE")
            && stderr.contains("`zoho.refresh_token_file`")
            && stderr.contains(&p(&gone))
            && stderr.contains("No such file or directory")
            && stderr.contains("write the secret into it"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    no_secret(&sb, "fetch", &stderr);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_missing_keys_are_reported_in_one_run() {
    let sb = start(small_world(185)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let text: String = config_toml(&sb)
        .lines()
        .filter(|l| {
            !["username =", "api_key =", "threshold_ids ="]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, text).unwrap();
    let (code, stdout, stderr) = run(s(&["check", "--config", &p(&config)]), vec![]).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("3 problems"), "{stderr}");
    for (key, var) in [
        ("cms.username", "REBALANCER_CMS__USERNAME"),
        ("webex.api_key", "REBALANCER_WEBEX__API_KEY"),
        ("zoho.threshold_ids", "REBALANCER_ZOHO__THRESHOLD_IDS"),
    ] {
        assert!(
            stderr.contains(&format!("`{key}` is missing")) && stderr.contains(var),
            "{key} is not reported: {stderr}"
        );
    }
    assert!(stdout.is_empty(), "{stdout}");
    no_secret(&sb, "check", &stderr);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_environment_variable_is_exit_3_naming_it() {
    let sb = start(small_world(186)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_toml(&sb)).unwrap();
    let (code, stdout, stderr) = run(
        s(&["fetch", "--config", &p(&config)]),
        vec![e("REBALANCER_CMS__USERNAME", "")],
    )
    .await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("environment variable REBALANCER_CMS__USERNAME")
            && stderr.contains("set but empty")
            && stderr.contains("unset REBALANCER_CMS__USERNAME"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    no_secret(&sb, "fetch", &stderr);
    sb.shutdown().await;
}
