//! Rootfs backend plugins in the provisioner: chosen by name beside the
//! built-ins, given the store's layers with their whiteouts, and found
//! again by the name a container's record holds when the rootfs is
//! destroyed, after a restart with another default backend too. A fake
//! plugin stands in for the envelope (the adapter and the example plugin
//! have their own tests); none of this needs root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use mesos_plugin_api::rootfs::{Container, RootfsBackend, RootfsError, RootfsLayer};
use mesos_provisioners::backend::Backends;
use mesos_provisioners::{Error, ImageReference, Provisioner};

const NAME: &str = "com.example.fake_rootfs";

/// Makes the rootfs a directory holding `layers.txt`, one line per layer;
/// records every call; fails provisions when `fail`.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    fail: bool,
}

impl RootfsBackend for Fake {
    fn name(&self) -> &str {
        NAME
    }

    fn provision(
        &self,
        container: &Container<'_>,
        layers: &[RootfsLayer],
    ) -> Result<(), RootfsError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("provision {}", container.id));
        std::fs::create_dir(container.rootfs).unwrap();
        if self.fail {
            return Err(RootfsError::Failed {
                backend: NAME.into(),
                message: "out of tmpfs".into(),
            });
        }
        let lines: Vec<String> = layers
            .iter()
            .map(|l| {
                format!(
                    "{} {} deleted={:?} opaque={:?}",
                    l.digest,
                    l.path.join("etc").is_dir(),
                    l.whiteouts.deleted,
                    l.whiteouts.opaque
                )
            })
            .collect();
        std::fs::write(container.rootfs.join("layers.txt"), lines.join("\n")).unwrap();
        Ok(())
    }

    fn destroy(&self, container: &Container<'_>) -> Result<(), RootfsError> {
        assert_eq!(container.rootfs, container.dir.join("rootfs"));
        self.calls
            .lock()
            .unwrap()
            .push(format!("destroy {}", container.id));
        Ok(())
    }
}

fn world_with_image() -> (World, Vec<ImageLayer>) {
    let world = World::new();
    let layers = two_layer_image();
    world.add_archive(
        "app:v1",
        &docker_save("app:v1", &layers, two_layer_runtime()),
    );
    (world, layers)
}

fn provisioner(world: &World, default: &str, plugins: &[&Arc<Fake>]) -> Result<Provisioner, Error> {
    let plugins = plugins
        .iter()
        .map(|p| Arc::clone(p) as Arc<dyn RootfsBackend>)
        .collect();
    Provisioner::with_backends(
        world.path("provisioner"),
        world.store(),
        default,
        Backends::with_plugins(plugins),
    )
}

fn image() -> ImageReference {
    ImageReference::parse("app:v1").unwrap()
}

#[test]
fn a_plugin_builds_the_rootfs_from_the_layers_and_their_whiteouts() {
    let (world, layers) = world_with_image();
    let fake = Arc::new(Fake::default());
    let provisioner = provisioner(&world, NAME, &[&fake]).unwrap();
    assert_eq!(provisioner.backend_name(), NAME);
    let info = provisioner.provision("c1", &image()).unwrap();
    assert_eq!(info.rootfs, world.path("provisioner/containers/c1/rootfs"));
    let listed = std::fs::read_to_string(info.rootfs.join("layers.txt")).unwrap();
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            format!("{} true deleted={{}} opaque={{}}", sha256(&layers[0].tar)),
            format!(
                "{} true deleted={{\"etc/old\", \"lib\", \"var/cache/x\"}} opaque={{\"data\"}}",
                sha256(&layers[1].tar)
            ),
        ]
    );
    assert!(provisioner.destroy("c1").unwrap());
    assert!(!world.path("provisioner/containers/c1").exists());
    assert_eq!(*fake.calls.lock().unwrap(), ["provision c1", "destroy c1"]);
    world.assert_outside_untouched();
}

#[test]
fn the_backend_on_record_destroys_the_rootfs_it_built() {
    let (world, _) = world_with_image();
    let fake = Arc::new(Fake::default());
    provisioner(&world, NAME, &[&fake])
        .unwrap()
        .provision("c1", &image())
        .unwrap();

    // Restarted with another backend and without the plugin: the
    // rootfs cannot be torn down, and is kept rather than deleted blind.
    let without = provisioner(&world, "copy", &[]).unwrap();
    let err = without.recover(&[]).unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown provisioner backend 'com.example.fake_rootfs' (known: copy, overlay)"
    );
    assert!(world.path("provisioner/containers/c1/rootfs").is_dir());

    // With the plugin loaded again, the plugin destroys it, though `copy`
    // is the default now.
    let with = provisioner(&world, "copy", &[&fake]).unwrap();
    assert_eq!(with.recover(&[]).unwrap(), ["c1"]);
    assert!(!world.path("provisioner/containers/c1").exists());
    assert_eq!(*fake.calls.lock().unwrap(), ["provision c1", "destroy c1"]);
}

#[test]
fn a_failed_provision_is_destroyed_and_names_the_plugin() {
    let (world, _) = world_with_image();
    let fake = Arc::new(Fake {
        fail: true,
        ..Fake::default()
    });
    let provisioner = provisioner(&world, NAME, &[&fake]).unwrap();
    let err = provisioner
        .provision("c1", &image())
        .unwrap_err()
        .to_string();
    assert_eq!(err, "rootfs backend com.example.fake_rootfs: out of tmpfs");
    assert!(!world.path("provisioner/containers/c1").exists());
    assert_eq!(*fake.calls.lock().unwrap(), ["provision c1", "destroy c1"]);
}

#[test]
fn an_unknown_backend_lists_the_plugins_too() {
    let (world, _) = world_with_image();
    let err = provisioner(&world, "com.example.other", &[&Arc::new(Fake::default())])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "unknown provisioner backend 'com.example.other' (known: copy, overlay, com.example.fake_rootfs)"
    );
}
