//! Who is asking: a bearer token (scripts) or a browser session (the
//! pages), and what they may do.
//!
//! Tokens are random (256 bits, [`new_token`]); the config holds only their
//! SHA-256 ([`token_digest_hex`]); a presented token is hashed and compared
//! with every user's digest in constant time (`subtle`), never logged or
//! shown. A sign-in at /login trades a token for a session: a random id in
//! an HttpOnly, SameSite=Strict cookie (Secure when the request came over
//! HTTPS through a trusted proxy, `console.trust_forwarded_proto`), with
//! its own CSRF token that every form and every session-authenticated API
//! write must carry. Sessions end after `console.session_ttl`, at sign-out,
//! or when the console restarts. Failed sign-ins past 10 a minute are
//! answered 429 and not logged one by one (governor); a right token always
//! signs in.

use crate::error::Refusal;
use crate::Shared;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use rebalancer_ops::console::{ConsoleUser, Role};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "rebalancer_session";
/// The sign-in form's CSRF cookie (double submit: the form carries the
/// same value).
pub(crate) const LOGIN_COOKIE: &str = "rebalancer_login";
/// The header a session-authenticated API write carries its CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// A fresh token: `rbc_` and 256 random bits, URL-safe base64.
pub fn new_token() -> String {
    format!("rbc_{}", random())
}

/// SHA-256 of `token`, as `token_sha256` holds it (64 hex digits).
pub fn token_digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// 256 random bits from the operating system, URL-safe base64.
fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Equal, in constant time (for equal lengths).
pub(crate) fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The user whose token this is: every digest is compared, in constant
/// time, whichever matches.
pub(crate) fn user_for_token<'a>(users: &'a [ConsoleUser], token: &str) -> Option<&'a ConsoleUser> {
    let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
    let mut found = None;
    for u in users {
        if bool::from(u.token_sha256.ct_eq(&digest)) {
            found = Some(u);
        }
    }
    found
}

/// Who a request comes from.
#[derive(Debug, Clone)]
pub(crate) struct Who {
    pub name: String,
    pub role: Role,
    /// The session's id and CSRF token, when signed in by cookie.
    pub session: Option<(String, String)>,
}

impl Who {
    /// Approvers only.
    pub fn may_decide(&self) -> Result<(), Refusal> {
        match self.role {
            Role::Approver => Ok(()),
            Role::Viewer => Err(Refusal::Forbidden(format!(
                "{} is a viewer; only an approver may approve or reject (console.users' role)",
                self.name
            ))),
        }
    }

    /// The CSRF token a session's write must carry (`given`); a bearer
    /// token needs none (a browser never sends it by itself).
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), Refusal> {
        match &self.session {
            None => Ok(()),
            Some((_, csrf)) if given.is_some_and(|g| same(g, csrf)) => Ok(()),
            Some(_) => Err(Refusal::Forbidden(
                "the form's CSRF token is missing or stale; reload the page and try again".into(),
            )),
        }
    }

    /// The session's CSRF token, for a form.
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |(_, c)| c.as_str())
    }
}

/// One browser session.
struct Session {
    name: String,
    role: Role,
    csrf: String,
    expires: Instant,
}

