//! rebalancer's use cases, the layer that combines the fetcher, the
//! optimizer and the applier (which never depend on each other):
//!
//! - `settings`: the configuration layers (defaults < file < environment),
//!   each section checked once at load;
//! - `connect`: a config file or the embedded sandbox → clients, one path;
//! - `session`: a write session and what its config expects of a plan
//!   (the config's side of the applier's one admission check);
//! - `cycle`: fetch → plan → admit → apply → record, with a typed outcome,
//!   and the loop that repeats it on a `schedule`;
//! - `series`: the cycles' metrics;
//! - `approval`: which plans wait for a person, and the proposal metrics;
//! - `console`: `[console]`'s users, roles and sessions, typed.
//!
//! No clap, no rendering and no exit codes here: the binary parses its
//! flags, calls these, and renders what they return.

pub mod approval;
pub mod connect;
pub mod console;
pub mod cycle;
mod error;
pub mod schedule;
pub mod series;
pub mod session;
pub mod settings;

pub use error::OpsError;
