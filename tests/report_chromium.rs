//! `plan --report`: the HTML report of the sandbox plan, rendered by
//! Debian's headless Chromium with the network switched off. The DOM
//! Chromium builds must carry the title, both before → after charts with
//! two marks per changed agent or lead, the short leads' reasons and the
//! apply estimate, and a screenshot of the page must be a real image. An agent id with `<`, `&` and `"` in the snapshot stays text in
//! that DOM. Without Chromium the tests are skipped with a notice, unless
//! `REBALANCER_REQUIRE_CHROMIUM=1` (as in CI) makes that a failure.
//! `REBALANCER_SCREENSHOT_OUT=PATH` copies the screenshot there (that is
//! how `docs/plan-report.png` is made). Without a browser: `apply --report`
//! writes the page of the plan it applies in both of its ways in, and an
//! unwritable report path is exit 8 naming the file.

mod common;

use common::{config_toml, p, run_async, run_bin, s, small_world, start};
use rebalancer_model::Plan;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one Chromium run may take before it is killed.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);
/// The report's chart cap (`render::moves::MAX_ROWS`; the binary's
/// modules are not importable from here).
const MAX_ROWS: usize = 40;

/// `/usr/bin/chromium`, or `chromium` on PATH.
fn chromium() -> Option<PathBuf> {
    let fixed = Path::new("/usr/bin/chromium");
    if fixed.is_file() {
        return Some(fixed.to_owned());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("chromium"))
            .find(|c| c.is_file())
    })
}

/// Run Chromium headless on `page` with `args`, stdout to `stdout`, killed
/// after [`CHROMIUM_TIMEOUT`]; panics naming what failed.
fn run_chromium(exe: &Path, profile: &Path, args: &[String], stdout: &Path, log: &Path) {
    let mut cmd = Command::new(exe);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .stdin(Stdio::null())
    .stdout(File::create(stdout).expect("stdout file"))
    .stderr(File::create(log).expect("stderr file"));
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot start {}: {e}", exe.display());
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if start.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium {args:?} did not finish within {CHROMIUM_TIMEOUT:?}; its stderr:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "chromium {args:?} failed ({status}); its stderr:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The markup of the element `<svg id="ID"` up to its `</svg>`.
fn svg<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("the DOM has no <svg id=\"{id}\">:\n{dom}"));
    let end = dom[start..]
        .find("</svg>")
        .unwrap_or_else(|| panic!("<svg id=\"{id}\"> is not closed"));
    &dom[start..start + end]
}

/// Chromium, or `None` after a notice when it is not installed (a failure
/// when `REBALANCER_REQUIRE_CHROMIUM=1`).
fn chromium_or_skip() -> Option<PathBuf> {
    let exe = chromium();
    if exe.is_none() {
        if std::env::var("REBALANCER_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!(
                "chromium is required (REBALANCER_REQUIRE_CHROMIUM=1) but neither /usr/bin/chromium nor `chromium` on PATH exists; install it with `apt-get install --no-install-recommends chromium`"
            );
        }
        eprintln!(
            "skipped: chromium is not installed (/usr/bin/chromium, or `chromium` on PATH); Debian: apt-get install --no-install-recommends chromium"
        );
    }
    exe
}

/// The DOM Chromium builds from the page at `html`.
fn dump_dom(exe: &Path, html: &Path, dir: &Path) -> String {
    let (dom, log) = (dir.join("dom.html"), dir.join("chromium.log"));
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", p(html));
    run_chromium(exe, profile.path(), &["--dump-dom".into(), url], &dom, &log);
    std::fs::read_to_string(&dom).unwrap()
}

