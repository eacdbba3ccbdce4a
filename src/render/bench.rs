//! What `rebalancer bench` prints: one row per family, size and backend,
//! as a table (the default fits 100 columns; `--wide` adds every figure,
//! with a legend), JSON rows or CSV; and the scaling chart of `--plot`
//! (solver time against pairs, one series per backend and family, with the
//! fitted exponent).

use super::plot::{self, Chart, Series};
use super::{right, table, utilisation};
use comfy_table::Cell;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// How a backend's run on one size ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Solved; an LP backend's optimum equals flow's.
    Ok,
    /// An LP backend's optimum differs from flow's (see `note`).
    Mismatch,
    /// Killed after `--timeout`.
    Timeout,
    /// Not run: the backend timed out on a smaller size of the family.
    Skipped,
    /// The solver or its process failed (see `note`).
    Failed,
}

/// One backend on one benchmarked size: what `bench-one` prints and
/// `bench` renders. Flow rows carry [`FlowFigures`], LP rows [`LpFigures`];
/// a row that did not run (timeout, skipped) neither.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    /// `flow` (the whole plan on the exact stages) or an LP backend's name.
    pub backend: String,
    pub family: String,
    pub agents: usize,
    pub leads: usize,
    pub pairs: usize,
    pub seed: u64,
    pub repeat: u32,
    pub status: Status,
    /// Solver time: flow's stages inside `plan()` (best of `repeat`), or
    /// the LP's three lexicographic stages (one run). Null when not run.
    pub solve_ms: Option<f64>,
    /// `solve_ms` over flow's solve time on the same instance (1 for flow).
    pub ratio_to_flow: Option<f64>,
    /// Peak resident set of the child process (`VmHWM`); null off Linux.
    pub peak_rss_mib: Option<f64>,
    /// Optimum shortfall (records).
    pub shortfall: Option<f64>,
    /// Optimum peak utilisation u*.
    pub peak_utilisation: Option<f64>,
    /// Why a row is not `ok`, or why a backend was skipped.
    pub note: Option<String>,
    #[serde(flatten)]
    pub flow: Option<FlowFigures>,
    #[serde(flatten)]
    pub lp: Option<LpFigures>,
}

/// The whole dry-run plan on the exact flow stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowFigures {
    /// Wall time of the whole `plan()` call, best and median of `repeat`.
    pub plan_ms_best: f64,
    pub plan_ms_median: f64,
    /// Solver time inside `plan()` (`PlanStats::solve_time`), best run.
    pub solve_ms_best: f64,
    pub balance_iterations: u32,
    /// F*: demand carried at the optimum.
    pub max_flow: i64,
    pub assigns: usize,
    pub unassigns: usize,
    /// New pairs at the least-records optimum, before the pair-count
    /// reduction (the plan's assigns come after it).
    pub new_pairs_least_records: usize,
    /// The plan at utilisation target 0.9 (the default): its changes and
    /// the peak its mapping allows.
    pub target_assigns: usize,
    pub target_unassigns: usize,
    pub target_peak_utilisation: f64,
    /// `plan --tradeoff` on the instance: wall time and rungs.
    pub tradeoff_ms: f64,
    pub tradeoff_rungs: usize,
    /// Greedy baseline: new (non-current) pairs it puts flow on.
    pub greedy_new_pairs: usize,
    pub greedy_peak_utilisation: f64,
    pub greedy_shortfall: f64,
    /// F* and u* equal the benchmark spec's table (docs/performance.md); null where the table
    /// has no entry (other family, seed or size).
    pub matches_spec: Option<bool>,
}

/// An LP backend's run, checked against the flow stages' optimum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LpFigures {
    /// The LP's stage-3 optimum: records on new pairs.
    pub new_pair_flow: f64,
    /// The exact flow stages on the same instance, in the same process.
    pub flow_shortfall: f64,
    pub flow_peak_utilisation: f64,
    pub flow_solve_ms: f64,
    /// Shortfall (relative) and u* (absolute) within 1e-6 of flow's.
    pub matches_flow: bool,
}

