//! Configuration: `config/default.toml` (compiled in) ← the user's file ←
//! `REBALANCER_<SECTION>__<KEY>` environment variables, read with the
//! `config` crate into [`Settings`], then checked ([`Settings::validate`])
//! and turned into the typed options of the library crates.
//!
//! Every error names the key (and the file when there is one) and says what
//! to put there. Secrets stay `SecretString` from the moment they are read.

use rebalancer_fetcher::{
    CampaignSpec, FetchOptions, FetchProgress, IdentityMap, DEFAULT_DEADLINE,
    DEFAULT_MIN_WEBEX_COVERAGE,
};
use rebalancer_model::SnapshotSource;
use rebalancer_optimizer::PlanConfig;
use rebalancer_upstream::{BaseUrl, CmsConfig, HttpSettings, WebexConfig, ZohoConfig};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The compiled-in defaults; also the documentation of every key.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Prefix of environment overrides: `REBALANCER_CMS__PASSWORD`.
pub const ENV_PREFIX: &str = "REBALANCER";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {path} not found; pass an existing file to --config")]
    NotFound { path: PathBuf },
    #[error("config{}: {detail}", at(.path))]
    Invalid {
        path: Option<PathBuf>,
        detail: String,
    },
    #[error("config{}: key `{key}` {problem}", at(.path))]
    Key {
        path: Option<PathBuf>,
        key: String,
        problem: String,
    },
    #[error("identity file {path}: {detail}; see fetch.identity_file in config/default.toml for the format")]
    Identity { path: PathBuf, detail: String },
}

