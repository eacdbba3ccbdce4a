//! The fenced lease: one row saying which process may apply with this
//! journal, written once for both backends.
//!
//! - **Token.** Every acquisition adds one to `token` (the row is blanked
//!   on release, never deleted, so the number only grows). The journal
//!   issues it, in the same statement that checks the lease is free.
//! - **Clock.** Expiry is `rb_now_ms() + ttl`, computed and compared by the
//!   journal (PostgreSQL's clock; for SQLite, the host's boot clock), never
//!   by a client's wall clock: a host whose clock runs 40 s ahead cannot
//!   think a live lease expired.
//! - **Taking over.** Free, expired by the journal's clock, or held by a
//!   process that is certainly gone (`identity::certainly_gone`: same boot,
//!   same PID namespace, pid gone or reused) — and only by a
//!   compare-and-set on the token read, so two takers cannot both win.
//! - **Fencing.** Every write of a run carries the token (`fenced!`), and
//!   [`fence`] just before each PUT (after the rate limiter's wait)
//!   re-confirms and extends the lease by the journal's clock; a stale
//!   token fails with `LeaseLost` naming the new holder before anything
//!   reaches the CMS. What a taken-over run had pending is resolved by
//!   reading back (`resume`), never re-sent by the old holder.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::db::{params, Db, Row};
use super::{identity, now};
use crate::error::ApplyError;

/// A lease this process holds.
#[derive(Debug)]
pub struct Lease {
    /// `host:pid`, for people.
    pub holder: String,
    /// The journal's fencing token of this acquisition.
    token: i64,
    ttl: Duration,
    /// Until when, by this process's monotonic clock, the lease is surely
    /// ours: the journal confirmed it for `ttl` no earlier than this
    /// instant minus `ttl`.
    valid_until: Mutex<Instant>,
}

impl Lease {
    /// The fencing token.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// Whether the lease is surely still ours, with `margin` to spare, by
    /// this process's monotonic clock since the journal last confirmed it.
    pub fn valid_for(&self, margin: Duration) -> bool {
        let until = *self.valid_until.lock().unwrap_or_else(|p| p.into_inner());
        Instant::now() + margin < until
    }

    fn confirmed(&self, asked_at: Instant) {
        *self.valid_until.lock().unwrap_or_else(|p| p.into_inner()) = asked_at + self.ttl;
    }
}

/// The condition every write of a run adds: the lease is still held under
/// the token bound to `?1`.
macro_rules! fenced {
    ($sql:literal) => {
        concat!(
            $sql,
            " AND EXISTS (SELECT 1 FROM lease WHERE id = 1 AND token = ?1 AND holder <> '')"
        )
    };
    ($sql:literal, $tail:literal) => {
        concat!(
            $sql,
            " AND EXISTS (SELECT 1 FROM lease WHERE id = 1 AND token = ?1 AND holder <> '') ",
            $tail
        )
    };
}
pub(super) use fenced;

const READ: &str = "SELECT token, holder, instance, epoch, expires_ms, rb_now_ms(), rb_epoch(), taken_at FROM lease WHERE id = 1";

/// The lease row as read, with the journal's clock at the reading.
struct Seen {
    token: i64,
    holder: String,
    instance: String,
    expired: bool,
    /// Milliseconds left by the journal's clock (negative: expired).
    left_ms: i64,
    taken_at: String,
}

fn read(db: &dyn Db) -> Result<Seen, String> {
    let ensure = "INSERT INTO lease (id, token, holder, instance, epoch, expires_ms, taken_at)
                  VALUES (1, 0, '', '', '', 0, '') ON CONFLICT (id) DO NOTHING";
    db.execute(ensure, &[]).map_err(|e| e.to_string())?;
    let row = db.query_one(READ, &[]).map_err(|e| e.to_string())?;
    seen(&row).map_err(|e| e.to_string())
}

fn seen(r: &Row) -> Result<Seen, super::db::DbError> {
    let (epoch, expires, now, now_epoch) = (r.text(3)?, r.int(4)?, r.int(5)?, r.text(6)?);
    Ok(Seen {
        token: r.int(0)?,
        holder: r.text(1)?,
        instance: r.text(2)?,
        expired: epoch != now_epoch || expires <= now,
        left_ms: if epoch == now_epoch {
            expires.saturating_sub(now)
        } else {
            -1
        },
        taken_at: r.text(7)?,
    })
}

/// Local wall time `ms` from now, for people.
fn in_ms(ms: i64) -> String {
    super::format_time(time::OffsetDateTime::now_utc() + time::Duration::milliseconds(ms))
}

