//! `rebalancer completions SHELL`: a shell completion script on stdout
//! (clap_complete), for bash, zsh, fish, PowerShell and Elvish.

use clap_complete::Shell;

/// Print the completion script of `cmd` for `shell`.
pub fn run(mut cmd: clap::Command, shell: Shell) -> anyhow::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "rebalancer", &mut script);
    crate::render::emit(&String::from_utf8_lossy(&script))?;
    Ok(0)
}
