//! Rendering for people: the tables the subcommands print on stdout.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use rebalancer_fetcher::FetchReport;
use rebalancer_model::{ProblemKind, Snapshot};

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
