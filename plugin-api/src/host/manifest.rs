//! `plugin.toml`: what a plugin folder holds and how the host treats it.
//!
//! ```toml
//! name = "com.example.env_isolator"   # reverse-DNS; what --isolation names
//! kind = "isolator"                   # or "hook" (named by --hooks),
//!                                     # "volume_driver" (named by a task's
//!                                     # DockerVolume.driver), "network"
//!                                     # (named by NetworkInfo.name),
//!                                     # "rootfs_backend" (named by
//!                                     # --image_provisioner_backend),
//!                                     # "image_store" (--image_providers
//!                                     # and its images' registry part), or
//!                                     # "allocator" (master --allocator)
//! runtime = "dylib"
//! artifact = "libenv_isolator.so"     # relative to the folder
//! sha256 = "9f2c..."                  # of the artifact
//! api_versions = ["mesos.plugin.v1"]  # optional
//! failure_policy = "fail_closed"      # optional; fail_open logs and goes on
//!                                     # (the default of hooks)
//! call_timeout_ms = 5000              # optional
//! quarantine_after = 3                # optional; faults, 0 = never
//! config = "config.json"              # optional; bytes passed to configure
//! ```
//!
//! A WASM plugin says `runtime = "wasm"`, names a `.wasm` (or `.wat`)
//! artifact, a component or a core module, and may cap its memories with
//! `memory_limit_bytes` (default 64 MiB, all memories together);
//! `call_timeout_ms` is then its epoch deadline. It gets no WASI and, of
//! the host calls (`host::calls`), only what its permissions grant:
//!
//! ```toml
//! [permissions]
//! cgroup_knobs = ["cpu.shares"]       # knobs it may set in the cgroups
//!                                     # of the containers it is called
//!                                     # about
//! wasi = true                         # a small WASI (preview 1 for a
//!                                     # core module, 0.2 for a
//!                                     # component): stdout/stderr into
//!                                     # the agent's log, clocks, random;
//!                                     # no files, sockets or environment
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::adapter::{FailurePolicy, Policy};

pub const FILE_NAME: &str = "plugin.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Isolator,
    Hook,
    Allocator,
    VolumeDriver,
    Network,
    RootfsBackend,
    ImageStore,
}

impl Kind {
    /// The kind `describe` names so.
    pub fn parse(kind: &str) -> Option<Self> {
        [
            Self::Isolator,
            Self::Hook,
            Self::Allocator,
            Self::VolumeDriver,
            Self::Network,
            Self::RootfsBackend,
            Self::ImageStore,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }

    /// As `describe` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Isolator => crate::abi::kind::ISOLATOR,
            Self::Hook => crate::abi::kind::HOOK,
            Self::Allocator => crate::abi::kind::ALLOCATOR,
            Self::VolumeDriver => crate::abi::kind::VOLUME_DRIVER,
            Self::Network => crate::abi::kind::NETWORK,
            Self::RootfsBackend => crate::abi::kind::ROOTFS_BACKEND,
            Self::ImageStore => crate::abi::kind::IMAGE_STORE,
        }
    }

    /// Isolators fail closed (a container must not run without its
    /// isolation), and so do allocators (there is no offer to fall back
    /// on), volume drivers, networks, rootfs backends and image stores (a
    /// container does not start without the volume, network, root
    /// filesystem or image it asked for); hooks only decorate, and Mesos
    /// ignores their errors.
    pub(crate) fn default_failure_policy(self) -> FailurePolicy {
        match self {
            Self::Isolator
            | Self::Allocator
            | Self::VolumeDriver
            | Self::Network
            | Self::RootfsBackend
            | Self::ImageStore => FailurePolicy::FailClosed,
            Self::Hook => FailurePolicy::FailOpen,
        }
    }
}

/// How the artifact is run, with the settings of that runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Dylib,
    /// A WebAssembly component or core module (`host::wasm`); builds
    /// without the `wasm` feature refuse it at load.
    Wasm(WasmLimits),
}

/// What a WASM plugin's instance may use besides time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmLimits {
    /// The most its memories may hold together, in bytes.
    pub memory_bytes: u64,
}

pub const DEFAULT_WASM_MEMORY: u64 = 64 << 20;

