//! The journal's schema and its numbered migrations, for SQLite and (below,
//! [`PG_MIGRATIONS`]) PostgreSQL. The SQLite version lives in
//! `PRAGMA user_version`: 0 is an empty file, N means the first N entries of
//! [`MIGRATIONS`] were applied, each in its own transaction together with
//! the version bump, so a crash mid-migration leaves the previous version.
//! A file newer than this build is refused, never downgraded.

use rusqlite::Connection;

/// Migration N+1 takes a journal from version N to N+1. Append only.
pub const MIGRATIONS: &[&str] = &[
    // 1: runs, leads, puts and the lease.
    r#"
    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        kind          TEXT    NOT NULL,
        parent        INTEGER REFERENCES runs(id),
        plan_hash     TEXT    NOT NULL,
        snapshot_hash TEXT    NOT NULL,
        config_digest TEXT    NOT NULL,
        plan_json     BLOB    NOT NULL,
        started_at    TEXT    NOT NULL,
        ended_at      TEXT,
        outcome       TEXT    NOT NULL,
        puts_sent     INTEGER NOT NULL DEFAULT 0,
        failed        INTEGER NOT NULL DEFAULT 0,
        moves_made    INTEGER NOT NULL DEFAULT 0,
        holder        TEXT    NOT NULL
    );
    CREATE TABLE leads (
        run         INTEGER NOT NULL REFERENCES runs(id),
        campaign_id INTEGER NOT NULL,
        lead_id     INTEGER NOT NULL,
        state       TEXT    NOT NULL,
        detail      TEXT    NOT NULL,
        PRIMARY KEY (run, campaign_id, lead_id)
    );
    CREATE TABLE puts (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        run         INTEGER NOT NULL REFERENCES runs(id),
        campaign_id INTEGER NOT NULL,
        lead_id     INTEGER NOT NULL,
        seq         INTEGER NOT NULL,
        body        TEXT    NOT NULL,
        state       TEXT    NOT NULL,
        status      INTEGER,
        echo        TEXT,
        message     TEXT,
        sent_at     TEXT    NOT NULL,
        done_at     TEXT
    );
    CREATE TABLE lease (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        holder     TEXT    NOT NULL,
        host       TEXT    NOT NULL,
        pid        INTEGER NOT NULL,
        expires_at TEXT    NOT NULL
    );
    "#,
    // 2: whether a put took effect (rollback needs it), each lead's mapping
    // before its first PUT, a lease token (two appliers in one process share
    // host:pid) with a numeric expiry, and an index for per-run reads. A
    // version-1 lease row has no token and is dropped (it cannot be renewed).
    r#"
    ALTER TABLE puts ADD COLUMN applied INTEGER;
    UPDATE puts SET applied = 1 WHERE state = 'applied';
    UPDATE puts SET applied = 0 WHERE state = 'failed';
    ALTER TABLE leads ADD COLUMN before TEXT;
    DELETE FROM lease;
    ALTER TABLE lease ADD COLUMN token TEXT NOT NULL DEFAULT '';
    ALTER TABLE lease ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX puts_by_run ON puts (run, campaign_id, lead_id, seq);
    "#,
    // 3: when a put's outcome was recorded, as Unix milliseconds (`done_at`
    // is RFC 3339 text with a variable-length fraction, which does not
    // sort), and an index of the applied puts by it: what moved recently
    // (`recent_moves`, the flap guard) is read without scanning the whole
    // history. Older rows are filled from `done_at`.
    r#"
    ALTER TABLE puts ADD COLUMN done_ms INTEGER;
    UPDATE puts SET done_ms = CAST(ROUND((julianday(done_at) - 2440587.5) * 86400000.0) AS INTEGER)
      WHERE done_at IS NOT NULL;
    CREATE INDEX puts_applied_by_time ON puts (done_ms) WHERE applied = 1;
    "#,
    // 4: the cycles of `rebalancer run`: one row per scheduled cycle, also
    // those that wrote nothing (dry run, no changes, blocked, skipped
    // because another replica held the lease), with the run it made if any.
    r#"
    CREATE TABLE cycles (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at       TEXT    NOT NULL,
        ended_at         TEXT    NOT NULL,
        mode             TEXT    NOT NULL,
        outcome          TEXT    NOT NULL,
        run              INTEGER REFERENCES runs(id),
        snapshot_hash    TEXT,
        plan_hash        TEXT,
        assigns          INTEGER NOT NULL DEFAULT 0,
        unassigns        INTEGER NOT NULL DEFAULT 0,
        deferred         INTEGER NOT NULL DEFAULT 0,
        held_back        INTEGER NOT NULL DEFAULT 0,
        shortfall_before REAL,
        shortfall_after  REAL,
        peak_before      REAL,
        peak_after       REAL,
        detail           TEXT    NOT NULL,
        holder           TEXT    NOT NULL
    );
    "#,
    // 5: the fenced lease (see `lease.rs`). `token` grows by one at every
    // acquisition and is never reset (the row is blanked on release, never
    // deleted); the expiry is kept on the journal's own clock
    // (`rb_now_ms()`, in the epoch `rb_epoch()`); `instance` names the
    // holder's process exactly enough to tell, on the same host and in the
    // same PID namespace, that it is gone. A version-4 lease is dropped: a
    // version-4 process cannot run against a version-5 journal.
    LEASE_TABLE,
    // 6: plans waiting for a person's approval (`run.approval`), and what
    // became of each: pending, approved, rejected, applied, superseded,
    // expired. At most one is pending or approved at a time (every write
    // that opens one checks it in the same statement).
    PROPOSALS_SQLITE,
];

