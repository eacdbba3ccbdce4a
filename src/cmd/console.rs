//! `rebalancer console`: serve the review console (`rebalancer_console`)
//! on `console.addr` (or `--addr`) over the journal `run` writes, until
//! SIGINT/SIGTERM; prints `CONSOLE http://ADDR/` once it accepts
//! connections (the bound port, also for port 0). `console new-token`
//! prints a fresh token and the `[[console.users]]` lines holding its
//! digest, or with `--append FILE` adds them to that config file.

use crate::exit::UsageError;
use crate::render;
use rebalancer_ops::schedule::{self, Flags};
use rebalancer_ops::settings::{self, Env, SettingsError};
use std::path::{Path, PathBuf};

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
    let stop = rebalancer_ops::session::stop_on_signals_saying(
        "stopping: the console answers the requests in flight, then ends",
    );
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

/// A fresh token for user `name` with `role`, and the lines for the config:
/// printed, or with `append` added to that config file.
pub fn new_token(name: &str, role: &str, append: Option<&Path>) -> anyhow::Result<u8> {
    let token = rebalancer_console::new_token();
    let digest = rebalancer_console::token_digest_hex(&token);
    let quoted = toml_string(name);
    let lines = format!(
        "[[console.users]]\nname = {quoted}\nrole = \"{role}\"\ntoken_sha256 = \"{digest}\"\n"
    );
    let intro = format!(
        "Token (give it to {quoted}; it is not stored anywhere and cannot be shown again):\n\n    {token}\n"
    );
    match append {
        None => render::emit(&format!("{intro}\nAdd to the config:\n\n{lines}"))?,
        Some(config) => {
            add_user(config, name, &lines)?;
            render::emit(&format!(
                "{intro}\nAdded {quoted} ({role}) to {}; a running `rebalancer console` lets them sign in after a restart.",
                config.display()
            ))?;
        }
    }
    Ok(0)
}

/// Add `lines`, the `[[console.users]]` table of user `name`, to the end
/// of the config file `config`. Checked first: the file is a config
/// `console` loads today, has no user of that name, and takes the table
/// into its `console.users` (it does not when it sets that list inline);
/// then replaced atomically, keeping its permissions, owner and group (it
/// may hold secrets, readable only by a service's group). Refused, the
/// file is untouched and the token discarded.
fn add_user(config: &Path, name: &str, lines: &str) -> anyhow::Result<()> {
    if !config.is_file() {
        return Err(UsageError(format!(
            "--append {}: no such file; write the config first (`rebalancer sandbox --write-config FILE`, or start from config/production.example.toml), or leave out --append to print the lines",
            config.display()
        ))
        .into());
    }
    let (console, _, _) = settings::load_console(config, &Env::from_process(), None)?;
    if console.users.iter().any(|u| u.name == name) {
        return Err(UsageError(format!(
            "--name {name}: {} already has a user named {name}; pick another name, or remove their [[console.users]] table first",
            config.display()
        ))
        .into());
    }
    let text = std::fs::read_to_string(config).map_err(|e| SettingsError::File {
        path: config.to_owned(),
        detail: format!("cannot be read: {e}"),
    })?;
    let mut appended = text;
    if !appended.is_empty() && !appended.ends_with('\n') {
        appended.push('\n');
    }
    appended.push('\n');
    appended.push_str(lines);
    let last_user = |t: &toml::Table| {
        t.get("console")?
            .get("users")?
            .as_array()?
            .last()?
            .get("name")?
            .as_str()
            .map(str::to_owned)
    };
    let trouble = match appended.parse::<toml::Table>() {
        Err(e) => Some(e.message().to_owned()),
        Ok(t) if last_user(&t).as_deref() == Some(name) => None,
        Ok(_) => Some("its console.users is not a list of tables".to_owned()),
    };
    if let Some(trouble) = trouble {
        return Err(SettingsError::File {
            path: config.to_owned(),
            detail: format!(
                "cannot take a [[console.users]] table at its end ({trouble}); run `console new-token` again without --append, which prints the lines, and add them by hand (into its `users = [...]` list, when it has one)"
            ),
        }
        .into());
    }
    rebalancer_model::replace_atomic(config, appended.as_bytes())?;
    tracing::info!(config = %config.display(), user = name, "console user added");
    Ok(())
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}
