//! The contract suite against this plugin's built-in, dylib and WASM
//! forms (the WASM one is `plugins/wasm-fixtures/env-isolator.wat`,
//! written by hand: the Rust wasm32 target is not needed).
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

#[test]
fn the_wasm_form_answers_as_the_built_in_and_dylib_forms() {
    let wat =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-fixtures/env-isolator.wat");
    // Loaded from a copy: the compile cache goes next to the artifact.
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("env-isolator.wat");
    std::fs::copy(&wat, &artifact).unwrap();
    let wasm = contract::compare_wasm::<EnvIsolator>(&artifact, Limits::default()).unwrap();
    let dylib =
        contract::compare::<EnvIsolator>(&contract::artifact("env_isolator"), Limits::default())
            .unwrap();
    assert_eq!(wasm, dylib);
    assert!(
        wasm[1].contains(r#"("PLUGIN_GREETING", "hello-from-plugin")"#),
        "{wasm:#?}"
    );
}
