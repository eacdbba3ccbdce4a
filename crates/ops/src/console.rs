//! `[console]`: who may use `rebalancer console` and how its sessions
//! behave, read from the config into typed settings (checked at load by
//! the settings' `[console]` check, and again when the console starts).
//!
//! Users are `[[console.users]]` tables: `name`, `role` (`viewer` reads,
//! `approver` also approves and rejects) and the SHA-256 of their token as
//! 64 hex digits, in `token_sha256` or in the file `token_sha256_file`
//! names (relative to the config file's directory). The config holds only
//! digests, never a token.

use crate::settings::ConsoleKeys;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees plans, runs and cycles.
    Viewer,
    /// Also approves and rejects proposed plans.
    Approver,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Approver => "approver",
        }
    }
}

/// One console user: a name and role, and their token's SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    pub name: String,
    pub role: Role,
    pub token_sha256: [u8; 32],
}

impl std::fmt::Debug for ConsoleUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// `[console]`, checked.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    pub addr: SocketAddr,
    pub users: Vec<ConsoleUser>,
    /// How long a browser session lasts after its login.
    pub session_ttl: Duration,
    /// Mark cookies Secure when a proxy says the request came over HTTPS
    /// (`X-Forwarded-Proto: https`).
    pub trust_forwarded_proto: bool,
}

/// Longest `console.session_ttl`: a week.
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(7 * 86_400);

/// A problem with one key of `[console]`: the key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    pub key: String,
    pub problem: String,
}

fn problem(key: impl Into<String>, problem: impl Into<String>) -> KeyProblem {
    KeyProblem {
        key: key.into(),
        problem: problem.into(),
    }
}

impl ConsoleSettings {
    /// `keys` checked; `config_dir` is where a relative
    /// `token_sha256_file` is looked for.
    pub fn from_keys(keys: &ConsoleKeys, config_dir: &Path) -> Result<Self, KeyProblem> {
        let addr = crate::settings::metrics_addr(&keys.addr)
            .map_err(|p| problem("console.addr", p))?
            .ok_or_else(|| {
                problem(
                    "console.addr",
                    "is empty; write the address to listen on, like \"127.0.0.1:8080\"",
                )
            })?;
        let ttl = humantime::parse_duration(keys.session_ttl.trim()).map_err(|e| {
            problem(
                "console.session_ttl",
                format!(
                    "= {:?} is not a duration ({e}); write it like \"8h\"",
                    keys.session_ttl
                ),
            )
        })?;
        if ttl < Duration::from_secs(60) || ttl > MAX_SESSION_TTL {
            return Err(problem(
                "console.session_ttl",
                format!("= {:?} must be between 1m and 7d", keys.session_ttl),
            ));
        }
        let mut users: Vec<ConsoleUser> = Vec::new();
        for (i, u) in keys.users.iter().enumerate() {
            let at = |key: &str| format!("console.users[{i}].{key}");
            let name = user_name(&u.name).map_err(|p| problem(at("name"), p))?;
            if users.iter().any(|o| o.name == name) {
                return Err(problem(
                    at("name"),
                    format!("`{name}` is given twice; each user once"),
                ));
            }
            let role = match u.role.trim() {
                "viewer" => Role::Viewer,
                "approver" => Role::Approver,
                other => {
                    return Err(problem(
                        at("role"),
                        format!("`{other}` is not a role; write \"viewer\" or \"approver\""),
                    ))
                }
            };
            let (key, text) =
                match (&u.token_sha256, &u.token_sha256_file) {
                    (Some(_), Some(_)) => {
                        return Err(problem(
                            at("token_sha256"),
                            "is given with token_sha256_file; keep one",
                        ))
                    }
                    (Some(hex), None) => (at("token_sha256"), hex.clone()),
                    (None, Some(file)) => {
                        let path = if file.is_relative() {
                            config_dir.join(file)
                        } else {
                            file.clone()
                        };
                        let text = std::fs::read_to_string(&path).map_err(|e| {
                            problem(
                                at("token_sha256_file"),
                                format!("{} cannot be read: {e}", path.display()),
                            )
                        })?;
                        (at("token_sha256_file"), text)
                    }
                    (None, None) => return Err(problem(
                        at("token_sha256"),
                        "is missing; `rebalancer console new-token` prints a token and its line",
                    )),
                };
            let token_sha256 = parse_digest(text.trim()).ok_or_else(|| {
                problem(
                    key,
                    "is not a SHA-256 digest (64 hex digits); `rebalancer console new-token` prints one (never the token itself)",
                )
            })?;
            if users.iter().any(|o| o.token_sha256 == token_sha256) {
                return Err(problem(
                    at("token_sha256"),
                    "is another user's token; give each user their own",
                ));
            }
            users.push(ConsoleUser {
                name: name.to_owned(),
                role,
                token_sha256,
            });
        }
        Ok(ConsoleSettings {
            addr,
            users,
            session_ttl: ttl,
            trust_forwarded_proto: keys.trust_forwarded_proto,
        })
    }
}