fn at(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" {}", p.display()))
        .unwrap_or_default()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub cms: CmsSettings,
    pub webex: WebexSettings,
    pub zoho: ZohoSettings,
    pub http: HttpKeys,
    pub fetch: FetchKeys,
    pub plan: PlanConfig,
    /// The file the settings came from, for error messages.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmsSettings {
    pub base_url: String,
    pub username: String,
    pub password: SecretString,
    pub contact_center_id: u64,
    pub page_size: u32,
    pub ca_file: Option<PathBuf>,
    pub campaigns: Vec<CampaignKeys>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignKeys {
    pub process_id: u64,
    pub campaign_id: u64,
    pub lead_ids: Vec<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebexSettings {
    pub base_url: String,
    pub api_key: SecretString,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZohoSettings {
    pub accounts_url: String,
    pub api_domain: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub refresh_token: SecretString,
    pub api_version: String,
    pub module: String,
    pub threshold_ids: Vec<String>,
    pub per_page: u32,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpKeys {
    pub timeout_secs: u64,
    pub connect_timeout_secs: u64,
    pub max_retries: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub max_body_bytes: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchKeys {
    pub concurrency: usize,
    pub strict: bool,
    pub identity_file: Option<PathBuf>,
}

impl Settings {
    /// Load defaults ← `path` ← the process environment.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        Self::load_with_env(path, None)
    }

    /// As [`Settings::load`], with an explicit environment (for tests).
    pub fn load_with_env(
        path: &Path,
        env: Option<BTreeMap<String, String>>,
    ) -> Result<Settings, SettingsError> {
        if !path.is_file() {
            return Err(SettingsError::NotFound {
                path: path.to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| SettingsError::Invalid {
            path: Some(path.to_owned()),
            detail: format!("cannot read it: {e}"),
        })?;
        Self::from_toml(&text, Some(path), env)
    }

    /// Parse settings from TOML text laid over the defaults.
    pub fn from_toml(
        text: &str,
        path: Option<&Path>,
        env: Option<BTreeMap<String, String>>,
    ) -> Result<Settings, SettingsError> {
        let owned = path.map(Path::to_owned);
        let mut settings: Settings = layered(text, env)
            .and_then(|c| c.try_deserialize())
            .map_err(|e| config_error(e, &owned))?;
        settings.path = owned;
        settings.validate()?;
        Ok(settings)
    }

    /// Only the `[plan]` section (defaults ← file ← environment), for
    /// replanning a saved snapshot without upstream credentials.
    pub fn load_plan(path: &Path) -> Result<PlanConfig, SettingsError> {
        #[derive(Deserialize)]
        struct PlanOnly {
            plan: PlanConfig,
        }
        let owned = Some(path.to_owned());
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SettingsError::NotFound {
                path: path.to_owned(),
            },
            _ => SettingsError::Invalid {
                path: owned.clone(),
                detail: format!("cannot read it: {e}"),
            },
        })?;
        let only: PlanOnly = layered(&text, None)
            .and_then(|c| c.try_deserialize())
            .map_err(|e| config_error(e, &owned))?;
        Ok(only.plan)
    }

    /// The compiled-in `[plan]` defaults (for `--snapshot` and `--sandbox`
    /// runs without a config file).
    pub fn default_plan() -> PlanConfig {
        #[derive(Deserialize)]
        struct PlanOnly {
            plan: PlanConfig,
        }
        layered("", Some(BTreeMap::new()))
            .and_then(|c| c.try_deserialize::<PlanOnly>())
            .map(|p| p.plan)
            .expect("config/default.toml has a valid [plan] section")
    }

    fn key_error(&self, key: &str, problem: impl Into<String>) -> SettingsError {
        SettingsError::Key {
            path: self.path.clone(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// Checks serde cannot make: URLs, non-empty lists, sane numbers.
    pub fn validate(&self) -> Result<(), SettingsError> {
        for (key, value) in [
            ("cms.base_url", &self.cms.base_url),
            ("webex.base_url", &self.webex.base_url),
            ("zoho.accounts_url", &self.zoho.accounts_url),
            ("zoho.api_domain", &self.zoho.api_domain),
        ] {
            parse_base_url(value).map_err(|p| self.key_error(key, p))?;
        }
        if self.cms.page_size == 0 {
            return Err(self.key_error("cms.page_size", "must be at least 1"));
        }
        if self.cms.campaigns.is_empty() {
            return Err(self.key_error(
                "cms.campaigns",
                "is empty; add at least one [[cms.campaigns]] table with process_id, campaign_id and lead_ids",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.cms.campaigns.iter().enumerate() {
            if c.lead_ids.is_empty() {
                return Err(self.key_error(
                    &format!("cms.campaigns[{i}].lead_ids"),
                    format!(
                        "is empty for campaign {}; list the leads to rebalance",
                        c.campaign_id
                    ),
                ));
            }
            for &l in &c.lead_ids {
                if !seen.insert((c.campaign_id, l)) {
                    return Err(self.key_error(
                        &format!("cms.campaigns[{i}].lead_ids"),
                        format!("lists lead {l} of campaign {} twice", c.campaign_id),
                    ));
                }
            }
        }
        if self.zoho.threshold_ids.is_empty() {
            return Err(self.key_error(
                "zoho.threshold_ids",
                "is empty; list the assignment threshold ids that cap the agents",
            ));
        }
        if !(1..=200).contains(&self.zoho.per_page) {
            return Err(self.key_error(
                "zoho.per_page",
                "must be between 1 and 200 (Zoho's maximum)",
            ));
        }
        if self.fetch.concurrency == 0 {
            return Err(self.key_error("fetch.concurrency", "must be at least 1"));
        }
        if self.http.timeout_secs == 0 {
            return Err(self.key_error("http.timeout_secs", "must be at least 1"));
        }
        Ok(())
    }

    fn http(&self, ca_file: &Option<PathBuf>) -> HttpSettings {
        HttpSettings {
            timeout: Duration::from_secs(self.http.timeout_secs),
            connect_timeout: Duration::from_secs(self.http.connect_timeout_secs.max(1)),
            max_retries: self.http.max_retries,
            backoff_initial: Duration::from_millis(self.http.backoff_initial_ms),
            backoff_max: Duration::from_millis(
                self.http.backoff_max_ms.max(self.http.backoff_initial_ms),
            ),
            max_body_bytes: self.http.max_body_bytes,
            ca_file: ca_file.clone(),
            ..HttpSettings::default()
        }
    }

    pub fn cms_config(&self) -> CmsConfig {
        CmsConfig {
            base_url: parse_base_url(&self.cms.base_url).expect("validated"),
            username: self.cms.username.clone(),
            password: self.cms.password.clone(),
            contact_center_id: self.cms.contact_center_id,
            page_size: self.cms.page_size,
            http: self.http(&self.cms.ca_file),
        }
    }

    pub fn webex_config(&self) -> WebexConfig {
        WebexConfig {
            base_url: parse_base_url(&self.webex.base_url).expect("validated"),
            api_key: self.webex.api_key.clone(),
            http: self.http(&self.webex.ca_file),
        }
    }

    pub fn zoho_config(&self) -> ZohoConfig {
        ZohoConfig {
            accounts_url: parse_base_url(&self.zoho.accounts_url).expect("validated"),
            api_domain: parse_base_url(&self.zoho.api_domain).expect("validated"),
            client_id: self.zoho.client_id.clone(),
            client_secret: self.zoho.client_secret.clone(),
            refresh_token: self.zoho.refresh_token.clone(),
            api_version: self.zoho.api_version.clone(),
            module: self.zoho.module.clone(),
            per_page: self.zoho.per_page,
            http: self.http(&self.zoho.ca_file),
        }
    }

    /// Fetch options, reading the identity file if one is configured.
    pub fn fetch_options(&self, description: &str) -> Result<FetchOptions, SettingsError> {
        let identity = match &self.fetch.identity_file {
            Some(path) => load_identity_file(path)?,
            None => IdentityMap::new(),
        };
        Ok(FetchOptions {
            campaigns: self
                .cms
                .campaigns
                .iter()
                .map(|c| CampaignSpec {
                    process_id: c.process_id,
                    campaign_id: c.campaign_id,
                    lead_ids: c.lead_ids.clone(),
                })
                .collect(),
            threshold_ids: self.zoho.threshold_ids.clone(),
            concurrency: self.fetch.concurrency,
            strict: self.fetch.strict,
            identity,
            source: SnapshotSource {
                description: description.to_owned(),
                cms_base_url: self.cms.base_url.clone(),
                webex_base_url: self.webex.base_url.clone(),
                zoho_api_domain: self.zoho.api_domain.clone(),
                zoho_module: self.zoho.module.clone(),
                threshold_ids: self.zoho.threshold_ids.clone(),
            },
            deadline: DEFAULT_DEADLINE,
            min_webex_coverage: DEFAULT_MIN_WEBEX_COVERAGE,
            progress: FetchProgress::default(),
        })
    }
}

/// defaults ← `text` ← environment (`env`, or the process environment).
fn layered(
    text: &str,
    env: Option<BTreeMap<String, String>>,
) -> Result<config::Config, config::ConfigError> {
    let mut environment = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("_")
        .separator("__")
        .list_separator(",")
        .try_parsing(true);
    for key in LIST_KEYS {
        environment = environment.with_list_parse_key(key);
    }
    if let Some(env) = env {
        environment = environment.source(Some(env.into_iter().collect()));
    }
    config::Config::builder()
        .add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ))
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(environment)
        .build()
}

/// Keys whose environment values are comma-separated lists.
const LIST_KEYS: &[&str] = &[
    "zoho.threshold_ids",
    "plan.frozen_agents",
    "plan.frozen_leads",
    "plan.exclude_agents",
    "plan.exclude_pairs",
    "plan.pins",
    "plan.set_allowance",
];

/// A base URL is scheme + host (+ port, + optional path prefix), http or https,
/// with no credentials, query or fragment; plain http only to loopback.
fn parse_base_url(value: &str) -> Result<BaseUrl, String> {
    BaseUrl::parse(value).map_err(|e| e.to_string())
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

/// Turn a `config` error into one that names the key and the file.
fn config_error(e: config::ConfigError, path: &Option<PathBuf>) -> SettingsError {
    let detail = e.to_string();
    // `config` reports an absent key as `missing configuration field "a.b"`.
    if let Some(key) = detail
        .strip_prefix("missing configuration field \"")
        .and_then(|r| r.split('"').next())
    {
        return SettingsError::Key {
            path: path.clone(),
            key: key.to_owned(),
            problem: format!("is missing; set it in the file or as {}", env_name(key)),
        };
    }
    SettingsError::Invalid {
        path: path.clone(),
        detail: format!("{detail}; see config/default.toml for every key and its type"),
    }
}

/// The environment variable that overrides `key` (`cms.password` →
/// `REBALANCER_CMS__PASSWORD`).
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}_{}", key.replace('.', "__").to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

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

    fn env(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn default_toml_plan_section_matches_the_code_defaults() {
        assert_eq!(Settings::default_plan(), PlanConfig::default());
    }

    #[test]
    fn plan_lists_come_from_env() {
        let s = Settings::from_toml(
            MINIMAL,
            None,
            env(&[("REBALANCER_PLAN__FROZEN_AGENTS", "Anna,bob")]),
        )
        .unwrap();
        assert_eq!(s.plan.frozen_agents, ["Anna", "bob"]);
    }

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let s = Settings::from_toml(MINIMAL, None, env(&[])).unwrap();
        assert_eq!(s.cms.page_size, 500);
        assert_eq!(s.zoho.api_version, "v8");
        assert_eq!(s.zoho.per_page, 200);
        assert_eq!(s.fetch.concurrency, 16);
        assert_eq!(s.http.max_retries, 4);
    }

    #[test]
    fn environment_overrides_file_including_lists() {
        let s = Settings::from_toml(
            MINIMAL,
            None,
            env(&[
                ("REBALANCER_CMS__PASSWORD", "from-env"),
                ("REBALANCER_ZOHO__THRESHOLD_IDS", "111,222"),
                ("REBALANCER_FETCH__CONCURRENCY", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(s.cms.password.expose_secret(), "from-env");
        assert_eq!(s.zoho.threshold_ids, ["111", "222"]);
        assert_eq!(s.fetch.concurrency, 3);
    }

    #[test]
    fn production_example_loads_with_secrets_from_env() {
        let text = include_str!("../config/production.example.toml");
        let s = Settings::from_toml(
            text,
            None,
            env(&[
                ("REBALANCER_CMS__PASSWORD", "a"),
                ("REBALANCER_WEBEX__API_KEY", "b"),
                ("REBALANCER_ZOHO__CLIENT_SECRET", "c"),
                ("REBALANCER_ZOHO__REFRESH_TOKEN", "d"),
            ]),
        )
        .unwrap();
        assert_eq!(s.cms.campaigns.len(), 2);
    }

    #[test]
    fn missing_secret_names_key_and_variable() {
        let err = Settings::from_toml(
            &MINIMAL.replace("api_key = \"k-secret\"", ""),
            None,
            env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("webex.api_key") && err.contains("REBALANCER_WEBEX__API_KEY"),
            "{err}"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = Settings::from_toml(MINIMAL, None, env(&[])).unwrap();
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
        ] {
            let err = Settings::from_toml(&MINIMAL.replace(from, to), None, env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
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
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let _ = Settings::from_toml(&text, None, env(&[]));
        }

        #[test]
        fn truncated_config_never_panics(cut in 0usize..400) {
            let cut = MINIMAL.char_indices().map(|(i, _)| i).take_while(|&i| i <= cut).last().unwrap_or(0);
            let _ = Settings::from_toml(&MINIMAL[..cut], None, env(&[]));
        }

        #[test]
        fn mutated_config_never_panics(pos in 0usize..400, byte in proptest::prelude::any::<u8>()) {
            let mut bytes = MINIMAL.as_bytes().to_vec();
            let pos = pos % bytes.len();
            bytes[pos] = byte;
            if let Ok(text) = String::from_utf8(bytes) {
                let _ = Settings::from_toml(&text, None, env(&[]));
            }
        }
    }
}
