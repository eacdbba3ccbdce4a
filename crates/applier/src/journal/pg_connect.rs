//! Connecting to the PostgreSQL journal (`journal.url`), and the server's
//! errors in words: SQLSTATE and message, never the password.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::{Client, NoTls};

/// How long opening the connection may take when `journal.url` sets no
/// `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects and spawns the connection's task on the current runtime.
pub(super) async fn connect(url: &SecretString) -> Result<Client, String> {
    let mut config: tokio_postgres::Config = url.expose_secret().parse().map_err(|e| {
        format!(
            "journal.url is not a PostgreSQL URL (postgres://user:password@host:port/database): {}",
            scrub(e, url)
        )
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("rebalancer");
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("cannot connect: {}", scrub(describe(&e), url)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %describe(&e), "the PostgreSQL journal's connection failed");
        }
    });
    Ok(client)
}

/// The server's error (SQLSTATE and message) or the client's.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("SQLSTATE {}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// `e`'s text without the password of `url`, should it quote it.
fn scrub(e: impl std::fmt::Display, url: &SecretString) -> String {
    let text = e.to_string();
    let url = url.expose_secret();
    let text = text.replace(url, &super::mask_url(url));
    match url.parse::<tokio_postgres::Config>() {
        Ok(c) => match c.get_password() {
            Some(p) if !p.is_empty() => text.replace(String::from_utf8_lossy(p).as_ref(), "****"),
            _ => text,
        },
        Err(_) => text,
    }
}
