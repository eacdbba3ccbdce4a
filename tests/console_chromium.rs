//! `rebalancer console` in a real browser: Debian's headless Chromium,
//! driven over WebDriver (`chromedriver`, started here on a free port)
//! with fantoccini, against the real binary: a `run` child with
//! `run.approval = "always"` proposes its first plan (nothing sent), a
//! `console` child serves the journal, and a person signs in with a token
//! from `console new-token`.
//!
//! - Approve: `/` sends an unsigned browser to `/login`; the approver's
//!   token opens the overview, which links the pending plan; its page shows
//!   `pending`, Approve and Reject and the report's frame; Approve with a
//!   comment, and the page (refreshing itself while approved) comes to show
//!   `applied`; the sandbox then holds exactly the plan's target (the plan
//!   read back from `/api/plans/ID`), each change sent once, and no PUT
//!   left before the click. The time from the click to the first PUT is
//!   printed (`approve → first PUT: N ms`).
//! - Reject: a viewer sees the pending plan with no Approve button (and
//!   the API refuses a viewer's approval); the approver rejects it with a
//!   comment, the page shows `rejected`, and once `run` has recorded a
//!   `rejected` cycle the sandbox has still seen no PUT.
//!
//! `REBALANCER_SCREENSHOT_DIR=DIR` saves the overview with the pending plan
//! as `DIR/console-overview.png` and the plan's page as
//! `DIR/console-plan.png` (how `docs/console-*.png` are made).
//!
//! Without chromedriver (`/usr/bin/chromedriver`, Debian's
//! `chromium-driver`) or Chromium (`/usr/bin/chromium`) the tests print
//! that they were skipped and why, and pass, unless
//! `REBALANCER_REQUIRE_CHROMEDRIVER=1` (as in CI) makes that a failure.
//! Every wait is a bounded poll of something observable (the page, the
//! journal, the sandbox's write log).

mod common;

use common::{config_toml, p, run_async, s, small_world, start};
use fantoccini::{Client, ClientBuilder, Locator};
use rebalancer_model::{Action, LeadKey, Plan};
use rebalancer_sandbox::Sandbox;
use rebalancer_testkit::plans::targets;
use rebalancer_testkit::sandbox::state;
use rebalancer_testkit::writes::{check_write_log, effective_changes};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long chromedriver may take to answer `GET /status` with ready.
const DRIVER_READY: Duration = Duration::from_secs(30);
/// How long `run`'s first cycle may take to propose its plan.
const PROPOSED: Duration = Duration::from_secs(120);
/// How long an approved plan may take to show as applied.
const APPLIED: Duration = Duration::from_secs(60);
/// How long a page may take to show what a click or sign-in led to.
const PAGE: Duration = Duration::from_secs(20);

/// `fixed` when it is a file, else `name` on PATH.
fn installed(fixed: &str, name: &str) -> Option<PathBuf> {
    let fixed = Path::new(fixed);
    if fixed.is_file() {
        return Some(fixed.to_owned());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|c| c.is_file())
    })
}

/// chromedriver and Chromium, or `None` after a notice saying which is
/// missing (a failure when `REBALANCER_REQUIRE_CHROMEDRIVER=1`).
fn browser_or_skip() -> Option<(PathBuf, PathBuf)> {
    let driver = installed("/usr/bin/chromedriver", "chromedriver");
    let chromium = installed("/usr/bin/chromium", "chromium");
    let mut missing = Vec::new();
    if driver.is_none() {
        missing.push("chromedriver (/usr/bin/chromedriver, or `chromedriver` on PATH)");
    }
    if chromium.is_none() {
        missing.push("chromium (/usr/bin/chromium, or `chromium` on PATH)");
    }
    if missing.is_empty() {
        return driver.zip(chromium);
    }
    let missing = missing.join(" and ");
    if std::env::var("REBALANCER_REQUIRE_CHROMEDRIVER").as_deref() == Ok("1") {
        panic!(
            "chromedriver is required (REBALANCER_REQUIRE_CHROMEDRIVER=1) but {missing} is not installed; Debian: apt-get install --no-install-recommends chromium-driver"
        );
    }
    eprintln!(
        "skipped: {missing} is not installed, so the console is not driven in a browser; Debian: apt-get install --no-install-recommends chromium-driver"
    );
    None
}

