//! Configuration: `config/default.toml` (compiled in) < the user's file <
//! `REBALANCER_<SECTION>__<KEY>` environment variables, read with the
//! `config` crate, then checked and turned into the typed options of the
//! library crates.
//!
//! The same layering applies whatever the input mode: a live fetch reads
//! every section; a replan of a saved snapshot reads `[plan]` and `[apply]`
//! (for what applying would send); the embedded sandbox reads every
//! section but the connection ones, which it supplies itself, so real
//! credentials never meet it.
//!
//! Environment values are taken byte for byte as strings (`007` stays
//! `007`); the `config` crate converts them where a key is numeric, and an
//! error names the variable it came from; one set but empty is refused.
//! Every error names the key, where its value came from, and what to put
//! there. Secrets stay `SecretString` from the moment they are read; each
//! may instead be read from a file (`cms.password_file`; the rules are in
//! `settings/secrets.rs`). A load reports every problem it can find in
//! one pass (refused variables, missing required keys, secret files: see
//! `settings/required.rs`; then the first problem of each section's
//! checks), not one per run.

use rebalancer_applier::{mask_url, ApplyConfig, JournalLocation, OnDrift, RetryPolicy};
use rebalancer_fetcher::{CampaignSpec, FetchOptions, FetchProgress, IdentityMap};
use rebalancer_model::SnapshotSource;
use rebalancer_optimizer::PlanConfig;
use rebalancer_upstream::{
    BaseUrl, CmsConfig, HttpSettings, RequestBudget, WebexConfig, ZohoConfig,
};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod checks;
mod required;
mod secrets;

use checks::Checker;

/// The compiled-in defaults; also the documentation of every key.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Prefix of environment overrides: `REBALANCER_CMS__PASSWORD`.
pub const ENV_PREFIX: &str = "REBALANCER_";

/// The sections a config may hold; an environment variable naming another
/// section is a mistake worth reporting.
const SECTIONS: &[&str] = &[
    "cms", "webex", "zoho", "http", "fetch", "plan", "apply", "journal", "run", "console",
];

/// Keys whose environment values are comma-separated lists. A one-item
/// value (`REBALANCER_ZOHO__THRESHOLD_IDS=999`) is a one-item list.
const LIST_KEYS: &[&str] = &[
    "zoho.threshold_ids",
    "plan.frozen_agents",
    "plan.frozen_leads",
    "plan.exclude_agents",
    "plan.exclude_pairs",
    "plan.pins",
    "plan.set_allowance",
];

/// Config files larger than this are refused before parsing.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// The range of one integer key, and what its upper end means to a person.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub key: &'static str,
    pub min: u64,
    pub max: u64,
    /// The upper end in words ("a day"), for the error.
    pub means: &'static str,
}

const fn bound(key: &'static str, min: u64, max: u64, means: &'static str) -> Bound {
    Bound {
        key,
        min,
        max,
        means,
    }
}

