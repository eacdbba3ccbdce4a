//! The plan as one self-contained HTML page (`plan --report FILE`, `apply
//! --report FILE`): the summary, the objectives before → after → optimum,
//! two charts (per-agent utilisation before and after; per-lead demand
//! against coverage), the changes grouped by lead with their reasons, what
//! was deferred, and the leads left short with Zoho's default assignee.
//!
//! The page opens with no network: styles are inline, the charts are inline
//! SVG drawn here, there is no script, and a Content-Security-Policy forbids
//! loading anything. It reads no clock, so the same plan gives the same
//! bytes. Every chart mark carries a class (`bar before`, `bar after`,
//! `bar demand`, `bar covered`, and for a lead left short `bar demand
//! short`, `bar covered short`) and a tooltip (`<title>`); legend swatches
//! do not have the `bar` class, so marks can be counted.

use super::{problem_label, records, utilisation};
use rebalancer_model::{
    Action, AgentPlan, Change, LeadKey, LeadPlan, ModelError, Plan, ProblemKind,
};
use std::collections::BTreeMap;
use std::fmt::{self, Write};
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
    let mut out = String::with_capacity(128 * 1024);
    head(&mut out, plan);
    cards(&mut out, plan);
    summary(&mut out, plan);
    objectives(&mut out, plan);
    utilisation_chart(&mut out, plan);
    coverage_chart(&mut out, plan);
    changes(&mut out, plan);
    deferred(&mut out, plan);
    short_leads(&mut out, plan);
    let _ = write!(
        out,
        "<footer>Made by rebalancer {} from a plan of schema {}. This page has no scripts and loads nothing from the network.</footer>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        plan.schema_version
    );
    out
}

/// Text escaped for HTML element content and quoted attribute values.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
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

fn head(out: &mut String, plan: &Plan) {
    let hash = short_hash(&plan.snapshot_hash);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>rebalancer plan — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <header><h1>Rebalancer plan <span class=\"mono muted\">{}</span></h1>\n\
         <p class=\"lede\">From the snapshot fetched {}. A plan changes nothing upstream until <code>rebalancer apply</code> writes it.</p></header>\n",
        Esc(hash),
        Esc(hash),
        Esc(&plan.snapshot_fetched_at)
    );
    if let Some(b) = &plan.blocked {
        let _ = writeln!(
            out,
            "<p class=\"banner\"><strong>BLOCKED:</strong> {} ({} unassigns of {} current pairs, more than {:.0}%). <code>apply</code> refuses this plan unless <code>--allow-mass-unassign</code> is given.</p>",
            Esc(&b.reason),
            b.unassigns,
            b.current_pairs,
            b.max_share * 100.0
        );
    }
}

/// The headline figures.
fn cards(out: &mut String, plan: &Plan) {
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
    out.push_str("<section class=\"cards\">\n");
    for (k, v, sub) in cards {
        let _ = writeln!(
            out,
            "<div class=\"card\"><div class=\"k\">{k}</div><div class=\"v\">{v}</div><div class=\"s\">{}</div></div>",
            if sub.is_empty() { "&nbsp;".to_string() } else { Esc(&sub).to_string() }
        );
    }
    out.push_str("</section>\n");
}

/// One `<dt>`/`<dd>` pair; `dd` is already HTML.
fn fact(out: &mut String, term: &str, dd: &str) {
    let _ = writeln!(out, "<dt>{term}</dt><dd>{dd}</dd>");
}