/// A child process, killed and reaped when dropped.
struct Killed {
    child: Child,
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The processes whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid ...: comm may hold spaces.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// The chromedriver child and its WebDriver URL. Dropped, it ends the
/// browsers it started (a browser outlives a killed chromedriver) and
/// then itself.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        for browser in children_of(self.child.id()) {
            let _ = Command::new("kill")
                .arg(browser.to_string())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client for loopback addresses (never through a proxy).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

/// Poll `probe` until it answers, at most `limit`; `None` when it never did.
async fn poll<T, F, Fut>(limit: Duration, every: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// Start chromedriver on a free loopback port and wait until `GET
/// /status` says it is ready.
async fn start_driver(exe: &Path, dir: &Path) -> Driver {
    let log = dir.join("chromedriver.log");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.local_addr().unwrap().port()
        // The listener is dropped here, right before chromedriver binds.
    };
    let child = Command::new(exe)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
    let mut driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    };
    let client = http();
    let status = format!("{}/status", driver.url);
    let deadline = Instant::now() + DRIVER_READY;
    loop {
        if let Ok(answer) = client.get(&status).send().await {
            if let Ok(v) = answer.json::<Value>().await {
                if v["value"]["ready"] == true {
                    return driver;
                }
            }
        }
        if let Ok(Some(exit)) = driver.child.try_wait() {
            panic!(
                "chromedriver ended ({exit}) before it was ready; its log:\n{}",
                log_of(&driver.log)
            );
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer {status} with ready within {DRIVER_READY:?}; its log:\n{}",
            log_of(&driver.log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A WebDriver session with headless Chromium, its profile in `profile`.
async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let options = serde_json::json!({
        "binary": p(chromium),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            "--no-proxy-server",
            format!("--user-data-dir={}", p(profile)),
        ],
    });
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no WebDriver session: {e}; chromedriver's log:\n{}",
                log_of(&driver.log)
            )
        })
}

/// Run `flow` with a browser session, and end the session whether or not
/// `flow` panics (a browser outlives its session's test otherwise).
async fn with_browser<Fut>(
    driver: &Driver,
    chromium: &Path,
    profile: &Path,
    flow: impl FnOnce(Client) -> Fut,
) where
    Fut: Future<Output = ()> + Send + 'static,
{
    let client = browser(driver, chromium, profile).await;
    let outcome = tokio::spawn(flow(client.clone())).await;
    if let Err(e) = client.close().await {
        eprintln!("the WebDriver session did not close cleanly: {e}");
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the browser flow did not finish: {e}"),
        }
    }
}

/// A file's text, for failure messages.
fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()))
}

/// A console user's token and its digest, from `console new-token`.
async fn new_token(name: &str, role: &str) -> (String, String) {
    let (code, out, err) = run_async(
        s(&["console", "new-token", "--name", name, "--role", role]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let token = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("rbc_"))
        .unwrap_or_else(|| panic!("no token line in:\n{out}"))
        .to_owned();
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("token_sha256 = "))
        .unwrap_or_else(|| panic!("no token_sha256 line in:\n{out}"))
        .trim_matches('"')
        .to_owned();
    assert_eq!(digest.len(), 64, "{out}");
    (token, digest)
}

/// A sandbox, a `run` child whose first cycle proposed a plan, and a
/// `console` child over its journal. Dropped, the children are killed
/// first, then the sandbox stops and the files go.
struct Stage {
    run: Killed,
    console: Option<Killed>,
    sb: Sandbox,
    /// Taken right after the sandbox started: its write log's `at` counts
    /// from a moment at most this.
    epoch: Instant,
    /// The sandbox's mapping before anything was written.
    original: BTreeMap<LeadKey, BTreeSet<String>>,
    dir: tempfile::TempDir,
    approver: String,
    viewer: String,
    /// `http://127.0.0.1:PORT`
    base: String,
    /// The pending proposal.
    id: i64,
}