impl Default for WasmLimits {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_WASM_MEMORY,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawRuntime {
    Dylib,
    Wasm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OnFailure {
    FailClosed,
    FailOpen,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    kind: Kind,
    runtime: RawRuntime,
    artifact: PathBuf,
    sha256: String,
    memory_limit_bytes: Option<u64>,
    api_versions: Option<Vec<String>>,
    failure_policy: Option<OnFailure>,
    call_timeout_ms: Option<u64>,
    quarantine_after: Option<u32>,
    config: Option<PathBuf>,
    permissions: Option<RawPermissions>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPermissions {
    cgroup_knobs: Option<Vec<String>>,
    wasi: Option<bool>,
}

/// What a WASM plugin may ask of the host besides answering calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Cgroup control files (`cpu.shares`) it may write in the cgroups of
    /// the containers it is called about.
    pub cgroup_knobs: Vec<String>,
    /// A small WASI: preview 1 for a core module, 0.2 for a component
    /// (`host::wasm::wasi`, `host::wasm::wasi_p2`).
    pub wasi: bool,
}

/// A parsed, checked manifest; paths are resolved against its folder.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub kind: Kind,
    pub runtime: Runtime,
    pub artifact: PathBuf,
    /// Lowercase hex.
    pub sha256: String,
    pub api_versions: Vec<String>,
    pub policy: Policy,
    pub call_timeout: Duration,
    pub config: Option<Config>,
    pub permissions: Permissions,
}

/// The bytes `configure` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    /// A file in the plugin's folder (`config` of `plugin.toml`).
    File(PathBuf),
    /// Given inline (a `--modules` entry's parameters).
    Inline(Vec<u8>),
}

pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

impl Manifest {
    /// Parses the text of `<dir>/plugin.toml`. Errors say what is wrong,
    /// not where the file is (the caller knows that).
    pub fn parse(text: &str, dir: &Path) -> Result<Self, String> {
        let raw: Raw = toml::from_str(text).map_err(|e| e.message().to_string())?;
        check_name(&raw.name)?;
        let sha256 = raw.sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "plugin '{}': sha256 must be 64 hex digits",
                raw.name
            ));
        }
        if raw.artifact.is_absolute() || raw.artifact.components().count() != 1 {
            return Err(format!(
                "plugin '{}': artifact must be a file name inside the plugin's folder",
                raw.name
            ));
        }
        let on_failure = match raw.failure_policy {
            Some(OnFailure::FailOpen) => FailurePolicy::FailOpen,
            Some(OnFailure::FailClosed) => FailurePolicy::FailClosed,
            None => raw.kind.default_failure_policy(),
        };
        let call_timeout = match raw.call_timeout_ms {
            Some(0) => {
                return Err(format!(
                    "plugin '{}': call_timeout_ms must be > 0",
                    raw.name
                ));
            }
            Some(ms) => Duration::from_millis(ms),
            None => DEFAULT_CALL_TIMEOUT,
        };
        let runtime = match (raw.runtime, raw.memory_limit_bytes) {
            (RawRuntime::Dylib, None) => Runtime::Dylib,
            (RawRuntime::Dylib, Some(_)) => {
                return Err(format!(
                    "plugin '{}': memory_limit_bytes applies to runtime \"wasm\" only",
                    raw.name
                ));
            }
            (RawRuntime::Wasm, limit) => {
                let memory_bytes = limit.unwrap_or(DEFAULT_WASM_MEMORY);
                // One WebAssembly page; less could not even instantiate.
                if memory_bytes < 65_536 {
                    return Err(format!(
                        "plugin '{}': memory_limit_bytes must be at least 65536 (one page)",
                        raw.name
                    ));
                }
                Runtime::Wasm(WasmLimits { memory_bytes })
            }
        };
        let (cgroup_knobs, wasi) = raw
            .permissions
            .map(|p| (p.cgroup_knobs.unwrap_or_default(), p.wasi.unwrap_or(false)))
            .unwrap_or_default();
        let permissions = Permissions { cgroup_knobs, wasi };
        for knob in &permissions.cgroup_knobs {
            check_knob(knob).map_err(|e| format!("plugin '{}': permissions: {e}", raw.name))?;
        }
        if runtime == Runtime::Dylib && permissions != Permissions::default() {
            return Err(format!(
                "plugin '{}': permissions apply to runtime \"wasm\" only (a dylib runs with the agent's own rights)",
                raw.name
            ));
        }
        Ok(Self {
            permissions,
            artifact: dir.join(&raw.artifact),
            config: raw.config.map(|c| Config::File(dir.join(c))),
            name: raw.name,
            kind: raw.kind,
            runtime,
            sha256,
            api_versions: raw
                .api_versions
                .unwrap_or_else(|| vec![crate::abi::API_VERSION.to_string()]),
            policy: Policy {
                on_failure,
                quarantine_after: raw
                    .quarantine_after
                    .unwrap_or(Policy::default().quarantine_after),
            },
            call_timeout,
        })
    }
}

