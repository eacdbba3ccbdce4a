//! Configuration: `config/default.toml` (compiled in) < the user's file <
//! `REBALANCER_<SECTION>__<KEY>` environment variables, read with the
//! `config` crate, then checked and turned into the typed options of the
//! library crates.
//!
//! The same layering applies whatever the input mode: a live fetch reads
//! every section; a replan of a saved snapshot reads `[plan]` only; the
//! embedded sandbox reads `[http]`, `[fetch]` and `[plan]` and supplies the
//! connection sections itself, so real credentials never meet it.
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

mod required;
mod secrets;

/// The compiled-in defaults; also the documentation of every key.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Prefix of environment overrides: `REBALANCER_CMS__PASSWORD`.
pub const ENV_PREFIX: &str = "REBALANCER_";

/// The sections a config may hold; an environment variable naming another
/// section is a mistake worth reporting.
const SECTIONS: &[&str] = &[
    "cms", "webex", "zoho", "http", "fetch", "plan", "apply", "journal", "run",
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

    #[cfg(test)]
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
/// ("config: defaults < sandbox.toml < env (2 keys)").
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
        match self.env_vars.len() {
            0 => Ok(()),
            1 => f.write_str(" < env (1 key)"),
            n => write!(f, " < env ({n} keys)"),
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmsSettings {
    pub base_url: BaseUrl,
    pub username: String,
    pub password: SecretString,
    /// Read (into the secret) before deserialising; see `settings/secrets.rs`.
    #[serde(rename = "password_file", default)]
    _password_file: Option<serde::de::IgnoredAny>,
    pub contact_center_id: u64,
    pub page_size: u32,
    /// A page shorter than `page_size` ends a lead's paging (trusts the CMS
    /// to honour `limit`; see `CmsConfig::short_page_ends`).
    pub short_page_ends: bool,
    pub ca_file: Option<PathBuf>,
    pub campaigns: Vec<CampaignSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebexSettings {
    pub base_url: BaseUrl,
    pub api_key: SecretString,
    /// Read (into the secret) before deserialising; see `settings/secrets.rs`.
    #[serde(rename = "api_key_file", default)]
    _api_key_file: Option<serde::de::IgnoredAny>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZohoSettings {
    pub accounts_url: BaseUrl,
    pub api_domain: BaseUrl,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Read (into the secret) before deserialising; see `settings/secrets.rs`.
    #[serde(rename = "client_secret_file", default)]
    _client_secret_file: Option<serde::de::IgnoredAny>,
    pub refresh_token: SecretString,
    /// Read (into the secret) before deserialising; see `settings/secrets.rs`.
    #[serde(rename = "refresh_token_file", default)]
    _refresh_token_file: Option<serde::de::IgnoredAny>,
    pub api_version: String,
    pub module: String,
    pub threshold_ids: Vec<String>,
    pub per_page: u32,
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

#[derive(Deserialize)]
struct PlanOnly {
    plan: PlanConfig,
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
        check.journal(&settings.journal),
        check.run(&settings.run),
    ])?;
    Ok(Loaded {
        value: settings,
        layers: layered.layers,
    })
}

/// `[plan]` only, for replanning a saved snapshot offline: defaults <
/// `path` (when given) < `env`.
pub fn load_plan(path: Option<&Path>, env: &Env) -> Result<Loaded<PlanConfig>, SettingsError> {
    let layered = Layered::build(path, env, &["plan"])?;
    let only: PlanOnly = layered.deserialize()?;
    Checker { layered: &layered }.plan(&only.plan)?;
    Ok(Loaded {
        value: only.plan,
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
}

/// Checks serde cannot make, each naming its key and origin.
struct Checker<'a> {
    layered: &'a Layered,
}

impl Checker<'_> {
    fn fail(&self, key: &str, problem: impl Into<String>) -> SettingsError {
        SettingsError::Key {
            origin: self.layered.origin_of(key),
            key: key.to_owned(),
            problem: problem.into(),
        }
    }

    /// `value` of `key` within its [`BOUNDS`] entry.
    fn within(&self, key: &str, value: u64) -> Result<(), SettingsError> {
        let Some(b) = BOUNDS.iter().find(|b| b.key == key) else {
            debug_assert!(false, "{key} has no entry in BOUNDS");
            return Ok(());
        };
        if (b.min..=b.max).contains(&value) {
            return Ok(());
        }
        Err(self.fail(
            key,
            format!(
                "is {value}; it must be between {} and {} ({})",
                b.min, b.max, b.means
            ),
        ))
    }

    /// Every `(key, value)` within its bounds.
    fn all_within<const N: usize>(&self, values: [(&str, u64); N]) -> Result<(), SettingsError> {
        values
            .into_iter()
            .try_for_each(|(key, value)| self.within(key, value))
    }

    fn connection(&self, s: &Settings) -> Result<(), SettingsError> {
        for (key, value) in [
            ("cms.base_url", &s.cms.base_url),
            ("webex.base_url", &s.webex.base_url),
            ("zoho.accounts_url", &s.zoho.accounts_url),
            ("zoho.api_domain", &s.zoho.api_domain),
        ] {
            value
                .require_secure(s.http.allow_insecure)
                .map_err(|e| self.fail(key, e.problem()))?;
        }
        for (key, secret) in [
            ("cms.password", &s.cms.password),
            ("webex.api_key", &s.webex.api_key),
            ("zoho.client_secret", &s.zoho.client_secret),
            ("zoho.refresh_token", &s.zoho.refresh_token),
        ] {
            if secret.expose_secret().trim().is_empty() {
                return Err(self.fail(
                    key,
                    format!(
                        "is empty; set the secret in the file or as {}",
                        env_name(key)
                    ),
                ));
            }
        }
        for (key, value) in [
            ("cms.username", &s.cms.username),
            ("zoho.client_id", &s.zoho.client_id),
            ("zoho.api_version", &s.zoho.api_version),
            ("zoho.module", &s.zoho.module),
        ] {
            if value.trim().is_empty() {
                return Err(self.fail(key, "is empty"));
            }
        }
        self.all_within([
            ("cms.page_size", u64::from(s.cms.page_size)),
            ("zoho.per_page", u64::from(s.zoho.per_page)),
        ])?;
        if s.cms.campaigns.is_empty() {
            return Err(self.fail(
                "cms.campaigns",
                "is empty; add at least one [[cms.campaigns]] table with process_id, campaign_id and lead_ids",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in s.cms.campaigns.iter().enumerate() {
            let key = format!("cms.campaigns[{i}].lead_ids");
            if c.lead_ids.is_empty() {
                return Err(self.fail(
                    &key,
                    format!(
                        "is empty for campaign {}; list the leads to rebalance",
                        c.campaign_id
                    ),
                ));
            }
            for &l in &c.lead_ids {
                if !seen.insert((c.campaign_id, l)) {
                    return Err(self.fail(
                        &key,
                        format!("lists lead {l} of campaign {} twice", c.campaign_id),
                    ));
                }
            }
        }
        if s.zoho.threshold_ids.is_empty() {
            return Err(self.fail(
                "zoho.threshold_ids",
                "is empty; list the assignment threshold ids that cap the agents",
            ));
        }
        if let Some(i) = s
            .zoho
            .threshold_ids
            .iter()
            .position(|t| t.trim().is_empty())
        {
            return Err(self.fail(
                "zoho.threshold_ids",
                format!(
                    "item {} is blank; list threshold ids like \"1862079000024556062\"",
                    i + 1
                ),
            ));
        }
        Ok(())
    }

    fn http(&self, h: &HttpKeys) -> Result<(), SettingsError> {
        self.all_within([
            ("http.timeout_secs", h.timeout_secs),
            ("http.connect_timeout_secs", h.connect_timeout_secs),
            ("http.max_retries", u64::from(h.max_retries)),
            ("http.backoff_initial_ms", h.backoff_initial_ms),
            ("http.backoff_max_ms", h.backoff_max_ms),
            ("http.max_body_bytes", as_u64(h.max_body_bytes)),
        ])?;
        if h.backoff_max_ms < h.backoff_initial_ms {
            return Err(self.fail(
                "http.backoff_max_ms",
                format!(
                    "({}) is below http.backoff_initial_ms ({})",
                    h.backoff_max_ms, h.backoff_initial_ms
                ),
            ));
        }
        Ok(())
    }

    fn fetch(&self, f: &FetchKeys) -> Result<(), SettingsError> {
        self.all_within([
            ("fetch.concurrency", as_u64(f.concurrency)),
            ("fetch.deadline_secs", f.deadline_secs),
        ])?;
        let c = f.min_webex_coverage;
        if !(c.is_finite() && (0.0..=1.0).contains(&c)) {
            return Err(self.fail(
                "fetch.min_webex_coverage",
                format!("is {c}; it must be a share between 0 and 1 (the default is 0.5)"),
            ));
        }
        Ok(())
    }

    fn apply(&self, a: &ApplyKeys) -> Result<(), SettingsError> {
        self.all_within([
            ("apply.puts_per_second", u64::from(a.puts_per_second)),
            ("apply.burst", u64::from(a.burst)),
            ("apply.concurrency", as_u64(a.concurrency)),
            ("apply.max_users_per_put", as_u64(a.max_users_per_put)),
            ("apply.recheck_secs", a.recheck_secs),
            ("apply.lease_secs", a.lease_secs),
            ("apply.max_plan_age_secs", a.max_plan_age_secs),
        ])?;
        if a.journal.as_os_str().is_empty() {
            return Err(self.fail(
                "apply.journal",
                "is empty; name the SQLite journal file, e.g. \"rebalancer-journal.sqlite\"",
            ));
        }
        Ok(())
    }

    /// `journal.url`: empty, or a PostgreSQL URL. Its value is never
    /// quoted whole (it may hold a password).
    fn journal(&self, j: &JournalKeys) -> Result<(), SettingsError> {
        let url = j.url.expose_secret().trim();
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(self.fail(
                "journal.url",
                format!(
                    "is \"{}\", not a PostgreSQL URL; write postgres://user:password@host:port/database, or leave it empty for the SQLite file at apply.journal",
                    mask_url(url)
                ),
            ));
        }
        Ok(())
    }

    fn run(&self, r: &RunKeys) -> Result<(), SettingsError> {
        metrics_addr(&r.metrics_addr)
            .map(|_| ())
            .map_err(|problem| self.fail("run.metrics_addr", problem))
    }

    /// `[plan]`'s ranges are the optimizer's rule (`PlanConfig::validate`);
    /// the integer bounds are in [`BOUNDS`].
    fn plan(&self, p: &PlanConfig) -> Result<(), SettingsError> {
        p.validate().map_err(|e| self.fail(&e.key, e.problem))?;
        self.all_within([
            ("plan.unjoined_headroom", p.unjoined_headroom),
            ("plan.max_leads_per_agent", as_u64(p.max_leads_per_agent)),
            ("plan.max_moves_per_run", as_u64(p.max_moves_per_run)),
            ("plan.max_moves_per_agent", as_u64(p.max_moves_per_agent)),
        ])?;
        Ok(())
    }
}

impl Settings {
    fn http_settings(&self, ca_file: &Option<PathBuf>) -> HttpSettings {
        http_settings(&self.http, ca_file)
    }

    pub fn cms_config(&self) -> CmsConfig {
        CmsConfig {
            base_url: self.cms.base_url.clone(),
            username: self.cms.username.clone(),
            password: self.cms.password.clone(),
            contact_center_id: self.cms.contact_center_id,
            page_size: self.cms.page_size,
            short_page_ends: self.cms.short_page_ends,
            http: self.http_settings(&self.cms.ca_file),
        }
    }

    pub fn webex_config(&self) -> WebexConfig {
        WebexConfig {
            base_url: self.webex.base_url.clone(),
            api_key: self.webex.api_key.clone(),
            http: self.http_settings(&self.webex.ca_file),
        }
    }

    pub fn zoho_config(&self) -> ZohoConfig {
        ZohoConfig {
            accounts_url: self.zoho.accounts_url.clone(),
            api_domain: self.zoho.api_domain.clone(),
            client_id: self.zoho.client_id.clone(),
            client_secret: self.zoho.client_secret.clone(),
            refresh_token: self.zoho.refresh_token.clone(),
            api_version: self.zoho.api_version.clone(),
            module: self.zoho.module.clone(),
            per_page: self.zoho.per_page,
            http: self.http_settings(&self.zoho.ca_file),
        }
    }

    /// Fetch options, reading the identity file if one is configured.
    pub fn fetch_options(&self, description: &str) -> Result<FetchOptions, SettingsError> {
        let identity = match &self.fetch.identity_file {
            Some(path) => load_identity_file(path)?,
            None => IdentityMap::new(),
        };
        Ok(FetchOptions {
            campaigns: self.cms.campaigns.clone(),
            threshold_ids: self.zoho.threshold_ids.clone(),
            concurrency: self.fetch.concurrency,
            strict: self.fetch.strict,
            identity,
            deadline: Duration::from_secs(self.fetch.deadline_secs),
            min_webex_coverage: self.fetch.min_webex_coverage,
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

/// The bounds of every numeric key, through the loader (issue 16, #15).
#[cfg(test)]
mod bounds_tests {
    use super::*;

    const FILE: &str = r#"
[cms]
base_url = "https://cms.example.com:8443"
username = "u"
password = "p-secret"
contact_center_id = 1
[[cms.campaigns]]
process_id = 1
campaign_id = 2
lead_ids = [3]
[webex]
base_url = "https://webex.example.com"
api_key = "k-secret"
[zoho]
client_id = "c"
client_secret = "s-secret"
refresh_token = "r-secret"
threshold_ids = ["9"]
"#;

    fn load_with(text: &str, vars: &[(String, String)]) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        let env = Env::from_pairs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        load(&path, &env)
            .map(|l| l.value)
            .map_err(|e| e.to_string())
    }

    /// Other keys a value needs to be valid on its own (a large first
    /// backoff needs a large cap).
    fn companions(key: &str) -> Vec<(String, String)> {
        match key {
            "http.backoff_initial_ms" => vec![(env_name("http.backoff_max_ms"), "600000".into())],
            "http.backoff_max_ms" => vec![(env_name("http.backoff_initial_ms"), "0".into())],
            _ => vec![],
        }
    }

    #[test]
    fn every_integer_bound_is_enforced_by_the_loader() {
        for b in BOUNDS {
            let var = env_name(b.key);
            let with = |value: u64| {
                let mut vars = companions(b.key);
                vars.push((var.clone(), value.to_string()));
                load_with(FILE, &vars)
            };
            with(b.max).unwrap_or_else(|e| panic!("{} = {} (its maximum): {e}", b.key, b.max));
            with(b.min).unwrap_or_else(|e| panic!("{} = {} (its minimum): {e}", b.key, b.min));
            let mut outside = vec![b.max + 1];
            if b.min > 0 {
                outside.push(b.min - 1);
            }
            for value in outside {
                let err = with(value).expect_err(&format!("{} = {value} was accepted", b.key));
                assert!(
                    err.contains(&format!("`{}`", b.key))
                        && err.contains(&var)
                        && err.contains(&format!("between {} and {}", b.min, b.max)),
                    "{} = {value}: {err}",
                    b.key
                );
            }
        }
    }

    /// Issue 16, #15: a lease of 10^16 seconds is refused at load, naming
    /// the key and the file, never reaching the journal.
    #[test]
    fn an_absurd_lease_is_refused_naming_the_key() {
        let text = format!("{FILE}[apply]\nlease_secs = 10000000000000000\n");
        let err = load_with(&text, &[]).unwrap_err();
        assert!(
            err.contains("`apply.lease_secs`")
                && err.contains("c.toml")
                && err.contains("86400 (a day)"),
            "{err}"
        );
        let err = load_journal(
            None,
            None,
            &Env::from_pairs([("REBALANCER_APPLY__LEASE_SECS", "10000000000000000")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("REBALANCER_APPLY__LEASE_SECS"), "{err}");
    }

    #[test]
    fn every_float_and_table_value_has_an_upper_bound() {
        for (text, key) in [
            (
                "[fetch]\nmin_webex_coverage = 1.5",
                "fetch.min_webex_coverage",
            ),
            ("[plan]\ndemand_share = 1.5", "plan.demand_share"),
            (
                "[plan]\nmax_unassign_share = 1.5",
                "plan.max_unassign_share",
            ),
            (
                "[plan]\ntarget_utilisation = 1.5",
                "plan.target_utilisation",
            ),
            ("[plan]\nmin_flow = 1e13", "plan.min_flow"),
            (
                "[plan]\nmin_shortfall_gain = 1e13",
                "plan.min_shortfall_gain",
            ),
            (
                "[plan]\nmin_shortfall_gain = inf",
                "plan.min_shortfall_gain",
            ),
            ("[plan]\nmin_balance_gain = 1.5", "plan.min_balance_gain"),
            ("[plan.lead_weights]\n\"2/3\" = 1e7", "plan.lead_weights"),
            (
                "[plan.campaign_weights]\n\"2\" = 1e300",
                "plan.campaign_weights",
            ),
            ("[plan.demand]\n\"2/3\" = 1000000000001", "plan.demand"),
        ] {
            let err = load_with(&format!("{FILE}{text}\n"), &[])
                .expect_err(&format!("{text} was accepted"));
            assert!(err.contains(key) && err.contains("c.toml"), "{key}: {err}");
        }
        for text in [
            "[plan]\nmin_flow = 1e12\nmin_shortfall_gain = 1e12\nmin_balance_gain = 1.0",
            "[plan.lead_weights]\n\"2/3\" = 1e6",
            "[plan.demand]\n\"2/3\" = 1000000000000",
        ] {
            load_with(&format!("{FILE}{text}\n"), &[])
                .unwrap_or_else(|e| panic!("{text} (at the bound): {e}"));
        }
    }

    /// Every integer key of `config/default.toml` has a bound, its default
    /// lies within it, and the key's comment states the upper end.
    #[test]
    fn every_integer_key_of_the_defaults_is_bounded_and_documented() {
        let table: toml::Table = DEFAULT_TOML.parse().unwrap();
        let mut integers = Vec::new();
        collect_integers("", &toml::Value::Table(table), &mut integers);
        assert!(integers.len() >= 15, "{integers:?}");
        for (key, value) in &integers {
            let b = BOUNDS
                .iter()
                .find(|b| b.key == key)
                .unwrap_or_else(|| panic!("{key} (an integer key) has no entry in BOUNDS"));
            let value = u64::try_from(*value).unwrap();
            assert!((b.min..=b.max).contains(&value), "{key}'s default");
        }
        for b in BOUNDS {
            let comment = comment_of(b.key);
            let stated = if b.max == 1_000_000_000_000 {
                "10^12".to_string()
            } else {
                b.max.to_string()
            };
            assert!(
                comment.contains(&stated),
                "config/default.toml does not state {}'s bound {stated}: {comment}",
                b.key
            );
        }
    }

    fn collect_integers(prefix: &str, value: &toml::Value, out: &mut Vec<(String, i64)>) {
        match value {
            toml::Value::Integer(n) => out.push((prefix.to_string(), *n)),
            toml::Value::Table(t) => {
                for (k, v) in t {
                    collect_integers(&join_key(prefix, k), v, out);
                }
            }
            _ => {}
        }
    }

    /// The comment above `section.key`'s line in the defaults (skipping
    /// the lines of keys that share it, as `max_moves_per_run` and
    /// `max_moves_per_agent` do).
    fn comment_of(key: &str) -> String {
        let (section, name) = key.split_once('.').unwrap();
        let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
        let mut in_section = false;
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with('[') {
                in_section = *line == format!("[{section}]");
            } else if in_section && line.starts_with(&format!("{name} =")) {
                let comment = lines[..i]
                    .iter()
                    .rev()
                    .skip_while(|l| !l.starts_with('#') && l.contains(" = "))
                    .take_while(|l| l.starts_with('#'))
                    .copied()
                    .collect::<Vec<_>>();
                return comment.join("\n");
            }
        }
        panic!("{key} is not in config/default.toml");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[cms]
base_url = "https://cms.example.com:8443"
username = "u"
password = "p-secret"
contact_center_id = 1
[[cms.campaigns]]
process_id = 1
campaign_id = 2
lead_ids = [3]
[webex]
base_url = "https://webex.example.com"
api_key = "k-secret"
[zoho]
client_id = "c"
client_secret = "s-secret"
refresh_token = "r-secret"
threshold_ids = ["9"]
"#;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    fn from_toml(text: &str, e: &[(&str, &str)]) -> Result<Loaded<Settings>, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        load(&path, &env(e))
    }

    #[test]
    fn default_toml_plan_section_matches_the_code_defaults() {
        assert_eq!(default_plan(), PlanConfig::default());
    }

    #[test]
    fn plan_lists_come_from_env() {
        let s = from_toml(MINIMAL, &[("REBALANCER_PLAN__FROZEN_AGENTS", "Anna,bob")]).unwrap();
        assert_eq!(s.value.plan.frozen_agents, ["Anna", "bob"]);
    }

    #[test]
    fn a_one_item_list_from_env_is_a_list() {
        let s = from_toml(MINIMAL, &[("REBALANCER_ZOHO__THRESHOLD_IDS", "999")]).unwrap();
        assert_eq!(s.value.zoho.threshold_ids, ["999"]);
    }

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let s = from_toml(MINIMAL, &[]).unwrap().value;
        assert_eq!(s.cms.page_size, 500);
        assert!(s.cms.short_page_ends && s.cms_config().short_page_ends);
        assert_eq!(s.zoho.api_version, "v8");
        assert_eq!(s.zoho.per_page, 200);
        assert_eq!(s.fetch.concurrency, 16);
        assert_eq!(s.http.max_retries, 4);
    }

    #[test]
    fn short_page_ends_can_be_turned_off() {
        let s = from_toml(MINIMAL, &[("REBALANCER_CMS__SHORT_PAGE_ENDS", "false")]).unwrap();
        assert!(!s.value.cms_config().short_page_ends);
    }

    #[test]
    fn environment_overrides_file_including_lists() {
        let s = from_toml(
            MINIMAL,
            &[
                ("REBALANCER_CMS__PASSWORD", "from-env"),
                ("REBALANCER_ZOHO__THRESHOLD_IDS", "111,222"),
                ("REBALANCER_FETCH__CONCURRENCY", "3"),
            ],
        )
        .unwrap();
        assert_eq!(s.value.cms.password.expose_secret(), "from-env");
        assert_eq!(s.value.zoho.threshold_ids, ["111", "222"]);
        assert_eq!(s.value.fetch.concurrency, 3);
        assert_eq!(
            s.layers.to_string(),
            "defaults < c.toml < env (3 keys)",
            "the layers name the file and count the variables"
        );
    }

    #[test]
    fn environment_strings_stay_strings_byte_for_byte() {
        let twenty = "00012345678901234567";
        let s = from_toml(
            MINIMAL,
            &[
                ("REBALANCER_CMS__PASSWORD", "007"),
                ("REBALANCER_WEBEX__API_KEY", twenty),
                ("REBALANCER_CMS__USERNAME", "0x10"),
                ("REBALANCER_ZOHO__CLIENT_ID", "1e3"),
            ],
        )
        .unwrap()
        .value;
        assert_eq!(s.cms.password.expose_secret(), "007");
        assert_eq!(s.webex.api_key.expose_secret(), twenty);
        assert_eq!(s.cms.username, "0x10");
        assert_eq!(s.zoho.client_id, "1e3");
    }

    #[test]
    fn a_bad_environment_value_names_the_variable_not_the_file() {
        let err = from_toml(MINIMAL, &[("REBALANCER_PLAN__MAX_MOVES_PER_RUN", "ten")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("environment variable REBALANCER_PLAN__MAX_MOVES_PER_RUN")
                && err.contains("plan.max_moves_per_run")
                && !err.contains("c.toml"),
            "{err}"
        );
        let err = load_plan(None, &env(&[("REBALANCER_PLAN__MIN_FLOW", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("REBALANCER_PLAN__MIN_FLOW"), "{err}");
    }

    #[test]
    fn an_unknown_key_from_the_environment_names_the_variable() {
        let err = from_toml(MINIMAL, &[("REBALANCER_CMS__PASWORD", "x")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REBALANCER_CMS__PASWORD") && err.contains("cms.pasword"),
            "{err}"
        );
        let err = load_plan(None, &env(&[("REBALANCER_PLNA__PINS", "x")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REBALANCER_PLNA__PINS") && err.contains("unknown section"),
            "{err}"
        );
    }

    #[test]
    fn unrelated_rebalancer_variables_are_not_config() {
        let s = from_toml(
            MINIMAL,
            &[("REBALANCER_VERSION", "1.2.3"), ("REBALANCER_", "x")],
        )
        .unwrap();
        assert!(s.layers.env_vars.is_empty(), "{:?}", s.layers);
    }

    #[test]
    fn plan_only_layering_applies_the_environment() {
        let p = load_plan(None, &env(&[("REBALANCER_PLAN__MAX_MOVES_PER_RUN", "10")])).unwrap();
        assert_eq!(p.value.max_moves_per_run, 10);
        assert_eq!(p.layers.to_string(), "defaults < env (1 key)");
        // Connection variables don't matter to an offline replan.
        let p = load_plan(None, &env(&[("REBALANCER_CMS__CONTACT_CENTER_ID", "x")])).unwrap();
        assert!(p.layers.env_vars.is_empty());
    }

    #[test]
    fn a_bad_file_value_names_the_file() {
        let err = from_toml(
            &format!("{MINIMAL}\n[plan]\nmax_moves_per_run = \"ten\"\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("c.toml") && err.contains("plan.max_moves_per_run"),
            "{err}"
        );
    }

    /// The example names its secret files; variables naming other files
    /// override those paths (as a systemd unit's `%d/…` does).
    #[test]
    fn production_example_loads_with_secrets_from_files() {
        let text = include_str!("../config/production.example.toml");
        let dir = tempfile::tempdir().unwrap();
        let mut vars = Vec::new();
        for (key, value) in [
            ("cms.password", "a"),
            ("webex.api_key", "b"),
            ("zoho.client_secret", "c"),
            ("zoho.refresh_token", "d"),
        ] {
            let file = dir.path().join(key);
            std::fs::write(&file, value).unwrap();
            vars.push((env_name(&format!("{key}_file")), file.display().to_string()));
        }
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let s = from_toml(text, &vars).unwrap();
        assert_eq!(s.value.cms.campaigns.len(), 2);
        assert_eq!(s.value.zoho.refresh_token.expose_secret(), "d");
        // As shipped, the four files it names are reported at once.
        let err = from_toml(text, &[]).unwrap_err().to_string();
        assert!(err.contains("4 problems"), "{err}");
        for path in [
            "cms-password",
            "webex-api-key",
            "zoho-client-secret",
            "zoho-refresh-token",
        ] {
            assert!(
                err.contains(&format!("/etc/rebalancer/secrets/{path}")),
                "{path}: {err}"
            );
        }
    }

    #[test]
    fn missing_secret_names_key_and_variable() {
        let err = from_toml(&MINIMAL.replace("api_key = \"k-secret\"", ""), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("webex.api_key") && err.contains("REBALANCER_WEBEX__API_KEY"),
            "{err}"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = from_toml(MINIMAL, &[]).unwrap();
        let dbg = format!("{s:?}");
        for secret in ["p-secret", "k-secret", "s-secret", "r-secret"] {
            assert!(!dbg.contains(secret), "{secret} in {dbg}");
        }
    }

    #[test]
    fn validation_names_the_key() {
        for (from, to, key) in [
            (
                "lead_ids = [3]",
                "lead_ids = []",
                "cms.campaigns[0].lead_ids",
            ),
            (
                "lead_ids = [3]",
                "lead_ids = [3, 3]",
                "cms.campaigns[0].lead_ids",
            ),
            (
                "threshold_ids = [\"9\"]",
                "threshold_ids = [\"9\"]\nper_page = 500",
                "zoho.per_page",
            ),
            (
                "https://webex.example.com",
                "ftp://webex.example.com",
                "webex.base_url",
            ),
            ("password = \"p-secret\"", "password = \"\"", "cms.password"),
            (
                "threshold_ids = [\"9\"]",
                "threshold_ids = [\"9\", \" \"]",
                "zoho.threshold_ids",
            ),
            (
                "[webex]",
                "[http]\nmax_body_bytes = 0\n[webex]",
                "http.max_body_bytes",
            ),
            (
                "[webex]",
                "[http]\ntimeout_secs = 0\n[webex]",
                "http.timeout_secs",
            ),
            (
                "[webex]",
                "[http]\ntimeout_secs = -5\n[webex]",
                "http.timeout_secs",
            ),
            (
                "[webex]",
                "[fetch]\nconcurrency = 0\n[webex]",
                "fetch.concurrency",
            ),
            (
                "[webex]",
                "[fetch]\ndeadline_secs = 0\n[webex]",
                "fetch.deadline_secs",
            ),
            (
                "[webex]",
                "[fetch]\nmin_webex_coverage = 1.5\n[webex]",
                "fetch.min_webex_coverage",
            ),
            (
                "https://webex.example.com",
                "http://webex.example.com",
                "webex.base_url",
            ),
            (
                "https://cms.example.com:8443",
                "https://u:pw@cms.example.com",
                "cms.base_url",
            ),
            (
                "[webex]",
                "[plan]\nmin_shortfall_gain = nan\n[webex]",
                "plan.min_shortfall_gain",
            ),
            (
                "[webex]",
                "[plan]\ndemand_share = 0.0\n[webex]",
                "plan.demand_share",
            ),
            (
                "[webex]",
                "[plan]\nmin_balance_gain = -1.0\n[webex]",
                "plan.min_balance_gain",
            ),
            (
                "[webex]",
                "[plan]\nmax_moves_per_run = -1\n[webex]",
                "plan.max_moves_per_run",
            ),
        ] {
            let text = MINIMAL.replace(from, to);
            assert_ne!(text, MINIMAL, "{from} not found");
            let err = from_toml(&text, &[]).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("c.toml"), "{key}: {err}");
        }
    }

    #[test]
    fn plain_http_needs_loopback_or_allow_insecure() {
        let remote = MINIMAL.replace("https://webex.example.com", "http://webex.example.com");
        let err = from_toml(&remote, &[]).unwrap_err().to_string();
        assert!(err.contains("http.allow_insecure"), "{err}");
        let allowed = from_toml(&remote, &[("REBALANCER_HTTP__ALLOW_INSECURE", "true")]).unwrap();
        assert!(allowed.value.http.allow_insecure);
        let local = MINIMAL.replace("https://webex.example.com", "http://127.0.0.1:8080");
        assert!(from_toml(&local, &[]).is_ok());
    }

    #[test]
    fn credentials_in_a_url_are_masked_in_the_error() {
        let text = MINIMAL.replace(
            "https://cms.example.com:8443",
            "https://u:hunter2@cms.example.com",
        );
        let err = from_toml(&text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("cms.base_url") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn identity_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ids.toml");
        std::fs::write(
            &good,
            "[agents.anav_agent]\nzoho_email = \"Anav@Example.com\"\n",
        )
        .unwrap();
        let map = load_identity_file(&good).unwrap();
        assert_eq!(
            map["anav_agent"].zoho_email.as_deref(),
            Some("Anav@Example.com")
        );
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[agents.x]\nzoho_mail = \"typo\"\n").unwrap();
        let err = load_identity_file(&bad).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml") && err.contains("zoho_mail"),
            "{err}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let _ = from_toml(&text, &[]);
        }

        #[test]
        fn truncated_config_never_panics(cut in 0usize..400) {
            let cut = MINIMAL.char_indices().map(|(i, _)| i).take_while(|&i| i <= cut).last().unwrap_or(0);
            let _ = from_toml(&MINIMAL[..cut], &[]);
        }

        #[test]
        fn arbitrary_environment_values_never_panic(value in "\\PC{0,40}") {
            let _ = from_toml(MINIMAL, &[("REBALANCER_PLAN__MAX_MOVES_PER_RUN", &value), ("REBALANCER_CMS__PASSWORD", &value)]);
        }
    }

    #[test]
    fn journal_url_selects_postgresql_and_its_password_never_shows() {
        let env = |url: &str| Env::from_pairs([("REBALANCER_JOURNAL__URL", url)]);
        let sqlite =
            load_journal(None, None, &Env::from_pairs(Vec::<(String, String)>::new())).unwrap();
        assert!(
            matches!(sqlite, JournalLocation::Sqlite(ref p) if p.ends_with("rebalancer-journal.sqlite"))
        );
        let url = "postgres://app:hunter2@db:5432/j";
        let pg = load_journal(None, None, &env(url)).unwrap();
        assert!(pg.is_postgres());
        assert_eq!(pg.to_string(), "postgres://app:****@db:5432/j");
        assert!(!format!("{pg:?}").contains("hunter2"));
        let flag = load_journal(Some(PathBuf::from("x.sqlite")), None, &env(url)).unwrap();
        assert!(matches!(flag, JournalLocation::Sqlite(_)));
        let err = load_journal(None, None, &env("mysql://app:hunter2@db/j")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("journal.url"), "{text}");
        assert!(text.contains("REBALANCER_JOURNAL__URL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    /// `MINIMAL` with every inline secret removed.
    fn without_inline_secrets() -> String {
        let text = [
            "password = \"p-secret\"\n",
            "api_key = \"k-secret\"\n",
            "client_secret = \"s-secret\"\n",
            "refresh_token = \"r-secret\"\n",
        ]
        .iter()
        .fold(MINIMAL.to_owned(), |t, line| {
            assert!(t.contains(line), "{line}");
            t.replace(line, "")
        });
        text
    }

    /// `text` as `dir/c.toml`, loaded with `vars`.
    fn in_dir(dir: &Path, text: &str, vars: &[(&str, &str)]) -> Result<Settings, String> {
        let path = dir.join("c.toml");
        std::fs::write(&path, text).unwrap();
        load(&path, &env(vars))
            .map(|l| l.value)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn secrets_come_from_files_relative_to_the_config_file_or_absolute_from_the_env() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/cms"), "p-file\n").unwrap();
        std::fs::write(dir.path().join("secrets/webex"), "k-file\r\n").unwrap();
        std::fs::write(dir.path().join("secrets/zoho-secret"), "s-file").unwrap();
        let token = dir.path().join("secrets/zoho-token");
        std::fs::write(&token, "r-file\n\n").unwrap();
        let text = without_inline_secrets()
            .replace("[cms]\n", "[cms]\npassword_file = \"secrets/cms\"\n")
            .replace("[webex]\n", "[webex]\napi_key_file = \"secrets/webex\"\n")
            .replace(
                "[zoho]\n",
                "[zoho]\nclient_secret_file = \"secrets/zoho-secret\"\n",
            );
        let token = token.to_str().unwrap();
        let s = in_dir(
            dir.path(),
            &text,
            &[("REBALANCER_ZOHO__REFRESH_TOKEN_FILE", token)],
        )
        .unwrap();
        assert_eq!(s.cms.password.expose_secret(), "p-file");
        assert_eq!(s.webex.api_key.expose_secret(), "k-file");
        assert_eq!(s.zoho.client_secret.expose_secret(), "s-file");
        assert_eq!(
            s.zoho.refresh_token.expose_secret(),
            "r-file\n",
            "one trailing newline is dropped, no more"
        );
    }

    #[test]
    fn a_missing_or_empty_secret_file_names_the_key_the_path_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let text = without_inline_secrets()
            .replace("[cms]\n", "[cms]\npassword = \"p-secret\"\n")
            .replace("[webex]\n", "[webex]\napi_key_file = \"nowhere/webex\"\n")
            .replace(
                "[zoho]\n",
                "[zoho]\nclient_secret = \"s-secret\"\nrefresh_token_file = \"empty\"\n",
            );
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        let err = in_dir(dir.path(), &text, &[]).unwrap_err();
        let webex = dir.path().join("nowhere/webex");
        let empty = dir.path().join("empty");
        assert!(
            err.contains("2 problems")
                && err.contains("`webex.api_key_file`")
                && err.contains(&webex.display().to_string())
                && err.contains("No such file or directory")
                && err.contains("write the secret into it")
                && err.contains("`zoho.refresh_token_file`")
                && err.contains(&format!("{}, which is empty", empty.display())),
            "{err}"
        );
        assert!(!err.contains("-secret"), "{err}");
    }

    #[test]
    fn a_secret_set_inline_and_as_a_file_names_both_origins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cms");
        std::fs::write(&file, "p-file").unwrap();
        let err = in_dir(
            dir.path(),
            MINIMAL,
            &[("REBALANCER_CMS__PASSWORD_FILE", file.to_str().unwrap())],
        )
        .unwrap_err();
        assert!(
            err.contains("`cms.password` is set twice")
                && err.contains(&format!(
                    "inline by config file {}",
                    dir.path().join("c.toml").display()
                ))
                && err.contains("as a file by environment variable REBALANCER_CMS__PASSWORD_FILE"),
            "{err}"
        );
        assert!(
            !err.contains("p-secret") && !err.contains("p-file"),
            "{err}"
        );
    }

    #[test]
    fn every_missing_required_key_is_reported_in_one_error() {
        let text = MINIMAL
            .replace("username = \"u\"\n", "")
            .replace("api_key = \"k-secret\"\n", "")
            .replace("threshold_ids = [\"9\"]\n", "");
        let err = from_toml(&text, &[]).unwrap_err().to_string();
        for (key, var) in [
            ("cms.username", "REBALANCER_CMS__USERNAME"),
            ("webex.api_key", "REBALANCER_WEBEX__API_KEY"),
            ("zoho.threshold_ids", "REBALANCER_ZOHO__THRESHOLD_IDS"),
        ] {
            assert!(
                err.contains(&format!("`{key}` is missing")) && err.contains(var),
                "{key}: {err}"
            );
        }
        assert!(err.contains("3 problems"), "{err}");
        assert!(
            err.contains("REBALANCER_WEBEX__API_KEY_FILE"),
            "a missing secret names its file form too: {err}"
        );
    }

    #[test]
    fn an_empty_environment_variable_is_an_error_naming_it() {
        let err = from_toml(
            MINIMAL,
            &[
                ("REBALANCER_CMS__USERNAME", ""),
                ("REBALANCER_RUN__METRICS_ADDR", " "),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("environment variable REBALANCER_CMS__USERNAME: key `cms.username` is set but empty; unset REBALANCER_CMS__USERNAME")
                && err.contains("REBALANCER_RUN__METRICS_ADDR"),
            "{err}"
        );
        // Reported with the other problems of the same load.
        let err = from_toml(
            &MINIMAL.replace("threshold_ids = [\"9\"]\n", ""),
            &[("REBALANCER_WEBEX__BASE_URL", "")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("REBALANCER_WEBEX__BASE_URL")
                && err.contains("`zoho.threshold_ids` is missing"),
            "{err}"
        );
        // Whatever the mode: a replan of a snapshot refuses it too.
        let err = load_plan(None, &env(&[("REBALANCER_PLAN__PINS", "")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("REBALANCER_PLAN__PINS"), "{err}");
    }

    #[test]
    fn a_replan_ignores_the_connection_secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[cms]\npassword_file = \"missing\"\n").unwrap();
        load_plan(Some(&path), &Env::default()).unwrap();
    }

    #[test]
    fn the_journal_url_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("url");
        std::fs::write(&file, "postgres://app:hunter2@db:5432/j\n").unwrap();
        let vars = Env::from_pairs([("REBALANCER_JOURNAL__URL_FILE", file.to_str().unwrap())]);
        let pg = load_journal(None, None, &vars).unwrap();
        assert_eq!(pg.to_string(), "postgres://app:****@db:5432/j");
        std::fs::write(&file, "mysql://app:hunter2@db/j").unwrap();
        let err = load_journal(None, None, &vars).unwrap_err().to_string();
        assert!(
            err.contains(&format!("secret file {}", file.display()))
                && err.contains("REBALANCER_JOURNAL__URL_FILE")
                && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn problems_in_several_sections_are_reported_together() {
        let text = format!("{MINIMAL}[http]\ntimeout_secs = 0\n[fetch]\nconcurrency = 0\n");
        let err = from_toml(&text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("2 problems")
                && err.contains("http.timeout_secs")
                && err.contains("fetch.concurrency"),
            "{err}"
        );
    }

    #[test]
    fn metrics_addr_forms() {
        let ok = |t: &str| metrics_addr(t).unwrap().map(|a| a.to_string());
        assert_eq!(ok(""), None);
        assert_eq!(ok("127.0.0.1:9464").as_deref(), Some("127.0.0.1:9464"));
        assert_eq!(ok(":9464").as_deref(), Some("0.0.0.0:9464"));
        assert_eq!(ok("[::1]:9464").as_deref(), Some("[::1]:9464"));
        assert!(ok("localhost:9464").is_some());
        for (bad, says) in [
            ("9464", "no port"),
            ("0.0.0.0:http", "not a number"),
            ("h:70000", "not a number"),
            ("::1:9464", "not a host and a port"),
            ("no-such-host.invalid:9464", "cannot be resolved"),
        ] {
            let e = metrics_addr(bad).unwrap_err();
            assert!(e.contains(says) && e.contains(":9090"), "{bad}: {e}");
        }
    }
}
