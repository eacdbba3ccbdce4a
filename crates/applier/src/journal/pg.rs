//! The PostgreSQL backend of the journal (`journal.url`): the journal's
//! statements on a database that replicas on several hosts share.
//!
//! The journal's API is synchronous (the SQLite one blocks its caller for
//! each commit); here each call runs on a scoped thread that drives this
//! journal's own single-threaded Tokio runtime, which owns the connection
//! (opened by `pg_connect.rs`: TLS as `sslmode` says, always verified).
//! So a call works the same from any runtime flavour or from none, and
//! returns only once the server answered: a write returns after its
//! autocommitted statement is committed (`synchronous_commit = on` for the
//! session, so the commit is on the server's disk).
//!
//! The dialect, in one place: `?N` placeholders become `$N` (statements are
//! prepared once per connection and cached), and [`Value`]s are converted
//! to and from the column types the server declares (`SMALLINT`,
//! `INTEGER`, `BIGINT`, `DOUBLE PRECISION`, `TEXT`, `BYTEA`). A connection
//! found closed before a call is opened again (the call that found it
//! dropped mid-statement fails: a write may or may not have committed,
//! and the run stops as after any journal error).
//!
//! Migrations are numbered ([`schema::PG_MIGRATIONS`]), the version kept in
//! `rebalancer_schema`; they run in one transaction under a
//! transaction-scoped advisory lock, so two processes opening a new journal
//! at once migrate it once. A read-only opening never migrates and sets
//! `default_transaction_read_only`.

use std::collections::HashMap;
use std::error::Error;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use secrecy::SecretString;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::db::{Db, DbError, Row, SchemaState, Value};
use super::{pg_connect, schema};

/// An arbitrary key of the advisory lock migrations take.
const MIGRATION_LOCK: i64 = 0x7265_6261_6c61_6e63; // "rebalanc"

/// An open PostgreSQL journal. Calls are serialised on one connection.
pub(super) struct Pg {
    url: SecretString,
    writable: bool,
    /// Drives the connection while a call waits; `None` only in `drop`.
    rt: Option<tokio::runtime::Runtime>,
    conn: Mutex<Conn>,
}

/// The connection and the statements prepared on it.
struct Conn {
    client: Client,
    prepared: HashMap<&'static str, Statement>,
    /// The last call failed in a way that leaves the session unusable
    /// (`pg_connect::session_is_gone`).
    gone: bool,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async caller may not do.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `fut` to completion on `rt`, on a scoped thread (outside any
/// runtime context of the caller), then gives the connection a turn.
fn block_on<T: Send>(rt: &tokio::runtime::Runtime, fut: impl Future<Output = T> + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            rt.block_on(async {
                let out = fut.await;
                // Let the connection task send what the call queued last
                // (the ROLLBACK of a dropped transaction): between calls
                // nothing drives it.
                tokio::task::yield_now().await;
                out
            })
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// `?N` placeholders as PostgreSQL's `$N` (the journal's statements hold no
/// `?` in literals).
fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

impl Pg {
    /// Connects; `writable` false makes every transaction read-only.
    pub(super) fn open(url: &SecretString, writable: bool) -> Result<Pg, DbError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                DbError::new(format!("cannot start the PostgreSQL client's runtime: {e}"))
            })?;
        let client = match block_on(&rt, connect(url, writable)) {
            Ok(client) => client,
            Err(e) => {
                rt.shutdown_background();
                return Err(e);
            }
        };
        Ok(Pg {
            url: url.clone(),
            writable,
            rt: Some(rt),
            conn: Mutex::new(Conn {
                client,
                prepared: HashMap::new(),
                gone: false,
            }),
        })
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("the runtime lives until drop")
    }

    /// The connection, opened again first if it was closed (the server
    /// restarted, a proxy dropped it, the last call found it gone).
    fn conn(&self) -> Result<MutexGuard<'_, Conn>, DbError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let client = &conn.client;
        let closed = block_on(self.rt(), async move {
            pg_connect::settle().await;
            client.is_closed()
        });
        if conn.gone || closed {
            tracing::warn!("the PostgreSQL journal's connection was lost; connecting again");
            conn.client = block_on(self.rt(), connect(&self.url, self.writable))?;
            conn.prepared.clear();
            conn.gone = false;
            tracing::info!("connected to the PostgreSQL journal again");
        }
        Ok(conn)
    }

    /// Runs `sql` on the connection with `params`, the statement prepared
    /// once per connection.
    fn call<T: Send>(
        &self,
        sql: &'static str,
        params: &[Value],
        go: impl for<'c> FnOnce(
                &'c Client,
                Statement,
                Vec<&'c (dyn ToSql + Sync)>,
            ) -> std::pin::Pin<
                Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 'c>,
            > + Send,
    ) -> Result<T, DbError> {
        let mut guard = self.conn()?;
        let conn = &mut *guard;
        block_on(self.rt(), async move {
            let stmt = match conn.prepared.get(sql) {
                Some(s) => s.clone(),
                None => {
                    let s = conn.client.prepare(&dollars(sql)).await?;
                    conn.prepared.insert(sql, s.clone());
                    s
                }
            };
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
            go(&conn.client, stmt, refs).await
        })
        .map_err(|e| {
            guard.gone = pg_connect::session_is_gone(&e);
            DbError::new(pg_connect::describe(&e))
        })
    }
}

