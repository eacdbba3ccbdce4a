//! CLI conventions through the binary: `completions SHELL` for every shell,
//! `man` (on stdout and `--out DIR`), `--version` with the git commit and
//! the features, the exit-code table of src/exit.rs in `--help` of the
//! commands that use it, `REBALANCER_CONFIG` as `--config` (and ignored by
//! `--sandbox`), and `run --metrics-addr` over `run.metrics_addr`.

mod common;

use common::{config_toml, p, run_async, run_bin, s, small_world, start};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The visible subcommands every completion script and man page names.
const SUBCOMMANDS: [&str; 13] = [
    "fetch",
    "plan",
    "apply",
    "resume",
    "run",
    "rollback",
    "history",
    "show",
    "sandbox",
    "check",
    "bench",
    "completions",
    "man",
];

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (code, stdout, stderr) = run_bin(&["completions", shell], &[]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(stderr.is_empty(), "{shell}: {stderr}");
        assert!(!stdout.trim().is_empty(), "{shell}: empty script");
        for sub in SUBCOMMANDS {
            assert!(stdout.contains(sub), "{shell}: `{sub}` missing");
        }
        // The flags of a subcommand too.
        assert!(stdout.contains("target-utilisation"), "{shell}");
    }
    let (code, _, stderr) = run_bin(&["completions", "tcsh"], &[]);
    assert_eq!(code, 2, "an unknown shell is a usage error: {stderr}");
    assert!(stderr.contains("bash"), "the shells are listed: {stderr}");
}

