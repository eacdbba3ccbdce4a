//! tracing setup: human-readable logs on stderr. stdout is reserved for the
//! command's own output.
//!
//! The filter is `--log FILTER` if given, else `-v`/`-q` if given, else
//! `RUST_LOG`, else warnings on a terminal and info otherwise (a terminal
//! user sees the progress bar instead; a log shipper wants the info lines).
//! Colour follows `--color`, then `NO_COLOR`, then whether stderr is a
//! terminal. `--log-format json` writes one JSON object per event instead,
//! for log shippers: `timestamp`, `level`, `message` and the event's fields
//! at the top level, `target`, and the spans (`span`, `spans`) if any.
//! In JSON mode every line on stderr is such an object: fatal errors
//! (`exit::report`), usage errors (`cli::main`), a bad `--log` filter and
//! panics too; progress bars are not drawn (`Log::interactive` is false).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// What the rest of the binary needs to know about logging: the filter in
/// force (passed on to child processes), whether stderr is a terminal
/// that may show progress bars (never in JSON mode), and whether logs are
/// JSON.
#[derive(Debug, Clone)]
pub struct Log {
    pub filter: String,
    pub interactive: bool,
    pub json: bool,
}

/// The filter for a verbosity: 0 is the default, negative quieter.
fn level(verbosity: i16) -> Option<&'static str> {
    match verbosity {
        i16::MIN..=-1 => Some("error"),
        0 => None,
        1 => Some("info"),
        2 => Some("debug"),
        _ => Some("trace"),
    }
}

pub fn init(filter: Option<&str>, verbosity: i16, color: Color, json: bool) -> Log {
    let terminal = std::io::stderr().is_terminal();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => terminal && !no_color,
    };
    let chosen = filter
        .map(str::to_owned)
        .or_else(|| level(verbosity).map(str::to_owned))
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| if terminal { "warn" } else { "info" }.to_owned());
    let (env_filter, invalid) = match EnvFilter::try_new(&chosen) {
        Ok(f) => (f, None),
        Err(e) => {
            let warning = format!("log filter `{chosen}` is invalid ({e}); using `warn`");
            if !json {
                eprintln!("warning: {warning}");
            }
            (EnvFilter::new("warn"), Some(warning))
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = if json {
        std::panic::set_hook(Box::new(json_panic));
        builder
            .json()
            .flatten_event(true)
            .with_ansi(false)
            .try_init()
    } else {
        builder.with_ansi(color).try_init()
    };
    if let (Some(warning), true) = (invalid, json) {
        tracing::warn!("{warning}");
    }
    Log {
        filter: chosen,
        interactive: terminal && !json,
        json,
    }
}

/// A panic in JSON mode: one JSON object on stderr instead of Rust's text.
fn json_panic(info: &std::panic::PanicHookInfo<'_>) {
    let payload = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    let location = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_default();
    eprintln!("{}", panic_line(&payload, &location));
}

/// The JSON line of a panic: ERROR, where and what, and the bug hint.
fn panic_line(payload: &str, location: &str) -> String {
    serde_json::json!({
        "timestamp": crate::exit::timestamp(),
        "level": "ERROR",
        "target": "panic",
        "message": format!("panicked at {location}: {payload}"),
        "hint": "this is a bug in rebalancer; please report it with the command you ran",
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_one_json_line_with_level_and_message() {
        let line = panic_line("boom\nsecond line", "src/x.rs:3");
        assert!(!line.contains('\n'), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["message"], "panicked at src/x.rs:3: boom\nsecond line");
        assert!(v["hint"].as_str().unwrap().contains("bug"), "{v}");
    }

    #[test]
    fn verbosity_maps_to_levels() {
        assert_eq!(level(-2), Some("error"));
        assert_eq!(level(-1), Some("error"));
        assert_eq!(level(0), None);
        assert_eq!(level(1), Some("info"));
        assert_eq!(level(2), Some("debug"));
        assert_eq!(level(5), Some("trace"));
    }
}
