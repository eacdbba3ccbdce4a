//! The console over HTTP, in process, on the journal a real cycle writes
//! (the embedded sandbox through `rebalancer_ops`, a SQLite journal file):
//! nothing is PUT before a person approves; approved through the API, the
//! next cycle brings the sandbox to the plan's target with each change
//! written once; rejected, nothing is sent and the decision is recorded;
//! superseded and expired plans are listed with their reasons; 401, 403,
//! 404, 409 and 400 where they belong; browser sessions need their CSRF
//! token on every write and set HttpOnly, SameSite=Strict cookies (Secure
//! only behind a trusted HTTPS proxy); every response carries a
//! Content-Security-Policy without scripts; a token never appears in a
//! page, an API answer, the logs or the journal file.

use rebalancer_applier::proposals::{self, ProposalState};
use rebalancer_applier::CycleOutcome;
use rebalancer_console::{new_token, token_digest_hex, Console};
use rebalancer_ops::approval::Approval;
use rebalancer_ops::connect::{Source, World};
use rebalancer_ops::console::{ConsoleSettings, ConsoleUser, Role};
use rebalancer_ops::cycle::{self, CycleOptions, Ended, Flow, Observer};
use rebalancer_ops::session::{self, Session};
use rebalancer_ops::settings::Env;
use rebalancer_testkit::{plans, sandbox as sbx, writes};
use reqwest::{header, redirect, StatusCode};
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WORLD: World = World {
    agents: 24,
    leads: 16,
    seed: 11,
};

struct Quiet;

impl Observer for Quiet {
    fn report(
        &mut self,
        plan: &rebalancer_applier::Plan,
        _: &rebalancer_model::Snapshot,
    ) -> String {
        format!(
            "<html><body><h1>Report of {} changes</h1></body></html>",
            plan.changes.len()
        )
    }

    fn cycle_ended(&mut self, _ended: Ended) -> Flow {
        Flow::Continue
    }
}

/// A sandbox session with `run.approval = "always"`, its journal in `dir`,
/// the console over that journal on a free port, and two users' tokens.
struct Setup {
    session: Session,
    base: String,
    approver: String,
    viewer: String,
    stop: CancellationToken,
    journal_file: std::path::PathBuf,
}

async fn setup(dir: &tempfile::TempDir, trust_forwarded_proto: bool) -> Setup {
    let env = Env::from_pairs([
        ("REBALANCER_APPLY__PUTS_PER_SECOND", "500"),
        ("REBALANCER_APPLY__BURST", "50"),
    ]);
    let journal_file = dir.path().join("journal.sqlite");
    let session = session::session(
        &Source::Sandbox(WORLD),
        &env,
        Some(journal_file.clone()),
        false,
    )
    .await
    .expect("a sandbox session");
    let (approver, viewer) = (new_token(), new_token());
    let user = |name: &str, role, token: &str| ConsoleUser {
        name: name.into(),
        role,
        token_sha256: hex(&token_digest_hex(token)),
    };
    let settings = ConsoleSettings {
        addr: "127.0.0.1:0".parse().unwrap(),
        users: vec![
            user("ana", Role::Approver, &approver),
            user("vic", Role::Viewer, &viewer),
        ],
        session_ttl: Duration::from_secs(3600),
        trust_forwarded_proto,
    };
    let listener = rebalancer_console::bind(settings.addr).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let console = Console {
        settings,
        journal: session.journal.clone(),
        schedule: None,
    };
    tokio::spawn(rebalancer_console::serve(listener, console, stop.clone()));
    Setup {
        session,
        base,
        approver,
        viewer,
        stop,
        journal_file,
    }
}

