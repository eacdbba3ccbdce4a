//! Scrubbing of token-like strings from upstream text before it is quoted in
//! an error: a misbehaving server (or proxy) may echo our credentials or
//! hand out its own in an error body, and error texts end up in logs and
//! terminals.
//!
//! Masked: the credential after an auth scheme (`Bearer x`,
//! `Zoho-oauthtoken x`, `Basic x`); the value of a secret-named key
//! (`"access_token":"x"`, `refresh_token=x`, `client_secret`, `api_key`,
//! `password`, ...); and any long base64/hex-like run (20 or more of
//! `[A-Za-z0-9+=_.-]` mixing letters and digits). Masked text reads `****`.

/// Auth schemes whose following word is a credential (compared ignoring case).
const SCHEMES: [&str; 3] = ["bearer", "zoho-oauthtoken", "basic"];

/// Keys whose value is a secret (compared ignoring case, as a suffix of the
/// key so `"x_access_token"` counts too).
const SECRET_KEYS: [&str; 8] = [
    "access_token",
    "refresh_token",
    "client_secret",
    "api_key",
    "apikey",
    "password",
    "token",
    "secret",
];

/// Shortest run of token characters masked on sight.
const MIN_TOKEN_RUN: usize = 20;

const MASK: &str = "****";

/// `text` with credentials and token-like runs replaced by `****`.
pub(crate) fn scrub(text: &str) -> String {
    let masked = mask_after_markers(text);
    mask_long_runs(&masked)
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | '_' | '.' | '-' | '/')
}

/// Masks the value that follows an auth scheme or a secret-named key.
fn mask_after_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // A word (identifier-like) starting at i.
        if chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '-' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '-')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push_str(&word);
            let lower = word.to_ascii_lowercase();
            let is_scheme = SCHEMES.contains(&lower.as_str());
            let is_key = SECRET_KEYS.iter().any(|k| lower.ends_with(k));
            if !(is_scheme || is_key) {
                continue;
            }
            // A scheme is followed by spaces; a key by `=` (form, query) or
            // by its closing quote and `:` (JSON), then maybe an opening quote.
            let Some(j) = value_start(&chars, i, is_scheme) else {
                continue;
            };
            let value_end = (j..chars.len())
                .find(|&k| !is_token_char(chars[k]))
                .unwrap_or(chars.len());
            out.extend(&chars[i..j]);
            out.push_str(MASK);
            i = value_end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Where the secret value after a marker word ending at `i` starts, if the
/// marker is used as a scheme or key there.
fn value_start(chars: &[char], i: usize, is_scheme: bool) -> Option<usize> {
    let at = |k: usize| chars.get(k).copied();
    let mut j = i;
    if is_scheme {
        while at(j) == Some(' ') {
            j += 1;
        }
    } else if at(j) == Some('=') {
        j += 1;
    } else {
        // JSON: `"key":"value"`, maybe escaped inside a string (`\"`).
        while matches!(at(j), Some('\\' | '"')) {
            j += 1;
        }
        if j == i {
            return None;
        }
        while at(j) == Some(' ') {
            j += 1;
        }
        if at(j) != Some(':') {
            return None;
        }
        j += 1;
        while matches!(at(j), Some(' ' | '\\' | '"')) {
            j += 1;
        }
    }
    (j > i && at(j).is_some_and(is_token_char)).then_some(j)
}

/// Masks long runs of token characters that mix letters and digits (slashes
/// split runs here, so paths and URLs survive).
fn mask_long_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let letters = run.chars().any(|c| c.is_ascii_alphabetic());
        let digits = run.chars().any(|c| c.is_ascii_digit());
        if run.chars().count() >= MIN_TOKEN_RUN && letters && digits {
            out.push_str(MASK);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_token_char(c) && c != '/' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_credentials_and_tokens() {
        for (input, secret) in [
            ("Authorization: Bearer abc.def", "abc.def"),
            ("header was Zoho-oauthtoken 1000.x1y2", "1000.x1y2"),
            (r#"{"access_token":"1000.abc","x":1}"#, "1000.abc"),
            (r#"{"refresh_token" : "rt-1"}"#, "rt-1"),
            ("client_secret=shh&x=1", "shh"),
            (
                "id 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "9f86d08",
            ),
            ("basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ] {
            let out = scrub(input);
            assert!(!out.contains(secret), "{input} -> {out}");
            assert!(out.contains(MASK), "{input} -> {out}");
        }
    }

    #[test]
    fn keeps_ordinary_text() {
        for text in [
            "Object doesn't exist",
            "the id given seems to be invalid",
            "INVALID_TOKEN: invalid oauth token",
            "GET /crm/v8/settings/automation/assignment_thresholds/1862079000024556062/restrict_to?module=Leads&page=1",
            "<html><body>Login required</body></html>",
            r#"{"statusCode":404,"errorCode":"CONF-1001"}"#,
            "the token was refused",
        ] {
            assert_eq!(scrub(text), text);
        }
    }
}