#[test]
fn man_prints_the_page_and_writes_one_per_subcommand() {
    let (code, stdout, stderr) = run_bin(&["man"], &[]);
    assert_eq!(code, 0, "{stderr}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(stdout.contains(section), "{section} missing:\n{stdout}");
    }
    for sub in SUBCOMMANDS {
        assert!(
            stdout.contains(&format!("rebalancer\\-{sub}(1)")),
            "`{sub}` missing:\n{stdout}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let (code, stdout, stderr) = run_bin(&["man", "--out", &p(&out)], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    for page in std::iter::once("rebalancer".to_owned())
        .chain(SUBCOMMANDS.iter().map(|s| format!("rebalancer-{s}")))
    {
        let text = std::fs::read_to_string(out.join(format!("{page}.1")))
            .unwrap_or_else(|e| panic!("{page}.1: {e}"));
        assert!(text.contains(".SH NAME"), "{page}");
    }
    let plan = std::fs::read_to_string(out.join("rebalancer-plan.1")).unwrap();
    assert!(plan.contains("target\\-utilisation"), "{plan}");
    // The exit-code table, one tagged paragraph per code (not refilled).
    assert!(plan.contains(".SH \"EXIT STATUS\""), "{plan}");
    for code in 0..=15 {
        assert!(
            plan.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "{code}: {plan}"
        );
    }
    let history = std::fs::read_to_string(out.join("rebalancer-history.1")).unwrap();
    assert!(!history.contains("EXIT STATUS"), "{history}");
    // A directory that cannot be made: exit 8, naming it.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let target = blocker.join("man1");
    let (code, _, stderr) = run_bin(&["man", "--out", &p(&target)], &[]);
    assert_eq!(code, 8, "{stderr}");
    assert!(stderr.contains(&p(&target)), "{stderr}");
}

/// The short hash of HEAD of this checkout, if git can tell.
fn git_head() -> Option<String> {
    let out = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn version_shows_the_commit_and_the_features() {
    let (code, stdout, stderr) = run_bin(&["--version"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with(&format!("rebalancer {}", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    let commit = stdout
        .lines()
        .find_map(|l| l.strip_prefix("commit: "))
        .unwrap_or_else(|| panic!("no commit line: {stdout}"));
    match git_head() {
        Some(head) if std::env::var_os("REBALANCER_BUILD_COMMIT").is_none() => assert!(
            commit == head || commit == format!("{head}-dirty"),
            "{commit} is not HEAD {head}"
        ),
        _ => assert!(!commit.is_empty(), "{stdout}"),
    }
    let features = stdout
        .lines()
        .find_map(|l| l.strip_prefix("features: "))
        .unwrap_or_else(|| panic!("no features line: {stdout}"));
    let expected: Vec<&str> = [
        (cfg!(feature = "coin_cbc"), "coin_cbc"),
        (cfg!(feature = "highs"), "highs"),
        (cfg!(feature = "clarabel"), "clarabel"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect();
    if expected.is_empty() {
        assert_eq!(features, "none");
    } else {
        assert_eq!(features, expected.join(", "));
    }
    assert!(stdout.contains("LP backends: microlp"), "{stdout}");
    // -V: one line, version and commit.
    let (_, short, _) = run_bin(&["-V"], &[]);
    assert_eq!(
        short.trim(),
        format!("rebalancer {} ({commit})", env!("CARGO_PKG_VERSION"))
    );
}

/// build.rs outside any git repository (a source tarball): `unknown`.
#[test]
fn the_build_script_says_unknown_without_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("build-script");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let built = Command::new(rustc)
        .args(["--edition", "2021", "-o"])
        .arg(&exe)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/build.rs"))
        .status()
        .expect("rustc runs");
    assert!(built.success());
    let tarball = dir.path().join("rebalancer-0.1.0");
    std::fs::create_dir(&tarball).unwrap();
    let out = Command::new(&exe)
        .env("CARGO_MANIFEST_DIR", &tarball)
        .env_remove("REBALANCER_BUILD_COMMIT")
        // No repository above the temporary directory either.
        .env("GIT_CEILING_DIRECTORIES", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cargo:rustc-env=REBALANCER_GIT_COMMIT=unknown"),
        "{text}"
    );
    // And without git at all (an empty PATH).
    let out = Command::new(&exe)
        .env("CARGO_MANIFEST_DIR", env!("CARGO_MANIFEST_DIR"))
        .env_remove("REBALANCER_BUILD_COMMIT")
        .env("PATH", "")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cargo:rustc-env=REBALANCER_GIT_COMMIT=unknown"),
        "{text}"
    );
}

/// The `(code, "meaning")` rows of `CODES` in src/exit.rs.
fn exit_codes() -> Vec<(u8, String)> {
    let source = include_str!("../src/exit.rs");
    let table = source
        .split_once("pub const CODES")
        .expect("src/exit.rs has CODES")
        .1;
    let table = &table[..table.find("\n];").expect("CODES ends")];
    let consts: Vec<(String, u8)> = source
        .lines()
        .filter_map(|l| l.strip_prefix("pub const "))
        .filter_map(|l| {
            let (name, rest) = l.split_once(": u8 = ")?;
            Some((name.to_owned(), rest.trim_end_matches(';').parse().ok()?))
        })
        .collect();
    table
        .lines()
        .filter_map(|l| l.trim().strip_prefix('('))
        .map(|row| {
            let (code, meaning) = row.split_once(", \"").expect("(CODE, \"meaning\")");
            let code = code.parse().unwrap_or_else(|_| {
                consts
                    .iter()
                    .find(|(n, _)| n == code)
                    .unwrap_or_else(|| panic!("no const {code}"))
                    .1
            });
            let meaning = meaning.trim_end_matches("\"),").to_owned();
            (code, meaning)
        })
        .collect()
}

#[test]
fn the_exit_code_table_is_in_the_help_of_the_commands_that_use_it() {
    let codes = exit_codes();
    assert_eq!(codes.len(), 16, "{codes:?}");
    for cmd in [
        "apply", "resume", "run", "rollback", "plan", "check", "fetch",
    ] {
        let (code, stdout, stderr) = run_bin(&[cmd, "--help"], &[]);
        assert_eq!(code, 0, "{cmd}: {stderr}");
        let flat = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("Exit codes:"), "{cmd}: {stdout}");
        for (code, meaning) in &codes {
            let meaning = meaning.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                flat.contains(&format!("{code} {meaning}")),
                "{cmd} --help lacks exit code {code}:\n{stdout}"
            );
        }
    }
    // Not in the short help, nor in commands that only exit 0/1/2.
    let (_, short, _) = run_bin(&["apply", "-h"], &[]);
    assert!(!short.contains("Exit codes:"), "{short}");
    let (_, history, _) = run_bin(&["history", "--help"], &[]);
    assert!(!history.contains("Exit codes:"), "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalancer_config_names_the_config_when_config_is_absent() {
    let sb = start(small_world(19)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_toml(&sb)).unwrap();
    let journal = dir.path().join("j.sqlite");
    let env = |path: &std::path::Path| vec![("REBALANCER_CONFIG".to_owned(), p(path))];
    // check without --config reads it.
    let (code, stdout, stderr) = run_async(
        s(&["check", "--journal", &p(&journal), "--format", "json"]),
        env(&config),
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("\"cms\""), "{stdout}");
    // A missing file it names is the config error naming that file.
    let missing = dir.path().join("missing.toml");
    let (code, _, stderr) = run_async(s(&["check"]), env(&missing)).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("missing.toml"), "{stderr}");
    // --config on the command line wins over it.
    let (code, _, stderr) = run_async(
        s(&["check", "--config", &p(&config), "--journal", &p(&journal)]),
        env(&missing),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    // --sandbox ignores it (even naming a missing file) instead of failing.
    for args in [
        s(&["plan", "--sandbox"]),
        s(&["fetch", "--sandbox"]),
        s(&[
            "run",
            "--sandbox",
            "--once",
            "--dry-run",
            "--journal",
            &p(&dir.path().join("sandbox.sqlite")),
        ]),
    ] {
        let (code, _, stderr) = run_async(args.clone(), env(&missing)).await;
        assert_eq!(code, 0, "{args:?}: {stderr}");
    }
    // An empty variable names no file: ignored where no config is needed,
    // named in the error where one is.
    let empty = vec![("REBALANCER_CONFIG".to_owned(), String::new())];
    let (code, _, stderr) = run_async(s(&["plan", "--sandbox"]), empty.clone()).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run_async(s(&["check"]), empty).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("REBALANCER_CONFIG is set but empty"),
        "{stderr}"
    );
    // The help says it is read.
    let (_, help, _) = run_async(s(&["check", "--help"]), vec![]).await;
    assert!(help.contains("REBALANCER_CONFIG"), "{help}");
    sb.shutdown().await;
}

#[cfg(unix)]
#[test]
fn run_metrics_addr_overrides_the_config() {
    // run.metrics_addr names a port in use: only the flag's address works.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    // The sandbox's journal goes to the working directory.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rebalancer"))
        .current_dir(dir.path())
        .args(["run", "--sandbox", "--every", "1h", "--format", "json"])
        // Port 0: the address it bound is read back from its log.
        .args(["--metrics-addr", "127.0.0.1:0"])
        .env("REBALANCER_RUN__METRICS_ADDR", &busy_addr)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = common::metrics_addr_from(child.stderr.take().unwrap());
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let (status, body) = common::http_get(&addr, "/metrics");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let code = child.wait().unwrap().code();
    assert!(first.contains("outcome"), "a cycle line: {first}");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("rebalancer_"), "{body}");
    assert_eq!(code, Some(0));
    // A bad address is a usage error naming the flag.
    let (code, _, stderr) = run_bin(&["run", "--sandbox", "--metrics-addr", "9090"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--metrics-addr"), "{stderr}");
    assert!(stderr.contains("no port"), "{stderr}");
}
