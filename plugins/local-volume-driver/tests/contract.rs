//! The contract suite against the driver's built-in and dylib forms: both
//! mount the same directories and refuse the same names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use local_volume_driver::LocalVolumes;
use mesos_plugin_api::contract::{self, Limits};

#[test]
fn both_forms_mount_the_same_directories() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().display().to_string();
    let seen = contract::compare_volume_driver::<LocalVolumes>(
        &contract::artifact("local_volume_driver"),
        config.as_bytes(),
        Limits::default(),
    )
    .unwrap();
    let data = root.path().join("data");
    assert_eq!(seen[0], format!("Ok({:?})", data), "{seen:#?}");
    assert_eq!(seen[1], seen[0], "a second mount is the same");
    assert_eq!(
        seen[2],
        format!("Ok({:?})", root.path().join("logs")),
        "{seen:#?}"
    );
    assert!(
        seen[3].contains("volume name '../etc' is not a plain name"),
        "{seen:#?}"
    );
    assert_eq!(seen[4], "Ok(())");
    assert!(data.is_dir());
}

#[test]
fn a_relative_root_is_refused_at_configure() {
    let err = contract::compare_volume_driver::<LocalVolumes>(
        &contract::artifact("local_volume_driver"),
        b"volumes",
        Limits::default(),
    )
    .unwrap_err();
    assert!(
        err.contains("the root 'volumes' is not an absolute path"),
        "{err}"
    );
}