impl BenchRow {
    /// A row without results (timed out, skipped, or failed).
    pub fn without_result(
        backend: &str,
        family: &str,
        (agents, leads, pairs): (usize, usize, usize),
        (seed, repeat): (u64, u32),
        status: Status,
        note: String,
    ) -> BenchRow {
        BenchRow {
            backend: backend.to_owned(),
            family: family.to_owned(),
            agents,
            leads,
            pairs,
            seed,
            repeat,
            status,
            solve_ms: None,
            ratio_to_flow: None,
            peak_rss_mib: None,
            shortfall: None,
            peak_utilisation: None,
            note: Some(note),
            flow: None,
            lp: None,
        }
    }

    fn size(&self) -> String {
        format!("{}x{}", self.agents, self.leads)
    }
}

/// A time in ms: one decimal below 100 ms.
fn ms(x: f64) -> String {
    if x < 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "-".to_owned(), f)
}

/// Flow rows: the spec check; LP rows: the check against flow, or why the
/// row has no result.
fn check(r: &BenchRow) -> &'static str {
    match (r.status, &r.flow) {
        (Status::Ok, Some(f)) => match f.matches_spec {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        },
        (Status::Ok, None) => "= flow",
        (Status::Mismatch, _) => "≠ flow",
        (Status::Timeout, _) => "timeout",
        (Status::Skipped, _) => "skipped",
        (Status::Failed, _) => "failed",
    }
}

/// A flow-only figure, `-` on LP rows.
fn flow_cell(r: &BenchRow, f: impl Fn(&FlowFigures) -> String) -> Cell {
    right(r.flow.as_ref().map_or_else(|| "-".to_owned(), f))
}

const WIDE_HEADER: [&str; 25] = [
    "family",
    "agents",
    "leads",
    "pairs",
    "backend",
    "ms best",
    "ms median",
    "solve ms",
    "× flow",
    "iters",
    "RSS MiB",
    "F*",
    "shortfall",
    "u*",
    "assigns",
    "unassigns",
    "new pairs (least rec.)",
    "@0.9 +/-",
    "@0.9 peak",
    "tradeoff ms",
    "greedy new",
    "greedy peak",
    "greedy short",
    "LP new-pair rec.",
    "check",
];

fn wide_row(r: &BenchRow) -> Vec<Cell> {
    vec![
        Cell::new(&r.family),
        right(r.agents),
        right(r.leads),
        right(r.pairs),
        Cell::new(&r.backend),
        flow_cell(r, |f| format!("{:.1}", f.plan_ms_best)),
        flow_cell(r, |f| format!("{:.1}", f.plan_ms_median)),
        right(opt(r.solve_ms, |x| format!("{x:.1}"))),
        right(opt(r.ratio_to_flow, |x| format!("{x:.2}"))),
        flow_cell(r, |f| f.balance_iterations.to_string()),
        right(opt(r.peak_rss_mib, |m| format!("{m:.0}"))),
        flow_cell(r, |f| f.max_flow.to_string()),
        right(opt(r.shortfall, |s| format!("{s:.0}"))),
        right(opt(r.peak_utilisation, |u| format!("{u:.12}"))),
        flow_cell(r, |f| f.assigns.to_string()),
        flow_cell(r, |f| f.unassigns.to_string()),
        flow_cell(r, |f| f.new_pairs_least_records.to_string()),
        flow_cell(r, |f| {
            format!("{}/{}", f.target_assigns, f.target_unassigns)
        }),
        flow_cell(r, |f| utilisation(f.target_peak_utilisation)),
        flow_cell(r, |f| format!("{:.0}", f.tradeoff_ms)),
        flow_cell(r, |f| f.greedy_new_pairs.to_string()),
        flow_cell(r, |f| utilisation(f.greedy_peak_utilisation)),
        flow_cell(r, |f| format!("{:.0}", f.greedy_shortfall)),
        right(
            r.lp.as_ref()
                .map_or_else(|| "-".to_owned(), |l| format!("{:.1}", l.new_pair_flow)),
        ),
        Cell::new(check(r)),
    ]
}

