//! Isolators by name: `--isolation` resolves against this list, Mesos's
//! aliases included, and against the plugins loaded from `--plugin_dir`
//! (reverse-DNS names without a slash, so they never shadow a built-in).
//! The `posix/*` isolators and `filesystem/posix` only account (procfs
//! does that for every container), so they build nothing. Neither do
//! `docker/runtime`, `volume/host_path` and `volume/sandbox_path`: the
//! agent applies images' runtime config and volumes when it provisions a
//! container image (they are accepted so Mesos's `--isolation` lists work).

use std::path::PathBuf;
use std::sync::Arc;

use mesos_plugin_api::isolator::Isolator;
use mesos_plugin_api::network::Network;
use mesos_plugin_api::volume::VolumeDriver;

use crate::cgroups::Hierarchy;
use crate::cni::{NetworkCni, PluginDirs};
use crate::devices::CgroupsDevices;
use crate::{
    CgroupsBlkio, CgroupsCpu, CgroupsMem, CgroupsPids, DiskDu, DockerVolume, LinuxCapabilities,
    LinuxNnp, LinuxSeccomp, Namespaces,
};

/// Every isolator name this build knows.
pub const KNOWN: [&str; 21] = [
    "posix/cpu",
    "posix/mem",
    "filesystem/posix",
    "filesystem/linux",
    "docker/runtime",
    "volume/host_path",
    "volume/sandbox_path",
    "cgroups/cpu",
    "cgroups/mem",
    "cgroups/pids",
    "cgroups/blkio",
    "cgroups/devices",
    "cgroups/all",
    "namespaces/pid",
    "namespaces/ipc",
    "linux/capabilities",
    "linux/nnp",
    "linux/seccomp",
    "network/cni",
    "disk/du",
    "docker/volume",
];

/// What the built-in isolators need from the agent's flags.
#[derive(Debug, Clone)]
pub struct IsolationConfig {
    /// `--cgroups_hierarchy`.
    pub cgroups_hierarchy: PathBuf,
    /// `--cgroups_root`.
    pub cgroups_root: String,
    /// `--cgroups_enable_cfs`.
    pub enable_cfs: bool,
    /// `--cgroups_pids_max`.
    pub pids_max: Option<u64>,
    /// `--effective_capabilities`, one bit per capability number.
    pub effective_capabilities: Option<u64>,
    /// `--bounding_capabilities`, one bit per capability number.
    pub bounding_capabilities: Option<u64>,
    /// `--enforce_container_disk_quota`.
    pub enforce_disk_quota: bool,
    /// `--seccomp_config_dir`.
    pub seccomp_config_dir: Option<PathBuf>,
    /// `--seccomp_profile_name`.
    pub seccomp_profile_name: Option<String>,
    /// `--allowed_devices`, a JSON `DeviceWhitelist`.
    pub allowed_devices: Option<String>,
    /// `--network_cni_config_dir`.
    pub network_cni_config_dir: Option<PathBuf>,
    /// `--network_cni_plugins_dir`, a colon-separated search path.
    pub network_cni_plugins_dir: Option<String>,
    /// `--runtime_dir`: state that lives as long as the machine is up.
    pub runtime_dir: PathBuf,
    /// `--docker_volume_checkpoint_dir`.
    pub docker_volume_checkpoint_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("unknown or unsupported isolator '{name}' (available: {available})")]
    Unknown { name: String, available: String },
    #[error("{isolator} needs the {controller} cgroup controller, which is not mounted at {mount}")]
    NoController {
        isolator: String,
        controller: &'static str,
        mount: String,
    },
    #[error("{0} needs the agent to run as root")]
    NeedsRoot(String),
    #[error("only one of {0} can be used")]
    Conflict(String),
    #[error("linux/capabilities: {0}")]
    Capabilities(#[from] crate::capabilities::CapabilityError),
    #[error("cgroups/devices: {0}")]
    Devices(#[from] crate::devices::DevicesError),
    #[error("network/cni: {0}")]
    Cni(String),
    /// A `SeccompError`, as text (it may carry an `io::Error`).
    #[error("linux/seccomp: {0}")]
    Seccomp(String),
    #[error("{isolator} needs {namespace} namespaces, which this kernel does not have")]
    NoNamespace {
        isolator: String,
        namespace: &'static str,
    },
}

/// Mesos's deprecated aliases replaced by what they stand for.
pub fn expand(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let expanded: &[&str] = match name.as_str() {
            "process" => &["posix/cpu", "posix/mem"],
            "cgroups" => &["cgroups/cpu", "cgroups/mem"],
            other => &[other][..],
        };
        for n in expanded {
            if !out.iter().any(|o| o == n) {
                out.push((*n).to_string());
            }
        }
    }
    out
}

