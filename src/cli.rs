//! Command-line parsing (clap derive) and dispatch to `cmd::*`.
//!
//! This is the only place that sees clap types (besides `cmd::completions`
//! and `cmd::man`, which render the command it builds): it turns them into
//! the plain option values each subcommand module takes.
//!
//! `--config` comes from `REBALANCER_CONFIG` when absent (clap's `env`);
//! `--sandbox` ignores that variable rather than conflicting with it (a
//! `--config` given on the command line still conflicts). `--version`
//! shows the git commit (build.rs) and the cargo features; the commands
//! whose exit codes go beyond 0/1/2 show the table of `exit::CODES` in
//! `--help`. With `--log-format json`, a usage error is one JSON object
//! on stderr too.

use crate::cmd::{
    apply, bench, bench_instance, check, completions, console, decide, fetch, history, man, plan,
    proposals, resume, rollback, run, sandbox, show,
};
use crate::input::{Source, World};
use crate::render::Format;
use crate::{exit, logging};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use rebalancer_applier::proposals::{Decision, ProposalState};
use rebalancer_optimizer::{SolverChoice, TargetUtilisation};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::LazyLock;

/// The environment variable naming the config file when `--config` is
/// absent.
pub const CONFIG_ENV: &str = "REBALANCER_CONFIG";

/// The cargo features this binary was built with (the optimizer's
/// optional LP backends).
fn features() -> Vec<&'static str> {
    let mut out = Vec::new();
    if cfg!(feature = "coin_cbc") {
        out.push("coin_cbc");
    }
    if cfg!(feature = "highs") {
        out.push("highs");
    }
    if cfg!(feature = "clarabel") {
        out.push("clarabel");
    }
    out
}

/// `-V`: the version and the git commit.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} ({})",
        env!("CARGO_PKG_VERSION"),
        env!("REBALANCER_GIT_COMMIT")
    )
});

/// `--version`: the version, the git commit, the cargo features and the LP
/// backends compiled in.
static LONG_VERSION: LazyLock<String> = LazyLock::new(|| {
    let features = features();
    let backends: Vec<&str> = rebalancer_optimizer::lp::LpBackend::KNOWN
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| rebalancer_optimizer::lp::LpBackend::parse(name).is_some())
        .collect();
    format!(
        "{}\ncommit: {}\nfeatures: {}\nLP backends: {}",
        env!("CARGO_PKG_VERSION"),
        env!("REBALANCER_GIT_COMMIT"),
        if features.is_empty() {
            "none".to_owned()
        } else {
            features.join(", ")
        },
        backends.join(", ")
    )
});

/// The exit-code table, under `--help` of the commands that use it.
static EXIT_CODES: LazyLock<String> = LazyLock::new(exit::help_table);

/// The heading of the options every command takes, apart from each
/// command's own.
const GLOBAL: &str = "Global options";

