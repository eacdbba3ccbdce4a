//! Command-line parsing (clap derive) and dispatch to `cmd::*`.
//!
//! This is the only place that sees clap types; each subcommand module gets
//! plain values.

use crate::{cmd, exit, logging};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "rebalancer", version, about, long_about = None)]
pub struct Cli {
    /// Log filter for stderr (tracing EnvFilter syntax, e.g. `debug` or
    /// `rebalancer_upstream=debug`). Defaults to RUST_LOG, else `info`.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the CMS, Webex and Zoho into a snapshot file and print a summary.
    Fetch(FetchArgs),
    /// Run the fake upstream APIs on 127.0.0.1 until interrupted.
    Sandbox(SandboxArgs),
}

/// Sizes and seed of a generated sandbox world.
#[derive(Debug, Clone, clap::Args)]
pub struct WorldArgs {
    /// CMS agents in the generated world.
    #[arg(long, default_value_t = 200)]
    pub agents: usize,
    /// Leads in the generated world.
    #[arg(long, default_value_t = 40)]
    pub leads: usize,
    /// Seed of the generator: same seed, same world.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Configuration file (TOML); see config/default.toml for every key.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "sandbox",
        conflicts_with = "sandbox"
    )]
    pub config: Option<PathBuf>,
    /// Fetch from an embedded, seeded sandbox instead (no credentials needed).
    #[arg(long)]
    pub sandbox: bool,
    #[command(flatten)]
    pub world: WorldArgs,
    /// Where to write the snapshot (atomically). Without it, only the summary is printed.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[command(flatten)]
    pub world: WorldArgs,
    /// Write a config file that points every client at this sandbox.
    #[arg(long, value_name = "FILE")]
    pub write_config: Option<PathBuf>,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(exit::usage_code(&e));
        }
    };
    logging::init(cli.log.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return exit::report(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Fetch(args) => cmd::fetch::run(args).await,
            Command::Sandbox(args) => cmd::sandbox::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::report(e),
    }
}
