//! Numeric keys have upper bounds at load (issue 16, #15), through the
//! binary: `apply.lease_secs = 10000000000000000` (and a timeout of years)
//! is exit 3 naming the key, where it came from and the bound, before
//! anything connects to an upstream or a journal; a flap guard of a
//! hundred million years is refused the same way instead of overflowing a
//! date (it panicked, exit 101).

mod common;

use common::{p, run_bin};

/// A complete config whose upstreams are never reached (loading fails
/// first).
const CONFIG: &str = r#"
[cms]
base_url = "https://cms.example.com:8443"
username = "u"
password = "p-secret"
contact_center_id = 1
[[cms.campaigns]]
process_id = 1
campaign_id = 2
lead_ids = [3]
[webex]
base_url = "https://webex.example.com"
api_key = "k-secret"
[zoho]
client_id = "c"
client_secret = "s-secret"
refresh_token = "r-secret"
threshold_ids = ["9"]
"#;

#[test]
fn an_absurd_lease_is_exit_3_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!("{CONFIG}[apply]\nlease_secs = 10000000000000000\n"),
    )
    .unwrap();
    for args in [
        vec!["check", "--config", &p(&config)],
        vec!["apply", "--config", &p(&config), "--yes"],
        vec!["run", "--once", "--config", &p(&config)],
        vec!["history", "--config", &p(&config)],
    ] {
        let (code, stdout, stderr) = run_bin(&args, &[]);
        assert_eq!(code, 3, "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains("apply.lease_secs")
                && stderr.contains("c.toml")
                && stderr.contains("86400 (a day)"),
            "{args:?}: {stderr}"
        );
    }

    // From the environment, another key: the variable is named.
    std::fs::write(&config, CONFIG).unwrap();
    let (code, _, stderr) = run_bin(
        &["check", "--config", &p(&config)],
        &[("REBALANCER_HTTP__TIMEOUT_SECS", "31536000")],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("http.timeout_secs")
            && stderr.contains("REBALANCER_HTTP__TIMEOUT_SECS")
            && stderr.contains("between 1 and 3600"),
        "{stderr}"
    );
}

#[test]
fn a_flap_guard_longer_than_a_year_is_exit_3_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rebalancer"));
    let out = cmd
        .args(["run", "--sandbox", "--once", "--dry-run"])
        .current_dir(dir.path())
        .env("REBALANCER_RUN__MIN_MOVE_INTERVAL", "100000000years")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("run.min_move_interval") && stderr.contains("longer than a year"),
        "{stderr}"
    );
}
