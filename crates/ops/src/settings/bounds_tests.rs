//! The integer bounds of [`BOUNDS`](super::BOUNDS): enforced by the loader,
//! documented in `config/default.toml`.

use super::*;

/// The same minimal config as the loader's other tests.
const FILE: &str = super::tests::MINIMAL;

fn load_with(text: &str, vars: &[(String, String)]) -> Result<Settings, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let env = Env::from_pairs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    load(&path, &env)
        .map(|l| l.value)
        .map_err(|e| e.to_string())
}

/// Other keys a value needs to be valid on its own (a large first
/// backoff needs a large cap).
fn companions(key: &str) -> Vec<(String, String)> {
    match key {
        "http.backoff_initial_ms" => vec![(env_name("http.backoff_max_ms"), "600000".into())],
        "http.backoff_max_ms" => vec![(env_name("http.backoff_initial_ms"), "0".into())],
        _ => vec![],
    }
}

#[test]
fn every_integer_bound_is_enforced_by_the_loader() {
    for b in BOUNDS {
        let var = env_name(b.key);
        let with = |value: u64| {
            let mut vars = companions(b.key);
            vars.push((var.clone(), value.to_string()));
            load_with(FILE, &vars)
        };
        with(b.max).unwrap_or_else(|e| panic!("{} = {} (its maximum): {e}", b.key, b.max));
        with(b.min).unwrap_or_else(|e| panic!("{} = {} (its minimum): {e}", b.key, b.min));
        let mut outside = vec![b.max + 1];
        if b.min > 0 {
            outside.push(b.min - 1);
        }
        for value in outside {
            let err = with(value).expect_err(&format!("{} = {value} was accepted", b.key));
            assert!(
                err.contains(&format!("`{}`", b.key))
                    && err.contains(&var)
                    && err.contains(&format!("between {} and {}", b.min, b.max)),
                "{} = {value}: {err}",
                b.key
            );
        }
    }
}

/// Issue 16, #15: a lease of 10^16 seconds is refused at load, naming
/// the key and the file, never reaching the journal.
#[test]
fn an_absurd_lease_is_refused_naming_the_key() {
    let text = format!("{FILE}[apply]\nlease_secs = 10000000000000000\n");
    let err = load_with(&text, &[]).unwrap_err();
    assert!(
        err.contains("`apply.lease_secs`")
            && err.contains("c.toml")
            && err.contains("86400 (a day)"),
        "{err}"
    );
    let err = load_journal(
        None,
        None,
        &Env::from_pairs([("REBALANCER_APPLY__LEASE_SECS", "10000000000000000")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("REBALANCER_APPLY__LEASE_SECS"), "{err}");
}

#[test]
fn every_float_and_table_value_has_an_upper_bound() {
    for (text, key) in [
        (
            "[fetch]\nmin_webex_coverage = 1.5",
            "fetch.min_webex_coverage",
        ),
        ("[plan]\ndemand_share = 1.5", "plan.demand_share"),
        (
            "[plan]\nmax_unassign_share = 1.5",
            "plan.max_unassign_share",
        ),
        (
            "[plan]\ntarget_utilisation = 1.5",
            "plan.target_utilisation",
        ),
        ("[plan]\nmin_flow = 1e13", "plan.min_flow"),
        (
            "[plan]\nmin_shortfall_gain = 1e13",
            "plan.min_shortfall_gain",
        ),
        (
            "[plan]\nmin_shortfall_gain = inf",
            "plan.min_shortfall_gain",
        ),
        ("[plan]\nmin_balance_gain = 1.5", "plan.min_balance_gain"),
        ("[plan.lead_weights]\n\"2/3\" = 1e7", "plan.lead_weights"),
        (
            "[plan.campaign_weights]\n\"2\" = 1e300",
            "plan.campaign_weights",
        ),
        ("[plan.demand]\n\"2/3\" = 1000000000001", "plan.demand"),
    ] {
        let err =
            load_with(&format!("{FILE}{text}\n"), &[]).expect_err(&format!("{text} was accepted"));
        assert!(err.contains(key) && err.contains("c.toml"), "{key}: {err}");
    }
    for text in [
        "[plan]\nmin_flow = 1e12\nmin_shortfall_gain = 1e12\nmin_balance_gain = 1.0",
        "[plan.lead_weights]\n\"2/3\" = 1e6",
        "[plan.demand]\n\"2/3\" = 1000000000000",
    ] {
        load_with(&format!("{FILE}{text}\n"), &[])
            .unwrap_or_else(|e| panic!("{text} (at the bound): {e}"));
    }
}

/// Every integer key of `config/default.toml` has a bound, its default
/// lies within it, and the key's comment states the upper end.
#[test]
fn every_integer_key_of_the_defaults_is_bounded_and_documented() {
    let table: toml::Table = DEFAULT_TOML.parse().unwrap();
    let mut integers = Vec::new();
    collect_integers("", &toml::Value::Table(table), &mut integers);
    assert!(integers.len() >= 15, "{integers:?}");
    for (key, value) in &integers {
        let b = BOUNDS
            .iter()
            .find(|b| b.key == key)
            .unwrap_or_else(|| panic!("{key} (an integer key) has no entry in BOUNDS"));
        let value = u64::try_from(*value).unwrap();
        assert!((b.min..=b.max).contains(&value), "{key}'s default");
    }
    for b in BOUNDS {
        let comment = comment_of(b.key);
        let stated = if b.max == 1_000_000_000_000 {
            "10^12".to_string()
        } else {
            b.max.to_string()
        };
        assert!(
            comment.contains(&stated),
            "config/default.toml does not state {}'s bound {stated}: {comment}",
            b.key
        );
    }
}

fn collect_integers(prefix: &str, value: &toml::Value, out: &mut Vec<(String, i64)>) {
    match value {
        toml::Value::Integer(n) => out.push((prefix.to_string(), *n)),
        toml::Value::Table(t) => {
            for (k, v) in t {
                collect_integers(&join_key(prefix, k), v, out);
            }
        }
        _ => {}
    }
}

/// The comment above `section.key`'s line in the defaults (skipping
/// the lines of keys that share it, as `max_moves_per_run` and
/// `max_moves_per_agent` do).
fn comment_of(key: &str) -> String {
    let (section, name) = key.split_once('.').unwrap();
    let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
    let mut in_section = false;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with('[') {
            in_section = *line == format!("[{section}]");
        } else if in_section && line.starts_with(&format!("{name} =")) {
            let comment = lines[..i]
                .iter()
                .rev()
                .skip_while(|l| !l.starts_with('#') && l.contains(" = "))
                .take_while(|l| l.starts_with('#'))
                .copied()
                .collect::<Vec<_>>();
            return comment.join("\n");
        }
    }
    panic!("{key} is not in config/default.toml");
}
