//! What `rebalancer run` prints per cycle: one line for people, or one JSON
//! object per line (`--format json`), for log shippers and scripts.

use super::{records, utilisation, Format};
use rebalancer_applier::CycleRecord;

/// One cycle, as a line.
pub fn line(id: i64, c: &CycleRecord, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string(&CycleRecord { id, ..c.clone() })
            .expect("a cycle record always serialises"),
        Format::Table => {
            let mut out = format!(
                "cycle {id} ({}) at {}: {}",
                c.mode.as_str().replace('_', " "),
                c.started_at,
                c.outcome.as_str().replace('_', " ")
            );
            if c.assigns + c.unassigns + c.deferred > 0 {
                out.push_str(&format!(
                    "; {} assigns, {} unassigns, {} deferred ({} by the flap guard)",
                    c.assigns, c.unassigns, c.deferred, c.held_back
                ));
            }
            if let (Some(sb), Some(sa), Some(pb), Some(pa)) = (
                c.shortfall_before,
                c.shortfall_after,
                c.peak_before,
                c.peak_after,
            ) {
                out.push_str(&format!(
                    "; shortfall {} → {}, peak {} → {}",
                    records(sb),
                    records(sa),
                    utilisation(pb),
                    utilisation(pa)
                ));
            }
            out.push_str(&format!(". {}", c.detail));
            out
        }
    }
}