impl Db for Pg {
    fn execute(&self, sql: &'static str, params: &[Value]) -> Result<u64, DbError> {
        self.call(sql, params, |c, stmt, refs| {
            Box::pin(async move { c.execute(&stmt, &refs).await })
        })
    }

    fn query(&self, sql: &'static str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let rows = self.call(sql, params, |c, stmt, refs| {
            Box::pin(async move { c.query(&stmt, &refs).await })
        })?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<_, Value>(i)
                            .map_err(|e| DbError::data(format!("column {i}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
            })
            .collect()
    }

    fn migrate(&self) -> Result<(), DbError> {
        let mut guard = self.conn()?;
        let conn = &mut *guard;
        conn.prepared.clear();
        block_on(self.rt(), migrate(&mut conn.client)).map_err(DbError::new)
    }

    fn schema(&self) -> Result<SchemaState, DbError> {
        // A database without the version table holds no journal yet.
        let exists = self.query("SELECT to_regclass('rebalancer_schema') IS NOT NULL", &[])?;
        let found = if exists.first().map(|r| r.int(0)).transpose()? == Some(1) {
            let rows = self.query("SELECT version FROM rebalancer_schema WHERE id = 1", &[])?;
            rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0)
        } else {
            0
        };
        Ok(SchemaState {
            found: u32::try_from(found).unwrap_or(0),
            current: schema::PG_VERSION,
        })
    }

    #[cfg(test)]
    fn break_for_test(&self) {
        let mut guard = self.conn().expect("connected");
        let conn = &mut *guard;
        block_on(
            self.rt(),
            conn.client
                .batch_execute("SET default_transaction_read_only = on"),
        )
        .expect("read-only");
    }
}

impl ToSql for Value {
    /// Converts to the type the server declared for the parameter.
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Real(v) => v.to_sql(ty, out),
            Value::Text(v) => v.to_sql(ty, out),
            Value::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Opens a session: TLS as the URL asks (`pg_connect`), durable commits,
/// read-only when asked.
async fn connect(url: &SecretString, writable: bool) -> Result<Client, DbError> {
    let client = pg_connect::connect(url).await.map_err(DbError::new)?;
    let setup = if writable {
        "SET synchronous_commit = on"
    } else {
        "SET synchronous_commit = on; SET default_transaction_read_only = on"
    };
    client.batch_execute(setup).await.map_err(|e| {
        DbError::new(format!(
            "cannot set up the session: {}",
            pg_connect::describe(&e)
        ))
    })?;
    Ok(client)
}

/// Brings the database to [`schema::PG_VERSION`] in one transaction under
/// an advisory lock; refuses a newer database.
async fn migrate(c: &mut Client) -> Result<(), String> {
    let step = |what: &'static str| {
        move |e: tokio_postgres::Error| format!("cannot {what}: {}", pg_connect::describe(&e))
    };
    let tx = c.transaction().await.map_err(step("start the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(step("take the migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS rebalancer_schema (
             id      INTEGER PRIMARY KEY CHECK (id = 1),
             version INTEGER NOT NULL
         )",
    )
    .await
    .map_err(step("create the schema version table"))?;
    let found: i32 = tx
        .query_opt("SELECT version FROM rebalancer_schema WHERE id = 1", &[])
        .await
        .map_err(step("read the schema version"))?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(step("read the schema version"))?
        .unwrap_or(0);
    let newest = schema::PG_VERSION as i32;
    if found > newest {
        return Err(format!(
            "the journal is at schema version {found}, newer than this rebalancer knows ({newest}); use the newer rebalancer, or another database"
        ));
    }
    for (i, sql) in schema::PG_MIGRATIONS
        .iter()
        .enumerate()
        .skip(found as usize)
    {
        let to = i as i32 + 1;
        tx.batch_execute(sql).await.map_err(|e| {
            format!(
                "migration to schema version {to} failed: {}",
                pg_connect::describe(&e)
            )
        })?;
    }
    if found < newest {
        tx.execute(
            "INSERT INTO rebalancer_schema (id, version) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            &[&newest],
        )
        .await
        .map_err(step("record the schema version"))?;
    }
    tx.commit().await.map_err(step("commit the migration"))
}