const PROPOSALS_SQLITE: &str = r#"
    CREATE TABLE proposals (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        state         TEXT    NOT NULL,
        plan_hash     TEXT    NOT NULL,
        changes_key   TEXT    NOT NULL,
        snapshot_hash TEXT    NOT NULL,
        config_digest TEXT    NOT NULL,
        plan_json     BLOB    NOT NULL,
        report_html   TEXT    NOT NULL,
        assigns       INTEGER NOT NULL,
        unassigns     INTEGER NOT NULL,
        proposed_at   TEXT    NOT NULL,
        proposed_by   TEXT    NOT NULL,
        decided_at    TEXT,
        decided_by    TEXT,
        comment       TEXT,
        ended_reason  TEXT,
        run           INTEGER REFERENCES runs(id)
    );
    CREATE INDEX proposals_by_state ON proposals (state, id);
"#;

/// The fenced lease's table, the same text in both dialects.
const LEASE_TABLE: &str = r#"
    DROP TABLE IF EXISTS lease;
    CREATE TABLE lease (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        token      BIGINT  NOT NULL,
        holder     TEXT    NOT NULL,
        instance   TEXT    NOT NULL,
        epoch      TEXT    NOT NULL,
        expires_ms BIGINT  NOT NULL,
        taken_at   TEXT    NOT NULL
    );
    INSERT INTO lease (id, token, holder, instance, epoch, expires_ms, taken_at)
      VALUES (1, 0, '', '', '', 0, '');
"#;

/// The version this build writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the file to [`VERSION`]; refuses newer files. Each step takes
/// the write lock first (`BEGIN IMMEDIATE`) and re-reads the version under
/// it, so two processes opening a new journal at once migrate it once
/// (the second waits on the busy timeout, then finds the work done).
pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    let found = version(conn)?;
    if found > VERSION {
        return Err(format!(
            "the journal is at schema version {found}, newer than this rebalancer knows ({VERSION}); use the newer rebalancer, or another journal file"
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let to = i + 1;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| format!("cannot start migration {to}: {e}"))?;
        if version(&tx)? >= to as u32 {
            continue; // another process migrated it meanwhile
        }
        tx.execute_batch(sql)
            .and_then(|_| tx.pragma_update(None, "user_version", to as u32))
            .and_then(|_| tx.commit())
            .map_err(|e| format!("migration to schema version {to} failed: {e}"))?;
    }
    Ok(())
}

/// The SQLite file's schema version (0: empty).
pub fn version(c: &Connection) -> Result<u32, String> {
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| format!("cannot read the schema version: {e}"))
}

