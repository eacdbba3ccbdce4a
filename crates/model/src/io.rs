//! File I/O for model files (snapshots, plans, and later the journal's
//! neighbours): bounded reads, atomic writes, the schema-version check that
//! runs before a full parse, and parse errors that name the file.
//!
//! Every function names the file in its error and says what to do; nothing
//! here knows what a snapshot or plan contains.

use crate::ModelError;
use serde::Deserialize;
use std::io::Read;
use std::path::Path;

/// Largest snapshot or plan file we read into memory (256 MiB). A file above
/// this is refused with [`ModelError::TooLarge`] rather than read unbounded.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Read a file into memory, refusing anything over [`MAX_FILE_BYTES`].
pub fn read_limited(path: &Path, what: &'static str) -> Result<Vec<u8>, ModelError> {
    let read_err = |source| ModelError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    if size > MAX_FILE_BYTES {
        return Err(ModelError::TooLarge {
            path: path.to_owned(),
            what,
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    Ok(bytes)
}

/// Write bytes atomically: temp file beside `path`, fsync, rename. A crash
/// or error leaves the old file (or none), never a half-written one. The
/// file is world-readable (0644): our outputs hold no secrets and are
/// meant to be shared (bug reports, replays).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        Some(std::fs::Permissions::from_mode(0o644))
    };
    #[cfg(not(unix))]
    let mode = None;
    write_with(path, bytes, mode, None)
}

/// Replace the existing file `path` atomically, as [`write_atomic`], but
/// keep its permissions and, on Unix, its owner and group (a config file
/// may hold secrets, be 0640 and readable only by a service's group): a
/// file whose owner cannot be kept (another user's, not run as root) is
/// refused, untouched. A symbolic link is followed: its target is
/// replaced, the link kept.
pub fn replace_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let read_err = |source| ModelError::Read {
        path: path.to_owned(),
        source,
    };
    let target = std::fs::canonicalize(path).map_err(read_err)?;
    let meta = std::fs::metadata(&target).map_err(read_err)?;
    #[cfg(unix)]
    let owner = {
        use std::os::unix::fs::MetadataExt;
        Some((meta.uid(), meta.gid()))
    };
    #[cfg(not(unix))]
    let owner = None;
    write_with(&target, bytes, Some(meta.permissions()), owner)
}

fn write_with(
    path: &Path,
    bytes: &[u8],
    mode: Option<std::fs::Permissions>,
    owner: Option<(u32, u32)>,
) -> Result<(), ModelError> {
    use std::io::Write;
    let write_err = |source| ModelError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    tmp.write_all(bytes).map_err(write_err)?;
    #[cfg(unix)]
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(tmp.as_file(), Some(uid), Some(gid)).map_err(write_err)?;
    }
    #[cfg(not(unix))]
    let _ = owner;
    // tempfile creates 0600.
    if let Some(mode) = mode {
        tmp.as_file().set_permissions(mode).map_err(write_err)?;
    }
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

/// Check `schema_version` before the full parse (`what` names the kind of
/// file, `regenerate` the `rebalancer` command that makes a fresh one), so a file of another
/// version gets a version error rather than a confusing field error.
pub fn check_schema_version(
    bytes: &[u8],
    path: &Path,
    what: &'static str,
    expected: u32,
    regenerate: &'static str,
) -> Result<(), ModelError> {
    #[derive(Deserialize)]
    struct Header {
        schema_version: Option<serde_json::Value>,
    }
    let header: Header =
        serde_json::from_slice(bytes).map_err(|e| parse_error(e, path, what, regenerate))?;
    match header.schema_version {
        None => Err(ModelError::Parse {
            path: path.to_owned(),
            what,
            detail: "missing field `schema_version`".into(),
            line: 1,
            column: 1,
            regenerate,
        }),
        Some(v) => match v.as_u64() {
            Some(n) if n == u64::from(expected) => Ok(()),
            Some(n) => Err(ModelError::SchemaVersion {
                path: path.to_owned(),
                what,
                found: n,
                expected,
                regenerate,
            }),
            None => Err(ModelError::Parse {
                path: path.to_owned(),
                what,
                detail: format!("field `schema_version` must be a whole number, found {v}"),
                line: 1,
                column: 1,
                regenerate,
            }),
        },
    }
}

/// A serde error as a [`ModelError::Parse`] naming the file, line and column.
pub fn parse_error(
    e: serde_json::Error,
    path: &Path,
    what: &'static str,
    regenerate: &'static str,
) -> ModelError {
    ModelError::Parse {
        path: path.to_owned(),
        what,
        detail: e.to_string(),
        line: e.line(),
        column: e.column(),
        regenerate,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_replaced_file_keeps_its_permissions_and_its_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        std::fs::write(&real, "a = 1\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        replace_atomic(&link, b"a = 2\n").unwrap();

        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "a = 2\n");
        let mode = std::fs::metadata(&real).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a secret-holding file stays private");

        // As root (CI), a file of another group keeps that group.
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata(&real).unwrap().uid() == 0 {
            std::os::unix::fs::chown(&real, Some(0), Some(1)).unwrap();
            replace_atomic(&real, b"a = 3\n").unwrap();
            let meta = std::fs::metadata(&real).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (0, 1), "the group is kept");
        }

        write_atomic(&real, b"b = 1\n").unwrap();
        let mode = std::fs::metadata(&real).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "an output is shared");
        assert!(replace_atomic(&dir.path().join("missing.toml"), b"").is_err());
    }
}