const WIDE_LEGEND: &[(&str, &str)] = &[
    (
        "ms best / median",
        "wall time of flow's whole plan over --repeat runs",
    ),
    (
        "solve ms",
        "flow: the solver stages inside the plan (best run); LP: its three stages (one run)",
    ),
    ("× flow", "solve ms / flow's solve ms on the same instance"),
    ("iters", "max-flow solves of the balance stage"),
    (
        "RSS MiB",
        "peak resident set of the run's own process (flow: over the timed plans)",
    ),
    ("F*", "records carried at the optimum"),
    ("u*", "least peak utilisation (load / headroom)"),
    (
        "assigns / unassigns",
        "the plan at u* (plan.target_utilisation = \"optimal\")",
    ),
    (
        "new pairs (least rec.)",
        "new pairs of the least-records flow, before the pair-count reduction",
    ),
    (
        "@0.9 +/- / peak",
        "the plan at the default target 0.9: assigns/unassigns, peak its mapping allows",
    ),
    (
        "tradeoff ms",
        "plan --tradeoff (the whole ladder of targets)",
    ),
    (
        "greedy new / peak / short",
        "greedy fill: new pairs, peak utilisation, shortfall",
    ),
    (
        "LP new-pair rec.",
        "the LP's stage-3 optimum: records on pairs outside the current mapping",
    ),
    (
        "check",
        "flow: F* and u* equal the benchmark spec's published optimum (uniform family, seed 42, \
         in docs/performance.md; - no entry); LP: shortfall and u* = flow's to 1e-6, or timeout / skipped / failed",
    ),
];

const LEGEND: &[(&str, &str)] = &[
    (
        "ms",
        "flow's whole plan, best run; solve: the solver alone (flow: best run, LP: one run)",
    ),
    (
        "× flow",
        "solve / flow's solve on the same instance; MiB: peak RSS of the run's process",
    ),
    (
        "check",
        "flow: F* and u* = the spec's (docs/performance.md); LP: optimum = flow's (to 1e-6)",
    ),
    (
        "--wide",
        "every figure: assigns/unassigns, target 0.9, tradeoff, greedy baseline, ...",
    ),
];