/// Takes the lease for `ttl`, or fails with `LeaseHeld` naming the holder
/// while someone else's lease is unexpired by the journal's clock.
pub(super) fn acquire(
    db: &dyn Db,
    ttl: Duration,
    fail: &dyn Fn(String) -> ApplyError,
) -> Result<Lease, ApplyError> {
    let holder = super::holder();
    let instance = identity::instance();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
    let current = read(db).map_err(|e| fail(format!("cannot read the lease: {e}")))?;
    let free = current.holder.is_empty();
    let gone = !free && !current.expired && identity::certainly_gone(&current.instance);
    if !free && !current.expired && !gone {
        return Err(ApplyError::LeaseHeld {
            holder: current.holder,
            expires_at: in_ms(current.left_ms),
        });
    }
    let asked_at = Instant::now();
    let taken = db
        .query(
            "UPDATE lease SET token = token + 1, holder = ?2, instance = ?3, epoch = rb_epoch(),
               expires_ms = rb_now_ms() + ?4, taken_at = ?5
             WHERE id = 1 AND token = ?1
               AND (holder = '' OR epoch <> rb_epoch() OR expires_ms <= rb_now_ms() OR ?6 = 1)
             RETURNING token",
            params![
                current.token,
                holder.as_str(),
                instance.as_str(),
                ttl_ms,
                now(),
                gone
            ],
        )
        .map_err(|e| fail(format!("cannot take the lease: {e}")))?;
    let Some(row) = taken.first() else {
        // Someone else took or renewed it between our reading and our
        // write: theirs it is.
        let now_held = read(db).map_err(|e| fail(format!("cannot read the lease: {e}")))?;
        return Err(ApplyError::LeaseHeld {
            holder: now_held.holder,
            expires_at: in_ms(now_held.left_ms),
        });
    };
    let token = row
        .int(0)
        .map_err(|e| fail(format!("cannot take the lease: {e}")))?;
    if gone {
        tracing::warn!(holder = %current.holder, "taking over the journal lease of a process that is gone (same boot and PID namespace)");
    } else if !free {
        tracing::warn!(holder = %current.holder, expired_ms_ago = -current.left_ms, "taking over a journal lease that expired by the journal's clock");
    }
    let lease = Lease {
        holder,
        token,
        ttl,
        valid_until: Mutex::new(asked_at),
    };
    lease.confirmed(asked_at);
    Ok(lease)
}

/// Extends the lease by its ttl from now by the journal's clock; false
/// when it is no longer ours.
pub(super) fn renew(db: &dyn Db, lease: &Lease) -> Result<bool, String> {
    let asked_at = Instant::now();
    let ttl_ms = i64::try_from(lease.ttl.as_millis()).unwrap_or(i64::MAX / 4);
    let n = db
        .execute(
            "UPDATE lease SET expires_ms = rb_now_ms() + ?2, epoch = rb_epoch()
             WHERE id = 1 AND token = ?1 AND holder <> ''",
            params![lease.token, ttl_ms],
        )
        .map_err(|e| e.to_string())?;
    if n == 1 {
        lease.confirmed(asked_at);
    }
    Ok(n == 1)
}

/// Just before a PUT: confirms (and extends) the lease by the journal's
/// clock, or fails with `LeaseLost` naming who holds it now.
pub(super) fn fence(
    db: &dyn Db,
    lease: &Lease,
    fail: &dyn Fn(String) -> ApplyError,
) -> Result<(), ApplyError> {
    match renew(db, lease) {
        Ok(true) => Ok(()),
        Ok(false) => Err(lost(db, fail)),
        Err(e) => Err(fail(format!("cannot confirm the lease before a PUT: {e}"))),
    }
}

/// The error of a run whose lease was taken over.
pub(super) fn lost(db: &dyn Db, fail: &dyn Fn(String) -> ApplyError) -> ApplyError {
    match read(db) {
        Ok(now_held) if now_held.taken_at.is_empty() => ApplyError::LeaseLost {
            holder: "nobody (this run never held the journal's lease)".into(),
            at: "-".into(),
        },
        Ok(now_held) if now_held.holder.is_empty() => ApplyError::LeaseLost {
            holder: "another process (which has since released it)".into(),
            at: now_held.taken_at,
        },
        Ok(now_held) => ApplyError::LeaseLost {
            holder: now_held.holder,
            at: now_held.taken_at,
        },
        Err(e) => fail(format!(
            "the lease is no longer ours, and cannot be read: {e}"
        )),
    }
}

/// Gives the lease up (if it is still ours); the token stays, so the next
/// holder's is higher.
pub(super) fn release(db: &dyn Db, lease: &Lease) -> Result<(), String> {
    db.execute(
        "UPDATE lease SET holder = '', instance = '', expires_ms = 0 WHERE id = 1 AND token = ?1",
        params![lease.token],
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}
