//! `rebalancer sandbox`: run the fake CMS, Webex and Zoho on 127.0.0.1.
//!
//! Prints `LISTENING http://127.0.0.1:PORT` once it accepts connections and,
//! with `--write-config FILE`, first writes a config file that points every
//! client at it (with the sandbox's fake credentials). Runs until Ctrl-C.

use crate::input::World;
use crate::render;
use anyhow::Context;
use rebalancer_ops::connect;
use std::path::PathBuf;

pub async fn run(world: World, port: u16, write_config: Option<PathBuf>) -> anyhow::Result<u8> {
    let sb = connect::start_sandbox(&world, port).await?;
    if let Some(path) = &write_config {
        let toml = rebalancer_ops::connect::sandbox_config_toml(&sb)?;
        rebalancer_model::write_atomic(path, toml.as_bytes())?;
        tracing::info!(path = %path.display(), "sandbox config written");
    }
    render::emit(&format!("LISTENING {}", sb.base_url()))?;
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    sb.shutdown().await;
    Ok(0)
}
