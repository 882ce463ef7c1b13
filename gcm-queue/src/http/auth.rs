//! Who may call the API: API keys with scopes, and the `Host` values it answers to.
//!
//! A key is given as `name:scopes:secret` (scopes joined by `,`: `send`, `read`,
//! `metrics`), in a file or an environment variable, never on the command line. Only the
//! secret's SHA-256 is kept, and a presented key is compared with every stored one in
//! constant time. Requests carry it as `Authorization: Bearer <secret>`.

use std::collections::BTreeSet;

use subtle::ConstantTimeEq as _;

/// What a key allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// `POST /jobs`: enqueue pushes.
    Send,
    /// `GET /jobs/<id>`, `GET /results`, `GET /readyz`, `GET /openapi.json`: read jobs and
    /// their results (device tokens among them).
    Read,
    /// `GET /metrics`.
    Metrics,
}

impl Scope {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "send" => Some(Self::Send),
            "read" => Some(Self::Read),
            "metrics" => Some(Self::Metrics),
            _ => None,
        }
    }
}

/// The shortest secret accepted: 128 bits as hex.
pub const MIN_SECRET_LEN: usize = 32;

struct Key {
    name: String,
    scopes: BTreeSet<Scope>,
    digest: [u8; 32],
}

/// The API keys a server accepts. `Debug` shows their names and scopes, never a secret.
#[derive(Default)]
pub struct ApiKeys {
    keys: Vec<Key>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.iter().map(|key| (&key.name, &key.scopes))).finish()
    }
}

fn digest(secret: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret);
    let mut bytes = [0; 32];
    bytes.copy_from_slice(digest.as_ref());
    bytes
}

impl ApiKeys {
    /// Keys read from `text`: one `name:scopes:secret` per line or separated by blanks;
    /// empty lines and lines starting with `#` are skipped. An error names the entry by its
    /// position and name, never by its secret.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        let entries = text.lines().map(str::trim).filter(|line| !line.starts_with('#')).flat_map(str::split_whitespace);
        for (index, entry) in (1..).zip(entries) {
            let mut parts = entry.splitn(3, ':');
            let (Some(name), Some(scopes), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("API key {index}: expected name:scopes:secret"));
            };
            if name.is_empty() {
                return Err(format!("API key {index}: no name"));
            }
            let scopes = scopes
                .split(',')
                .map(|scope| {
                    Scope::parse(scope)
                        .ok_or_else(|| format!("API key {name:?}: unknown scope {scope:?} (send, read, metrics)"))
                })
                .collect::<Result<BTreeSet<_>, _>>()?;
            if secret.len() < MIN_SECRET_LEN {
                return Err(format!("API key {name:?}: the secret is shorter than {MIN_SECRET_LEN} characters"));
            }
            if keys.iter().any(|key: &Key| key.name == name) {
                return Err(format!("API key {name:?} is given twice"));
            }
            keys.push(Key { name: name.to_owned(), scopes, digest: digest(secret.as_bytes()) });
        }
        Ok(Self { keys })
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The scopes of the key named `name`, if there is one.
    pub(super) fn scopes(&self, name: &str) -> Option<&BTreeSet<Scope>> {
        self.keys.iter().find(|key| key.name == name).map(|key| &key.scopes)
    }

    /// The name and scopes of the key whose secret is `secret`, comparing with every key
    /// in constant time (the digests, so that the secrets' lengths do not show either).
    fn find(&self, secret: &[u8]) -> Option<(&str, &BTreeSet<Scope>)> {
        let presented = digest(secret);
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.digest.ct_eq(&presented)) {
                found = Some((key.name.as_str(), &key.scopes));
            }
        }
        found
    }
}

/// Why a request is refused before it is read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// 401: no key, or one that is not known.
    Unauthenticated(&'static str),
    /// 403: a key without the scope the route needs.
    Forbidden { key: String, scope: Scope },
}

