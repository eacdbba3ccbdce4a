//! `rebalancer man [--out DIR]`: the man page (clap_mangen), roff on
//! stdout; with `--out`, `rebalancer.1` and one page per visible
//! subcommand (`rebalancer-plan.1`, ...) written into DIR.

use crate::exit::CannotWrite;
use std::path::Path;

/// Print the main page of `cmd`, or write every page into `out`.
pub fn run(cmd: clap::Command, out: Option<&Path>) -> anyhow::Result<u8> {
    let Some(dir) = out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        crate::render::emit(&String::from_utf8_lossy(&page))?;
        return Ok(0);
    };
    let cannot = |source| CannotWrite {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(cannot)?;
    clap_mangen::generate_to(cmd, dir).map_err(cannot)?;
    tracing::info!(dir = %dir.display(), "man pages written");
    Ok(0)
}
