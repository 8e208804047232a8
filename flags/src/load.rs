//! Collecting raw flag values from the command line and the environment.

use std::collections::HashMap;

use crate::{FlagValue, FlagsError};

/// One declared flag.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    pub name: &'static str,
    pub help: &'static str,
    pub default: Option<&'static str>,
    pub is_bool: bool,
}

/// The outcome of loading: the flags, or the help text the user asked for.
#[derive(Debug)]
pub enum Loaded<T> {
    Flags(T),
    Help(String),
}

const ENV_PREFIX: &str = "MESOS_";

/// Gathers `name -> raw value` from the environment and then the command
/// line (which overrides it). `None` means `--help` was asked for.
pub fn collect_raw<I, E>(
    specs: &[FlagSpec],
    args: I,
    env: E,
) -> Result<Option<HashMap<String, String>>, FlagsError>
where
    I: IntoIterator<Item = String>,
    E: IntoIterator<Item = (String, String)>,
{
    let spec = |name: &str| specs.iter().find(|s| s.name == name);
    let mut raw = HashMap::new();
    for (key, value) in env {
        let Some(name) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        // The environment is shared with other programs: unknown MESOS_*
        // variables are not ours to reject.
        if spec(&name).is_some() {
            raw.insert(name, value);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for arg in args {
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(FlagsError::Positional(arg));
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => match flag.strip_prefix("no-") {
                Some(negated) if spec(negated).is_some_and(|s| s.is_bool) => {
                    (negated.to_string(), "false".to_string())
                }
                Some(negated) if spec(negated).is_some() => {
                    return Err(FlagsError::NegatedNonBool(negated.to_string()));
                }
                _ => match spec(flag) {
                    Some(s) if s.is_bool => (flag.to_string(), "true".to_string()),
                    Some(_) => return Err(FlagsError::MissingValue(flag.to_string())),
                    None => return Err(FlagsError::Unknown(flag.to_string())),
                },
            },
        };
        if spec(&name).is_none() {
            return Err(FlagsError::Unknown(name));
        }
        if !seen.insert(name.clone()) {
            return Err(FlagsError::Duplicate(name));
        }
        raw.insert(name, value);
    }
    for (name, value) in raw.iter_mut() {
        if let Some(path) = value.strip_prefix("file://") {
            let contents = std::fs::read_to_string(path).map_err(|e| FlagsError::File {
                name: name.clone(),
                path: path.to_string(),
                reason: e.to_string(),
            })?;
            *value = contents.trim_end_matches(['\n', '\r']).to_string();
        }
    }
    Ok(Some(raw))
}

/// The typed value of one flag: given, else its default, else absent (only
/// `Option` flags may be).
pub fn resolve<T: FlagValue>(
    raw: &HashMap<String, String>,
    name: &str,
    default: Option<&str>,
) -> Result<T, FlagsError> {
    let parse = |value: &str| parse_as::<T>(name, value);
    match (raw.get(name), default) {
        (Some(value), _) => parse(value),
        (None, Some(default)) => parse(default),
        (None, None) => T::absent().ok_or_else(|| FlagsError::Required(name.to_string())),
    }
}

/// Parses a declared default, if there is one.
pub fn check_default<T: FlagValue>(name: &str, default: Option<&str>) -> Result<(), FlagsError> {
    match default {
        Some(default) => parse_as::<T>(name, default).map(drop),
        None => Ok(()),
    }
}

fn parse_as<T: FlagValue>(name: &str, value: &str) -> Result<T, FlagsError> {
    T::parse_flag(value).map_err(|reason| FlagsError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    })
}

/// The `--help` text: usage, then each flag with its help and default.
pub fn render_help(program: &str, specs: &[FlagSpec]) -> String {
    let mut out = format!("Usage: {program} [options]\n\n");
    for spec in specs {
        let usage = if spec.is_bool {
            format!("  --{0}, --no-{0}", spec.name)
        } else {
            format!("  --{}=VALUE", spec.name)
        };
        out.push_str(&usage);
        out.push('\n');
        // Doc comments arrive one line at a time, each with its leading
        // space; the help text wants them as one paragraph.
        let help = spec
            .help
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !help.is_empty() {
            out.push_str(&format!("      {help}\n"));
        }
        if let Some(default) = spec.default {
            out.push_str(&format!("      (default: {default})\n"));
        }
    }
    out.push_str(
        "\nEvery flag can also be set with the environment variable MESOS_<NAME>;\n\
         the command line wins. --name=file:///path reads the value from a file.\n",
    );
    out
}
