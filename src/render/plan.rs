//! What `rebalancer plan` prints for people: a header that says what was
//! planned from what (snapshot, config layers, what-ifs, fetch problems),
//! the objectives before → after → optimum, the changes grouped by lead with
//! their reasons, the leads left short, and what gates and caps held back.

use super::{problem_label, records, right, table, utilisation};
use comfy_table::Cell;
use rebalancer_model::{Action, Change, LeadKey, LeadPlan, Plan, ProblemKind, Snapshot};
use rebalancer_ops::settings::Layers;
use rebalancer_optimizer::PlanStats;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Leads shown in each table without `--all`.
const LEADS_SHOWN: usize = 15;

/// Everything the plan report shows.
pub struct PlanView<'a> {
    /// The first line: what this plan is (a dry run, a plan about to be
    /// applied).
    pub heading: &'a str,
    pub plan: &'a Plan,
    pub snapshot: &'a Snapshot,
    pub stats: &'a PlanStats,
    pub layers: &'a Layers,
    /// The saved snapshot file this plan was made from offline (`plan
    /// --snapshot`); `None` when it was fetched now.
    pub saved: Option<&'a std::path::Path>,
    /// List every change and short lead.
    pub all: bool,
}

/// The dry-run report.
pub fn report(v: &PlanView) -> String {
    let mut out = String::new();
    header(&mut out, v);
    if v.all {
        problems(&mut out, v.plan);
    }
    objectives(&mut out, v.plan);
    changes(&mut out, v.plan, v.all);
    short_leads(&mut out, v.plan, v.all);
    held_back(&mut out, v.plan);
    out
}

fn header(out: &mut String, v: &PlanView) {
    let (plan, stats) = (v.plan, v.stats);
    let _ = writeln!(out, "{}", v.heading);
    let hash = plan.snapshot_hash.get(..12).unwrap_or(&plan.snapshot_hash);
    let source = &v.snapshot.source.description;
    let _ = match v.saved {
        Some(path) => writeln!(
            out,
            "Plan for snapshot {hash}, replayed offline from {} (fetched {} from {source}).",
            path.display(),
            plan.snapshot_fetched_at,
        ),
        None => writeln!(
            out,
            "Plan for snapshot {hash} ({source}, fetched {}).",
            plan.snapshot_fetched_at,
        ),
    };
    let _ = writeln!(
        out,
        "Config: {}. Solver {} on {} eligible pairs in {:.1} ms (total {:.1} ms).",
        v.layers,
        stats.solver,
        stats.pairs,
        stats.solve_time.as_secs_f64() * 1e3,
        stats.total_time.as_secs_f64() * 1e3,
    );
    if !plan.what_ifs.is_empty() {
        let _ = writeln!(out, "What-ifs: {}.", plan.what_ifs.join(", "));
    }
    let mut problems: BTreeMap<ProblemKind, usize> = BTreeMap::new();
    for p in &plan.problems {
        *problems.entry(p.kind).or_default() += 1;
    }
    if !problems.is_empty() {
        let parts: Vec<String> = problems
            .iter()
            .map(|(k, n)| format!("{n} {}", problem_label(*k)))
            .collect();
        let _ = writeln!(
            out,
            "Fetch problems: {}{}.",
            parts.join("; "),
            if v.all { "" } else { " (--all lists them)" }
        );
    }
    if let Some(b) = &plan.blocked {
        let _ = writeln!(
            out,
            "BLOCKED: {} ({} unassigns of {} current pairs, more than {:.0}%). `apply` refuses this plan unless --allow-mass-unassign is given.",
            b.reason,
            b.unassigns,
            b.current_pairs,
            b.max_share * 100.0
        );
    }
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "{} agents in the leads' pools, {} leads. Moves: assign {} / unassign {} (kept {}, deferred {}).",
        s.agents, s.leads, s.assigns, s.unassigns, s.kept, s.deferred
    );
    let _ = writeln!(out, "{}", balance_line(plan));
    if let Some(c) = &plan.caps {
        let (caps, outcome) = caps_line(c, plan.changes.len());
        let _ = writeln!(out, "Move caps ({caps}): {outcome}.");
    }
    if let Some(gate) = &plan.gate {
        let _ = writeln!(out, "Gate: {gate}; only safety changes are listed.");
    }
}