/// Checks names against the built-ins and the loaded plugins' names.
pub fn validate(names: &[String], plugins: &[&str]) -> Result<(), RegistryError> {
    // Mesos allows exactly one filesystem isolator.
    let expanded = expand(names);
    if expanded.iter().any(|n| n == "filesystem/posix")
        && expanded.iter().any(|n| n == "filesystem/linux")
    {
        return Err(RegistryError::Conflict(
            "filesystem/posix and filesystem/linux".into(),
        ));
    }
    match expand(names)
        .into_iter()
        .find(|n| !KNOWN.contains(&n.as_str()) && !plugins.contains(&n.as_str()))
    {
        Some(name) => Err(RegistryError::Unknown {
            name,
            available: KNOWN
                .iter()
                .chain(plugins)
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
        }),
        None => Ok(()),
    }
}

/// The cgroups isolators and the controller each needs, on v1.
const CGROUPS_ISOLATORS: [(&str, &str); 5] = [
    ("cgroups/cpu", "cpu"),
    ("cgroups/mem", "memory"),
    ("cgroups/pids", "pids"),
    ("cgroups/blkio", "blkio"),
    ("cgroups/devices", "devices"),
];

/// The controller a cgroups isolator needs in `hierarchy`: blkio is `io`
/// on v2.
fn controller_of(v1_controller: &'static str, hierarchy: &Hierarchy) -> &'static str {
    match v1_controller {
        "blkio" => CgroupsBlkio::controller(hierarchy.version()),
        other => other,
    }
}

/// `cgroups/all` replaced, where it stands, by every cgroups isolator
/// whose controller this host has (as in Mesos), less those named anyway.
fn with_all_cgroups(names: Vec<String>, hierarchy: &Hierarchy) -> Vec<String> {
    let mut out = Vec::new();
    for name in &names {
        if name != "cgroups/all" {
            out.push(name.clone());
            continue;
        }
        for (isolator, controller) in CGROUPS_ISOLATORS {
            if hierarchy.has(controller_of(controller, hierarchy))
                && !names.iter().any(|n| n == isolator)
            {
                out.push(isolator.to_string());
            }
        }
    }
    out
}

/// `network/cni` from its flags and the network plugins: without a
/// configuration directory it knows no CNI network, and with one it needs
/// the plugins' directory, as in Mesos.
fn network_cni(
    config: &IsolationConfig,
    networks: &[Arc<dyn Network>],
) -> Result<NetworkCni, RegistryError> {
    let root = config.runtime_dir.join("isolators/network/cni");
    let cni = match &config.network_cni_config_dir {
        None => {
            if networks.is_empty() {
                tracing::warn!("network/cni without --network_cni_config_dir: no CNI networks");
            }
            NetworkCni::empty(root)
        }
        Some(config_dir) => {
            let plugins = config.network_cni_plugins_dir.as_deref().ok_or_else(|| {
                RegistryError::Cni(
                    "--network_cni_config_dir needs --network_cni_plugins_dir".into(),
                )
            })?;
            NetworkCni::new(config_dir, PluginDirs::parse(plugins), root)
                .map_err(|e| RegistryError::Cni(e.to_string()))?
        }
    };
    cni.with_networks(networks)
        .map_err(|e| RegistryError::Cni(e.to_string()))
}

/// Checks what can be checked before plugins are loaded (flag parsing):
/// names in the built-ins' `a/b` namespace and the aliases. Other names
/// may be plugins and are checked by [`build`].
pub fn validate_builtin(names: &[String]) -> Result<(), RegistryError> {
    let builtin: Vec<String> = names.iter().filter(|n| n.contains('/')).cloned().collect();
    validate(&builtin, &[])
}

/// The plugins the built isolators may use.
#[derive(Default)]
pub struct Plugins<'a> {
    /// Isolators, selected by their names.
    pub isolators: &'a [Arc<dyn Isolator>],
    /// Volume drivers, for `docker/volume`.
    pub volume_drivers: &'a [Arc<dyn VolumeDriver>],
    /// Networks, for `network/cni`.
    pub networks: &'a [Arc<dyn Network>],
}