/// The DOM of the report of `plan`: its title, one before and one after
/// mark per changed agent and per changed lead (the largest changes, at
/// most `MAX_ROWS`), and the tables, with a reason for each short lead.
fn assert_the_page_of(dom: &str, plan: &Plan) {
    let title = format!(
        "<title>rebalancer plan — {}</title>",
        &plan.snapshot_hash[..12]
    );
    assert!(dom.contains(&title), "no {title} in the DOM:\n{dom}");
    let moved: std::collections::BTreeSet<_> = plan.changes.iter().map(|c| &c.agent).collect();
    let agents = plan
        .agents
        .iter()
        .filter(|a| moved.contains(&a.agent) || (a.load_after - a.load_before).abs() >= 0.5)
        .count();
    assert!(agents > 20, "the sandbox plan moves agents");
    let marks = svg(dom, "agents-chart").matches("class=\"bar ").count();
    assert_eq!(marks, 2 * agents.min(MAX_ROWS), "agent marks");
    let touched: std::collections::BTreeSet<_> = plan.changes.iter().map(|c| c.lead).collect();
    let leads = plan
        .leads
        .iter()
        .filter(|l| touched.contains(&l.lead) || (l.covered - l.covered_before).abs() >= 0.5)
        .count();
    let marks = svg(dom, "coverage-chart").matches("class=\"bar ").count();
    assert_eq!(marks, 2 * leads.min(MAX_ROWS), "coverage marks");
    for heading in [
        "Who moves",
        "Lead coverage, before → after",
        "Leads left short, and why",
        "What apply will send",
        "Changes by lead",
    ] {
        assert!(dom.contains(heading), "no {heading}");
    }
}

