//! Rendering for people: the tables the subcommands print on stdout.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use rebalancer_fetcher::FetchReport;
use rebalancer_model::{Action, Change, LeadKey, LeadPlan, Plan, ProblemKind, Snapshot};
use rebalancer_optimizer::PlanStats;
use std::collections::BTreeMap;

/// Write a command's output to stdout. A closed pipe (`rebalancer plan |
/// head`) ends the output quietly instead of panicking as `println!` would.
pub fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out
        .write_all(text.as_bytes())
        .and_then(|_| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|_| out.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t
}

/// The summary `rebalancer fetch` prints.
pub fn fetch_summary(snapshot: &Snapshot, report: &FetchReport) -> String {
    let leads = snapshot.leads().count();
    let cms_agents = snapshot.agents.iter().filter(|a| a.in_cms).count();
    let inactive = snapshot
        .agents
        .iter()
        .filter(|a| a.in_cms && !a.is_active())
        .count();
    let at_threshold = snapshot
        .agents
        .iter()
        .filter(|a| a.in_cms && a.at_threshold())
        .count();
    let unjoined = snapshot
        .agents
        .iter()
        .filter(|a| a.in_cms && a.headroom.is_none())
        .count();
    let count = |k: ProblemKind| snapshot.problems.iter().filter(|p| p.kind == k).count();
    let mut t = table();
    t.set_header(vec!["fetched", "count"]);
    let rows: Vec<(&str, String)> = vec![
        ("campaigns", snapshot.campaigns.len().to_string()),
        ("leads", leads.to_string()),
        ("leads not found (404)", report.leads_missing.to_string()),
        ("agents (in CMS pools)", cms_agents.to_string()),
        ("inactive in Webex", inactive.to_string()),
        ("at threshold (no headroom)", at_threshold.to_string()),
        ("unjoined (no Zoho threshold)", unjoined.to_string()),
        (
            "users not in CMS (e.g. supervisors)",
            count(ProblemKind::NotInCms).to_string(),
        ),
        ("problems listed", snapshot.problems.len().to_string()),
        ("HTTP requests", report.requests.to_string()),
        ("retries", report.retries.to_string()),
        ("time", format!("{:.2} s", report.elapsed.as_secs_f64())),
    ];
    for (k, v) in rows {
        t.add_row(vec![
            Cell::new(k),
            Cell::new(v).set_alignment(CellAlignment::Right),
        ]);
    }
    t.to_string()
}

/// Leads shown in the change table without `--verbose`.
const LEADS_SHOWN: usize = 15;

