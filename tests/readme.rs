//! Every shell command README.md shows runs as written, in order, from an
//! empty directory, against the sandbox the README tells you to start.
//!
//! The `sh` blocks are read from README.md; each command (with `\`
//! continuations joined) runs in bash with the built binary first on PATH.
//! Three translations, each because the test itself is the context:
//! `cargo run --release -- ARGS` runs the binary cargo built for this test
//! (same code, debug profile); `cargo test` / `cargo build` / `cargo bench`
//! are skipped (this test is run by the first, the second is what built its
//! binary, the third takes minutes and is CI's job); and
//! `rebalancer sandbox ...` and `rebalancer console --config ...` are
//! started in the background (they run until Ctrl-C, as the README says)
//! and waited for until they print their address (`LISTENING`,
//! `CONSOLE`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const README: &str = include_str!("../README.md");

/// The commands of the README's `sh` blocks, continuations joined.
fn commands(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in readme.lines() {
        let trimmed = line.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            in_sh = !in_sh && lang == "sh";
            continue;
        }
        if !in_sh || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                out.push(std::mem::take(&mut pending));
            }
        }
    }
    out
}

/// Kills the background sandbox when the test ends, however it ends.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `command` in the background; its first line of output starts
/// with `ready`: the rest of that line (the port and `/`).
fn start_background(
    command: &str,
    dir: &Path,
    path_var: &str,
    ready: &str,
) -> (Background, String) {
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!("exec {command}"))
        .current_dir(dir)
        .env("PATH", path_var)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the command prints a line");
    let url = line
        .trim()
        .strip_prefix(ready)
        .unwrap_or_else(|| panic!("`{command}` printed {line:?}, not {ready}..."))
        .to_owned();
    (Background(child), url)
}

/// The command's background form: the line it prints once it serves.
fn serves(command: &str) -> Option<&'static str> {
    if command.starts_with("rebalancer sandbox") {
        Some("LISTENING http://127.0.0.1:")
    } else if command.starts_with("rebalancer console --config") {
        Some("CONSOLE http://127.0.0.1:")
    } else {
        None
    }
}

#[test]
fn the_readme_stands_alone() {
    assert!(
        !README.contains("../shared"),
        "README.md links outside the repository"
    );
    let cmds = commands(README);
    assert!(
        cmds.iter()
            .any(|c| c == "cargo run --release -- plan --sandbox")
            && cmds.iter().any(|c| c == "cargo test --workspace"),
        "the two commands are missing: {cmds:#?}"
    );
}

#[test]
fn every_readme_command_runs_as_written() {
    let bin = Path::new(env!("CARGO_BIN_EXE_rebalancer"));
    let bin_dir = bin.parent().expect("the binary is in a directory");
    let path_var = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut background = Vec::new();
    let mut consoles = Vec::new();
    let mut ran = 0;
    for command in commands(README) {
        if ["cargo test", "cargo build", "cargo bench"]
            .iter()
            .any(|p| command.starts_with(p))
        {
            eprintln!("skipped (see the module doc): {command}");
            continue;
        }
        let command = match command.strip_prefix("cargo run --release -- ") {
            Some(args) => format!("rebalancer {args}"),
            None => command,
        };
        if let Some(ready) = serves(&command) {
            let (child, rest) = start_background(&command, dir.path(), &path_var, ready);
            background.push(child);
            if ready.starts_with("CONSOLE") {
                consoles.push(format!("127.0.0.1:{}", rest.trim_end_matches('/')));
            }
            continue;
        }
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &command])
            .current_dir(dir.path())
            .env("PATH", &path_var)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "README command failed ({}): {command}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert_eq!(
        (background.len(), consoles.len()),
        (3, 1),
        "the README starts two sandboxes and a console"
    );
    assert!(ran >= 6, "only {ran} commands ran");
    // The loop the README shows left its files behind.
    for file in ["sandbox.toml", "snapshot.json", "plan.json", "review.toml"] {
        assert!(dir.path().join(file).is_file(), "{file} was not written");
    }
    // The console it started served its sign-in page, and the plan the
    // walk-through approved was applied.
    let (status, page) = common::http_get(&consoles[0], "/login");
    assert_eq!(status, 200, "{page}");
    let out = Command::new(env!("CARGO_BIN_EXE_rebalancer"))
        .args(["proposals", "--config", "review.toml", "--format", "json"])
        .current_dir(dir.path())
        .output()
        .expect("rebalancer runs");
    let proposals = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && proposals.contains("\"applied\""),
        "the approved plan was not applied: {proposals}"
    );
}