/// A user's name, trimmed: 1 to 64 printable characters (it is recorded
/// with each decision). `console new-token --name` checks it the same way.
pub fn user_name(name: &str) -> Result<&str, &'static str> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err("must be 1 to 64 printable characters (it is recorded with each decision)");
    }
    Ok(name)
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ConsoleUserKeys;

    fn keys(users: Vec<ConsoleUserKeys>) -> ConsoleKeys {
        ConsoleKeys {
            addr: "127.0.0.1:8080".into(),
            session_ttl: "8h".into(),
            trust_forwarded_proto: false,
            users,
        }
    }

    fn user(name: &str, role: &str, digest: &str) -> ConsoleUserKeys {
        ConsoleUserKeys {
            name: name.into(),
            role: role.into(),
            token_sha256: Some(digest.into()),
            token_sha256_file: None,
        }
    }

    const D1: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const D2: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

    #[test]
    fn users_roles_and_digests_are_read_and_every_mistake_names_its_key() {
        let dir = Path::new(".");
        let ok = ConsoleSettings::from_keys(
            &keys(vec![user("ana", "approver", D1), user("bob", "viewer", D2)]),
            dir,
        )
        .unwrap();
        assert_eq!(ok.users[0].role, Role::Approver);
        assert_eq!(ok.users[1].role, Role::Viewer);
        assert_eq!(ok.session_ttl, Duration::from_secs(8 * 3600));
        assert!(
            !format!("{:?}", ok.users[0]).contains(&D1[..8]),
            "no digest in Debug"
        );
        for (users, key, words) in [
            (
                vec![user("ana", "admin", D1)],
                "console.users[0].role",
                "not a role",
            ),
            (
                vec![user("ana", "viewer", "abc")],
                "console.users[0].token_sha256",
                "64 hex",
            ),
            (
                vec![user("ana", "viewer", D1), user("ana", "viewer", D2)],
                "console.users[1].name",
                "twice",
            ),
            (
                vec![user("ana", "viewer", D1), user("bob", "viewer", D1)],
                "console.users[1].token_sha256",
                "another user's",
            ),
        ] {
            let e = ConsoleSettings::from_keys(&keys(users), dir).unwrap_err();
            assert_eq!(e.key, key);
            assert!(e.problem.contains(words), "{}", e.problem);
        }
        let mut k = keys(vec![]);
        k.session_ttl = "30d".into();
        assert_eq!(
            ConsoleSettings::from_keys(&k, dir).unwrap_err().key,
            "console.session_ttl"
        );
    }

    #[test]
    fn a_digest_file_is_read_relative_to_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ana.sha256"), format!("{D1}\n")).unwrap();
        let mut u = user("ana", "approver", D1);
        u.token_sha256 = None;
        u.token_sha256_file = Some("ana.sha256".into());
        let s = ConsoleSettings::from_keys(&keys(vec![u]), dir.path()).unwrap();
        assert_eq!(hex::encode(s.users[0].token_sha256), D1);
    }
}
