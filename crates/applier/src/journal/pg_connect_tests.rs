//! Tests of the PostgreSQL connection layer: how `journal.url` is split
//! and parsed (no server), and against real servers (`rebalancer_testkit::pg`)
//! TLS with a CA and a server certificate made here (rcgen), the server's
//! errors named by SQLSTATE without the password, and a reconnect after
//! the backend was terminated. Skipped with a notice when PostgreSQL is
//! not installed (a failure when `REBALANCER_REQUIRE_POSTGRES` is set).

use std::time::{Duration, Instant};

use proptest::prelude::*;
use secrecy::SecretString;

use super::*;
use crate::error::ApplyError;
use crate::journal::{Journal, JournalLocation, NewRun};
use crate::report::RunKind;
use rebalancer_testkit::pg::{self as test_server, Options, PgServer};

fn secret(s: &str) -> SecretString {
    s.to_string().into()
}

fn location(url: &str) -> JournalLocation {
    JournalLocation::Postgres(secret(url))
}

// ---- journal.url without a server

#[test]
fn the_url_form_keeps_everything_but_the_tls_keys_byte_for_byte() {
    let (rest, keys) = split_tls_keys(
        "postgres://u:p/w?x+y@h1:5432,h2:5433/db?application_name=a%20b&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&options=-c%20x%3Dy",
    )
    .unwrap();
    assert_eq!(
        rest,
        "postgres://u:p/w?x+y@h1:5432,h2:5433/db?application_name=a%20b&options=-c%20x%3Dy"
    );
    assert_eq!(keys.mode.as_deref(), Some("verify-full"));
    assert_eq!(keys.rootcert.as_deref(), Some("/tmp/ca.pem"));
    // Only TLS keys: no '?' left behind; none at all: unchanged.
    let (rest, _) = split_tls_keys("postgresql://h/db?sslmode=require").unwrap();
    assert_eq!(rest, "postgresql://h/db");
    let (rest, keys) = split_tls_keys("postgres://u:p@h/db").unwrap();
    assert_eq!(
        (rest.as_str(), keys),
        ("postgres://u:p@h/db", TlsKeys::default())
    );
}

