//! The plan as one self-contained HTML page (`plan --report FILE`, `apply
//! --report FILE`): the summary, the objectives before → after → optimum,
//! two charts (per-agent utilisation before and after; per-lead demand
//! against coverage), the changes grouped by lead with their reasons, what
//! was deferred, and the leads left short with Zoho's default assignee.
//!
//! The page is a `maud` template, so every text from the plan is escaped;
//! the charts are drawn with the shared toolkit in `render::svg`.
//!
//! The page opens with no network: styles are inline, the charts are inline
//! SVG drawn here, there is no script, and a Content-Security-Policy forbids
//! loading anything. It reads no clock, so the same plan gives the same
//! bytes. Every chart mark carries a class (`bar before`, `bar after`,
//! `bar demand`, `bar covered`, and for a lead left short `bar demand
//! short`, `bar covered short`) and a tooltip (`<title>`); legend swatches
//! do not have the `bar` class, so marks can be counted.

use super::svg::{self, Anchor, Area, Canvas, Flow, Linear, Paint, Swatch};
use super::{problem_label, records, utilisation};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use rebalancer_model::{
    Action, AgentPlan, Change, LeadKey, LeadPlan, ModelError, Plan, ProblemKind,
};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// Most agents drawn in the utilisation chart (the most utilised after the
/// plan); the caption says when more were left out.
pub const MAX_AGENT_BARS: usize = 400;
/// Most leads drawn in the coverage chart (the largest demand first).
pub const MAX_LEAD_BARS: usize = 400;
/// Up to this many bars, each is labelled on the x axis.
const LABELLED_BARS: usize = 60;

/// Write the report of `plan` to `path` atomically; a failure is a
/// [`ModelError::Write`] naming the file (exit 8).
pub fn save(plan: &Plan, path: &Path) -> Result<(), ModelError> {
    rebalancer_model::write_atomic(path, html(plan).as_bytes())
}

