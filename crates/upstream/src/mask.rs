//! [`mask_url`]: the one function every URL or connection string goes
//! through before it is shown (the upstream base URLs, `journal.url` in
//! `check`, `history`, an apply's summary and every error), so a password
//! never reaches a terminal or a log, whatever characters it holds.
//!
//! Two forms are understood:
//!
//! - a URL, `scheme://user:password@host:port/path?query` (the scheme may be
//!   missing). A password written raw may hold any character, `/`, `?`,
//!   `#`, `:` and `@` included, and readers disagree on where it ends (the
//!   `url` crate's parser ends the authority at the first `/`, `?` or `#`;
//!   `tokio-postgres` ends the user-info at the first `@`). So everything
//!   from the first `:` of the user-info up to the **last** `@` is masked:
//!   whichever reading is right, its password lies inside. A query
//!   parameter whose name (percent-decoded by the `url` crate's
//!   `form_urlencoded` parser) names a secret (`password`, `sslpassword`,
//!   `token`, `secret`, ...) is masked up to the next `&name=`.
//! - libpq's `key=value` list (`host=h user=u password='p w'`): the value of
//!   a secret-named key is masked, quoted (`'...'`, `\'` and `\\` escapes)
//!   or not.
//!
//! Masked text reads `****`. Nothing is decoded into the output, so neither
//! a password nor its percent-encoded form can appear in it.

use url::form_urlencoded;

const MASK: &str = "****";

/// Parameter names (compared ignoring case, as a substring, after
/// percent-decoding) whose value is a secret.
const SECRET_NAMES: [&str; 6] = ["password", "passwd", "secret", "token", "api_key", "apikey"];

/// `text` with every password it may hold replaced by `****` (see the
/// module documentation): `postgres://app:****@db:5432/journal`.
pub fn mask_url(text: &str) -> String {
    if let Some((scheme, rest)) = split_scheme(text) {
        format!("{scheme}://{}", mask_authority_and_query(rest))
    } else if is_key_value_form(text) {
        mask_key_values(text)
    } else {
        mask_authority_and_query(text)
    }
}

/// `("postgres", "user:pw@host/db")` when `text` starts with an RFC 3986
/// scheme followed by `://`.
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then_some((scheme, rest))
}

/// libpq's `key=value` form starts with a keyword and `=`.
fn is_key_value_form(text: &str) -> bool {
    let trimmed = text.trim_start();
    let key_len = trimmed
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(trimmed.len());
    key_len > 0 && trimmed[key_len..].trim_start().starts_with('=')
}

/// `user:pw@host/path?query` (after the scheme) with the password masked
/// up to the last `@`, and secret query parameters masked.
fn mask_authority_and_query(rest: &str) -> String {
    let (userinfo, tail) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut out = String::with_capacity(rest.len());
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(MASK);
            }
            None => out.push_str(userinfo),
        }
        out.push('@');
    }
    match tail.split_once('?') {
        Some((before, query)) => {
            out.push_str(before);
            out.push('?');
            out.push_str(&mask_query(query));
        }
        None => out.push_str(tail),
    }
    out
}

/// A query string with the value of every secret-named parameter masked up
/// to the next `&name=` (a raw `&` inside the value stays masked).
fn mask_query(query: &str) -> String {
    let pieces: Vec<&str> = query.split('&').collect();
    let mut out: Vec<String> = Vec::with_capacity(pieces.len());
    let mut masking = false;
    for piece in pieces {
        let name = piece.split_once('=').map(|(name, _)| name);
        let starts_parameter = name.is_some_and(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '%'))
        });
        if masking && !starts_parameter {
            // Still inside the previous secret value.
            continue;
        }
        masking = false;
        match name {
            Some(name) if starts_parameter && is_secret_name(&decode_name(name)) => {
                out.push(format!("{name}={MASK}"));
                masking = true;
            }
            _ => out.push(piece.to_string()),
        }
    }
    out.join("&")
}

/// A query parameter name, percent-decoded as a form would be.
fn decode_name(name: &str) -> String {
    form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(key, _)| key.into_owned())
        .unwrap_or_default()
}

fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| lower.contains(s))
}

/// libpq's `key = value` list with every secret value masked: a value is
/// single-quoted (with `\'` and `\\` escapes; an unclosed quote runs to the
/// end) or runs to the next whitespace.
fn mask_key_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let start = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.is_empty() {
            return out;
        }
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        let after_key = &rest[key_end..];
        let spaces = after_key.len() - after_key.trim_start().len();
        if !after_key[spaces..].starts_with('=') {
            // Not `key=`: copy the word and go on.
            out.push_str(key);
            rest = after_key;
            continue;
        }
        let eq = key_end + spaces + 1;
        let value_rest = &rest[eq..];
        let value_start = eq + (value_rest.len() - value_rest.trim_start().len());
        let value_len = value_length(&rest[value_start..]);
        out.push_str(&rest[..value_start]);
        if is_secret_name(key) {
            out.push_str(MASK);
        } else {
            out.push_str(&rest[value_start..value_start + value_len]);
        }
        rest = &rest[value_start + value_len..];
    }
}