/// What the move caps are ("cap 10, 2 per agent") and what they did ("10
/// optimisation moves kept, 88 deferred; the other 1 change of the plan
/// is a safety move, never capped"); `changes`: the plan's changes.
pub(super) fn caps_line(c: &rebalancer_model::CapReport, changes: usize) -> (String, String) {
    let mut caps = Vec::new();
    if c.max_moves_per_run > 0 {
        caps.push(format!("cap {}", c.max_moves_per_run));
    }
    if c.max_moves_per_agent > 0 {
        caps.push(format!("{} per agent", c.max_moves_per_agent));
    }
    (
        caps.join(", "),
        format!(
            "{} optimisation moves kept, {} deferred; {}",
            c.kept,
            c.deferred,
            match changes.saturating_sub(c.kept) {
                0 => "safety moves are never capped".to_owned(),
                1 => "the plan's 1 other change is a safety move (an inactive or over-allowance agent, or keeping a lead staffed), never capped".to_owned(),
                n => format!("the plan's {n} other changes are safety moves (inactive or over-allowance agents, or keeping a lead staffed), never capped"),
            }
        ),
    )
}

/// The utilisation target, the cap it gave, and what the pair-count
/// reduction did.
pub(super) fn balance_line(plan: &Plan) -> String {
    let o = &plan.objectives;
    let b = &o.balance;
    let least = utilisation(b.least_peak);
    // At u* = 1 every agent who can take these leads is at its allowance.
    let why = if b.least_peak >= 1.0 {
        " (every agent who can take these leads is at its allowance)"
    } else {
        ""
    };
    let target = match b.target {
        Some(x) if x > b.least_peak => format!(
            "peak load capped at {} of allowance (target {x:.2}, plan.target_utilisation); the least possible peak is {least}",
            utilisation(b.cap),
        ),
        Some(x) => format!(
            "the target {x:.2} (plan.target_utilisation) cannot be reached: the least possible peak is {least}{why}, so load is capped there"
        ),
        None => format!(
            "load capped at the least possible peak, {least}{why} (plan.target_utilisation = \"optimal\")"
        ),
    };
    let n = &o.new_pairs;
    format!(
        "Balance: {target}. New pairs at the optimum: {} ({} before rerouting light flows onto pairs in use).",
        n.reduced, n.least_records
    )
}

fn objectives(out: &mut String, plan: &Plan) {
    let o = &plan.objectives;
    let mut t = table();
    t.set_header(vec!["objective", "before", "after", "optimum"]);
    t.add_row(vec![
        Cell::new("shortfall (records)"),
        right(records(o.before.shortfall)),
        right(records(o.after.shortfall)),
        right(records(o.optimum.shortfall)),
    ]);
    t.add_row(vec![
        Cell::new("peak utilisation"),
        right(utilisation(o.before.peak_utilisation)),
        right(utilisation(o.after.peak_utilisation)),
        right(utilisation(o.optimum.peak_utilisation)),
    ]);
    t.add_row(vec![
        Cell::new("leads short of demand"),
        right(o.before.leads_uncovered),
        right(o.after.leads_uncovered),
        right(o.optimum.leads_uncovered),
    ]);
    let _ = writeln!(out, "{t}");
}

