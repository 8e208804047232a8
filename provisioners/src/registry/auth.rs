//! Registry credentials and the challenges that ask for them.
//!
//! Credentials come from a docker `config.json` (Mesos's `--docker_config`):
//! `{"auths": {"<registry>": {"auth": "<base64 of user:password>"}}}`, or
//! the older `.dockercfg` shape without the `auths` level. Keys may be
//! written as a bare `host[:port]` or as a URL (`https://host/v1/`); both
//! name the same registry. Entries that only point at a credential helper
//! (`credsStore`) carry no secret here and are skipped.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::error::{Error, IoContext, Result};
use crate::reference::DOCKER_HUB;

/// A `--docker_config` file is small; anything bigger is not one.
const MAX_CONFIG: u64 = 1 << 20;

/// Spellings of Docker Hub found in docker configs.
const HUB_ALIASES: [&str; 4] = [
    "index.docker.io",
    "docker.io",
    "registry.hub.docker.com",
    DOCKER_HUB,
];

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Never prints the password.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", STANDARD.encode(pair))
    }
}

/// Credentials by registry (`host[:port]`, Docker Hub under
/// [`DOCKER_HUB`]).
#[derive(Clone, Debug, Default)]
pub struct DockerConfig {
    auths: BTreeMap<String, Credentials>,
}

impl DockerConfig {
    /// A `--docker_config` value: the JSON itself when it starts with `{`,
    /// else the path of the file (as Mesos reads the flag).
    pub fn from_flag(value: &str) -> Result<DockerConfig> {
        if value.trim_start().starts_with('{') {
            return DockerConfig::parse(value.as_bytes(), "--docker_config");
        }
        let path = Path::new(value);
        let size = std::fs::metadata(path).at(path)?.len();
        if size > MAX_CONFIG {
            return Err(Error::format(
                format!("docker config {value}"),
                format!("{size} bytes, more than {MAX_CONFIG}"),
            ));
        }
        let bytes = std::fs::read(path).at(path)?;
        DockerConfig::parse(&bytes, &format!("docker config {value}"))
    }

    pub fn parse(bytes: &[u8], what: &str) -> Result<DockerConfig> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::format(what, e))?;
        let Some(top) = value.as_object() else {
            return Err(Error::format(what, "not a JSON object"));
        };
        let entries = match top.get("auths") {
            Some(Value::Object(auths)) => auths,
            Some(_) => return Err(Error::format(what, "'auths' is not an object")),
            // The legacy `.dockercfg`: registries at the top level.
            None => top,
        };
        let mut auths = BTreeMap::new();
        for (key, entry) in entries {
            let Some(entry) = entry.as_object() else {
                continue;
            };
            let Some(credentials) = entry_credentials(entry, what, key)? else {
                tracing::debug!(registry = %key, "docker config entry without credentials; skipped");
                continue;
            };
            auths.insert(normalize_registry(key), credentials);
        }
        Ok(DockerConfig { auths })
    }

    pub fn insert(&mut self, registry: &str, credentials: Credentials) {
        self.auths.insert(normalize_registry(registry), credentials);
    }

    /// The credentials for `registry` (`host[:port]`), if any.
    pub fn credentials(&self, registry: &str) -> Option<&Credentials> {
        self.auths.get(&normalize_registry(registry))
    }
}

fn entry_credentials(
    entry: &serde_json::Map<String, Value>,
    what: &str,
    key: &str,
) -> Result<Option<Credentials>> {
    // The error names the registry, never the secret.
    let bad = |reason: &str| Error::format(what, format!("entry '{key}': {reason}"));
    if let Some(auth) = entry.get("auth").and_then(Value::as_str)
        && !auth.is_empty()
    {
        let decoded = STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("'auth' is not base64"))?;
        let text = String::from_utf8(decoded).map_err(|_| bad("'auth' is not UTF-8"))?;
        let (username, password) = text
            .split_once(':')
            .ok_or_else(|| bad("'auth' is not base64 of user:password"))?;
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    match (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        (Some(username), Some(password)) => Ok(Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        })),
        _ => Ok(None),
    }
}

