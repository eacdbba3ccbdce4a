//! What `plan --tradeoff` prints: the ladder of utilisation targets with
//! what each would cost, as a table for people or JSON rows
//! `{target, optimal, shortfall, peak_utilisation, assigns, unassigns}`.

use super::{records, right, table, utilisation};
use comfy_table::Cell;
use rebalancer_optimizer::{TargetUtilisation, Tradeoff};
use std::fmt::Write;

/// The ladder as a table, with the figures that frame it.
pub fn table_of(t: &Tradeoff, configured: TargetUtilisation) -> String {
    let mut tab = table();
    tab.set_header(vec![
        "target",
        "cap",
        "shortfall",
        "peak",
        "assigns",
        "unassigns",
        "changes",
        "",
    ]);
    for r in &t.rows {
        tab.add_row(vec![
            right(r.target.to_string()),
            right(utilisation(r.cap)),
            right(records(r.shortfall)),
            right(utilisation(r.peak_utilisation)),
            right(r.assigns),
            right(r.unassigns),
            right(r.assigns + r.unassigns),
            Cell::new(r.marks.join(", ")),
        ]);
    }
    let mut out = format!(
        "The price of balance: the plan at each utilisation target (DRY RUN: nothing was written upstream)\n\
         u* (least peak) {}, current peak {}, configured plan.target_utilisation = {configured}\n{tab}\n",
        utilisation(t.least_peak),
        utilisation(t.current_peak),
    );
    let _ = writeln!(
        out,
        "  target: the balance stage drives the peak down to max(u*, target) (the cap) and no further;\n  \
         peak: the least peak the plan's mapping allows; changes: assigns + unassigns (unassigns are\n  \
         safety moves, the same on every rung). Pick one with --target-utilisation X or plan.target_utilisation.\n  \
         {} in {:.2} s.",
        match t.rows.len() {
            1 => "1 target".to_string(),
            n => format!("{n} targets"),
        },
        t.seconds
    );
    out
}

/// One rung as JSON: every field one type on every row; counts are
/// integers, ratios decimals to 4 places (no `0.7000000000000001`).
#[derive(serde::Serialize)]
struct JsonRow {
    /// The utilisation the rung aimed at: its target, or u* on the
    /// `optimal` rung.
    target: f64,
    /// The rung is "optimal" (the least peak, u*).
    optimal: bool,
    shortfall: u64,
    peak_utilisation: f64,
    assigns: usize,
    unassigns: usize,
}

/// `x` to 4 decimal places.
fn decimal4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// The ladder as JSON rows.
pub fn json_of(t: &Tradeoff) -> serde_json::Result<String> {
    let rows: Vec<JsonRow> = t
        .rows
        .iter()
        .map(|r| JsonRow {
            target: decimal4(match r.target {
                TargetUtilisation::At(x) => x,
                TargetUtilisation::Optimal => r.cap,
            }),
            optimal: r.target == TargetUtilisation::Optimal,
            // Records are whole; the flow stages give whole numbers.
            shortfall: r.shortfall.max(0.0).round() as u64,
            peak_utilisation: decimal4(r.peak_utilisation),
            assigns: r.assigns,
            unassigns: r.unassigns,
        })
        .collect();
    serde_json::to_string_pretty(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebalancer_optimizer::TradeoffRow;

    fn ladder() -> Tradeoff {
        let row = |target, cap, peak, assigns, marks: Vec<&'static str>| TradeoffRow {
            target,
            shortfall: 12.0,
            peak_utilisation: peak,
            assigns,
            unassigns: 3,
            cap,
            new_pairs: assigns,
            marks,
        };
        Tradeoff {
            rows: vec![
                row(TargetUtilisation::Optimal, 0.61, 0.61, 40, vec![]),
                row(TargetUtilisation::At(0.9), 0.9, 0.85, 7, vec!["configured"]),
                row(
                    TargetUtilisation::At(1.0),
                    1.0,
                    0.97,
                    2,
                    vec!["current peak"],
                ),
            ],
            least_peak: 0.61,
            current_peak: 1.0,
            seconds: 0.25,
        }
    }

    #[test]
    fn json_rows_keep_one_type_per_field_with_exact_decimals_and_whole_counts() {
        let v: serde_json::Value = serde_json::from_str(&json_of(&ladder()).unwrap()).unwrap();
        let rows = v.as_array().unwrap();
        assert_eq!(rows.len(), 3);
        let keys: Vec<&str> = rows[1]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "assigns",
                "optimal",
                "peak_utilisation",
                "shortfall",
                "target",
                "unassigns"
            ]
        );
        assert_eq!(rows[0]["optimal"], true);
        assert!(rows[0]["target"].is_f64(), "{}", rows[0]);
        assert_eq!(rows[1]["optimal"], false);
        assert_eq!(rows[1]["target"], 0.9);
        for row in rows {
            assert!(row["shortfall"].is_u64(), "{row}");
        }
        // 0.1 * 7 is 0.7000000000000001 in binary floating point.
        let text = json_of(&Tradeoff {
            rows: vec![TradeoffRow {
                target: TargetUtilisation::At(0.1 * 7.0),
                ..ladder().rows[1].clone()
            }],
            ..ladder()
        })
        .unwrap();
        assert!(text.contains("\"target\": 0.7,"), "{text}");
        assert_eq!(rows[1]["assigns"], 7);
        assert_eq!(rows[2]["peak_utilisation"], 0.97);
    }

    #[test]
    fn table_marks_the_configured_and_current_rungs() {
        let text = table_of(&ladder(), TargetUtilisation::At(0.9));
        assert!(
            text.contains("u* (least peak) 0.6100, current peak 1.0000"),
            "{text}"
        );
        assert!(text.contains("plan.target_utilisation = 0.90"), "{text}");
        let configured = text
            .lines()
            .find(|l| l.starts_with('│') && l.contains("configured"))
            .unwrap();
        assert!(
            configured.contains(" 0.90 ") && configured.contains(" 10 "),
            "{configured}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("optimal") && l.contains(" 43 ")),
            "{text}"
        );
    }
}