/// Every integer key's least and most value, in one table: loading refuses
/// a value outside them with an error naming the key (exit 3), so a typo
/// such as `lease_secs = 10000000000000000` never reaches a lease, a timer
/// or a `Duration` sum. `config/default.toml` states each bound in the
/// key's comment. (Identifiers, such as `cms.contact_center_id`, are not
/// limits and have none.)
pub const BOUNDS: &[Bound] = &[
    bound("cms.page_size", 1, 10_000, "ten thousand users per page"),
    bound("zoho.per_page", 1, 200, "Zoho's maximum"),
    bound("http.timeout_secs", 1, 3_600, "an hour"),
    bound("http.connect_timeout_secs", 1, 300, "five minutes"),
    bound("http.max_retries", 0, 20, "twenty retries"),
    bound("http.backoff_initial_ms", 0, 60_000, "a minute"),
    bound("http.backoff_max_ms", 0, 600_000, "ten minutes"),
    bound("http.max_body_bytes", 1, 1 << 30, "1 GiB"),
    bound("fetch.concurrency", 1, 256, "256 reads in flight"),
    bound("fetch.deadline_secs", 1, 86_400, "a day"),
    bound("apply.puts_per_second", 1, 1_000, "a thousand per second"),
    bound("apply.burst", 1, 1_000, "a thousand at once"),
    bound("apply.concurrency", 1, 256, "256 leads at once"),
    bound(
        "apply.max_users_per_put",
        1,
        10_000,
        "ten thousand user ids",
    ),
    bound("apply.recheck_secs", 0, 3_600, "an hour"),
    bound("apply.lease_secs", 1, 86_400, "a day"),
    bound("apply.max_plan_age_secs", 1, 604_800, "a week"),
    bound("run.approval_large_moves", 0, 1_000_000, "a million moves"),
    bound(
        "plan.unjoined_headroom",
        0,
        rebalancer_optimizer::limits::MAX_RECORDS as u64,
        "the planner's limit of 10^12 records",
    ),
    bound(
        "plan.max_leads_per_agent",
        0,
        100_000,
        "a hundred thousand leads",
    ),
    bound("plan.max_moves_per_run", 0, 1_000_000, "a million moves"),
    bound(
        "plan.max_moves_per_agent",
        0,
        100_000,
        "a hundred thousand moves",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {path} not found; pass an existing file to --config")]
    NotFound { path: PathBuf },
    #[error("config file {path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error("{origin}: key `{key}` {problem}")]
    Key {
        origin: Origin,
        key: String,
        problem: String,
    },
    #[error("identity file {path}: {detail}; see fetch.identity_file in config/default.toml for the format")]
    Identity { path: PathBuf, detail: String },
    /// A `*_file` key whose file cannot give the secret. The secret itself
    /// is never part of the message.
    #[error("{origin}: key `{key}` names the secret file {path}, which {problem}")]
    SecretFile {
        origin: Origin,
        key: String,
        path: PathBuf,
        problem: String,
    },
    /// A secret given both inline and as a file.
    #[error("`{key}` is set twice: inline by {inline} and as a file by {file} (`{key}_file`); remove one of them")]
    SecretTwice {
        key: String,
        inline: Origin,
        file: Origin,
    },
    /// Every problem one pass found (missing keys, secret files, empty
    /// variables, one per checked section), so one run shows them all.
    #[error("{}", several(.0))]
    Several(Vec<SettingsError>),
}

/// `Several`'s message: a count, then one problem a line.
fn several(problems: &[SettingsError]) -> String {
    let mut text = format!("the configuration has {} problems:", problems.len());
    for p in problems {
        text.push_str("\n  - ");
        text.push_str(&p.to_string());
    }
    text
}

/// `Ok` when nothing was found, the problem itself when one was, all of
/// them as [`SettingsError::Several`] otherwise.
fn all_of(mut problems: Vec<SettingsError>) -> Result<(), SettingsError> {
    match problems.len() {
        0 => Ok(()),
        1 => Err(problems.remove(0)),
        _ => Err(SettingsError::Several(problems)),
    }
}

/// The first error of each result, all reported together.
fn first_errors<const N: usize>(
    results: [Result<(), SettingsError>; N],
) -> Result<(), SettingsError> {
    all_of(results.into_iter().filter_map(Result::err).collect())
}

/// Where a configuration value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The compiled-in `config/default.toml`.
    Defaults,
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// No layer set it (a required key).
    Nowhere(Option<PathBuf>),
    /// Read from a secret file, which `named_by` (a `*_file` key) named.
    SecretFile {
        path: PathBuf,
        named_by: Box<Origin>,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Defaults => f.write_str("config (built-in defaults)"),
            Origin::File(p) => write!(f, "config file {}", p.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Nowhere(Some(p)) => write!(f, "config file {}", p.display()),
            Origin::Nowhere(None) => f.write_str("config"),
            Origin::SecretFile { path, named_by } => {
                write!(f, "secret file {} (named by {named_by})", path.display())
            }
        }
    }
}

/// The `REBALANCER_*` environment, captured once (tests pass their own).
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment's `REBALANCER_*` variables. Values that are
    /// not UTF-8 are skipped with a warning.
    pub fn from_process() -> Env {
        let mut vars = BTreeMap::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with(ENV_PREFIX)) else {
                continue;
            };
            match value.into_string() {
                Ok(v) => {
                    vars.insert(name.to_owned(), v);
                }
                Err(_) => tracing::warn!(variable = name, "ignored: its value is not UTF-8"),
            }
        }
        Env { vars }
    }

    /// An environment of these variables only (for embedding and tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The config overrides among the variables: `(key, variable, value)`
    /// for each `REBALANCER_<SECTION>__<KEY>` whose section is in
    /// `sections`. Variables without `__` (`REBALANCER_VERSION`) are not
    /// config and are left alone. A variable naming an unknown section is
    /// an error, and so is an empty one (or only blanks) whatever its
    /// section: it is a mistake (a template left unfilled, `export
    /// VAR=` meant as an unset), never a way to unset a key. Such
    /// variables are left out and returned as problems, to be reported
    /// with the others a load finds.
    fn overrides(&self, sections: &[&str]) -> (Vec<EnvKey>, Vec<SettingsError>) {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for (var, value) in &self.vars {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                tracing::debug!(variable = %var, "not a config override (no SECTION__KEY)");
                continue;
            };
            let section = section.to_ascii_lowercase();
            let key = key.to_ascii_lowercase().replace("__", ".");
            if !SECTIONS.contains(&section.as_str()) {
                problems.push(SettingsError::Key {
                    origin: Origin::Env(var.clone()),
                    key: format!("{section}.{key}"),
                    problem: format!(
                        "names an unknown section `{section}`; sections are {}",
                        SECTIONS.join(", ")
                    ),
                });
                continue;
            }
            if value.trim().is_empty() {
                problems.push(SettingsError::Key {
                    origin: Origin::Env(var.clone()),
                    key: format!("{section}.{key}"),
                    problem: format!(
                        "is set but empty; unset {var} to keep the value of the config file or the defaults, or give it a value"
                    ),
                });
                continue;
            }
            if !sections.contains(&section.as_str()) {
                tracing::debug!(variable = %var, "not used in this mode");
                continue;
            }
            out.push(EnvKey {
                key: format!("{section}.{key}"),
                var: var.clone(),
                value: value.clone(),
            });
        }
        (out, problems)
    }
}

