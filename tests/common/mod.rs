//! Shared helpers for the end-to-end tests: start a sandbox in-process on a
//! random 127.0.0.1 port, and build clients and fetch options that talk to
//! it over real HTTP, or a config file for driving the binary.
#![allow(dead_code)]

pub mod world;

use rebalancer_fetcher::{Clients, FetchOptions};
use rebalancer_sandbox::{Sandbox, SandboxConfig};
use rebalancer_upstream::{
    CmsClient, CmsConfig, HttpSettings, Stats, WebexClient, WebexConfig, ZohoClient, ZohoConfig,
};
use std::time::Duration;

pub async fn start(cfg: SandboxConfig) -> Sandbox {
    Sandbox::start(cfg, 0).await.expect("sandbox starts")
}

/// The world `plan --sandbox` plans (seed 7: 200 agents, 40 leads generated): about
/// 100 changes, none blocked.
pub fn plan_world() -> SandboxConfig {
    SandboxConfig {
        seed: 7,
        agents: 200,
        leads: 40,
        ..SandboxConfig::default()
    }
}

pub fn small_world(seed: u64) -> SandboxConfig {
    SandboxConfig {
        seed,
        agents: 60,
        leads: 12,
        ..SandboxConfig::default()
    }
}

/// Fast retries so fault-injection tests take milliseconds.
pub fn quick_http() -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        max_retries: 3,
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        ..HttpSettings::default()
    }
}

pub struct Knobs {
    pub cms_page_size: u32,
    /// `CmsConfig::short_page_ends` (true, as `config/default.toml`).
    pub cms_short_page_ends: bool,
    pub zoho_per_page: u32,
    pub http: HttpSettings,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            cms_page_size: 500,
            cms_short_page_ends: true,
            zoho_per_page: 200,
            http: quick_http(),
        }
    }
}

pub fn cms_config(sb: &Sandbox, knobs: &Knobs) -> CmsConfig {
    CmsConfig {
        short_page_ends: knobs.cms_short_page_ends,
        ..rebalancer_testkit::sandbox::cms_config(sb, knobs.cms_page_size, knobs.http.clone())
    }
}

pub fn webex_config(sb: &Sandbox, knobs: &Knobs) -> WebexConfig {
    rebalancer_testkit::sandbox::webex_config(sb, knobs.http.clone())
}

pub fn zoho_config(sb: &Sandbox, knobs: &Knobs) -> ZohoConfig {
    rebalancer_testkit::sandbox::zoho_config(sb, knobs.zoho_per_page, knobs.http.clone())
}

pub fn clients_from(cms: CmsConfig, webex: WebexConfig, zoho: ZohoConfig) -> Clients {
    let stats = Stats::default();
    Clients {
        cms: CmsClient::new(cms, stats.clone()).unwrap(),
        webex: WebexClient::new(webex, stats.clone()).unwrap(),
        zoho: ZohoClient::new(zoho, stats.clone()).unwrap(),
        stats,
    }
}

pub fn clients(sb: &Sandbox, knobs: &Knobs) -> Clients {
    clients_from(
        cms_config(sb, knobs),
        webex_config(sb, knobs),
        zoho_config(sb, knobs),
    )
}

/// Fetch options for `sb` as the binary makes them (its campaigns and
/// thresholds through `ops::connect`), 8 leads at a time.
pub fn options(sb: &Sandbox) -> FetchOptions {
    let fetch = rebalancer_ops::settings::FetchKeys {
        concurrency: 8,
        strict: false,
        identity_file: None,
        deadline_secs: rebalancer_fetcher::DEFAULT_DEADLINE.as_secs(),
        min_webex_coverage: rebalancer_fetcher::DEFAULT_MIN_WEBEX_COVERAGE,
    };
    rebalancer_ops::connect::sandbox_endpoints(sb)
        .unwrap()
        .fetch_options(&fetch, "test")
        .unwrap()
}

/// A config file (TOML) pointing the binary at `sb`.
pub fn config_toml(sb: &Sandbox) -> String {
    let mut endpoints = rebalancer_ops::connect::sandbox_endpoints(sb).unwrap();
    // Small pages, so every test pages through the CMS and Zoho.
    endpoints.cms.page_size = 7;
    endpoints.zoho.per_page = 9;
    format!(
        "{}\n[http]\nbackoff_initial_ms = 5\nbackoff_max_ms = 50\nmax_retries = 2\ntimeout_secs = 10\n",
        endpoints.to_toml().unwrap()
    )
}

/// Run the built binary with args and extra environment; returns
/// (exit code, stdout, stderr).
pub fn run_bin(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rebalancer"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env_remove("RUST_LOG");
    let out = cmd.output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`run_bin`] on a blocking thread, for async tests: owned arguments and
/// environment pairs.
pub async fn run_async(args: Vec<String>, env: Vec<(String, String)>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_bin(&args, &env)
    })
    .await
    .expect("the binary's thread does not panic")
}

/// `&["a", "b"]` → owned arguments.
pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A path as an argument.
pub fn p(path: &std::path::Path) -> String {
    path.to_str().expect("test paths are UTF-8").to_owned()
}

/// The address a `run` child serves metrics at, read from its stderr's
/// start-up line (`metrics at /metrics addr=…`; the child needs
/// `RUST_LOG=info`): start it with the address on port 0 and the port is
/// never let go between choosing and binding it. Keeps reading stderr
/// afterwards, so the child never blocks on a full pipe.
pub fn metrics_addr_from(stderr: std::process::ChildStderr) -> String {
    use std::io::{BufRead, BufReader};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains("metrics at /metrics") {
                let addr = line
                    .split_once("addr=")
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .map(|a| a.trim_matches('"').to_owned());
                sent = tx.send(addr).is_ok();
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the child logs where it serves metrics")
        .expect("the log line names the address")
}

/// A loopback port nobody listens on, held until the returned socket is
/// dropped: bound but never listening, so a connection to it is refused
/// and no other process can take the port in the meantime.
pub fn refused_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind("127.0.0.1:0".parse().unwrap())
        .expect("a loopback port");
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// One plain HTTP/1.0 GET (the metrics server and the probes): the
/// status and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_get_as(addr, path, None)
}

/// One plain HTTP/1.0 GET, with `Authorization: Bearer TOKEN` when a
/// token is given (the console's API): the status and the body.
pub fn http_get_as(addr: &str, path: &str, bearer: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("nothing listens on {addr}: {e}"));
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
