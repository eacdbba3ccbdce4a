//! The SQLite backend of the journal: one file (WAL, `synchronous=FULL`)
//! on this host, for the processes of one host. It runs the journal's
//! statements as written (`?N` placeholders are SQLite's own) and gives
//! them the journal's clock: `rb_now_ms()` is the host's boot clock
//! (`CLOCK_BOOTTIME`: monotonic, so a wall-clock step cannot expire or
//! extend a lease, and it counts a suspended machine's sleep), and
//! `rb_epoch()` the host's boot id, since a boot clock reading means
//! nothing after a reboot.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

use super::db::{Db, DbError, Row, SchemaState, Value};
use super::{identity, schema};

/// How long a journal call waits for another process's lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An open SQLite journal. Calls are serialised on one connection.
#[derive(Debug)]
pub(super) struct Sqlite {
    conn: Mutex<Connection>,
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Real(v) => ToSqlOutput::Borrowed(ValueRef::Real(*v)),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::Blob(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
        })
    }
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn db_error(e: rusqlite::Error) -> DbError {
    match e.sqlite_error_code() {
        // SQLite's locks belong to a process: one stopped (SIGSTOP, a
        // debugger, a frozen container) inside a journal write keeps the
        // file locked until it continues, and its lease cannot be taken
        // over meanwhile.
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            DbError::new(format!(
                "{e}: another process has held the journal file's lock for over {} s \
                 (a stopped or hung rebalancer on this host? `fuser FILE` names it; \
                 let it continue or end it, then retry)",
                BUSY_TIMEOUT.as_secs()
            ))
        }
        _ => DbError::new(e.to_string()),
    }
}

impl Sqlite {
    /// Opens (creating if missing) the file; `writable` false opens it with
    /// `query_only`, so nothing can change it.
    pub(super) fn open(path: &Path, create: bool, writable: bool) -> Result<Sqlite, DbError> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags).map_err(db_error)?;
        let s = Sqlite {
            conn: Mutex::new(conn),
        };
        s.setup(writable)?;
        Ok(s)
    }

    fn setup(&self, writable: bool) -> Result<(), DbError> {
        let conn = self.conn();
        let fail = |e: rusqlite::Error| DbError::new(format!("cannot set up the journal: {e}"));
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        let volatile = FunctionFlags::SQLITE_UTF8;
        conn.create_scalar_function("rb_now_ms", 0, volatile, |_| Ok(identity::boot_clock_ms()))
            .map_err(fail)?;
        conn.create_scalar_function("rb_epoch", 0, volatile, |_| Ok(identity::boot_id()))
            .map_err(fail)?;
        if !writable {
            return conn
                .execute_batch("PRAGMA query_only = ON; PRAGMA foreign_keys = ON;")
                .map_err(fail);
        }
        let pragmas =
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";
        // Switching a new file to WAL takes an exclusive lock and does not
        // wait on the busy handler: two processes creating the journal at
        // once retry here until the busy timeout.
        let began = std::time::Instant::now();
        loop {
            match conn.execute_batch(pragmas) {
                Ok(()) => return Ok(()),
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::DatabaseBusy
                        && began.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(fail(e)),
            }
        }
    }

    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Db for Sqlite {
    fn execute(&self, sql: &'static str, params: &[Value]) -> Result<u64, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params))
            .map_err(db_error)?;
        Ok(n as u64)
    }

    fn query(&self, sql: &'static str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
        let width = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(db_error)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(db_error)? {
            let mut row = Vec::with_capacity(width);
            for i in 0..width {
                row.push(value(r.get_ref(i).map_err(db_error)?));
            }
            out.push(Row(row));
        }
        Ok(out)
    }

    fn migrate(&self) -> Result<(), DbError> {
        schema::migrate(&mut self.conn()).map_err(DbError::new)
    }

    fn schema(&self) -> Result<SchemaState, DbError> {
        Ok(SchemaState {
            found: schema::version(&self.conn()).map_err(DbError::new)?,
            current: schema::VERSION,
        })
    }

    #[cfg(test)]
    fn break_for_test(&self) {
        self.conn()
            .execute_batch("PRAGMA query_only = ON")
            .expect("query_only");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_file_is_explained_as_a_stopped_or_hung_process() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let m = db_error(busy).message;
        assert!(m.contains("stopped or hung rebalancer"), "{m}");
        assert!(m.contains("over 10 s"), "{m}");
        let other = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(!db_error(other).message.contains("hung"));
    }
}
