//! The contract suite against this plugin's built-in and dylib forms: the
//! panic is the same error in both, and both quarantine it alike.
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
