//! `rebalancer man [--out DIR]`: the man page (clap_mangen), roff on
//! stdout; with `--out`, `rebalancer.1` and one page per visible
//! subcommand (`rebalancer-plan.1`, ...) written into DIR. The commands
//! whose `--help` ends with the exit-code table get it as an `EXIT STATUS`
//! section (one tagged paragraph per code of `exit::CODES`) instead of the
//! pre-wrapped text, which roff would refill.

use crate::exit::{CannotWrite, CODES};
use clap::Command;
use std::path::Path;

/// Print the main page of `cmd`, or write every page into `out`.
pub fn run(cmd: Command, out: Option<&Path>) -> anyhow::Result<u8> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = out else {
        let (_, page) = page(cmd)?;
        crate::render::emit(&String::from_utf8_lossy(&page))?;
        return Ok(0);
    };
    let cannot = |source| CannotWrite {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(cannot)?;
    let mut pages = Vec::new();
    collect(cmd, &mut pages)?;
    for (name, page) in pages {
        let path = dir.join(name);
        std::fs::write(&path, page).map_err(|source| CannotWrite {
            path: path.display().to_string(),
            source,
        })?;
    }
    tracing::info!(dir = %dir.display(), "man pages written");
    Ok(0)
}

/// The pages of `cmd` and of its visible subcommands, depth first.
fn collect(cmd: Command, pages: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        collect(sub, pages)?;
    }
    pages.push(page(cmd)?);
    Ok(())
}

/// One page: its file name and roff text.
fn page(cmd: Command) -> std::io::Result<(String, Vec<u8>)> {
    let exit_table = cmd.get_after_long_help().is_some();
    let cmd = cmd.after_long_help(Option::<&'static str>::None);
    let man = clap_mangen::Man::new(cmd);
    let mut page = Vec::new();
    man.render(&mut page)?;
    if exit_table {
        page.extend_from_slice(exit_status().as_bytes());
    }
    Ok((man.get_filename(), page))
}

/// The `EXIT STATUS` section: one tagged paragraph per exit code.
fn exit_status() -> String {
    let mut out = String::from(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in CODES {
        out.push_str(&format!(".TP\n\\fB{code}\\fR\n{}\n", escape(meaning)));
    }
    out
}

/// Text as a roff line: backslashes and hyphens escaped, a leading `.` or
/// `'` kept from being read as a request.
fn escape(text: &str) -> String {
    let body = text.replace('\\', "\\e").replace('-', "\\-");
    if body.starts_with(['.', '\'']) {
        format!("\\&{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_text_is_escaped() {
        assert_eq!(escape("a-b \\x"), "a\\-b \\ex");
        assert_eq!(escape(".start"), "\\&.start");
    }
}
