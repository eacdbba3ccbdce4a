//! Errors from loading and saving model files (snapshots, plans).

use std::path::PathBuf;

/// What went wrong reading or writing a model file. Every variant names the
/// file and says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is {size} bytes, above the {limit}-byte limit for {what} files; is this the right file?")]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error(
        "{path} is not a valid {what} file: {detail}; regenerate it with `rebalancer {regenerate}`"
    )]
    Parse {
        path: PathBuf,
        what: &'static str,
        detail: String,
        line: usize,
        column: usize,
        regenerate: &'static str,
    },
    #[error("{path} has {what} schema version {found}, this rebalancer reads version {expected}; regenerate it with `rebalancer {regenerate}`")]
    SchemaVersion {
        path: PathBuf,
        what: &'static str,
        found: u64,
        expected: u32,
        regenerate: &'static str,
    },
    #[error(
        "{path}: {what} is inconsistent: {detail}; regenerate it with `rebalancer {regenerate}`"
    )]
    Invalid {
        path: PathBuf,
        what: &'static str,
        detail: String,
        regenerate: &'static str,
    },
    #[error("cannot write {path}: {source}; check the directory exists and is writable (nothing was written)")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