/// The length in bytes of the libpq value at the start of `s`.
fn value_length(s: &str) -> usize {
    if let Some(quoted) = s.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return 1 + i + 1,
                _ => {}
            }
        }
        s.len()
    } else {
        s.find(char::is_whitespace).unwrap_or(s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use url::form_urlencoded::byte_serialize;

    #[test]
    fn examples() {
        for (text, shown) in [
            (
                "postgres://app:s3cret@db.example:5432/journal",
                "postgres://app:****@db.example:5432/journal",
            ),
            // The password of issue 16, raw: `/` and `+` in it.
            (
                "postgres://rebalancer:Zx9/Kq+secret@db.internal:5432/rebalancer",
                "postgres://rebalancer:****@db.internal:5432/rebalancer",
            ),
            (
                "postgresql://app:p@ss:w@rd@10.0.0.1/j?sslmode=disable",
                "postgresql://app:****@10.0.0.1/j?sslmode=disable",
            ),
            (
                "postgres://app:a?b#c/d@h/db?sslmode=require",
                "postgres://app:****@h/db?sslmode=require",
            ),
            ("postgres://app@host/db", "postgres://app@host/db"),
            (
                "postgres://host/db?user=a&password=s3cret&x=1",
                "postgres://host/db?user=a&password=****&x=1",
            ),
            (
                "postgres://host/db?user=a&%70assword=s3cret&x=1",
                "postgres://host/db?user=a&%70assword=****&x=1",
            ),
            (
                "postgres://host/db?password=s3&cret&sslmode=require",
                "postgres://host/db?password=****&sslmode=require",
            ),
            (
                "postgres://u:pw@h1:5432,h2:5433/db",
                "postgres://u:****@h1:5432,h2:5433/db",
            ),
            (
                "host=h user=u password=s3cret dbname=j",
                "host=h user=u password=**** dbname=j",
            ),
            (
                "host=h password = 's3 \\' cret' dbname=j",
                "host=h password = **** dbname=j",
            ),
            ("host=h password='s3 cret", "host=h password=****"),
            ("user:s3cret@host", "user:****@host"),
            (
                "https://cms.example.com:8443/x",
                "https://cms.example.com:8443/x",
            ),
            ("rebalancer-journal.sqlite", "rebalancer-journal.sqlite"),
            ("not a url", "not a url"),
            ("", ""),
        ] {
            assert_eq!(mask_url(text), shown, "{text}");
        }
    }

    /// Passwords of any characters; the marker keeps them from matching
    /// the rest of the text by chance.
    fn password() -> impl Strategy<Value = String> {
        any::<String>().prop_map(|s| format!("Zx9{s}"))
    }

    fn percent_encoded(s: &str) -> String {
        byte_serialize(s.as_bytes()).collect()
    }

    fn assert_hidden(text: &str, password: &str) -> Result<(), TestCaseError> {
        let shown = mask_url(text);
        prop_assert!(!shown.contains(password), "{text:?} -> {shown:?}");
        let encoded = percent_encoded(password);
        prop_assert!(!shown.contains(&encoded), "{text:?} -> {shown:?}");
        prop_assert!(shown.contains(MASK), "{text:?} -> {shown:?}");
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn raw_passwords_in_the_user_info_never_show(pw in password()) {
            for scheme in ["postgres://", "postgresql://", "https://", ""] {
                let text = format!("{scheme}app:{pw}@db.example:5432/journal?sslmode=require");
                assert_hidden(&text, &pw)?;
            }
        }

        #[test]
        fn percent_encoded_passwords_never_show(pw in password()) {
            let enc = percent_encoded(&pw);
            assert_hidden(&format!("postgres://app:{enc}@db.example/journal"), &pw)?;
            assert_hidden(
                &format!("postgres://db.example/journal?user=app&password={enc}&sslmode=require"),
                &pw,
            )?;
        }

        #[test]
        fn quoted_key_value_passwords_never_show(pw in password()) {
            let quoted = pw.replace('\\', "\\\\").replace('\'', "\\'");
            assert_hidden(&format!("host=db user=app password='{quoted}' dbname=journal"), &pw)?;
        }

        #[test]
        fn anything_masks_without_panicking(text in any::<String>()) {
            let _ = mask_url(&text);
        }
    }
}
