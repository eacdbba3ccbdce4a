//! The plan as one self-contained HTML page (`plan --report FILE`, `apply
//! --report FILE`), built around what changes: the summary, the objectives
//! before → after → optimum, what apply will send (PUTs and time at the
//! configured rate), who moves (each changed agent's leads and records
//! before → after, chart and table), each changed lead's coverage before →
//! after, the leads left short with why (from the snapshot's pools) and
//! Zoho's default assignee, the changes grouped by lead with their
//! reasons, and what was deferred. The views of change are
//! `render::moves`.
//!
//! The page is a `maud` template, so every text from the plan is escaped;
//! the charts are drawn with the shared toolkit in `render::svg`.
//!
//! The page opens with no network: styles are inline, the charts are inline
//! SVG drawn here, there is no script, and a Content-Security-Policy forbids
//! loading anything. It reads no clock, so the same plan gives the same
//! bytes. Every chart mark carries a class (`bar before`, `bar after`, and
//! for a lead left short `bar after short`) and a tooltip (`<title>`);
//! legend swatches do not have the `bar` class, so marks can be counted.

use super::moves;
use super::{problem_label, records, utilisation};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use rebalancer_model::{Action, Change, LeadKey, ModelError, Plan, ProblemKind};
use std::collections::BTreeMap;
use std::path::Path;

pub use super::moves::{ApplyRate, Context};

/// Write the report of `plan` to `path` atomically; a failure is a
/// [`ModelError::Write`] naming the file (exit 8).
pub fn save(plan: &Plan, ctx: &Context, path: &Path) -> Result<(), ModelError> {
    rebalancer_model::write_atomic(path, html(plan, ctx).as_bytes())
}

/// The whole page; `ctx`: the snapshot and `[apply]` figures when known.
pub fn html(plan: &Plan, ctx: &Context) -> String {
    let hash = short_hash(&plan.snapshot_hash);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "rebalancer plan — " (hash) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main {
                    (header(plan))
                    (cards(plan))
                    (summary(plan))
                    (objectives(plan))
                    (moves::apply_section(plan, ctx))
                    (moves::agents_section(plan, ctx))
                    (moves::leads_section(plan))
                    (moves::short_leads(plan, ctx))
                    (changes(plan))
                    (deferred(plan))
                    (problems(plan))
                    footer {
                        "Made by rebalancer " (env!("CARGO_PKG_VERSION")) " from a plan of schema "
                        (plan.schema_version) ". This page has no scripts and loads nothing from the network."
                    }
                }
            }
        }
    };
    page.into_string() + "\n"
}

fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

