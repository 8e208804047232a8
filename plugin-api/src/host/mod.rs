//! Loading plugins from `--plugin_dir` (feature `host`): every folder
//! with a `plugin.toml` is a plugin ([`modules`] reads Mesos's
//! `--modules` JSON instead). Each is checked (manifest, sha256, entry
//! point, ABI version, describe, API version, configure) before the
//! daemon starts, the agent or (for allocators) the master, and any
//! problem stops it with a message naming the plugin. Dylibs are opened
//! by [`dylib`], WASM modules by [`wasm`] (feature `wasm`); past the
//! opening both get the same checks, adapter, failure policy and
//! quarantine.

pub mod calls;
pub mod dylib;
pub mod manifest;
pub mod modules;
pub mod shell;
#[cfg(feature = "wasm")]
pub mod wasm;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::abi::API_VERSION;
use crate::adapter::{
    LoadedAllocator, PluginHook, PluginImageStore, PluginIsolator, PluginNetwork,
    PluginRootfsBackend, PluginVolumeDriver, Watchdog,
};
use crate::envelope::{Envelope, PluginError};
use crate::hook::Hook;
use crate::image::ImageStore;
use crate::isolator::Isolator;
use crate::network::Network;
use crate::rootfs::RootfsBackend;
use crate::volume::VolumeDriver;
use dylib::Dylib;
use manifest::{Kind, Manifest, Runtime};
use mesos_proto::plugin::v1::PluginInfo;

/// What is wrong with one plugin.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("sha256 mismatch: plugin.toml says {expected}, {artifact} is {actual}")]
    Sha256Mismatch {
        artifact: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("runtime 'wasm' is not supported by this build (feature `wasm` is off)")]
    WasmUnsupported,
    #[error("cannot start the WASM engine: {0}")]
    Engine(String),
    #[error("cannot compile the module: {0}")]
    Compile(String),
    #[error("ABI mismatch: {0}")]
    Export(String),
    #[error("cannot instantiate the module: {0}")]
    Instantiate(String),
    #[error("cannot open the library: {0}")]
    Open(String),
    #[error("missing export: the library has no symbol mesos_plugin_entry_v1")]
    MissingEntry,
    #[error("ABI mismatch: mesos_plugin_entry_v1 returned no table")]
    NullVTable,
    #[error("ABI mismatch: the plugin speaks ABI version {0}, this agent speaks 1")]
    AbiVersion(u32),
    #[error("ABI mismatch: the plugin's version-1 table is {0} bytes, smaller than version 1's")]
    VTableSize(u32),
    #[error("describe failed: {0}")]
    Describe(PluginError),
    #[error("the library describes itself as '{0}'")]
    NameMismatch(String),
    #[error("the library does not implement kind '{0}'")]
    KindMismatch(String),
    #[error("no common API version: the plugin speaks [{0}], this agent speaks {API_VERSION}")]
    ApiVersion(String),
    #[error("configure failed: {0}")]
    Configure(PluginError),
    #[error("cannot start its thread: {0}")]
    Thread(String),
    #[error("permissions: {0}")]
    Permissions(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the plugin directory {dir}: {message}")]
    Dir { dir: PathBuf, message: String },
    #[error("{manifest}: {message}")]
    Manifest { manifest: PathBuf, message: String },
    #[error("plugin '{plugin}': {problem}")]
    Plugin { plugin: String, problem: Problem },
    #[error("two plugins are named '{0}'")]
    Duplicate(String),
    /// `--modules` or `--modules_dir`, named by `flag`.
    #[error("{flag}: {message}")]
    Modules { flag: &'static str, message: String },
}

/// A plugin ready for use.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub manifest: Manifest,
    pub version: String,
    pub instance: Instance,
    /// Where a WASM plugin's host calls find the daemon.
    pub host: Arc<calls::HostSlot>,
}

/// The loaded plugin as its kind's trait.
#[derive(Debug, Clone)]
pub enum Instance {
    Isolator(Arc<PluginIsolator>),
    Hook(Arc<PluginHook>),
    Allocator(Arc<LoadedAllocator>),
    VolumeDriver(Arc<PluginVolumeDriver>),
    Network(Arc<PluginNetwork>),
    RootfsBackend(Arc<PluginRootfsBackend>),
    ImageStore(Arc<PluginImageStore>),
}

impl Loaded {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Lets the plugin's host calls reach `calls` (a WASM plugin's; a
    /// dylib makes none).
    pub fn provide_host_calls(&self, calls: Arc<dyn calls::HostCalls>) {
        self.host.provide(calls);
    }

    /// The plugin, if it is an isolator.
    pub fn isolator(&self) -> Option<Arc<dyn Isolator>> {
        match &self.instance {
            Instance::Isolator(isolator) => Some(isolator.clone()),
            _ => None,
        }
    }

