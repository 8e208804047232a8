//! The contract suite: the same calls made to two forms of one plugin,
//! which must answer alike, call for call (results, errors, timeouts,
//! quarantine). Plugin authors run it from their crate's tests against
//! the in-process form of their type and the `cdylib` cargo built (or,
//! feature `wasm`, a WASM module of the same plugin):
//!
//! ```ignore
//! let seen = contract::compare::<MyIsolator>(&contract::artifact("my_isolator"), contract::Limits::default())?;
//! let seen = contract::compare_hook::<MyHook>(&contract::artifact("my_hook"), contract::Limits::default())?;
//! let seen = contract::compare_allocator::<MyAllocator>(&contract::artifact("my_allocator"), contract::Limits::default())?;
//! let seen = contract::compare_volume_driver::<MyDriver>(&contract::artifact("my_driver"), b"config", contract::Limits::default())?;
//! let seen = contract::compare_rootfs_backend::<MyBackend>(&contract::artifact("my_backend"), b"config", scratch_dir, contract::Limits::default())?;
//! let seen = contract::compare_image_store::<MyStore>(&contract::artifact("my_store"), b"config", &["app:1"], scratch_dir, contract::Limits::default())?;
//! let seen = contract::compare_network::<MyNetwork>(&contract::artifact("my_network"), b"config", contract::Limits::default())?;
//! let seen = contract::compare_wasm::<MyIsolator>(Path::new("my_isolator.wasm"), contract::Limits::default())?;
//! let seen = contract::compare_allocator_wasm::<MyAllocator>(Path::new("my_allocator.wasm"), contract::Limits::default())?;
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use mesos_proto::v1;

use crate::abi::API_VERSION;
use crate::adapter::{self, Policy};
use crate::allocator::{AgentSpec, Allocator, FrameworkSpec};
use crate::hook::{Containerizer, Hook, PreLaunch};
use crate::host::{self, manifest};
use crate::image::{ImageName, ImageStore};
use crate::isolator::{ContainerSpec, Isolator};
use crate::rootfs::{Container, RootfsBackend, RootfsLayer};
use crate::sdk::{
    AllocatorHost, AllocatorPlugin, HookPlugin, ImageStorePlugin, IsolatorPlugin,
    RootfsBackendPlugin, VolumeDriverPlugin,
};
use crate::volume::{VolumeDriver, VolumeSpec};

mod network;
pub use network::{compare_network, observe_network};

/// Where cargo put the `cdylib` of library `lib` for the running test:
/// beside the test binary.
pub fn artifact(lib: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .unwrap_or(Path::new("."))
        .join(format!("lib{lib}.so"))
}

/// Whether the test runs as root, which kernel-facing plugins (mounts,
/// namespaces) need to be observed. Not as root, it prints why the test
/// (`what`) is skipped and answers `Ok(false)`; under `CI=true`, where
/// tests run as root and a skip is a failure, it is an error.
pub fn root_or_skip(what: &str) -> Result<bool, String> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        return Ok(true);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        return Err(format!("{what} needs root, and CI runs as root"));
    }
    eprintln!("SKIPPED: {what} needs root");
    Ok(false)
}

/// The component form of a core module's text ([`host::shell`]): how
/// the WAT fixtures get a component form without a second copy of their
/// logic. `None` if `core` holds no `(module`.
pub fn in_component_shell(core: &str) -> Option<String> {
    host::shell::in_component_shell(core)
}

/// The host settings both forms get.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub call_timeout: Duration,
    pub policy: Policy,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Generous: a panic hook printing a backtrace takes time too.
            call_timeout: Duration::from_secs(2),
            policy: Policy {
                quarantine_after: 2,
                ..Policy::default()
            },
        }
    }
}

/// Container `c1` with half a CPU and 32 MB.
fn spec() -> ContainerSpec {
    let scalar = |name: &str, value: f64| v1::Resource {
        name: name.into(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value }),
        ..Default::default()
    };
    ContainerSpec {
        container_id: "c1".into(),
        resources: vec![scalar("cpus", 0.5), scalar("mem", 32.0)].into(),
        capabilities: Default::default(),
        sandbox: Default::default(),
        ..Default::default()
    }
}