#[derive(Debug, Clone)]
struct EnvKey {
    key: String,
    var: String,
    value: String,
}

/// The overriding variables as a `config` source: every value a string
/// (byte for byte), lists split on commas, each value's origin its
/// variable's name.
#[derive(Debug, Clone)]
struct EnvSource(Vec<EnvKey>);

impl config::Source for EnvSource {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, config::Value>, config::ConfigError> {
        let mut map = config::Map::new();
        for e in &self.0 {
            let origin = Some(e.var.clone());
            let kind = if LIST_KEYS.contains(&e.key.as_str()) {
                let items: Vec<config::Value> = e
                    .value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| config::Value::new(origin.as_ref(), s))
                    .collect();
                config::ValueKind::Array(items)
            } else {
                config::ValueKind::String(e.value.clone())
            };
            map.insert(e.key.clone(), config::Value::new(origin.as_ref(), kind));
        }
        Ok(map)
    }
}

/// Which layers made a configuration: printed in plan headers
/// ("config: defaults < sandbox.toml < env (2 keys: REBALANCER_…, …)").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layers {
    pub file: Option<PathBuf>,
    /// Environment variables that set a key, sorted.
    pub env_vars: Vec<String>,
    /// What supplied the connection sections, when not the layers (the
    /// embedded sandbox).
    pub connection: Option<String>,
}

impl fmt::Display for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("defaults")?;
        if let Some(c) = &self.connection {
            write!(f, " < {c}")?;
        }
        if let Some(p) = &self.file {
            let name = p.file_name().map(Path::new).unwrap_or(p);
            write!(f, " < {}", name.display())?;
        }
        // The variables themselves (never their values: one may be a
        // secret), so an override is visible where the plan is read.
        match self.env_vars.as_slice() {
            [] => Ok(()),
            [one] => write!(f, " < env (1 key: {one})"),
            [a, b, c, rest @ ..] if !rest.is_empty() => {
                write!(f, " < env ({} keys: {a}, {b}, {c}, …)", self.env_vars.len())
            }
            all => write!(f, " < env ({} keys: {})", all.len(), all.join(", ")),
        }
    }
}

/// A built layering, ready to deserialise any part of it.
struct Layered {
    config: config::Config,
    layers: Layers,
    env: Vec<EnvKey>,
    file_text: Option<String>,
    /// Secrets read from files (`cms.password` from `cms.password_file`),
    /// by key, with where each came from.
    secret_files: Vec<(String, Origin)>,
    /// Variables refused while layering (empty, unknown section), reported
    /// by [`Layered::complete`] with everything else it finds.
    env_problems: Vec<SettingsError>,
}

impl Layered {
    /// defaults < `file` < environment, for the keys of `sections`, with
    /// every required key of `sections` present and every secret file
    /// read (see [`Layered::complete`]).
    fn build(file: Option<&Path>, env: &Env, sections: &[&str]) -> Result<Layered, SettingsError> {
        let mut layered = Layered::layer(file, env, sections)?;
        layered.complete(sections)?;
        Ok(layered)
    }

    /// The layers as they are, before secret files are read.
    fn layer(file: Option<&Path>, env: &Env, sections: &[&str]) -> Result<Layered, SettingsError> {
        let file_text = file.map(read_config_file).transpose()?;
        let (overrides, env_problems) = env.overrides(sections);
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(text) = &file_text {
            builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
        }
        let config = builder
            .add_source(EnvSource(overrides.clone()))
            .build()
            .map_err(|e| match (&e, file) {
                (config::ConfigError::FileParse { cause, .. }, Some(path)) => SettingsError::File {
                    path: path.to_owned(),
                    detail: format!("is not valid TOML: {cause}"),
                },
                _ => SettingsError::Key {
                    origin: Origin::Nowhere(file.map(Path::to_owned)),
                    key: String::new(),
                    problem: e.to_string(),
                },
            })?;
        let mut env_vars: Vec<String> = overrides.iter().map(|e| e.var.clone()).collect();
        env_vars.sort();
        Ok(Layered {
            config,
            layers: Layers {
                file: file.map(Path::to_owned),
                env_vars,
                connection: None,
            },
            env: overrides,
            file_text,
            secret_files: Vec::new(),
            env_problems,
        })
    }