    /// The plugin, if it is a hook.
    pub fn hook(&self) -> Option<Arc<dyn Hook>> {
        match &self.instance {
            Instance::Hook(hook) => Some(hook.clone()),
            _ => None,
        }
    }

    /// The plugin, if it is an allocator.
    pub fn allocator(&self) -> Option<Arc<LoadedAllocator>> {
        match &self.instance {
            Instance::Allocator(allocator) => Some(allocator.clone()),
            _ => None,
        }
    }

    /// The plugin, if it is a network.
    pub fn network(&self) -> Option<Arc<dyn Network>> {
        match &self.instance {
            Instance::Network(network) => Some(network.clone()),
            _ => None,
        }
    }

    /// The plugin, if it is a volume driver.
    pub fn volume_driver(&self) -> Option<Arc<dyn VolumeDriver>> {
        match &self.instance {
            Instance::VolumeDriver(driver) => Some(driver.clone()),
            _ => None,
        }
    }

    /// The plugin, if it is a rootfs backend.
    pub fn rootfs_backend(&self) -> Option<Arc<dyn RootfsBackend>> {
        match &self.instance {
            Instance::RootfsBackend(backend) => Some(backend.clone()),
            _ => None,
        }
    }

    /// The plugin, if it is an image store.
    pub fn image_store(&self) -> Option<Arc<dyn ImageStore>> {
        match &self.instance {
            Instance::ImageStore(store) => Some(store.clone()),
            _ => None,
        }
    }
}

/// Loads the plugins of a daemon's `--plugin_dir` and `--modules` (or
/// `--modules_dir`, not both, as in Mesos): the folders first, then the
/// modules, one name once.
pub fn load_all(
    plugin_dir: Option<&Path>,
    modules: Option<&str>,
    modules_dir: Option<&Path>,
) -> Result<Vec<Loaded>, LoadError> {
    let modules_error = |flag| move |message| LoadError::Modules { flag, message };
    let specs = match (modules, modules_dir) {
        (Some(_), Some(_)) => Err(modules_error("--modules")(
            "cannot be used together with --modules_dir".to_string(),
        )),
        (Some(value), None) => modules::parse(value).map_err(modules_error("--modules")),
        (None, Some(dir)) => modules::parse_dir(dir).map_err(modules_error("--modules_dir")),
        (None, None) => Ok(Vec::new()),
    }?;
    let mut loaded = match plugin_dir {
        Some(dir) => load_dir(dir)?,
        None => Vec::new(),
    };
    for plugin in modules::load(specs)? {
        if loaded.iter().any(|p| p.name() == plugin.name()) {
            return Err(LoadError::Duplicate(plugin.manifest.name));
        }
        tracing::info!(
            plugin = plugin.name(),
            version = %plugin.version,
            library = %plugin.manifest.artifact.display(),
            "module loaded"
        );
        loaded.push(plugin);
    }
    Ok(loaded)
}

/// Loads every plugin folder under `dir`, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Loaded>, LoadError> {
    let dir_error = |e: std::io::Error| LoadError::Dir {
        dir: dir.to_path_buf(),
        message: e.to_string(),
    };
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(dir_error)? {
        let path = entry.map_err(dir_error)?.path();
        if path.join(manifest::FILE_NAME).is_file() {
            folders.push(path);
        }
    }
    folders.sort();
    let mut loaded: Vec<Loaded> = Vec::new();
    for folder in folders {
        let plugin = load(&folder)?;
        if loaded.iter().any(|p| p.name() == plugin.name()) {
            return Err(LoadError::Duplicate(plugin.manifest.name));
        }
        tracing::info!(
            plugin = plugin.name(),
            version = %plugin.version,
            folder = %folder.display(),
            "plugin loaded"
        );
        loaded.push(plugin);
    }
    Ok(loaded)
}

/// Loads the plugin in `folder`.
pub fn load(folder: &Path) -> Result<Loaded, LoadError> {
    let path = folder.join(manifest::FILE_NAME);
    let text = std::fs::read_to_string(&path).map_err(|e| LoadError::Manifest {
        manifest: path.clone(),
        message: e.to_string(),
    })?;
    let manifest = Manifest::parse(&text, folder).map_err(|message| LoadError::Manifest {
        manifest: path.clone(),
        message,
    })?;
    load_manifest(manifest)
}

