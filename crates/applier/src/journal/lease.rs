//! The lease (the SQLite backend's; `pg.rs` keeps the same rules in
//! PostgreSQL): one row saying which process may apply with this journal,
//! until when. Taken in a `BEGIN IMMEDIATE` transaction (so two processes
//! cannot both see it free), renewed while the run goes on, released at the
//! end. An expired lease may be taken over: its holder stopped renewing it,
//! so it is dead or stuck, and checks its own expiry before every PUT. A
//! lease whose holder ran on this host and whose process is gone (killed,
//! crashed) is taken over at once: `resume` after `kill -9` need not wait
//! for the expiry. (Linux only, through `/proc`; elsewhere the expiry
//! decides. A reused pid only makes us wait for the expiry.)

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::format_time;
use super::sqlite::Sqlite;
use crate::error::ApplyError;

/// A lease this process holds.
#[derive(Debug)]
pub struct Lease {
    /// `host:pid`, for people.
    pub holder: String,
    /// Unique to this lease (two appliers in one process share host:pid).
    token: String,
    /// When the lease runs out by our own clock (Unix ms).
    expires_ms: AtomicI64,
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(0);

pub(super) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub(super) fn render_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .map(format_time)
        .unwrap_or_else(|_| ms.to_string())
}

pub(crate) fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether process `pid` of this host has ended.
#[cfg(target_os = "linux")]
pub(super) fn process_gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(not(target_os = "linux"))]
pub(super) fn process_gone(_pid: u32) -> bool {
    false
}

impl Lease {
    /// A lease just taken: `holder` (`host:pid`), its `token`, expiring at
    /// `expires_ms`.
    pub(super) fn new(holder: String, token: String, expires_ms: i64) -> Lease {
        Lease {
            holder,
            token,
            expires_ms: AtomicI64::new(expires_ms),
        }
    }

    /// A fresh token for a lease of `holder`, unique within this process.
    pub(super) fn new_token(holder: &str) -> String {
        format!(
            "{holder}:{}:{}",
            now_ms(),
            NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub(super) fn token(&self) -> &str {
        &self.token
    }

    /// Records that the lease now runs until `ms` (after a renewal).
    pub(super) fn set_expires(&self, ms: i64) {
        self.expires_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether the lease is still ours by our clock, with `margin` to spare.
    pub fn valid_for(&self, margin: Duration) -> bool {
        now_ms() + (margin.as_millis() as i64) < self.expires_ms.load(Ordering::Relaxed)
    }
}

impl Sqlite {
    /// Takes the lease for `ttl`, or fails with `LeaseHeld` naming the
    /// holder while someone else's lease is unexpired.
    pub(super) fn acquire_lease(&self, ttl: Duration) -> Result<Lease, ApplyError> {
        let host = host();
        let pid = std::process::id();
        let holder = format!("{host}:{pid}");
        let token = Lease::new_token(&holder);
        let expires = now_ms() + ttl.as_millis() as i64;
        let held = self.with("take the lease", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<(String, i64, String, i64)> = tx
                .query_row(
                    "SELECT holder, expires_ms, host, pid FROM lease WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            if let Some((other, until, other_host, other_pid)) = current {
                let gone = other_host == host
                    && u32::try_from(other_pid).is_ok_and(|p| p != pid && process_gone(p));
                if until > now_ms() && !gone {
                    return Ok(Some((other, until)));
                }
                if gone {
                    tracing::warn!(holder = %other, "taking over the journal lease of a process that is gone");
                } else {
                    tracing::warn!(holder = %other, expired_at = %render_ms(until), "taking over an expired journal lease");
                }
            }
            tx.execute(
                "INSERT INTO lease (id, holder, host, pid, expires_at, token, expires_ms) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, host = excluded.host, pid = excluded.pid,
                   expires_at = excluded.expires_at, token = excluded.token, expires_ms = excluded.expires_ms",
                params![holder, host, pid, render_ms(expires), token, expires],
            )?;
            tx.commit()?;
            Ok(None)
        })?;
        if let Some((holder, until)) = held {
            return Err(ApplyError::LeaseHeld {
                holder,
                expires_at: render_ms(until),
            });
        }
        Ok(Lease {
            holder,
            token,
            expires_ms: AtomicI64::new(expires),
        })
    }

    /// Extends the lease by `ttl` from now; false when it is no longer ours.
    pub(super) fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<bool, ApplyError> {
        let expires = now_ms() + ttl.as_millis() as i64;
        let n = self.with("renew the lease", |c| {
            c.execute(
                "UPDATE lease SET expires_ms = ?2, expires_at = ?3 WHERE id = 1 AND token = ?1",
                params![lease.token, expires, render_ms(expires)],
            )
        })?;
        if n == 1 {
            lease.expires_ms.store(expires, Ordering::Relaxed);
        }
        Ok(n == 1)
    }

    /// Gives the lease up (if it is still ours).
    pub(super) fn release_lease(&self, lease: &Lease) -> Result<(), ApplyError> {
        self.with("release the lease", |c| {
            c.execute(
                "DELETE FROM lease WHERE id = 1 AND token = ?1",
                [&lease.token],
            )
            .map(|_| ())
        })
    }
}