    /// Checks what must hold before the sections are deserialised, all at
    /// once: no refused variable, every required key of `sections` set (by any layer; a secret
    /// also by its `_file` key), no secret set both inline and as a file,
    /// every named secret file readable and not empty. The secrets read
    /// from files are then laid over every layer.
    fn complete(&mut self, sections: &[&str]) -> Result<(), SettingsError> {
        let mut problems = std::mem::take(&mut self.env_problems);
        problems.extend(required::missing(self, sections));
        let (read, secret_problems) = secrets::resolve(self, sections);
        problems.extend(secret_problems);
        all_of(problems)?;
        if read.is_empty() {
            return Ok(());
        }
        let internal = |key: &str, e: config::ConfigError| SettingsError::Key {
            origin: Origin::Nowhere(self.layers.file.clone()),
            key: key.to_owned(),
            problem: format!("cannot be set from its secret file: {e}"),
        };
        let mut builder = config::Config::builder().add_source(self.config.clone());
        for secret in &read {
            builder = builder
                .set_override(secret.key, secret.value.expose_secret().to_owned())
                .map_err(|e| internal(secret.key, e))?;
        }
        self.config = builder.build().map_err(|e| internal("", e))?;
        self.secret_files = read
            .into_iter()
            .map(|secret| (secret.key.to_owned(), secret.origin))
            .collect();
        Ok(())
    }

    /// Which layer set `key`, if one did (the built-in defaults do not
    /// count): the user's file or a variable.
    fn set_by(&self, key: &str) -> Option<Origin> {
        match self.origin_of(key) {
            Origin::Defaults => None,
            origin => Some(origin),
        }
    }

    fn deserialize<T: DeserializeOwned>(&self) -> Result<T, SettingsError> {
        self.config
            .clone()
            .try_deserialize()
            .map_err(|e| self.error(e))
    }

    /// Where the value of `key` came from: the environment wins over the
    /// file, the file over the defaults.
    fn origin_of(&self, key: &str) -> Origin {
        if let Some((_, origin)) = self.secret_files.iter().find(|(k, _)| k == key) {
            return origin.clone();
        }
        if let Some(e) = self
            .env
            .iter()
            .find(|e| e.key == key || key.starts_with(&format!("{}.", e.key)))
        {
            return Origin::Env(e.var.clone());
        }
        if let (Some(path), Some(text)) = (&self.layers.file, &self.file_text) {
            if toml_has_key(text, key) {
                return Origin::File(path.clone());
            }
        }
        Origin::Defaults
    }

    /// Turn a `config` error into one that names the key and its origin.
    fn error(&self, e: config::ConfigError) -> SettingsError {
        use config::ConfigError as C;
        let file = self.layers.file.clone();
        match e {
            C::NotFound(key) => required::missing_key(file.as_deref(), &key),
            C::Type {
                origin,
                unexpected,
                expected,
                key,
            } => {
                let key = key.unwrap_or_default();
                let origin = match origin {
                    Some(var) if var.starts_with(ENV_PREFIX) => Origin::Env(var),
                    _ => self.origin_of(&key),
                };
                SettingsError::Key {
                    origin,
                    problem: format!(
                        "has {unexpected} where {expected} is needed; see config/default.toml for its type"
                    ),
                    key,
                }
            }
            C::At { error, origin, key } => {
                let key = key.unwrap_or_default();
                let detail = error.to_string();
                // An unknown field inside a section: name the field too.
                let full_key = unknown_field(&detail)
                    .map(|f| join_key(&key, f))
                    .unwrap_or_else(|| key.clone());
                let origin = match origin {
                    Some(var) if var.starts_with(ENV_PREFIX) => Origin::Env(var),
                    _ => self.origin_of(&full_key),
                };
                SettingsError::Key {
                    origin,
                    key: full_key,
                    problem: format!("is invalid: {detail}; see config/default.toml"),
                }
            }
            other => {
                let detail = other.to_string();
                match unknown_field(&detail) {
                    Some(f) => SettingsError::Key {
                        origin: self.origin_of(f),
                        key: f.to_owned(),
                        problem: format!("is invalid: {detail}; see config/default.toml"),
                    },
                    None => SettingsError::Key {
                        origin: Origin::Nowhere(file),
                        key: String::new(),
                        problem: format!("{detail}; see config/default.toml"),
                    },
                }
            }
        }
    }
}

/// `unknown field `x`, expected ...` → `x`.
fn unknown_field(detail: &str) -> Option<&str> {
    detail
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
}

