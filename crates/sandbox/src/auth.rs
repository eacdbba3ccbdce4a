//! The three auth schemes of the upstreams, as header checks: CMS Basic
//! (base64 `username:password`), Webex `Bearer <api key>` and Zoho
//! `Zoho-oauthtoken <access token>`. Scheme names match case-insensitively;
//! credentials match exactly.

use axum::http::{header::AUTHORIZATION, HeaderMap};
use base64::Engine;

/// The credentials after `<scheme> ` in the Authorization header, if the
/// scheme matches.
fn credentials<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (given, rest) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| rest.trim())
        .filter(|rest| !rest.is_empty())
}

/// Whether the request carries Basic auth with exactly these credentials.
pub fn basic(headers: &HeaderMap, username: &str, password: &str) -> bool {
    let Some(encoded) = credentials(headers, "Basic") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    decoded.split_once(':') == Some((username, password))
}

/// The bearer key or token, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    credentials(headers, "Bearer")
}

/// The Zoho OAuth access token, if any.
pub fn zoho_oauthtoken(headers: &HeaderMap) -> Option<&str> {
    credentials(headers, "Zoho-oauthtoken")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn basic_auth() {
        let token = base64::engine::general_purpose::STANDARD.encode("u:p:w");
        assert!(basic(&with(&format!("Basic {token}")), "u", "p:w"));
        assert!(basic(&with(&format!("basic {token}")), "u", "p:w"));
        assert!(!basic(&with(&format!("Basic {token}")), "u", "p"));
        assert!(!basic(&with("Basic !!!"), "u", "p:w"));
        assert!(!basic(&HeaderMap::new(), "u", "p:w"));
    }

    #[test]
    fn token_schemes() {
        assert_eq!(bearer(&with("Bearer k")), Some("k"));
        assert_eq!(bearer(&with("Zoho-oauthtoken k")), None);
        assert_eq!(
            zoho_oauthtoken(&with("Zoho-oauthtoken 1000.x")),
            Some("1000.x")
        );
        assert_eq!(zoho_oauthtoken(&with("Bearer ")), None);
    }
}