/// The table; `wide` adds every column and a legend. Below it: the fitted
/// scaling exponent of each series and the rows' notes (mismatches,
/// failures, skipped backends).
pub fn table_of(rows: &[BenchRow], wide: bool) -> String {
    let mut t = table();
    if wide {
        t.set_header(WIDE_HEADER.to_vec());
        for r in rows {
            t.add_row(wide_row(r));
        }
    } else {
        t.set_header(vec![
            "family", "size", "pairs", "backend", "ms", "solve", "× flow", "MiB", "u*", "check",
        ]);
        for r in rows {
            t.add_row(vec![
                Cell::new(&r.family),
                right(r.size()),
                right(r.pairs),
                Cell::new(&r.backend),
                flow_cell(r, |f| ms(f.plan_ms_best)),
                right(opt(r.solve_ms, ms)),
                right(opt(r.ratio_to_flow, |x| {
                    if x < 100.0 {
                        format!("{x:.1}")
                    } else {
                        format!("{x:.0}")
                    }
                })),
                right(opt(r.peak_rss_mib, |m| format!("{m:.0}"))),
                right(opt(r.peak_utilisation, utilisation)),
                Cell::new(check(r)),
            ]);
        }
    }
    let seed = rows.first().map_or(String::new(), |r| {
        format!(" (seed {}; flow best of {}, LP one run)", r.seed, r.repeat)
    });
    let mut out = format!("Per family, size and backend, each in a fresh process{seed}:\n{t}\n");
    for (k, v) in if wide { WIDE_LEGEND } else { LEGEND } {
        let _ = writeln!(out, "  {k}: {v}");
    }
    let series = scaling(rows);
    if series.iter().any(|s| s.points.len() >= 2) {
        out.push_str("Scaling, solve time ∝ pairs^k (least-squares fit over the sizes):\n");
        for s in &series {
            let k = s
                .exponent
                .map_or("- (one size)".to_owned(), |k| format!("{k:.2}"));
            let _ = writeln!(out, "  {} {}: k = {k}", s.backend, s.family);
        }
    }
    let mut notes: Vec<&str> = Vec::new();
    for note in rows.iter().filter_map(|r| r.note.as_deref()) {
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    if !notes.is_empty() {
        out.push_str("Notes:\n");
        for n in notes {
            let _ = writeln!(out, "  {n}");
        }
    }
    out
}

/// The CSV columns, in order: every field of [`BenchRow`], flow's and the
/// LP's figures flattened (empty where a row has none).
const CSV_HEADER: [&str; 36] = [
    "backend",
    "family",
    "agents",
    "leads",
    "pairs",
    "seed",
    "repeat",
    "status",
    "solve_ms",
    "ratio_to_flow",
    "peak_rss_mib",
    "shortfall",
    "peak_utilisation",
    "plan_ms_best",
    "plan_ms_median",
    "solve_ms_best",
    "balance_iterations",
    "max_flow",
    "assigns",
    "unassigns",
    "new_pairs_least_records",
    "target_assigns",
    "target_unassigns",
    "target_peak_utilisation",
    "tradeoff_ms",
    "tradeoff_rungs",
    "greedy_new_pairs",
    "greedy_peak_utilisation",
    "greedy_shortfall",
    "matches_spec",
    "new_pair_flow",
    "flow_shortfall",
    "flow_peak_utilisation",
    "flow_solve_ms",
    "matches_flow",
    "note",
];

fn csv_record(r: &BenchRow) -> Vec<String> {
    fn o<T: ToString>(x: Option<T>) -> String {
        x.map_or_else(String::new, |v| v.to_string())
    }
    let status = serde_json::to_value(r.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let f = r.flow.as_ref();
    let l = r.lp.as_ref();
    vec![
        r.backend.clone(),
        r.family.clone(),
        r.agents.to_string(),
        r.leads.to_string(),
        r.pairs.to_string(),
        r.seed.to_string(),
        r.repeat.to_string(),
        status,
        o(r.solve_ms),
        o(r.ratio_to_flow),
        o(r.peak_rss_mib),
        o(r.shortfall),
        o(r.peak_utilisation),
        o(f.map(|f| f.plan_ms_best)),
        o(f.map(|f| f.plan_ms_median)),
        o(f.map(|f| f.solve_ms_best)),
        o(f.map(|f| f.balance_iterations)),
        o(f.map(|f| f.max_flow)),
        o(f.map(|f| f.assigns)),
        o(f.map(|f| f.unassigns)),
        o(f.map(|f| f.new_pairs_least_records)),
        o(f.map(|f| f.target_assigns)),
        o(f.map(|f| f.target_unassigns)),
        o(f.map(|f| f.target_peak_utilisation)),
        o(f.map(|f| f.tradeoff_ms)),
        o(f.map(|f| f.tradeoff_rungs)),
        o(f.map(|f| f.greedy_new_pairs)),
        o(f.map(|f| f.greedy_peak_utilisation)),
        o(f.map(|f| f.greedy_shortfall)),
        o(f.and_then(|f| f.matches_spec)),
        o(l.map(|l| l.new_pair_flow)),
        o(l.map(|l| l.flow_shortfall)),
        o(l.map(|l| l.flow_peak_utilisation)),
        o(l.map(|l| l.flow_solve_ms)),
        o(l.map(|l| l.matches_flow)),
        o(r.note.as_deref()),
    ]
}

/// The rows as CSV with a header line (RFC 4180 quoting, by the `csv`
/// crate).
pub fn csv_of(rows: &[BenchRow]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for r in rows {
        w.write_record(csv_record(r))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// One backend on one family: (pairs, solve ms) per size it solved, and
/// the fitted exponent.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    pub backend: String,
    pub family: String,
    pub points: Vec<(f64, f64)>,
    pub exponent: Option<f64>,
}

/// The series of the rows, in order of first appearance; only rows with a
/// solve time (ok or mismatch) give points.
pub fn scaling(rows: &[BenchRow]) -> Vec<Scaling> {
    let mut out: Vec<Scaling> = Vec::new();
    for r in rows {
        let i = match out
            .iter()
            .position(|s| s.backend == r.backend && s.family == r.family)
        {
            Some(i) => i,
            None => {
                out.push(Scaling {
                    backend: r.backend.clone(),
                    family: r.family.clone(),
                    points: Vec::new(),
                    exponent: None,
                });
                out.len() - 1
            }
        };
        if let (Some(ms), Status::Ok | Status::Mismatch) = (r.solve_ms, r.status) {
            out[i].points.push((r.pairs as f64, ms));
        }
    }
    for s in &mut out {
        s.exponent = plot::fit_exponent(&s.points);
    }
    out
}

/// The `--plot` chart: solve time against pairs, log-log; a colour per
/// backend, a dash pattern per family after the first.
pub fn chart_of(rows: &[BenchRow]) -> Chart {
    let series = scaling(rows);
    let mut backends: Vec<&str> = Vec::new();
    let mut families: Vec<&str> = Vec::new();
    for s in &series {
        if !backends.contains(&s.backend.as_str()) {
            backends.push(&s.backend);
        }
        if !families.contains(&s.family.as_str()) {
            families.push(&s.family);
        }
    }
    let series = series
        .iter()
        .map(|s| Series {
            label: format!(
                "{} {}: k = {}",
                s.backend,
                s.family,
                s.exponent.map_or("-".to_owned(), |k| format!("{k:.2}"))
            ),
            points: s.points.clone(),
            color: backends.iter().position(|b| *b == s.backend).unwrap_or(0),
            dashed: families.iter().position(|f| *f == s.family).unwrap_or(0) > 0,
        })
        .collect();
    let seed = rows
        .first()
        .map_or(String::new(), |r| format!(", seed {}", r.seed));
    Chart {
        title: format!("rebalancer bench: solve time vs pairs (log-log{seed})"),
        x_label: "pairs (eligible agent-lead pairs)".into(),
        y_label: "solve time (ms)".into(),
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(family: &str, agents: usize, leads: usize) -> BenchRow {
        BenchRow {
            backend: "flow".into(),
            family: family.into(),
            agents,
            leads,
            pairs: agents * 20,
            seed: 42,
            repeat: 3,
            status: Status::Ok,
            solve_ms: Some(9999.9),
            ratio_to_flow: Some(1.0),
            peak_rss_mib: Some(1023.4),
            shortfall: Some(0.0),
            peak_utilisation: Some(0.799979906969),
            note: None,
            flow: Some(FlowFigures {
                plan_ms_best: 12345.6,
                plan_ms_median: 12399.9,
                solve_ms_best: 9999.9,
                balance_iterations: 4,
                max_flow: 3_981_380,
                assigns: 17060,
                unassigns: 7880,
                new_pairs_least_records: 17500,
                target_assigns: 4000,
                target_unassigns: 7880,
                target_peak_utilisation: 0.9,
                tradeoff_ms: 1234.5,
                tradeoff_rungs: 9,
                greedy_new_pairs: 4480,
                greedy_peak_utilisation: 1.0,
                greedy_shortfall: 0.0,
                matches_spec: Some(true),
            }),
            lp: None,
        }
    }

    fn lp_row(backend: &str, family: &str, agents: usize, leads: usize, ms: f64) -> BenchRow {
        BenchRow {
            backend: backend.into(),
            solve_ms: Some(ms),
            ratio_to_flow: Some(1234.5),
            flow: None,
            lp: Some(LpFigures {
                new_pair_flow: 123456.7,
                flow_shortfall: 0.0,
                flow_peak_utilisation: 0.799979906969,
                flow_solve_ms: 9999.9,
                matches_flow: true,
            }),
            ..row(family, agents, leads)
        }
    }

    fn rows() -> Vec<BenchRow> {
        let mut rows = Vec::new();
        for family in ["uniform", "skewed"] {
            rows.push(row(family, 200_000, 20_000));
            rows.push(lp_row("clarabel", family, 200_000, 20_000, 123_456.7));
            rows.push(BenchRow {
                status: Status::Mismatch,
                note: Some("coin_cbc u* differs".into()),
                ..lp_row("coin_cbc", family, 200_000, 20_000, 99_999.0)
            });
            for status in [Status::Timeout, Status::Skipped, Status::Failed] {
                rows.push(BenchRow::without_result(
                    "microlp",
                    family,
                    (200_000, 20_000, 4_000_000),
                    (42, 3),
                    status,
                    "microlp skipped from 200000x20000: over 60 s at 1000x100 (uniform)".into(),
                ));
            }
        }
        rows
    }

    #[test]
    fn the_default_table_fits_100_columns() {
        let text = table_of(&rows(), false);
        for line in text.lines() {
            assert!(
                line.chars().count() <= 100,
                "{} wide: {line}",
                line.chars().count()
            );
        }
        for word in [
            "backend", "× flow", "clarabel", "≠ flow", "timeout", "skipped",
        ] {
            assert!(text.contains(word), "{word}: {text}");
        }
        let wide = table_of(&rows(), true);
        assert!(
            wide.contains("ms median") && wide.contains("greedy peak") && wide.contains("× flow"),
            "{wide}"
        );
    }

    #[test]
    fn notes_and_exponents_below_the_table() {
        let mut rows = vec![
            BenchRow {
                solve_ms: Some(10.0),
                pairs: 1_000,
                ..row("uniform", 1000, 100)
            },
            BenchRow {
                solve_ms: Some(1000.0),
                pairs: 100_000,
                ..row("uniform", 5000, 500)
            },
        ];
        rows.extend(self::rows().into_iter().filter(|r| r.note.is_some()));
        let text = table_of(&rows, false);
        assert!(text.contains("flow uniform: k = 1.00"), "{text}");
        assert_eq!(
            text.matches("microlp skipped from").count(),
            1,
            "notes are not repeated: {text}"
        );
        assert!(text.contains("coin_cbc u* differs"), "{text}");
    }

    #[test]
    fn json_rows_round_trip_and_keep_flow_figures_flat() {
        for r in rows() {
            let json = serde_json::to_value(&r).unwrap();
            assert!(json.get("backend").is_some(), "{json}");
            if r.flow.is_some() {
                assert!(json["plan_ms_best"].is_number(), "{json}");
            } else {
                assert!(json.get("plan_ms_best").is_none(), "{json}");
            }
            let back: BenchRow = serde_json::from_value(json).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn csv_has_a_header_and_quotes() {
        let mut rows = rows();
        rows[0].note = Some("a, \"quoted\" note".into());
        let text = csv_of(&rows).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().unwrap().clone();
        assert_eq!(header.iter().collect::<Vec<_>>(), CSV_HEADER.to_vec());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), rows.len());
        assert_eq!(&records[0][0], "flow");
        assert_eq!(&records[0][35], "a, \"quoted\" note");
        assert_eq!(&records[1][0], "clarabel");
        assert_eq!(&records[3][7], "timeout");
    }

    #[test]
    fn chart_has_a_series_per_backend_and_family() {
        let chart = chart_of(&rows());
        assert_eq!(chart.series.len(), 8, "4 backends × 2 families: {chart:?}");
        assert!(chart.series.iter().any(|s| s.dashed));
        assert!(chart.series[0].label.starts_with("flow uniform"));
        assert!(plot::svg(&chart).matches("<polyline").count() == 8);
    }
}