/// The console's browser sessions, by id.
pub(crate) struct Sessions {
    ttl: Duration,
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            by_id: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for `user`: its id.
    pub fn open(&self, user: &ConsoleUser) -> String {
        let id = random();
        let now = Instant::now();
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires > now);
        map.insert(
            id.clone(),
            Session {
                name: user.name.clone(),
                role: user.role,
                csrf: random(),
                expires: now + self.ttl,
            },
        );
        id
    }

    fn find(&self, id: &str) -> Option<Who> {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.get(id)?;
        if s.expires <= Instant::now() {
            map.remove(id);
            return None;
        }
        Some(Who {
            name: s.name.clone(),
            role: s.role,
            session: Some((id.to_owned(), s.csrf.clone())),
        })
    }

    pub fn close(&self, id: &str) {
        self.by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// Failed sign-ins allowed: 10 a minute, all users together.
pub(crate) struct LoginLimit(DefaultDirectRateLimiter);

impl LoginLimit {
    pub fn new() -> LoginLimit {
        let ten = NonZeroU32::new(10).expect("10 is not zero");
        LoginLimit(RateLimiter::direct(Quota::per_minute(ten)))
    }

    /// A failed sign-in; `Err` when there were too many.
    pub fn failed(&self) -> Result<(), Refusal> {
        self.0.check().map_err(|_| Refusal::TooMany)
    }
}

/// Who sent `headers`: a bearer token (which, when present, decides:
/// a wrong one is refused even with a session cookie), else the session
/// cookie.
pub(crate) fn who(
    users: &[ConsoleUser],
    sessions: &Sessions,
    headers: &HeaderMap,
    jar: &CookieJar,
) -> Result<Who, Refusal> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` too.
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or(Refusal::Unauthenticated)?;
        let user = user_for_token(users, token).ok_or(Refusal::Unauthenticated)?;
        return Ok(Who {
            name: user.name.clone(),
            role: user.role,
            session: None,
        });
    }
    jar.get(SESSION_COOKIE)
        .and_then(|c| sessions.find(c.value()))
        .ok_or(Refusal::Unauthenticated)
}

/// Handlers that take a [`Who`] need credentials: without them the
/// request is refused (401) before the handler runs, so no route can
/// forget to ask.
impl FromRequestParts<Shared> for Who {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Refusal> {
        let jar = CookieJar::from_headers(&parts.headers);
        who(
            &state.console.settings.users,
            &state.sessions,
            &parts.headers,
            &jar,
        )
    }
}

/// Whether cookies set in answer to `headers` are marked Secure.
pub(crate) fn secure(trust_forwarded_proto: bool, headers: &HeaderMap) -> bool {
    trust_forwarded_proto
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A cookie only this site's own requests carry, and no script can read.
pub(crate) fn cookie(
    name: &'static str,
    value: String,
    max_age: Duration,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        ))
        .build()
}

/// The session id in `jar`, if any.
pub(crate) fn session_id(jar: &CookieJar) -> Option<String> {
    jar.get(SESSION_COOKIE).map(|c| c.value().to_owned())
}

/// A fresh CSRF value for the sign-in form.
pub(crate) fn login_nonce() -> String {
    random()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, role: Role, token: &str) -> ConsoleUser {
        let digest = Sha256::digest(token.as_bytes()).into();
        ConsoleUser {
            name: name.into(),
            role,
            token_sha256: digest,
        }
    }

    #[test]
    fn a_token_finds_its_user_and_nothing_else_does() {
        let t1 = new_token();
        let t2 = new_token();
        assert_ne!(t1, t2);
        assert!(t1.starts_with("rbc_") && t1.len() == 4 + 43, "{t1}");
        let users = [
            user("ana", Role::Approver, &t1),
            user("bob", Role::Viewer, &t2),
        ];
        assert_eq!(user_for_token(&users, &t1).unwrap().name, "ana");
        assert_eq!(user_for_token(&users, &t2).unwrap().name, "bob");
        assert!(user_for_token(&users, "rbc_nope").is_none());
        assert!(user_for_token(&users, "").is_none());
        assert_eq!(token_digest_hex(&t1), hex::encode(users[0].token_sha256));
    }

    #[test]
    fn a_session_ends_at_its_ttl_and_at_close() {
        let s = Sessions::new(Duration::from_millis(0));
        let id = s.open(&user("ana", Role::Viewer, "t"));
        assert!(s.find(&id).is_none(), "expired at once");
        let s = Sessions::new(Duration::from_secs(60));
        let id = s.open(&user("ana", Role::Viewer, "t"));
        let who = s.find(&id).unwrap();
        assert_eq!(who.name, "ana");
        assert!(who.check_csrf(Some(who.csrf())).is_ok());
        assert!(who.check_csrf(Some("forged")).is_err());
        assert!(who.check_csrf(None).is_err());
        s.close(&id);
        assert!(s.find(&id).is_none());
    }
}