#[derive(Debug, Parser)]
#[command(
    name = "rebalancer",
    version = VERSION.as_str(),
    long_version = LONG_VERSION.as_str(),
    about,
    long_about = None
)]
pub struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace.
    #[arg(short, long, global = true, help_heading = GLOBAL, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less log output on stderr: -q errors only.
    #[arg(short, long, global = true, help_heading = GLOBAL, action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// Log filter for stderr (tracing EnvFilter syntax, e.g. `debug` or
    /// `rebalancer_upstream=debug`); wins over -v/-q and RUST_LOG. Without
    /// any: warnings on a terminal, info otherwise.
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILTER")]
    pub log: Option<String>,
    /// Colour on stderr and in progress bars (NO_COLOR also turns it off).
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// Logs on stderr as text, or as one JSON object per line (for log
    /// shippers: every line, fatal errors included, with `level`,
    /// `message`, and for a fatal error `error.chain` and `exit_code`).
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the CMS, Webex and Zoho into a snapshot file and print a summary.
    #[command(after_long_help = EXIT_CODES.as_str())]
    Fetch(FetchArgs),
    /// Solve the assignment and show what would change, and why (DRY RUN:
    /// nothing is written upstream).
    #[command(after_long_help = EXIT_CODES.as_str())]
    Plan(PlanArgs),
    /// Write a plan to the CMS: rate-limited, journaled, resumable.
    #[command(after_long_help = EXIT_CODES.as_str())]
    Apply(ApplyArgs),
    /// Continue an interrupted or killed apply from the journal.
    #[command(after_long_help = EXIT_CODES.as_str())]
    Resume(ResumeArgs),
    /// Rebalance on a schedule: fetch, plan, gates, apply, record, again.
    #[command(after_long_help = EXIT_CODES.as_str())]
    Run(RunArgs),
    /// Undo what a run changed, as its journal recorded it.
    #[command(after_long_help = EXIT_CODES.as_str())]
    Rollback(RollbackArgs),
    /// List the runs in the journal, newest first.
    History(HistoryArgs),
    /// List the plans that wait or waited for a person's approval.
    Proposals(ProposalsArgs),
    /// Approve a pending proposal: `run` applies it within run.approval_poll.
    #[command(after_long_help = EXIT_CODES.as_str())]
    Approve(DecideArgs),
    /// Reject a pending proposal: nothing is written.
    #[command(after_long_help = EXIT_CODES.as_str())]
    Reject(DecideArgs),
    /// Show one run's leads and PUTs.
    Show(ShowArgs),
    /// Serve the review console: pages and a JSON API where people see
    /// plans, runs and cycles, and approve or reject proposed plans
    /// (`console new-token` prints a token for a new user).
    #[command(after_long_help = EXIT_CODES.as_str())]
    Console(ConsoleArgs),
    /// Run the fake upstream APIs on 127.0.0.1 until interrupted.
    Sandbox(SandboxArgs),
    /// One cheap authenticated read of the CMS, Webex and Zoho, and the
    /// journal: what fails, and how to fix it (exit 14 if anything fails).
    #[command(after_long_help = EXIT_CODES.as_str())]
    Check(CheckArgs),
    /// Time the whole plan on generated benchmark instances, and the LP
    /// solvers on the same instances (--backends), one child process per
    /// size and backend (wall time, solve time, peak RSS, greedy baseline).
    Bench(BenchArgs),
    /// Print a shell completion script on stdout (bash, zsh, fish,
    /// powershell, elvish).
    Completions(CompletionsArgs),
    /// Print the man page on stdout, or write one page per subcommand into
    /// a directory (--out).
    Man(ManArgs),
    /// One size and backend of `bench`, in this process; prints one JSON line.
    #[command(hide = true)]
    BenchOne(BenchOneArgs),
    /// Write one generated bench instance to a text file (for external
    /// solvers: benches/lemon_stages.sh); the format is in
    /// src/cmd/bench_instance.rs.
    #[command(hide = true)]
    BenchInstance(BenchInstanceArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Table,
    Json,
}

/// `--format`, shared by every command that prints a result.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct FormatOpt {
    /// Output on stdout: a table for people, or JSON for scripts (plan:
    /// the plan itself; run: one object per cycle, one per line).
    #[arg(id = "format", long = "format", value_enum, default_value_t = FormatArg::Table)]
    pub value: FormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SolverArg {
    /// Exact network-flow stages.
    Flow,
    /// The general LP model through good_lp.
    Lp,
}

/// Where a command that only reads or decides in the journal finds it:
/// `--config` (for `journal.url` / `apply.journal`, no credentials needed)
/// and `--journal`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct JournalSource {
    /// A config file naming the journal: journal.url, else apply.journal
    /// (read from REBALANCER_CONFIG when absent).
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub journal: JournalArg,
}

/// `--journal FILE`, shared by every command that opens the journal.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct JournalArg {
    /// The journal file (overrides apply.journal).
    #[arg(id = "journal", long = "journal", value_name = "FILE")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["config", "snapshot", "sandbox"]).multiple(true)))]
