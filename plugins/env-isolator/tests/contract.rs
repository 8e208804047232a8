//! The contract suite against this plugin's built-in and dylib forms.
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