fn join_key(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Does the TOML text set `a.b` (as `[a]` + `b =`, or a dotted key)?
fn toml_has_key(text: &str, key: &str) -> bool {
    let Ok(value) = text.parse::<toml::Table>() else {
        return false;
    };
    let mut node = &toml::Value::Table(value);
    for part in key.split('.') {
        let mut pieces = part.split('[');
        let base = pieces.next().unwrap_or(part).trim_matches('"');
        let Some(next) = node.get(base) else {
            return false;
        };
        node = next;
        for index in pieces {
            let Some(next) = index
                .trim_end_matches(']')
                .parse::<usize>()
                .ok()
                .and_then(|i| node.get(i))
            else {
                return false;
            };
            node = next;
        }
    }
    true
}

fn read_config_file(path: &Path) -> Result<String, SettingsError> {
    let file_err = |detail: String| SettingsError::File {
        path: path.to_owned(),
        detail,
    };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SettingsError::NotFound {
            path: path.to_owned(),
        },
        _ => file_err(format!("cannot read it: {e}")),
    })?;
    if !meta.is_file() {
        return Err(file_err(
            "is not a file; pass a TOML file to --config".into(),
        ));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(file_err(format!(
            "is {} bytes, more than a config file can be ({MAX_CONFIG_BYTES})",
            meta.len()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| file_err(format!("cannot read it: {e}")))
}

/// Everything a live fetch (and plan) needs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub cms: CmsSettings,
    pub webex: WebexSettings,
    pub zoho: ZohoSettings,
    pub http: HttpKeys,
    pub fetch: FetchKeys,
    pub plan: PlanConfig,
    pub apply: ApplyKeys,
    pub journal: JournalKeys,
    pub run: RunKeys,
    pub console: ConsoleKeys,
}

/// `[console]`, as written (`console.rs` checks and types it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleKeys {
    pub addr: String,
    pub session_ttl: String,
    pub trust_forwarded_proto: bool,
    #[serde(default)]
    pub users: Vec<ConsoleUserKeys>,
}

/// One `[[console.users]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUserKeys {
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub token_sha256: Option<String>,
    #[serde(default)]
    pub token_sha256_file: Option<PathBuf>,
}

/// What `rebalancer console` reads: `[console]`, `[run]` (the schedule,
/// for the next cycle's time) and the journal's sections.
#[derive(Debug, Deserialize)]
pub struct ConsoleOnly {
    pub console: ConsoleKeys,
    pub run: RunKeys,
    pub apply: ApplyKeys,
    pub journal: JournalKeys,
}

/// `[console]`, `[run]` and the journal for `rebalancer console`: defaults
/// < `config` < `env`, each checked; `journal_flag` (`--journal FILE`)
/// over `journal.url` over `apply.journal`.
pub fn load_console(
    config: &Path,
    env: &Env,
    journal_flag: Option<PathBuf>,
) -> Result<(crate::console::ConsoleSettings, RunKeys, JournalLocation), SettingsError> {
    let layered = Layered::build(Some(config), env, &["console", "run", "apply", "journal"])?;
    let only: ConsoleOnly = layered.deserialize()?;
    let check = Checker { layered: &layered };
    first_errors([
        check.console(&only.console),
        check.run(&only.run),
        check.apply(&only.apply),
        check.journal(&only.journal),
    ])?;
    let console = crate::console::ConsoleSettings::from_keys(&only.console, &config_dir(config))
        .map_err(|p| check.fail(&p.key, p.problem))?;
    let journal = only.journal.location(&only.apply, journal_flag);
    Ok((console, only.run, journal))
}

