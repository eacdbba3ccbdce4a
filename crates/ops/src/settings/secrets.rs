//! Secrets the way platforms deliver them: every secret key `KEY` also
//! accepts `KEY_file` (`cms.password_file`, `REBALANCER_CMS__PASSWORD_FILE`),
//! the path of a file that holds the secret: a Kubernetes Secret volume, a
//! systemd `LoadCredential=` file under `$CREDENTIALS_DIRECTORY`, a Docker
//! secret under /run/secrets.
//!
//! The rules, stated once here and in `config/default.toml`:
//! - the file's content is the secret, less one trailing newline (`\n` or
//!   `\r\n`); an empty file (or only blanks) is an error;
//! - a relative path is relative to the config file's directory when the
//!   config file names it, to the working directory when a variable does;
//! - a missing or unreadable file is a config error naming the key, the
//!   path, the OS error and the fix;
//! - `KEY` and `KEY_file` both set (by the config file or a variable; the
//!   built-in defaults do not count) is an error naming both origins;
//! - a file that any user can read (`o+r`), or that this process owns and
//!   its group can read (`g+r`), is read with a warning naming the key, the
//!   path and `chmod 600` (Kubernetes Secret volumes default to 0644;
//!   `defaultMode: 0400` fixes that). Group read of a file another user
//!   owns is how a non-root process reads a root-owned secret (a Secret
//!   volume with the pod's `fsGroup` is root-owned, mode 0440), and is not
//!   warned about.
//!
//! The secret's value is never part of an error or a log line.

use super::{Layered, Origin, SettingsError};
use secrecy::SecretString;
use std::path::{Path, PathBuf};

/// Every key that holds a secret. `journal.url` is one: a PostgreSQL URL
/// carries the database password.
pub(super) const SECRET_KEYS: &[&str] = &[
    "cms.password",
    "webex.api_key",
    "zoho.client_secret",
    "zoho.refresh_token",
    "journal.url",
];

/// A secret file larger than this is not a secret (a wrong path, most
/// likely) and is refused before it is read.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

pub(super) fn is_secret(key: &str) -> bool {
    SECRET_KEYS.contains(&key)
}

/// `cms.password` → `cms.password_file`.
pub(super) fn file_key(key: &str) -> String {
    format!("{key}_file")
}

/// A secret read from its file.
pub(super) struct FromFile {
    pub key: &'static str,
    pub value: SecretString,
    /// [`Origin::SecretFile`]: the file, and what named it.
    pub origin: Origin,
}

/// For each secret key of `sections`: the secrets read from files, and
/// every problem found (a key set twice, a file that cannot give its
/// secret).
pub(super) fn resolve(layered: &Layered, sections: &[&str]) -> (Vec<FromFile>, Vec<SettingsError>) {
    let mut read = Vec::new();
    let mut problems = Vec::new();
    for &key in SECRET_KEYS {
        let section = key.split('.').next().unwrap_or(key);
        if !sections.contains(&section) {
            continue;
        }
        let fkey = file_key(key);
        let Some(named_by) = layered.set_by(&fkey) else {
            continue;
        };
        if let Some(inline) = layered.set_by(key) {
            problems.push(SettingsError::SecretTwice {
                key: key.to_owned(),
                inline,
                file: named_by,
            });
            continue;
        }
        let written = match layered.config.get::<String>(&fkey) {
            Ok(text) if !text.trim().is_empty() => PathBuf::from(text),
            Ok(_) => {
                problems.push(SettingsError::Key {
                    origin: named_by,
                    key: fkey.clone(),
                    problem: format!(
                        "is empty; name the file that holds the secret, or remove `{fkey}` and set `{key}`"
                    ),
                });
                continue;
            }
            Err(_) => {
                problems.push(SettingsError::Key {
                    origin: named_by,
                    key: fkey.clone(),
                    problem:
                        "is not a path; write it as a string, e.g. \"/run/secrets/cms-password\""
                            .to_owned(),
                });
                continue;
            }
        };
        let path = resolve_path(&written, &named_by);
        match read_secret(&path) {
            Ok(value) => {
                warn_if_readable_by_others(key, &path);
                read.push(FromFile {
                    key,
                    value,
                    origin: Origin::SecretFile {
                        path,
                        named_by: Box::new(named_by),
                    },
                });
            }
            Err(problem) => problems.push(SettingsError::SecretFile {
                origin: named_by,
                key: fkey,
                path,
                problem,
            }),
        }
    }
    (read, problems)
}

/// A relative `path` is relative to the config file's directory when the
/// config file named it, to the working directory otherwise.
fn resolve_path(path: &Path, named_by: &Origin) -> PathBuf {
    match named_by {
        Origin::File(config) if path.is_relative() => config
            .parent()
            .map_or_else(|| path.to_owned(), |dir| dir.join(path)),
        _ => path.to_owned(),
    }
}

