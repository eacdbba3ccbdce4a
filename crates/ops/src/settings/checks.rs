//! The checks serde cannot make, one per section (`Checker::cms`,
//! `plan`, ...), each naming its key and where it was set; `[plan]`'s
//! ranges are the optimizer's `PlanConfig::validate`, the integer bounds
//! the [`BOUNDS`](super::BOUNDS) table.

use super::*;

/// Checks serde cannot make, each naming its key and origin.
pub(super) struct Checker<'a> {
    pub(super) layered: &'a Layered,
}

impl Checker<'_> {
    pub(super) fn fail(&self, key: &str, problem: impl Into<String>) -> SettingsError {
        SettingsError::Key {
            origin: self.layered.origin_of(key),
            key: key.to_owned(),
            problem: problem.into(),
        }
    }

    /// `value` of `key` within its [`BOUNDS`] entry.
    pub(super) fn within(&self, key: &str, value: u64) -> Result<(), SettingsError> {
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
    pub(super) fn all_within<const N: usize>(
        &self,
        values: [(&str, u64); N],
    ) -> Result<(), SettingsError> {
        values
            .into_iter()
            .try_for_each(|(key, value)| self.within(key, value))
    }

    pub(super) fn connection(&self, s: &Settings) -> Result<(), SettingsError> {
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

    pub(super) fn http(&self, h: &HttpKeys) -> Result<(), SettingsError> {
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

    pub(super) fn fetch(&self, f: &FetchKeys) -> Result<(), SettingsError> {
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

    /// The applier's own rules for the options `[apply]` (with `[plan]`'s
    /// `max_unassign_share` and `[http]`'s retries) make: the same
    /// `ApplyConfig::validate` every run asks before its first write.
    pub(super) fn applier(
        &self,
        a: &ApplyKeys,
        p: &PlanConfig,
        h: &HttpKeys,
    ) -> Result<(), SettingsError> {
        match a.apply_config(p, h, false).validate() {
            Err(rebalancer_applier::ApplyError::InvalidConfig { key, detail }) => {
                Err(self.fail(key, detail))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn apply(&self, a: &ApplyKeys) -> Result<(), SettingsError> {
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
    pub(super) fn journal(&self, j: &JournalKeys) -> Result<(), SettingsError> {
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

    /// `[run]`: the schedule and flap guard are read by
    /// `schedule.rs`, here as when `run` starts (a config with no schedule
    /// is fine until `run` without `--once` needs one).
    pub(super) fn run(&self, r: &RunKeys) -> Result<(), SettingsError> {
        use crate::schedule::{self, Flags};
        let once = Flags {
            once: true,
            ..Flags::default()
        };
        schedule::configured(&once, r)
            .and_then(|_| schedule::min_move_interval(r))
            .and_then(|_| crate::approval::Approval::from_keys(r).map(|_| ()))
            .and_then(|_| crate::approval::poll(r).map(|_| ()))
            .map_err(|e| self.fail(&e.what, format!("= {:?} {}", e.value, e.problem)))?;
        self.within("run.approval_large_moves", r.approval_large_moves)?;
        metrics_addr(&r.metrics_addr)
            .map(|_| ())
            .map_err(|problem| self.fail("run.metrics_addr", problem))
    }

    /// `[console]`: its address, session length and users, by
    /// `console.rs` (a `token_sha256_file` relative to the config file).
    pub(super) fn console(&self, c: &ConsoleKeys) -> Result<(), SettingsError> {
        let dir = self
            .layered
            .layers
            .file
            .as_deref()
            .map_or_else(|| PathBuf::from("."), config_dir);
        crate::console::ConsoleSettings::from_keys(c, &dir)
            .map(|_| ())
            .map_err(|p| self.fail(&p.key, p.problem))
    }

    /// `[plan]`'s ranges are the optimizer's rule (`PlanConfig::validate`);
    /// the integer bounds are in [`BOUNDS`].
    pub(super) fn plan(&self, p: &PlanConfig) -> Result<(), SettingsError> {
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
