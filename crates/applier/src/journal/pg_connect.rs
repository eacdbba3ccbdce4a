//! The PostgreSQL journal's connection: what `journal.url` asks for
//! ([`Target`]), opening a session ([`connect`]), noticing a session that
//! is gone so that `pg.rs` opens another ([`settle`], [`session_is_gone`]),
//! and the server's errors told for an operator ([`describe`]).
//!
//! `journal.url` is a `postgres://` URL or a libpq `key=value` string.
//! tokio-postgres parses it, after the TLS keys are taken out here (it
//! knows only `sslmode=disable|prefer|require` and no `sslrootcert`):
//!
//! - `sslmode=disable`: plain TCP.
//! - `sslmode=prefer` (the default): TLS when the server offers it, plain
//!   TCP when it does not. When it offers TLS the certificate is verified;
//!   one that cannot be verified is refused, never used unverified.
//! - `sslmode=require`, `verify-ca`, `verify-full`: TLS or nothing, and
//!   the certificate always verified as `verify-full` does (signed by a
//!   trusted CA, naming the host of the URL). TLS verification is always
//!   on: there is no mode that skips it.
//! - `sslrootcert=PATH`: PEM certificate(s) of a private CA, trusted in
//!   addition to the webpki (Mozilla) roots, as `http.ca_file` is for the
//!   HTTP clients; `sslrootcert=system` means the webpki roots only.
//!
//! TLS is rustls with the ring provider, the same build the HTTP clients
//! use (reqwest's `rustls-tls`), via `tokio-postgres-rustls`. The URL form
//! is split the way tokio-postgres splits it (credentials up to the first
//! `@`, parameters after the next `?`, `&`-separated, percent-decoded) so a
//! password holding `/`, `?` or `+` and a multi-host URL reach it
//! unchanged; a general URL parser would refuse or rewrite both.
//!
//! When the URL does not say otherwise: `connect_timeout` 10 s,
//! `application_name=rebalancer`, TCP keepalives after 30 s idle (every
//! 10 s, 3 probes) and a 60 s TCP user timeout, so a silently dropped link
//! fails a call within about a minute instead of hanging.
//!
//! Errors read `SQLSTATE 28P01 (invalid_password): password
//! authentication failed for user "app"`, with the server's detail and
//! hint, and, for the causes an operator meets (wrong password, missing
//! database, missing privilege, read-only session, server shutting down,
//! untrusted certificate, nothing listening), what to do, in parentheses.
//! The password never leaves [`Target`]: every text [`connect`] builds from
//! an error goes through [`Target::describe`], which replaces it with
//! `****` should anything quote it (the server never does).
//!
//! Reconnecting: between two journal calls nothing drives the journal's
//! current-thread runtime, so a session the server closed meanwhile (a
//! restart, `pg_terminate_backend`) is seen only once the connection task
//! runs: `pg.rs` calls [`settle`] before a call and opens a new session
//! when the client is closed, or when the last call failed with an error
//! after which the session is gone ([`session_is_gone`]). The statement
//! that met the drop fails (a write may or may not have committed); the
//! next call reconnects.

use std::error::Error as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

type PgError = tokio_postgres::Error;

/// How long opening the connection may take when `journal.url` sets no
/// `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keepalive defaults (libpq's `keepalives_idle`, `_interval`,
/// `_count`) when `journal.url` sets none.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;
/// tokio-postgres's own keepalive idle default, i.e. "not set".
const TOKIO_POSTGRES_KEEPALIVE_IDLE: Duration = Duration::from_secs(2 * 60 * 60);
/// How long sent data may stay unacknowledged before the link counts as
/// dead, when `journal.url` sets no `tcp_user_timeout`.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(60);

/// The `sslmode` values, as written in `journal.url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Result<TlsMode, String> {
        Ok(match value {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            "allow" => {
                return Err(
                    "sslmode=allow (plain first, TLS only if the server insists) is not supported \
                     (use sslmode=verify-full, or prefer)"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "sslmode={other:?} is not a TLS mode (use disable, prefer, require, verify-ca or verify-full)"
                ))
            }
        })
    }

    /// tokio-postgres's mode: the verifying modes are `Require` there,
    /// since our connector always verifies.
    fn ssl_mode(self) -> SslMode {
        match self {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        }
    }
}

