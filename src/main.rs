//! `rebalancer`: keeps a contact center's agent workload balanced.
//!
//! The binary is thin: `cli` parses arguments, `cmd::*` runs one subcommand
//! each, `render` draws tables, `exit` maps errors to exit codes.

mod cli;
mod cmd;
mod exit;
mod logging;
mod render;
mod settings;

fn main() -> std::process::ExitCode {
    cli::main()
}
