//! The contract suite against this plugin's built-in, dylib and WASM
//! forms. The WASM ones are this very source built for
//! `wasm32-unknown-unknown`, as a core module and wrapped by
//! `host::shell::componentize` as a component, and built for
//! `wasm32-wasip2`, a component straight from `cargo build` (each when
//! its target is installed; the test says so when it is not),
//! `plugins/wasm-fixtures/env-isolator.wat`, written
//! by hand, the same module as a component of the `mesos:plugin` world,
//! and `plugins/c-env-isolator`, C compiled by Debian's clang-14 with
//! wasi-libc: the last three need no Rust wasm32 target.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use env_isolator::EnvIsolator;
use mesos_plugin_api::contract::{self, Limits};

#[test]
fn both_forms_set_the_variable_and_get_the_defaults() {
    let seen =
        contract::compare::<EnvIsolator>(&contract::artifact("env_isolator"), Limits::default())
            .unwrap();
    let prepared = &seen[1];
    assert!(
        prepared.contains(r#"("PLUGIN_GREETING", "hello-from-plugin")"#),
        "{seen:#?}"
    );
    assert!(
        prepared.contains(r#"("PLUGIN_CONTAINER_ID", "c1")"#),
        "{seen:#?}"
    );
    // What the plugin leaves unimplemented gets Mesos's defaults.
    assert_eq!(seen[0], "Ok(())", "recover");
    assert_eq!(seen[2], "Ok(())", "update");
    assert!(
        seen[3].starts_with("Ok(Usage { cpus_user_time_secs: None"),
        "{seen:#?}"
    );
    assert_eq!(seen[4], "Ok(None)", "limitation");
    assert_eq!(seen[7], "Ok(())", "cleanup");
}

/// What the WASM module at `module` answers through the contract suite,
/// checked equal to what the dylib form answers.
fn wasm_answers_as_the_dylib(module: &std::path::Path) -> Vec<String> {
    // Loaded from a copy: the compile cache goes next to the artifact.
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join(module.file_name().unwrap());
    std::fs::copy(module, &artifact).unwrap();
    let wasm = contract::compare_wasm::<EnvIsolator>(&artifact, Limits::default()).unwrap();
    let dylib =
        contract::compare::<EnvIsolator>(&contract::artifact("env_isolator"), Limits::default())
            .unwrap();
    assert_eq!(wasm, dylib);
    wasm
}

#[test]
fn the_wasm_form_answers_as_the_built_in_and_dylib_forms() {
    let wat =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-fixtures/env-isolator.wat");
    let wasm = wasm_answers_as_the_dylib(&wat);
    assert!(
        wasm[1].contains(r#"("PLUGIN_GREETING", "hello-from-plugin")"#),
        "{wasm:#?}"
    );
}

#[test]
fn the_component_form_answers_as_the_built_in_and_dylib_forms() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-fixtures");
    let read = |file: &str| std::fs::read_to_string(fixtures.join(file)).unwrap();
    let component = contract::in_component_shell(&read("env-isolator.wat")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("env_isolator.component.wat");
    std::fs::write(&artifact, component).unwrap();
    let seen = wasm_answers_as_the_dylib(&artifact);
    assert!(
        seen[1].contains(r#"("PLUGIN_CONTAINER_ID", "c1")"#),
        "{seen:#?}"
    );
}

/// Compiles the C form with its `build.sh` into `dir`; `None` (the test
/// skips, saying why) without the toolchain, except with `CI=true`.
fn build_c_form(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../c-env-isolator/build.sh");
    let artifact = dir.join("env_isolator.wasm");
    let built = std::process::Command::new("bash")
        .arg(&script)
        .arg(&artifact)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&built.stderr);
    match built.status.code() {
        Some(0) => Some(artifact),
        Some(3) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: {}", stderr.trim());
            None
        }
        _ => panic!("{} failed: {stderr}", script.display()),
    }
}

#[test]
fn the_c_form_compiled_to_wasm_answers_as_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let Some(artifact) = build_c_form(dir.path()) else {
        return;
    };
    let c = wasm_answers_as_the_dylib(&artifact);
    assert!(c[1].contains(r#"("PLUGIN_CONTAINER_ID", "c1")"#), "{c:#?}");
}

/// This crate built for WASM `target`; `None`, said on stdout, without
/// that target.
fn build_rust_form(target: &str) -> Option<std::path::PathBuf> {
    contract::build_wasm(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "env_isolator",
        target,
    )
    .unwrap()
}

#[test]
fn the_same_source_built_for_wasm_answers_as_its_dylib() {
    let Some(built) = build_rust_form("wasm32-unknown-unknown") else {
        return;
    };
    let wasm = wasm_answers_as_the_dylib(&built);
    assert!(
        wasm[1].contains(r#"("PLUGIN_CONTAINER_ID", "c1")"#),
        "{wasm:#?}"
    );
    // The same build, wrapped as a component by the shell, answers alike.
    let core = std::fs::read(&built).unwrap();
    let component = mesos_plugin_api::host::shell::componentize(&core).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("env_isolator.component.wasm");
    std::fs::write(&artifact, component).unwrap();
    assert_eq!(wasm_answers_as_the_dylib(&artifact), wasm);
}

#[test]
fn the_same_source_built_for_wasip2_is_a_component_that_answers_as_its_dylib() {
    let Some(built) = build_rust_form("wasm32-wasip2") else {
        return;
    };
    let bytes = std::fs::read(&built).unwrap();
    assert_eq!(&bytes[4..8], b"\x0d\x00\x01\x00", "a component's preamble");
    let component = wasm_answers_as_the_dylib(&built);
    assert!(
        component[1].contains(r#"("PLUGIN_CONTAINER_ID", "c1")"#),
        "{component:#?}"
    );
}
