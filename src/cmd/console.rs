//! `rebalancer console`: serve the review console (`rebalancer_console`)
//! on `console.addr` (or `--addr`) over the journal `run` writes, until
//! SIGINT/SIGTERM; prints `CONSOLE http://ADDR/` once it accepts
//! connections (the bound port, also for port 0). `console new-token`
//! prints a fresh token and the `[[console.users]]` lines holding its
//! digest.

use crate::exit::UsageError;
use crate::render;
use rebalancer_ops::schedule::{self, Flags};
use rebalancer_ops::settings::{self, Env};
use std::path::PathBuf;

/// What `console` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub journal: Option<PathBuf>,
    pub addr: Option<String>,
}

pub async fn run(opts: Options) -> anyhow::Result<u8> {
    let Some(config) = opts.config else {
        return Err(UsageError(
            "console needs --config FILE (or REBALANCER_CONFIG): its [console] section names the users who may sign in, and it finds the journal `run` writes there".into(),
        )
        .into());
    };
    let env = Env::from_process();
    let (mut console, run_keys, journal) = settings::load_console(&config, &env, opts.journal)?;
    if let Some(addr) = &opts.addr {
        console.addr = settings::metrics_addr(addr)
            .map_err(|problem| UsageError(format!("--addr {problem}")))?
            .ok_or_else(|| UsageError("--addr is empty; write HOST:PORT".into()))?;
    }
    // `run` may not be scheduled by this config (cron jobs of `run --once`):
    // then the overview has no next cycle to show.
    let as_once = Flags {
        once: true,
        ..Flags::default()
    };
    let schedule = schedule::configured(&as_once, &run_keys)?;
    if console.users.is_empty() {
        tracing::warn!("no [[console.users]] in the config: nobody can sign in (`rebalancer console new-token` prints a user's lines)");
    }
    let listener = rebalancer_console::bind(console.addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(
        addr = %bound,
        users = console.users.len(),
        journal = %journal,
        "the console is serving"
    );
    render::emit(&format!("CONSOLE http://{bound}/"))?;
    let stop = rebalancer_ops::session::stop_on_signals();
    rebalancer_console::serve(
        listener,
        rebalancer_console::Console {
            settings: console,
            journal,
            schedule,
        },
        stop,
    )
    .await?;
    Ok(0)
}

/// A fresh token for user `name` with `role`, and the lines for the config.
pub fn new_token(name: &str, role: &str) -> anyhow::Result<u8> {
    let token = rebalancer_console::new_token();
    let digest = rebalancer_console::token_digest_hex(&token);
    let name = toml_string(name);
    render::emit(&format!(
        "Token (give it to {name}; it is not stored anywhere and cannot be shown again):\n\n    {token}\n\nAdd to the config:\n\n[[console.users]]\nname = {name}\nrole = \"{role}\"\ntoken_sha256 = \"{digest}\"\n"
    ))?;
    Ok(0)
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}
