//! A throwaway PostgreSQL server for tests: [`start`] runs `initdb` and
//! `pg_ctl` on a temporary directory and a free port, and the server is
//! stopped and removed on drop. Shared by the applier's tests and the
//! binary's.
//!
//! Without PostgreSQL installed a test is skipped with a notice on stderr
//! (never silently); with `REBALANCER_REQUIRE_POSTGRES` set (CI) a missing
//! server is a failure. PostgreSQL refuses to run as root: as root the
//! server runs as the `postgres` user (`runuser`).
//!
//! [`start_with`] takes [`Options`]: TLS (`ssl = on` with a certificate
//! and key the test made), and `pg_hba.conf` lines of the test's own
//! (password authentication, `hostssl` only). [`PgServer::sql`] runs
//! statements as the superuser over the Unix socket (which `pg_hba.conf`
//! always trusts), e.g. to create roles or terminate backends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// How [`start_with`] sets the server up beyond the defaults.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// The server's certificate (PEM, chain first) and private key (PEM):
    /// the server runs with `ssl = on`.
    pub tls: Option<(String, String)>,
    /// `pg_hba.conf` lines before the default ones (the first match
    /// wins), e.g. `host all alice 127.0.0.1/32 scram-sha-256`.
    pub hba: Vec<String>,
    /// Drop the default `host … trust` lines: TCP connections get only
    /// the lines of `hba` (Unix-socket connections stay trusted).
    pub hba_only: bool,
}

/// A running server; stopped and deleted on drop.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    next_db: std::sync::atomic::AtomicU32,
    /// The server's settings (`pg_ctl -o`), kept for [`PgServer::restart`].
    settings: std::sync::OnceLock<String>,
}

/// Whether `dir` holds the server tools the tests run.
fn has_tools(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "createdb"]
        .iter()
        .all(|t| dir.join(t).is_file())
}

/// The directory holding `initdb`, `pg_ctl` and `createdb`: on `PATH`, else the
/// highest version under `/usr/lib/postgresql/*/bin`.
fn find_bin() -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            if has_tools(&dir) {
                return Some(dir);
            }
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A free loopback port below the kernel's ephemeral range, so that while
/// a test has its server stopped (`stop`, then `start_again` on the same
/// port) no outgoing connection or `bind(0)` of another test can be handed
/// that port (the restart would then fail with "address in use"). Tried
/// from a start that differs per process and per call, so servers of
/// concurrent tests spread out; the ephemeral range's own port when no
/// such range can be read.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(0);
    const LOW: u32 = 10_000;
    if ephemeral_low > LOW + 1_000 {
        let span = ephemeral_low - LOW;
        let seed = std::process::id()
            .wrapping_mul(7_919)
            .wrapping_add(CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(104_729))
            .wrapping_add(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0),
            );
        for i in 0..span {
            let port = LOW + (seed.wrapping_add(i) % span);
            if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
                return port as u16;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts a server, or explains why not and returns `None` (the test then
/// returns early). Panics when `REBALANCER_REQUIRE_POSTGRES` is set and
/// no server can be started.
pub fn start() -> Option<PgServer> {
    start_with(Options::default())
}

/// [`start`], set up as `options` say.
pub fn start_with(options: Options) -> Option<PgServer> {
    let required = std::env::var("REBALANCER_REQUIRE_POSTGRES").is_ok_and(|v| !v.is_empty());
    let Some(bin) = find_bin() else {
        if required {
            panic!(
                "PostgreSQL is not installed (no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin) \
                 and REBALANCER_REQUIRE_POSTGRES is set; install it (Debian: apt-get install postgresql)"
            );
        }
        eprintln!(
            "skipped: PostgreSQL is not installed (Debian: apt-get install postgresql); set REBALANCER_REQUIRE_POSTGRES=1 to make this a failure"
        );
        return None;
    };
    let as_postgres = is_root();
    let dir = tempfile::Builder::new()
        .prefix("rebalancer-pg-")
        .tempdir()
        .expect("a temporary directory");
    if as_postgres {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown runs");
        assert!(
            status.success(),
            "chown of the server directory to postgres failed"
        );
    }
    let server = PgServer {
        dir,
        bin,
        port: free_port(),
        as_postgres,
        next_db: std::sync::atomic::AtomicU32::new(0),
        settings: std::sync::OnceLock::new(),
    };
    let data = server.data_dir();
    server.run_ok(
        "initdb",
        &[
            "-D",
            &data.to_string_lossy(),
            "-A",
            "trust",
            "-U",
            "rebalancer",
            "--no-sync",
            "-E",
            "UTF8",
        ],
    );
    let mut settings = format!(
        "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
        server.port,
        server.dir.path().display()
    );
    if let Some((cert, key)) = &options.tls {
        let cert_file = server.write_file("server.crt", cert);
        let key_file = server.write_file("server.key", key);
        settings.push_str(&format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            cert_file.display(),
            key_file.display()
        ));
    }
    if !options.hba.is_empty() || options.hba_only {
        let mut hba = options.hba.join("\n");
        hba.push_str("\nlocal all all trust\n");
        if !options.hba_only {
            hba.push_str("host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n");
        }
        let file = server.write_file("pg_hba.conf", &hba);
        settings.push_str(&format!(" -c hba_file={}", file.display()));
    }
    server
        .settings
        .set(settings)
        .expect("settings are set once");
    server.pg_start();
    Some(server)
}

impl PgServer {
    fn pg_start(&self) {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        self.run_ok(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-o",
                self.settings.get().expect("settings are set at start"),
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server (fast shutdown: sessions are terminated) and
    /// returns once it is down.
    pub fn stop(&self) {
        let data = self.data_dir();
        self.run_ok(
            "pg_ctl",
            &["-D", &data.to_string_lossy(), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts the server [`stop`](Self::stop)ped, on the same port and
    /// settings, and returns once it accepts connections.
    pub fn start_again(&self) {
        self.pg_start();
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Writes `text` to `name` in the server's directory, readable by the
    /// server alone (a key file must be), owned by it.
    fn write_file(&self, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod of a file of the server");
        if self.as_postgres {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&path)
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of {name} to postgres failed");
        }
        path
    }

    fn run_ok(&self, tool: &str, args: &[&str]) -> Output {
        let out = self
            .command(tool)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{tool} cannot start: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new empty database; its URL.
    pub fn database(&self) -> String {
        let n = self
            .next_db
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("journal{n}");
        self.run_ok(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "rebalancer",
                &name,
            ],
        );
        self.url(&name)
    }

    /// The URL of database `name` (user `rebalancer`, password ignored by
    /// the `trust` authentication).
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://rebalancer:hunter2-secret@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// The URL of database `name` as `user` with `password`, plus
    /// `params` (`sslmode=…&…`, may be empty).
    pub fn url_as(&self, user: &str, password: &str, name: &str, params: &str) -> String {
        let query = if params.is_empty() {
            String::new()
        } else {
            format!("?{params}")
        };
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{name}{query}",
            self.port
        )
    }

    /// Runs `sql` in database `db` as the superuser over the Unix socket;
    /// its output, one row a line, columns separated by `|`. Panics when
    /// a statement fails.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self.run_ok(
            "psql",
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &self.dir.path().to_string_lossy(),
                "-p",
                &self.port.to_string(),
                "-U",
                "rebalancer",
                "-d",
                db,
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data.to_string_lossy(), "-m", "immediate", "stop"])
            .current_dir(self.dir.path())
            .output();
    }
}