pub struct PlanArgs {
    /// Configuration file. Alone: fetch live, then plan. With --snapshot:
    /// only its [plan] and [apply] sections are used. Read from
    /// REBALANCER_CONFIG when absent (not with --sandbox).
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
    /// Plan offline from a saved snapshot (from `rebalancer fetch --out`).
    #[arg(long, value_name = "FILE", conflicts_with = "sandbox")]
    pub snapshot: Option<PathBuf>,
    /// Plan against an embedded, seeded sandbox (no credentials needed);
    /// not with --config.
    #[arg(long)]
    pub sandbox: bool,
    #[command(flatten)]
    pub world: WorldArgs,
    /// Write the plan JSON here (atomically).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the plan as one self-contained HTML page here (atomically):
    /// summary, objectives, utilisation and coverage charts, changes.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub format: FormatOpt,
    /// List every change and short lead (the table shows the first ones
    /// otherwise).
    #[arg(long)]
    pub all: bool,
    /// Exit 0 when the plan changes nothing and 2 when it has changes
    /// pending (as terraform does); errors keep their own codes.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Override plan.solver.
    #[arg(long, value_enum)]
    pub solver: Option<SolverArg>,
    /// Override plan.lp_backend (microlp, coin_cbc, highs, clarabel); needs the LP
    /// solver (--solver lp, or plan.solver = "lp").
    #[arg(long, value_name = "NAME")]
    pub lp_backend: Option<String>,
    /// Override plan.target_utilisation: drive peak utilisation down to X
    /// (0 < X <= 1) and no further, or "optimal" for the least peak.
    #[arg(long, value_name = "X|optimal", value_parser = TargetUtilisation::parse)]
    pub target_utilisation: Option<TargetUtilisation>,
    /// Show the price of balance instead of one plan: for u*, every 0.05
    /// up to 1.0, the current peak and the configured target, the
    /// shortfall, peak and assigns/unassigns the plan would have.
    #[arg(long, conflicts_with_all = ["out", "report", "detailed_exitcode", "all"])]
    pub tradeoff: bool,
    /// What-if: set AGENT's Zoho backlog allowance to N (repeatable).
    #[arg(long, value_name = "AGENT=N")]
    pub set_allowance: Vec<String>,
    /// What-if: set the demand of lead CAMPAIGN/LEAD (or a LEAD id that is
    /// unique) to N records (repeatable).
    #[arg(long, value_name = "CAMPAIGN/LEAD=N")]
    pub set_demand: Vec<String>,
    /// What-if: never assign AGENT anywhere (repeatable).
    #[arg(long, value_name = "AGENT")]
    pub exclude_agent: Vec<String>,
    /// What-if: keep AGENT's assignments as they are (repeatable).
    #[arg(long, value_name = "AGENT")]
    pub freeze_agent: Vec<String>,
    /// What-if: keep lead CAMPAIGN/LEAD's assignments as they are (repeatable).
    #[arg(long, value_name = "CAMPAIGN/LEAD")]
    pub freeze_lead: Vec<String>,
    /// What-if: force AGENT onto CAMPAIGN/LEAD (repeatable).
    #[arg(long, value_name = "AGENT@CAMPAIGN/LEAD")]
    pub pin: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["config", "sandbox"]).multiple(true)))]
