//! The container's `/` is 0755 whatever the agent's umask: a restrictive
//! umask must not make the root unreadable to the task's user. Its own test
//! binary, as the umask is per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use mesos_provisioners::ImageReference;
use nix::sys::stat::{Mode, umask};
use serde_json::json;

#[test]
fn container_root_is_0755_under_umask_077() {
    umask(Mode::from_bits_truncate(0o077));
    let world = World::new();
    // A layer without a `./` entry: nothing in it sets the root's mode.
    let layers = vec![ImageLayer::plain(
        LayerBuilder::new().file("f", b"1").build(),
    )];
    world.add_archive("m:1", &docker_save("m:1", &layers, json!({})));
    let image = ImageReference::parse("m:1").unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;

    let copy = world.provisioner("copy");
    let info = copy.provision("copy", &image).unwrap();
    assert_eq!(mode(&info.rootfs), 0o755);
    let layer = world.path(&format!("store/layers/{}/rootfs", info.layers[0].hex()));
    assert_eq!(mode(&layer), 0o755);
    copy.destroy("copy").unwrap();

    if require_root("mounting overlayfs").is_none() {
        return;
    }
    let overlay = world.provisioner("overlay");
    let info = overlay.provision("overlay", &image).unwrap();
    let root_mode = mode(&info.rootfs);
    overlay.destroy("overlay").unwrap();
    assert_eq!(root_mode, 0o755);
}