/// The directory a config file's relative paths start from.
pub(crate) fn config_dir(config: &Path) -> PathBuf {
    config
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CmsSettings {
    pub base_url: BaseUrl,
    pub username: String,
    #[serde(serialize_with = "exposed")]
    pub password: SecretString,
    /// Read (into the secret) before deserialising; see `settings/secrets.rs`.
    #[serde(rename = "password_file", default, skip_serializing)]
    pub(crate) _password_file: Option<serde::de::IgnoredAny>,
    pub contact_center_id: u64,
    pub page_size: u32,
    /// A page shorter than `page_size` ends a lead's paging (trusts the CMS
    /// to honour `limit`; see `CmsConfig::short_page_ends`).
    pub short_page_ends: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    pub campaigns: Vec<CampaignSpec>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebexSettings {
    pub base_url: BaseUrl,
    #[serde(serialize_with = "exposed")]
    pub api_key: SecretString,
    /// Read (into the secret) before deserialising; see `settings/secrets.rs`.
    #[serde(rename = "api_key_file", default, skip_serializing)]
    pub(crate) _api_key_file: Option<serde::de::IgnoredAny>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZohoSettings {
    pub accounts_url: BaseUrl,
    pub api_domain: BaseUrl,
    pub client_id: String,
    #[serde(serialize_with = "exposed")]
    pub client_secret: SecretString,
    /// Read (into the secret) before deserialising; see `settings/secrets.rs`.
    #[serde(rename = "client_secret_file", default, skip_serializing)]
    pub(crate) _client_secret_file: Option<serde::de::IgnoredAny>,
    #[serde(serialize_with = "exposed")]
    pub refresh_token: SecretString,
    /// Read (into the secret) before deserialising; see `settings/secrets.rs`.
    #[serde(rename = "refresh_token_file", default, skip_serializing)]
    pub(crate) _refresh_token_file: Option<serde::de::IgnoredAny>,
    pub api_version: String,
    pub module: String,
    pub threshold_ids: Vec<String>,
    pub per_page: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpKeys {
    pub timeout_secs: u64,
    pub connect_timeout_secs: u64,
    pub max_retries: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub max_body_bytes: usize,
    pub allow_insecure: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchKeys {
    pub concurrency: usize,
    pub strict: bool,
    pub identity_file: Option<PathBuf>,
    pub deadline_secs: u64,
    pub min_webex_coverage: f64,
}

/// `[apply]`: how plans are written to the CMS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyKeys {
    pub journal: PathBuf,
    pub puts_per_second: u32,
    pub burst: u32,
    pub concurrency: usize,
    pub max_users_per_put: usize,
    pub on_drift: OnDrift,
    pub recheck_secs: u64,
    pub lease_secs: u64,
    pub max_plan_age_secs: u64,
}

impl ApplyKeys {
    /// The write budget every CMS request of an apply draws on.
    pub fn budget(&self) -> RequestBudget {
        RequestBudget::new(
            NonZeroU32::new(self.puts_per_second).unwrap_or(NonZeroU32::MIN),
            NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN),
            self.concurrency.max(1),
        )
    }

    /// The applier's options; `allow_mass_unassign` comes from the command
    /// line, `max_unassign_share` from `[plan]`, the retry policy after an
    /// ambiguous write from `[http]`.
    pub fn apply_config(
        &self,
        plan: &PlanConfig,
        http: &HttpKeys,
        allow_mass_unassign: bool,
    ) -> ApplyConfig {
        ApplyConfig {
            max_users_per_put: self.max_users_per_put,
            on_drift: self.on_drift,
            recheck: Duration::from_secs(self.recheck_secs),
            concurrency: self.concurrency,
            lease_ttl: Duration::from_secs(self.lease_secs),
            max_unassign_share: plan.max_unassign_share,
            allow_mass_unassign,
            retry: RetryPolicy {
                retries: http.max_retries,
                backoff_initial: Duration::from_millis(http.backoff_initial_ms),
                backoff_max: Duration::from_millis(http.backoff_max_ms),
            },
        }
    }
}

/// `[journal]`: where the journal lives when it is not the SQLite file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalKeys {
    /// Empty: the SQLite file at `apply.journal`; `postgres://…`: a
    /// PostgreSQL database (may hold a password: never printed).
    pub url: SecretString,
    /// Read (into the secret) before deserialising; see `settings/secrets.rs`.
    #[serde(rename = "url_file", default)]
    _url_file: Option<serde::de::IgnoredAny>,
}

impl JournalKeys {
    /// The journal these keys and `apply` name; `flag` (`--journal FILE`)
    /// overrides both with a SQLite file.
    pub fn location(&self, apply: &ApplyKeys, flag: Option<PathBuf>) -> JournalLocation {
        match flag {
            Some(path) => JournalLocation::Sqlite(path),
            None if self.url.expose_secret().trim().is_empty() => {
                JournalLocation::Sqlite(apply.journal.clone())
            }
            None => JournalLocation::Postgres(self.url.expose_secret().trim().to_string().into()),
        }
    }
}

/// `[run]`: the schedule of `rebalancer run`, its flap guard and its
/// metrics. The schedule strings are checked when `run` starts (see
/// `schedule.rs`), where the flags that override them are known;
/// `metrics_addr` is checked at load (`metrics_addr`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunKeys {
    pub every: String,
    pub cron: String,
    pub timezone: String,
    /// Run the first cycle of a cron schedule at start-up instead of at
    /// the first cron time (the `--now` flag).
    pub start_immediately: bool,
    pub min_move_interval: String,
    pub metrics_addr: String,
    /// Serve metrics under `run --once` too (nothing can scrape a process
    /// that lives for one cycle, so by default it does not listen).
    pub metrics_on_once: bool,
    /// Which plans wait for a person's approval (`approval.rs`).
    pub approval: String,
    /// With `approval = "large"`: plans of more moves than this wait.
    pub approval_large_moves: u64,
    /// How often a waiting `run` reads the journal for an approved plan.
    pub approval_poll: String,
}

/// `run.metrics_addr` as the address to listen on: `None` when empty;
/// `IP:PORT` (`[::1]:9090` for IPv6); `:PORT` for every IPv4 interface
/// (`0.0.0.0:PORT`, as Prometheus exporters write it); `HOST:PORT` with
/// the host name resolved now (its first address). The error says what is
/// wrong and how to write it.
pub fn metrics_addr(text: &str) -> Result<Option<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    const FORMAT: &str = "write it like \"127.0.0.1:9090\", \"0.0.0.0:9090\" or \":9090\" (every interface), or leave it empty to serve no metrics";
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(Some(a));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("is {text:?}, which has no port; {FORMAT}"));
    };
    let port: u16 = port.parse().map_err(|_| {
        format!("is {text:?}, whose port {port:?} is not a number from 0 to 65535; {FORMAT}")
    })?;
    if host.is_empty() {
        return Ok(Some(SocketAddr::from(([0, 0, 0, 0], port))));
    }
    if host.contains(':') || host.contains('[') || host.contains(char::is_whitespace) {
        return Err(format!("is {text:?}, not a host and a port; {FORMAT}"));
    }
    match (host, port).to_socket_addrs() {
        Ok(mut found) => found.next().map(Some).ok_or_else(|| {
            format!("is {text:?}: host {host:?} has no address; {FORMAT}")
        }),
        Err(e) => Err(format!(
            "is {text:?}: host {host:?} cannot be resolved ({e}); use a host name this machine resolves or an IP address; {FORMAT}"
        )),
    }
}

