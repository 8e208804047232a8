//! The contract suite against the backend's built-in and dylib forms:
//! both build the same tree on a tmpfs (whiteouts applied, nothing
//! written through a symlink), unmount it at destroy, and fail alike on a
//! missing layer. Mounting needs root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesos_plugin_api::contract::{self, Limits};
use tmpfs_rootfs::TmpfsRootfs;

/// Root, or a printed reason to skip, which fails under `CI=true`.
fn as_root() -> bool {
    contract::root_or_skip("the tmpfs backend (mounts)").unwrap()
}

#[test]
fn both_forms_build_the_same_rootfs_on_a_tmpfs() {
    if !as_root() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let seen = contract::compare_rootfs_backend::<TmpfsRootfs>(
        &contract::artifact("tmpfs_rootfs"),
        b"16m",
        scratch.path(),
        Limits::default(),
    )
    .unwrap();
    assert_eq!(seen[0], "Ok(())", "{seen:#?}");
    assert_eq!(
        seen[1].lines().collect::<Vec<_>>(),
        [
            "d 755 bin",
            "d 755 data",
            "d 755 escape",
            "d 755 etc",
            "f 644 data/new new",
            "f 644 escape/file x",
            "f 644 etc/keep keep",
            "f 644 etc/motd hi",
            "f 755 bin/sh sh",
            "l link -> etc/keep",
        ],
        "{seen:#?}"
    );
    assert_eq!(seen[2], "outside: []", "{seen:#?}");
    assert_eq!(seen[3], "Ok(())", "{seen:#?}");
    assert_eq!(seen[4], "Ok(())", "the tmpfs is unmounted: {seen:#?}");
    assert!(
        seen[5].contains("layer 1 (sha256:1): No such file or directory"),
        "{seen:#?}"
    );
    assert_eq!(seen[8..], ["Ok(())", "Ok(())"], "{seen:#?}");
}

#[test]
fn a_size_that_is_not_one_is_refused_at_configure() {
    let scratch = tempfile::tempdir().unwrap();
    let err = contract::compare_rootfs_backend::<TmpfsRootfs>(
        &contract::artifact("tmpfs_rootfs"),
        b"16m,exec",
        scratch.path(),
        Limits::default(),
    )
    .unwrap_err();
    assert!(err.contains("'16m,exec' is not a tmpfs size"), "{err}");
}
