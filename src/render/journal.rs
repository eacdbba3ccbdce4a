//! What `history` and `show` print: the journal's runs, and one run's leads
//! and PUTs.

use super::{right, table};
use comfy_table::Cell;
use rebalancer_applier::{RunDetail, RunRecord};
use serde::Serialize;
use std::fmt::Write;

/// Any journal view as pretty JSON.
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("journal records always serialise")
}

/// The runs, newest first.
pub fn history(runs: &[RunRecord], journal: &rebalancer_applier::JournalLocation) -> String {
    if runs.is_empty() {
        return format!("No runs in {journal}.");
    }
    let mut t = table();
    t.set_header(vec![
        "run", "kind", "parent", "started", "ended", "outcome", "PUTs", "failed", "moves",
    ]);
    for r in runs {
        t.add_row(vec![
            right(r.id),
            Cell::new(r.kind.to_string()),
            right(r.parent.map_or(String::new(), |p| p.to_string())),
            Cell::new(&r.started_at),
            Cell::new(r.ended_at.as_deref().unwrap_or("-")),
            Cell::new(r.outcome.to_string()),
            right(r.puts_sent),
            right(r.failed),
            right(r.moves_made),
        ]);
    }
    format!("Runs in {journal}:\n{t}")
}

/// One run: its record, its leads, its PUTs.
pub fn run_detail(d: &RunDetail) -> String {
    let r = &d.run;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} ({}{}), {}: started {}, ended {}, by {}.",
        r.id,
        r.kind,
        r.parent.map_or(String::new(), |p| format!(" of run {p}")),
        r.outcome,
        r.started_at,
        r.ended_at.as_deref().unwrap_or("-"),
        r.holder
    );
    let _ = writeln!(
        out,
        "Plan {}, snapshot {}, config {}.",
        short(&r.plan_hash),
        short(&r.snapshot_hash),
        short(&r.config_digest)
    );
    if !d.leads.is_empty() {
        let mut t = table();
        t.set_header(vec!["lead", "state", "detail"]);
        for l in &d.leads {
            t.add_row(vec![
                Cell::new(l.lead),
                Cell::new(format!("{:?}", l.state).to_lowercase()),
                Cell::new(&l.detail),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    if d.puts.is_empty() {
        let _ = writeln!(out, "No PUTs.");
    } else {
        let mut t = table();
        t.set_header(vec![
            "PUT", "lead", "seq", "state", "status", "sent", "body", "message",
        ]);
        for p in &d.puts {
            t.add_row(vec![
                right(p.id),
                Cell::new(p.lead),
                right(p.seq),
                Cell::new(&p.state),
                right(p.status.map_or(String::new(), |s| s.to_string())),
                Cell::new(&p.sent_at),
                Cell::new(&p.body),
                Cell::new(p.message.as_deref().unwrap_or("")),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    out
}

fn short(hash: &str) -> &str {
    &hash[..12.min(hash.len())]
}
