//! What can stop a use case of this crate. Each variant carries the
//! library error that caused it as its `source`, so a caller walking the
//! chain (the binary's exit codes) finds the original.

use rebalancer_applier::ApplyError;
use rebalancer_fetcher::FetchError;
use rebalancer_optimizer::OptimizerError;
use rebalancer_upstream::UpstreamError;
use std::path::PathBuf;

use crate::schedule::ScheduleError;
use crate::settings::SettingsError;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{0}")]
    Settings(#[from] SettingsError),
    #[error("{0}")]
    Schedule(#[from] ScheduleError),
    #[error("{0}")]
    Client(#[from] UpstreamError),
    #[error("fetch failed; nothing was written")]
    Fetch(#[source] FetchError),
    #[error("{0}")]
    Plan(#[from] OptimizerError),
    #[error("{0}")]
    Apply(#[from] ApplyError),
    /// The planner's thread ended without an answer (it panicked).
    #[error("the planner stopped unexpectedly: {0}")]
    PlannerStopped(String),
    #[error("{} is a saved snapshot: there is no upstream to connect to; use --config FILE", path.display())]
    NothingToConnect { path: PathBuf },
    #[error("cannot start the sandbox on 127.0.0.1:{port}; pick another --port")]
    Sandbox {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox's own settings: {0}")]
    SandboxUrl(String),
}