impl Stage {
    async fn new(seed: u64, every: &str) -> Stage {
        let sb = start(small_world(seed)).await;
        let epoch = Instant::now();
        let original = state(&sb);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        let journal = dir.path().join("journal.sqlite");
        let (approver, approver_digest) = new_token("ana", "approver").await;
        let (viewer, viewer_digest) = new_token("vic", "viewer").await;
        let text = format!(
            "{}
[run]
every = \"{every}\"
start_immediately = true
approval = \"always\"
approval_poll = \"200ms\"

[apply]
journal = \"{}\"
puts_per_second = 200
burst = 50

[[console.users]]
name = \"ana\"
role = \"approver\"
token_sha256 = \"{approver_digest}\"

[[console.users]]
name = \"vic\"
role = \"viewer\"
token_sha256 = \"{viewer_digest}\"
",
            config_toml(&sb),
            p(&journal)
        );
        std::fs::write(&config, text).unwrap();
        let (run_out, run_err) = (dir.path().join("run.out"), dir.path().join("run.err"));
        let run = Killed {
            child: Command::new(env!("CARGO_BIN_EXE_rebalancer"))
                .args(["run", "--config", &p(&config), "--now"])
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(File::create(&run_out).unwrap())
                .stderr(File::create(&run_err).unwrap())
                .spawn()
                .expect("`rebalancer run` starts"),
        };
        let mut stage = Stage {
            run,
            console: None,
            sb,
            epoch,
            original,
            dir,
            approver,
            viewer,
            base: String::new(),
            id: 0,
        };
        stage.id = stage.proposed(&config).await;
        assert!(
            stage.sb.write_log().is_empty(),
            "nothing is sent before approval"
        );
        stage.base = stage.start_console(&config).await;
        stage
    }

