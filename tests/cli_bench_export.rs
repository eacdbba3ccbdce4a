//! `rebalancer bench-instance` through the binary: a tiny instance is
//! written in the documented text format (src/cmd/bench_instance.rs), byte
//! for byte; `--optimum` appends the exact optimum of the three stages;
//! every bench family exports, and the pairs parsed back are the family's.

use std::path::Path;
use std::process::Command;

/// Runs `rebalancer bench-instance ARGS --out FILE`; (exit code, file text, stderr).
fn export(args: &[&str], out: &Path) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_rebalancer"))
        .arg("bench-instance")
        .args(args)
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = std::fs::read_to_string(out).unwrap_or_default();
    (
        o.status.code().unwrap_or(-1),
        text,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_tiny_uniform_instance_is_written_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("u.txt");
    let (code, text, err) = export(
        &["--family", "uniform", "--size", "3x2", "--seed", "42"],
        &out,
    );
    assert_eq!(code, 0, "{err}");
    // splitmix64(42): headroom 13, 10, 6; each agent draws both leads, the
    // first two draws current; demand round(0.8 · 29 · w_j / Σw).
    assert_eq!(
        text,
        "c rebalancer bench instance family=uniform agents=3 leads=2 seed=42\n\
         p 3 2 6\n\
         a 13\na 10\na 6\n\
         l 11\nl 12\n\
         e 0 0 1\ne 0 1 1\ne 1 0 1\ne 1 1 1\ne 2 0 1\ne 2 1 1\n"
    );
}

#[test]
fn optimum_appends_the_exact_optimum_of_the_three_stages() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("u.txt");
    let (code, text, err) = export(
        &[
            "--family",
            "uniform",
            "--size",
            "3x2",
            "--seed",
            "42",
            "--optimum",
        ],
        &out,
    );
    assert_eq!(code, 0, "{err}");
    // All 23 records carried, u* = 23/29 (every pair current: cost 0).
    assert!(text.ends_with("e 2 1 1\no 23 23 29 0\n"), "{text}");

    // bench-instances.md: 100 × 10 at seed 42 has F* = 1,798 and
    // u* = 0.799466429524 (= 1798/2249, Σh = 2,249).
    let (code, text, err) = export(
        &["--family", "uniform", "--size", "100x10", "--optimum"],
        &out,
    );
    assert_eq!(code, 0, "{err}");
    let o: Vec<i64> = text
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("o "))
        .unwrap_or_else(|| panic!("no `o` line: {text}"))
        .split(' ')
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(&o[..3], &[1798, 1798, 2249]);
    assert!(o[3] >= 0);
}

/// Parses the export back: (headroom, demand, pairs).
type Parsed = (Vec<u64>, Vec<u64>, Vec<(usize, usize, bool)>);
fn parse(text: &str) -> Parsed {
    let (mut h, mut d, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
    let mut counts = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let n = |k: usize| f[k].parse::<u64>().unwrap();
        match f[0] {
            "c" => {}
            "p" => counts = Some((n(1) as usize, n(2) as usize, n(3) as usize)),
            "a" => h.push(n(1)),
            "l" => d.push(n(1)),
            "e" => pairs.push((n(1) as usize, n(2) as usize, n(3) == 1)),
            other => panic!("unknown line kind {other}: {line}"),
        }
    }
    assert_eq!(
        counts,
        Some((h.len(), d.len(), pairs.len())),
        "the `p` line"
    );
    (h, d, pairs)
}

#[test]
fn every_family_exports_and_parses_back_to_the_generator() {
    use rebalancer_optimizer::families::{generate, Family};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.txt");
    for name in ["uniform", "skewed", "dense"] {
        let (code, text, err) = export(&["--family", name, "--size", "40x12", "--seed", "7"], &out);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(text.starts_with(&format!("c rebalancer bench instance family={name} ")));
        let g = generate(Family::parse(name).unwrap(), 40, 12, 7);
        assert_eq!(parse(&text), (g.headroom, g.demand, g.pairs), "{name}");
    }
    let (code, _, err) = export(&["--family", "nosuch", "--size", "4x2"], &out);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a bench family"), "{err}");
}