/// `https://Host:5000/v1/` -> `host:5000`; Docker Hub's names -> one.
pub fn normalize_registry(key: &str) -> String {
    let rest = key
        .split_once("://")
        .map_or(key, |(_, rest)| rest)
        .trim_end_matches('/');
    let authority = rest.split('/').next().unwrap_or_default().to_lowercase();
    if HUB_ALIASES.contains(&authority.as_str()) {
        DOCKER_HUB.to_string()
    } else {
        authority
    }
}

/// What a `WWW-Authenticate` header asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Basic realm="x"` or `Bearer realm="...",service="...",scope="..."`.
/// `None` for schemes the client cannot answer.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

/// `k=v, k="quoted, with \"escapes\""` pairs; malformed tails are dropped.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() || chars.next() != Some('=') {
            return params;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return params;
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reads_auths_by_host_and_url_keys() {
        let json = format!(
            r#"{{"auths": {{
                "https://127.0.0.1:5000/v1/": {{"auth": "{}"}},
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "helper.example": {{}},
                "plain.example": {{"username": "u", "password": "p"}}
            }}, "credsStore": "desktop"}}"#,
            STANDARD.encode("alice:s3cr:et"),
            STANDARD.encode("hubuser:hubpass")
        );
        let config = DockerConfig::parse(json.as_bytes(), "c").unwrap();
        let local = config.credentials("127.0.0.1:5000").unwrap();
        assert_eq!(local.username, "alice");
        // Only the first ':' separates: passwords may hold colons.
        assert_eq!(local.password, "s3cr:et");
        assert_eq!(config.credentials(DOCKER_HUB).unwrap().username, "hubuser");
        assert_eq!(config.credentials("plain.example").unwrap().password, "p");
        assert!(config.credentials("helper.example").is_none());
        assert!(config.credentials("127.0.0.1:5001").is_none());
        assert!(!format!("{local:?}").contains("s3cr"));
    }

    #[test]
    fn reads_legacy_dockercfg() {
        let json = format!(
            r#"{{"registry.example:443": {{"auth": "{}", "email": "x@y"}}}}"#,
            STANDARD.encode("bob:pw")
        );
        let config = DockerConfig::parse(json.as_bytes(), "c").unwrap();
        assert_eq!(
            config.credentials("registry.example:443").unwrap().username,
            "bob"
        );
    }

    #[test]
    fn bad_configs_are_errors_without_the_secret() {
        let error = DockerConfig::parse(br#"{"auths":{"r":{"auth":"%%%"}}}"#, "c")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not base64"), "{error}");
        let no_colon = format!(
            r#"{{"auths":{{"r":{{"auth":"{}"}}}}}}"#,
            STANDARD.encode("x")
        );
        assert!(DockerConfig::parse(no_colon.as_bytes(), "c").is_err());
        assert!(DockerConfig::parse(b"[]", "c").is_err());
        assert!(DockerConfig::parse(br#"{"auths":[]}"#, "c").is_err());
        assert!(DockerConfig::parse(b"nope", "c").is_err());
    }

    #[test]
    fn flag_takes_json_or_a_path() {
        let json = format!(
            r#"{{"auths":{{"h:1":{{"auth":"{}"}}}}}}"#,
            STANDARD.encode("a:b")
        );
        assert!(
            DockerConfig::from_flag(&json)
                .unwrap()
                .credentials("h:1")
                .is_some()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, &json).unwrap();
        let config = DockerConfig::from_flag(path.to_str().unwrap()).unwrap();
        assert!(config.credentials("h:1").is_some());
        assert!(DockerConfig::from_flag("/nonexistent/config.json").is_err());
    }

    #[test]
    fn parses_challenges() {
        let header = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#;
        assert_eq!(
            parse_challenge(header),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://x/t , service = "s\"q""#),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: Some("s\"q".into()),
                scope: None,
            })
        );
        assert_eq!(parse_challenge("Bearer service=\"s\""), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer realm=\"unterminated"), None);
        assert_eq!(parse_challenge(""), None);
    }
}
