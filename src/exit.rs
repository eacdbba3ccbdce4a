//! Exit codes, and how an error is shown to a person.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | unexpected internal error (a bug: please report it) |
//! | 2 | bad command-line usage |
//! | 3 | bad configuration (file, key, identity file) |
//! | 4 | bad input file (snapshot or plan) |
//! | 5 | an upstream refused our credentials or permissions |
//! | 6 | an upstream answered something we cannot use (404, 400, malformed body, unknown campaign) |
//! | 7 | an upstream was unreachable, timed out, throttled or failed (5xx) after retries |
//! | 8 | cannot write an output file |
//! | 9 | the solver failed (LP backend error, numeric overflow) |

use crate::settings::SettingsError;
use rebalancer_fetcher::FetchError;
use rebalancer_model::ModelError;
use rebalancer_optimizer::OptimizerError;
use rebalancer_upstream::{ErrorClass, UpstreamError};
use std::process::ExitCode;

pub const INTERNAL: u8 = 1;
pub const USAGE: u8 = 2;
pub const CONFIG: u8 = 3;
pub const INPUT: u8 = 4;
pub const UPSTREAM_AUTH: u8 = 5;
pub const UPSTREAM_DATA: u8 = 6;
pub const UPSTREAM_UNAVAILABLE: u8 = 7;
pub const OUTPUT: u8 = 8;
pub const SOLVER: u8 = 9;

/// Bad command-line usage found after parsing (exit 2), e.g. a malformed
/// what-if value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage_code(e: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        _ => USAGE,
    }
}

fn class_code(class: ErrorClass) -> u8 {
    match class {
        ErrorClass::Config => CONFIG,
        ErrorClass::Auth => UPSTREAM_AUTH,
        ErrorClass::Unavailable => UPSTREAM_UNAVAILABLE,
        ErrorClass::Data => UPSTREAM_DATA,
    }
}

/// The exit code for an error, from the first typed error in its chain.
pub fn code_of(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() {
        return USAGE;
    }
    for cause in e.chain() {
        if let Some(o) = cause.downcast_ref::<OptimizerError>() {
            return match o {
                OptimizerError::Overflow | OptimizerError::Lp(_) => SOLVER,
                _ => CONFIG,
            };
        }
        if cause.downcast_ref::<SettingsError>().is_some() {
            return CONFIG;
        }
        if let Some(m) = cause.downcast_ref::<ModelError>() {
            return match m {
                ModelError::Write { .. } => OUTPUT,
                _ => INPUT,
            };
        }
        if let Some(f) = cause.downcast_ref::<FetchError>() {
            return class_code(f.class());
        }
        if let Some(u) = cause.downcast_ref::<UpstreamError>() {
            return class_code(u.class());
        }
    }
    INTERNAL
}

/// Print the error chain on stderr and return its exit code.
pub fn report(e: anyhow::Error) -> ExitCode {
    let code = code_of(&e);
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if code == INTERNAL {
        eprintln!("  (this is a bug in rebalancer; please report it with the command you ran)");
    }
    ExitCode::from(code)
}