/// `journal.url`, parsed once and kept for every (re)connection.
pub(super) struct Target {
    config: Config,
    tls: MakeRustlsConnect,
    mode: TlsMode,
    /// The URL's password, to scrub from any text that might quote it.
    password: Option<SecretString>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The TLS keys taken out of `journal.url` before tokio-postgres sees it.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsKeys {
    mode: Option<String>,
    rootcert: Option<String>,
}

impl TlsKeys {
    /// Takes `key = value` if it is one of ours; `Err` for the TLS keys we
    /// do not support (tokio-postgres would only say "unknown option").
    fn take(&mut self, key: &str, value: String) -> Result<bool, String> {
        match key {
            "sslmode" => self.mode = Some(value),
            "sslrootcert" => self.rootcert = Some(value),
            "sslcert" | "sslkey" | "sslpassword" | "sslcertmode" => {
                return Err(format!(
                    "{key}: client certificates are not supported (authenticate with the user and password in the URL, over TLS: sslmode=verify-full)"
                ))
            }
            "sslcrl" | "sslcrldir" => {
                return Err(format!(
                    "{key} is not supported (remove it; to revoke a server certificate, remove its CA from sslrootcert)"
                ))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Target {
    /// Parses `url` (URL or `key=value` form), applies the defaults and
    /// builds the TLS connector (reading `sslrootcert`). The error names
    /// what is wrong and never quotes the password.
    pub(super) fn parse(url: &SecretString) -> Result<Target, String> {
        let text = url.expose_secret();
        let scrub_raw = |s: String| {
            let raw = raw_password(text);
            let decoded = raw.as_deref().and_then(|p| decode(p).ok());
            scrub_with(&scrub_with(&s, raw.as_deref()), decoded.as_deref())
        };
        let (rest, keys) = split_tls_keys(text).map_err(scrub_raw)?;
        let mut config: Config = rest.parse().map_err(|e: PgError| {
            scrub_raw(format!(
                "not a PostgreSQL URL (postgres://user:password@host:5432/database?sslmode=verify-full) \
                 or key=value string: {}",
                describe(&e)
            ))
        })?;
        let password = config
            .get_password()
            .filter(|p| !p.is_empty())
            .map(|p| SecretString::from(String::from_utf8_lossy(p).into_owned()));
        let mode = match &keys.mode {
            Some(m) => TlsMode::parse(m)?,
            None => TlsMode::Prefer,
        };
        config.ssl_mode(mode.ssl_mode());
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("rebalancer");
        }
        if config.get_keepalives_idle() == TOKIO_POSTGRES_KEEPALIVE_IDLE {
            config.keepalives_idle(KEEPALIVE_IDLE);
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(KEEPALIVE_INTERVAL);
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(KEEPALIVE_RETRIES);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        let rootcert = keys
            .rootcert
            .as_deref()
            .filter(|r| !r.is_empty() && *r != "system");
        let tls = MakeRustlsConnect::new(tls_config(rootcert.map(Path::new))?);
        Ok(Target {
            config,
            tls,
            mode,
            password,
        })
    }

    /// Opens a session (TLS as the mode says) and spawns the task that
    /// drives the connection on the current runtime; the task logs
    /// (without secrets) why the connection ended, if it failed.
    pub(super) async fn connect(&self) -> Result<Client, PgError> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %describe(&e), "the PostgreSQL journal's connection ended");
            }
        });
        Ok(client)
    }

    /// [`describe`]`(e)`, with the password (should anything quote it)
    /// replaced by `****`.
    pub(super) fn describe(&self, e: &PgError) -> String {
        self.scrub(&describe(e))
    }

    /// `text` with the password replaced by `****`.
    pub(super) fn scrub(&self, text: &str) -> String {
        scrub_with(
            text,
            self.password
                .as_ref()
                .map(|p| p.expose_secret().to_string())
                .as_deref(),
        )
    }
}

fn scrub_with(text: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => text.replace(p, "****"),
        _ => text.to_string(),
    }
}

/// The password as tokio-postgres would read it, for scrubbing the errors
/// of a URL that does not parse (best effort: both the raw and the
/// decoded form are secret).
fn raw_password(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let creds = &rest[..rest.find('@')?];
    let (_, password) = creds.split_once(':')?;
    Some(password.to_string())
}

