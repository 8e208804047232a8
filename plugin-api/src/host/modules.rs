//! Mesos's `--modules` flag, for operators who load plugins the way they
//! loaded Mesos modules: JSON, inline, `file://<path>` or an absolute
//! path, listing libraries and the modules each holds; or `--modules_dir`,
//! a folder of such files, read in name order.
//!
//! ```json
//! {"libraries": [{"file": "/usr/lib/mesos/libenv_isolator.so",
//!                 "modules": [{"name": "com.example.env_isolator",
//!                              "parameters": [{"key": "greeting", "value": "hi"}]}]}]}
//! ```
//!
//! A library is a dylib plugin and holds one module, named as the plugin
//! describes itself; its kind comes from `describe`. The parameters
//! reach `configure` as a JSON object (`{"greeting": "hi"}`). There is no
//! manifest, so no sha256 to check and no failure policy to choose: each
//! kind gets its default, as a `plugin.toml` without those lines would.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::manifest::{Config, DEFAULT_CALL_TIMEOUT, Kind, Manifest, Runtime};
use super::{LoadError, Loaded, Problem, check, describe_dylib, instance, read, sha256_hex};
use crate::abi::API_VERSION;
use crate::adapter::Policy;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Modules {
    #[serde(default)]
    libraries: Vec<Library>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Library {
    file: Option<PathBuf>,
    name: Option<String>,
    #[serde(default)]
    modules: Vec<Module>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Module {
    name: String,
    #[serde(default)]
    parameters: Vec<Parameter>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameter {
    key: String,
    value: String,
}

/// One module to load: which library, under which name, with which
/// configuration bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    pub file: PathBuf,
    pub name: String,
    pub config: Vec<u8>,
}

/// Parses the flag's value (the JSON, or `file://` and a path to it, or
/// an absolute path, as Mesos's JSON flags take).
pub fn parse(value: &str) -> Result<Vec<ModuleSpec>, String> {
    let path = value
        .strip_prefix("file://")
        .or_else(|| value.starts_with('/').then_some(value));
    match path {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            parse_json(&text).map_err(|e| format!("{path}: {e}"))
        }
        None => parse_json(value),
    }
}

/// Parses every file of `dir` (`--modules_dir`), in name order, as one
/// list. An error names the file.
pub fn parse_dir(dir: &Path) -> Result<Vec<ModuleSpec>, String> {
    let unreadable = |e: std::io::Error| format!("{}: {e}", dir.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut specs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        specs.extend(parse_json(&text).map_err(|e| format!("{}: {e}", file.display()))?);
    }
    Ok(specs)
}

fn parse_json(text: &str) -> Result<Vec<ModuleSpec>, String> {
    let modules: Modules = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut specs = Vec::new();
    for library in modules.libraries {
        let file = match (library.file, library.name) {
            (Some(file), _) if file.is_absolute() => file,
            (Some(file), _) => {
                return Err(format!(
                    "library file '{}' must be an absolute path",
                    file.display()
                ));
            }
            (None, Some(name)) => {
                return Err(format!(
                    "library '{name}' is given by name only; give its absolute 'file'"
                ));
            }
            (None, None) => return Err("a library has neither 'file' nor 'name'".into()),
        };
        let [module] = <[Module; 1]>::try_from(library.modules).map_err(|modules| {
            format!(
                "library {} lists {} modules; a plugin library holds exactly one",
                file.display(),
                modules.len()
            )
        })?;
        let parameters: serde_json::Map<String, serde_json::Value> = module
            .parameters
            .into_iter()
            .map(|p| (p.key, serde_json::Value::String(p.value)))
            .collect();
        specs.push(ModuleSpec {
            file,
            name: module.name,
            config: serde_json::Value::Object(parameters)
                .to_string()
                .into_bytes(),
        });
    }
    Ok(specs)
}

/// Loads every module of `specs`, in order.
pub fn load(specs: Vec<ModuleSpec>) -> Result<Vec<Loaded>, LoadError> {
    specs
        .into_iter()
        .map(|spec| {
            let name = spec.name.clone();
            load_module(spec).map_err(|problem| LoadError::Plugin {
                plugin: name,
                problem,
            })
        })
        .collect()
}

fn load_module(spec: ModuleSpec) -> Result<Loaded, Problem> {
    let sha256 = sha256_hex(&read(&spec.file)?);
    let mut manifest = Manifest {
        name: spec.name,
        // Known once the library describes itself.
        kind: Kind::Isolator,
        runtime: Runtime::Dylib,
        artifact: spec.file,
        sha256,
        api_versions: vec![API_VERSION.to_string()],
        policy: Policy::default(),
        call_timeout: DEFAULT_CALL_TIMEOUT,
        config: Some(Config::Inline(spec.config.clone())),
        permissions: Default::default(),
    };
    let (info, dylib) = describe_dylib(&manifest)?;
    manifest.kind = info
        .kinds
        .iter()
        .find_map(|k| Kind::parse(k))
        .ok_or_else(|| Problem::KindMismatch(info.kinds.join(", ")))?;
    manifest.policy.on_failure = manifest.kind.default_failure_policy();
    check(&manifest, &info)?;
    let envelope = dylib.configure(spec.config)?;
    Ok(Loaded {
        instance: instance(&manifest, envelope),
        version: info.version,
        manifest,
        host: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parameters_become_a_json_object() {
        let specs = parse(
            r#"{"libraries": [{"file": "/lib/libx.so", "modules": [
                {"name": "com.example.x", "parameters": [{"key": "a", "value": "1"}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            specs,
            [ModuleSpec {
                file: "/lib/libx.so".into(),
                name: "com.example.x".into(),
                config: br#"{"a":"1"}"#.to_vec(),
            }]
        );
    }

    #[test]
    fn a_modules_dir_is_read_in_name_order_and_a_path_is_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let list = |name: &str| {
            format!(
                r#"{{"libraries": [{{"file": "/lib/{name}.so", "modules": [{{"name": "{name}"}}]}}]}}"#
            )
        };
        std::fs::write(dir.path().join("b.json"), list("b")).unwrap();
        std::fs::write(dir.path().join("a.json"), list("a")).unwrap();
        std::fs::create_dir(dir.path().join("c.d")).unwrap();
        let names = |specs: Vec<ModuleSpec>| specs.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(parse_dir(dir.path()).unwrap()), ["a", "b"]);
        let b = dir.path().join("b.json").display().to_string();
        assert_eq!(names(parse(&b).unwrap()), ["b"]);
        assert_eq!(names(parse(&format!("file://{b}")).unwrap()), ["b"]);
        std::fs::write(dir.path().join("b.json"), "{").unwrap();
        let err = parse_dir(dir.path()).unwrap_err();
        assert!(err.contains("b.json: EOF"), "{err}");
    }

    #[test]
    fn bad_modules_say_what_is_wrong() {
        for (json, needle) in [
            ("{", "EOF"),
            (r#"{"libs": []}"#, "unknown field `libs`"),
            (
                r#"{"libraries": [{"name": "x", "modules": []}]}"#,
                "by name only",
            ),
            (r#"{"libraries": [{"file": "x.so"}]}"#, "absolute path"),
            (r#"{"libraries": [{"file": "/x.so"}]}"#, "lists 0 modules"),
            (
                r#"{"libraries": [{"file": "/x.so", "modules": [{"name": "a.b"}, {"name": "c.d"}]}]}"#,
                "lists 2 modules",
            ),
            (
                "file:///nonexistent/modules.json",
                "cannot read /nonexistent/modules.json",
            ),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