/// The isolators `names` select, in order, built-ins and `plugins`.
pub fn build(
    names: &[String],
    config: &IsolationConfig,
    plugins: &Plugins<'_>,
) -> Result<Vec<Arc<dyn Isolator>>, RegistryError> {
    let plugin_names: Vec<&str> = plugins.isolators.iter().map(|p| p.name()).collect();
    validate(names, &plugin_names)?;
    let hierarchy = Hierarchy::detect(&config.cgroups_hierarchy, &config.cgroups_root);
    let need = |isolator: &str, controller: &'static str| {
        if hierarchy.has(controller) {
            Ok(())
        } else {
            Err(RegistryError::NoController {
                isolator: isolator.to_string(),
                controller,
                mount: config.cgroups_hierarchy.display().to_string(),
            })
        }
    };
    let names = with_all_cgroups(expand(names), &hierarchy);
    if config.pids_max.is_some() && !names.iter().any(|n| n == "cgroups/pids") {
        tracing::warn!(
            "--cgroups_pids_max is set without cgroups/pids in --isolation: no limit applies"
        );
    }
    if (config.effective_capabilities.is_some() || config.bounding_capabilities.is_some())
        && !names.iter().any(|n| n == LinuxCapabilities::NAME)
    {
        tracing::warn!(
            "--effective_capabilities or --bounding_capabilities is set without linux/capabilities in --isolation: containers keep their capabilities"
        );
    }
    let with_capabilities = names.iter().any(|n| n == LinuxCapabilities::NAME);
    let mut isolators: Vec<Arc<dyn Isolator>> = Vec::new();
    for name in names {
        match name.as_str() {
            "cgroups/cpu" => {
                need(&name, "cpu")?;
                isolators.push(Arc::new(CgroupsCpu::new(
                    hierarchy.clone(),
                    config.enable_cfs,
                )));
            }
            "cgroups/mem" => {
                need(&name, "memory")?;
                isolators.push(Arc::new(CgroupsMem::new(hierarchy.clone())));
            }
            "cgroups/pids" => {
                need(&name, "pids")?;
                isolators.push(Arc::new(CgroupsPids::new(
                    hierarchy.clone(),
                    config.pids_max,
                )));
            }
            "cgroups/blkio" => {
                need(&name, CgroupsBlkio::controller(hierarchy.version()))?;
                isolators.push(Arc::new(CgroupsBlkio::new(
                    hierarchy.clone(),
                    PathBuf::from("/sys/block"),
                )));
            }
            "cgroups/devices" => {
                need(&name, "devices")?;
                let allowed = match &config.allowed_devices {
                    Some(json) => crate::devices::parse_allowed(json)?,
                    None => Vec::new(),
                };
                isolators.push(Arc::new(CgroupsDevices::new(hierarchy.clone(), allowed)?));
            }
            // Only root can give capabilities away for another process
            // (CAP_SETPCAP), as in Mesos.
            "linux/capabilities" if !nix::unistd::geteuid().is_root() => {
                return Err(RegistryError::NeedsRoot(name));
            }
            "linux/capabilities" => {
                isolators.push(Arc::new(LinuxCapabilities::new(
                    config.effective_capabilities,
                    config.bounding_capabilities,
                )?));
            }
            "linux/nnp" => isolators.push(Arc::new(LinuxNnp)),
            // Without no_new_privs, only root may install a filter.
            "linux/seccomp" if !nix::unistd::geteuid().is_root() => {
                return Err(RegistryError::NeedsRoot(name));
            }
            "linux/seccomp" => {
                let capabilities = with_capabilities
                    .then(|| {
                        LinuxCapabilities::new(
                            config.effective_capabilities,
                            config.bounding_capabilities,
                        )
                    })
                    .transpose()?;
                isolators.push(Arc::new(
                    LinuxSeccomp::new(
                        config.seccomp_config_dir.clone(),
                        config.seccomp_profile_name.clone(),
                        capabilities,
                    )
                    .map_err(|e| RegistryError::Seccomp(e.to_string()))?,
                ));
            }
            // It creates network namespaces and runs plugins that
            // configure them.
            "network/cni" if !nix::unistd::geteuid().is_root() => {
                return Err(RegistryError::NeedsRoot(name));
            }
            "network/cni" => isolators.push(Arc::new(network_cni(config, plugins.networks)?)),
            "disk/du" => isolators.push(Arc::new(DiskDu::new(config.enforce_disk_quota))),
            // It mounts (rootfs, volumes, /proc) for every container.
            "filesystem/linux" if !nix::unistd::geteuid().is_root() => {
                return Err(RegistryError::NeedsRoot(name));
            }
            "namespaces/pid" | "namespaces/ipc" | "filesystem/linux" => {
                let namespaces = match name.as_str() {
                    "namespaces/pid" => Namespaces::pid(),
                    "namespaces/ipc" => Namespaces::ipc(),
                    _ => Namespaces::filesystem_linux(),
                };
                if let Some(namespace) = namespaces.missing_in(std::path::Path::new("/proc")) {
                    return Err(RegistryError::NoNamespace {
                        isolator: name,
                        namespace,
                    });
                }
                isolators.push(Arc::new(namespaces));
            }
            // It mounts volumes into containers' mount namespaces.
            "docker/volume" if !nix::unistd::geteuid().is_root() => {
                return Err(RegistryError::NeedsRoot(name));
            }
            "docker/volume" => isolators.push(Arc::new(DockerVolume::new(
                plugins.volume_drivers,
                config
                    .docker_volume_checkpoint_dir
                    .clone()
                    .unwrap_or_else(|| config.runtime_dir.join("isolators/docker/volume")),
            ))),
            plugin => {
                if let Some(p) = plugins.isolators.iter().find(|p| p.name() == plugin) {
                    isolators.push(Arc::clone(p));
                }
            }
        }
    }
    Ok(isolators)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing but the cgroupfs at `cgroups`.
    fn config(cgroups: &std::path::Path) -> IsolationConfig {
        IsolationConfig {
            cgroups_hierarchy: cgroups.to_path_buf(),
            cgroups_root: "mesos".into(),
            enable_cfs: false,
            pids_max: None,
            effective_capabilities: None,
            bounding_capabilities: None,
            enforce_disk_quota: false,
            seccomp_config_dir: None,
            seccomp_profile_name: None,
            allowed_devices: None,
            network_cni_config_dir: None,
            network_cni_plugins_dir: None,
            runtime_dir: PathBuf::from("/nonexistent"),
            docker_volume_checkpoint_dir: None,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn aliases_expand_and_unknown_names_are_named() {
        assert_eq!(
            expand(&names(&["cgroups", "cgroups/mem", "process"])),
            names(&["cgroups/cpu", "cgroups/mem", "posix/cpu", "posix/mem"])
        );
        let err = validate(&names(&["posix/cpu", "com.example/isolator"]), &[]).unwrap_err();
        assert!(err.to_string().contains("'com.example/isolator'"), "{err}");
        // Plugin names wait for the plugins to be loaded...
        validate_builtin(&names(&["posix/cpu", "com.example.isolator"])).unwrap();
        assert!(validate_builtin(&names(&["posix/typo"])).is_err());
        // ...and are then known or not.
        validate(
            &names(&["cgroups", "com.example.isolator"]),
            &["com.example.isolator"],
        )
        .unwrap();
        let err = validate(&names(&["com.example.other"]), &["com.example.isolator"]).unwrap_err();
        assert!(err.to_string().contains("'com.example.other'"), "{err}");
        assert!(err.to_string().contains("com.example.isolator"), "{err}");
    }

    #[test]
    fn cgroups_all_stands_for_the_controllers_this_host_has() {
        let fake = tempfile::tempdir().unwrap();
        for controller in ["cpu", "memory", "blkio", "devices"] {
            std::fs::create_dir_all(fake.path().join(controller)).unwrap();
        }
        let hierarchy = Hierarchy::detect(fake.path(), "mesos");
        assert_eq!(
            with_all_cgroups(
                names(&["posix/cpu", "cgroups/all", "cgroups/mem"]),
                &hierarchy
            ),
            names(&[
                "posix/cpu",
                "cgroups/cpu",
                "cgroups/blkio",
                "cgroups/devices",
                "cgroups/mem"
            ])
        );

        // v2 calls blkio `io`, and controls devices without a controller.
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "io memory pids\n").unwrap();
        let hierarchy = Hierarchy::detect(v2.path(), "mesos");
        assert_eq!(
            with_all_cgroups(names(&["cgroups/all"]), &hierarchy),
            names(&[
                "cgroups/mem",
                "cgroups/pids",
                "cgroups/blkio",
                "cgroups/devices"
            ])
        );
        let built = build(
            &names(&["cgroups/blkio"]),
            &config(v2.path()),
            &Plugins::default(),
        )
        .unwrap();
        assert_eq!(built[0].name(), "cgroups/blkio");
    }

    #[test]
    fn a_missing_controller_stops_the_build() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fake.path().join("cpu")).unwrap();
        let config = config(fake.path());
        let built = build(
            &names(&["posix/cpu", "cgroups/cpu"]),
            &config,
            &Plugins::default(),
        )
        .unwrap();
        assert_eq!(
            built.iter().map(|i| i.name()).collect::<Vec<_>>(),
            vec!["cgroups/cpu"]
        );
        let err = match build(&names(&["cgroups/mem"]), &config, &Plugins::default()) {
            Err(e) => e,
            Ok(_) => panic!("built without a memory controller"),
        };
        assert!(matches!(
            err,
            RegistryError::NoController {
                controller: "memory",
                ..
            }
        ));
    }

    #[test]
    fn pids_needs_its_controller_and_namespaces_need_nothing_more() {
        let fake = tempfile::tempdir().unwrap();
        let mut config = IsolationConfig {
            pids_max: Some(100),
            ..config(fake.path())
        };
        let err = match build(&names(&["cgroups/pids"]), &config, &Plugins::default()) {
            Err(e) => e,
            Ok(_) => panic!("built without a pids controller"),
        };
        assert!(err.to_string().contains("pids cgroup controller"), "{err}");
        std::fs::create_dir_all(fake.path().join("pids")).unwrap();
        config.cgroups_hierarchy = fake.path().to_path_buf();
        let built = build(
            &names(&[
                "cgroups/pids",
                "namespaces/pid",
                "namespaces/ipc",
                "docker/runtime",
            ]),
            &config,
            &Plugins::default(),
        )
        .unwrap();
        assert_eq!(
            built.iter().map(|i| i.name()).collect::<Vec<_>>(),
            vec!["cgroups/pids", "namespaces/pid", "namespaces/ipc"]
        );
        match build(&names(&["filesystem/linux"]), &config, &Plugins::default()) {
            Ok(built) => {
                assert!(nix::unistd::geteuid().is_root());
                assert_eq!(built[0].name(), "filesystem/linux");
            }
            Err(e) => assert_eq!(e, RegistryError::NeedsRoot("filesystem/linux".into())),
        }
        assert!(
            validate(&names(&["filesystem/posix", "filesystem/linux"]), &[])
                .unwrap_err()
                .to_string()
                .contains("only one of")
        );
    }

    #[test]
    fn capabilities_and_nnp_are_built_by_name() {
        let fake = tempfile::tempdir().unwrap();
        let mut config = IsolationConfig {
            effective_capabilities: Some(0x2000),
            bounding_capabilities: Some(0x2001),
            ..config(fake.path())
        };
        let built = build(&names(&["linux/nnp"]), &config, &Plugins::default()).unwrap();
        assert_eq!(built[0].name(), "linux/nnp");
        match build(
            &names(&["linux/capabilities", "linux/nnp"]),
            &config,
            &Plugins::default(),
        ) {
            Ok(built) => {
                assert!(nix::unistd::geteuid().is_root());
                assert_eq!(
                    built.iter().map(|i| i.name()).collect::<Vec<_>>(),
                    vec!["linux/capabilities", "linux/nnp"]
                );
                // The flags' effective set must lie within their bounding set.
                config.effective_capabilities = Some(0x1000);
                let err = match build(
                    &names(&["linux/capabilities"]),
                    &config,
                    &Plugins::default(),
                ) {
                    Err(e) => e.to_string(),
                    Ok(_) => panic!("built with NET_ADMIN outside the bounding set"),
                };
                assert!(err.contains("[NET_ADMIN]"), "{err}");
            }
            Err(e) => assert_eq!(e, RegistryError::NeedsRoot("linux/capabilities".into())),
        }
    }
}
