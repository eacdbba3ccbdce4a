//! tracing setup: human-readable logs on stderr. stdout is reserved for the
//! command's own output.
//!
//! The filter is `--log FILTER` if given, else `-v`/`-q` if given, else
//! `RUST_LOG`, else warnings on a terminal and info otherwise (a terminal
//! user sees the progress bar instead; a log shipper wants the info lines).
//! Colour follows `--color`, then `NO_COLOR`, then whether stderr is a
//! terminal. `--log-format json` writes one JSON object per event instead,
//! for log shippers.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// What the rest of the binary needs to know about logging: the filter in
/// force (passed on to child processes) and whether stderr is a terminal
/// that may show progress bars.
#[derive(Debug, Clone)]
pub struct Log {
    pub filter: String,
    pub interactive: bool,
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
    let interactive = std::io::stderr().is_terminal();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => interactive && !no_color,
    };
    let chosen = filter
        .map(str::to_owned)
        .or_else(|| level(verbosity).map(str::to_owned))
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| if interactive { "warn" } else { "info" }.to_owned());
    let env_filter = EnvFilter::try_new(&chosen).unwrap_or_else(|e| {
        eprintln!("warning: log filter `{chosen}` is invalid ({e}); using `warn`");
        EnvFilter::new("warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = if json {
        builder.json().with_ansi(false).try_init()
    } else {
        builder.with_ansi(color).try_init()
    };
    Log {
        filter: chosen,
        interactive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