/// What the agent can observe of an isolator over one container's life,
/// each call's result or error as text, in this order: recover, prepare,
/// update, usage, limitation, prepare, prepare, cleanup. The repeated
/// prepares show what follows a fault (quarantine, a wedged plugin).
pub fn observe(isolator: &dyn Isolator) -> Vec<String> {
    let spec = spec();
    let text = |e: crate::isolator::IsolatorError| e.to_string();
    vec![
        format!("{:?}", isolator.recover(&["c0".into()]).map_err(text)),
        format!("{:?}", isolator.prepare(&spec).map_err(text)),
        format!("{:?}", isolator.update(&spec).map_err(text)),
        format!("{:?}", isolator.usage("c1").map_err(text)),
        format!("{:?}", isolator.limitation("c1").map_err(text)),
        format!("{:?}", isolator.prepare(&spec).map_err(text)),
        format!("{:?}", isolator.prepare(&spec).map_err(text)),
        format!("{:?}", isolator.cleanup("c1").map_err(text)),
    ]
}

/// What the agent can observe of a hook over one task's life, each
/// call's result or error as text, in this order: run-task labels,
/// executor environment, pre-launch of a Mesos container, pre-launch of a
/// Docker container, status, remove executor, post-fetch with what the
/// sandbox then holds (a scratch one in the temporary directory, with one
/// fetched file), the agent's resources and attributes, and the master's
/// task labels, agent-lost hook and task resources.
pub fn observe_hook(hook: &dyn Hook) -> Vec<String> {
    let label = |key: &str, value: &str| v1::Label {
        key: key.into(),
        value: Some(value.into()),
    };
    let task = v1::TaskInfo {
        name: "t1".into(),
        task_id: v1::TaskId { value: "t1".into() },
        labels: Some(v1::Labels {
            labels: vec![label("team", "a")],
        }),
        ..Default::default()
    };
    let executor = v1::ExecutorInfo {
        executor_id: v1::ExecutorId { value: "t1".into() },
        command: Some(v1::CommandInfo {
            value: Some("mesos-executor".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let framework = v1::FrameworkInfo {
        name: "f".into(),
        ..Default::default()
    };
    let launch = |containerizer| PreLaunch {
        containerizer,
        task: Some(task.clone()),
        executor: executor.clone(),
        container_id: "c1".into(),
        container_name: (containerizer == Containerizer::Docker).then(|| "mesos-c1".into()),
        sandbox_directory: "/sandbox".into(),
        mapped_sandbox_directory: "/mnt/mesos/sandbox".into(),
        added: Default::default(),
    };
    let status = v1::TaskStatus {
        task_id: task.task_id.clone(),
        state: v1::TaskState::TaskRunning as i32,
        ..Default::default()
    };
    let agent = v1::AgentInfo {
        hostname: "a1".into(),
        resources: cpus_mem(1.0, 128.0).into_vec(),
        attributes: vec![v1::Attribute {
            name: "rack".into(),
            r#type: v1::value::Type::Text as i32,
            text: Some(v1::value::Text { value: "r1".into() }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let text = |e: crate::hook::HookError| e.to_string();
    vec![
        format!(
            "{:?}",
            hook.slave_run_task_label_decorator(&task, &executor, &framework, &Default::default())
                .map_err(text)
        ),
        format!(
            "{:?}",
            hook.slave_executor_environment_decorator(&executor)
                .map_err(text)
        ),
        format!(
            "{:?}",
            hook.slave_pre_launch_decorator(&launch(Containerizer::Mesos))
                .map_err(text)
        ),
        format!(
            "{:?}",
            hook.slave_pre_launch_decorator(&launch(Containerizer::Docker))
                .map_err(text)
        ),
        format!(
            "{:?}",
            hook.slave_task_status_decorator("f1", &status)
                .map_err(text)
        ),
        format!(
            "{:?}",
            hook.slave_remove_executor_hook(&framework, &executor)
                .map_err(text)
        ),
        observe_post_fetch(hook),
        format!("{:?}", hook.slave_resources_decorator(&agent).map_err(text)),
        format!(
            "{:?}",
            hook.slave_attributes_decorator(&agent).map_err(text)
        ),
        format!(
            "{:?}",
            hook.master_launch_task_label_decorator(&task, &framework, &agent)
                .map_err(text)
        ),
        format!("{:?}", hook.master_slave_lost_hook(&agent).map_err(text)),
        format!(
            "{:?}",
            hook.master_launch_task_resource_decorator(&task, &agent.resources)
                .map_err(text)
        ),
    ]
}

/// The post-fetch hook's result on a sandbox holding `artifact.txt`, and
/// the sandbox's [`tree`] after it.
fn observe_post_fetch(hook: &dyn Hook) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SANDBOXES: AtomicU32 = AtomicU32::new(0);
    let sandbox = std::env::temp_dir().join(format!(
        "mesos-hook-contract-{}-{}",
        std::process::id(),
        SANDBOXES.fetch_add(1, Ordering::Relaxed)
    ));
    let made = std::fs::create_dir_all(&sandbox)
        .and_then(|()| std::fs::write(sandbox.join("artifact.txt"), "fetched"));
    if let Err(e) = made {
        return format!("no scratch sandbox: {e}");
    }
    let result = hook
        .slave_post_fetch_hook("c1", &sandbox.display().to_string())
        .map_err(|e| e.to_string());
    let seen = format!("{result:?} {:?}", tree(&sandbox));
    let _ = std::fs::remove_dir_all(&sandbox);
    seen
}

/// The dylib form of plugin `name` of `kind`, loaded from `artifact`.
fn load_dylib(
    name: &str,
    kind: manifest::Kind,
    artifact: &Path,
    limits: Limits,
    config: Option<&[u8]>,
) -> Result<host::Loaded, String> {
    load_form(
        name,
        kind,
        manifest::Runtime::Dylib,
        artifact,
        limits,
        config,
        manifest::Permissions::default(),
    )
    .map_err(|e| format!("dylib form: {e}"))
}

/// The form of plugin `name` of `kind` that `runtime` loads from
/// `artifact`, with `permissions` granted.
fn load_form(
    name: &str,
    kind: manifest::Kind,
    runtime: manifest::Runtime,
    artifact: &Path,
    limits: Limits,
    config: Option<&[u8]>,
    permissions: manifest::Permissions,
) -> Result<host::Loaded, String> {
    let bytes = std::fs::read(artifact).map_err(|e| format!("{}: {e}", artifact.display()))?;
    host::load_manifest(manifest::Manifest {
        name: name.to_string(),
        kind,
        runtime,
        artifact: artifact.to_path_buf(),
        sha256: host::sha256_hex(&bytes),
        api_versions: vec![API_VERSION.to_string()],
        policy: limits.policy,
        call_timeout: limits.call_timeout,
        config: config.map(|c| manifest::Config::Inline(c.to_vec())),
        permissions,
    })
    .map_err(|e| e.to_string())
}

fn same(a: Vec<String>, b: Vec<String>, form: &str) -> Result<Vec<String>, String> {
    if a == b {
        Ok(a)
    } else {
        Err(format!(
            "the forms differ:\nbuilt-in: {a:#?}\n{form}: {b:#?}"
        ))
    }
}

/// Loads `P` in-process and from `artifact`, observes both, and returns
/// the observations if they are the same (an error showing both if not).
pub fn compare<P: IsolatorPlugin>(artifact: &Path, limits: Limits) -> Result<Vec<String>, String> {
    let builtin = adapter::builtin::<P>(&[], limits.call_timeout, limits.policy)
        .map_err(|e| format!("built-in form: {e}"))?;
    let dylib = load_dylib(P::NAME, manifest::Kind::Isolator, artifact, limits, None)?;
    let isolator = dylib
        .isolator()
        .ok_or("dylib form: loaded as another kind")?;
    same(observe(&builtin), observe(&*isolator), "dylib")
}

/// [`compare`] against the WASM form of `P`: a module (`.wasm` or `.wat`)
/// loaded with the default memory limit.
#[cfg(feature = "wasm")]
pub fn compare_wasm<P: IsolatorPlugin>(
    artifact: &Path,
    limits: Limits,
) -> Result<Vec<String>, String> {
    let builtin = adapter::builtin::<P>(&[], limits.call_timeout, limits.policy)
        .map_err(|e| format!("built-in form: {e}"))?;
    let runtime = manifest::Runtime::Wasm(manifest::WasmLimits::default());
    let wasm = load_form(
        P::NAME,
        manifest::Kind::Isolator,
        runtime,
        artifact,
        limits,
        None,
        manifest::Permissions::default(),
    )
    .map_err(|e| format!("WASM form: {e}"))?;
    let isolator = wasm.isolator().ok_or("WASM form: loaded as another kind")?;
    same(observe(&builtin), observe(&*isolator), "WASM")
}

/// [`compare`] for a hook plugin, observed with [`observe_hook`].
pub fn compare_hook<P: HookPlugin>(artifact: &Path, limits: Limits) -> Result<Vec<String>, String> {
    let builtin = adapter::builtin_hook::<P>(&[], limits.call_timeout, limits.policy)
        .map_err(|e| format!("built-in form: {e}"))?;
    let dylib = load_dylib(P::NAME, manifest::Kind::Hook, artifact, limits, None)?;
    let hook = dylib.hook().ok_or("dylib form: loaded as another kind")?;
    same(observe_hook(&builtin), observe_hook(&*hook), "dylib")
}

/// What the agent can observe of a volume driver, each call's result or
/// error as text: volume `data` mounted for two containers, `logs` with
/// options, a name with a slash, `data` unmounted.
pub fn observe_volume_driver(driver: &dyn VolumeDriver) -> Vec<String> {
    let text = |e: crate::volume::VolumeError| e.to_string();
    let volume = |name: &str, options: &[(&str, &str)]| VolumeSpec {
        name: name.into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    vec![
        format!(
            "{:?}",
            driver.mount("c1", &volume("data", &[])).map_err(text)
        ),
        format!(
            "{:?}",
            driver.mount("c2", &volume("data", &[])).map_err(text)
        ),
        format!(
            "{:?}",
            driver
                .mount("c1", &volume("logs", &[("size", "1g")]))
                .map_err(text)
        ),
        format!(
            "{:?}",
            driver.mount("c1", &volume("../etc", &[])).map_err(text)
        ),
        format!("{:?}", driver.unmount(&volume("data", &[])).map_err(text)),
    ]
}

/// [`compare`] for a volume driver plugin configured with `config`,
/// observed with [`observe_volume_driver`].
pub fn compare_volume_driver<P: VolumeDriverPlugin>(
    artifact: &Path,
    config: &[u8],
    limits: Limits,
) -> Result<Vec<String>, String> {
    let builtin = adapter::builtin_volume_driver::<P>(config, limits.call_timeout, limits.policy)
        .map_err(|e| format!("built-in form: {e}"))?;
    let dylib = load_dylib(
        P::NAME,
        manifest::Kind::VolumeDriver,
        artifact,
        limits,
        Some(config),
    )?;
    let driver = dylib
        .volume_driver()
        .ok_or("dylib form: loaded as another kind")?;
    same(
        observe_volume_driver(&builtin),
        observe_volume_driver(&*driver),
        "dylib",
    )
}

/// Two layers under `scratch/layers` that exercise the rootfs contract:
/// the upper one deletes a file, makes a directory opaque, and puts a
/// directory where the lower one has a symlink to `scratch/outside`
/// (which must stay empty: nothing is written through the symlink).
fn rootfs_layers(scratch: &Path) -> std::io::Result<Vec<RootfsLayer>> {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let (lower, upper) = (scratch.join("layers/1"), scratch.join("layers/2"));
    let outside = scratch.join("outside");
    // Afresh for every form.
    for dir in [scratch.join("layers"), outside.clone()] {
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    for dir in [&lower, &upper, &outside] {
        std::fs::create_dir_all(dir)?;
    }
    for dir in ["bin", "etc", "data"] {
        std::fs::create_dir(lower.join(dir))?;
    }
    for (file, text) in [
        ("bin/sh", "sh"),
        ("etc/hostname", "one"),
        ("etc/keep", "keep"),
        ("data/old", "old"),
    ] {
        std::fs::write(lower.join(file), text)?;
    }
    std::fs::set_permissions(lower.join("bin/sh"), std::fs::Permissions::from_mode(0o755))?;
    symlink("etc/keep", lower.join("link"))?;
    symlink(&outside, lower.join("escape"))?;
    for dir in ["data", "etc", "escape"] {
        std::fs::create_dir(upper.join(dir))?;
    }
    for (file, text) in [
        ("data/new", "new"),
        ("etc/motd", "hi"),
        ("escape/file", "x"),
    ] {
        std::fs::write(upper.join(file), text)?;
    }
    let layer = |path: PathBuf, digest: &str, deleted: &[&str], opaque: &[&str]| RootfsLayer {
        digest: digest.into(),
        path,
        whiteouts: crate::rootfs::Whiteouts {
            deleted: deleted.iter().map(|p| p.to_string()).collect(),
            opaque: opaque.iter().map(|p| p.to_string()).collect(),
        },
    };
    Ok(vec![
        layer(lower, "sha256:1", &[], &[]),
        layer(upper, "sha256:2", &["etc/hostname"], &["data"]),
    ])
}

/// Every entry below `root`, sorted: `d <mode> path`, `f <mode> path
/// content`, `l path -> target`, or `? path` for anything else.
fn tree(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            out.push(format!("unreadable {}", dir.display()));
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.push(format!("d {mode:o} {name}"));
                walk(root, &path, out);
            } else if meta.is_file() {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.push(format!("f {mode:o} {name} {text}"));
            } else if meta.is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                out.push(format!("l {name} -> {}", target.display()));
            } else {
                out.push(format!("? {name}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// What the provisioner can observe of a rootfs backend, as text, for
/// container `c1` in `scratch/containers/c1`: building the rootfs from
/// two layers ([`rootfs_layers`]), the tree it holds, what landed outside
/// it, the destroy, and whether the container's directory could then be
/// deleted (it cannot while something is mounted in it); then the same
/// for a layer that does not exist.
pub fn observe_rootfs_backend(backend: &dyn RootfsBackend, scratch: &Path) -> Vec<String> {
    let text = |e: crate::rootfs::RootfsError| e.to_string();
    let dir = scratch.join("containers/c1");
    let rootfs = dir.join("rootfs");
    let container = Container {
        id: "c1",
        dir: &dir,
        rootfs: &rootfs,
    };
    let layers = match rootfs_layers(scratch) {
        Ok(layers) => layers,
        Err(e) => return vec![format!("cannot write the layers: {e}")],
    };
    let mut seen = Vec::new();
    let missing = RootfsLayer {
        path: scratch.join("layers/missing"),
        ..layers[0].clone()
    };
    for layers in [layers, vec![missing]] {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return vec![format!("cannot make {}: {e}", dir.display())];
        }
        seen.push(format!(
            "{:?}",
            backend.provision(&container, &layers).map_err(text)
        ));
        seen.push(tree(&rootfs).join("\n"));
        seen.push(format!("outside: {:?}", tree(&scratch.join("outside"))));
        seen.push(format!("{:?}", backend.destroy(&container).map_err(text)));
        seen.push(format!(
            "{:?}",
            std::fs::remove_dir_all(&dir).map_err(|e| e.kind())
        ));
    }
    seen
}

/// [`compare`] for a rootfs backend plugin configured with `config`,
/// observed with [`observe_rootfs_backend`] in `scratch`, an empty
/// directory.
pub fn compare_rootfs_backend<P: RootfsBackendPlugin>(
    artifact: &Path,
    config: &[u8],
    scratch: &Path,
    limits: Limits,
) -> Result<Vec<String>, String> {
    let builtin = adapter::builtin_rootfs_backend::<P>(config, limits.call_timeout, limits.policy)
        .map_err(|e| format!("built-in form: {e}"))?;
    let dylib = load_dylib(
        P::NAME,
        manifest::Kind::RootfsBackend,
        artifact,
        limits,
        Some(config),
    )?;
    let backend = dylib
        .rootfs_backend()
        .ok_or("dylib form: loaded as another kind")?;
    let first = observe_rootfs_backend(&builtin, scratch);
    same(first, observe_rootfs_backend(&*backend, scratch), "dylib")
}

/// What the agent can observe of an image store, as text: for each of
/// `images` (`repository:tag`, of the store's registry), the path the
/// fetch answered (relative to its scratch directory, a fresh
/// `scratch/<i>`) or its error, then every file the scratch directory
/// holds with its size and sha256.
pub fn observe_image_store(store: &dyn ImageStore, images: &[&str], scratch: &Path) -> Vec<String> {
    use sha2::Digest;
    let mut seen = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let (repository, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
        let name = ImageName {
            name: format!("{}/{repository}:{tag}", store.name()),
            registry: store.name().to_string(),
            repository: repository.to_string(),
            tag: Some(tag.to_string()),
            digest: None,
        };
        let dir = scratch.join(i.to_string());
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return vec![format!("cannot make {}: {e}", dir.display())];
        }
        seen.push(match store.fetch(&name, &dir) {
            Ok(path) => format!("Ok({:?})", path.strip_prefix(&dir).unwrap_or(&path)),
            Err(e) => format!("Err({e})"),
        });
        let files: Vec<String> = tree(&dir)
            .into_iter()
            .filter_map(|line| line.strip_prefix("f ").map(str::to_string))
            .filter_map(|line| {
                let path = line.split(' ').nth(1)?;
                let bytes = std::fs::read(dir.join(path)).ok()?;
                Some(format!(
                    "{path} {} {:x}",
                    bytes.len(),
                    sha2::Sha256::digest(&bytes)
                ))
            })
            .collect();
        seen.push(files.join("\n"));
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            seen.push(format!("cannot delete {}: {e}", dir.display()));
        }
    }
    seen
}

/// [`compare`] for an image store plugin configured with `config`,
/// observed with [`observe_image_store`] in `scratch`, an empty
/// directory.
pub fn compare_image_store<P: ImageStorePlugin>(
    artifact: &Path,
    config: &[u8],
    images: &[&str],
    scratch: &Path,
    limits: Limits,
) -> Result<Vec<String>, String> {
    let builtin = adapter::builtin_image_store::<P>(config, limits.call_timeout, limits.policy)
        .map_err(|e| format!("built-in form: {e}"))?;
    let dylib = load_dylib(
        P::NAME,
        manifest::Kind::ImageStore,
        artifact,
        limits,
        Some(config),
    )?;
    let store = dylib
        .image_store()
        .ok_or("dylib form: loaded as another kind")?;
    let first = observe_image_store(&builtin, images, scratch);
    same(
        first,
        observe_image_store(&*store, images, scratch),
        "dylib",
    )
}

/// `cpus:C;mem:M` of unreserved resources.
fn cpus_mem(cpus: f64, mem: f64) -> mesos_resources::Resources {
    let scalar = |name: &str, value: f64| v1::Resource {
        name: name.into(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value }),
        ..Default::default()
    };
    vec![scalar("cpus", cpus), scalar("mem", mem)].into()
}

/// What the master can observe of an allocator: the grants of a scripted
/// series of cycles, as text, one line per cycle. Between cycles a task
/// takes part of an offer, an offer is declined with a refusal filter, a
/// framework suppresses and revives, and an agent leaves.
pub fn observe_allocator(allocator: &mut dyn Allocator) -> Vec<String> {
    let t0 = std::time::Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let mut seen = Vec::new();
    let mut cycle = |allocator: &mut dyn Allocator, now| {
        let mut grants = allocator.allocate(now);
        grants.sort_by(|a, b| (&a.framework_id, &a.agent_id).cmp(&(&b.framework_id, &b.agent_id)));
        let line = grants
            .iter()
            .map(|g| {
                format!(
                    "{}@{} as {}: {}",
                    g.framework_id, g.agent_id, g.role, g.resources
                )
            })
            .collect::<Vec<_>>()
            .join(" | ");
        seen.push(line);
        grants
    };
    for agent in ["a1", "a2"] {
        allocator.add_agent(
            AgentSpec {
                id: agent.into(),
                hostname: format!("{agent}.example"),
                total: cpus_mem(2.0, 1024.0),
            },
            &[],
        );
    }
    allocator.add_framework(
        FrameworkSpec {
            id: "f1".into(),
            roles: vec!["*".into()],
            suppressed_roles: Vec::new(),
        },
        &[],
    );
    // A task takes half a cpu and 128 MB of each grant; the rest returns.
    for grant in cycle(allocator, at(0)) {
        let rest = grant.resources.checked_sub(&cpus_mem(0.5, 128.0));
        if let Some(rest) = rest {
            allocator.recover_resources(&grant.framework_id, &grant.agent_id, &rest, None, at(0));
        }
    }
    // Declined for 5 seconds.
    for grant in cycle(allocator, at(1)) {
        let refuse = Some(Duration::from_secs(5));
        allocator.recover_resources(
            &grant.framework_id,
            &grant.agent_id,
            &grant.resources,
            refuse,
            at(1),
        );
    }
    let offered = cycle(allocator, at(2));
    allocator.suppress("f1", &[]);
    cycle(allocator, at(3));
    for grant in offered {
        allocator.recover_resources(
            &grant.framework_id,
            &grant.agent_id,
            &grant.resources,
            None,
            at(3),
        );
    }
    allocator.revive("f1", &[]);
    cycle(allocator, at(4));
    allocator.remove_agent("a1");
    allocator.remove_framework("f1");
    cycle(allocator, at(10));
    seen
}

/// Runs [`observe_allocator`] on `P` as the master would have it built in,
/// through the envelope in-process, and loaded from `artifact`, and
/// returns the observation if all three are the same.
pub fn compare_allocator<P: AllocatorPlugin>(
    artifact: &Path,
    limits: Limits,
) -> Result<Vec<String>, String> {
    let native = observe_allocator(&mut P::default());
    let (_, host) = AllocatorHost::<P>::in_process(&[]).map_err(|e| format!("in-process: {e}"))?;
    let envelope = adapter::LoadedAllocator::new(P::NAME, Box::new(host), limits.policy);
    let mut enveloped = std::sync::Arc::new(envelope)
        .start()
        .ok_or("in-process form: already started")?;
    let in_process = same(native, observe_allocator(&mut enveloped), "in-process")?;
    let dylib = load_dylib(P::NAME, manifest::Kind::Allocator, artifact, limits, None)?;
    let mut allocator = dylib
        .allocator()
        .and_then(|a| a.start())
        .ok_or("dylib form: loaded as another kind")?;
    same(in_process, observe_allocator(&mut allocator), "dylib")
}

/// [`compare_allocator`] against the WASM form of `P`: a core module
/// built for `wasm32-wasip1` or a component built for `wasm32-wasip2`
/// ([`build_wasm`]), granted WASI, whose clock the SDK's allocator host
/// needs (`Instant::now` has none on `wasm32-unknown-unknown`).
#[cfg(feature = "wasm")]
pub fn compare_allocator_wasm<P: AllocatorPlugin>(
    artifact: &Path,
    limits: Limits,
) -> Result<Vec<String>, String> {
    let native = observe_allocator(&mut P::default());
    let wasm = load_form(
        P::NAME,
        manifest::Kind::Allocator,
        manifest::Runtime::Wasm(manifest::WasmLimits::default()),
        artifact,
        limits,
        None,
        manifest::Permissions {
            wasi: true,
            ..Default::default()
        },
    )
    .map_err(|e| format!("WASM form: {e}"))?;
    let mut allocator = wasm
        .allocator()
        .and_then(|a| a.start())
        .ok_or("WASM form: loaded as another kind")?;
    same(native, observe_allocator(&mut allocator), "WASM")
}

/// Builds the plugin crate at `crate_dir` for `target` (release) into the
/// running test's target directory and returns its `<lib>.wasm`: how a
/// plugin's tests get the WASM form of the source they test. `Ok(None)`,
/// said on stdout, when the toolchain lacks the target (`rustup target
/// add <target>` adds it).
pub fn build_wasm(crate_dir: &Path, lib: &str, target: &str) -> Result<Option<PathBuf>, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = std::process::Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if !Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .is_dir()
    {
        println!(
            "NOT BUILT: the WASM form of {lib} needs `rustup target add {target}`; \
             the test goes on without it"
        );
        return Ok(None);
    }
    // target/<profile>/deps/<the test>: the target directory is three up.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let target_dir = exe
        .ancestors()
        .nth(3)
        .ok_or("the test runs outside a target directory")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(crate_dir)
        .args(["build", "--quiet", "--release", "--target", target])
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building {lib} for {target}: {status}"));
    }
    Ok(Some(
        target_dir.join(format!("{target}/release/{lib}.wasm")),
    ))
}