pub struct ApplyArgs {
    /// Configuration file: its credentials write to the CMS. Alone, apply
    /// fetches, plans, shows the plan and asks before writing. Read from
    /// REBALANCER_CONFIG when absent (not with --sandbox).
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
    /// Apply this reviewed plan file (from `plan --out`) as is; needs
    /// --config.
    #[arg(long, value_name = "FILE", requires = "config")]
    pub plan: Option<PathBuf>,
    /// Fetch, plan and apply against an embedded sandbox (a demo); not
    /// with --config.
    #[arg(long, conflicts_with = "plan")]
    pub sandbox: bool,
    #[command(flatten)]
    pub world: WorldArgs,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Apply even a plan the blast-radius guard (plan.max_unassign_share)
    /// blocks.
    #[arg(long)]
    pub allow_mass_unassign: bool,
    #[command(flatten)]
    pub journal: JournalArg,
    /// Save the plan made before applying (without --plan).
    #[arg(long, value_name = "FILE", conflicts_with = "plan")]
    pub out: Option<PathBuf>,
    /// Write the plan being applied as one self-contained HTML page here
    /// (atomically), before anything is applied.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub format: FormatOpt,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["config", "sandbox"]).multiple(true)))]
pub struct RunArgs {
    /// Configuration file (credentials, [run] schedule, [apply] journal).
    /// Read from REBALANCER_CONFIG when absent (not with --sandbox).
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
    /// Run the loop against an embedded sandbox (a demo); not with
    /// --config.
    #[arg(long)]
    pub sandbox: bool,
    #[command(flatten)]
    pub world: WorldArgs,
    /// Start a cycle this often (e.g. 15m); overrides run.every/run.cron.
    #[arg(long, value_name = "DURATION", conflicts_with = "cron")]
    pub every: Option<String>,
    /// Start cycles at the times of this cron expression (in
    /// run.timezone); overrides run.every/run.cron.
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// Run one cycle and exit with its code (for systemd timers and
    /// Kubernetes CronJobs).
    #[arg(long, conflicts_with_all = ["every", "cron"])]
    pub once: bool,
    /// Run the first cycle of a cron schedule at start-up instead of
    /// waiting for the first cron time (as run.start_immediately = true).
    #[arg(long, conflicts_with = "once")]
    pub now: bool,
    /// Plan and record each cycle, never write upstream.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub journal: JournalArg,
    #[command(flatten)]
    pub format: FormatOpt,
    /// Serve /metrics, /healthz and /readyz on this address (e.g.
    /// 127.0.0.1:9464 or :9464); overrides run.metrics_addr (under --once,
    /// served only with run.metrics_on_once).
    #[arg(long, value_name = "ADDR", value_parser = parse_metrics_addr)]
    pub metrics_addr: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The run to continue (default: the journal's newest run, when it is
    /// unfinished; an older one must be named).
    pub run: Option<i64>,
    /// Configuration file whose credentials write to the CMS (read from
    /// REBALANCER_CONFIG when absent).
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: PathBuf,
    #[command(flatten)]
    pub journal: JournalArg,
    /// As for apply.
    #[arg(long)]
    pub allow_mass_unassign: bool,
    #[command(flatten)]
    pub format: FormatOpt,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The run to undo (its resumes are undone with it).
    pub run: i64,
    /// Roll back without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Configuration file whose credentials write to the CMS (read from
    /// REBALANCER_CONFIG when absent).
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: PathBuf,
    #[command(flatten)]
    pub journal: JournalArg,
    #[command(flatten)]
    pub format: FormatOpt,
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Most runs listed.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub source: JournalSource,
    #[command(flatten)]
    pub format: FormatOpt,
}

#[derive(Debug, clap::Args)]
pub struct ProposalsArgs {
    /// Only proposals in this state (pending, approved, rejected, applied,
    /// superseded, expired).
    #[arg(long, value_parser = parse_proposal_state)]
    pub state: Option<ProposalState>,
    /// Most proposals listed.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub source: JournalSource,
    #[command(flatten)]
    pub format: FormatOpt,
}

#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// The proposal (`rebalancer proposals --state pending` lists them).
    pub id: i64,
    /// Why, recorded with the decision.
    #[arg(long, default_value = "")]
    pub comment: String,
    /// Who decides (default: the login name, $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    #[command(flatten)]
    pub source: JournalSource,
    #[command(flatten)]
    pub format: FormatOpt,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ConsoleArgs {
    #[command(subcommand)]
    pub action: Option<ConsoleAction>,
    /// Configuration file: [console] (address, users), [run] (the
    /// schedule, for the next cycle) and the journal `run` writes.
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub journal: JournalArg,
    /// Listen here (overrides console.addr; port 0: any free port, printed).
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConsoleAction {
    /// Print a fresh random token (give it to the user; it is shown only
    /// now) and the [[console.users]] lines to paste into the config.
    NewToken {
        /// The user's name, recorded with each decision (1 to 64
        /// printable characters).
        #[arg(long, value_parser = parse_user_name)]
        name: String,
        /// Also add the user's [[console.users]] lines to this config file
        /// (checked first; atomically, keeping its permissions, owner and
        /// group), and print only the token.
        #[arg(long, value_name = "FILE")]
        append: Option<PathBuf>,
        /// viewer (reads) or approver (also approves and rejects).
        #[arg(long, default_value = "viewer", value_parser = ["viewer", "approver"])]
        role: String,
    },
}

fn parse_user_name(text: &str) -> Result<String, String> {
    rebalancer_ops::console::user_name(text)
        .map(str::to_owned)
        .map_err(str::to_owned)
}

fn parse_proposal_state(text: &str) -> Result<ProposalState, String> {
    text.parse()
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The run to show.
    pub run: i64,
    #[command(flatten)]
    pub source: JournalSource,
    #[command(flatten)]
    pub format: FormatOpt,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Configuration file whose systems and credentials are checked (read
    /// from REBALANCER_CONFIG when absent).
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: PathBuf,
    #[command(flatten)]
    pub journal: JournalArg,
    #[command(flatten)]
    pub format: FormatOpt,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write rebalancer.1 and one page per subcommand
    /// (rebalancer-plan.1, ...) into this directory (created if missing)
    /// instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
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
    /// Read from REBALANCER_CONFIG when absent (not with --sandbox).
    #[arg(
        long,
        value_name = "FILE",
        env = CONFIG_ENV,
        required_unless_present = "sandbox"
    )]
    pub config: Option<PathBuf>,
    /// Fetch from an embedded, seeded sandbox instead (no credentials
    /// needed); not with --config.
    #[arg(long)]
    pub sandbox: bool,
    #[command(flatten)]
    pub world: WorldArgs,
    /// Where to write the snapshot (atomically). Without it, only the summary is printed.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub format: FormatOpt,
}

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the URL is printed and
    /// written into --write-config).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[command(flatten)]
    pub world: WorldArgs,
    /// Write a config file that points every client at this sandbox.
    #[arg(long, value_name = "FILE")]
    pub write_config: Option<PathBuf>,
}

/// Benchmark instance families (see `rebalancer_optimizer::families`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFamily {
    Uniform,
    Skewed,
    /// Pools of 130–200 agents per lead, 2–4 current leads per agent, 10 %
    /// hot leads with 20× the weight (issue 17's dense pools).
    Dense,
    /// Every family: uniform, skewed, dense.
    All,
}

