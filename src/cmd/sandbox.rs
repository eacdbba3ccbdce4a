//! `rebalancer sandbox`: run the fake CMS, Webex and Zoho on 127.0.0.1.
//!
//! Prints `LISTENING http://127.0.0.1:PORT` once it accepts connections and,
//! with `--write-config FILE`, writes a config file that points every client
//! at it (with the sandbox's fake credentials). Runs until Ctrl-C.

use crate::cli::{SandboxArgs, WorldArgs};
use crate::render;
use crate::settings::Settings;
use anyhow::Context;
use rebalancer_sandbox::{Sandbox, SandboxConfig};
use std::fmt::Write as _;

pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let sb = start(&args.world, args.port).await?;
    if let Some(path) = &args.write_config {
        rebalancer_model::write_atomic(path, config_toml(&sb).as_bytes())?;
        tracing::info!(path = %path.display(), "sandbox config written");
    }
    render::emit(&format!("LISTENING {}", sb.base_url()))?;
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    sb.shutdown().await;
    Ok(())
}

/// Start a sandbox with the given world on `port` (0 = any free port).
pub async fn start(world: &WorldArgs, port: u16) -> anyhow::Result<Sandbox> {
    let cfg = SandboxConfig {
        seed: world.seed,
        agents: world.agents,
        leads: world.leads,
        ..SandboxConfig::default()
    };
    Sandbox::start(cfg, port).await.with_context(|| {
        format!("cannot start the sandbox on 127.0.0.1:{port}; pick another --port")
    })
}

/// Settings that point every client at `sb`; the process environment is
/// deliberately ignored so real credentials never meet the sandbox.
pub fn settings_for(sb: &Sandbox) -> anyhow::Result<Settings> {
    Ok(Settings::from_toml(
        &config_toml(sb),
        None,
        Some(Default::default()),
    )?)
}

/// A complete config file for `sb`.
pub fn config_toml(sb: &Sandbox) -> String {
    let world = sb.world();
    let creds = sb.credentials();
    let base = sb.base_url();
    let q = |s: &str| toml_string(s);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# rebalancer config for a sandbox at {base} (fake credentials)."
    );
    let _ = writeln!(
        t,
        "[cms]\nbase_url = {}\nusername = {}\npassword = {}\ncontact_center_id = {}\n",
        q(&base),
        q(&creds.cms_username),
        q(&creds.cms_password),
        world.contact_center_id
    );
    for c in &world.campaigns {
        let leads: Vec<String> = c.lead_ids.iter().map(u64::to_string).collect();
        let _ = writeln!(
            t,
            "[[cms.campaigns]]\nprocess_id = {}\ncampaign_id = {}\nlead_ids = [{}]\n",
            c.process_id,
            c.campaign_id,
            leads.join(", ")
        );
    }
    let _ = writeln!(
        t,
        "[webex]\nbase_url = {}\napi_key = {}\n",
        q(&base),
        q(&creds.webex_api_key)
    );
    let ids: Vec<String> = world.threshold_ids.iter().map(|s| q(s)).collect();
    let _ = writeln!(t, "[zoho]\naccounts_url = {}\napi_domain = {}\nclient_id = {}\nclient_secret = {}\nrefresh_token = {}\nmodule = {}\nthreshold_ids = [{}]",
        q(&base), q(&base), q(&creds.zoho_client_id), q(&creds.zoho_client_secret), q(&creds.zoho_refresh_token), q(&world.module), ids.join(", "));
    t
}

/// A TOML basic string (JSON string escaping is valid TOML).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}