/// The PostgreSQL journal's migrations (version in `rebalancer_schema`).
/// Migration N+1 takes a database from version N to N+1. Append only.
/// Version 1 is the SQLite schema at its version 4, in PostgreSQL types
/// (`BIGSERIAL` ids, `BYTEA` plans, `BOOLEAN` applied); the lease row is
/// never deleted, only freed (token '').
pub const PG_MIGRATIONS: &[&str] = &[
    // 1: runs, leads, puts, the lease and the cycles.
    r#"
    CREATE TABLE runs (
        id            BIGSERIAL PRIMARY KEY,
        kind          TEXT    NOT NULL,
        parent        BIGINT  REFERENCES runs(id),
        plan_hash     TEXT    NOT NULL,
        snapshot_hash TEXT    NOT NULL,
        config_digest TEXT    NOT NULL,
        plan_json     BYTEA   NOT NULL,
        started_at    TEXT    NOT NULL,
        ended_at      TEXT,
        outcome       TEXT    NOT NULL,
        puts_sent     BIGINT  NOT NULL DEFAULT 0,
        failed        BIGINT  NOT NULL DEFAULT 0,
        moves_made    BIGINT  NOT NULL DEFAULT 0,
        holder        TEXT    NOT NULL
    );
    CREATE TABLE leads (
        run         BIGINT  NOT NULL REFERENCES runs(id),
        campaign_id BIGINT  NOT NULL,
        lead_id     BIGINT  NOT NULL,
        state       TEXT    NOT NULL,
        detail      TEXT    NOT NULL,
        "before"    TEXT,
        PRIMARY KEY (run, campaign_id, lead_id)
    );
    CREATE TABLE puts (
        id          BIGSERIAL PRIMARY KEY,
        run         BIGINT  NOT NULL REFERENCES runs(id),
        campaign_id BIGINT  NOT NULL,
        lead_id     BIGINT  NOT NULL,
        seq         BIGINT  NOT NULL,
        body        TEXT    NOT NULL,
        state       TEXT    NOT NULL,
        applied     BOOLEAN,
        status      INTEGER,
        echo        TEXT,
        message     TEXT,
        sent_at     TEXT    NOT NULL,
        done_at     TEXT,
        done_ms     BIGINT
    );
    CREATE INDEX puts_by_run ON puts (run, campaign_id, lead_id, seq);
    CREATE INDEX puts_applied_by_time ON puts (done_ms) WHERE applied;
    CREATE TABLE lease (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        holder     TEXT    NOT NULL,
        host       TEXT    NOT NULL,
        pid        BIGINT  NOT NULL,
        expires_at TEXT    NOT NULL,
        token      TEXT    NOT NULL,
        expires_ms BIGINT  NOT NULL
    );
    CREATE TABLE cycles (
        id               BIGSERIAL PRIMARY KEY,
        started_at       TEXT    NOT NULL,
        ended_at         TEXT    NOT NULL,
        mode             TEXT    NOT NULL,
        outcome          TEXT    NOT NULL,
        run              BIGINT  REFERENCES runs(id),
        snapshot_hash    TEXT,
        plan_hash        TEXT,
        assigns          BIGINT  NOT NULL DEFAULT 0,
        unassigns        BIGINT  NOT NULL DEFAULT 0,
        deferred         BIGINT  NOT NULL DEFAULT 0,
        held_back        BIGINT  NOT NULL DEFAULT 0,
        shortfall_before DOUBLE PRECISION,
        shortfall_after  DOUBLE PRECISION,
        peak_before      DOUBLE PRECISION,
        peak_after       DOUBLE PRECISION,
        detail           TEXT    NOT NULL,
        holder           TEXT    NOT NULL
    );
    "#,
    // 2: the journal's clock as SQL functions (the SQLite backend registers
    // the same names on its connection), `applied` as a small integer like
    // SQLite's (so one statement text serves both), and the fenced lease.
    r#"
    CREATE OR REPLACE FUNCTION rb_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE
      AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;
    CREATE OR REPLACE FUNCTION rb_epoch() RETURNS TEXT LANGUAGE sql IMMUTABLE
      AS $$ SELECT 'server'::text $$;
    DROP INDEX puts_applied_by_time;
    ALTER TABLE puts ALTER COLUMN applied TYPE SMALLINT USING (applied::int)::smallint;
    CREATE INDEX puts_applied_by_time ON puts (done_ms) WHERE applied = 1;
    "#,
    LEASE_TABLE,
    // 4: proposals, as SQLite's migration 6.
    r#"
    CREATE TABLE proposals (
        id            BIGSERIAL PRIMARY KEY,
        state         TEXT    NOT NULL,
        plan_hash     TEXT    NOT NULL,
        changes_key   TEXT    NOT NULL,
        snapshot_hash TEXT    NOT NULL,
        config_digest TEXT    NOT NULL,
        plan_json     BYTEA   NOT NULL,
        report_html   TEXT    NOT NULL,
        assigns       BIGINT  NOT NULL,
        unassigns     BIGINT  NOT NULL,
        proposed_at   TEXT    NOT NULL,
        proposed_by   TEXT    NOT NULL,
        decided_at    TEXT,
        decided_by    TEXT,
        comment       TEXT,
        ended_reason  TEXT,
        run           BIGINT  REFERENCES runs(id)
    );
    CREATE INDEX proposals_by_state ON proposals (state, id);
    "#,
];

/// The PostgreSQL schema version this build writes.
pub const PG_VERSION: u32 = PG_MIGRATIONS.len() as u32;
