//! `linux/seccomp`: containers run under a seccomp filter built from a
//! Docker-format profile, as in Mesos.
//!
//! Profiles live in `--seccomp_config_dir`. `--seccomp_profile_name` is the
//! default for every container; a container's `LinuxInfo.seccomp` picks
//! another profile of that directory by `profile_name`, or none with
//! `unconfined`. A bad default profile stops the agent; a bad or missing
//! profile a task asks for fails its launch, naming the profile.
//!
//! The launcher installs the filter in the executor's child as root, just
//! before the user switch, so the profile must allow what follows (the
//! switch, `execve`) and, for tasks in an image, `pivot_root`, which the
//! executor calls under the filter to enter the task's root filesystem.

mod bpf;
mod profile;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use mesos_plugin_api::isolator::{
    ContainerSpec, Isolator, IsolatorError, LaunchInfo, SeccompFilter, SeccompRequest,
};

pub use bpf::{Action, Arch, CompileError};
pub use profile::{Profile, ProfileError, Target};

use crate::LinuxCapabilities;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux/seccomp needs --seccomp_config_dir")]
    NoConfigDir,
    #[error("linux/seccomp does not know the system calls of {0}")]
    UnknownArch(&'static str),
    #[error(
        "seccomp profile name '{0}' must be a file name or a relative path inside --seccomp_config_dir"
    )]
    BadName(String),
    #[error("cannot read seccomp profile '{name}' at {path}: {source}")]
    Read {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seccomp profile '{name}': {source}")]
    Profile { name: String, source: ProfileError },
    #[error("seccomp profile '{name}': {source}")]
    Compile { name: String, source: CompileError },
}

/// `linux/seccomp`.
#[derive(Debug)]
pub struct LinuxSeccomp {
    config_dir: PathBuf,
    /// `--seccomp_profile_name`, read at start.
    default: Option<(String, Profile)>,
    /// `linux/capabilities` when it is on too: profiles' `caps` conditions
    /// are decided against the container's bounding set, all capabilities
    /// without it.
    capabilities: Option<LinuxCapabilities>,
    arch: Arch,
}

impl LinuxSeccomp {
    pub const NAME: &'static str = "linux/seccomp";

    /// Reads the default profile, and builds it once for a container with
    /// every capability so that a profile the kernel would refuse stops
    /// the agent rather than every launch.
    pub fn new(
        config_dir: Option<PathBuf>,
        default_profile: Option<String>,
        capabilities: Option<LinuxCapabilities>,
    ) -> Result<Self, SeccompError> {
        let config_dir = config_dir.ok_or(SeccompError::NoConfigDir)?;
        let arch = Arch::native().ok_or(SeccompError::UnknownArch(std::env::consts::ARCH))?;
        let mut seccomp = LinuxSeccomp {
            config_dir,
            default: None,
            capabilities,
            arch,
        };
        if let Some(name) = default_profile {
            let profile = seccomp.read(&name)?;
            seccomp.compile(&name, &profile, Target::running(u64::MAX))?;
            seccomp.default = Some((name, profile));
        }
        Ok(seccomp)
    }

    fn read(&self, name: &str) -> Result<Profile, SeccompError> {
        let relative = Path::new(name);
        if name.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(SeccompError::BadName(name.to_string()));
        }
        let path = self.config_dir.join(relative);
        let bytes = std::fs::read(&path).map_err(|source| SeccompError::Read {
            name: name.to_string(),
            path: path.clone(),
            source,
        })?;
        Profile::parse(&bytes).map_err(|source| SeccompError::Profile {
            name: name.to_string(),
            source,
        })
    }

    fn compile(
        &self,
        name: &str,
        profile: &Profile,
        target: Target,
    ) -> Result<SeccompFilter, SeccompError> {
        let filter = profile
            .filter(target)
            .map_err(|source| SeccompError::Profile {
                name: name.to_string(),
                source,
            })?;
        let program = bpf::compile(self.arch, &filter).map_err(|source| SeccompError::Compile {
            name: name.to_string(),
            source,
        })?;
        Ok(SeccompFilter {
            name: name.to_string(),
            program: Arc::from(program),
        })
    }

    /// The container's bounding set, as the launcher will leave it.
    fn capabilities_of(&self, spec: &ContainerSpec) -> Result<u64, IsolatorError> {
        Ok(match &self.capabilities {
            Some(capabilities) => capabilities
                .sets(spec)?
                .map_or(u64::MAX, |(bounding, _)| bounding),
            None => u64::MAX,
        })
    }
}

