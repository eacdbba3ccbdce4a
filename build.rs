//! Build script of the `rebalancer` binary: records the git commit it is
//! built from as `REBALANCER_GIT_COMMIT` (for `--version`): the short hash,
//! with `-dirty` when tracked files had changes, or `unknown` when there is
//! no git, no repository (a source tarball), or the repository found is not
//! this tree's own (a tarball unpacked inside another repository).
//! `REBALANCER_BUILD_COMMIT`, when set, is used as is (a build from a
//! tarball or a container context that knows its commit).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `git -C dir ARGS`'s trimmed stdout, or `None` if git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

/// The commit of `dir`'s own repository, and the files whose change means
/// the commit or the dirty state may have changed.
fn from_git(dir: &Path) -> Option<(String, Vec<PathBuf>)> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    let hash = git(dir, &["rev-parse", "--short", "HEAD"])?;
    let dirty =
        git(dir, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let mut watch = Vec::new();
    let mut names = vec![
        "HEAD".to_owned(),
        "index".to_owned(),
        "packed-refs".to_owned(),
    ];
    if let Some(branch) = git(dir, &["rev-parse", "--symbolic-full-name", "HEAD"]) {
        if branch.starts_with("refs/") {
            names.push(branch);
        }
    }
    for name in names {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            if path.exists() {
                watch.push(path);
            }
        }
    }
    let commit = if dirty { format!("{hash}-dirty") } else { hash };
    Some((commit, watch))
}

fn main() {
    let dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    println!("cargo:rerun-if-env-changed=REBALANCER_BUILD_COMMIT");
    // The sources: an edit may make the tree dirty (or clean again).
    for path in ["build.rs", "Cargo.toml", "Cargo.lock", "src", "crates"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let given = std::env::var("REBALANCER_BUILD_COMMIT")
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let commit = match given {
        Some(c) => c,
        None => match from_git(&dir) {
            Some((commit, watch)) => {
                for path in watch {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
                commit
            }
            None => "unknown".to_owned(),
        },
    };
    println!("cargo:rustc-env=REBALANCER_GIT_COMMIT={commit}");
}