const STYLE: &str = r#"
:root{--ink:#1f2933;--muted:#5f6b7a;--line:#e3e7ec;--panel:#f6f8fa;--accent:#2f5fb3;--before:#243b53;--short:#c2410c;--ustar:#b7791f;--cap:#6b46c1;--good:#1f7a4d}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 40px 40px}
h1{font-size:22px;font-weight:600;margin:0 0 2px;letter-spacing:-.01em}
h2{font-size:15px;font-weight:600;margin:30px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
.lede{color:var(--muted);margin:0}
.banner{border:1px solid #efb8a6;background:#fdf2ee;color:#8a2c0d;border-radius:6px;padding:10px 14px;margin:16px 0 0}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:12px;margin:20px 0 0}
.card{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:9px 14px}
.card .k{font-size:11.5px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.card .v{font-size:21px;font-weight:600;font-variant-numeric:tabular-nums}
.card .s{font-size:12px;color:var(--muted);font-variant-numeric:tabular-nums}
dl.facts{display:grid;grid-template-columns:170px 1fr;gap:3px 16px;margin:0}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0}
dl.facts ul{margin:0;padding-left:18px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:4px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;font-size:11.5px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em;background:var(--panel)}
.n{text-align:right}
table.objectives{width:auto;min-width:560px}
tbody.lead tr:first-child td{border-top:1px solid #cfd6de}
td.lead{font-weight:600}
.plus{color:var(--good);font-weight:600}
.minus{color:var(--short);font-weight:600}
.muted{color:var(--muted)}
figure{margin:0}
figcaption{color:var(--muted);font-size:12.5px;margin-top:4px}
svg.chart{width:100%;height:auto;display:block}
svg.chart text{font-size:11px;fill:var(--muted)}
svg.chart text.legend{fill:var(--ink)}
svg.chart text.axis-title{font-size:11.5px;fill:var(--ink)}
.grid{stroke:#edf0f3;stroke-width:1}
.axis{stroke:#9aa5b1;stroke-width:1}
.before{fill:var(--before)}
.after,.covered{fill:var(--accent)}
.covered.short{fill:var(--short)}
.after.short{fill:var(--short)}
.capacity{fill:#eceff3;stroke:#c9d1da;stroke-width:.6}
.move{stroke:#9aa5b1;stroke-width:1.5}
svg.chart text.row-label{fill:var(--ink);font-size:11.5px}
.ref{stroke-width:1.5;stroke-dasharray:6 4;fill:none}
.ref.ustar{stroke:var(--ustar)}
.ref.cap{stroke:var(--cap)}
svg.chart text.ustar{fill:var(--ustar);font-weight:600}
svg.chart text.cap{fill:var(--cap);font-weight:600}
footer{margin-top:36px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:10px}
"#;

fn header(plan: &Plan) -> Markup {
    html! {
        header {
            h1 { "Rebalancer plan " span.mono.muted { (short_hash(&plan.snapshot_hash)) } }
            p.lede {
                "From the snapshot fetched " (plan.snapshot_fetched_at)
                ". A plan changes nothing upstream until " code { "rebalancer apply" } " writes it."
            }
        }
        @if let Some(b) = &plan.blocked {
            p.banner {
                strong { "BLOCKED:" } " " (b.reason) " (" (b.unassigns) " unassigns of "
                (b.current_pairs) " current pairs, more than " (format!("{:.0}", b.max_share * 100.0))
                "%). " code { "apply" } " refuses this plan unless " code { "--allow-mass-unassign" }
                " is given."
            }
        }
    }
}

/// The headline figures.
fn cards(plan: &Plan) -> Markup {
    let (s, o) = (&plan.summary, &plan.objectives);
    let cards = [
        ("Assigns", s.assigns.to_string(), String::new()),
        ("Unassigns", s.unassigns.to_string(), String::new()),
        ("Kept", s.kept.to_string(), "current pairs".to_string()),
        (
            "Deferred",
            s.deferred.to_string(),
            "by gates and caps".into(),
        ),
        (
            "Shortfall",
            records(o.after.shortfall),
            format!("before {}", records(o.before.shortfall)),
        ),
        (
            "Peak utilisation",
            utilisation(o.after.peak_utilisation),
            format!("before {}", utilisation(o.before.peak_utilisation)),
        ),
    ];
    html! {
        section.cards {
            @for (k, v, sub) in &cards {
                div.card {
                    div.k { (k) }
                    div.v { (v) }
                    // A no-break space keeps an empty line's height.
                    div.s { @if sub.is_empty() { "\u{a0}" } @else { (sub) } }
                }
            }
        }
    }
}

/// One `<dt>`/`<dd>` pair.
fn fact(term: &str, dd: Markup) -> Markup {
    html! { dt { (term) } dd { (dd) } }
}

fn summary(plan: &Plan) -> Markup {
    let s = &plan.summary;
    let center = plan
        .system
        .contact_center_id
        .map_or("unknown".into(), |c| c.to_string());
    let cms = rebalancer_upstream::mask_url(&plan.system.cms_base_url);
    let balance = super::plan::balance_line(plan);
    let balance = balance.strip_prefix("Balance: ").unwrap_or(&balance);
    html! {
        section {
            h2 { "Summary" }
            dl.facts {
                (fact("Snapshot", html! { code { (plan.snapshot_hash) } ", fetched " (plan.snapshot_fetched_at) }))
                (fact("System", html! { "CMS " (cms) ", contact center " (center) }))
                (fact("Config digest", html! { code { (short_hash(&plan.config_digest)) } }))
                (fact("Solver", html! { (plan.solver) }))
                (fact("Size", html! { (s.agents) " agents, " (s.leads) " leads" }))
                (fact("Moves", html! {
                    "assign " (s.assigns) " / unassign " (s.unassigns) " (kept " (s.kept)
                    ", deferred " (s.deferred) ")"
                }))
                (fact("Balance", html! { (balance) }))
                (held_back_facts(plan))
                (list_fact("What-ifs", &plan.what_ifs))
                (problem_facts(plan))
                (list_fact("Notes", &plan.notes))
            }
        }
    }
}

/// Gate, move caps and flap guard, when they applied.
fn held_back_facts(plan: &Plan) -> Markup {
    html! {
        @if let Some(gate) = &plan.gate {
            (fact("Gate", html! { (gate) "; only safety changes are listed" }))
        }
        @if let Some(c) = &plan.caps {
            @let (caps, outcome) = super::plan::caps_line(c, plan.changes.len());
            (fact("Move caps", html! { (caps) ": " (outcome) }))
        }
        @if let Some(g) = &plan.flap_guard {
            (fact("Flap guard", html! {
                (g.agents) " recent agents and " (g.leads) " recent leads; " (g.deferred)
                " optimisation moves held back"
            }))
        }
    }
}

fn list_fact(term: &str, items: &[String]) -> Markup {
    html! {
        @if !items.is_empty() {
            (fact(term, html! { ul { @for item in items { li { (item) } } } }))
        }
    }
}

fn problem_facts(plan: &Plan) -> Markup {
    let mut counts: BTreeMap<ProblemKind, usize> = BTreeMap::new();
    for p in &plan.problems {
        *counts.entry(p.kind).or_default() += 1;
    }
    let items: Vec<String> = counts
        .iter()
        .map(|(k, n)| format!("{n} {}", problem_label(*k)))
        .collect();
    list_fact("Fetch problems", &items)
}

fn objectives(plan: &Plan) -> Markup {
    let o = &plan.objectives;
    let rows = [
        (
            "shortfall (records)",
            [&o.before, &o.after, &o.optimum].map(|m| records(m.shortfall)),
        ),
        (
            "peak utilisation",
            [&o.before, &o.after, &o.optimum].map(|m| utilisation(m.peak_utilisation)),
        ),
        (
            "leads short of demand",
            [&o.before, &o.after, &o.optimum].map(|m| m.leads_uncovered.to_string()),
        ),
    ];
    html! {
        section {
            h2 { "Objectives" }
            table.objectives {
                thead { tr { th { "objective" } th.n { "before" } th.n { "after" } th.n { "optimum" } } }
                tbody {
                    @for (name, values) in &rows {
                        tr { td { (name) } @for v in values { td.n { (v) } } }
                    }
                }
            }
        }
    }
}

/// Most fetch problems listed by name.
const MAX_PROBLEMS: usize = 60;

/// The fetch's problems by name: what, who, and the detail.
fn problems(plan: &Plan) -> Markup {
    let shown = &plan.problems[..plan.problems.len().min(MAX_PROBLEMS)];
    html! {
        @if !plan.problems.is_empty() {
            section {
                h2 { "Fetch problems" }
                p.muted {
                    (plan.problems.len()) " problems in the snapshot the plan was made from"
                    @if shown.len() < plan.problems.len() { " (the first " (shown.len()) " listed; the plan file has them all)" }
                    "."
                }
                table {
                    thead { tr { th { "problem" } th { "who" } th { "detail" } } }
                    tbody {
                        @for p in shown {
                            tr { td { (problem_label(p.kind)) } td.mono { (p.subject) } td { (p.detail) } }
                        }
                    }
                }
            }
        }
    }
}

/// Changes grouped by lead: − unassign, + assign, with their reasons.
fn changes(plan: &Plan) -> Markup {
    let mut by_lead: BTreeMap<LeadKey, Vec<&Change>> = BTreeMap::new();
    for c in &plan.changes {
        by_lead.entry(c.lead).or_default().push(c);
    }
    html! {
        section {
            h2 { "Changes by lead" }
            @if by_lead.is_empty() {
                p { "No changes." }
            } @else {
                p.muted {
                    (plan.changes.len()) " changes on " (by_lead.len())
                    " leads (− unassign, + assign). Records: what the plan routes over the pair; to balance load it may also move records off the lead's other pairs, so a lead's new records can exceed its shortfall."
                }
                table {
                    thead { tr { th { "lead" } th { "change" } th { "agent" } th.n { "records" } th { "reason" } } }
                    @for (lead, changes) in &by_lead {
                        tbody.lead {
                            @for (n, c) in changes.iter().enumerate() {
                                tr {
                                    @if n == 0 { td.lead rowspan=(changes.len()) { (lead) } }
                                    (change_cells(c))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The change, agent, records and reason cells of a change.
fn change_cells(c: &Change) -> Markup {
    let (class, sign) = match c.action {
        Action::Assign => ("plus", "+ assign"),
        Action::Unassign => ("minus", "− unassign"),
    };
    let flow = if c.flow > 0.0 {
        records(c.flow)
    } else {
        String::new()
    };
    html! {
        td class=(class) { (sign) }
        td.mono { (c.agent) }
        td.n { (flow) }
        td { (c.reason) }
    }
}

/// What gates and caps held back.
fn deferred(plan: &Plan) -> Markup {
    html! {
        @if !plan.deferred.is_empty() {
            section {
                h2 { "Deferred changes" }
                p.muted {
                    (plan.deferred.len())
                    " changes held back by gates and caps; safety changes are never deferred."
                }
                table {
                    thead { tr {
                        th { "lead" } th { "change" } th { "agent" } th.n { "records" } th { "reason" }
                        th { "deferred by" }
                    } }
                    tbody {
                        @for d in &plan.deferred {
                            tr { td { (d.change.lead) } (change_cells(&d.change)) td { (d.deferred_by) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::moves::MAX_ROWS;
    use rebalancer_model::{
        AgentId, AgentPlan, Balance, LeadPlan, Metrics, NewPairs, Objectives, Reason, Summary,
        TargetSystem, PLAN_SCHEMA_VERSION,
    };

    const NASTY: &str = "<script>&\"x'";

    fn lead(id: u64) -> LeadKey {
        LeadKey {
            campaign_id: 501,
            lead_id: id,
        }
    }

    fn agent(id: &str, headroom: i64, before: f64, after: f64) -> AgentPlan {
        AgentPlan {
            agent: AgentId::new(id),
            headroom,
            load_before: before,
            load_after: after,
            leads_before: 1,
            leads_after: 1,
            webex_username: None,
            zoho_user_id: None,
        }
    }

    fn lead_plan(id: u64, demand: f64, covered: f64) -> LeadPlan {
        LeadPlan {
            lead: lead(id),
            process_id: 101,
            demand,
            covered_before: 0.0,
            covered,
            shortfall: demand - covered,
            target: vec![],
            current: vec![],
            frozen: false,
            default_assignee: (covered < demand).then(|| AgentId::new(NASTY)),
        }
    }

    /// Three agents (one without headroom), two leads (one short), two
    /// changes, a cap above u*.
    fn sample() -> Plan {
        let m = |shortfall, peak| Metrics {
            shortfall,
            peak_utilisation: peak,
            leads_uncovered: 1,
        };
        Plan {
            schema_version: PLAN_SCHEMA_VERSION,
            snapshot_hash: "ab".repeat(32),
            snapshot_fetched_at: "2026-11-23T12:00:00Z".into(),
            config_digest: "cd".repeat(32),
            solver: "flow".into(),
            system: TargetSystem {
                cms_base_url: "https://cms.example.com".into(),
                contact_center_id: Some(7),
            },
            objectives: Objectives {
                before: m(12.0, 1.0),
                after: m(5.0, 0.9),
                optimum: m(5.0, 0.9),
                churn: 3.0,
                balance: Balance {
                    target: Some(0.9),
                    least_peak: 0.75,
                    cap: 0.9,
                },
                new_pairs: NewPairs {
                    least_records: 1,
                    reduced: 1,
                },
            },
            summary: Summary {
                agents: 3,
                leads: 2,
                assigns: 1,
                unassigns: 1,
                deferred: 0,
                kept: 2,
            },
            gate: None,
            blocked: None,
            caps: None,
            flap_guard: None,
            what_ifs: vec![format!("plan.exclude_agents: {NASTY}")],
            problems: vec![],
            changes: vec![
                Change {
                    lead: lead(1000),
                    agent: AgentId::new("agent0001"),
                    action: Action::Unassign,
                    reason: Reason::Inactive {
                        detail: "user_status=<Inactive>".into(),
                    },
                    flow: 0.0,
                },
                Change {
                    lead: lead(1000),
                    agent: AgentId::new(NASTY),
                    action: Action::Assign,
                    reason: Reason::CoversShortfall {
                        shortfall_before: 7.0,
                    },
                    flow: 7.0,
                },
            ],
            deferred: vec![],
            leads: vec![lead_plan(1000, 20.0, 20.0), lead_plan(1001, 10.0, 5.0)],
            agents: vec![
                agent("agent0001", 0, 0.0, 0.0),
                agent("agent0002", 10, 10.0, 9.0),
                agent(NASTY, 20, 0.0, 7.0),
            ],
            notes: vec![],
        }
    }

    /// The page of `plan` with nothing beside it.
    fn page(plan: &Plan) -> String {
        html(plan, &Context::default())
    }

    /// The text of the `<svg>` with this id.
    fn svg<'a>(html: &'a str, id: &str) -> &'a str {
        let start = html
            .find(&format!("<svg id=\"{id}\""))
            .unwrap_or_else(|| panic!("no svg {id}"));
        let end = html[start..].find("</svg>").expect("svg closed") + start;
        &html[start..end]
    }

    #[test]
    fn text_is_escaped_everywhere() {
        let html = page(&sample());
        assert!(!html.contains("<script"), "raw script tag in the report");
        assert!(!html.contains(NASTY));
        let escaped = "&lt;script&gt;&amp;&quot;x'";
        // The change table, the chart tooltips, the short lead's default
        // assignee and the what-if all carry the agent.
        assert!(html.matches(escaped).count() >= 5, "{html}");
        assert!(html.contains("user_status=&lt;Inactive&gt;"));
    }

    #[test]
    fn the_charts_show_each_change_before_and_after_the_largest_first() {
        let html = page(&sample());
        let agents = svg(&html, "agents-chart");
        // The three agents the plan changes (one loses a lead with no load
        // either side), before and after each.
        assert_eq!(agents.matches("class=\"bar before\"").count(), 3);
        assert_eq!(agents.matches("class=\"bar after\"").count(), 3);
        assert_eq!(agents.matches("class=\"bar ").count(), 6);
        // The largest change of load (0 → 7) first, then 10 → 9, then none.
        let nasty = agents.find("&lt;script").unwrap();
        let a2 = agents.find("agent0002:").unwrap();
        let a1 = agents.find("agent0001:").unwrap();
        assert!(nasty < a2 && a2 < a1, "sorted by change");
        let cov = svg(&html, "coverage-chart");
        assert_eq!(cov.matches("class=\"bar before\"").count(), 2);
        assert_eq!(cov.matches("class=\"bar after short\"").count(), 1);
        assert_eq!(cov.matches("class=\"bar ").count(), 4);
        assert!(
            cov.contains("501/1001: covered 0 → 5 of a demand of 10"),
            "{cov}"
        );
        // The headline figures before → after.
        assert!(
            html.contains("Leads short of demand: <strong>1 → 1</strong>"),
            "{html}"
        );
        assert!(
            html.contains("records short: <strong>12 → 5</strong>"),
            "{html}"
        );
        // The table names what each agent gains and loses.
        assert!(html.contains("<td class=\"minus\">501/1000</td>"), "{html}");
    }

    #[test]
    fn apply_is_estimated_at_the_configured_rate() {
        let ctx = Context {
            snapshot: None,
            apply: Some(ApplyRate {
                puts_per_second: 2,
                burst: 1,
                max_users_per_put: 1,
            }),
        };
        let html = html(&sample(), &ctx);
        // Two changes on one lead, one id per PUT: 2 PUTs, the second
        // after half a second.
        assert!(
            html.contains("About <strong>2 PUTs</strong> to 1 leads"),
            "{html}"
        );
        assert!(
            html.contains("<strong>under a second</strong>")
                || html.contains("<strong>1 s</strong>"),
            "{html}"
        );
        assert!(html.contains("apply.puts_per_second = 2"), "{html}");
        // Without the snapshot the reasons are unknown, and said to be.
        assert!(html.contains("the pools, and so the reasons, are not known"));
    }

    #[test]
    fn fetch_problems_are_listed_by_name() {
        let mut p = sample();
        p.problems = vec![rebalancer_model::Problem {
            kind: ProblemKind::NotInWebex,
            subject: "agent0009".into(),
            detail: format!("no Webex user {NASTY}"),
        }];
        let html = page(&p);
        assert!(html.contains("<h2>Fetch problems</h2>"), "{html}");
        assert!(html.contains("<td class=\"mono\">agent0009</td>"), "{html}");
        assert!(html.contains("no Webex user &lt;script&gt;"), "{html}");
        assert!(!page(&sample()).contains("<h2>Fetch problems</h2>"));
    }

    #[test]
    fn nothing_is_loaded_from_elsewhere() {
        let html = page(&sample());
        for needle in [
            "<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import",
        ] {
            assert!(!html.contains(needle), "the report has {needle}");
        }
        // The only URL is the plan's CMS, as text.
        let rest = html.replace("https://cms.example.com", "");
        assert!(!rest.contains("http://") && !rest.contains("https://"));
        assert!(html.contains("default-src 'none'"));
    }

    #[test]
    fn the_same_plan_gives_the_same_bytes() {
        let (a, b) = (page(&sample()), page(&sample()));
        assert_eq!(a, b);
        assert!(a.contains("<title>rebalancer plan — abababababab</title>"));
        let mut other = sample();
        other.agents.reverse();
        assert_eq!(
            page(&other),
            a,
            "the order of the plan's lists does not matter"
        );
    }

    #[test]
    fn large_plans_draw_a_bounded_number_of_rows() {
        let mut p = sample();
        p.agents = (0..MAX_ROWS + 5)
            .map(|i| agent(&format!("a{i:04}"), 10, 1.0, (i % 10) as f64 + 2.0))
            .collect();
        p.leads = (0..MAX_ROWS as u64 + 3)
            .map(|i| lead_plan(i, (i % 17) as f64 + 1.0, 1.0))
            .collect();
        let html = page(&p);
        let agents = svg(&html, "agents-chart");
        assert_eq!(agents.matches("class=\"bar ").count(), 2 * MAX_ROWS);
        let cov = svg(&html, "coverage-chart");
        assert_eq!(cov.matches("class=\"bar ").count(), 2 * MAX_ROWS);
        assert!(html.contains(&format!("(the first {MAX_ROWS} shown)")));
    }
}
