//! `rebalancer console` as a command: `console new-token` prints a token
//! and the `[[console.users]]` lines holding its digest (never the token
//! itself in them), or with `--append FILE` adds them to a config (kept
//! private, refused untouched when it cannot take them); the console refuses to start without `--config`
//! (exit 2), with a broken `[console]` (exit 3, naming the key) and on a
//! busy port (exit 8, naming the address); started, it prints the address
//! it bound, signs the new user in with the printed token, and ends on
//! SIGTERM with exit 0.

mod common;

use common::{http_get, http_get_as, run_bin};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// `console new-token`'s token and digest.
fn new_token(name: &str, role: &str) -> (String, String) {
    let (code, out, err) = run_bin(
        &["console", "new-token", "--name", name, "--role", role],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let token = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("rbc_"))
        .expect("a token line")
        .to_owned();
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("token_sha256 = \""))
        .expect("a digest line")
        .trim_end_matches('"')
        .to_owned();
    assert!(
        out.contains(&format!("name = \"{name}\"\nrole = \"{role}\"")),
        "{out}"
    );
    let lines = &out[out.find("[[console.users]]").expect("the lines")..];
    assert!(
        !lines.contains(&token),
        "the config lines hold no token: {lines}"
    );
    (token, digest)
}

#[test]
fn new_token_prints_a_fresh_token_and_the_lines_with_its_digest() {
    let (t1, d1) = new_token("ana", "approver");
    let (t2, d2) = new_token("bob", "viewer");
    assert_ne!(t1, t2);
    assert_ne!(d1, d2);
    assert_eq!(d1.len(), 64);
    let (code, _, err) = run_bin(&["console", "new-token", "--role", "admin"], &[]);
    assert_eq!(code, 2, "{err}");
    // A name is required, and checked as the config's loader checks it.
    let (code, _, err) = run_bin(&["console", "new-token", "--role", "viewer"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--name"), "{err}");
    let (code, _, err) = run_bin(&["console", "new-token", "--name", " "], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("1 to 64 printable characters"), "{err}");
}

/// `new-token --append FILE`'s token (the only `rbc_` line it prints).
fn appended_token(file: &std::path::Path, name: &str) -> (i32, String, String) {
    let (code, out, err) = run_bin(
        &[
            "console",
            "new-token",
            "--name",
            name,
            "--role",
            "approver",
            "--append",
            file.to_str().unwrap(),
        ],
        &[],
    );
    let token = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("rbc_"))
        .unwrap_or_default()
        .to_owned();
    (code, token, format!("{out}{err}"))
}

#[test]
fn append_adds_the_user_keeping_the_file_private_and_refuses_what_it_cannot_add() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("console.toml");
    let before = "# ours\n[console]\naddr = \"127.0.0.1:0\"";
    std::fs::write(&cfg, before).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();

    let (code, token, out) = appended_token(&cfg, "ana");
    assert_eq!(code, 0, "{out}");
    assert!(token.starts_with("rbc_"), "{out}");
    assert!(
        !out.contains("token_sha256"),
        "only the token is printed: {out}"
    );
    let after = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        after.starts_with(before),
        "the file's own lines are kept: {after}"
    );
    assert!(
        after.contains("[[console.users]]\nname = \"ana\"\nrole = \"approver\"\ntoken_sha256 = \""),
        "{after}"
    );
    assert!(!after.contains(&token), "the file holds no token: {after}");
    let mode = std::fs::metadata(&cfg).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the config stays private");

    // The same name again: refused, the file untouched.
    let (code, _, out) = appended_token(&cfg, "ana");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("already has a user named ana"), "{out}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), after);

    // A second user lands in the same list.
    let (code, _, out) = appended_token(&cfg, "bob");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(&cfg)
            .unwrap()
            .matches("[[console.users]]")
            .count(),
        2
    );

    // A list written inline cannot take a table: refused, untouched.
    let inline = dir.path().join("inline.toml");
    std::fs::write(&inline, "[console]\nusers = []\n").unwrap();
    let (code, _, out) = appended_token(&inline, "ana");
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("by hand"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&inline).unwrap(),
        "[console]\nusers = []\n"
    );

    // A broken config is refused as it stands; a missing one is named.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[console]\nsession_ttl = \"forever\"\n").unwrap();
    let (code, _, out) = appended_token(&broken, "ana");
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("console.session_ttl"), "{out}");
    let (code, _, out) = appended_token(&dir.path().join("none.toml"), "ana");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("no such file") && out.contains("none.toml"),
        "{out}"
    );
}

#[test]
fn the_console_refuses_to_start_without_a_config_a_valid_section_or_a_free_port() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run_bin(&["console"], &[("REBALANCER_CONFIG", "")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--config"), "{err}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[console.users]]\nname = \"ana\"\nrole = \"admin\"\ntoken_sha256 = \"00\"\n",
    )
    .unwrap();
    let (code, _, err) = run_bin(&["console", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("console.users[0].role"), "{err}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let ok = dir.path().join("ok.toml");
    std::fs::write(
        &ok,
        format!(
            "[apply]\njournal = \"{}\"\n",
            dir.path().join("j.sqlite").display()
        ),
    )
    .unwrap();
    let (code, _, err) = run_bin(
        &["console", "--config", ok.to_str().unwrap(), "--addr", &addr],
        &[],
    );
    assert_eq!(code, 8, "{err}");
    assert!(err.contains(&addr) && err.contains("console.addr"), "{err}");
}

#[test]
fn a_started_console_signs_in_its_user_and_ends_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("console.toml");
    std::fs::write(
        &cfg,
        format!(
            "[apply]\njournal = \"{}\"\n\n[console]\naddr = \"127.0.0.1:0\"\n",
            dir.path().join("j.sqlite").display()
        ),
    )
    .unwrap();
    let (code, token, out) = appended_token(&cfg, "ana");
    assert_eq!(code, 0, "{out}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rebalancer"))
        .args(["console", "--config", cfg.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("CONSOLE ")
        .unwrap_or_else(|| panic!("not the address line: {line:?}"));
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let (status, page) = http_get(&addr, "/login");
    assert_eq!(status, 200);
    assert!(page.contains("Sign in"), "{page}");
    // The API answers the printed token (an empty journal: no plans yet),
    // and nobody without it.
    assert_eq!(
        http_get_as(&addr, "/api/plans", Some(&token)),
        (200, "[]".into())
    );
    assert_eq!(http_get_as(&addr, "/api/plans", Some("rbc_wrong")).0, 401);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let ended = child.wait().unwrap();
    assert_eq!(ended.code(), Some(0));
}
