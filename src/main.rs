//! `rebalancer`: keeps a contact center's agent workload balanced.
//!
//! The binary is thin: `cli` parses arguments, `input` turns `--config` /
//! `--snapshot` / `--sandbox` into a snapshot and planning config,
//! `cmd::*` runs one subcommand each, `render` draws what they print,
//! `exit` maps errors to exit codes.

mod applying;
mod cli;
mod cmd;
mod exit;
mod input;
mod logging;
mod progress;
mod render;
mod telemetry;

fn main() -> std::process::ExitCode {
    cli::main()
}