/// The secret in `path`, less one trailing newline; the error says what is
/// wrong with the file and how to fix it, never what it holds.
fn read_secret(path: &Path) -> Result<SecretString, String> {
    const FIX: &str =
        "write the secret into it (one line; a trailing newline is dropped), or fix the path";
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}; {FIX}"))?;
    if !meta.is_file() {
        return Err(format!("is not a file; {FIX}"));
    }
    if meta.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "is {} bytes, more than a secret can be ({MAX_SECRET_BYTES}); name the file that holds only the secret",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot be read: {e}; {FIX}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("is not UTF-8 text; {FIX}"))?;
    let secret = strip_one_newline(&text);
    if secret.trim().is_empty() {
        return Err(format!("is empty; {FIX}"));
    }
    Ok(SecretString::from(secret.to_owned()))
}

/// `text` less one trailing `\n` or `\r\n` (what `echo` and editors add).
fn strip_one_newline(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

/// Who besides its owner can read a secret file, when someone should
/// not: any user (`o+r`), or the file's group while this process owns the
/// file (`g+r` is then of no use to it). A group-readable file that
/// another user owns is how a process reads a secret it does not own (a
/// Kubernetes Secret volume with the pod's `fsGroup`: root-owned, mode
/// 0440; `root:rebalancer 0640` in /etc), so it is not warned about.
/// `own_uid` is this process's user when known; unknown, any `g+r` warns.
#[cfg_attr(not(unix), allow(dead_code))]
fn too_open(mode: u32, file_uid: u32, own_uid: Option<u32>) -> Option<&'static str> {
    if mode & 0o004 != 0 {
        Some("any user")
    } else if mode & 0o040 != 0 && own_uid.is_none_or(|own| own == file_uid) {
        Some("its group")
    } else {
        None
    }
}

/// A WARN naming the key, the path, the mode and `chmod 600` when the
/// secret file is [`too_open`]. The mode is the file's own, through
/// symlinks (a Kubernetes Secret volume's files are symlinks into
/// `..data`). This process's user is the owner of `/proc/self` (Linux);
/// where that is unknown, any group read warns.
#[cfg(unix)]
fn warn_if_readable_by_others(key: &str, path: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.mode() & 0o777;
    let own_uid = std::fs::metadata("/proc/self").ok().map(|m| m.uid());
    if let Some(who) = too_open(mode, meta.uid(), own_uid) {
        tracing::warn!(
            key,
            path = %path.display(),
            "the secret file {} of `{key}` can be read by {who} (mode {mode:04o}); run `chmod 600 {}` (Kubernetes Secret volumes default to 0644: set the volume's `defaultMode: 0400`, and the pod's `fsGroup` when it runs as non-root)",
            path.display(),
            path.display(),
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_key: &str, _path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_dropped_and_no_more() {
        assert_eq!(strip_one_newline("s3cret\n"), "s3cret");
        assert_eq!(strip_one_newline("s3cret\r\n"), "s3cret");
        assert_eq!(strip_one_newline("s3cret\n\n"), "s3cret\n");
        assert_eq!(strip_one_newline(" s3cret "), " s3cret ");
        assert_eq!(strip_one_newline("s3cret"), "s3cret");
    }

    #[test]
    fn readable_by_any_user_or_needlessly_by_the_group_is_too_open() {
        let (me, root) = (Some(1000), 0);
        assert_eq!(too_open(0o644, 1000, me), Some("any user"));
        assert_eq!(too_open(0o444, root, me), Some("any user"));
        assert_eq!(too_open(0o640, 1000, me), Some("its group"));
        assert_eq!(too_open(0o640, 1000, None), Some("its group"));
        // Group read of a file someone else owns is how this process reads
        // it (Kubernetes with fsGroup: root-owned 0440).
        assert_eq!(too_open(0o440, root, me), None);
        assert_eq!(too_open(0o640, root, me), None);
        assert_eq!(too_open(0o600, 1000, me), None);
        assert_eq!(too_open(0o400, 1000, me), None);
    }

    #[test]
    fn relative_paths_follow_who_named_them() {
        let from_file = Origin::File(PathBuf::from("/etc/rebalancer/config.toml"));
        assert_eq!(
            resolve_path(Path::new("secrets/cms"), &from_file),
            Path::new("/etc/rebalancer/secrets/cms")
        );
        assert_eq!(
            resolve_path(Path::new("/run/secrets/cms"), &from_file),
            Path::new("/run/secrets/cms")
        );
        let from_env = Origin::Env("REBALANCER_CMS__PASSWORD_FILE".into());
        assert_eq!(
            resolve_path(Path::new("secrets/cms"), &from_env),
            Path::new("secrets/cms")
        );
    }
}