#[derive(Deserialize)]
struct JournalOnly {
    apply: ApplyKeys,
    journal: JournalKeys,
}

/// The journal to read (for `history` and `show`, which need no
/// credentials): `flag` (`--journal FILE`) if given, else `journal.url`
/// when set, else `apply.journal`, from defaults < `config` (when given) <
/// `env`.
pub fn load_journal(
    flag: Option<PathBuf>,
    config: Option<&Path>,
    env: &Env,
) -> Result<JournalLocation, SettingsError> {
    if let Some(path) = flag {
        return Ok(JournalLocation::Sqlite(path));
    }
    let layered = Layered::build(config, env, &["apply", "journal"])?;
    let only: JournalOnly = layered.deserialize()?;
    let check = Checker { layered: &layered };
    first_errors([check.apply(&only.apply), check.journal(&only.journal)])?;
    Ok(only.journal.location(&only.apply, None))
}

/// The sections the embedded sandbox takes from the layers (it supplies
/// the connection sections itself).
#[derive(Debug, Deserialize)]
pub struct LocalSettings {
    pub http: HttpKeys,
    pub fetch: FetchKeys,
    pub plan: PlanConfig,
    pub apply: ApplyKeys,
    pub journal: JournalKeys,
    pub run: RunKeys,
}

/// What an offline replan of a saved snapshot reads: `[plan]`, and
/// `[apply]` for what applying the plan would send (the report's write
/// rate and PUT size).
#[derive(Debug, Deserialize)]
pub struct Replan {
    pub plan: PlanConfig,
    pub apply: ApplyKeys,
}

/// A loaded configuration and the layers that made it.
#[derive(Debug)]
pub struct Loaded<T> {
    pub value: T,
    pub layers: Layers,
}

/// Every section, for a live fetch: defaults < `path` < `env`.
pub fn load(path: &Path, env: &Env) -> Result<Loaded<Settings>, SettingsError> {
    let layered = Layered::build(Some(path), env, SECTIONS)?;
    let settings: Settings = layered.deserialize()?;
    let check = Checker { layered: &layered };
    first_errors([
        check.connection(&settings),
        check.http(&settings.http),
        check.fetch(&settings.fetch),
        check.plan(&settings.plan),
        check.apply(&settings.apply),
        check.applier(&settings.apply, &settings.plan, &settings.http),
        check.journal(&settings.journal),
        check.run(&settings.run),
        check.console(&settings.console),
    ])?;
    Ok(Loaded {
        value: settings,
        layers: layered.layers,
    })
}

/// `[plan]` and `[apply]`, for replanning a saved snapshot offline, in one
/// pass over the layers: defaults < `path` (when given) < `env`.
pub fn load_plan(path: Option<&Path>, env: &Env) -> Result<Loaded<Replan>, SettingsError> {
    let layered = Layered::build(path, env, &["plan", "apply"])?;
    let replan: Replan = layered.deserialize()?;
    let check = Checker { layered: &layered };
    first_errors([check.plan(&replan.plan), check.apply(&replan.apply)])?;
    Ok(Loaded {
        value: replan,
        layers: layered.layers,
    })
}

/// `[http]`, `[fetch]`, `[plan]`, `[apply]`, `[journal]` and `[run]`, for the embedded sandbox: defaults <
/// `env` (connection variables are ignored: the sandbox supplies those).
pub fn load_local(env: &Env) -> Result<Loaded<LocalSettings>, SettingsError> {
    let layered = Layered::build(
        None,
        env,
        &["http", "fetch", "plan", "apply", "journal", "run"],
    )?;
    let local: LocalSettings = layered.deserialize()?;
    let check = Checker { layered: &layered };
    first_errors([
        check.http(&local.http),
        check.fetch(&local.fetch),
        check.plan(&local.plan),
        check.apply(&local.apply),
        check.applier(&local.apply, &local.plan, &local.http),
        check.journal(&local.journal),
        check.run(&local.run),
    ])?;
    let mut layers = layered.layers;
    layers.connection = Some("embedded sandbox".into());
    Ok(Loaded {
        value: local,
        layers,
    })
}

/// The compiled-in defaults of `[plan]`.
#[cfg(test)]
pub fn default_plan() -> PlanConfig {
    load_plan(None, &Env::default())
        .expect("config/default.toml has a valid [plan] section")
        .value
        .plan
}