/// Splits the TLS keys out of `url`: the rest (for tokio-postgres) and
/// the keys. The URL form keeps every other parameter byte for byte; the
/// `key=value` form is re-quoted.
fn split_tls_keys(url: &str) -> Result<(String, TlsKeys), String> {
    let mut keys = TlsKeys::default();
    let prefix = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|p| url.starts_with(p));
    if let Some(prefix) = prefix {
        // As tokio-postgres: credentials end at the first '@', and the
        // parameters start at the first '?' after them.
        let after = &url[prefix.len()..];
        let creds_end = after.find('@').map_or(0, |i| i + 1);
        let Some(q) = after[creds_end..].find('?') else {
            return Ok((url.to_string(), keys));
        };
        let query_at = prefix.len() + creds_end + q;
        let mut kept = Vec::new();
        for piece in url[query_at + 1..].split('&') {
            let taken = match piece.split_once('=') {
                Some((k, v)) => keys.take(&decode(k)?, decode(v)?)?,
                None => false,
            };
            if !taken {
                kept.push(piece);
            }
        }
        let mut rest = url[..query_at].to_string();
        if !kept.is_empty() {
            rest.push('?');
            rest.push_str(&kept.join("&"));
        }
        return Ok((rest, keys));
    }
    let Some(pairs) = key_values(url) else {
        // Not well formed: tokio-postgres says where.
        return Ok((url.to_string(), keys));
    };
    let mut rest = Vec::new();
    for (k, v) in pairs {
        if !keys.take(&k, v.clone())? {
            let quoted = v.replace('\\', "\\\\").replace('\'', "\\'");
            rest.push(format!("{k}='{quoted}'"));
        }
    }
    Ok((rest.join(" "), keys))
}

fn decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "a URL parameter is not UTF-8 once percent-decoded".to_string())
}

/// The `key=value` pairs of a libpq connection string, read as
/// tokio-postgres reads them (whitespace around `=`, values bare or in
/// single quotes, `\` escapes the next character); `None` if malformed.
fn key_values(s: &str) -> Option<Vec<(String, String)>> {
    let mut it = s.chars().peekable();
    let mut out = Vec::new();
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            return (it.peek().is_none()).then_some(out);
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        it.next_if_eq(&'=')?;
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next()? {
                    '\'' => break,
                    '\\' => value.push(it.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(c2) = it.next() {
                        value.push(c2);
                    }
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return None;
            }
        }
        out.push((key, value));
    }
}