/// What `bench` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormatArg {
    Table,
    Json,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Instance family.
    #[arg(long, value_enum, default_value_t = BenchFamily::All)]
    pub family: BenchFamily,
    /// Sizes as AGENTSxLEADS, comma-separated.
    #[arg(
        long,
        value_name = "AxL,...",
        value_delimiter = ',',
        value_parser = parse_size,
        default_value = "1000x100,5000x500,20000x2000"
    )]
    pub sizes: Vec<(usize, usize)>,
    /// Solvers to time on the same instances, comma-separated: `flow` (the
    /// whole plan on the exact flow stages) and the LP backends compiled
    /// in (microlp; coin_cbc, highs, clarabel with their cargo features),
    /// which run the three LP stages once and are checked against flow.
    #[arg(
        long,
        value_name = "NAME,...",
        value_delimiter = ',',
        value_parser = parse_backend,
        default_value = "flow"
    )]
    pub backends: Vec<bench::Backend>,
    /// Seed of the instance generator (the reference figures use 42).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Timed plan runs per size for flow (best and median are reported);
    /// LP backends run once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Seconds one backend may take on one size; then its process is
    /// killed, the row says `timeout` and the backend is skipped for the
    /// family's larger sizes.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// Output on stdout: a table for people, JSON rows or CSV.
    #[arg(long, value_enum, default_value_t = BenchFormatArg::Table)]
    pub format: BenchFormatArg,
    /// Every column in the table (median time, iterations, greedy's
    /// shortfall, ...); the default fits 100 columns.
    #[arg(long)]
    pub wide: bool,
    /// Also write an SVG chart of solve time against pairs (log-log, one
    /// series per backend and family, with the fitted exponent).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct BenchOneArgs {
    #[arg(long, value_enum)]
    pub family: BenchFamily,
    #[arg(long, value_parser = parse_size)]
    pub size: (usize, usize),
    #[arg(long, value_parser = parse_backend, default_value = "flow")]
    pub backend: bench::Backend,
    #[arg(long)]
    pub seed: u64,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
}

#[derive(Debug, clap::Args)]
pub struct BenchInstanceArgs {
    /// Instance family, by its bench name (uniform, skewed, ...).
    #[arg(long, value_parser = parse_family)]
    pub family: bench::Family,
    /// AGENTSxLEADS.
    #[arg(long, value_parser = parse_size)]
    pub size: (usize, usize),
    /// Seed of the instance generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also solve the three exact stages and append their optimum (F*, u*,
    /// stage-3 cost) as the file's `o` line.
    #[arg(long)]
    pub optimum: bool,
}