impl Isolator for LinuxSeccomp {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        let failed = |e: SeccompError| IsolatorError::Failed {
            isolator: Self::NAME,
            message: e.to_string(),
        };
        let read;
        let (name, profile) = match &spec.seccomp {
            SeccompRequest::Unconfined => return Ok(LaunchInfo::default()),
            SeccompRequest::AgentDefault => match &self.default {
                Some((name, profile)) => (name.as_str(), profile),
                None => return Ok(LaunchInfo::default()),
            },
            SeccompRequest::Profile(name) => {
                read = self.read(name).map_err(failed)?;
                (name.as_str(), &read)
            }
        };
        let target = Target::running(self.capabilities_of(spec)?);
        let filter = self.compile(name, profile, target).map_err(failed)?;
        Ok(LaunchInfo {
            seccomp_filters: vec![filter],
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENY_MKDIR: &str = r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#;

    fn spec(seccomp: SeccompRequest) -> ContainerSpec {
        ContainerSpec {
            container_id: "c".into(),
            seccomp,
            ..Default::default()
        }
    }

    fn dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("deny-mkdir.json"), DENY_MKDIR).unwrap();
        std::fs::create_dir(dir.path().join("nested")).unwrap();
        std::fs::write(
            dir.path().join("nested/allow.json"),
            r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.json"), r#"{"defaultAction": 1}"#).unwrap();
        dir
    }

    fn filters(isolator: &LinuxSeccomp, request: SeccompRequest) -> Vec<String> {
        isolator
            .prepare(&spec(request))
            .unwrap()
            .seccomp_filters
            .into_iter()
            .map(|f| f.name)
            .collect()
    }

    #[test]
    fn the_default_applies_unless_a_container_asks_otherwise() {
        let dir = dir();
        let isolator = LinuxSeccomp::new(
            Some(dir.path().into()),
            Some("deny-mkdir.json".into()),
            None,
        )
        .unwrap();
        assert_eq!(
            filters(&isolator, SeccompRequest::AgentDefault),
            ["deny-mkdir.json"]
        );
        assert!(filters(&isolator, SeccompRequest::Unconfined).is_empty());
        assert_eq!(
            filters(
                &isolator,
                SeccompRequest::Profile("nested/allow.json".into())
            ),
            ["nested/allow.json"]
        );
        let without_default = LinuxSeccomp::new(Some(dir.path().into()), None, None).unwrap();
        assert!(filters(&without_default, SeccompRequest::AgentDefault).is_empty());
    }

    #[test]
    fn bad_profiles_and_names_are_errors_naming_them() {
        let dir = dir();
        let start = |name: &str| {
            LinuxSeccomp::new(Some(dir.path().into()), Some(name.into()), None)
                .unwrap_err()
                .to_string()
        };
        assert!(start("missing.json").contains("cannot read seccomp profile 'missing.json'"));
        assert!(start("broken.json").contains("seccomp profile 'broken.json': not a Docker"));
        assert!(start("../etc/passwd").contains("must be a file name or a relative path"));
        assert!(start("/etc/passwd").contains("must be a file name or a relative path"));
        assert!(
            LinuxSeccomp::new(None, None, None)
                .unwrap_err()
                .to_string()
                .contains("--seccomp_config_dir")
        );

        let isolator = LinuxSeccomp::new(Some(dir.path().into()), None, None).unwrap();
        for (name, expected) in [
            ("missing.json", "cannot read seccomp profile 'missing.json'"),
            ("../deny-mkdir.json", "must be a file name"),
            ("broken.json", "not a Docker seccomp profile"),
        ] {
            let error = isolator
                .prepare(&spec(SeccompRequest::Profile(name.into())))
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("linux/seccomp: "), "{error}");
            assert!(error.contains(expected), "{error}");
        }
    }
}
