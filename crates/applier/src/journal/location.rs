//! [`JournalLocation`]: where the journal lives, a SQLite file on this host
//! or a PostgreSQL database (`journal.url`). It is shown only through
//! [`mask_url`] (the upstream crate's one masking function, re-exported
//! here), which hides the password a PostgreSQL URL or `key=value` string
//! may hold, whatever characters it has.

use std::fmt;
use std::path::{Path, PathBuf};

pub use rebalancer_upstream::mask_url;
use secrecy::{ExposeSecret, SecretString};

/// Where the journal is. `Display` never shows a password.
#[derive(Clone, Debug)]
pub enum JournalLocation {
    /// A SQLite file (`apply.journal`, or `--journal`).
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`journal.url`), URL
    /// (`postgres://user:pass@host:port/db`) or `key=value` form.
    Postgres(SecretString),
}

impl JournalLocation {
    /// The configuration key that names this location, for fixes.
    pub fn key(&self) -> &'static str {
        match self {
            JournalLocation::Sqlite(_) => "apply.journal",
            JournalLocation::Postgres(_) => "journal.url",
        }
    }

    /// Whether this is a PostgreSQL journal.
    pub fn is_postgres(&self) -> bool {
        matches!(self, JournalLocation::Postgres(_))
    }
}

impl fmt::Display for JournalLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalLocation::Sqlite(path) => write!(f, "{}", path.display()),
            JournalLocation::Postgres(url) => f.write_str(&mask_url(url.expose_secret())),
        }
    }
}

impl From<PathBuf> for JournalLocation {
    fn from(path: PathBuf) -> Self {
        JournalLocation::Sqlite(path)
    }
}

impl From<&PathBuf> for JournalLocation {
    fn from(path: &PathBuf) -> Self {
        JournalLocation::Sqlite(path.clone())
    }
}

impl From<&Path> for JournalLocation {
    fn from(path: &Path) -> Self {
        JournalLocation::Sqlite(path.to_path_buf())
    }
}

impl From<&JournalLocation> for JournalLocation {
    fn from(location: &JournalLocation) -> Self {
        location.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            (
                "postgres://app:s3cret@db.example:5432/journal",
                "postgres://app:****@db.example:5432/journal",
            ),
            (
                "postgresql://app:p@ss:w@rd@10.0.0.1/j?sslmode=disable",
                "postgresql://app:****@10.0.0.1/j?sslmode=disable",
            ),
            ("postgres://app@host/db", "postgres://app@host/db"),
            (
                "postgres://host/db?user=a&password=s3cret&x=1",
                "postgres://host/db?user=a&password=****&x=1",
            ),
            (
                "host=h user=u password=s3cret dbname=j",
                "host=h user=u password=**** dbname=j",
            ),
            (
                "host=h password='s3 cret' dbname=j",
                "host=h password=**** dbname=j",
            ),
            (
                "postgres://rebalancer:Zx9/Kq+s3cret@db.internal:5432/rebalancer",
                "postgres://rebalancer:****@db.internal:5432/rebalancer",
            ),
        ] {
            assert_eq!(mask_url(url), shown);
            let location = JournalLocation::Postgres(url.to_string().into());
            assert!(!location.to_string().contains("s3"), "{location}");
            assert!(!format!("{location:?}").contains("s3"), "{location:?}");
        }
        let file = JournalLocation::from(PathBuf::from("j.sqlite"));
        assert_eq!(file.to_string(), "j.sqlite");
        assert_eq!(file.key(), "apply.journal");
    }
}
