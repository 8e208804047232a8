//! The part of an image's config a container needs at launch: entrypoint,
//! command, environment, working directory and user. Docker's config, the
//! legacy v1 layer `json` and the OCI image config share this shape under
//! `config` (`Entrypoint`, `Cmd`, `Env`, `WorkingDir`, `User`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` strings, in image order.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// What the image config file tells beyond the runtime config.
#[derive(Clone, Debug, Default)]
pub struct ParsedConfig {
    pub runtime: RuntimeConfig,
    /// `rootfs.diff_ids`: digests of the uncompressed layer tars, bottom
    /// first. Empty in legacy v1 layer `json` files.
    pub diff_ids: Vec<Digest>,
}

pub fn parse_config(bytes: &[u8], what: &str) -> Result<ParsedConfig> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::format(what, e))?;
    let Some(object) = value.as_object() else {
        return Err(Error::format(what, "not a JSON object"));
    };
    let runtime = match object.get("config") {
        Some(Value::Object(config)) => RuntimeConfig {
            entrypoint: strings(config.get("Entrypoint"), what, "Entrypoint")?,
            cmd: strings(config.get("Cmd"), what, "Cmd")?,
            env: strings(config.get("Env"), what, "Env")?,
            working_dir: string(config.get("WorkingDir"), what, "WorkingDir")?,
            user: string(config.get("User"), what, "User")?,
        },
        None | Some(Value::Null) => RuntimeConfig::default(),
        Some(_) => return Err(Error::format(what, "'config' is not an object")),
    };
    let diff_ids = match object.get("rootfs").and_then(|r| r.get("diff_ids")) {
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| match id.as_str() {
                Some(text) => Digest::parse(text),
                None => Err(Error::format(what, "diff_ids holds a non-string")),
            })
            .collect::<Result<Vec<_>>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(Error::format(what, "'rootfs.diff_ids' is not an array")),
    };
    Ok(ParsedConfig { runtime, diff_ids })
}

/// A string list that Docker writes as `null` when unset.
fn strings(value: Option<&Value>, what: &str, field: &str) -> Result<Vec<String>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::format(what, format!("'{field}' holds a non-string")))
            })
            .collect(),
        Some(_) => Err(Error::format(what, format!("'{field}' is not a list"))),
    }
}

/// An optional string where empty means unset.
fn string(value: Option<&Value>, what: &str, field: &str) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::format(what, format!("'{field}' is not a string"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reads_docker_config_fields_and_diff_ids() {
        let id = format!("sha256:{}", "1".repeat(64));
        let json = format!(
            r#"{{"architecture":"amd64","config":{{"Entrypoint":null,"Cmd":["sh"],
            "Env":["PATH=/bin"],"WorkingDir":"","User":"nobody"}},
            "rootfs":{{"type":"layers","diff_ids":["{id}"]}}}}"#
        );
        let parsed = parse_config(json.as_bytes(), "config").unwrap();
        assert_eq!(parsed.runtime.entrypoint, Vec::<String>::new());
        assert_eq!(parsed.runtime.cmd, vec!["sh"]);
        assert_eq!(parsed.runtime.env, vec!["PATH=/bin"]);
        assert_eq!(parsed.runtime.working_dir, None);
        assert_eq!(parsed.runtime.user.as_deref(), Some("nobody"));
        assert_eq!(parsed.diff_ids[0].to_string(), id);
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        assert!(parse_config(b"[]", "c").is_err());
        assert!(parse_config(br#"{"config":{"Cmd":"sh"}}"#, "c").is_err());
        assert!(parse_config(br#"{"config":{"Env":[1]}}"#, "c").is_err());
        assert!(parse_config(br#"{"rootfs":{"diff_ids":["md5:x"]}}"#, "c").is_err());
        assert!(parse_config(b"not json", "c").is_err());
    }
}