fn hex(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

const ALWAYS: CycleOptions = CycleOptions {
    dry_run: false,
    guard: Duration::ZERO,
    approval: Approval::Always,
    approval_poll: Duration::ZERO,
};

async fn one_cycle(s: &Session) -> CycleOutcome {
    let c = cycle::cycle(s, ALWAYS, &CancellationToken::new(), &mut Quiet).await;
    rebalancer_applier::record_cycle(&s.journal, &c.record).unwrap();
    c.record.outcome
}

fn puts(s: &Session) -> usize {
    s.connected.connection.sandbox().unwrap().write_log().len()
}

async fn get(c: &reqwest::Client, url: String, token: Option<&str>) -> (StatusCode, String) {
    let mut r = c.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn decide(
    c: &reqwest::Client,
    base: &str,
    id: i64,
    what: &str,
    token: &str,
    comment: &str,
) -> (StatusCode, Value) {
    let r = c
        .post(format!("{base}/api/plans/{id}/{what}"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "comment": comment }))
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn pending_id(c: &reqwest::Client, s: &Setup) -> i64 {
    let (status, body) = get(
        c,
        format!("{}/api/plans?state=pending", s.base),
        Some(&s.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.len(), 1, "{body}");
    list[0]["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_before_approval_and_an_approved_plan_reaches_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(&dir, false).await;
    let c = client();
    let sb = s.session.connected.connection.sandbox().unwrap();
    let original = sbx::state(sb);
    assert_eq!(one_cycle(&s.session).await, CycleOutcome::AwaitingApproval);
    assert_eq!(one_cycle(&s.session).await, CycleOutcome::AwaitingApproval);
    assert_eq!(puts(&s.session), 0, "nothing is sent while the plan waits");
    let id = pending_id(&c, &s).await;

    // The plan and its report, as proposed.
    let (status, plan_json) = get(&c, format!("{}/api/plans/{id}", s.base), Some(&s.viewer)).await;
    assert_eq!(status, StatusCode::OK);
    let plan =
        rebalancer_applier::Plan::from_json(plan_json.as_bytes(), std::path::Path::new("api"))
            .expect("the API answers the plan JSON");
    let (status, report) = get(
        &c,
        format!("{}/api/plans/{id}/report", s.base),
        Some(&s.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(report.contains(&format!("Report of {} changes", plan.changes.len())));

    let (status, body) = decide(&c, &s.base, id, "approve", &s.approver, "looks right").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    assert_eq!(body["decided_by"], "ana");
    assert_eq!(body["comment"], "looks right");
    assert_eq!(puts(&s.session), 0, "approving sends nothing by itself");

    assert_eq!(one_cycle(&s.session).await, CycleOutcome::Applied);
    writes::check_write_log(sb, &original);
    let now = sbx::state(sb);
    for (lead, target) in plans::targets(&plan) {
        assert_eq!(now[&lead], target, "lead {lead:?} is at the plan's target");
    }
    let (_, applied) = get(
        &c,
        format!("{}/api/plans?state=applied", s.base),
        Some(&s.viewer),
    )
    .await;
    let applied: Vec<Value> = serde_json::from_str(&applied).unwrap();
    assert_eq!(applied[0]["id"], id);
    let run = applied[0]["run"].as_i64().expect("the run that applied it");
    let (status, detail) = get(&c, format!("{}/api/runs/{run}", s.base), Some(&s.viewer)).await;
    assert_eq!(status, StatusCode::OK);
    let detail: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["puts"].as_array().unwrap().len(), puts(&s.session));
    let (_, cycles) = get(&c, format!("{}/api/cycles", s.base), Some(&s.viewer)).await;
    let cycles: Vec<Value> = serde_json::from_str(&cycles).unwrap();
    assert_eq!(cycles[0]["outcome"], "applied");
    assert_eq!(cycles[0]["run"], run);
    s.stop.cancel();
    s.session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_plan_sends_nothing_and_the_decision_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(&dir, false).await;
    let c = client();
    assert_eq!(one_cycle(&s.session).await, CycleOutcome::AwaitingApproval);
    let id = pending_id(&c, &s).await;
    let (status, body) = decide(
        &c,
        &s.base,
        id,
        "reject",
        &s.approver,
        "not during the campaign",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "rejected");
    assert_eq!(one_cycle(&s.session).await, CycleOutcome::Rejected);
    assert_eq!(puts(&s.session), 0);
    let p = proposals::get(&s.session.journal, id).unwrap();
    assert_eq!(
        (p.state, p.decided_by.as_deref(), p.comment.as_deref()),
        (
            ProposalState::Rejected,
            Some("ana"),
            Some("not during the campaign")
        )
    );
    assert!(p.decided_at.is_some());
    s.stop.cancel();
    s.session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_and_expired_plans_are_listed_with_their_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(&dir, false).await;
    let c = client();
    let sb = s.session.connected.connection.sandbox().unwrap();
    let j = &s.session.journal;
    let (one, two) = (plans::rebalance(sb, 2), plans::rebalance(sb, 3));
    proposals::propose(j, &one, "", "test:1").unwrap();
    proposals::propose(j, &two, "", "test:1").unwrap();
    let (_, body) = get(
        &c,
        format!("{}/api/plans?state=superseded", s.base),
        Some(&s.viewer),
    )
    .await;
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.len(), 1, "{body}");
    assert!(list[0]["ended_reason"]
        .as_str()
        .unwrap()
        .contains("other changes"));
    let id = pending_id(&c, &s).await;
    proposals::expire(j, id, ProposalState::Pending, "the plan is 2 h old").unwrap();
    let (_, body) = get(
        &c,
        format!("{}/api/plans?state=expired", s.base),
        Some(&s.viewer),
    )
    .await;
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["ended_reason"], "the plan is 2 h old");
    // The plans page lists both, by state.
    let login = browser_login(&c, &s.base, &s.viewer).await;
    let page = page(&c, &format!("{}/plans", s.base), &login.cookie).await;
    assert!(
        page.contains("superseded") && page.contains("expired"),
        "{page}"
    );
    assert!(page.contains("the plan is 2 h old"));
    s.stop.cancel();
    s.session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_need_no_credentials_and_readyz_asks_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(&dir, false).await;
    let c = client();
    assert_eq!(one_cycle(&s.session).await, CycleOutcome::AwaitingApproval);
    assert_eq!(
        get(&c, format!("{}/healthz", s.base), None).await,
        (StatusCode::OK, "ok\n".into())
    );
    assert_eq!(
        get(&c, format!("{}/readyz", s.base), None).await,
        (StatusCode::OK, "ready\n".into())
    );
    // A journal that no longer reads: not ready, and the caller is told
    // nothing about it (no path, no error text).
    std::fs::write(&s.journal_file, b"this is not a database, nor a journal").unwrap();
    let (status, body) = get(&c, format!("{}/readyz", s.base), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.starts_with("not ready"), "{body}");
    assert!(!body.contains("journal.sqlite"), "{body}");
    // The process still answers.
    assert_eq!(
        get(&c, format!("{}/healthz", s.base), None).await.0,
        StatusCode::OK
    );
    s.stop.cancel();
    s.session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_has_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(&dir, false).await;
    let c = client();
    assert_eq!(one_cycle(&s.session).await, CycleOutcome::AwaitingApproval);
    let id = pending_id(&c, &s).await;
    // 401: no credentials, an unknown token, a malformed header.
    for token in [None, Some("rbc_not-a-token")] {
        let (status, body) = get(&c, format!("{}/api/plans", s.base), token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body.contains("Bearer"), "{body}");
    }
    // Another scheme is refused; the scheme's case does not matter (RFC
    // 9110): `bearer` is accepted.
    for (scheme, expected) in [
        ("Basic", StatusCode::UNAUTHORIZED),
        ("bearer", StatusCode::OK),
    ] {
        let r = c
            .get(format!("{}/api/runs", s.base))
            .header(header::AUTHORIZATION, format!("{scheme} {}", s.approver))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "{scheme}");
        assert_eq!(
            r.headers().contains_key(header::WWW_AUTHENTICATE),
            expected == StatusCode::UNAUTHORIZED,
            "{scheme}"
        );
    }
    let r = c
        .post(format!("{}/api/plans/{id}/approve", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Every route but sign-in and the probes (their own test) needs
    // credentials: the API answers 401, a page without a session goes to
    // the sign-in page; none says more.
    // (path, a write?): the API's, then the pages'.
    let api = [
        ("/api/overview", false),
        ("/api/plans", false),
        ("/api/plans/{id}", false),
        ("/api/plans/{id}/report", false),
        ("/api/runs", false),
        ("/api/runs/1", false),
        ("/api/cycles", false),
        ("/api/plans/{id}/approve", true),
        ("/api/plans/{id}/reject", true),
    ];
    let pages = [
        ("/", false),
        ("/plans", false),
        ("/plans/{id}", false),
        ("/history", false),
        ("/runs/1", false),
        ("/plans/{id}/decide", true),
        ("/logout", true),
    ];
    // Writes carry a form, so only the missing credentials refuse them.
    let send = |path: &str, post: bool| {
        let url = format!("{}{}", s.base, path.replace("{id}", &id.to_string()));
        let r = if post {
            c.post(&url).form(&[("csrf", "x"), ("decision", "approve")])
        } else {
            c.get(&url)
        };
        r.send()
    };
    for (path, post) in api {
        let r = send(path, post).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE), "{path}");
    }
    for (path, post) in pages {
        let r = send(path, post).await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()[header::LOCATION], "/login", "{path}");
    }
    // 403: a viewer may not decide.
    let (status, body) = decide(&c, &s.base, id, "approve", &s.viewer, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"].as_str().unwrap().contains("viewer"));
    // 404: no such plan, report or run.
    let (status, _) = decide(&c, &s.base, 999, "approve", &s.approver, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in [
        "/api/plans/999",
        "/api/plans/999/report",
        "/api/runs/999",
        "/nowhere",
    ] {
        let (status, body) = get(&c, format!("{}{path}", s.base), Some(&s.viewer)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    // 400: a state that is not one, a comment too long.
    let (status, _) = get(
        &c,
        format!("{}/api/plans?state=open", s.base),
        Some(&s.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = decide(&c, &s.base, id, "approve", &s.approver, &"x".repeat(2001)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // 400 in the console's own shape, never axum's plain text: an id that
    // is not a number, a limit that is not one, a body that is not JSON.
    for path in ["/api/plans/twelve", "/api/runs/1x", "/api/plans?limit=many"] {
        let (status, body) = get(&c, format!("{}{path}", s.base), Some(&s.viewer)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).expect(path);
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("whole number"),
            "{path}: the fix is named: {error}"
        );
    }
    let r = c
        .post(format!("{}/api/plans/{id}/approve", s.base))
        .bearer_auth(&s.approver)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"comment\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("\"comment\""));
    let login = browser_login(&c, &s.base, &s.viewer).await;
    for path in ["/plans/twelve", "/runs/x", "/plans?limit=-1"] {
        let r = c
            .get(format!("{}{path}", s.base))
            .header(header::COOKIE, &login.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("<h1>400 Bad Request</h1>") && page.contains("whole number"),
            "{path}: {page}"
        );
    }
    // A script's decision may come without a content type (below).
    // 409: decided already.
    let r = c
        .post(format!("{}/api/plans/{id}/approve", s.base))
        .bearer_auth(&s.approver)
        .body("{\"comment\": \"no content type\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["comment"], "no content type", "{body}");
    let (status, body) = decide(&c, &s.base, id, "reject", &s.approver, "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("no longer pending"));
    assert_eq!(puts(&s.session), 0);
    s.stop.cancel();
    s.session.close().await;
}

/// A signed-in browser: its session cookie and the CSRF token its pages
/// carry.
struct Login {
    cookie: String,
    csrf: String,
    set_cookie: String,
}

/// The value of `name="csrf"` in `page`.
fn csrf_in(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..page[at..].find('"').unwrap() + at].to_owned()
}

fn cookie_in(r: &reqwest::Response, name: &str) -> (String, String) {
    let line = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"));
    let pair = line.split(';').next().unwrap().to_owned();
    (pair, line)
}

async fn browser_login(c: &reqwest::Client, base: &str, token: &str) -> Login {
    browser_login_with(c, base, token, &[]).await
}

async fn browser_login_with(
    c: &reqwest::Client,
    base: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> Login {
    let r = c.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (login_cookie, _) = cookie_in(&r, "rebalancer_login");
    let form_csrf = csrf_in(&r.text().await.unwrap());
    let mut post = c
        .post(format!("{base}/login"))
        .header(header::COOKIE, &login_cookie)
        .form(&[("csrf", form_csrf.as_str()), ("token", token)]);
    for (k, v) in headers {
        post = post.header(*k, *v);
    }
    let r = post.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in");
    let (cookie, set_cookie) = cookie_in(&r, "rebalancer_session");
    let home = page(c, &format!("{base}/"), &cookie).await;
    Login {
        cookie,
        csrf: csrf_in(&home),
        set_cookie,
    }
}

async fn page(c: &reqwest::Client, url: &str, cookie: &str) -> String {
    let r = c
        .get(url)
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_session_needs_its_csrf_token_for_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(&dir, false).await;
    let c = client();
    assert_eq!(one_cycle(&s.session).await, CycleOutcome::AwaitingApproval);
    let id = pending_id(&c, &s).await;

    // The sign-in form's own CSRF value must come back with it.
    let r = c.get(format!("{}/login", s.base)).send().await.unwrap();
    let (login_cookie, _) = cookie_in(&r, "rebalancer_login");
    let r = c
        .post(format!("{}/login", s.base))
        .header(header::COOKIE, &login_cookie)
        .form(&[("csrf", "forged"), ("token", s.approver.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r
        .headers()
        .get(header::SET_COOKIE)
        .is_none_or(|v| !v.to_str().unwrap().starts_with("rebalancer_session")));
    // A wrong token is refused with the form again.
    let r = c.get(format!("{}/login", s.base)).send().await.unwrap();
    let (login_cookie, _) = cookie_in(&r, "rebalancer_login");
    let csrf = csrf_in(&r.text().await.unwrap());
    let r = c
        .post(format!("{}/login", s.base))
        .header(header::COOKIE, &login_cookie)
        .form(&[("csrf", csrf.as_str()), ("token", "rbc_wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let login = browser_login(&c, &s.base, &s.approver).await;
    let attrs = login.set_cookie.to_ascii_lowercase();
    assert!(attrs.contains("httponly"), "{attrs}");
    assert!(attrs.contains("samesite=strict"), "{attrs}");
    assert!(attrs.contains("max-age=3600"), "{attrs}");
    assert!(
        !attrs.contains("secure"),
        "not Secure over plain HTTP: {attrs}"
    );

    // The plan page's form, without and with its CSRF token.
    let plan_page = page(&c, &format!("{}/plans/{id}", s.base), &login.cookie).await;
    assert!(plan_page.contains("value=\"approve\"") && plan_page.contains("value=\"reject\""));
    let form = |csrf: &str| {
        c.post(format!("{}/plans/{id}/decide", s.base))
            .header(header::COOKIE, &login.cookie)
            .form(&[("csrf", csrf), ("decision", "approve"), ("comment", "ok")])
    };
    let r = form("").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = form("forged").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The API with the cookie, without the header: refused too.
    let r = c
        .post(format!("{}/api/plans/{id}/approve", s.base))
        .header(header::COOKIE, &login.cookie)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        proposals::get(&s.session.journal, id).unwrap().state,
        ProposalState::Pending,
        "no refused write changed anything"
    );
    let r = form(&login.csrf).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], format!("/plans/{id}"));
    let p = proposals::get(&s.session.journal, id).unwrap();
    assert_eq!(
        (p.state, p.decided_by.as_deref()),
        (ProposalState::Approved, Some("ana"))
    );
    let after = page(&c, &format!("{}/plans/{id}", s.base), &login.cookie).await;
    assert!(
        after.contains("http-equiv=\"refresh\""),
        "an approved plan's page refreshes"
    );

    // Signed out, the session is gone.
    let r = c
        .post(format!("{}/logout", s.base))
        .header(header::COOKIE, &login.cookie)
        .form(&[("csrf", login.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = c
        .get(format!("{}/api/plans", s.base))
        .header(header::COOKIE, &login.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A viewer's page has no decision form, and its POST is refused.
    let viewer = browser_login(&c, &s.base, &s.viewer).await;
    s.session.connected.connection.sandbox().unwrap();
    let r = c
        .post(format!("{}/plans/{id}/decide", s.base))
        .header(header::COOKIE, &viewer.cookie)
        .form(&[
            ("csrf", viewer.csrf.as_str()),
            ("decision", "reject"),
            ("comment", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    s.stop.cancel();
    s.session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_only_behind_a_trusted_https_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = setup(&dir, true).await;
    let c = client();
    let login = browser_login_with(
        &c,
        &trusted.base,
        &trusted.viewer,
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert!(
        login.set_cookie.to_ascii_lowercase().contains("secure"),
        "{}",
        login.set_cookie
    );
    let plain = browser_login(&c, &trusted.base, &trusted.viewer).await;
    assert!(!plain.set_cookie.to_ascii_lowercase().contains("secure"));
    trusted.stop.cancel();
    trusted.session.close().await;
    let dir = tempfile::tempdir().unwrap();
    let untrusted = setup(&dir, false).await;
    let claimed = browser_login_with(
        &c,
        &untrusted.base,
        &untrusted.viewer,
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert!(
        !claimed.set_cookie.to_ascii_lowercase().contains("secure"),
        "a client's claim is not trusted"
    );
    untrusted.stop.cancel();
    untrusted.session.close().await;
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_appears_in_pages_answers_logs_or_the_journal_and_no_page_has_a_script() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Global: the console's handlers log on the runtime's worker threads.
    // (Only this test of the file installs a subscriber.)
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = setup(&dir, false).await;
    let c = client();
    assert_eq!(one_cycle(&s.session).await, CycleOutcome::AwaitingApproval);
    let id = pending_id(&c, &s).await;
    let login = browser_login(&c, &s.base, &s.approver).await;
    let mut bodies = Vec::new();
    for path in ["/", "/plans", &format!("/plans/{id}"), "/history", "/login"] {
        let r = c
            .get(format!("{}{path}", s.base))
            .header(header::COOKIE, &login.cookie)
            .send()
            .await
            .unwrap();
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let body = r.text().await.unwrap();
        assert!(
            !body.to_ascii_lowercase().contains("<script"),
            "{path} has a script"
        );
        bodies.push(body);
    }
    let form = c
        .post(format!("{}/plans/{id}/decide", s.base))
        .header(header::COOKIE, &login.cookie)
        .form(&[
            ("csrf", login.csrf.as_str()),
            ("decision", "approve"),
            ("comment", "fine"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::SEE_OTHER);
    assert_eq!(one_cycle(&s.session).await, CycleOutcome::Applied);
    for path in [
        "/api/plans",
        "/api/runs",
        "/api/cycles",
        "/api/overview",
        &format!("/api/plans/{id}"),
    ] {
        bodies.push(
            get(&c, format!("{}{path}", s.base), Some(&s.approver))
                .await
                .1,
        );
    }
    let (_, wrong) = get(
        &c,
        format!("{}/api/plans", s.base),
        Some("rbc_guessed-token"),
    )
    .await;
    bodies.push(wrong);
    let journal = std::fs::read(&s.journal_file).unwrap();
    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("a person decided"),
        "the log was captured: {logged}"
    );
    for token in [&s.approver, &s.viewer, &"rbc_guessed-token".to_string()] {
        let secret = token.trim_start_matches("rbc_");
        for (i, b) in bodies.iter().enumerate() {
            assert!(!b.contains(secret), "answer {i} shows a token");
        }
        assert!(!logged.contains(secret), "the log shows a token");
        assert!(
            !journal
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "the journal holds a token"
        );
    }
    s.stop.cancel();
    s.session.close().await;
}