/// The whole page.
pub fn html(plan: &Plan) -> String {
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
                    (utilisation_chart(plan))
                    (coverage_chart(plan))
                    (changes(plan))
                    (deferred(plan))
                    (short_leads(plan))
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
.demand{fill:#eceff3;stroke:#b3bdc8;stroke-width:.6}
.demand.short{fill:#f9e1d7;stroke:#e0a288}
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

/// A bar chart: one slot per bar across the plot area, a linear y axis
/// from 0, in SVG user units.
struct Bars {
    area: Area,
    /// The size of the whole chart.
    width: f64,
    height: f64,
    scale: Linear,
    /// Bars drawn.
    n: usize,
}

impl Bars {
    /// Room for `n` bars up to `y_max`; with few bars, room for their
    /// labels under the axis.
    fn new(n: usize, y_max: f64) -> Bars {
        let labelled = n > 0 && n <= LABELLED_BARS;
        let (height, bottom) = if labelled {
            (400.0, 96.0)
        } else {
            (350.0, 46.0)
        };
        let (width, left, right, top) = (1100.0, 62.0, 110.0, 40.0);
        Bars {
            area: Area {
                left,
                top,
                width: width - left - right,
                height: height - top - bottom,
                decimals: 2,
            },
            width,
            height,
            scale: Linear::to(y_max),
            n,
        }
    }

    /// The `<svg>` around `body`.
    fn chart(&self, id: &str, label: &str, body: Markup) -> Markup {
        Canvas {
            width: self.width,
            height: self.height,
            id: Some(id),
            class: Some("chart"),
            label: Some(label),
            standalone: false,
        }
        .wrap(body)
    }

    fn y(&self, v: f64) -> f64 {
        self.area.y(self.scale.fraction(v))
    }

    /// Left edge and width of bar `i`'s slot.
    fn slot(&self, i: usize) -> (f64, f64) {
        let w = self.area.width / self.n.max(1) as f64;
        (self.area.left + w * i as f64, w)
    }

    /// A bar in slot `i` from 0 to `v`, covering `span` of the slot.
    fn bar(&self, i: usize, span: (f64, f64), v: f64, class: &str, tip: &str) -> Markup {
        let top = self.y(v);
        self.mark(i, span, (top, self.area.bottom() - top), class, tip)
    }

    /// A short thick tick in slot `i` at `v` (a value marker).
    fn tick(&self, i: usize, span: (f64, f64), v: f64, class: &str, tip: &str) -> Markup {
        self.mark(i, span, (self.y(v) - 1.25, 2.5), class, tip)
    }

    /// A `bar`-class rectangle in slot `i` at `y` with height `h`, with
    /// its tooltip.
    fn mark(
        &self,
        i: usize,
        span: (f64, f64),
        (y, h): (f64, f64),
        class: &str,
        tip: &str,
    ) -> Markup {
        let (x, w) = self.slot(i);
        let class = format!("bar {class}");
        let at = (x + w * span.0, y);
        self.area.rect(
            Paint::class(&class),
            at,
            (w * (span.1 - span.0), h),
            Some(tip),
        )
    }

    /// Grid lines with tick labels, the axes, and the axis titles; `labels`
    /// names each slot when there are few.
    fn axes(
        &self,
        ticks: &[(f64, String)],
        y_title: &str,
        x_title: &str,
        labels: &[String],
    ) -> Markup {
        let a = &self.area;
        let ticks: Vec<(f64, Markup)> = ticks
            .iter()
            .map(|(v, t)| (self.y(*v), html! { (t) }))
            .collect();
        let axis = Paint::class("axis");
        let labelled = labels.len() == self.n && self.n <= LABELLED_BARS;
        html! {
            (a.y_grid(Paint::class("grid"), 0.0, &ticks))
            (a.line(axis, (a.left, a.top), (a.left, a.bottom())))
            (a.line(axis, (a.left, a.bottom()), (a.right(), a.bottom())))
            @if labelled {
                @for (i, label) in labels.iter().enumerate() {
                    @let (x, w) = self.slot(i);
                    (a.turned_text(None, (x + w / 2.0 + 3.0, a.bottom() + 10.0), -50, Anchor::End, label))
                }
            }
            (a.axis_titles(Some("axis-title"), (x_title, self.height - 8.0), (y_title, 16.0)))
        }
    }

    /// A dashed horizontal reference line at `v`, labelled at the right.
    fn reference(&self, v: f64, class: &str, label: &str, dy: f64) -> Markup {
        let (a, y) = (&self.area, self.y(v));
        let line = format!("ref {class}");
        html! {
            (a.line(Paint::class(&line), (a.left, y), (a.right(), y)))
            (a.text(Some(class), (a.right() + 6.0, y + 4.0 + dy), Anchor::Start, label))
        }
    }

    /// The legend, in a row above the plot area.
    fn legend(&self, entries: &[(Swatch, &str)]) -> Markup {
        self.area.legend((self.area.left, 16.0), Flow::Row, entries)
    }
}

/// A chart in its section, with its caption.
fn figure(heading: &str, chart: Markup, caption: &str) -> Markup {
    html! {
        section { h2 { (heading) } figure { (chart) figcaption { (caption) } } }
    }
}

/// The agents drawn in the utilisation chart: those with headroom, by
/// utilisation after the plan (then before, then id), the most utilised
/// first, at most [`MAX_AGENT_BARS`]; and how many had headroom.
fn agent_bars(plan: &Plan) -> (Vec<(&AgentPlan, f64, f64)>, usize) {
    let mut bars: Vec<(&AgentPlan, f64, f64)> = plan
        .agents
        .iter()
        .filter(|a| a.headroom > 0)
        .map(|a| {
            let h = a.headroom as f64;
            (a, a.load_before / h, a.load_after / h)
        })
        .collect();
    bars.sort_by(|x, y| {
        y.2.total_cmp(&x.2)
            .then(y.1.total_cmp(&x.1))
            .then(x.0.agent.cmp(&y.0.agent))
    });
    let with_headroom = bars.len();
    bars.truncate(MAX_AGENT_BARS);
    (bars, with_headroom)
}

/// The top of a utilisation axis: 1.0, or the next quarter above the
/// largest value.
fn utilisation_top(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(1.0_f64, f64::max);
    (max * 4.0).ceil() / 4.0
}

fn utilisation_chart(plan: &Plan) -> Markup {
    let b = &plan.objectives.balance;
    let (bars, with_headroom) = agent_bars(plan);
    let top = utilisation_top(
        bars.iter()
            .flat_map(|(_, before, after)| [*before, *after])
            .chain([b.least_peak, b.cap]),
    );
    let f = Bars::new(bars.len(), top);
    let ticks: Vec<(f64, String)> = f
        .scale
        .ticks(0.25)
        .map(|v| (v, format!("{v:.2}")))
        .collect();
    let labels: Vec<String> = bars.iter().map(|(a, _, _)| a.agent.0.to_string()).collect();
    let x_title = format!(
        "agents, the most utilised after the plan first ({})",
        bars.len()
    );
    let body = html! {
        (f.axes(&ticks, "utilisation (load / headroom)", &x_title, &labels))
        (utilisation_bars(&f, &bars))
        (utilisation_references(&f, b))
    };
    let chart = f.chart(
        "utilisation-chart",
        "Utilisation of each agent before and after the plan",
        body,
    );
    figure(
        "Agent utilisation, before and after",
        chart,
        &utilisation_caption(plan, &bars, with_headroom),
    )
}

/// One bar (after) and one tick (before) per agent, each with its figures
/// as a tooltip.
fn utilisation_bars(f: &Bars, bars: &[(&AgentPlan, f64, f64)]) -> Markup {
    html! {
        @for (i, (a, before, after)) in bars.iter().enumerate() {
            @let tip = format!(
                "{}: before {} of {} ({}), after {} of {} ({})",
                a.agent,
                records(a.load_before),
                a.headroom,
                utilisation(*before),
                records(a.load_after),
                a.headroom,
                utilisation(*after)
            );
            (f.bar(i, (0.14, 0.86), *after, "after", &tip))
            (f.tick(i, (0.0, 1.0), *before, "before", &tip))
        }
    }
}

/// The u* line, the cap line when it differs, and the legend.
fn utilisation_references(f: &Bars, b: &rebalancer_model::Balance) -> Markup {
    let distinct_cap = (b.cap - b.least_peak).abs() > 1e-9;
    let below = |v: f64| {
        if distinct_cap && v < b.cap.max(b.least_peak) {
            8.0
        } else {
            -4.0
        }
    };
    let mut entries = vec![
        (Swatch::Fill("after"), "after the plan"),
        (Swatch::Tick("before"), "before (current mapping)"),
        (Swatch::Dash("ustar"), "u*: least possible peak"),
    ];
    if distinct_cap {
        entries.push((Swatch::Dash("cap"), "cap: max(u*, target)"));
    }
    let ustar = format!("u* {}", utilisation(b.least_peak));
    let cap = format!("cap {}", utilisation(b.cap));
    html! {
        (f.reference(b.least_peak, "ustar", &ustar, below(b.least_peak)))
        @if distinct_cap { (f.reference(b.cap, "cap", &cap, below(b.cap))) }
        (f.legend(&entries))
    }
}

/// What the chart shows and what it leaves out.
fn utilisation_caption(
    plan: &Plan,
    bars: &[(&AgentPlan, f64, f64)],
    with_headroom: usize,
) -> String {
    let mut caption = format!(
        "Load / headroom per agent: bars after the plan, ticks before it; every agent's load stays within the cap {}.",
        utilisation(plan.objectives.balance.cap)
    );
    let idle = bars
        .iter()
        .filter(|(_, before, after)| *before == 0.0 && *after == 0.0)
        .count();
    if idle > 0 {
        let _ = write!(caption, " {idle} agents carry no load before or after.");
    }
    let without = plan.agents.len() - with_headroom;
    if without > 0 {
        let _ = write!(caption, " {without} agents without headroom (inactive, at their allowance, excluded) are not drawn.");
    }
    if with_headroom > bars.len() {
        let _ = write!(
            caption,
            " Showing the {} most utilised of {with_headroom} agents.",
            bars.len()
        );
    }
    caption
}

fn coverage_chart(plan: &Plan) -> Markup {
    let mut leads: Vec<&LeadPlan> = plan.leads.iter().collect();
    leads.sort_by(|a, b| b.demand.total_cmp(&a.demand).then(a.lead.cmp(&b.lead)));
    let total = leads.len();
    leads.truncate(MAX_LEAD_BARS);
    let max = leads
        .iter()
        .map(|l| l.demand.max(l.covered))
        .fold(0.0_f64, f64::max);
    let step = svg::nice_step(max);
    let f = Bars::new(leads.len(), ((max / step).ceil() * step).max(step));
    let ticks: Vec<(f64, String)> = f.scale.ticks(step).map(|v| (v, records(v))).collect();
    let labels: Vec<String> = leads.iter().map(|l| l.lead.to_string()).collect();
    let x_title = format!("leads, the largest demand first ({})", leads.len());
    let body = html! {
        (f.axes(&ticks, "records", &x_title, &labels))
        @for (i, l) in leads.iter().enumerate() {
            @let tip = format!(
                "{}: demand {}, covered {}, short {}",
                l.lead,
                records(l.demand),
                records(l.covered),
                records(l.shortfall)
            );
            @let short = if l.shortfall > 0.0 { " short" } else { "" };
            (f.bar(i, (0.12, 0.88), l.demand, &format!("demand{short}"), &tip))
            (f.bar(i, (0.12, 0.88), l.covered, &format!("covered{short}"), &tip))
        }
        (f.legend(&[
            (Swatch::Fill("demand"), "demand"),
            (Swatch::Fill("covered"), "covered after the plan"),
            (Swatch::Fill("covered short"), "lead left short: covered"),
            (Swatch::Fill("demand short"), "its shortfall"),
        ]))
    };
    let chart = f.chart(
        "coverage-chart",
        "Demand and planned coverage of each lead",
        body,
    );
    let short = plan.leads.iter().filter(|l| l.shortfall > 0.0).count();
    let mut caption = format!(
        "Demand (records) and the records the plan covers, per lead; {short} of {total} leads are left short (their uncovered records go to Zoho's default assignee)."
    );
    if total > leads.len() {
        let _ = write!(
            caption,
            " Showing the {} leads of largest demand of {total}.",
            leads.len()
        );
    }
    figure("Lead coverage after the plan", chart, &caption)
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
                    " leads (− unassign, + assign; records: planned on the pair)."
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

/// Leads left short, the shortest first, with Zoho's default assignee.
fn short_leads(plan: &Plan) -> Markup {
    let mut short: Vec<&LeadPlan> = plan.leads.iter().filter(|l| l.shortfall > 0.0).collect();
    short.sort_by(|a, b| {
        b.shortfall
            .total_cmp(&a.shortfall)
            .then(a.lead.cmp(&b.lead))
    });
    html! {
        section {
            h2 { "Leads left short" }
            @if short.is_empty() {
                p { "Every lead's demand is covered." }
            } @else {
                p.muted { "The default assignee is the Zoho user who receives the records no agent under the threshold can take." }
                table {
                    thead { tr {
                        th { "lead" } th.n { "demand" } th.n { "covered" } th.n { "shortfall" }
                        th { "default assignee" }
                    } }
                    tbody {
                        @for l in &short {
                            tr {
                                td { (l.lead) }
                                td.n { (records(l.demand)) }
                                td.n { (records(l.covered)) }
                                td.n { (records(l.shortfall)) }
                                td {
                                    @match &l.default_assignee {
                                        Some(a) => span.mono { (a) },
                                        None => span.muted { "none in Zoho" },
                                    }
                                }
                            }
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
    use rebalancer_model::{
        AgentId, Balance, Metrics, NewPairs, Objectives, Reason, Summary, TargetSystem,
        PLAN_SCHEMA_VERSION,
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
        let html = html(&sample());
        assert!(!html.contains("<script"), "raw script tag in the report");
        assert!(!html.contains(NASTY));
        let escaped = "&lt;script&gt;&amp;&quot;x'";
        // The change table, the chart tooltips, the short lead's default
        // assignee and the what-if all carry the agent.
        assert!(html.matches(escaped).count() >= 5, "{html}");
        assert!(html.contains("user_status=&lt;Inactive&gt;"));
    }

    #[test]
    fn both_charts_have_one_mark_per_bar_and_series() {
        let html = html(&sample());
        let util = svg(&html, "utilisation-chart");
        // Two agents with headroom, before and after each.
        assert_eq!(util.matches("class=\"bar before\"").count(), 2);
        assert_eq!(util.matches("class=\"bar after\"").count(), 2);
        assert_eq!(util.matches("class=\"bar ").count(), 4);
        // u* and the cap (above it) are drawn, and named in the legend.
        assert_eq!(util.matches("class=\"ref ustar\"").count(), 2);
        assert_eq!(util.matches("class=\"ref cap\"").count(), 2);
        assert!(util.contains("u* 0.7500") && util.contains("cap 0.9000"));
        // The most utilised after the plan comes first.
        let a2 = util.find("agent0002:").unwrap();
        assert!(
            util.find("&lt;script").unwrap() < a2,
            "sorted by utilisation after"
        );
        let cov = svg(&html, "coverage-chart");
        assert_eq!(cov.matches("class=\"bar demand\"").count(), 1);
        assert_eq!(cov.matches("class=\"bar demand short\"").count(), 1);
        assert_eq!(cov.matches("class=\"bar covered\"").count(), 1);
        assert_eq!(cov.matches("class=\"bar covered short\"").count(), 1);
        assert_eq!(cov.matches("class=\"bar ").count(), 4);
        assert!(html.contains("1 agents without headroom"));
    }

    #[test]
    fn nothing_is_loaded_from_elsewhere() {
        let html = html(&sample());
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
        let (a, b) = (html(&sample()), html(&sample()));
        assert_eq!(a, b);
        assert!(a.contains("<title>rebalancer plan — abababababab</title>"));
        let mut other = sample();
        other.agents.reverse();
        assert_eq!(
            html(&other),
            a,
            "the order of the plan's lists does not matter"
        );
    }

    #[test]
    fn large_plans_draw_a_bounded_number_of_bars() {
        let mut p = sample();
        p.agents = (0..MAX_AGENT_BARS + 5)
            .map(|i| agent(&format!("a{i:04}"), 10, 1.0, (i % 10) as f64))
            .collect();
        p.leads = (0..MAX_LEAD_BARS as u64 + 3)
            .map(|i| lead_plan(i, (i % 17) as f64 + 1.0, 1.0))
            .collect();
        let html = html(&p);
        let util = svg(&html, "utilisation-chart");
        assert_eq!(util.matches("class=\"bar ").count(), 2 * MAX_AGENT_BARS);
        let cov = svg(&html, "coverage-chart");
        assert_eq!(cov.matches("class=\"bar ").count(), 2 * MAX_LEAD_BARS);
        assert!(html.contains(&format!(
            "Showing the {MAX_AGENT_BARS} most utilised of {} agents",
            MAX_AGENT_BARS + 5
        )));
        assert!(html.contains(&format!(
            "Showing the {MAX_LEAD_BARS} leads of largest demand of {}",
            MAX_LEAD_BARS + 3
        )));
    }
}
