//! The console's HTML pages (maud, no script): overview, plans, one plan
//! (its facts, the decision form, its report in a frame), history (runs
//! and cycles), one run (its leads and PUTs), and sign-in. A page asked
//! for without a session redirects to /login; other refusals are a page
//! with the status and what to do.

use crate::api::{checked_comment, ListQuery};
use crate::auth::{self, Who};
use crate::error::Refusal;
use crate::store;
use crate::Shared;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use axum_extra::extract::WithRejection;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use rebalancer_applier::proposals::{Decision, Proposal, ProposalState};
use rebalancer_applier::{CycleRecord, RunRecord};
use serde::Deserialize;
use std::time::Duration;

/// A page's refusal: sign-in for 401, a page with the status otherwise.
pub(crate) struct PageRefusal(Refusal);

impl From<Refusal> for PageRefusal {
    fn from(r: Refusal) -> Self {
        PageRefusal(r)
    }
}

impl From<PathRejection> for PageRefusal {
    fn from(r: PathRejection) -> Self {
        PageRefusal(r.into())
    }
}

impl From<QueryRejection> for PageRefusal {
    fn from(r: QueryRejection) -> Self {
        PageRefusal(r.into())
    }
}

impl From<FormRejection> for PageRefusal {
    fn from(r: FormRejection) -> Self {
        PageRefusal(r.into())
    }
}

impl IntoResponse for PageRefusal {
    fn into_response(self) -> Response {
        if let Refusal::Unauthenticated = self.0 {
            return Redirect::to("/login").into_response();
        }
        let status = self.0.status();
        let body = layout(
            status.canonical_reason().unwrap_or("refused"),
            None,
            html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p.refusal { (self.0.message()) }
                p { a href="/" { "Back to the overview" } }
            },
        );
        (status, body).into_response()
    }
}

