//! The contract suite against this plugin's built-in and dylib forms: the
//! panic is the same error in both, and both quarantine it alike. Built
//! as a component, the panic traps, and its message reaches the error
//! when the plugin may write to stderr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesos_plugin_api::adapter::{FailurePolicy, Policy};
use mesos_plugin_api::contract::{self, Limits};
use panicking_isolator::PanickingIsolator;

const NAME: &str = "com.example.panicking_isolator";

#[test]
fn both_forms_report_the_panic_then_quarantine_it() {
    let limits = Limits::default();
    assert_eq!(limits.policy.quarantine_after, 2);
    let seen =
        contract::compare::<PanickingIsolator>(&contract::artifact("panicking_isolator"), limits)
            .unwrap();
    assert!(
        seen[1].contains(&format!(
            "{NAME}: isolator.prepare failed: internal error: panicked: refusing to prepare c1"
        )),
        "{seen:#?}"
    );
    assert!(seen[5].contains("panicked"), "{seen:#?}");
    assert!(seen[6].contains("quarantined after 2 faults"), "{seen:#?}");
    assert!(seen[7].contains("quarantined"), "{seen:#?}");
}

#[test]
fn fail_open_logs_the_panic_and_applies_the_default() {
    let limits = Limits {
        policy: Policy {
            on_failure: FailurePolicy::FailOpen,
            quarantine_after: 0,
        },
        ..Limits::default()
    };
    let seen =
        contract::compare::<PanickingIsolator>(&contract::artifact("panicking_isolator"), limits)
            .unwrap();
    assert!(seen.iter().all(|s| s.starts_with("Ok(")), "{seen:#?}");
}

/// This source built for `wasm32-wasip2`, loaded with `manifest_extra`
/// in its `plugin.toml`: what `prepare` fails with.
fn component_prepare_error(built: &std::path::Path, manifest_extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(built, dir.path().join("plugin.wasm")).unwrap();
    let sha = mesos_plugin_api::host::sha256_hex(&std::fs::read(built).unwrap());
    std::fs::write(
        dir.path().join("plugin.toml"),
        format!(
            "name = \"{NAME}\"\nkind = \"isolator\"\nruntime = \"wasm\"\n\
             artifact = \"plugin.wasm\"\nsha256 = \"{sha}\"\n{manifest_extra}"
        ),
    )
    .unwrap();
    let isolator = mesos_plugin_api::host::load(dir.path())
        .unwrap()
        .isolator()
        .unwrap();
    let spec = mesos_plugin_api::isolator::ContainerSpec {
        container_id: "c1".into(),
        ..Default::default()
    };
    isolator.prepare(&spec).unwrap_err().to_string()
}

#[test]
fn as_a_component_the_panic_traps_and_says_why_when_it_may_print() {
    let Some(built) = contract::build_wasm(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "panicking_isolator",
        "wasm32-wasip2",
    )
    .unwrap() else {
        return;
    };
    // Without WASI, the panic's first call into WASI (reading
    // RUST_BACKTRACE) is what traps.
    let e = component_prepare_error(&built, "");
    assert!(
        e.contains(&format!("{NAME}: isolator.prepare failed"))
            && e.contains("isolator.prepare trapped: unknown import: `wasi:cli/"),
        "{e}"
    );
    // Granted, the panic prints into the log, then aborts; the message
    // is in the error.
    let e = component_prepare_error(&built, "[permissions]\nwasi = true\n");
    assert!(
        e.contains("isolator.prepare trapped: wasm trap: wasm `unreachable` instruction executed")
            && e.contains("; it wrote to stderr: thread")
            && e.contains("refusing to prepare c1"),
        "{e}"
    );
}
