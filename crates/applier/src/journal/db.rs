//! The journal's backend trait: what the journal needs of a SQL database,
//! and nothing more. Every statement of the journal is written once (in
//! `mod.rs` and `lease.rs`) in the SQL both backends speak, with `?N`
//! placeholders; a backend runs it with [`Value`] parameters and returns
//! [`Row`]s of values. The dialect differences live in the backends:
//!
//! | | SQLite (`sqlite.rs`) | PostgreSQL (`pg.rs`) |
//! |---|---|---|
//! | placeholders | `?N` as written | `?N` rewritten to `$N` |
//! | integers | one 64-bit type | `SMALLINT`/`INTEGER`/`BIGINT`: converted by declared type |
//! | `rb_now_ms()` | the host's boot clock (`CLOCK_BOOTTIME`, monotonic, counts suspend), registered on the connection | the server's `clock_timestamp()`, a SQL function made by the migrations |
//! | `rb_epoch()` | the host's boot id (a boot clock means nothing after a reboot) | `'server'` |
//! | durability | WAL, `synchronous = FULL` | autocommit, `synchronous_commit = on` |
//!
//! So the lease's clock is the journal's: every expiry is computed and
//! compared by the database in one statement, never by a client's wall
//! clock.

use std::fmt;

/// One SQL value, as both backends store it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(v.into())
    }
}

impl From<u64> for Value {
    /// Counts and ids beyond `i64::MAX` cannot occur; they saturate.
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// The parameters of a statement: `params![a, b, c]`.
macro_rules! params {
    ($($v:expr),* $(,)?) => {
        &[$($crate::journal::db::Value::from($v)),*][..]
    };
}
pub(crate) use params;

/// One row of a result, read by column index. A value of the wrong type
/// is an error naming the column, never a panic.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value, DbError> {
        self.0
            .get(i)
            .ok_or_else(|| DbError::data(format!("the row has no column {i}")))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            other => Err(DbError::data(format!(
                "column {i} holds {other:?}, not an integer"
            ))),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?
            .ok_or_else(|| DbError::data(format!("column {i} is NULL, not an integer")))
    }

    /// A count stored as an integer; negative counts read as 0.
    pub fn count(&self, i: usize) -> Result<u64, DbError> {
        Ok(u64::try_from(self.int(i)?).unwrap_or(0))
    }

    pub fn opt_real(&self, i: usize) -> Result<Option<f64>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Real(v) => Ok(Some(*v)),
            Value::Int(v) => Ok(Some(*v as f64)),
            other => Err(DbError::data(format!(
                "column {i} holds {other:?}, not a number"
            ))),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            Value::Blob(b) => String::from_utf8(b.clone())
                .map(Some)
                .map_err(|_| DbError::data(format!("column {i} is not UTF-8 text"))),
            other => Err(DbError::data(format!(
                "column {i} holds {other:?}, not text"
            ))),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, DbError> {
        self.opt_text(i)?
            .ok_or_else(|| DbError::data(format!("column {i} is NULL, not text")))
    }

    pub fn blob(&self, i: usize) -> Result<Vec<u8>, DbError> {
        match self.at(i)? {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(t) => Ok(t.clone().into_bytes()),
            other => Err(DbError::data(format!(
                "column {i} holds {other:?}, not bytes"
            ))),
        }
    }
}

/// Why a statement failed: the backend's own words (SQLite's message, or
/// PostgreSQL's SQLSTATE and message), never a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DbError {
    pub message: String,
}

impl DbError {
    pub fn new(message: impl Into<String>) -> Self {
        DbError {
            message: message.into(),
        }
    }

    /// A value that does not have the shape the journal wrote.
    pub fn data(message: impl Into<String>) -> Self {
        DbError::new(message)
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where a journal's schema stands against this build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SchemaState {
    pub found: u32,
    pub current: u32,
}

/// A SQL database the journal can live in. Statements are `&'static str`
/// (the journal's own, never built from data), so a backend may cache
/// their prepared forms. Each call is one autocommitted statement, durable
/// when it returns.
pub(crate) trait Db: Send + Sync + fmt::Debug {
    /// Runs a statement that returns no rows; the number of rows changed.
    fn execute(&self, sql: &'static str, params: &[Value]) -> Result<u64, DbError>;

    /// Runs a statement that returns rows (a `SELECT`, or a write with
    /// `RETURNING`).
    fn query(&self, sql: &'static str, params: &[Value]) -> Result<Vec<Row>, DbError>;

    /// Brings the schema to this build's version (refusing a newer one).
    fn migrate(&self) -> Result<(), DbError>;

    /// The schema version found, without changing anything.
    fn schema(&self) -> Result<SchemaState, DbError>;

    /// Makes every later write fail (tests of the write-failure path).
    #[cfg(test)]
    fn break_for_test(&self);
}

impl dyn Db + '_ {
    /// The rows of `sql`, at most one.
    pub fn query_opt(&self, sql: &'static str, params: &[Value]) -> Result<Option<Row>, DbError> {
        let mut rows = self.query(sql, params)?;
        if rows.len() > 1 {
            return Err(DbError::data(format!(
                "expected at most one row, got {}",
                rows.len()
            )));
        }
        Ok(rows.pop())
    }

    /// The one row of `sql`.
    pub fn query_one(&self, sql: &'static str, params: &[Value]) -> Result<Row, DbError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| DbError::data("expected a row, got none"))
    }
}