type Page = Result<Response, PageRefusal>;

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:.6rem 1.5rem;display:flex;gap:1.5rem;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header .who{margin-left:auto;font-size:.9rem;opacity:.85}
header form{display:inline;margin:0}
header button{background:none;border:1px solid #fff8;color:#fff;border-radius:4px;padding:.15rem .6rem;cursor:pointer}
main{padding:1rem 1.5rem;max-width:1200px}
h1{font-size:1.4rem;margin:.4rem 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;background:#fff;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #e3e6ea;padding:.35rem .6rem;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:.8rem 1rem;min-width:14rem}
.card .label{font-size:.8rem;color:#5b6472;text-transform:uppercase;letter-spacing:.03em}
.card .value{font-size:1.1rem;font-weight:600;margin-top:.2rem}
.state{display:inline-block;border-radius:10px;padding:.05rem .55rem;font-size:.8rem;font-weight:600;background:#e3e6ea}
.state.pending,.state.awaiting_approval{background:#fff3c4;color:#7a5b00}
.state.approved{background:#d7e9ff;color:#0b4a8f}
.state.applied,.state.completed,.state.no_changes{background:#d8f2dd;color:#1b6b2b}
.state.rejected,.state.failed,.state.blocked{background:#fadadd;color:#8a1c26}
.state.superseded,.state.expired,.state.skipped{background:#e8e8e8;color:#555}
.decide{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:1rem;margin:1rem 0}
.decide textarea{width:100%;min-height:4rem;font:inherit}
.decide button{font:inherit;font-weight:600;padding:.4rem 1.2rem;margin-right:.6rem;border-radius:4px;border:1px solid #888;cursor:pointer}
.decide button.approve{background:#1b6b2b;color:#fff;border-color:#1b6b2b}
.decide button.reject{background:#fff;color:#8a1c26;border-color:#8a1c26}
.refusal{background:#fadadd;padding:.6rem 1rem;border-radius:4px}
.muted{color:#5b6472}
iframe.report{width:100%;height:80vh;border:1px solid #e3e6ea;background:#fff}
.login{max-width:26rem;margin:4rem auto;background:#fff;padding:1.5rem;border:1px solid #e3e6ea;border-radius:6px}
.login input{width:100%;font:inherit;padding:.4rem;margin:.4rem 0 1rem;box-sizing:border-box}
.login button{font:inherit;font-weight:600;padding:.4rem 1.2rem}
"#;

/// A page: the header (navigation, who is signed in, sign-out) and `body`.
fn layout(title: &str, who: Option<&Who>, body: Markup) -> Html<String> {
    layout_with(title, who, body, None)
}

fn layout_with(title: &str, who: Option<&Who>, body: Markup, refresh: Option<u32>) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    @if let Some(secs) = refresh {
                        meta http-equiv="refresh" content=(secs);
                    }
                    title { (title) " · rebalancer console" }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    header {
                        a href="/" { "rebalancer console" }
                        @if let Some(w) = who {
                            a href="/plans" { "Plans" }
                            a href="/history" { "History" }
                            span.who {
                                (w.name) " (" (w.role.as_str()) ") "
                                @if w.session.is_some() {
                                    form method="post" action="/logout" {
                                        input type="hidden" name="csrf" value=(w.csrf());
                                        button type="submit" { "Sign out" }
                                    }
                                }
                            }
                        }
                    }
                    main { (body) }
                }
            }
        }
        .into_string(),
    )
}

fn state_badge(state: &str) -> Markup {
    html! { span class={ "state " (state) } { (state.replace('_', " ")) } }
}

/// An RFC 3339 time to the second, in UTC.
fn when(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|_| t.to_owned())
}

/// A signed-in visitor: handlers that take one need credentials, and a
/// page asked for without them redirects to /login.
pub(crate) struct Visitor(pub Who);

impl FromRequestParts<Shared> for Visitor {
    type Rejection = PageRefusal;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, PageRefusal> {
        Ok(Visitor(Who::from_request_parts(parts, state).await?))
    }
}

pub(crate) async fn overview(Visitor(who): Visitor, State(state): State<Shared>) -> Page {
    let j = &state.console.journal;
    let o = store::overview(j, state.console.schedule.as_ref()).await?;
    let runs = store::runs(j, 10).await?;
    let plans = store::proposals(j, None, 10).await?;
    let body = html! {
        h1 { "Overview" }
        div.cards {
            div.card {
                div.label { "Last cycle" }
                @match &o.last_cycle {
                    Some(c) => {
                        div.value { (state_badge(c.outcome.as_str())) }
                        div.muted { (when(&c.ended_at)) }
                        div { (c.detail) }
                    }
                    None => { div.value { "none yet" } div.muted { code { "rebalancer run" } " has not recorded a cycle in this journal" } }
                }
            }
            div.card {
                div.label { "Last success" }
                @match &o.last_success {
                    Some(c) => { div.value { (when(&c.ended_at)) } div.muted { (c.outcome.as_str().replace('_', " ")) } }
                    None => { div.value { "never" } }
                }
            }
            div.card {
                div.label { "Next cycle" }
                @match (&o.next_cycle, &state.console.schedule) {
                    (Some(t), _) => { div.value { (when(t)) } }
                    (None, Some(s)) => { div.value { "at run's start" } div.muted { (s.to_string()) } }
                    (None, None) => { div.value { "not scheduled" } div.muted { "run.every / run.cron are empty in this config" } }
                }
            }
            div.card {
                div.label { "Waiting for a person" }
                @match &o.open_plan {
                    Some(p) => {
                        div.value { a href={ "/plans/" (p.id) } { "Plan " (p.id) } " " (state_badge(p.state.as_str())) }
                        div.muted { (p.assigns) " assigns, " (p.unassigns) " unassigns; proposed " (when(&p.proposed_at)) }
                    }
                    None => { div.value { "nothing" } }
                }
            }
        }
        h2 { "Plans" }
        (plans_table(&plans))
        h2 { "Runs" }
        (runs_table(&runs))
    };
    Ok(layout("Overview", Some(&who), body).into_response())
}

fn plans_table(plans: &[Proposal]) -> Markup {
    html! {
        @if plans.is_empty() {
            p.muted { "No plan has been proposed (run.approval is \"never\", or no plan needed a person yet)." }
        } @else {
            table {
                tr { th { "Plan" } th { "State" } th { "Proposed" } th.num { "Assigns" } th.num { "Unassigns" } th { "Decided" } th { "Comment or reason" } th { "Run" } }
                @for p in plans {
                    tr {
                        td { a href={ "/plans/" (p.id) } { (p.id) } }
                        td { (state_badge(p.state.as_str())) }
                        td { (when(&p.proposed_at)) }
                        td.num { (p.assigns) }
                        td.num { (p.unassigns) }
                        td {
                            @if let (Some(by), Some(at)) = (&p.decided_by, &p.decided_at) { (by) ", " (when(at)) }
                        }
                        td { (p.comment.as_deref().or(p.ended_reason.as_deref()).unwrap_or("")) }
                        td { @if let Some(r) = p.run { a href={ "/runs/" (r) } { (r) } } }
                    }
                }
            }
        }
    }
}

fn runs_table(runs: &[RunRecord]) -> Markup {
    html! {
        @if runs.is_empty() {
            p.muted { "No run yet." }
        } @else {
            table {
                tr { th { "Run" } th { "Kind" } th { "Outcome" } th { "Started" } th { "Ended" } th.num { "PUTs" } th.num { "Failed" } th.num { "Moves" } }
                @for r in runs {
                    tr {
                        td { a href={ "/runs/" (r.id) } { (r.id) } }
                        td { (r.kind.as_str()) }
                        td { (state_badge(r.outcome.as_str())) }
                        td { (when(&r.started_at)) }
                        td { (r.ended_at.as_deref().map(when).unwrap_or_default()) }
                        td.num { (r.puts_sent) }
                        td.num { (r.failed) }
                        td.num { (r.moves_made) }
                    }
                }
            }
        }
    }
}

fn cycles_table(cycles: &[CycleRecord]) -> Markup {
    html! {
        @if cycles.is_empty() {
            p.muted { "No cycle yet." }
        } @else {
            table {
                tr { th { "Cycle" } th { "Ended" } th { "Outcome" } th.num { "Assigns" } th.num { "Unassigns" } th { "Run" } th { "Detail" } }
                @for c in cycles {
                    tr {
                        td { (c.id) }
                        td { (when(&c.ended_at)) }
                        td { (state_badge(c.outcome.as_str())) @if !c.outcome.is_success() { " ⚠" } }
                        td.num { (c.assigns) }
                        td.num { (c.unassigns) }
                        td { @if let Some(r) = c.run { a href={ "/runs/" (r) } { (r) } } }
                        td { (c.detail) }
                    }
                }
            }
        }
    }
}

pub(crate) async fn plans(
    Visitor(who): Visitor,
    State(state): State<Shared>,
    WithRejection(Query(q), _): WithRejection<Query<ListQuery>, PageRefusal>,
) -> Page {
    let wanted = q.state()?;
    let list = store::proposals(&state.console.journal, wanted, q.limit()).await?;
    let body = html! {
        h1 { "Plans" }
        p {
            "Show: " a href="/plans" { "all" }
            @for s in ["pending", "approved", "rejected", "applied", "superseded", "expired"] {
                " · " a href={ "/plans?state=" (s) } { (s) }
            }
        }
        (plans_table(&list))
    };
    Ok(layout("Plans", Some(&who), body).into_response())
}

pub(crate) async fn plan(
    Visitor(who): Visitor,
    State(state): State<Shared>,
    WithRejection(Path(id), _): WithRejection<Path<i64>, PageRefusal>,
) -> Page {
    let p = store::proposal(&state.console.journal, id).await?;
    let body = html! {
        h1 { "Plan " (p.id) " " (state_badge(p.state.as_str())) }
        table {
            tr { th { "Changes" } td { (p.assigns) " assigns, " (p.unassigns) " unassigns" } }
            tr { th { "Proposed" } td { (when(&p.proposed_at)) " by " (p.proposed_by) } }
            tr { th { "Snapshot" } td { code { (p.snapshot_hash.get(..16).unwrap_or(&p.snapshot_hash)) } } }
            tr { th { "Config digest" } td { code { (p.config_digest.get(..16).unwrap_or(&p.config_digest)) } } }
            @if let (Some(by), Some(at)) = (&p.decided_by, &p.decided_at) {
                tr { th { "Decided" } td { (by) ", " (when(at)) } }
            }
            @if let Some(c) = &p.comment { tr { th { "Comment" } td { (c) } } }
            @if let Some(r) = &p.ended_reason { tr { th { "Why it ended" } td { (r) } } }
            @if let Some(r) = p.run { tr { th { "Applied by" } td { a href={ "/runs/" (r) } { "run " (r) } } } }
        }
        @match p.state {
            ProposalState::Pending => {
                @if who.may_decide().is_ok() && who.session.is_some() {
                    form.decide method="post" action={ "/plans/" (p.id) "/decide" } {
                        input type="hidden" name="csrf" value=(who.csrf());
                        label for="comment" { "Comment (recorded with your decision)" }
                        textarea id="comment" name="comment" maxlength="2000" {}
                        p {
                            button.approve type="submit" name="decision" value="approve" { "Approve" }
                            button.reject type="submit" name="decision" value="reject" { "Reject" }
                        }
                        p.muted { "Approved, the replica of " code { "rebalancer run" } " that holds the journal's lease applies it within " code { "run.approval_poll" } ", after the same checks as " code { "apply --plan" } " (a plan grown too old expires instead)." }
                    }
                } @else {
                    p.muted { "Waiting for an approver; you are a " (who.role.as_str()) "." }
                }
            }
            ProposalState::Approved => {
                p.muted { "Approved; waiting for " code { "rebalancer run" } " to apply it (this page refreshes)." }
            }
            _ => {}
        }
        h2 { "Report" }
        p { a href={ "/api/plans/" (p.id) } { "plan JSON" } " · " a href={ "/api/plans/" (p.id) "/report" } { "report alone" } }
        iframe.report src={ "/api/plans/" (p.id) "/report" } sandbox="" title={ "Report of plan " (p.id) } {}
    };
    let refresh = (p.state == ProposalState::Approved).then_some(2);
    Ok(layout_with(&format!("Plan {id}"), Some(&who), body, refresh).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    csrf: String,
    decision: String,
    #[serde(default)]
    comment: String,
}

pub(crate) async fn decide(
    Visitor(who): Visitor,
    State(state): State<Shared>,
    WithRejection(Path(id), _): WithRejection<Path<i64>, PageRefusal>,
    WithRejection(Form(form), _): WithRejection<Form<DecideForm>, PageRefusal>,
) -> Page {
    if who.session.is_none() {
        return Err(Refusal::BadRequest(
            "this form is for browser sessions; scripts POST /api/plans/{id}/approve or /reject"
                .into(),
        )
        .into());
    }
    who.check_csrf(Some(&form.csrf))?;
    who.may_decide()?;
    let decision: Decision = form
        .decision
        .parse()
        .map_err(|e: String| PageRefusal(Refusal::BadRequest(e)))?;
    let comment = checked_comment(&form.comment)?;
    store::decide(&state.console.journal, id, decision, who.name, comment).await?;
    Ok(Redirect::to(&format!("/plans/{id}")).into_response())
}

pub(crate) async fn history(Visitor(who): Visitor, State(state): State<Shared>) -> Page {
    let runs = store::runs(&state.console.journal, 50).await?;
    let cycles = store::cycles(&state.console.journal, 50).await?;
    let body = html! {
        h1 { "History" }
        h2 { "Runs" }
        (runs_table(&runs))
        h2 { "Cycles" }
        (cycles_table(&cycles))
    };
    Ok(layout("History", Some(&who), body).into_response())
}

pub(crate) async fn run(
    Visitor(who): Visitor,
    State(state): State<Shared>,
    WithRejection(Path(id), _): WithRejection<Path<i64>, PageRefusal>,
) -> Page {
    let d = store::run(&state.console.journal, id).await?;
    let body = html! {
        h1 { "Run " (id) " " (state_badge(d.run.outcome.as_str())) }
        (runs_table(std::slice::from_ref(&d.run)))
        @if !d.left.is_empty() {
            p.refusal { (d.left.len()) " leads of its plan were not reached; " code { "rebalancer resume " (id) } " continues it." }
        }
        @if !d.resumed_by.is_empty() {
            p { "Continued by run " @for (i, r) in d.resumed_by.iter().enumerate() { @if i > 0 { ", " } a href={ "/runs/" (r) } { (r) } } }
        }
        h2 { "PUTs (" (d.puts.len()) ")" }
        table {
            tr { th { "Lead" } th.num { "#" } th { "State" } th.num { "Status" } th { "Sent" } th { "Body" } th { "Message" } }
            @for p in &d.puts {
                tr {
                    td { (p.lead.campaign_id) "/" (p.lead.lead_id) }
                    td.num { (p.seq) }
                    td { (state_badge(p.state.as_str())) }
                    td.num { (p.status.map(|s| s.to_string()).unwrap_or_default()) }
                    td { (when(&p.sent_at)) }
                    td { code { (p.body) } }
                    td { (p.message.as_deref().unwrap_or("")) }
                }
            }
        }
    };
    Ok(layout(&format!("Run {id}"), Some(&who), body).into_response())
}

pub(crate) async fn login_form(
    State(state): State<Shared>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Response {
    login_page(&state, &headers, jar, StatusCode::OK, None)
}

/// The sign-in page, with a fresh double-submit CSRF value.
fn login_page(
    state: &Shared,
    headers: &HeaderMap,
    jar: CookieJar,
    status: StatusCode,
    problem: Option<&str>,
) -> Response {
    let nonce = auth::login_nonce();
    let secure = auth::secure(state.console.settings.trust_forwarded_proto, headers);
    let jar = jar.add(auth::cookie(
        auth::LOGIN_COOKIE,
        nonce.clone(),
        Duration::from_secs(600),
        secure,
    ));
    let no_users = state.console.settings.users.is_empty();
    let body = html! {
        div.login {
            h1 { "Sign in" }
            @if let Some(p) = problem { p.refusal { (p) } }
            @if no_users {
                p.refusal { "No user is configured: add " code { "[[console.users]]" } " to the config (" code { "rebalancer console new-token" } " prints a token and its lines)." }
            }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(nonce);
                label for="token" { "Token" }
                input id="token" type="password" name="token" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
            p.muted { "Your token is given to you by whoever runs the console (" code { "rebalancer console new-token" } ")." }
        }
    };
    (status, jar, layout("Sign in", None, body)).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

pub(crate) async fn login(
    State(state): State<Shared>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = jar.get(auth::LOGIN_COOKIE).map(|c| c.value().to_owned());
    if !expected.is_some_and(|e| auth::same(&e, &form.csrf)) {
        return login_page(
            &state,
            &headers,
            jar,
            StatusCode::FORBIDDEN,
            Some("The sign-in form was stale (its CSRF token did not match); try again."),
        );
    }
    let users = &state.console.settings.users;
    let Some(user) = auth::user_for_token(users, &form.token) else {
        // Past the limit, failures are answered 429 and not logged one by
        // one (a flood of guesses must not flood the log; a 256-bit token
        // cannot be guessed anyway).
        if state.logins.failed().is_err() {
            return PageRefusal(Refusal::TooMany).into_response();
        }
        tracing::warn!("a console sign-in with an unknown token was refused");
        return login_page(
            &state,
            &headers,
            jar,
            StatusCode::UNAUTHORIZED,
            Some("That token is not valid."),
        );
    };
    let id = state.sessions.open(user);
    tracing::info!(user = %user.name, role = user.role.as_str(), "signed in to the console");
    let secure = auth::secure(state.console.settings.trust_forwarded_proto, &headers);
    let jar = jar
        .remove(Cookie::build(auth::LOGIN_COOKIE).path("/"))
        .add(auth::cookie(
            auth::SESSION_COOKIE,
            id,
            state.sessions.ttl(),
            secure,
        ));
    (jar, Redirect::to("/")).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn logout(
    Visitor(who): Visitor,
    State(state): State<Shared>,
    jar: CookieJar,
    Form(form): Form<LogoutForm>,
) -> Page {
    who.check_csrf(Some(&form.csrf))?;
    if let Some(id) = auth::session_id(&jar) {
        state.sessions.close(&id);
    }
    let jar = jar.remove(Cookie::build(auth::SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to("/login")).into_response())
}