/// A family `bench` generates, by name.
fn parse_family(text: &str) -> Result<bench::Family, String> {
    bench::Family::parse(text.trim())
        .ok_or_else(|| format!("`{text}` is not a bench family (uniform, skewed, ...)"))
}

/// A bench backend compiled into this build (the error names the others).
fn parse_backend(text: &str) -> Result<bench::Backend, String> {
    bench::Backend::parse(text)
}

/// `--metrics-addr`: an address as `run.metrics_addr` takes it (checked
/// the same way, not empty).
fn parse_metrics_addr(text: &str) -> Result<String, String> {
    match rebalancer_ops::settings::metrics_addr(text) {
        Ok(Some(_)) => Ok(text.trim().to_owned()),
        Ok(None) => Err("is empty; write it like \"127.0.0.1:9464\" or \":9464\"".into()),
        Err(problem) => Err(problem),
    }
}

/// A positive number of seconds.
fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 1e7 => Ok(secs),
        _ => Err(format!("`{text}` is not a number of seconds above 0")),
    }
}

/// `1000x100` → (1000 agents, 100 leads).
fn parse_size(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("`{text}` is not AGENTSxLEADS (e.g. 1000x100)");
    let (a, l) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let a: usize = a.trim().parse().map_err(|_| bad())?;
    let l: usize = l.trim().parse().map_err(|_| bad())?;
    if a == 0 || l == 0 {
        return Err(format!("`{text}`: agents and leads must be at least 1"));
    }
    Ok((a, l))
}

fn format(f: FormatArg) -> Format {
    match f {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
    }
}

fn world(w: &WorldArgs) -> World {
    World {
        agents: w.agents,
        leads: w.leads,
        seed: w.seed,
    }
}

fn bench_options(args: BenchArgs) -> bench::Options {
    let mut backends = Vec::new();
    for b in args.backends {
        if !backends.contains(&b) {
            backends.push(b);
        }
    }
    bench::Options {
        families: family(args.family),
        sizes: args.sizes,
        backends,
        seed: args.seed,
        repeat: args.repeat,
        timeout: std::time::Duration::from_secs_f64(args.timeout),
        format: match args.format {
            BenchFormatArg::Table => bench::BenchFormat::Table,
            BenchFormatArg::Json => bench::BenchFormat::Json,
            BenchFormatArg::Csv => bench::BenchFormat::Csv,
        },
        wide: args.wide,
        plot: args.plot,
    }
}

fn family(f: BenchFamily) -> Vec<bench::Family> {
    match f {
        BenchFamily::Uniform => vec![bench::Family::Uniform],
        BenchFamily::Skewed => vec![bench::Family::Skewed],
        BenchFamily::Dense => vec![bench::Family::Dense],
        BenchFamily::All => vec![
            bench::Family::Uniform,
            bench::Family::Skewed,
            bench::Family::Dense,
        ],
    }
}

impl From<FetchArgs> for fetch::Options {
    fn from(a: FetchArgs) -> Self {
        fetch::Options {
            source: match a.config {
                Some(config) => Source::Live { config },
                None => Source::Sandbox(world(&a.world)),
            },
            out: a.out,
            format: format(a.format.value),
        }
    }
}

impl From<PlanArgs> for plan::Options {
    fn from(a: PlanArgs) -> Self {
        let source = match (a.snapshot, a.config) {
            (Some(path), config) => Source::Snapshot { path, config },
            (None, Some(config)) => Source::Live { config },
            (None, None) => Source::Sandbox(world(&a.world)),
        };
        plan::Options {
            source,
            out: a.out,
            report: a.report,
            format: format(a.format.value),
            all: a.all,
            detailed_exitcode: a.detailed_exitcode,
            solver: a.solver.map(|s| match s {
                SolverArg::Flow => SolverChoice::Flow,
                SolverArg::Lp => SolverChoice::Lp,
            }),
            lp_backend: a.lp_backend,
            target_utilisation: a.target_utilisation,
            tradeoff: a.tradeoff,
            what_ifs: plan::WhatIfFlags {
                set_allowance: a.set_allowance,
                set_demand: a.set_demand,
                exclude_agent: a.exclude_agent,
                freeze_agent: a.freeze_agent,
                freeze_lead: a.freeze_lead,
                pin: a.pin,
            },
        }
    }
}

