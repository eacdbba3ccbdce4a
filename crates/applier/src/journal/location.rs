//! [`JournalLocation`]: where the journal lives, a SQLite file on this host
//! or a PostgreSQL database (`journal.url`), and [`mask_url`], which hides
//! the password a PostgreSQL URL may hold wherever the location is shown.

use std::fmt;
use std::path::{Path, PathBuf};

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

/// `url` with any password replaced by `****`: the user-info of a URL
/// (`postgres://user:****@host/db`), and `password=` in a `key=value`
/// string or a URL's query.
pub fn mask_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let at = rest + at;
            if let Some(colon) = out[rest..at].find(':') {
                out.replace_range(rest + colon + 1..at, "****");
            }
        }
    }
    mask_key(&out, "password=")
}

/// Replaces the value after every `key` (case-insensitive) up to the next
/// space, `&` or `#` (a quoted value up to its closing quote).
fn mask_key(s: &str, key: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(found) = lower[i..].find(key) {
        let value = i + found + key.len();
        out.push_str(&s[i..value]);
        let end = if s[value..].starts_with('\'') {
            s[value + 1..]
                .find('\'')
                .map_or(s.len(), |e| value + 1 + e + 1)
        } else {
            s[value..]
                .find([' ', '&', '#'])
                .map_or(s.len(), |e| value + e)
        };
        out.push_str("****");
        i = end;
    }
    out.push_str(&s[i..]);
    out
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
