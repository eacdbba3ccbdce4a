//! `rebalancer sandbox` as a user runs it: it prints `LISTENING <url>`,
//! writes a config that points every client at itself, and a separate
//! `rebalancer fetch --config` process reads it over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the sandbox process however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sandbox_command_serves_a_fetch_from_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sandbox.toml");
    let bin = env!("CARGO_BIN_EXE_rebalancer");
    let mut server = KillOnDrop(
        Command::new(bin)
            .args([
                "sandbox",
                "--agents",
                "50",
                "--leads",
                "8",
                "--seed",
                "5",
                "--write-config",
            ])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("LISTENING ")
        .expect("first line is LISTENING <url>");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains(url), "the config points at the sandbox");
    let out = Command::new(bin)
        .args(["fetch", "--config"])
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("leads"), "{stdout}");
}