    /// The id of the pending proposal of `run`'s first cycle.
    async fn proposed(&mut self, config: &Path) -> i64 {
        let args = s(&["proposals", "--config", &p(config), "--format", "json"]);
        let deadline = Instant::now() + PROPOSED;
        loop {
            // Until `run` has made the journal, `proposals` fails.
            let (code, out, err) = run_async(args.clone(), vec![]).await;
            let list: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
            if let Some(p) = list.iter().find(|p| p["state"] == "pending") {
                return p["id"].as_i64().expect("a proposal id");
            }
            if let Ok(Some(exit)) = self.run.child.try_wait() {
                panic!("`run` ended ({exit}): {}", self.run_log());
            }
            assert!(
                Instant::now() < deadline,
                "no pending proposal within {PROPOSED:?} (`proposals`: exit {code}, {out}{err}); {}",
                self.run_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Start the console on a free port; its `CONSOLE http://ADDR/` line.
    async fn start_console(&mut self, config: &Path) -> String {
        let err = self.dir.path().join("console.err");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rebalancer"))
            .args(["console", "--config", &p(config), "--addr", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .expect("`rebalancer console` starts");
        let stdout = child.stdout.take().unwrap();
        self.console = Some(Killed { child });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(url) = line.strip_prefix("CONSOLE ") {
                        sent = tx.send(url.trim().trim_end_matches('/').to_owned()).is_ok();
                    }
                }
            }
        });
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap()
            .unwrap_or_else(|_| {
                panic!(
                    "the console printed no CONSOLE line; its stderr:\n{}",
                    log_of(&err)
                )
            })
    }

    fn run_log(&self) -> String {
        format!(
            "run's stderr:\n{}\nrun's stdout:\n{}",
            log_of(&self.dir.path().join("run.err")),
            log_of(&self.dir.path().join("run.out"))
        )
    }

    /// `GET base + path` with `token` as the bearer.
    async fn api(&self, token: &str, path: &str) -> reqwest::Response {
        http()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// The text of the first element `css` finds, if any now.
async fn text(c: &Client, css: &str) -> Option<String> {
    let element = c.find(Locator::Css(css)).await.ok()?;
    element.text().await.ok()
}

/// Wait until the element `css` reads `want` (the page may be loading).
async fn wait_text(c: &Client, css: &str, want: &str) {
    let seen = poll(PAGE, Duration::from_millis(50), || async move {
        (text(c, css).await.as_deref() == Some(want)).then_some(())
    })
    .await;
    if seen.is_none() {
        let url = c.current_url().await.map(|u| u.to_string());
        panic!(
            "`{css}` never read {want:?} (it reads {:?}) at {url:?}",
            text(c, css).await
        );
    }
}

/// The text of the overview's card labelled `label` (any case: the label
/// is shown in capitals).
async fn card(c: &Client, label: &str) -> String {
    for card in c.find_all(Locator::Css(".card")).await.unwrap_or_default() {
        let text = card.text().await.unwrap_or_default();
        if text.to_lowercase().starts_with(label) {
            return text;
        }
    }
    panic!("the overview has no card `{label}`");
}

/// Click the element `css` (a link or a form's button: it must be there)
/// and wait until the page it leads to has replaced this one (the old
/// page's root element is gone), so that what is read next is the new
/// page.
async fn click(c: &Client, css: &str) {
    let old = c.find(Locator::Css("html")).await.expect("a page");
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` to click: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
    let old = &old;
    let replaced = poll(PAGE, Duration::from_millis(20), || async move {
        old.tag_name().await.is_err().then_some(())
    })
    .await;
    assert!(
        replaced.is_some(),
        "clicking `{css}` did not lead to a new page within {PAGE:?}"
    );
}

/// How many elements `css` finds.
async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.map_or(0, |v| v.len())
}

/// Open the console at `/`, be sent to /login, sign in with `token`, and
/// land on the overview.
async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/"))
        .await
        .expect("the console opens");
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/login", "unsigned, `/` sends to /login");
    wait_text(c, "h1", "Sign in").await;
    c.find(Locator::Css("input[name=token]"))
        .await
        .expect("the token field")
        .send_keys(token)
        .await
        .unwrap();
    click(c, "form[action='/login'] button[type=submit]").await;
    wait_text(c, "main h1", "Overview").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/");
}

/// From the overview, follow the "waiting for a person" card's link to
/// plan `id`, and wait for its page.
async fn open_plan(c: &Client, id: i64) {
    let card = format!(".card a[href='/plans/{id}']");
    let link = text(c, &card).await;
    assert_eq!(
        link.as_deref(),
        Some(format!("Plan {id}").as_str()),
        "the overview links the plan waiting for a person"
    );
    click(c, &card).await;
    let opened = poll(PAGE, Duration::from_millis(50), || async move {
        text(c, "main h1")
            .await
            .filter(|h| h.starts_with(&format!("Plan {id} ")))
    })
    .await;
    assert!(opened.is_some(), "plan {id}'s page did not open");
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/plans/{id}")
    );
}

/// A screenshot of the page: a real PNG, saved as `DIR/name` when
/// `REBALANCER_SCREENSHOT_DIR=DIR`.
async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is not a PNG"
    );
    assert!(
        png.len() > 10 * 1024,
        "the screenshot of {name} is only {} bytes",
        png.len()
    );
    if let Some(dir) = std::env::var_os("REBALANCER_SCREENSHOT_DIR") {
        let path = Path::new(&dir).join(name);
        std::fs::write(&path, &png).unwrap_or_else(|e| {
            panic!(
                "cannot write {} (REBALANCER_SCREENSHOT_DIR): {e}",
                path.display()
            )
        });
        eprintln!("screenshot written to {}", path.display());
    }
}

/// The page of a pending plan as an approver sees it: its state, both
/// buttons, the comment field and its report in the frame.
async fn assert_pending_for_an_approver(c: &Client, id: i64) {
    assert_eq!(text(c, "main h1 .state").await.as_deref(), Some("pending"));
    assert_eq!(
        text(c, "form.decide button[value=approve]")
            .await
            .as_deref(),
        Some("Approve")
    );
    assert_eq!(
        text(c, "form.decide button[value=reject]").await.as_deref(),
        Some("Reject")
    );
    assert_eq!(count(c, "form.decide textarea[name=comment]").await, 1);
    let frame = c
        .find(Locator::Css("iframe.report"))
        .await
        .expect("the report's frame");
    assert_eq!(
        frame.attr("src").await.unwrap().as_deref(),
        Some(format!("/api/plans/{id}/report").as_str())
    );
    // The frame holds the plan's report, not an error.
    frame.enter_frame().await.expect("into the report's frame");
    let report = c.source().await.unwrap();
    c.enter_parent_frame().await.unwrap();
    assert!(
        report.contains("<title>rebalancer plan — ") && report.contains("Who moves"),
        "the frame does not show the report:\n{report}"
    );
}

/// Approve in the browser: the page shows the plan applied, the sandbox
/// holds its target, nothing was sent before the click.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_in_the_browser_applies_the_plan() {
    let Some((chromedriver, chromium)) = browser_or_skip() else {
        return;
    };
    let stage = Stage::new(41, "1h").await;
    let scratch = tempfile::tempdir().unwrap();
    let driver = start_driver(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("profile");
    with_browser(&driver, &chromium, &profile, move |c| async move {
        let (base, id) = (stage.base.clone(), stage.id);
        sign_in(&c, &base, &stage.approver).await;
        let who = text(&c, "header .who").await.unwrap_or_default();
        assert!(who.starts_with("ana (approver)"), "{who}");
        let waiting = card(&c, "waiting for a person").await;
        assert!(
            waiting.contains(&format!("Plan {id}")) && waiting.contains("pending"),
            "the overview's card: {waiting}"
        );
        let last = card(&c, "last cycle").await;
        assert!(
            last.contains("awaiting approval"),
            "the overview's card: {last}"
        );
        screenshot(&c, "console-overview.png").await;
        open_plan(&c, id).await;
        assert_pending_for_an_approver(&c, id).await;
        screenshot(&c, "console-plan.png").await;

        let comment = "Checked with the floor lead: go.";
        c.find(Locator::Css("textarea[name=comment]"))
            .await
            .unwrap()
            .send_keys(comment)
            .await
            .unwrap();
        assert!(
            stage.sb.write_log().is_empty(),
            "a PUT was sent before the approval"
        );
        let clicked = Instant::now();
        click(&c, "button[value=approve]").await;

        // The page refreshes itself while approved; reload it too, until
        // it shows the plan applied.
        let mut seen: Vec<String> = Vec::new();
        let deadline = Instant::now() + APPLIED;
        loop {
            let state = text(&c, "main h1 .state").await;
            if let Some(s) = &state {
                if seen.last() != Some(s) {
                    seen.push(s.clone());
                }
                assert!(
                    matches!(s.as_str(), "approved" | "applied"),
                    "after Approve plan {id} is {s}; {}",
                    stage.run_log()
                );
            }
            if state.as_deref() == Some("applied") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "plan {id} did not show as applied within {APPLIED:?} (states seen: {seen:?}); {}",
                stage.run_log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = c.refresh().await;
        }
        eprintln!("the plan page showed: {}", seen.join(" → "));
        let facts = text(&c, "main table").await.unwrap_or_default();
        assert!(
            facts.contains(comment) && facts.contains("ana, ") && facts.contains("Applied by"),
            "the page records who decided, why, and the run: {facts}"
        );

        // The sandbox holds the plan's target, each change sent once.
        let answer = stage
            .api(&stage.approver, &format!("/api/plans/{id}"))
            .await;
        assert_eq!(answer.status(), 200);
        let bytes = answer.bytes().await.unwrap();
        let plan = Plan::from_json(&bytes, Path::new("/api/plans/ID")).expect("the plan JSON");
        assert!(!plan.changes.is_empty(), "the plan changes something");
        assert_eq!(
            state(&stage.sb),
            targets(&plan),
            "the sandbox holds the plan's target"
        );
        check_write_log(&stage.sb, &stage.original);
        let log = stage.sb.write_log();
        let made = effective_changes(&log, &stage.original);
        let planned: BTreeSet<_> = plan
            .changes
            .iter()
            .map(|ch| (ch.lead, ch.agent.to_string(), ch.action == Action::Assign))
            .collect();
        assert_eq!(made.keys().cloned().collect::<BTreeSet<_>>(), planned);
        assert!(
            made.values().all(|n| *n == 1),
            "a change was made twice: {made:?}"
        );

        // The write log's times count from the sandbox's start, at most
        // `epoch`: this is the most the first PUT can have taken.
        let first = log.first().expect("PUTs were sent").at;
        let waited = (stage.epoch + first).saturating_duration_since(clicked);
        assert!(
            waited < APPLIED,
            "the first PUT came {waited:?} after the click"
        );
        eprintln!(
            "approve → first PUT: {} ms ({} PUTs; run.approval_poll = 200ms)",
            waited.as_millis(),
            log.len()
        );
    })
    .await;
    drop(driver);
}

/// A viewer cannot approve; a rejection in the browser keeps every change
/// from being sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_only_waits_and_a_rejection_sends_nothing() {
    let Some((chromedriver, chromium)) = browser_or_skip() else {
        return;
    };
    let stage = Stage::new(43, "1s").await;
    let scratch = tempfile::tempdir().unwrap();
    let driver = start_driver(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("profile");
    with_browser(&driver, &chromium, &profile, move |c| async move {
        let (base, id) = (stage.base.clone(), stage.id);

        // The viewer sees the plan, and no way to decide on it.
        sign_in(&c, &base, &stage.viewer).await;
        open_plan(&c, id).await;
        assert_eq!(text(&c, "main h1 .state").await.as_deref(), Some("pending"));
        assert_eq!(count(&c, "button[value=approve]").await, 0);
        assert_eq!(count(&c, "button[value=reject]").await, 0);
        assert_eq!(count(&c, "form.decide").await, 0);
        let body = text(&c, "main").await.unwrap_or_default();
        assert!(
            body.contains("Waiting for an approver; you are a viewer."),
            "{body}"
        );
        assert_eq!(count(&c, "iframe.report").await, 1);
        // Nor through the API.
        let refused = http()
            .post(format!("{base}/api/plans/{id}/approve"))
            .bearer_auth(&stage.viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "a viewer's approval is refused");
        click(&c, "header form[action='/logout'] button").await;
        wait_text(&c, "h1", "Sign in").await;

        // The approver rejects it.
        sign_in(&c, &base, &stage.approver).await;
        open_plan(&c, id).await;
        assert_pending_for_an_approver(&c, id).await;
        let comment = "Not during the campaign launch.";
        c.find(Locator::Css("textarea[name=comment]"))
            .await
            .unwrap()
            .send_keys(comment)
            .await
            .unwrap();
        click(&c, "button[value=reject]").await;
        let page = &c;
        let rejected = poll(PAGE, Duration::from_millis(100), || async move {
            (text(page, "main h1 .state").await.as_deref() == Some("rejected")).then_some(())
        })
        .await;
        assert!(rejected.is_some(), "plan {id} did not show as rejected");
        assert_eq!(count(&c, "button[value=approve]").await, 0);
        let facts = text(&c, "main table").await.unwrap_or_default();
        assert!(
            facts.contains(comment) && facts.contains("ana, "),
            "{facts}"
        );

        // `run` goes on (every second) and records the rejection, sending
        // nothing.
        let st = &stage;
        let cycle = poll(
            Duration::from_secs(60),
            Duration::from_millis(200),
            || async move {
                let answer = st.api(&st.approver, "/api/cycles?limit=20").await;
                let cycles: Vec<Value> = answer.json().await.ok()?;
                cycles.into_iter().find(|c| c["outcome"] == "rejected")
            },
        )
        .await
        .unwrap_or_else(|| panic!("no rejected cycle was recorded; {}", stage.run_log()));
        assert!(
            cycle["detail"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("proposal {id}")),
            "{cycle}"
        );
        assert!(
            stage.sb.write_log().is_empty(),
            "a rejected plan was sent: {:?}",
            stage.sb.write_log()
        );
        assert_eq!(stage.sb.counts().cms_put, 0);
    })
    .await;
    drop(driver);
}