/// Changes grouped by lead, `kubectl diff` style: - unassign, + assign.
fn changes(out: &mut String, plan: &Plan, all: bool) {
    let mut by_lead: BTreeMap<LeadKey, Vec<&Change>> = BTreeMap::new();
    for c in &plan.changes {
        by_lead.entry(c.lead).or_default().push(c);
    }
    if by_lead.is_empty() {
        let _ = writeln!(out, "No changes.");
        return;
    }
    let mut t = table();
    t.set_header(vec!["lead", "", "agent", "records", "reason"]);
    let shown = if all {
        by_lead.len()
    } else {
        LEADS_SHOWN.min(by_lead.len())
    };
    for (lead, changes) in by_lead.iter().take(shown) {
        for (n, c) in changes.iter().enumerate() {
            let sign = match c.action {
                Action::Assign => "+",
                Action::Unassign => "-",
            };
            t.add_row(vec![
                Cell::new(if n == 0 {
                    lead.to_string()
                } else {
                    String::new()
                }),
                Cell::new(sign),
                Cell::new(&c.agent),
                right(if c.flow > 0.0 {
                    records(c.flow)
                } else {
                    String::new()
                }),
                Cell::new(c.reason.to_string()),
            ]);
        }
    }
    let _ = writeln!(out, "Changes by lead (- unassign, + assign):\n{t}");
    let _ = writeln!(
        out,
        "records: what the plan routes over the new pair. To balance load it may also move records off the lead's other pairs, so a lead's new records can exceed its shortfall."
    );
    if shown < by_lead.len() {
        let _ = writeln!(
            out,
            "... and changes on {} more leads (--all lists them all, --format json gives the plan).",
            by_lead.len() - shown
        );
    }
}

/// Leads left short, the shortest first.
fn short_leads(out: &mut String, plan: &Plan, all: bool) {
    let mut short: Vec<&LeadPlan> = plan.leads.iter().filter(|l| l.shortfall > 0.0).collect();
    if short.is_empty() {
        return;
    }
    short.sort_by(|a, b| {
        b.shortfall
            .total_cmp(&a.shortfall)
            .then(a.lead.cmp(&b.lead))
    });
    let mut t = table();
    t.set_header(vec![
        "lead short of demand",
        "demand",
        "covered",
        "shortfall",
        "default assignee",
    ]);
    let shown = if all {
        short.len()
    } else {
        LEADS_SHOWN.min(short.len())
    };
    for l in short.iter().take(shown) {
        t.add_row(vec![
            Cell::new(l.lead),
            right(records(l.demand)),
            right(records(l.covered)),
            right(records(l.shortfall)),
            Cell::new(
                l.default_assignee
                    .as_ref()
                    .map(|a| a.as_str())
                    .unwrap_or("none in Zoho"),
            ),
        ]);
    }
    let _ = writeln!(out, "{t}");
    let _ = writeln!(
        out,
        "Default assignee: the Zoho user who receives the records no agent under the threshold can take."
    );
    if shown < short.len() {
        let _ = writeln!(
            out,
            "... and {} more leads short of demand (--all lists them).",
            short.len() - shown
        );
    }
}

/// Every fetch problem, one row each.
fn problems(out: &mut String, plan: &Plan) {
    if plan.problems.is_empty() {
        return;
    }
    let mut t = table();
    t.set_header(vec!["fetch problem", "subject", "detail"]);
    for p in &plan.problems {
        t.add_row(vec![
            Cell::new(problem_label(p.kind)),
            Cell::new(&p.subject),
            Cell::new(&p.detail),
        ]);
    }
    let _ = writeln!(out, "{t}");
}

/// What gates and caps held back, and the plan's notes.
fn held_back(out: &mut String, plan: &Plan) {
    if !plan.deferred.is_empty() {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &plan.deferred {
            *counts.entry(d.deferred_by.as_str()).or_default() += 1;
        }
        let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{v} by {k}")).collect();
        let _ = writeln!(
            out,
            "Deferred: {} (see `deferred` in the plan JSON).",
            parts.join(", ")
        );
    }
    for note in &plan.notes {
        let _ = writeln!(out, "Note: {note}");
    }
}