/// rustls with the ring provider, trusting the webpki roots plus the PEM
/// certificates of `rootcert`.
fn tls_config(rootcert: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = rootcert {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let what = format!("sslrootcert {}", path.display());
        let pem = std::fs::read(path).map_err(|e| {
            format!("{what}: cannot read it: {e} (point sslrootcert at a readable PEM file holding the CA certificate)")
        })?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("{what}: not valid PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("{what}: not a usable CA certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "{what} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)"
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Parses `url` and opens a session on the current runtime (which then
/// drives the connection). The error says what failed, with the server's
/// SQLSTATE or the connection's cause, never the password.
pub(super) async fn connect(url: &SecretString) -> Result<Client, String> {
    let target = Target::parse(url).map_err(|e| format!("journal.url: {e}"))?;
    target
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {}", target.describe(&e)))
}

/// Lets the connection task read what arrived since the last call (a
/// termination notice, the end of the stream), so that a session the
/// server closed meanwhile is seen as closed now: on the journal's
/// current-thread runtime the first yield polls the sockets (waking the
/// task), the second runs it.
pub(super) async fn settle() {
    for _ in 0..2 {
        tokio::task::yield_now().await;
    }
}

/// Whether after `e` the session cannot be used any more (a FATAL from the
/// server, a closed or broken stream): the next call reconnects even if
/// the connection task has not noticed yet.
pub(super) fn session_is_gone(e: &PgError) -> bool {
    match e.as_db_error() {
        Some(db) => {
            matches!(db.severity(), "FATAL" | "PANIC")
                || db.code().code().starts_with("08")
                || matches!(db.code().code(), "57P01" | "57P02" | "57P03")
        }
        None => e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// `e` for an operator: [`cause`], then what to do about it when it is
/// one an operator can fix ([`fix_for`]), in parentheses.
pub(super) fn describe(e: &PgError) -> String {
    let text = cause(e);
    match fix_for(e) {
        Some(fix) => format!("{text} ({fix})"),
        None => text,
    }
}

/// A server error as `SQLSTATE 28P01 (invalid_password): password
/// authentication failed for user "x"` with its detail and hint; any
/// other error with its causes (the I/O or TLS error under "error
/// connecting to server").
fn cause(e: &PgError) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let mut text = match sqlstate_name(code) {
            Some(name) => format!("SQLSTATE {code} ({name}): {}", db.message()),
            None => format!("SQLSTATE {code}: {}", db.message()),
        };
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

/// The names of the SQLSTATEs an operator meets (PostgreSQL's appendix A).
fn sqlstate_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "08000" => "connection_exception",
        "08006" => "connection_failure",
        "08P01" => "protocol_violation",
        "25006" => "read_only_sql_transaction",
        "28000" => "invalid_authorization_specification",
        "28P01" => "invalid_password",
        "3D000" => "invalid_catalog_name",
        "3F000" => "invalid_schema_name",
        "40001" => "serialization_failure",
        "40P01" => "deadlock_detected",
        "42501" => "insufficient_privilege",
        "42P01" => "undefined_table",
        "53100" => "disk_full",
        "53200" => "out_of_memory",
        "53300" => "too_many_connections",
        "55P03" => "lock_not_available",
        "57014" => "query_canceled",
        "57P01" => "admin_shutdown",
        "57P02" => "crash_shutdown",
        "57P03" => "cannot_connect_now",
        "58030" => "io_error",
        _ => return None,
    })
}

/// What to do about `e`, when it is one an operator can fix; `None`
/// leaves the journal's general PostgreSQL fix.
fn fix_for(e: &PgError) -> Option<&'static str> {
    if let Some(db) = e.as_db_error() {
        return Some(match db.code().code() {
            "28P01" => "the user or password in journal.url is wrong: correct it (percent-encode @ : / ? in the password)",
            "28000" => "the server's pg_hba.conf does not let this user reach this database from this host: add a line for it, or, if only hostssl lines allow it, connect with sslmode=verify-full in journal.url",
            "3D000" => "the database in journal.url does not exist: create it (createdb NAME, owned by the journal's user) or correct its name",
            "42501" => "the journal's user lacks a privilege: grant it CREATE on the database's schema (to create the tables) and SELECT, INSERT, UPDATE on the journal's tables, or use the role that owns them",
            "25006" => "the session is read-only (a standby, or default_transaction_read_only for this role or database): point journal.url at the primary, or use a role that can write",
            "57P01" | "57P02" | "57P03" => "the server is shutting down, restarting or starting up: run again once it accepts connections",
            "53300" => "the server has no free connection slot: raise max_connections or close idle clients",
            _ => return None,
        });
    }
    let text = cause(e);
    if text.contains("server does not support TLS") {
        return Some("the server does not offer TLS: enable ssl on the server, or, on a trusted network only, set sslmode=disable (or prefer) in journal.url");
    }
    match io_kind(e) {
        Some(std::io::ErrorKind::ConnectionRefused) => {
            return Some("nothing accepts connections at journal.url's host and port: start the PostgreSQL server (or wait for its restart), or correct the host or port");
        }
        Some(std::io::ErrorKind::TimedOut) => {
            return Some("journal.url's host did not answer within connect_timeout: check the host, the port and any firewall between");
        }
        _ => {}
    }
    if text.contains("timeout waiting for server") {
        return Some("journal.url's host did not answer within connect_timeout: check the host, the port and any firewall between");
    }
    if is_certificate_error(e) {
        return Some("the server's certificate is not trusted: give the CA that signed it with sslrootcert=/path/to/ca.pem in journal.url, and connect by a host name the certificate lists (in its subjectAltName; a self-signed \"snakeoil\" certificate cannot be verified: give the server one from your CA, or, on a trusted network only, set sslmode=disable)");
    }
    None
}

/// The kind of the I/O error under `e`, if one is.
fn io_kind(e: &PgError) -> Option<std::io::ErrorKind> {
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cause = c.source();
    }
    None
}

/// Whether rustls refused the server's certificate.
fn is_certificate_error(e: &PgError) -> bool {
    let mut cause = e.source();
    while let Some(c) = cause {
        let rustls_error = c.downcast_ref::<rustls::Error>().or_else(|| {
            c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if matches!(
            rustls_error,
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
        ) {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
#[path = "pg_connect_tests.rs"]
mod tests;
