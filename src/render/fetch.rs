//! What `rebalancer fetch` prints: a summary table, or the same as JSON.

use super::{problem_label, right, table};
use comfy_table::Cell;
use rebalancer_fetcher::FetchReport;
use rebalancer_model::{ProblemKind, Snapshot};
use serde::Serialize;
use std::collections::BTreeMap;

/// The figures of a fetch, shared by the table and the JSON.
#[derive(Debug, Serialize)]
struct Summary {
    campaigns: usize,
    leads: usize,
    leads_missing: usize,
    agents_in_cms: usize,
    inactive: usize,
    at_threshold: usize,
    unjoined: usize,
    problems: BTreeMap<ProblemKind, usize>,
    requests: u64,
    /// CMS GETs (every attempt) and GETs per lead asked for.
    cms_gets: u64,
    cms_gets_per_lead: Option<f64>,
    retries: u64,
    /// Of `retries`, reads whose 2xx body was malformed or truncated.
    malformed_retried: u64,
    elapsed_ms: u64,
    snapshot_hash: String,
}

fn summarise(snapshot: &Snapshot, report: &FetchReport) -> Summary {
    let in_cms = || snapshot.agents.iter().filter(|a| a.in_cms);
    let mut problems = BTreeMap::new();
    for p in &snapshot.problems {
        *problems.entry(p.kind).or_default() += 1;
    }
    Summary {
        campaigns: snapshot.campaigns.len(),
        leads: snapshot.leads().count(),
        leads_missing: report.leads_missing,
        agents_in_cms: in_cms().count(),
        inactive: in_cms().filter(|a| !a.is_active()).count(),
        at_threshold: in_cms().filter(|a| a.at_threshold()).count(),
        unjoined: in_cms().filter(|a| a.headroom.is_none()).count(),
        problems,
        requests: report.requests,
        cms_gets: report.cms_gets,
        cms_gets_per_lead: report.cms_gets_per_lead(),
        retries: report.retries,
        malformed_retried: report.malformed_retried,
        elapsed_ms: report.elapsed.as_millis() as u64,
        snapshot_hash: snapshot.content_hash(),
    }
}

/// The summary as a table.
pub fn summary(snapshot: &Snapshot, report: &FetchReport) -> String {
    let s = summarise(snapshot, report);
    let mut t = table();
    t.set_header(vec!["fetched", "count"]);
    let mut rows: Vec<(String, String)> = vec![
        ("campaigns".into(), s.campaigns.to_string()),
        ("leads".into(), s.leads.to_string()),
        ("leads not found (404)".into(), s.leads_missing.to_string()),
        ("agents (in CMS pools)".into(), s.agents_in_cms.to_string()),
        ("of them inactive in Webex".into(), s.inactive.to_string()),
        (
            "of them at their Zoho allowance (no headroom)".into(),
            s.at_threshold.to_string(),
        ),
        (
            "unjoined: pool agents with no Zoho threshold, any reason".into(),
            s.unjoined.to_string(),
        ),
    ];
    for (kind, n) in &s.problems {
        rows.push((format!("problem: {}", problem_label(*kind)), n.to_string()));
    }
    rows.extend([
        ("HTTP requests".into(), s.requests.to_string()),
        (
            "CMS GETs per lead".into(),
            match s.cms_gets_per_lead {
                Some(per_lead) => format!("{per_lead:.2} ({} GETs)", s.cms_gets),
                None => format!("- ({} GETs)", s.cms_gets),
            },
        ),
        ("retries".into(), s.retries.to_string()),
        (
            "retried: malformed 2xx bodies".into(),
            s.malformed_retried.to_string(),
        ),
        ("time".into(), format!("{} ms", s.elapsed_ms)),
    ]);
    for (k, v) in rows {
        t.add_row(vec![Cell::new(k), right(v)]);
    }
    format!(
        "Snapshot {}:\n{t}",
        s.snapshot_hash.get(..12).unwrap_or(&s.snapshot_hash)
    )
}

/// The summary as one JSON object.
pub fn summary_json(snapshot: &Snapshot, report: &FetchReport) -> String {
    serde_json::to_string_pretty(&summarise(snapshot, report)).expect("a summary always serialises")
}