/// The dry-run report `rebalancer plan` prints.
pub fn plan(plan: &Plan, snapshot: &Snapshot, stats: &PlanStats, verbose: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "DRY RUN: nothing was written upstream.");
    let _ = writeln!(
        out,
        "Plan for snapshot {} ({}, fetched {}); solver {} on {} eligible pairs in {:.1} ms (total {:.1} ms).",
        &plan.snapshot_hash[..12],
        snapshot.source.description,
        plan.snapshot_fetched_at,
        stats.solver,
        stats.pairs,
        stats.solve_time.as_secs_f64() * 1e3,
        stats.total_time.as_secs_f64() * 1e3,
    );
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "{} agents, {} leads. Moves: assign {} / unassign {} (kept {}, deferred {}).",
        s.agents, s.leads, s.assigns, s.unassigns, s.kept, s.deferred
    );
    if let Some(gate) = &plan.gate {
        let _ = writeln!(out, "Gate: {gate}; only safety changes are listed.");
    }
    let o = &plan.objectives;
    let mut t = table();
    t.set_header(vec!["objective", "before", "after", "optimum"]);
    let right = |v: String| Cell::new(v).set_alignment(CellAlignment::Right);
    t.add_row(vec![
        Cell::new("shortfall (records)"),
        right(format!("{:.1}", o.before.shortfall)),
        right(format!("{:.1}", o.after.shortfall)),
        right(format!("{:.1}", o.optimum.shortfall)),
    ]);
    t.add_row(vec![
        Cell::new("peak utilisation"),
        right(format!("{:.4}", o.before.peak_utilisation)),
        right(format!("{:.4}", o.after.peak_utilisation)),
        right(format!("{:.4}", o.optimum.peak_utilisation)),
    ]);
    t.add_row(vec![
        Cell::new("leads short of demand"),
        right(o.before.leads_uncovered.to_string()),
        right(o.after.leads_uncovered.to_string()),
        right(o.optimum.leads_uncovered.to_string()),
    ]);
    let _ = writeln!(out, "{t}");

    // Changes grouped by lead, `kubectl diff` style: - unassign, + assign.
    let mut by_lead: BTreeMap<LeadKey, Vec<&Change>> = BTreeMap::new();
    for c in &plan.changes {
        by_lead.entry(c.lead).or_default().push(c);
    }
    if by_lead.is_empty() {
        let _ = writeln!(out, "No changes.");
    } else {
        let mut t = table();
        t.set_header(vec!["lead", "", "agent", "flow", "reason"]);
        let shown = if verbose {
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
                        format!("{:.1}", c.flow)
                    } else {
                        String::new()
                    }),
                    Cell::new(c.reason.to_string()),
                ]);
            }
        }
        let _ = writeln!(out, "Changes by lead (- unassign, + assign):\n{t}");
        if shown < by_lead.len() {
            let _ = writeln!(
                out,
                "... and changes on {} more leads (--verbose lists them all, --format json gives the plan).",
                by_lead.len() - shown
            );
        }
    }
    let short: Vec<&LeadPlan> = plan.leads.iter().filter(|l| l.shortfall > 0.0).collect();
    if !short.is_empty() {
        let mut t = table();
        t.set_header(vec![
            "lead short of demand",
            "demand",
            "covered",
            "shortfall",
            "default assignee",
        ]);
        let shown = if verbose {
            short.len()
        } else {
            LEADS_SHOWN.min(short.len())
        };
        for l in short.iter().take(shown) {
            t.add_row(vec![
                Cell::new(l.lead),
                right(format!("{:.0}", l.demand)),
                right(format!("{:.1}", l.covered)),
                right(format!("{:.1}", l.shortfall)),
                Cell::new(
                    l.default_assignee
                        .as_ref()
                        .map(|a| a.0.as_str())
                        .unwrap_or("none in Zoho"),
                ),
            ]);
        }
        let _ = writeln!(out, "{t}");
        if shown < short.len() {
            let _ = writeln!(
                out,
                "... and {} more leads short of demand.",
                short.len() - shown
            );
        }
    }
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
    out
}

/// The table `rebalancer bench` prints: one row per family and size.
pub fn bench(rows: &[crate::cmd::bench::BenchRow]) -> String {
    let mut t = table();
    t.set_header(vec![
        "family",
        "agents",
        "leads",
        "pairs",
        "plan ms best",
        "plan ms median",
        "solve ms",
        "balance iters",
        "peak RSS MiB",
        "shortfall",
        "u*",
        "assigns",
        "unassigns",
        "greedy new pairs",
        "greedy peak",
        "matches spec",
    ]);
    let right = |v: String| Cell::new(v).set_alignment(CellAlignment::Right);
    for r in rows {
        t.add_row(vec![
            Cell::new(&r.family),
            right(r.agents.to_string()),
            right(r.leads.to_string()),
            right(r.pairs.to_string()),
            right(format!("{:.1}", r.plan_ms_best)),
            right(format!("{:.1}", r.plan_ms_median)),
            right(format!("{:.1}", r.solve_ms_best)),
            right(r.balance_iterations.to_string()),
            right(r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.1}"))),
            right(format!("{:.1}", r.shortfall)),
            right(format!("{:.12}", r.peak_utilisation)),
            right(r.assigns.to_string()),
            right(r.unassigns.to_string()),
            right(r.greedy_new_pairs.to_string()),
            right(format!("{:.4}", r.greedy_peak_utilisation)),
            Cell::new(match r.matches_spec {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            }),
        ]);
    }
    let seed = rows.first().map_or(String::new(), |r| {
        format!(" (seed {}, best of {})", r.seed, r.repeat)
    });
    format!("Whole dry-run plan per size, each in a fresh process{seed}:\n{t}")
}
