//! The contract suite against this plugin's built-in and dylib forms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use label_hook::LabelHook;
use mesos_plugin_api::contract::{self, Limits};

#[test]
fn both_forms_decorate_alike() {
    let seen =
        contract::compare_hook::<LabelHook>(&contract::artifact("label_hook"), Limits::default())
            .unwrap();
    // The task keeps its own label and gets the hook's after it.
    assert!(
        seen[0].contains(r#"key: "team""#) && seen[0].contains(r#"key: "hooked""#),
        "{seen:#?}"
    );
    assert!(seen[1].contains(r#"name: "HOOKED""#), "{seen:#?}");
    assert!(
        seen[2].contains(r#"("HOOKED_CONTAINERIZER", "mesos")"#),
        "{seen:#?}"
    );
    assert!(
        seen[3].contains(r#"("HOOKED_CONTAINERIZER", "docker")"#)
            && seen[3].contains(r#"("hooked", "true")"#),
        "{seen:#?}"
    );
    assert!(seen[4].contains(r#"key: "hooked""#), "{seen:#?}");
    // Not implemented: Mesos's default.
    assert_eq!(seen[5], "Ok(())", "remove executor");
    // The marker lists what was fetched.
    assert!(
        seen[6].starts_with("Ok(()) [")
            && seen[6].contains(r#" .hooked artifact.txt\n""#)
            && seen[6].contains(" artifact.txt fetched"),
        "{seen:#?}"
    );
    // The agent keeps its resources and attributes and gets the hook's.
    assert!(
        seen[7].contains(r#"name: "cpus""#) && seen[7].contains(r#"name: "hooked""#),
        "{seen:#?}"
    );
    assert!(
        seen[8].contains(r#"name: "rack""#) && seen[8].contains(r#"name: "hooked""#),
        "{seen:#?}"
    );
    // The master's copy of the task keeps its labels and gets the hook's.
    assert!(
        seen[9].contains(r#"key: "team""#) && seen[9].contains(r#"key: "master_hooked""#),
        "{seen:#?}"
    );
    assert_eq!(seen[10], "Ok(())", "agent lost");
    // Offers without the resource `hooked` leave the task's alone.
    assert_eq!(seen[11], "Ok(None)", "task resources");
}