#[test]
fn the_key_value_form_is_read_as_libpq_reads_it() {
    let (rest, keys) = split_tls_keys(
        r"host=h  user = u password='it''s' sslmode=verify-ca sslrootcert='/a b/ca.pem' dbname=d\ x",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // `'it'` then `'s'` is not one value in libpq either: malformed, left
    // for tokio-postgres to explain.
    assert_eq!(keys, TlsKeys::default(), "{rest}");

    let (rest, keys) = split_tls_keys(
        r"host=h  user = u password='it\'s a\\b' sslmode=verify-ca sslrootcert='/a b/ca.pem' dbname=d\ x",
    )
    .unwrap();
    assert_eq!(keys.mode.as_deref(), Some("verify-ca"));
    assert_eq!(keys.rootcert.as_deref(), Some("/a b/ca.pem"));
    let config: Config = rest.parse().unwrap();
    assert_eq!(config.get_password(), Some(&b"it's a\\b"[..]));
    assert_eq!(config.get_dbname(), Some("d x"));
    assert_eq!(config.get_user(), Some("u"));
}

#[test]
fn defaults_apply_unless_the_url_sets_them() {
    let t = Target::parse(&secret("postgres://u:pw@h/db")).unwrap();
    assert_eq!(t.mode, TlsMode::Prefer);
    assert_eq!(t.config.get_ssl_mode(), SslMode::Prefer);
    assert_eq!(t.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
    assert_eq!(t.config.get_application_name(), Some("rebalancer"));
    assert_eq!(t.config.get_keepalives_idle(), KEEPALIVE_IDLE);
    assert_eq!(t.config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
    let t = Target::parse(&secret(
        "postgres://u:pw@h/db?connect_timeout=3&application_name=x&keepalives_idle=99&sslmode=verify-full",
    ))
    .unwrap();
    assert_eq!(t.mode, TlsMode::VerifyFull);
    assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
    assert_eq!(
        t.config.get_connect_timeout(),
        Some(&Duration::from_secs(3))
    );
    assert_eq!(t.config.get_application_name(), Some("x"));
    assert_eq!(t.config.get_keepalives_idle(), Duration::from_secs(99));
    for (mode, ssl) in [
        ("disable", SslMode::Disable),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::Require),
    ] {
        let t = Target::parse(&secret(&format!("host=h sslmode={mode}"))).unwrap();
        assert_eq!(t.config.get_ssl_mode(), ssl, "{mode}");
    }
}

#[test]
fn bad_tls_settings_are_refused_with_the_key_and_the_fix() {
    let refused = |url: &str| Target::parse(&secret(url)).unwrap_err();
    let e = refused("postgres://u:hunter2-secret@h/db?sslmode=verify");
    assert!(e.contains("sslmode") && e.contains("verify-full"), "{e}");
    let e = refused("postgres://u:hunter2-secret@h/db?sslmode=allow");
    assert!(e.contains("not supported"), "{e}");
    let e = refused(
        "postgres://u:hunter2-secret@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    );
    assert!(
        e.contains("sslrootcert /nonexistent/ca.pem") && e.contains("cannot read"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = refused(&format!("host=h sslrootcert={}", empty.display()));
    assert!(e.contains("holds no PEM certificate"), "{e}");
    let e = refused("host=h sslcert=/c.pem sslkey=/k.pem");
    assert!(e.contains("client certificates are not supported"), "{e}");
    let e = refused("postgres://u:hunter2-secret@h/db?bogus=1");
    assert!(e.contains("unknown option `bogus`"), "{e}");
    for e in [
        refused("postgres://u:hunter2-secret@h/db?sslmode=verify"),
        refused("postgres://u:hunter2-secret@h/db?bogus=1"),
        refused("postgres://u:hunter2-secret@h:notaport/db"),
    ] {
        assert!(!e.contains("hunter2"), "{e}");
    }
    // `sslrootcert=system`: the webpki roots alone.
    Target::parse(&secret("host=h sslmode=verify-full sslrootcert=system")).unwrap();
}

proptest! {
    /// Any password, percent-encoded in the URL or quoted in the key=value
    /// form, reaches tokio-postgres unchanged and never shows in an error.
    #[test]
    fn any_password_survives_the_split_and_never_shows(
        password in "[A-Za-z0-9/?+@%:' &=\\\\-]{8,24}",
    ) {
        let encoded: String = password
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        let url = format!("postgres://u:{encoded}@h/db?sslmode=verify-full");
        let t = Target::parse(&secret(&url)).unwrap();
        prop_assert_eq!(t.config.get_password(), Some(password.as_bytes()));
        let quoted = password.replace('\\', "\\\\").replace('\'', "\\'");
        let kv = format!("host=h password='{quoted}' sslmode=require");
        let t = Target::parse(&secret(&kv)).unwrap();
        prop_assert_eq!(t.config.get_password(), Some(password.as_bytes()));
        let quoted_in_text = format!("x {} y", password);
        prop_assert!(!t.scrub(&quoted_in_text).contains(&password));
        for bad in [
            format!("postgres://u:{encoded}@h/db?sslmode=nope"),
            format!("postgres://u:{encoded}@h:99999999/db"),
            format!("postgres://u:{password}@h/db?bogus=1"),
        ] {
            if let Err(e) = Target::parse(&secret(&bad)) {
                prop_assert!(!e.contains(&password), "{}", e);
                prop_assert!(!e.contains(&encoded), "{}", e);
            }
        }
    }
}

// ---- against real servers

/// A CA and a certificate for `localhost` / 127.0.0.1 signed by it:
/// (CA PEM, server certificate PEM, server key PEM).
fn certificates() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "rebalancer test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut server =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = server.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// Journal-level failures as text, with their Debug form checked for the
/// password too.
fn open_error(url: &str) -> String {
    let e = Journal::open(location(url)).unwrap_err();
    assert!(matches!(e, ApplyError::Journal { .. }), "{e}");
    let debug = format!("{e:?}");
    let text = e.to_string();
    assert!(
        !text.contains("hunter2") && !debug.contains("hunter2"),
        "{text}"
    );
    assert!(
        !text.contains("wrong-pass") && !debug.contains("wrong-pass"),
        "{text}"
    );
    text
}

fn new_run(j: &Journal) -> i64 {
    try_new_run(j).unwrap()
}

fn try_new_run(j: &Journal) -> Result<i64, ApplyError> {
    if j.token() == 0 {
        j.acquire_lease(Duration::from_secs(60))?;
    }
    j.start_run(NewRun {
        kind: RunKind::Apply,
        parent: None,
        snapshot_hash: "s",
        config_digest: "c",
        plan_json: br#"{"not":"a plan"}"#,
        plan_hash: "h",
        holder: "h:1",
    })
}

/// Polls `done` until it holds, for at most 20 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tls_server_errors_and_reconnects_on_postgresql() {
    let (ca, cert, key) = certificates();
    let Some(server) = test_server::start_with(Options {
        tls: Some((cert, key)),
        hba: vec![
            "hostssl all pw 127.0.0.1/32 scram-sha-256".into(),
            "hostssl all all 127.0.0.1/32 trust".into(),
        ],
        hba_only: true,
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let verify = format!("sslmode=verify-full&sslrootcert={}", ca_file.display());

    verify_full_connects_over_tls(&server, &verify);
    an_untrusted_certificate_is_refused(&server, dir.path());
    plain_tcp_against_hostssl_is_refused_with_the_servers_message(&server);
    a_wrong_password_is_28p01_without_the_password(&server, &verify);
    a_missing_database_is_3d000(&server, &verify);
    a_read_only_role_is_named(&server, &verify);
    a_terminated_connection_is_reopened_by_the_next_call(&server, &verify);
    a_statement_cut_off_fails_and_marks_the_session_gone(&server, &verify);
}

fn verify_full_connects_over_tls(server: &PgServer, verify: &str) {
    server.sql("postgres", "CREATE DATABASE tls");
    let url = server.url_as("rebalancer", "hunter2-secret", "tls", verify);
    let j = Journal::open(location(&url)).unwrap();
    let run = new_run(&j);
    assert_eq!(j.runs(5).unwrap()[0].id, run);
    // The session is TLS, and on the name as well as the address.
    let ssl = server.sql(
        "tls",
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.application_name = 'rebalancer' AND a.datname = 'tls'",
    );
    assert_eq!(ssl, "t");
    let by_name = url.replace("127.0.0.1", "localhost");
    Journal::open(location(&by_name)).unwrap();
    // verify-ca and require verify as verify-full does.
    for mode in ["verify-ca", "require"] {
        Journal::open(location(&url.replace("verify-full", mode))).unwrap();
    }
}

fn an_untrusted_certificate_is_refused(server: &PgServer, dir: &std::path::Path) {
    server.sql("postgres", "CREATE DATABASE untrusted");
    let (other_ca, _, _) = certificates();
    let other = dir.join("other-ca.pem");
    std::fs::write(&other, other_ca).unwrap();
    for params in [
        format!("sslmode=verify-full&sslrootcert={}", other.display()),
        // Without sslrootcert only the public roots are trusted; and
        // `prefer` verifies the certificate a server offers, too.
        "sslmode=verify-full".to_string(),
        "sslmode=require".to_string(),
        String::new(),
    ] {
        let url = server.url_as("rebalancer", "hunter2-secret", "untrusted", &params);
        let text = open_error(&url);
        assert!(text.contains("TLS handshake"), "{params}: {text}");
        assert!(
            text.contains("invalid peer certificate"),
            "{params}: {text}"
        );
        assert!(
            text.contains("(the server's certificate is not trusted"),
            "{params}: {text}"
        );
        assert!(text.contains("sslrootcert="), "{params}: {text}");
    }
    // The right CA, but a name the certificate does not list (the
    // address is 127.0.0.1; the name checked is the URL's host).
    let ca = dir.join("ca.pem");
    let wrong_name = server
        .url_as(
            "rebalancer",
            "hunter2-secret",
            "untrusted",
            &format!(
                "hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
                ca.display()
            ),
        )
        .replace("@127.0.0.1:", "@db.invalid:");
    let text = open_error(&wrong_name);
    assert!(text.contains("TLS handshake"), "{text}");
    assert!(text.contains("db.invalid"), "{text}");
    assert!(
        text.contains("(the server's certificate is not trusted"),
        "{text}"
    );
}

fn plain_tcp_against_hostssl_is_refused_with_the_servers_message(server: &PgServer) {
    let url = server.url_as(
        "rebalancer",
        "hunter2-secret",
        "postgres",
        "sslmode=disable",
    );
    let text = open_error(&url);
    assert!(
        text.contains("SQLSTATE 28000 (invalid_authorization_specification)"),
        "{text}"
    );
    assert!(text.contains("no pg_hba.conf entry"), "{text}");
    assert!(text.contains("no encryption"), "{text}");
    assert!(text.contains("sslmode=verify-full"), "{text}");
}

fn a_wrong_password_is_28p01_without_the_password(server: &PgServer, verify: &str) {
    server.sql("postgres", "CREATE ROLE pw LOGIN PASSWORD 'right-pass'");
    server.sql("postgres", "CREATE DATABASE pwdb OWNER pw");
    let url = server.url_as("pw", "wrong-pass", "pwdb", verify);
    let text = open_error(&url);
    assert!(text.contains("SQLSTATE 28P01 (invalid_password)"), "{text}");
    assert!(
        text.contains("password authentication failed for user \"pw\""),
        "{text}"
    );
    assert!(
        text.contains("(the user or password in journal.url is wrong"),
        "{text}"
    );
    assert!(text.contains("pw:****@"), "{text}");
    // The right one works.
    let url = server.url_as("pw", "right-pass", "pwdb", verify);
    Journal::open(location(&url)).unwrap();
}

fn a_missing_database_is_3d000(server: &PgServer, verify: &str) {
    let url = server.url_as("rebalancer", "hunter2-secret", "nosuchdb", verify);
    let text = open_error(&url);
    assert!(
        text.contains("SQLSTATE 3D000 (invalid_catalog_name)"),
        "{text}"
    );
    assert!(text.contains("\"nosuchdb\" does not exist"), "{text}");
    assert!(
        text.contains("(the database in journal.url does not exist"),
        "{text}"
    );
}

fn a_read_only_role_is_named(server: &PgServer, verify: &str) {
    server.sql("postgres", "CREATE DATABASE ro");
    // A role that may not create tables in the schema: 42501.
    server.sql("postgres", "CREATE ROLE nocreate LOGIN");
    let url = server.url_as("nocreate", "hunter2-secret", "ro", verify);
    let text = open_error(&url);
    assert!(
        text.contains("SQLSTATE 42501 (insufficient_privilege)"),
        "{text}"
    );
    assert!(
        text.contains("permission denied for schema public"),
        "{text}"
    );
    assert!(
        text.contains("(the journal's user lacks a privilege"),
        "{text}"
    );
    // A read-only session (as on a standby): 25006.
    server.sql(
        "postgres",
        "CREATE ROLE readonly LOGIN; ALTER ROLE readonly SET default_transaction_read_only = on",
    );
    let url = server.url_as("readonly", "hunter2-secret", "ro", verify);
    let text = open_error(&url);
    assert!(
        text.contains("SQLSTATE 25006 (read_only_sql_transaction)"),
        "{text}"
    );
    assert!(text.contains("(the session is read-only"), "{text}");
    // On a journal that opened, a write refused mid-run names it too:
    // the journal's tables taken from its user (42501), a session gone
    // read-only (25006).
    server.sql("postgres", "CREATE ROLE writer LOGIN");
    server.sql("postgres", "CREATE DATABASE rw OWNER writer");
    let url = server.url_as("writer", "hunter2-secret", "rw", verify);
    let j = Journal::open(location(&url)).unwrap();
    new_run(&j);
    server.sql("rw", "ALTER TABLE runs OWNER TO rebalancer");
    let e = try_new_run(&j).unwrap_err().to_string();
    assert!(
        e.contains("cannot record the start of the run: SQLSTATE 42501 (insufficient_privilege)"),
        "{e}"
    );
    assert!(e.contains("permission denied for table runs"), "{e}");
    j.break_for_test();
    let e = j.count_run(1, 0, 0, 0).unwrap_err().to_string();
    assert!(
        e.contains("SQLSTATE 25006 (read_only_sql_transaction)"),
        "{e}"
    );
    assert!(e.contains("(the session is read-only"), "{e}");
}

/// The pids of the journal sessions on database `db`.
fn journal_backends(server: &PgServer, db: &str) -> String {
    server.sql(
        "postgres",
        &format!("SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'rebalancer' AND datname = '{db}'"),
    )
}

fn a_terminated_connection_is_reopened_by_the_next_call(server: &PgServer, verify: &str) {
    server.sql("postgres", "CREATE DATABASE reconnect");
    let url = server.url_as("rebalancer", "hunter2-secret", "reconnect", verify);
    let j = Journal::open(location(&url)).unwrap();
    let run = new_run(&j);
    let before = journal_backends(server, "reconnect");
    assert!(!before.is_empty());
    let killed = server.sql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rebalancer' AND datname = 'reconnect'",
    );
    assert_eq!(killed, "t");
    wait_until("the terminated backend is gone", || {
        journal_backends(server, "reconnect").is_empty()
    });
    // The next call reconnects (over TLS again) and works.
    assert_eq!(j.runs(5).unwrap()[0].id, run);
    let after = journal_backends(server, "reconnect");
    assert!(!after.is_empty() && after != before, "{before} → {after}");
    // And the session is set up again.
    assert_eq!(new_run(&j), run + 1);
}

fn a_statement_cut_off_fails_and_marks_the_session_gone(server: &PgServer, verify: &str) {
    const SLEEP: &str = "SELECT pg_sleep(60)";
    let url = server.url_as("rebalancer", "hunter2-secret", "reconnect", verify);
    let target = Target::parse(&secret(&url)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    std::thread::scope(|s| {
        // Terminates the backend once the statement is running on it.
        let killer = s.spawn(|| {
            wait_until("the statement runs", || {
                server.sql(
                    "postgres",
                    &format!("SELECT count(*) FROM pg_stat_activity WHERE query = '{SLEEP}' AND state = 'active'"),
                ) == "1"
            });
            server.sql(
                "postgres",
                &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = '{SLEEP}'"),
            )
        });
        rt.block_on(async {
            let client = target.connect().await.unwrap();
            let e = client.query_one(SLEEP, &[]).await.unwrap_err();
            // Reported to the caller, who decides (a write may have
            // committed).
            let text = target.describe(&e);
            assert!(
                text.contains("SQLSTATE 57P01 (admin_shutdown)")
                    || text.contains("connection closed"),
                "{text}"
            );
            // The session is gone: pg.rs opens a new one before the next
            // call, even if the connection task has not noticed yet.
            assert!(session_is_gone(&e), "{text}");
            // An error of the statement alone leaves the session usable.
            let client = target.connect().await.unwrap();
            let e = client.query_one("SELECT 1/0", &[]).await.unwrap_err();
            assert!(!session_is_gone(&e), "{}", describe(&e));
            let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
            assert_eq!(one, 1);
        });
        assert_eq!(killer.join().unwrap(), "t");
    });
}

#[test]
fn a_server_without_tls_is_plain_under_prefer_and_refused_under_require() {
    let Some(server) = test_server::start() else {
        return;
    };
    let url = server.database();
    Journal::open(location(&url)).unwrap();
    Journal::open(location(&format!("{url}?sslmode=disable"))).unwrap();
    for mode in ["require", "verify-full"] {
        let text = open_error(&format!("{url}?sslmode={mode}"));
        assert!(text.contains("server does not support TLS"), "{text}");
        assert!(text.contains("(the server does not offer TLS"), "{text}");
    }
    a_restarted_server_is_reconnected_to(&server, &url);
}

fn a_restarted_server_is_reconnected_to(server: &PgServer, url: &str) {
    let j = Journal::open(location(url)).unwrap();
    let run = new_run(&j);
    server.stop();
    // While it is down each call fails (reconnecting fails), naming why.
    for _ in 0..2 {
        let e = j.runs(5).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ApplyError::Journal { .. }), "{text}");
        assert!(text.contains("cannot read the runs: "), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    let e = j.runs(5).unwrap_err().to_string();
    assert!(e.contains("error connecting to server"), "{e}");
    assert!(e.contains("(nothing accepts connections"), "{e}");
    server.start_again();
    assert_eq!(j.runs(5).unwrap()[0].id, run);
    assert_eq!(new_run(&j), run + 1);
}