/// Who a request comes from: the key's name, or `None` without authentication.
pub(super) fn authorize(
    keys: &ApiKeys,
    open: bool,
    authorization: Option<&[u8]>,
    scope: Option<Scope>,
) -> Result<Option<String>, Refusal> {
    if open {
        return Ok(None);
    }
    let Some(header) = authorization else { return Err(Refusal::Unauthenticated("no Authorization header")) };
    let Some(secret) = header.strip_prefix(b"Bearer ") else {
        return Err(Refusal::Unauthenticated("the Authorization header is not `Bearer <key>`"));
    };
    let Some((name, scopes)) = keys.find(secret.trim_ascii()) else {
        return Err(Refusal::Unauthenticated("unknown API key"));
    };
    match scope {
        Some(scope) if !scopes.contains(&scope) => Err(Refusal::Forbidden { key: name.to_owned(), scope }),
        _ => Ok(Some(name.to_owned())),
    }
}

/// The `Host` values a server answers to: a browser tricked by DNS rebinding sends the
/// attacker's name, and is refused.
#[derive(Clone, Debug)]
pub enum AllowedHosts {
    /// Any host (behind a proxy that checks it).
    Any,
    /// These names (compared without the port, ignoring case).
    Only(Vec<String>),
}

impl AllowedHosts {
    /// The loopback names and `extra`.
    pub fn loopback_and(extra: impl IntoIterator<Item = String>) -> Self {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(str::to_owned).into();
        names.extend(extra.into_iter().map(|name| name.to_ascii_lowercase()));
        Self::Only(names)
    }

    /// True when `host` (a `Host` header, with or without a port) is allowed.
    pub(super) fn allows(&self, host: Option<&str>) -> bool {
        let Self::Only(names) = self else { return true };
        let Some(host) = host else { return false };
        // `[::1]:8080` keeps its brackets; `name:8080` loses its port.
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => name,
            _ => host,
        };
        names.iter().any(|allowed| allowed.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn keys_are_found_by_secret_and_scoped() {
        let keys = ApiKeys::parse(&format!("# ops\napp:send,read:{SECRET}\n\nprom:metrics:{SECRET}x")).unwrap();
        assert_eq!(keys.len(), 2);
        let bearer = format!("Bearer {SECRET}");
        assert_eq!(authorize(&keys, false, Some(bearer.as_bytes()), Some(Scope::Send)), Ok(Some("app".to_owned())));
        assert_eq!(
            authorize(&keys, false, Some(bearer.as_bytes()), Some(Scope::Metrics)),
            Err(Refusal::Forbidden { key: "app".to_owned(), scope: Scope::Metrics })
        );
        assert!(matches!(authorize(&keys, false, None, None), Err(Refusal::Unauthenticated(_))));
        let wrong = format!("Bearer {SECRET}y");
        assert_eq!(
            authorize(&keys, false, Some(wrong.as_bytes()), None),
            Err(Refusal::Unauthenticated("unknown API key"))
        );
        assert!(matches!(authorize(&keys, false, Some(SECRET.as_bytes()), None), Err(Refusal::Unauthenticated(_))));
        assert_eq!(authorize(&keys, true, None, Some(Scope::Send)), Ok(None));
        let shown = format!("{keys:?}");
        assert!(shown.contains("app") && !shown.contains(SECRET), "{shown}");
    }

    #[test]
    fn bad_keys_are_refused_without_showing_the_secret() {
        for (text, expected) in [
            ("app:send", "expected name:scopes:secret"),
            (":send:0123456789abcdef0123456789abcdef", "no name"),
            ("app:write:0123456789abcdef0123456789abcdef", "unknown scope \"write\""),
            ("app:send:short", "shorter than 32"),
            ("a:send:0123456789abcdef0123456789abcdef a:read:0123456789abcdef0123456789abcdef", "given twice"),
        ] {
            let error = ApiKeys::parse(text).unwrap_err();
            assert!(error.contains(expected) && !error.contains("0123456789abcdef"), "{text}: {error}");
        }
    }

    #[test]
    fn hosts_match_without_their_port() {
        let hosts = AllowedHosts::loopback_and(["Push.Example.com".to_owned()]);
        for allowed in ["localhost", "127.0.0.1:8080", "[::1]:80", "push.example.com", "PUSH.example.com:443"] {
            assert!(hosts.allows(Some(allowed)), "{allowed}");
        }
        for refused in ["evil.example", "evil.example:8080", "127.0.0.2", ""] {
            assert!(!hosts.allows(Some(refused)), "{refused}");
        }
        assert!(!hosts.allows(None));
        assert!(AllowedHosts::Any.allows(None));
    }
}
