//! `rebalancer sandbox`: run the fake CMS, Webex and Zoho on 127.0.0.1.
//!
//! Prints `LISTENING http://127.0.0.1:PORT` once it accepts connections and,
//! with `--write-config FILE`, first writes a config file that points every
//! client at it (with the sandbox's fake credentials). Runs until Ctrl-C.

use crate::input::{self, World};
use crate::render;
use anyhow::Context;
use rebalancer_sandbox::Sandbox;
use std::path::PathBuf;

pub async fn run(world: World, port: u16, write_config: Option<PathBuf>) -> anyhow::Result<u8> {
    let sb = input::start_sandbox(&world, port).await?;
    if let Some(path) = &write_config {
        rebalancer_model::write_atomic(path, config_toml(&sb).as_bytes())?;
        tracing::info!(path = %path.display(), "sandbox config written");
    }
    render::emit(&format!("LISTENING {}", sb.base_url()))?;
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    sb.shutdown().await;
    Ok(0)
}

/// A complete config file for `sb`, built as a TOML document.
pub fn config_toml(sb: &Sandbox) -> String {
    use toml::{Table, Value};
    let world = sb.world();
    let creds = sb.credentials();
    let base = sb.base_url();
    let table = |pairs: Vec<(&str, Value)>| -> Value {
        Value::Table(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    };
    let s = |v: &str| Value::String(v.to_owned());
    let int = |v: u64| Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    let campaigns: Vec<Value> = world
        .campaigns
        .iter()
        .map(|c| {
            table(vec![
                ("process_id", int(c.process_id)),
                ("campaign_id", int(c.campaign_id)),
                (
                    "lead_ids",
                    Value::Array(c.lead_ids.iter().map(|&l| int(l)).collect()),
                ),
            ])
        })
        .collect();
    let mut doc = Table::new();
    doc.insert(
        "cms".into(),
        table(vec![
            ("base_url", s(&base)),
            ("username", s(&creds.cms_username)),
            ("password", s(&creds.cms_password)),
            ("contact_center_id", int(world.contact_center_id)),
            ("campaigns", Value::Array(campaigns)),
        ]),
    );
    doc.insert(
        "webex".into(),
        table(vec![
            ("base_url", s(&base)),
            ("api_key", s(&creds.webex_api_key)),
        ]),
    );
    doc.insert(
        "zoho".into(),
        table(vec![
            ("accounts_url", s(&base)),
            ("api_domain", s(&base)),
            ("client_id", s(&creds.zoho_client_id)),
            ("client_secret", s(&creds.zoho_client_secret)),
            ("refresh_token", s(&creds.zoho_refresh_token)),
            ("module", s(&world.module)),
            (
                "threshold_ids",
                Value::Array(world.threshold_ids.iter().map(|t| s(t)).collect()),
            ),
        ]),
    );
    format!(
        "# rebalancer config for a sandbox at {base} (fake credentials).\n{}",
        toml::to_string(&doc).expect("a TOML table always serialises")
    )
}