fn summary(out: &mut String, plan: &Plan) {
    let s = &plan.summary;
    out.push_str("<section>\n<h2>Summary</h2>\n<dl class=\"facts\">\n");
    fact(
        out,
        "Snapshot",
        &format!(
            "<code>{}</code>, fetched {}",
            Esc(&plan.snapshot_hash),
            Esc(&plan.snapshot_fetched_at)
        ),
    );
    let center = plan
        .system
        .contact_center_id
        .map_or("unknown".into(), |c| c.to_string());
    fact(
        out,
        "System",
        &format!(
            "CMS {}, contact center {}",
            Esc(&rebalancer_upstream::mask_url(&plan.system.cms_base_url)),
            Esc(&center)
        ),
    );
    fact(
        out,
        "Config digest",
        &format!("<code>{}</code>", Esc(short_hash(&plan.config_digest))),
    );
    fact(out, "Solver", &Esc(&plan.solver).to_string());
    fact(
        out,
        "Size",
        &format!("{} agents, {} leads", s.agents, s.leads),
    );
    fact(
        out,
        "Moves",
        &format!(
            "assign {} / unassign {} (kept {}, deferred {})",
            s.assigns, s.unassigns, s.kept, s.deferred
        ),
    );
    let balance = super::plan::balance_line(plan);
    let balance = balance.strip_prefix("Balance: ").unwrap_or(&balance);
    fact(out, "Balance", &Esc(balance).to_string());
    held_back_facts(out, plan);
    list_fact(out, "What-ifs", &plan.what_ifs);
    problem_facts(out, plan);
    list_fact(out, "Notes", &plan.notes);
    out.push_str("</dl>\n</section>\n");
}

/// Gate, move caps and flap guard, when they applied.
fn held_back_facts(out: &mut String, plan: &Plan) {
    if let Some(gate) = &plan.gate {
        fact(
            out,
            "Gate",
            &format!("{}; only safety changes are listed", Esc(gate)),
        );
    }
    if let Some(c) = &plan.caps {
        let (caps, outcome) = super::plan::caps_line(c);
        fact(
            out,
            "Move caps",
            &format!("{}: {}", Esc(&caps), Esc(&outcome)),
        );
    }
    if let Some(g) = &plan.flap_guard {
        fact(
            out,
            "Flap guard",
            &format!(
                "{} recent agents and {} recent leads; {} optimisation moves held back",
                g.agents, g.leads, g.deferred
            ),
        );
    }
}

fn list_fact(out: &mut String, term: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let mut dd = String::from("<ul>");
    for item in items {
        let _ = write!(dd, "<li>{}</li>", Esc(item));
    }
    dd.push_str("</ul>");
    fact(out, term, &dd);
}

fn problem_facts(out: &mut String, plan: &Plan) {
    let mut counts: BTreeMap<ProblemKind, usize> = BTreeMap::new();
    for p in &plan.problems {
        *counts.entry(p.kind).or_default() += 1;
    }
    let items: Vec<String> = counts
        .iter()
        .map(|(k, n)| format!("{n} {}", problem_label(*k)))
        .collect();
    list_fact(out, "Fetch problems", &items);
}

