//! `rebalancer bench` end to end: the binary re-runs itself once per size,
//! and the uniform family reproduces bench-instances.md's exact optimum
//! (shortfall 0, u* to 1e-9) with a peak RSS measured per child process.

use serde_json::Value;
use std::process::Command;

/// u* from bench-instances.md, by (agents, leads).
const SPEC_U: [(u64, u64, f64); 2] = [(100, 10, 0.799466429524), (1_000, 100, 0.799876897825)];

#[test]
fn uniform_rows_match_the_reference_optimum() {
    let out = Command::new(env!("CARGO_BIN_EXE_rebalancer"))
        .args([
            "bench",
            "--family",
            "uniform",
            "--sizes",
            "100x10,1000x100",
            "--repeat",
            "1",
            "--format",
            "json",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON rows ({e}): {stderr}"));
    assert_eq!(rows.len(), SPEC_U.len());
    for (row, &(agents, leads, u)) in rows.iter().zip(&SPEC_U) {
        assert_eq!(row["family"], "uniform");
        assert_eq!(row["agents"].as_u64(), Some(agents), "{row}");
        assert_eq!(row["leads"].as_u64(), Some(leads), "{row}");
        assert_eq!(row["pairs"].as_u64(), Some(agents * leads.min(20)), "{row}");
        assert_eq!(row["shortfall"].as_f64(), Some(0.0), "{row}");
        let got = row["peak_utilisation"].as_f64().unwrap();
        assert!((got - u).abs() <= 1e-9, "u* {got} != {u}: {row}");
        assert_eq!(row["matches_spec"], Value::Bool(true), "{row}");
        assert!(row["plan_ms_best"].as_f64().unwrap() > 0.0, "{row}");
        if cfg!(target_os = "linux") {
            let rss = row["peak_rss_mib"].as_f64().unwrap_or(0.0);
            assert!(rss > 0.0, "no peak RSS on Linux: {row}");
        }
    }
}
