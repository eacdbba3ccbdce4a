//! What `rebalancer check` prints: one row per component (CMS, Webex, Zoho,
//! journal) with its target, result, time and, for a failure, the fix; as a
//! table or as JSON. Rows carry no secret: targets are base URLs (which
//! never hold credentials) and ids, results and fixes come from typed
//! errors that never quote one.

use super::{right, wrapped_table};
use comfy_table::Cell;
use serde::Serialize;

/// One component's check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    /// "cms", "webex", "zoho" or "journal".
    pub component: &'static str,
    /// What was read: a URL and the ids, or the journal's path.
    pub target: String,
    pub ok: bool,
    /// What was seen ("ok: ...") or what failed.
    pub result: String,
    pub time_ms: u64,
    /// What to change, for a failure.
    pub fix: Option<String>,
}

/// The rows as a table, with a verdict line.
pub fn table_of(rows: &[CheckRow]) -> String {
    let mut t = wrapped_table();
    t.set_header(vec!["component", "target", "result", "time ms", "fix"]);
    // Only the result and the fix wrap: a target (a URL, a path) stays
    // whole, to be copied.
    for column in [0, 1, 3] {
        if let Some(c) = t.column_mut(column) {
            c.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
    }
    for r in rows {
        t.add_row(vec![
            Cell::new(r.component),
            Cell::new(&r.target),
            Cell::new(&r.result),
            right(r.time_ms),
            Cell::new(r.fix.as_deref().unwrap_or("-")),
        ]);
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    let verdict = if failed == 0 {
        format!("All {} checks passed.", rows.len())
    } else {
        format!("{failed} of {} checks failed.", rows.len())
    };
    format!("{t}\n{verdict}")
}

/// The rows as JSON: `{"ok": bool, "checks": [...]}`.
pub fn json_of(rows: &[CheckRow]) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        ok: bool,
        checks: &'a [CheckRow],
    }
    let out = Out {
        ok: rows.iter().all(|r| r.ok),
        checks: rows,
    };
    serde_json::to_string_pretty(&out).expect("check rows always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<CheckRow> {
        vec![
            CheckRow {
                component: "cms",
                target: "http://127.0.0.1:1 lead 1/2".into(),
                ok: true,
                result: "ok".into(),
                time_ms: 3,
                fix: None,
            },
            CheckRow {
                component: "journal",
                target: "/x/j.sqlite".into(),
                ok: false,
                result: "cannot create a file".into(),
                time_ms: 0,
                fix: Some("make /x writable".into()),
            },
        ]
    }

    #[test]
    fn table_and_json_say_what_failed() {
        let text = table_of(&rows());
        assert!(text.contains("make /x writable"), "{text}");
        assert!(text.ends_with("1 of 2 checks failed."), "{text}");
        let json: serde_json::Value = serde_json::from_str(&json_of(&rows())).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][1]["component"], "journal");
        assert_eq!(json["checks"][0]["fix"], serde_json::Value::Null);
    }
}