impl From<ApplyArgs> for apply::Options {
    fn from(a: ApplyArgs) -> Self {
        apply::Options {
            source: match a.config {
                Some(config) => Source::Live { config },
                None => Source::Sandbox(world(&a.world)),
            },
            plan: a.plan,
            yes: a.yes,
            allow_mass_unassign: a.allow_mass_unassign,
            journal: a.journal.path,
            out: a.out,
            report: a.report,
            format: format(a.format.value),
        }
    }
}

impl From<RunArgs> for run::Options {
    fn from(a: RunArgs) -> Self {
        run::Options {
            source: match a.config {
                Some(config) => Source::Live { config },
                None => Source::Sandbox(world(&a.world)),
            },
            flags: rebalancer_ops::schedule::Flags {
                every: a.every,
                cron: a.cron,
                once: a.once,
            },
            now: a.now,
            dry_run: a.dry_run,
            journal: a.journal.path,
            format: format(a.format.value),
            metrics_addr: a.metrics_addr,
        }
    }
}

impl From<ResumeArgs> for resume::Options {
    fn from(a: ResumeArgs) -> Self {
        resume::Options {
            config: a.config,
            run: a.run,
            journal: a.journal.path,
            allow_mass_unassign: a.allow_mass_unassign,
            format: format(a.format.value),
        }
    }
}

impl From<RollbackArgs> for rollback::Options {
    fn from(a: RollbackArgs) -> Self {
        rollback::Options {
            config: a.config,
            run: a.run,
            journal: a.journal.path,
            yes: a.yes,
            format: format(a.format.value),
        }
    }
}

fn decide_options(a: DecideArgs, decision: Decision) -> decide::Options {
    decide::Options {
        config: a.source.config,
        journal: a.source.journal.path,
        id: a.id,
        decision,
        by: a.by,
        comment: a.comment,
        format: format(a.format.value),
    }
}

pub fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = exit::usage_code(&e);
            if code != 0 && json_asked(std::env::args_os().skip(1)) {
                eprintln!("{}", exit::usage_json(&e.render().to_string(), code));
            } else {
                let _ = e.print();
            }
            return ExitCode::from(code);
        }
    };
    let json = cli.log_format == LogFormatArg::Json;
    let log = start_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return exit::report(anyhow::anyhow!("cannot start the async runtime: {e}"), json)
        }
    };
    match runtime.block_on(dispatch(cli.command, &log)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => exit::report(e, json),
    }
}

/// The command line, parsed; `--config` from `REBALANCER_CONFIG` dropped
/// under `--sandbox`. An empty `REBALANCER_CONFIG` names no file: ignored
/// where no config is needed (clap would take it for an empty `--config`),
/// and named in the error where one is.
fn parse() -> Result<Cli, clap::Error> {
    let empty_env = std::env::var_os(CONFIG_ENV).is_some_and(|v| v.is_empty());
    if empty_env {
        // Before any other thread starts (clap reads `env` when the
        // command is built, below).
        std::env::remove_var(CONFIG_ENV);
    }
    let matches = match Cli::command().try_get_matches() {
        Err(e)
            if empty_env
                && e.kind() == clap::error::ErrorKind::MissingRequiredArgument
                && e.to_string().contains("--config") =>
        {
            let mut cmd = Cli::command();
            return Err(cmd.error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!("{CONFIG_ENV} is set but empty, and --config is not given: set {CONFIG_ENV} to the config file, unset it, or pass --config FILE"),
            ));
        }
        other => other?,
    };
    let mut cli = Cli::from_arg_matches(&matches)?;
    sandbox_over_env(&mut cli, &matches)?;
    Ok(cli)
}