impl Settings {
    /// The connection sections and the rest, apart.
    pub fn split(self) -> (Endpoints, LocalSettings) {
        let Settings {
            cms,
            webex,
            zoho,
            http,
            fetch,
            plan,
            apply,
            journal,
            run,
            console: _,
        } = self;
        (
            Endpoints { cms, webex, zoho },
            LocalSettings {
                http,
                fetch,
                plan,
                apply,
                journal,
                run,
            },
        )
    }
}

/// The connection sections (`[cms]`, `[webex]`, `[zoho]`): read from a
/// config file, or made by the embedded sandbox
/// (`connect::sandbox_endpoints`), whose `--write-config` file is these
/// serialised. Either way they become clients through the same
/// conversions below.
#[derive(Debug, serde::Serialize)]
pub struct Endpoints {
    pub cms: CmsSettings,
    pub webex: WebexSettings,
    pub zoho: ZohoSettings,
}

impl Endpoints {
    pub fn cms_config(&self, http: &HttpKeys) -> CmsConfig {
        CmsConfig {
            base_url: self.cms.base_url.clone(),
            username: self.cms.username.clone(),
            password: self.cms.password.clone(),
            contact_center_id: self.cms.contact_center_id,
            page_size: self.cms.page_size,
            short_page_ends: self.cms.short_page_ends,
            http: http_settings(http, &self.cms.ca_file),
        }
    }

    pub fn webex_config(&self, http: &HttpKeys) -> WebexConfig {
        WebexConfig {
            base_url: self.webex.base_url.clone(),
            api_key: self.webex.api_key.clone(),
            http: http_settings(http, &self.webex.ca_file),
        }
    }

    pub fn zoho_config(&self, http: &HttpKeys) -> ZohoConfig {
        ZohoConfig {
            accounts_url: self.zoho.accounts_url.clone(),
            api_domain: self.zoho.api_domain.clone(),
            client_id: self.zoho.client_id.clone(),
            client_secret: self.zoho.client_secret.clone(),
            refresh_token: self.zoho.refresh_token.clone(),
            api_version: self.zoho.api_version.clone(),
            module: self.zoho.module.clone(),
            per_page: self.zoho.per_page,
            http: http_settings(http, &self.zoho.ca_file),
        }
    }

    /// Fetch options under `[fetch]`, reading the identity file if one is
    /// configured; `description` names the source in the snapshot.
    pub fn fetch_options(
        &self,
        fetch: &FetchKeys,
        description: &str,
    ) -> Result<FetchOptions, SettingsError> {
        let identity = match &fetch.identity_file {
            Some(path) => load_identity_file(path)?,
            None => IdentityMap::new(),
        };
        Ok(FetchOptions {
            campaigns: self.cms.campaigns.clone(),
            threshold_ids: self.zoho.threshold_ids.clone(),
            concurrency: fetch.concurrency,
            strict: fetch.strict,
            identity,
            deadline: Duration::from_secs(fetch.deadline_secs),
            min_webex_coverage: fetch.min_webex_coverage,
            progress: FetchProgress::default(),
            source: SnapshotSource {
                description: description.to_owned(),
                cms_base_url: self.cms.base_url.to_string(),
                contact_center_id: Some(self.cms.contact_center_id),
                webex_base_url: self.webex.base_url.to_string(),
                zoho_api_domain: self.zoho.api_domain.to_string(),
                zoho_module: self.zoho.module.clone(),
                threshold_ids: self.zoho.threshold_ids.clone(),
            },
        })
    }

    /// As a config file's connection sections (TOML; secrets in clear:
    /// only the sandbox's fake ones are ever written this way).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

/// Serialises a secret in clear, for [`Endpoints::to_toml`].
fn exposed<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

/// The HTTP behaviour of one client from `[http]`.
pub fn http_settings(h: &HttpKeys, ca_file: &Option<PathBuf>) -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(h.timeout_secs),
        connect_timeout: Duration::from_secs(h.connect_timeout_secs),
        max_retries: h.max_retries,
        backoff_initial: Duration::from_millis(h.backoff_initial_ms),
        backoff_max: Duration::from_millis(h.backoff_max_ms),
        max_body_bytes: h.max_body_bytes,
        ca_file: ca_file.clone(),
        allow_insecure: h.allow_insecure,
        ..HttpSettings::default()
    }
}

fn load_identity_file(path: &Path) -> Result<IdentityMap, SettingsError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct IdentityFile {
        #[serde(default)]
        agents: IdentityMap,
    }
    let err = |detail: String| SettingsError::Identity {
        path: path.to_owned(),
        detail,
    };
    if !path.is_file() {
        return Err(err("not found; fix fetch.identity_file".into()));
    }
    let file: IdentityFile = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| err(e.to_string()))?;
    Ok(file.agents)
}

/// A count as `u64` (saturating; `usize` is at most 64 bits here).
fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The environment variable that overrides `key` (`cms.password` →
/// `REBALANCER_CMS__PASSWORD`).
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

#[cfg(test)]
mod bounds_tests;
#[cfg(test)]
mod tests;