#[test]
fn the_plan_report_renders_in_headless_chromium() {
    let Some(exe) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (html, json) = (dir.path().join("plan.html"), dir.path().join("plan.json"));
    let (code, _, stderr) = run_bin(
        &[
            "plan",
            "--sandbox",
            "--report",
            &p(&html),
            "--out",
            &p(&json),
            "-v",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("plan report written") && stderr.contains(&p(&html)),
        "the log names the report: {stderr}"
    );
    let plan = Plan::load(&json).unwrap();
    let dom = dump_dom(&exe, &html, dir.path());
    assert_the_page_of(&dom, &plan);
    // Made with the snapshot: each short lead says why, and the estimate
    // names the configured rate.
    let short = plan.leads.iter().filter(|l| l.shortfall > 0.0).count();
    let reasons = [
        "empty pool",
        "no eligible agent",
        "is at its allowance after the plan",
        "deferred",
        "plan's limits",
        "frozen",
    ];
    let explained: usize = reasons.iter().map(|r| dom.matches(r).count()).sum();
    assert!(
        short > 0 && explained >= short,
        "{short} short leads, {explained} reasons"
    );
    assert!(
        dom.contains("apply.puts_per_second = 8"),
        "the default rate"
    );
    let url = format!("file://{}", p(&html));
    let log = dir.path().join("chromium.log");

    let shot = dir.path().join("plan.png");
    let profile = tempfile::tempdir().unwrap();
    run_chromium(
        &exe,
        profile.path(),
        &[
            format!("--screenshot={}", p(&shot)),
            "--window-size=1280,3000".into(),
            url,
        ],
        &dir.path().join("screenshot.out"),
        &log,
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", p(&shot)));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is not a PNG"
    );
    assert!(
        png.len() > 10 * 1024,
        "the screenshot is only {} bytes",
        png.len()
    );
    if let Some(out) = std::env::var_os("REBALANCER_SCREENSHOT_OUT") {
        std::fs::copy(&shot, &out).unwrap_or_else(|e| {
            panic!(
                "cannot copy the screenshot to {} (REBALANCER_SCREENSHOT_OUT): {e}",
                Path::new(&out).display()
            )
        });
        eprintln!("screenshot copied to {}", Path::new(&out).display());
    }
}

/// An agent id with `<`, `&` and `"` in the snapshot (as a CMS could
/// send it) is text in the page: escaped in its bytes, shown as written in
/// Chromium's DOM wherever the page names the agent (the change table at
/// least), injecting no element,
/// and leaving the title, every chart mark and the tables in place.
#[test]
fn an_agent_id_with_markup_characters_is_text_in_the_page() {
    const NASTY: &str = "a<script>&\"b";
    let Some(exe) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (code, _, stderr) = run_bin(
        &["fetch", "--sandbox", "--out", &p(&path("snap.json"))],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    // Rename an agent the plan changes, everywhere the snapshot names it.
    let plan_of = |out: &str| {
        let args = ["plan", "--snapshot", &p(&path("snap.json")), "--out", out];
        let (code, _, stderr) = run_bin(&args, &[]);
        assert_eq!(code, 0, "{stderr}");
        Plan::load(Path::new(out)).unwrap()
    };
    let plan = plan_of(&p(&path("first.json")));
    let id = plan
        .changes
        .first()
        .expect("the sandbox plan changes")
        .agent
        .as_str();
    let text = std::fs::read_to_string(path("snap.json")).unwrap();
    let renamed = text.replace(
        &serde_json::to_string(id).unwrap(),
        &serde_json::to_string(NASTY).unwrap(),
    );
    std::fs::write(path("snap.json"), renamed).unwrap();
    let (code, _, stderr) = run_bin(
        &[
            "plan",
            "--snapshot",
            &p(&path("snap.json")),
            "--report",
            &p(&path("plan.html")),
            "--out",
            &p(&path("plan.json")),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let plan = Plan::load(&path("plan.json")).unwrap();
    assert!(
        plan.agents.iter().any(|a| a.agent.as_str() == NASTY),
        "the plan has the renamed agent"
    );
    let html = std::fs::read_to_string(path("plan.html")).unwrap();
    assert!(!html.contains("<script") && !html.contains(NASTY));
    let named = html.matches("a&lt;script&gt;&amp;&quot;b").count();
    assert!(named >= 1, "the page names the agent, escaped");
    let dom = dump_dom(&exe, &path("plan.html"), dir.path());
    assert!(!dom.contains("<script"), "an element was injected:\n{dom}");
    // Chromium writes the text back with `<` and `&` escaped, `"` as is:
    // every place the page names the agent is one whole text.
    assert_eq!(dom.matches("a&lt;script&gt;&amp;\"b").count(), named);
    assert!(
        dom.contains("<td class=\"mono\">a&lt;script&gt;&amp;\"b</td>"),
        "the change table names the agent"
    );
    assert_the_page_of(&dom, &plan);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_writes_the_report_of_the_plan_it_applies() {
    let sb = start(small_world(41)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| p(&dir.path().join(name));
    std::fs::write(dir.path().join("c.toml"), config_toml(&sb)).unwrap();
    let (code, _, stderr) = run_async(
        s(&[
            "plan",
            "--config",
            &path("c.toml"),
            "--out",
            &path("plan.json"),
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let plan = Plan::load(&dir.path().join("plan.json")).unwrap();
    let title = format!(
        "<title>rebalancer plan — {}</title>",
        &plan.snapshot_hash[..12]
    );
    // A reviewed plan file.
    let (code, _, stderr) = run_async(
        s(&[
            "apply",
            "--plan",
            &path("plan.json"),
            "--config",
            &path("c.toml"),
            "--journal",
            &path("j.sqlite"),
            "--report",
            &path("reviewed.html"),
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(dir.path().join("reviewed.html")).unwrap();
    assert!(html.contains(&title), "the page of the applied plan");
    // Fetch, plan and apply: the page of the plan just made.
    let (code, _, stderr) = run_async(
        s(&[
            "apply",
            "--config",
            &path("c.toml"),
            "--yes",
            "--journal",
            &path("j.sqlite"),
            "--report",
            &path("fresh.html"),
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(dir.path().join("fresh.html")).unwrap();
    // The plan just made (after the reviewed one was applied) has little
    // or nothing left to change; its page says so where its charts go.
    assert!(html.contains("Lead coverage, before → after"), "{html}");
    assert!(html.contains("What apply will send"), "{html}");
    sb.shutdown().await;
}

#[test]
fn an_unwritable_report_path_is_exit_8_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("no-such-dir").join("plan.html");
    let (code, _, stderr) = run_bin(&["plan", "--sandbox", "--report", &p(&report)], &[]);
    assert_eq!(code, 8, "{stderr}");
    assert!(
        stderr.contains(&p(&report)) && stderr.contains("writable"),
        "{stderr}"
    );
    // --tradeoff prints a ladder, not a plan: no report.
    let (code, _, stderr) = run_bin(
        &["plan", "--sandbox", "--tradeoff", "--report", "x.html"],
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
}
