//! The dylib loader against plugins written in C with `mesos_plugin.h`
//! (compiled here with the system's `cc`): a well-behaved one loads and
//! its unimplemented methods get Mesos's defaults; broken ones are refused
//! with a message naming the plugin and the problem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use mesos_plugin_api::host::{self, LoadError, Problem};
use mesos_plugin_api::isolator::{ContainerSpec, LaunchInfo, Usage};
use sha2::{Digest, Sha256};

const NAME: &str = "com.example.c_isolator";

/// Compiles the C fixture into `<dir>/<name>/lib.so` with `defines` and
/// writes its manifest; returns the plugin folder.
fn c_plugin(dir: &Path, name: &str, defines: &[&str], manifest_extra: &str) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let so = folder.join("lib.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-Wall", "-Werror", "-o"])
        .arg(&so)
        .arg(format!("-DNAME=\"{NAME}\""))
        .args(defines)
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("tests/fixtures/c_isolator.c"))
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed");
    let sha = format!("{:x}", Sha256::digest(std::fs::read(&so).unwrap()));
    std::fs::write(
        folder.join("plugin.toml"),
        format!(
            "name = \"{NAME}\"\nkind = \"isolator\"\nruntime = \"dylib\"\nartifact = \"lib.so\"\nsha256 = \"{sha}\"\n{manifest_extra}"
        ),
    )
    .unwrap();
    folder
}

fn problem(result: Result<host::Loaded, LoadError>) -> Problem {
    match result {
        Err(LoadError::Plugin { plugin, problem }) => {
            assert_eq!(plugin, NAME);
            problem
        }
        Err(other) => panic!("not a plugin problem: {other}"),
        Ok(_) => panic!("loaded"),
    }
}

#[test]
fn a_c_plugin_loads_and_unimplemented_methods_get_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    c_plugin(dir.path(), "c", &[], "");
    let loaded = host::load_dir(dir.path()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].version, "0.1.0");
    let isolator = loaded[0].isolator().unwrap();
    assert_eq!(isolator.name(), NAME);
    let spec = ContainerSpec {
        container_id: "c1".into(),
        resources: Default::default(),
        capabilities: Default::default(),
        sandbox: Default::default(),
        ..Default::default()
    };
    assert_eq!(isolator.prepare(&spec).unwrap(), LaunchInfo::default());
    assert_eq!(isolator.usage("c1").unwrap(), Usage::default());
    assert_eq!(isolator.limitation("c1").unwrap(), None);
    isolator.update(&spec).unwrap();
    isolator.recover(&["c1".into()]).unwrap();
    isolator.cleanup("c1").unwrap();
}

#[test]
fn a_wrong_abi_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = c_plugin(dir.path(), "c", &["-DABI_VERSION=2"], "");
    let p = problem(host::load(&folder));
    assert!(matches!(p, Problem::AbiVersion(2)), "{p}");
    let err = host::load(&folder).unwrap_err().to_string();
    assert!(err.contains(NAME) && err.contains("ABI mismatch"), "{err}");
}

#[test]
fn a_missing_entry_symbol_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = c_plugin(dir.path(), "c", &["-DNO_ENTRY"], "");
    let p = problem(host::load(&folder));
    assert!(matches!(p, Problem::MissingEntry), "{p}");
    assert!(p.to_string().contains("mesos_plugin_entry_v1"), "{p}");
}

#[test]
fn a_sha256_mismatch_is_refused_before_opening() {
    let dir = tempfile::tempdir().unwrap();
    let folder = c_plugin(dir.path(), "c", &[], "");
    // The artifact changed after the manifest was written.
    let so = folder.join("lib.so");
    let mut bytes = std::fs::read(&so).unwrap();
    bytes.push(0);
    std::fs::write(&so, bytes).unwrap();
    let err = host::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(NAME) && err.contains("sha256 mismatch"),
        "{err}"
    );
}

#[test]
fn a_library_describing_another_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = c_plugin(dir.path(), "c", &[], "");
    let manifest = std::fs::read_to_string(folder.join("plugin.toml")).unwrap();
    std::fs::write(
        folder.join("plugin.toml"),
        manifest.replace(NAME, "com.example.other"),
    )
    .unwrap();
    let err = host::load(&folder).unwrap_err().to_string();
    assert!(
        err.contains("com.example.other") && err.contains(&format!("describes itself as '{NAME}'")),
        "{err}"
    );
}

#[test]
fn a_wasm_runtime_and_a_bad_manifest_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = c_plugin(dir.path(), "c", &[], "");
    let manifest = std::fs::read_to_string(folder.join("plugin.toml")).unwrap();
    std::fs::write(
        folder.join("plugin.toml"),
        manifest.replace("\"dylib\"", "\"wasm\""),
    )
    .unwrap();
    // A shared library is no WebAssembly module either.
    let p = problem(host::load(&folder));
    if cfg!(feature = "wasm") {
        assert!(matches!(p, Problem::Compile(_)), "{p}");
    } else {
        assert!(matches!(p, Problem::WasmUnsupported), "{p}");
    }
    std::fs::write(folder.join("plugin.toml"), "name = \"com.example.x\"\n").unwrap();
    let err = host::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("plugin.toml") && err.contains("missing field"),
        "{err}"
    );
}

#[test]
fn a_library_of_another_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = c_plugin(dir.path(), "c", &[], "");
    let manifest = folder.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("kind = \"isolator\"", "kind = \"hook\"");
    std::fs::write(&manifest, text).unwrap();
    let problem = problem(host::load(&folder));
    assert_eq!(
        problem.to_string(),
        "the library does not implement kind 'hook'"
    );
}
