//! The contract suite against this plugin's built-in and dylib forms: both
//! time out alike, then fail fast as wedged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hanging_isolator::HangingIsolator;
use mesos_plugin_api::contract::{self, Limits};

const NAME: &str = "com.example.hanging_isolator";

#[test]
fn both_forms_time_out_then_are_wedged() {
    let limits = Limits::default();
    let seen =
        contract::compare::<HangingIsolator>(&contract::artifact("hanging_isolator"), limits)
            .unwrap();
    // recover, update, usage, limitation are unimplemented: defaults.
    assert_eq!(seen[0], "Ok(())");
    assert!(
        seen[1].contains(&format!(
            "{NAME}: isolator.prepare failed: timeout: isolator.prepare did not return within {} ms",
            limits.call_timeout.as_millis()
        )),
        "{seen:#?}"
    );
    for later in &seen[2..] {
        assert!(later.contains("wedged"), "{seen:#?}");
    }
}
