//! The compiled-artifact cache: compiling a module or a component takes
//! milliseconds for a small one and seconds for a big one, at every agent
//! start. The compiled form is kept in `.cache/` in the plugin's folder,
//! named after the engine's compatibility hash and the artifact's sha256,
//! so a new wasmtime or a new artifact never picks up a stale entry.
#![allow(unsafe_code)]

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use crate::host::Problem;

/// What wasmtime compiles and serializes: a core module or a component.
pub(super) trait Artifact: Sized {
    const WHAT: &'static str;
    fn compile(engine: &Engine, binary: &[u8]) -> wasmtime::Result<Self>;
    fn serialize(&self) -> wasmtime::Result<Vec<u8>>;
    /// # Safety
    /// `bytes` must be what [`Artifact::serialize`] made in an engine
    /// compatible with `engine`.
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self>;
}

impl Artifact for Module {
    const WHAT: &'static str = "module";
    fn compile(engine: &Engine, binary: &[u8]) -> wasmtime::Result<Self> {
        Module::new(engine, binary)
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Module::serialize(self)
    }
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: the caller's contract is `Module::deserialize`'s.
        unsafe { Module::deserialize(engine, bytes) }
    }
}

impl Artifact for Component {
    const WHAT: &'static str = "component";
    fn compile(engine: &Engine, binary: &[u8]) -> wasmtime::Result<Self> {
        Component::new(engine, binary)
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Component::serialize(self)
    }
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: the caller's contract is `Component::deserialize`'s.
        unsafe { Component::deserialize(engine, bytes) }
    }
}

/// The compiled form of `bytes`: from the cache when an earlier load left
/// it there, else compiled now and stored for the next start.
pub(super) fn compile<A: Artifact>(
    engine: &Engine,
    artifact: &Path,
    sha256: &str,
    binary: &[u8],
) -> Result<A, Problem> {
    let dir = artifact.parent().unwrap_or(Path::new(".")).join(".cache");
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let path = dir.join(format!("{:016x}-{sha256}.cwasm", hasher.finish()));
    if let Some(module) = cached(engine, &path) {
        return Ok(module);
    }
    let started = Instant::now();
    let compiled = A::compile(engine, binary).map_err(|e| Problem::Compile(format!("{e:#}")))?;
    tracing::info!(
        artifact = %artifact.display(),
        millis = started.elapsed().as_millis() as u64,
        "WASM {} compiled", A::WHAT
    );
    if let Err(e) = store_compiled(&compiled, &dir, &path) {
        // The plugin works without it; the next start compiles again.
        tracing::warn!(cache = %path.display(), "cannot cache the compiled {}: {e}", A::WHAT);
    }
    Ok(compiled)
}

/// A cache file is the SHA-256 of the serialized artifact, then the
/// artifact.
fn cached<A: Artifact>(engine: &Engine, path: &Path) -> Option<A> {
    let file = std::fs::read(path).ok()?;
    let (sum, serialized) = file.split_at_checked(32)?;
    if Sha256::digest(serialized).as_slice() != sum {
        tracing::warn!(cache = %path.display(), "corrupt cached {} ignored", A::WHAT);
        return None;
    }
    // SAFETY: `deserialize` trusts its bytes to be `serialize` output of
    // a compatible engine. These are: the file is named after
    // this engine's compatibility hash and the artifact's checked sha256,
    // its checksum matches (no torn or truncated write), and it lies in
    // the plugin's own folder, which the operator installed and the host
    // trusts as much as the artifact itself. wasmtime checks the version
    // and configuration in its header again.
    match unsafe { A::deserialize(engine, serialized) } {
        Ok(compiled) => {
            tracing::debug!(cache = %path.display(), "WASM {} loaded from the cache", A::WHAT);
            Some(compiled)
        }
        Err(e) => {
            tracing::warn!(cache = %path.display(), "cached {} refused: {e:#}", A::WHAT);
            None
        }
    }
}

fn store_compiled<A: Artifact>(compiled: &A, dir: &Path, path: &Path) -> Result<(), String> {
    let serialized = compiled.serialize().map_err(|e| format!("{e:#}"))?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut file = Sha256::digest(&serialized).to_vec();
    file.extend_from_slice(&serialized);
    // Written aside and renamed, so a reader never sees half a file.
    let partial: PathBuf = path.with_extension(format!("partial.{}", std::process::id()));
    std::fs::write(&partial, &file).map_err(|e| e.to_string())?;
    std::fs::rename(&partial, path).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        e.to_string()
    })?;
    // A folder holds one plugin: entries of its earlier artifacts or
    // engines are of no further use.
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let stale = entry.path();
        if stale != path && stale.extension().is_some_and(|e| e == "cwasm") {
            let _ = std::fs::remove_file(&stale);
        }
    }
    Ok(())
}
