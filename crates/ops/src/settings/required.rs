//! Required keys: the keys `config/default.toml` marks REQUIRED (no
//! default), checked before the sections are deserialised so that one run
//! names every missing key with its variable, instead of serde stopping at
//! the first.

use super::{env_name, secrets, Layered, Origin, SettingsError};
use std::path::Path;

/// Every key without a default, in the order of `config/default.toml`
/// (a test keeps the two in step). A secret among them is also satisfied
/// by its `_file` key.
pub(super) const REQUIRED: &[&str] = &[
    "cms.base_url",
    "cms.username",
    "cms.password",
    "cms.contact_center_id",
    "cms.campaigns",
    "webex.base_url",
    "webex.api_key",
    "zoho.client_id",
    "zoho.client_secret",
    "zoho.refresh_token",
    "zoho.threshold_ids",
];

/// One error per required key of `sections` that no layer sets.
pub(super) fn missing(layered: &Layered, sections: &[&str]) -> Vec<SettingsError> {
    REQUIRED
        .iter()
        .filter(|key| sections.iter().any(|s| key.starts_with(&format!("{s}."))))
        .filter(|key| {
            let set = layered.config.get::<config::Value>(key).is_ok();
            let as_file =
                secrets::is_secret(key) && layered.set_by(&secrets::file_key(key)).is_some();
            !set && !as_file
        })
        .map(|key| missing_key(layered.layers.file.as_deref(), key))
        .collect()
}

/// `key` is missing: where to set it (the file, the variable, and for a
/// secret its `_file` forms).
pub(super) fn missing_key(file: Option<&Path>, key: &str) -> SettingsError {
    let place = file.map_or("a config file (--config)".to_owned(), |p| {
        p.display().to_string()
    });
    let mut problem = format!("is missing; set it in {place} or as {}", env_name(key));
    if secrets::is_secret(key) {
        let file_key = secrets::file_key(key);
        problem.push_str(&format!(
            ", or name a file holding it with `{file_key}` or {}",
            env_name(&file_key)
        ));
    }
    SettingsError::Key {
        origin: Origin::Nowhere(file.map(Path::to_owned)),
        key: key.to_owned(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::DEFAULT_TOML;

    /// The keys `config/default.toml` marks REQUIRED: a `# REQUIRED` comment
    /// followed (before the next key) by a commented-out `# key = …` or
    /// `# [[section.key]]`.
    fn documented_required() -> Vec<String> {
        let mut out = Vec::new();
        let mut section = String::new();
        let mut pending = false;
        for line in DEFAULT_TOML.lines() {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
            } else if line.starts_with("# REQUIRED") {
                pending = true;
            } else if pending {
                let commented = line.trim_start_matches("# ");
                let key = if let Some(table) = commented.strip_prefix("[[") {
                    table.trim_end_matches("]]").to_owned()
                } else if let Some((name, _)) = commented.split_once(" = ") {
                    format!("{section}.{name}")
                } else {
                    continue;
                };
                out.push(key);
                pending = false;
            }
        }
        out
    }

    #[test]
    fn the_required_keys_are_those_the_defaults_mark_required() {
        assert_eq!(documented_required(), REQUIRED);
    }
}