/// `--sandbox` with a `--config`: a usage error when `--config` was given
/// on the command line; when it came from `REBALANCER_CONFIG`, the
/// variable is ignored (a shell that exports it can still try the
/// sandbox).
fn sandbox_over_env(cli: &mut Cli, matches: &ArgMatches) -> Result<(), clap::Error> {
    let (name, config, sandbox) = match &mut cli.command {
        Command::Fetch(a) => ("fetch", &mut a.config, a.sandbox),
        Command::Plan(a) => ("plan", &mut a.config, a.sandbox),
        Command::Apply(a) => ("apply", &mut a.config, a.sandbox),
        Command::Run(a) => ("run", &mut a.config, a.sandbox),
        _ => return Ok(()),
    };
    if !sandbox || config.is_none() {
        return Ok(());
    }
    let source = matches
        .subcommand_matches(name)
        .and_then(|m| m.value_source("config"));
    if source == Some(ValueSource::EnvVariable) {
        *config = None;
        return Ok(());
    }
    let mut cmd = Cli::command();
    cmd.build();
    let sub = cmd
        .find_subcommand_mut(name)
        .expect("the subcommand just parsed");
    Err(sub.error(
        clap::error::ErrorKind::ArgumentConflict,
        "the argument '--sandbox' cannot be used with '--config <FILE>'",
    ))
}

/// Whether the command line asks for JSON logs (`--log-format json` or
/// `--log-format=json`), read without clap: for a usage error, where
/// parsing failed.
fn json_asked(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let mut json = false;
    let mut value_next = false;
    for arg in args {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        if value_next {
            json = arg == "json";
        } else if let Some(value) = arg.strip_prefix("--log-format=") {
            json = value == "json";
        }
        value_next = arg == "--log-format";
    }
    json
}

/// Logging as the global options ask (`-v`/`-q`, `--log`, `--color`,
/// `--log-format`).
fn start_logging(cli: &Cli) -> logging::Log {
    let color = match cli.color {
        ColorArg::Auto => logging::Color::Auto,
        ColorArg::Always => logging::Color::Always,
        ColorArg::Never => logging::Color::Never,
    };
    let verbosity = i16::from(cli.verbose) - i16::from(cli.quiet);
    logging::init(
        cli.log.as_deref(),
        verbosity,
        color,
        cli.log_format == LogFormatArg::Json,
    )
}

/// Run `command`; its exit code.
async fn dispatch(command: Command, log: &logging::Log) -> anyhow::Result<u8> {
    match command {
        Command::Fetch(args) => fetch::run(args.into(), log).await,
        Command::Plan(args) => plan::run(args.into(), log).await,
        Command::Apply(args) => apply::run(args.into(), log).await,
        Command::Run(args) => run::run(args.into(), log).await,
        Command::Resume(args) => resume::run(args.into(), log).await,
        Command::Rollback(args) => rollback::run(args.into(), log).await,
        Command::History(a) => history::run(history::Options {
            config: a.source.config,
            journal: a.source.journal.path,
            limit: a.limit,
            format: format(a.format.value),
        }),
        Command::Proposals(a) => proposals::run(proposals::Options {
            config: a.source.config,
            journal: a.source.journal.path,
            state: a.state,
            limit: a.limit,
            format: format(a.format.value),
        }),
        Command::Approve(a) => decide::run(decide_options(a, Decision::Approve)),
        Command::Reject(a) => decide::run(decide_options(a, Decision::Reject)),
        Command::Console(a) => match a.action {
            Some(ConsoleAction::NewToken { name, role, append }) => {
                console::new_token(&name, &role, append.as_deref())
            }
            None => {
                console::run(console::Options {
                    config: a.config,
                    journal: a.journal.path,
                    addr: a.addr,
                })
                .await
            }
        },
        Command::Show(a) => show::run(show::Options {
            config: a.source.config,
            journal: a.source.journal.path,
            run: a.run,
            format: format(a.format.value),
        }),
        Command::Check(a) => {
            check::run(check::Options {
                config: a.config,
                journal: a.journal.path,
                format: format(a.format.value),
            })
            .await
        }
        Command::Sandbox(args) => {
            sandbox::run(world(&args.world), args.port, args.write_config).await
        }
        Command::Completions(args) => completions::run(Cli::command(), args.shell),
        Command::Man(args) => man::run(Cli::command(), args.out.as_deref()),
        Command::Bench(args) => bench::run(bench_options(args), log),
        Command::BenchOne(args) => {
            let fam = family(args.family);
            bench::run_one(fam[0], args.size, args.backend, args.seed, args.repeat)
        }
        Command::BenchInstance(args) => bench_instance::run(bench_instance::Options {
            family: args.family,
            size: args.size,
            seed: args.seed,
            out: args.out,
            optimum: args.optimum,
        }),
    }
}
