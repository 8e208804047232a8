//! Plugins in the provisioner; fakes stand in for the envelope (the
//! adapters and the example plugins have their own tests), and none of
//! this needs root.
//! - Rootfs backends: chosen by name beside the built-ins, given the
//!   store's layers with their whiteouts, and found again by the name a
//!   container's record holds when the rootfs is destroyed, after a
//!   restart with another default backend too.
//! - Image stores: an image whose registry part names one comes from where
//!   it says, read and cached by the Docker store as a local image is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use mesos_plugin_api::image::{ImageName, ImageStore, ImageStoreError};
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

const STORE: &str = "com.example.fake-images";

/// Writes the two-layer image into the scratch directory as a `docker
/// save` archive, or answers `answer` when set; records every fetch.
#[derive(Default)]
struct FakeStore {
    fetched: Mutex<Vec<ImageName>>,
    answer: Option<Result<std::path::PathBuf, String>>,
}

impl ImageStore for FakeStore {
    fn name(&self) -> &str {
        STORE
    }

    fn fetch(
        &self,
        image: &ImageName,
        scratch: &std::path::Path,
    ) -> Result<std::path::PathBuf, ImageStoreError> {
        assert!(scratch.is_dir() && scratch.read_dir().unwrap().next().is_none());
        self.fetched.lock().unwrap().push(image.clone());
        match &self.answer {
            Some(Ok(path)) => Ok(path.clone()),
            Some(Err(message)) => Err(ImageStoreError::Failed {
                store: STORE.into(),
                message: message.clone(),
            }),
            None => {
                let archive = scratch.join("image.tar");
                let bytes = docker_save("app:v1", &two_layer_image(), two_layer_runtime());
                std::fs::write(&archive, bytes).unwrap();
                Ok(archive)
            }
        }
    }
}

fn with_store(world: &World, store: FakeStore, docker: bool) -> (Provisioner, Arc<FakeStore>) {
    let store = Arc::new(store);
    let provisioner = world
        .provisioner("copy")
        .with_image_stores(vec![store.clone() as Arc<dyn ImageStore>], docker);
    (provisioner, store)
}

#[test]
fn an_image_of_a_store_plugin_is_read_from_where_it_says() {
    let world = World::new();
    let (provisioner, store) = with_store(&world, FakeStore::default(), false);
    let image = ImageReference::parse("com.example.fake-images/app:v1").unwrap();
    let info = provisioner.provision("c1", &image).unwrap();
    assert_two_layer_rootfs(&info.rootfs);
    assert_eq!(info.config.entrypoint, vec!["/bin/sh"]);
    assert_eq!(
        *store.fetched.lock().unwrap(),
        [ImageName {
            name: "com.example.fake-images/app:v1".into(),
            registry: STORE.into(),
            repository: "app".into(),
            tag: Some("v1".into()),
            digest: None,
        }]
    );
    // The scratch directory is gone; the layers are in the store, where a
    // second container finds them.
    assert_eq!(world.staging_count(), 0);
    let layers = world.layer_count();
    assert_eq!(layers, 2);
    provisioner.provision("c2", &image).unwrap();
    assert_eq!(world.layer_count(), layers);
    assert_eq!(store.fetched.lock().unwrap().len(), 2);
    for id in ["c1", "c2"] {
        assert!(provisioner.destroy(id).unwrap());
    }
    world.assert_outside_untouched();
}

#[test]
fn without_docker_only_store_plugins_serve_images() {
    let world = World::new();
    world.add_archive(
        "app:v1",
        &docker_save("app:v1", &two_layer_image(), two_layer_runtime()),
    );
    let (without, _) = with_store(&world, FakeStore::default(), false);
    let err = without.provision("c1", &image()).unwrap_err().to_string();
    assert_eq!(
        without
            .provision("c1", &ImageReference::parse("host.example/app:v1").unwrap())
            .unwrap_err()
            .to_string(),
        "image 'host.example/app:v1' not found: no image store is named 'host.example', and --image_providers does not list docker"
    );
    assert_eq!(
        err,
        "image 'registry-1.docker.io/library/app:v1' not found: --image_providers does not list docker (image stores serve the images named '<store>/<repository>:<tag>')"
    );
    let (with, store) = with_store(&world, FakeStore::default(), true);
    with.provision("c1", &image()).unwrap();
    assert!(store.fetched.lock().unwrap().is_empty());
}

#[test]
fn a_store_plugin_failing_or_answering_garbage_leaves_nothing_behind() {
    let world = World::new();
    let image = ImageReference::parse("com.example.fake-images/app:v1").unwrap();
    let garbage = world.path("outside/victim");
    for (answer, expected) in [
        (
            Err("registry unreachable".to_string()),
            "image store com.example.fake-images: registry unreachable".to_string(),
        ),
        (
            Ok(garbage.clone()),
            format!("bad image archive {}", garbage.display()),
        ),
    ] {
        let store = FakeStore {
            answer: Some(answer),
            ..FakeStore::default()
        };
        let (provisioner, _) = with_store(&world, store, true);
        let err = provisioner.provision("c1", &image).unwrap_err().to_string();
        assert!(err.starts_with(&expected), "{err}");
        assert!(!world.path("provisioner/containers/c1").exists());
        assert_eq!(world.staging_count(), 0);
    }
    world.assert_outside_untouched();
}