fn objectives(out: &mut String, plan: &Plan) {
    let o = &plan.objectives;
    out.push_str(
        "<section>\n<h2>Objectives</h2>\n<table class=\"objectives\">\n<thead><tr><th>objective</th><th class=\"n\">before</th><th class=\"n\">after</th><th class=\"n\">optimum</th></tr></thead>\n<tbody>\n",
    );
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
    for (name, [b, a, opt]) in rows {
        let _ = writeln!(
            out,
            "<tr><td>{name}</td><td class=\"n\">{b}</td><td class=\"n\">{a}</td><td class=\"n\">{opt}</td></tr>"
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// The drawing area of a chart, in SVG user units.
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    /// The value at the top of the y axis.
    y_max: f64,
    /// Bars drawn.
    n: usize,
}

impl Frame {
    fn new(n: usize, y_max: f64) -> Frame {
        let labelled = n > 0 && n <= LABELLED_BARS;
        Frame {
            width: 1100.0,
            height: if labelled { 400.0 } else { 350.0 },
            left: 62.0,
            right: 110.0,
            top: 40.0,
            bottom: if labelled { 96.0 } else { 46.0 },
            y_max: if y_max > 0.0 { y_max } else { 1.0 },
            n,
        }
    }

    fn plot_w(&self) -> f64 {
        self.width - self.left - self.right
    }

    fn plot_h(&self) -> f64 {
        self.height - self.top - self.bottom
    }

    fn base(&self) -> f64 {
        self.top + self.plot_h()
    }

    fn y(&self, v: f64) -> f64 {
        self.top + self.plot_h() * (1.0 - (v / self.y_max).clamp(0.0, 1.0))
    }

    /// Left edge and width of bar `i`'s slot.
    fn slot(&self, i: usize) -> (f64, f64) {
        let w = self.plot_w() / self.n.max(1) as f64;
        (self.left + w * i as f64, w)
    }

    /// A bar in slot `i` from 0 to `v`, covering `span` of the slot.
    fn bar(&self, out: &mut String, i: usize, span: (f64, f64), v: f64, class: &str, tip: &str) {
        let top = self.y(v);
        self.mark(out, i, span, (top, self.base() - top), class, tip);
    }

    /// A short thick tick in slot `i` at `v` (a value marker).
    fn tick(&self, out: &mut String, i: usize, span: (f64, f64), v: f64, class: &str, tip: &str) {
        self.mark(out, i, span, (self.y(v) - 1.25, 2.5), class, tip);
    }

    /// A `bar`-class rectangle in slot `i` at `y` with height `h`, with
    /// its tooltip.
    fn mark(
        &self,
        out: &mut String,
        i: usize,
        span: (f64, f64),
        (y, h): (f64, f64),
        class: &str,
        tip: &str,
    ) {
        let (x, w) = self.slot(i);
        let _ = writeln!(
            out,
            "<rect class=\"bar {class}\" x=\"{:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{h:.2}\"><title>{}</title></rect>",
            x + w * span.0,
            w * (span.1 - span.0),
            Esc(tip)
        );
    }
}

/// A legend entry: a filled swatch of a class, a tick, or a dashed line.
enum Swatch {
    Fill(&'static str),
    /// A thin bar, for a series drawn as ticks.
    Tick(&'static str),
    Line(&'static str),
}

fn open_chart(out: &mut String, id: &str, f: &Frame, aria: &str) {
    let _ = writeln!(
        out,
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">",
        f.width,
        f.height,
        Esc(aria)
    );
}

/// Grid lines with tick labels, the axes, and the axis titles; `labels`
/// names each slot when there are few.
fn axes(
    out: &mut String,
    f: &Frame,
    ticks: &[(f64, String)],
    y_title: &str,
    x_title: &str,
    labels: &[String],
) {
    let right = f.left + f.plot_w();
    for (v, text) in ticks {
        let y = f.y(*v);
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{:.2}\" y1=\"{y:.2}\" x2=\"{right:.2}\" y2=\"{y:.2}\"/><text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"end\">{}</text>",
            f.left,
            f.left - 8.0,
            y + 4.0,
            Esc(text)
        );
    }
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{l:.2}\" y1=\"{t:.2}\" x2=\"{l:.2}\" y2=\"{b:.2}\"/><line class=\"axis\" x1=\"{l:.2}\" y1=\"{b:.2}\" x2=\"{right:.2}\" y2=\"{b:.2}\"/>",
        l = f.left,
        t = f.top,
        b = f.base()
    );
    if labels.len() == f.n && f.n <= LABELLED_BARS {
        for (i, label) in labels.iter().enumerate() {
            let (x, w) = f.slot(i);
            let _ = writeln!(
                out,
                "<text transform=\"translate({:.2},{:.2}) rotate(-50)\" text-anchor=\"end\">{}</text>",
                x + w / 2.0 + 3.0,
                f.base() + 10.0,
                Esc(label)
            );
        }
    }
    let mid = f.top + f.plot_h() / 2.0;
    let _ = writeln!(
        out,
        "<text class=\"axis-title\" transform=\"translate(16,{mid:.2}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n<text class=\"axis-title\" x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\">{}</text>",
        Esc(y_title),
        f.left + f.plot_w() / 2.0,
        f.height - 8.0,
        Esc(x_title)
    );
}

fn legend(out: &mut String, f: &Frame, entries: &[(Swatch, String)]) {
    let mut x = f.left;
    let y = 16.0;
    for (swatch, label) in entries {
        match swatch {
            Swatch::Fill(class) => {
                let _ = write!(
                    out,
                    "<rect class=\"swatch {class}\" x=\"{x:.2}\" y=\"{:.2}\" width=\"14\" height=\"10\"/>",
                    y - 9.0
                );
            }
            Swatch::Tick(class) => {
                let _ = write!(
                    out,
                    "<rect class=\"swatch {class}\" x=\"{x:.2}\" y=\"{:.2}\" width=\"14\" height=\"2.5\"/>",
                    y - 5.25
                );
            }
            Swatch::Line(class) => {
                let _ = write!(
                    out,
                    "<line class=\"ref {class}\" x1=\"{x:.2}\" y1=\"{:.2}\" x2=\"{:.2}\" y2=\"{:.2}\"/>",
                    y - 4.0,
                    x + 18.0,
                    y - 4.0
                );
            }
        }
        let _ = writeln!(
            out,
            "<text class=\"legend\" x=\"{:.2}\" y=\"{y:.2}\">{}</text>",
            x + 24.0,
            Esc(label)
        );
        x += 24.0 + label.chars().count() as f64 * 6.3 + 22.0;
    }
}

/// A dashed horizontal reference line at `v`, labelled at the right.
fn reference(out: &mut String, f: &Frame, v: f64, class: &str, label: &str, dy: f64) {
    let y = f.y(v);
    let right = f.left + f.plot_w();
    let _ = writeln!(
        out,
        "<line class=\"ref {class}\" x1=\"{:.2}\" y1=\"{y:.2}\" x2=\"{right:.2}\" y2=\"{y:.2}\"/><text class=\"{class}\" x=\"{:.2}\" y=\"{:.2}\">{}</text>",
        f.left,
        right + 6.0,
        y + 4.0 + dy,
        Esc(label)
    );
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

fn utilisation_chart(out: &mut String, plan: &Plan) {
    let b = &plan.objectives.balance;
    let (bars, with_headroom) = agent_bars(plan);
    let top = utilisation_top(
        bars.iter()
            .flat_map(|(_, before, after)| [*before, *after])
            .chain([b.least_peak, b.cap]),
    );
    let f = Frame::new(bars.len(), top);
    out.push_str("<section>\n<h2>Agent utilisation, before and after</h2>\n<figure>\n");
    open_chart(
        out,
        "utilisation-chart",
        &f,
        "Utilisation of each agent before and after the plan",
    );
    let ticks: Vec<(f64, String)> = (0..=(top * 4.0).round() as usize)
        .map(|i| (i as f64 / 4.0, format!("{:.2}", i as f64 / 4.0)))
        .collect();
    let labels: Vec<String> = bars.iter().map(|(a, _, _)| a.agent.0.to_string()).collect();
    axes(
        out,
        &f,
        &ticks,
        "utilisation (load / headroom)",
        &format!(
            "agents, the most utilised after the plan first ({})",
            bars.len()
        ),
        &labels,
    );
    utilisation_bars(out, &f, &bars);
    utilisation_references(out, &f, b);
    out.push_str("</svg>\n");
    let caption = utilisation_caption(plan, &bars, with_headroom);
    let _ = writeln!(
        out,
        "<figcaption>{}</figcaption>\n</figure>\n</section>",
        Esc(&caption)
    );
}

/// One bar (after) and one tick (before) per agent, each with its figures
/// as a tooltip.
fn utilisation_bars(out: &mut String, f: &Frame, bars: &[(&AgentPlan, f64, f64)]) {
    for (i, (a, before, after)) in bars.iter().enumerate() {
        let tip = format!(
            "{}: before {} of {} ({}), after {} of {} ({})",
            a.agent,
            records(a.load_before),
            a.headroom,
            utilisation(*before),
            records(a.load_after),
            a.headroom,
            utilisation(*after)
        );
        f.bar(out, i, (0.14, 0.86), *after, "after", &tip);
        f.tick(out, i, (0.0, 1.0), *before, "before", &tip);
    }
}

/// The u* line, the cap line when it differs, and the legend.
fn utilisation_references(out: &mut String, f: &Frame, b: &rebalancer_model::Balance) {
    let distinct_cap = (b.cap - b.least_peak).abs() > 1e-9;
    let below = |v: f64| {
        if distinct_cap && v < b.cap.max(b.least_peak) {
            8.0
        } else {
            -4.0
        }
    };
    reference(
        out,
        f,
        b.least_peak,
        "ustar",
        &format!("u* {}", utilisation(b.least_peak)),
        below(b.least_peak),
    );
    if distinct_cap {
        reference(
            out,
            f,
            b.cap,
            "cap",
            &format!("cap {}", utilisation(b.cap)),
            below(b.cap),
        );
    }
    let mut entries = vec![
        (Swatch::Fill("after"), "after the plan".to_string()),
        (
            Swatch::Tick("before"),
            "before (current mapping)".to_string(),
        ),
        (Swatch::Line("ustar"), "u*: least possible peak".to_string()),
    ];
    if distinct_cap {
        entries.push((Swatch::Line("cap"), "cap: max(u*, target)".to_string()));
    }
    legend(out, f, &entries);
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

/// A round step for about five ticks up to `max`.
fn tick_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn coverage_chart(out: &mut String, plan: &Plan) {
    let mut leads: Vec<&LeadPlan> = plan.leads.iter().collect();
    leads.sort_by(|a, b| b.demand.total_cmp(&a.demand).then(a.lead.cmp(&b.lead)));
    let total = leads.len();
    leads.truncate(MAX_LEAD_BARS);
    let max = leads
        .iter()
        .map(|l| l.demand.max(l.covered))
        .fold(0.0_f64, f64::max);
    let step = tick_step(max);
    let top = ((max / step).ceil() * step).max(step);
    let f = Frame::new(leads.len(), top);
    out.push_str("<section>\n<h2>Lead coverage after the plan</h2>\n<figure>\n");
    open_chart(
        out,
        "coverage-chart",
        &f,
        "Demand and planned coverage of each lead",
    );
    let ticks: Vec<(f64, String)> = (0..=(top / step).round() as usize)
        .map(|i| (i as f64 * step, records(i as f64 * step)))
        .collect();
    let labels: Vec<String> = leads.iter().map(|l| l.lead.to_string()).collect();
    axes(
        out,
        &f,
        &ticks,
        "records",
        &format!("leads, the largest demand first ({})", leads.len()),
        &labels,
    );
    for (i, l) in leads.iter().enumerate() {
        let tip = format!(
            "{}: demand {}, covered {}, short {}",
            l.lead,
            records(l.demand),
            records(l.covered),
            records(l.shortfall)
        );
        let (demand, covered) = if l.shortfall > 0.0 {
            ("demand short", "covered short")
        } else {
            ("demand", "covered")
        };
        f.bar(out, i, (0.12, 0.88), l.demand, demand, &tip);
        f.bar(out, i, (0.12, 0.88), l.covered, covered, &tip);
    }
    legend(
        out,
        &f,
        &[
            (Swatch::Fill("demand"), "demand".to_string()),
            (
                Swatch::Fill("covered"),
                "covered after the plan".to_string(),
            ),
            (
                Swatch::Fill("covered short"),
                "lead left short: covered".to_string(),
            ),
            (Swatch::Fill("demand short"), "its shortfall".to_string()),
        ],
    );
    out.push_str("</svg>\n");
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
    let _ = writeln!(
        out,
        "<figcaption>{}</figcaption>\n</figure>\n</section>",
        Esc(&caption)
    );
}

/// Changes grouped by lead: − unassign, + assign, with their reasons.
fn changes(out: &mut String, plan: &Plan) {
    out.push_str("<section>\n<h2>Changes by lead</h2>\n");
    let mut by_lead: BTreeMap<LeadKey, Vec<&Change>> = BTreeMap::new();
    for c in &plan.changes {
        by_lead.entry(c.lead).or_default().push(c);
    }
    if by_lead.is_empty() {
        out.push_str("<p>No changes.</p>\n</section>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<p class=\"muted\">{} changes on {} leads (− unassign, + assign; records: planned on the pair).</p>",
        plan.changes.len(),
        by_lead.len()
    );
    out.push_str("<table>\n<thead><tr><th>lead</th><th>change</th><th>agent</th><th class=\"n\">records</th><th>reason</th></tr></thead>\n");
    for (lead, changes) in &by_lead {
        out.push_str("<tbody class=\"lead\">\n");
        for (n, c) in changes.iter().enumerate() {
            out.push_str("<tr>");
            if n == 0 {
                let _ = write!(
                    out,
                    "<td class=\"lead\" rowspan=\"{}\">{lead}</td>",
                    changes.len()
                );
            }
            change_cells(out, c);
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n");
    }
    out.push_str("</table>\n</section>\n");
}

/// The change, agent, records and reason cells of a change.
fn change_cells(out: &mut String, c: &Change) {
    let (class, sign) = match c.action {
        Action::Assign => ("plus", "+ assign"),
        Action::Unassign => ("minus", "− unassign"),
    };
    let flow = if c.flow > 0.0 {
        records(c.flow)
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "<td class=\"{class}\">{sign}</td><td class=\"mono\">{}</td><td class=\"n\">{flow}</td><td>{}</td>",
        Esc(c.agent.as_str()),
        Esc(&c.reason.to_string())
    );
}

/// What gates and caps held back.
fn deferred(out: &mut String, plan: &Plan) {
    if plan.deferred.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<section>\n<h2>Deferred changes</h2>\n<p class=\"muted\">{} changes held back by gates and caps; safety changes are never deferred.</p>",
        plan.deferred.len()
    );
    out.push_str("<table>\n<thead><tr><th>lead</th><th>change</th><th>agent</th><th class=\"n\">records</th><th>reason</th><th>deferred by</th></tr></thead>\n<tbody>\n");
    for d in &plan.deferred {
        let _ = write!(out, "<tr><td>{}</td>", d.change.lead);
        change_cells(out, &d.change);
        let _ = writeln!(out, "<td>{}</td></tr>", Esc(&d.deferred_by));
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// Leads left short, the shortest first, with Zoho's default assignee.
fn short_leads(out: &mut String, plan: &Plan) {
    let mut short: Vec<&LeadPlan> = plan.leads.iter().filter(|l| l.shortfall > 0.0).collect();
    out.push_str("<section>\n<h2>Leads left short</h2>\n");
    if short.is_empty() {
        out.push_str("<p>Every lead's demand is covered.</p>\n</section>\n");
        return;
    }
    short.sort_by(|a, b| {
        b.shortfall
            .total_cmp(&a.shortfall)
            .then(a.lead.cmp(&b.lead))
    });
    out.push_str("<p class=\"muted\">The default assignee is the Zoho user who receives the records no agent under the threshold can take.</p>\n");
    out.push_str("<table>\n<thead><tr><th>lead</th><th class=\"n\">demand</th><th class=\"n\">covered</th><th class=\"n\">shortfall</th><th>default assignee</th></tr></thead>\n<tbody>\n");
    for l in short {
        let assignee = match &l.default_assignee {
            Some(a) => format!("<span class=\"mono\">{}</span>", Esc(a.as_str())),
            None => "<span class=\"muted\">none in Zoho</span>".to_string(),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{assignee}</td></tr>",
            l.lead,
            records(l.demand),
            records(l.covered),
            records(l.shortfall)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
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
        let escaped = "&lt;script&gt;&amp;&quot;x&#39;";
        // The change table, the chart tooltips, the short lead's default
        // assignee and the what-if all carry the agent.
        assert!(html.matches(escaped).count() >= 5, "{html}");
        assert!(html.contains("user_status=&lt;Inactive&gt;"));
        assert_eq!(
            Esc("a<b>&c\"d'e").to_string(),
            "a&lt;b&gt;&amp;c&quot;d&#39;e"
        );
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