/// Loads the plugin a parsed manifest describes.
pub fn load_manifest(manifest: Manifest) -> Result<Loaded, LoadError> {
    let host = Arc::new(calls::HostSlot::default());
    let (version, instance) = open(&manifest, &host).map_err(|problem| LoadError::Plugin {
        plugin: manifest.name.clone(),
        problem,
    })?;
    Ok(Loaded {
        manifest,
        version,
        instance,
        host,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, Problem> {
    std::fs::read(path).map_err(|e| Problem::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Lowercase hex SHA-256 of `bytes`, as manifests write it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn open(manifest: &Manifest, host: &Arc<calls::HostSlot>) -> Result<(String, Instance), Problem> {
    if !manifest.api_versions.iter().any(|v| v == API_VERSION) {
        return Err(Problem::ApiVersion(manifest.api_versions.join(", ")));
    }
    let bytes = read(&manifest.artifact)?;
    let actual = sha256_hex(&bytes);
    if actual != manifest.sha256 {
        return Err(Problem::Sha256Mismatch {
            artifact: manifest.artifact.clone(),
            expected: manifest.sha256.clone(),
            actual,
        });
    }
    let config = match &manifest.config {
        Some(manifest::Config::File(path)) => read(path)?,
        Some(manifest::Config::Inline(bytes)) => bytes.clone(),
        None => Vec::new(),
    };
    let (version, envelope) = match manifest.runtime {
        Runtime::Dylib => {
            let (info, dylib) = describe_dylib(manifest)?;
            check(manifest, &info)?;
            (info.version, dylib.configure(config)?)
        }
        #[cfg(feature = "wasm")]
        Runtime::Wasm(limits) => {
            let context = calls::HostContext::new(manifest, host.clone());
            let plugin = wasm::Wasm::open(manifest, limits, &bytes, context)?;
            let info = plugin.describe().map_err(Problem::Describe)?;
            check(manifest, &info)?;
            plugin
                .configure(API_VERSION, config)
                .map_err(Problem::Configure)?;
            let envelope: Box<dyn Envelope> = Box::new(plugin);
            (info.version, envelope)
        }
        #[cfg(not(feature = "wasm"))]
        Runtime::Wasm(_) => {
            // Only WASM plugins make host calls.
            let _ = host;
            return Err(Problem::WasmUnsupported);
        }
    };
    Ok((version, instance(manifest, envelope)))
}

/// The plugin as its kind's adapter.
fn instance(manifest: &Manifest, envelope: Box<dyn Envelope>) -> Instance {
    let (name, policy) = (&manifest.name, manifest.policy);
    match manifest.kind {
        Kind::Isolator => Instance::Isolator(Arc::new(PluginIsolator::new(name, envelope, policy))),
        Kind::Hook => Instance::Hook(Arc::new(PluginHook::new(name, envelope, policy))),
        Kind::Allocator => {
            Instance::Allocator(Arc::new(LoadedAllocator::new(name, envelope, policy)))
        }
        Kind::VolumeDriver => {
            Instance::VolumeDriver(Arc::new(PluginVolumeDriver::new(name, envelope, policy)))
        }
        Kind::Network => Instance::Network(Arc::new(PluginNetwork::new(name, envelope, policy))),
        Kind::RootfsBackend => {
            Instance::RootfsBackend(Arc::new(PluginRootfsBackend::new(name, envelope, policy)))
        }
        Kind::ImageStore => {
            Instance::ImageStore(Arc::new(PluginImageStore::new(name, envelope, policy)))
        }
    }
}

/// What `describe` answered must match the manifest and this host.
fn check(manifest: &Manifest, info: &PluginInfo) -> Result<(), Problem> {
    if info.name != manifest.name {
        return Err(Problem::NameMismatch(info.name.clone()));
    }
    let kind = manifest.kind.as_str();
    if !info.kinds.iter().any(|k| k == kind) {
        return Err(Problem::KindMismatch(kind.to_string()));
    }
    if !info.api_versions.iter().any(|v| v == API_VERSION) {
        return Err(Problem::ApiVersion(info.api_versions.join(", ")));
    }
    Ok(())
}

/// An opened dylib behind its watchdog, described but not configured.
struct Described {
    dylib: Dylib,
    watchdog: Watchdog,
}

impl Described {
    fn configure(self, config: Vec<u8>) -> Result<Box<dyn Envelope>, Problem> {
        let dylib = self.dylib;
        self.watchdog
            .run("configure", move || dylib.configure(API_VERSION, &config))
            .map_err(Problem::Configure)?;
        Ok(Box::new(self.watchdog))
    }
}

/// Opens the dylib and asks what it is. Load-time calls are plugin code
/// too: they run on the plugin's thread, under its deadline.
fn describe_dylib(manifest: &Manifest) -> Result<(PluginInfo, Described), Problem> {
    let dylib = Dylib::open(&manifest.artifact)?;
    let watchdog = Watchdog::new(&manifest.name, manifest.call_timeout, Arc::new(dylib))
        .map_err(|e| Problem::Thread(e.to_string()))?;
    let info = watchdog
        .run("describe", move || dylib.describe())
        .map_err(Problem::Describe)?;
    Ok((info, Described { dylib, watchdog }))
}
