//! [`BaseUrl`]: a validated base URL of an upstream API, parsed once (by the
//! binary's settings through serde, or by [`BaseUrl::parse`]) and handed to
//! the clients.
//!
//! A base URL is `http` or `https`, has a host, and carries no credentials,
//! query or fragment (a path prefix is fine). Plain `http` is accepted only
//! to loopback hosts (127.0.0.0/8, ::1, `localhost`) unless insecure
//! transport is allowed explicitly ([`BaseUrl::parse_with`], or
//! `HttpSettings::allow_insecure` when a client is built): credentials must
//! not cross a network in clear text by accident.
//!
//! No error text ever shows a password written into a URL: it is masked as
//! `https://user:****@host`, even when the rest does not parse.

use std::fmt;
use std::str::FromStr;

use url::{Host, Url};

use crate::mask::mask_url;
use crate::scrub::scrub;

/// A validated base URL (see the module documentation for the rules).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl {
    url: Url,
}

/// Why a text is not an acceptable base URL. The text shown is the input
/// with any password masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{shown:?} {problem}")]
pub struct BaseUrlError {
    shown: String,
    problem: String,
}

impl BaseUrlError {
    fn new(input: &str, problem: impl Into<String>) -> Self {
        BaseUrlError {
            shown: mask_credentials(input),
            problem: problem.into(),
        }
    }

    /// What is wrong, without the URL.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl BaseUrl {
    /// Parses and validates a base URL; plain `http` only to a loopback host.
    pub fn parse(input: &str) -> Result<BaseUrl, BaseUrlError> {
        BaseUrl::parse_with(input, false)
    }

    /// Like [`BaseUrl::parse`]; with `allow_insecure`, plain `http` is also
    /// accepted to hosts that are not loopback.
    pub fn parse_with(input: &str, allow_insecure: bool) -> Result<BaseUrl, BaseUrlError> {
        let base = BaseUrl::parse_shape(input)?;
        base.require_secure(allow_insecure)?;
        Ok(base)
    }

    /// Checks everything but the transport rule (scheme, host, no
    /// credentials, query or fragment).
    fn parse_shape(input: &str) -> Result<BaseUrl, BaseUrlError> {
        let trimmed = input.trim();
        let url = Url::parse(trimmed).map_err(|e| {
            BaseUrlError::new(
                trimmed,
                format!("is not a URL ({e}); write it like \"https://host:port\""),
            )
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BaseUrlError::new(
                trimmed,
                "must not carry credentials; use the username/password/key settings",
            ));
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BaseUrlError::new(
                trimmed,
                format!("must use http or https, not `{}`", url.scheme()),
            ));
        }
        if url.host().is_none() || url.cannot_be_a_base() {
            return Err(BaseUrlError::new(trimmed, "has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(BaseUrlError::new(
                trimmed,
                "must be scheme, host, port and path prefix only (no query or fragment)",
            ));
        }
        Ok(BaseUrl { url })
    }

    /// Refuses plain `http` to a host that is not loopback, unless
    /// `allow_insecure`.
    pub fn require_secure(&self, allow_insecure: bool) -> Result<(), BaseUrlError> {
        if self.url.scheme() == "http" && !allow_insecure && !self.is_loopback() {
            return Err(BaseUrlError::new(
                self.url.as_str(),
                "uses plain http to a host that is not loopback; use https, or set \
                 http.allow_insecure = true if this network is trusted",
            ));
        }
        Ok(())
    }

    /// Whether the host is 127.0.0.0/8, ::1 or `localhost`.
    pub fn is_loopback(&self) -> bool {
        match self.url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(d)) => {
                let d = d.trim_end_matches('.');
                d.eq_ignore_ascii_case("localhost")
                    || d.to_ascii_lowercase().ends_with(".localhost")
            }
            None => false,
        }
    }

    /// The URL itself.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL as text (it holds no credentials).
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }
}

/// Shown through [`mask_url`], as every URL is (a base URL holds no
/// credentials, so this changes nothing unless that rule is broken).
impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url(self.url.as_str()))
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({:?})", mask_url(self.url.as_str()))
    }
}

impl FromStr for BaseUrl {
    type Err = BaseUrlError;

    /// Same as [`BaseUrl::parse`] (strict about plain http).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BaseUrl::parse(s)
    }
}

/// Deserialises from a string, checking the shape only: whether plain http
/// is allowed depends on another setting (`http.allow_insecure`), so that
/// rule is checked when a client is built (`HttpSettings::allow_insecure`)
/// or with [`BaseUrl::require_secure`].
impl<'de> serde::Deserialize<'de> for BaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        BaseUrl::parse_shape(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for BaseUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.url.as_str())
    }
}

/// `input` with any password masked by [`mask_url`] (also when `input` is
/// no valid URL), and token-like strings scrubbed.
pub(crate) fn mask_credentials(input: &str) -> String {
    scrub(&mask_url(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        for ok in [
            "https://cms.example.com",
            "https://cms.example.com:8443/prefix/",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:9000/x",
            "http://localhost:1",
            "http://LOCALHOST",
        ] {
            let u = BaseUrl::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(!u.to_string().is_empty());
        }
        assert!(BaseUrl::parse_with("http://cms.internal:8080", true).is_ok());
    }

    #[test]
    fn bad_urls() {
        for (bad, says) in [
            ("ftp://h/", "http or https"),
            ("https://h/?a=b", "no query"),
            ("https://h/#f", "no query"),
            ("mailto:x@y", "http or https"),
            ("not a url", "is not a URL"),
            ("http://cms.internal:8080", "allow_insecure"),
            ("http://10.0.0.1", "allow_insecure"),
        ] {
            let e = BaseUrl::parse(bad).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn credentials_are_masked_even_in_invalid_urls() {
        for bad in [
            "https://user:secretpw@host/",
            "https://user:secretpw@ho st/",
            "user:secretpw@host",
            "https://user:secretpw@[::1/",
        ] {
            let e = BaseUrl::parse(bad).unwrap_err();
            let text = e.to_string();
            assert!(!text.contains("secretpw"), "{text}");
            assert!(text.contains("user:****@"), "{text}");
        }
    }

    #[test]
    fn serde_checks_shape_but_not_transport() {
        let u: BaseUrl = serde_json::from_str(r#""http://cms.internal:8080/p""#).unwrap();
        assert!(u.require_secure(false).is_err());
        assert!(u.require_secure(true).is_ok());
        let e = serde_json::from_str::<BaseUrl>(r#""https://u:pw123456@h""#).unwrap_err();
        assert!(!e.to_string().contains("pw123456"), "{e}");
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#""http://cms.internal:8080/p""#
        );
    }
}