/// A cgroup control file's name: `<controller>.<file>`, lowercase
/// letters, digits, '_' and '.', so never a path.
pub fn check_knob(knob: &str) -> Result<(), String> {
    let ok = knob.len() <= 64
        && knob.starts_with(|c: char| c.is_ascii_lowercase())
        && knob.contains('.')
        && !knob.ends_with('.')
        && knob
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{knob}' is not a cgroup control file name like cpu.shares"
        ))
    }
}

/// Plugin names are reverse-DNS (`com.example.my_isolator`): they contain
/// a dot and no slash, so they never collide with a built-in's name.
fn check_name(name: &str) -> Result<(), String> {
    let ok = name.contains('.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "plugin name '{name}' is not a reverse-DNS name like com.example.my_isolator"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const GOOD: &str = r#"
name = "com.example.x"
kind = "isolator"
runtime = "dylib"
artifact = "libx.so"
sha256 = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff"
"#;

    #[test]
    fn defaults_fail_closed_and_resolve_paths() {
        let m = Manifest::parse(GOOD, Path::new("/p/x")).unwrap();
        assert_eq!(m.artifact, Path::new("/p/x/libx.so"));
        assert_eq!(m.policy.on_failure, FailurePolicy::FailClosed);
        assert_eq!(m.call_timeout, DEFAULT_CALL_TIMEOUT);
        assert!(m.sha256.starts_with("0011") && m.sha256.ends_with("eeff"));
        assert_eq!(m.api_versions, vec!["mesos.plugin.v1"]);
    }

    #[test]
    fn wasm_plugins_get_a_memory_limit() {
        let wasm = GOOD.replace("\"dylib\"", "\"wasm\"");
        let m = Manifest::parse(&wasm, Path::new("/p")).unwrap();
        assert_eq!(m.runtime, Runtime::Wasm(WasmLimits::default()));
        let capped = format!("{wasm}memory_limit_bytes = 1048576\n");
        let m = Manifest::parse(&capped, Path::new("/p")).unwrap();
        assert_eq!(
            m.runtime,
            Runtime::Wasm(WasmLimits {
                memory_bytes: 1 << 20
            })
        );
    }

    #[test]
    fn hooks_fail_open_unless_told_otherwise() {
        let hook = GOOD.replace("isolator", "hook");
        let m = Manifest::parse(&hook, Path::new("/p")).unwrap();
        assert_eq!(m.kind, Kind::Hook);
        assert_eq!(m.policy.on_failure, FailurePolicy::FailOpen);
        let closed = format!("{hook}failure_policy = \"fail_closed\"\n");
        let m = Manifest::parse(&closed, Path::new("/p")).unwrap();
        assert_eq!(m.policy.on_failure, FailurePolicy::FailClosed);
    }

    #[test]
    fn every_kind_has_its_name_and_networks_and_volumes_fail_closed() {
        for (name, kind) in [
            ("isolator", Kind::Isolator),
            ("hook", Kind::Hook),
            ("allocator", Kind::Allocator),
            ("volume_driver", Kind::VolumeDriver),
            ("network", Kind::Network),
            ("rootfs_backend", Kind::RootfsBackend),
            ("image_store", Kind::ImageStore),
        ] {
            assert_eq!(Kind::parse(name), Some(kind));
            assert_eq!(kind.as_str(), name);
            let text = GOOD.replace("\"isolator\"", &format!("\"{name}\""));
            let m = Manifest::parse(&text, Path::new("/p")).unwrap();
            assert_eq!(m.kind, kind);
            let open = FailurePolicy::FailOpen;
            assert_eq!(m.policy.on_failure == open, kind == Kind::Hook, "{name}");
        }
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        for (text, needle) in [
            (GOOD.replace("com.example.x", "posix/x"), "reverse-DNS"),
            (GOOD.replace("isolator", "image_puller"), "unknown variant"),
            (
                GOOD.replace("libx.so", "../libx.so"),
                "inside the plugin's folder",
            ),
            (GOOD.replace("0011", "zz11"), "64 hex digits"),
            (format!("{GOOD}sha265 = \"x\"\n"), "sha265"),
            (GOOD.replace("runtime = \"dylib\"\n", ""), "runtime"),
            (
                format!("{GOOD}memory_limit_bytes = 1048576\n"),
                "wasm\" only",
            ),
            (
                format!(
                    "{}memory_limit_bytes = 1000\n",
                    GOOD.replace("dylib", "wasm")
                ),
                "one page",
            ),
        ] {
            let err = Manifest::parse(&text, Path::new("/p")).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
