//! The store, extraction and the copy backend against images built in
//! memory: good images in every format, hostile layers, digest mismatches,
//! caching, concurrency and GC. None of these needs root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use mesos_provisioners::{Error, ImageReference};
use serde_json::json;

fn reference(name: &str) -> ImageReference {
    ImageReference::parse(name).unwrap()
}

#[test]
fn two_layer_docker_save_with_whiteouts_copy_backend() {
    let world = World::new();
    let layers = two_layer_image();
    world.add_archive(
        "busybox:1.36",
        &docker_save("busybox:1.36", &layers, two_layer_runtime()),
    );
    let provisioner = world.provisioner("copy");
    let info = provisioner
        .provision("c1", &reference("busybox:1.36"))
        .unwrap();

    assert_eq!(info.rootfs, world.path("provisioner/containers/c1/rootfs"));
    assert_two_layer_rootfs(&info.rootfs);
    assert_eq!(info.config.entrypoint, vec!["/bin/sh"]);
    assert_eq!(info.config.cmd, vec!["-c", "true"]);
    assert_eq!(info.config.env, vec!["PATH=/bin", "A=b"]);
    assert_eq!(info.config.working_dir.as_deref(), Some("/data"));
    assert_eq!(info.config.user.as_deref(), Some("nobody"));
    assert_eq!(
        info.layers,
        vec![sha256(&layers[0].tar), sha256(&layers[1].tar)],
        "layers are keyed by their uncompressed digest"
    );
    for layer in &info.layers {
        assert!(
            world
                .path(&format!("store/layers/{}/rootfs", layer.hex()))
                .is_dir()
        );
    }
    // The shared layer stays pristine: the container's rootfs is a copy.
    let base = world.path(&format!("store/layers/{}/rootfs", info.layers[0].hex()));
    assert_eq!(
        std::fs::read(base.join("etc/old")).unwrap(),
        b"to be deleted"
    );
    assert_eq!(world.staging_count(), 0);

    assert!(provisioner.destroy("c1").unwrap());
    assert!(!world.path("provisioner/containers/c1").exists());
    assert!(
        !provisioner.destroy("c1").unwrap(),
        "second destroy finds nothing"
    );
    world.assert_outside_untouched();
}

#[test]
fn second_provision_uses_the_stored_metadata_not_the_archive() {
    let world = World::new();
    let layers = two_layer_image();
    world.add_archive(
        "app:v1",
        &docker_save("app:v1", &layers, two_layer_runtime()),
    );
    let provisioner = world.provisioner("copy");
    provisioner
        .provision("first", &reference("app:v1"))
        .unwrap();

    // Scramble the archive but keep its size and mtime: a store that
    // re-read it would fail.
    let path = world.registry().join("app:v1.tar");
    let meta = std::fs::metadata(&path).unwrap();
    let junk = vec![0xAAu8; meta.len() as usize];
    std::fs::write(&path, &junk).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(meta.modified().unwrap()).unwrap();
    drop(file);

    let info = provisioner
        .provision("second", &reference("app:v1"))
        .unwrap();
    assert_two_layer_rootfs(&info.rootfs);

    // A changed archive (new mtime) is read again, and here fails loudly.
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::now()).unwrap();
    drop(file);
    let error = provisioner
        .provision("third", &reference("app:v1"))
        .unwrap_err();
    assert!(matches!(error, Error::Format { .. }), "{error}");
    assert!(!world.path("provisioner/containers/third").exists());
}

#[test]
fn oci_layout_directory_and_archive() {
    let world = World::new();
    let layers = two_layer_image();
    let layout = world.registry().join("quay.io/team/app:2.0");
    std::fs::create_dir_all(&layout).unwrap();
    oci_layout(&layout, "2.0", &layers, two_layer_runtime());

    let provisioner = world.provisioner("copy");
    let info = provisioner
        .provision("oci-dir", &reference("quay.io/team/app:2.0"))
        .unwrap();
    assert_two_layer_rootfs(&info.rootfs);
    assert_eq!(info.config.user.as_deref(), Some("nobody"));

    // The same layout as an OCI archive, under a repository-only name.
    let archive = tar_dir(&layout);
    world.add_archive("team/other:3", &archive);
    let info = provisioner
        .provision("oci-tar", &reference("registry.example:5000/team/other:3"))
        .unwrap();
    assert_two_layer_rootfs(&info.rootfs);
    assert_eq!(
        world.layer_count(),
        2,
        "layers shared between the two images"
    );
}

#[test]
fn non_utf8_names_are_kept_byte_for_byte() {
    use std::os::unix::ffi::OsStrExt;
    let world = World::new();
    let layer = LayerBuilder::new()
        .dir("data/")
        .file_named_bytes(b"data/caf\xe9", b"latin-1")
        .build();
    let layers = vec![ImageLayer::plain(layer)];
    world.add_archive("names:1", &docker_save("names:1", &layers, json!({})));
    let info = world
        .provisioner("copy")
        .provision("c", &reference("names:1"))
        .unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9");
    assert_eq!(
        std::fs::read(info.rootfs.join("data").join(name)).unwrap(),
        b"latin-1"
    );
}

#[test]
fn oci_index_selects_by_tag_digest_and_refuses_strangers() {
    let world = World::new();
    let layout = world.registry().join("multi:v1");
    std::fs::create_dir_all(&layout).unwrap();
    let v1 = vec![ImageLayer::plain(
        LayerBuilder::new().file("v", b"1").build(),
    )];
    oci_layout(&layout, "v1", &v1, json!({"Cmd": ["one"]}));
    let first_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let v2 = vec![ImageLayer::plain(
        LayerBuilder::new().file("v", b"2").build(),
    )];
    oci_layout(&layout, "v2", &v2, json!({"Cmd": ["two"]}));
    // One index naming both images (blobs of both are in the layout).
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let v2_manifest = index["manifests"][0].clone();
    index["manifests"] = json!([first_index["manifests"][0].clone(), v2_manifest.clone()]);
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    // The same layout under other names.
    for name in ["multi:v2", "multi:v3"] {
        std::os::unix::fs::symlink(&layout, world.registry().join(name)).unwrap();
    }
    let v2_digest = v2_manifest["digest"].as_str().unwrap().to_string();
    std::os::unix::fs::symlink(&layout, world.registry().join(format!("multi@{v2_digest}")))
        .unwrap();

    let provisioner = world.provisioner("copy");
    let one = provisioner.provision("a", &reference("multi:v1")).unwrap();
    assert_eq!(one.config.cmd, vec!["one"]);
    let two = provisioner.provision("b", &reference("multi:v2")).unwrap();
    assert_eq!(two.config.cmd, vec!["two"]);
    let pinned = provisioner
        .provision("c", &reference(&format!("multi@{v2_digest}")))
        .unwrap();
    assert_eq!(pinned.config.cmd, vec!["two"]);
    // A tag the index does not name is not silently replaced by another.
    let error = provisioner
        .provision("d", &reference("multi:v3"))
        .unwrap_err();
    assert!(matches!(error, Error::ImageNotFound { .. }), "{error}");
}

#[test]
fn docker_25_save_format_with_blob_paths() {
    let world = World::new();
    let layers = two_layer_image();
    let archive = docker_save_oci("new:1", &layers, two_layer_runtime());
    world.add_archive("new:1", &archive);
    let info = world
        .provisioner("copy")
        .provision("c", &reference("new:1"))
        .unwrap();
    assert_two_layer_rootfs(&info.rootfs);
    assert_eq!(info.config.user.as_deref(), Some("nobody"));

    // The blob name is its digest: a recompressed blob is caught even
    // though its tar (diff_id) is unchanged.
    let world = World::new();
    let mut layers = two_layer_image();
    let recompressed = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut encoder, &layers[1].tar).unwrap();
        encoder.finish().unwrap()
    };
    let honest_name = sha256(&layers[1].blob()).hex().to_string();
    let mut archive = docker_save_oci("new:1", &layers, two_layer_runtime());
    // Swap the gzip stream inside the archive for the recompressed one,
    // under the old name (tar sizes differ, so rebuild the archive).
    let mut rebuilt = tar::Builder::new(Vec::new());
    let mut reader = tar::Archive::new(&archive[..]);
    for entry in reader.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if path.ends_with(&honest_name) {
            data = recompressed.clone();
        }
        let mut header = entry.header().clone();
        header.set_size(data.len() as u64);
        header.set_cksum();
        rebuilt.append_data(&mut header, &path, &data[..]).unwrap();
    }
    archive = rebuilt.into_inner().unwrap();
    layers.clear();
    world.add_archive("new:1", &archive);
    let error = world
        .provisioner("copy")
        .provision("c", &reference("new:1"))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("digest mismatch for layer blob"),
        "{error}"
    );
}

#[test]
fn legacy_repositories_archive() {
    let world = World::new();
    let base = LayerBuilder::new().dir("bin/").file("bin/a", b"a").build();
    let top = LayerBuilder::new()
        .whiteout("bin/a")
        .file("bin/b", b"b")
        .build();
    let mut builder = tar::Builder::new(Vec::new());
    let add = |builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_path(path).unwrap();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    };
    let (base_id, top_id) = ("1".repeat(64), "2".repeat(64));
    add(&mut builder, &format!("{base_id}/json"), br#"{"id":"1"}"#);
    add(&mut builder, &format!("{base_id}/layer.tar"), &base);
    let top_json = json!({"parent": base_id, "config": {"Cmd": ["/bin/b"]}});
    add(
        &mut builder,
        &format!("{top_id}/json"),
        top_json.to_string().as_bytes(),
    );
    add(&mut builder, &format!("{top_id}/layer.tar"), &top);
    let repositories = json!({"old": {"latest": top_id}});
    add(
        &mut builder,
        "repositories",
        repositories.to_string().as_bytes(),
    );
    world.add_archive("old:latest", &builder.into_inner().unwrap());

    let info = world
        .provisioner("copy")
        .provision("legacy", &reference("old"))
        .unwrap();
    assert!(!info.rootfs.join("bin/a").exists());
    assert_eq!(std::fs::read(info.rootfs.join("bin/b")).unwrap(), b"b");
    assert_eq!(info.config.cmd, vec!["/bin/b"]);
    assert_eq!(info.layers, vec![sha256(&base), sha256(&top)]);
}

/// Provisions an image made of `layer` and checks it is refused, nothing
/// outside changed, and no layer or container is left in the store.
fn assert_refused(layer: Vec<u8>, expected_reason: &str) {
    let world = World::new();
    let layers = vec![ImageLayer::plain(layer)];
    world.add_archive("evil:1", &docker_save("evil:1", &layers, json!({})));
    let provisioner = world.provisioner("copy");
    let error = provisioner
        .provision("victim", &reference("evil:1"))
        .unwrap_err();
    match &error {
        Error::UnsafeEntry { reason, .. } => assert!(
            reason.contains(expected_reason),
            "refused for '{reason}', expected '{expected_reason}'"
        ),
        other => panic!("expected an unsafe-entry refusal, got: {other}"),
    }
    world.assert_outside_untouched();
    assert_eq!(
        world.layer_count(),
        0,
        "a partial layer stayed in the store"
    );
    assert_eq!(
        world.staging_count(),
        0,
        "the staging directory was not cleaned"
    );
    assert!(provisioner.containers().unwrap().is_empty());
}

/// The layer is extracted in `store/staging/<tmp>/rootfs`: four levels up
/// is the world's root, where `outside/` lives.
const UP_TO_WORLD: &str = "../../../..";

#[test]
fn refuses_parent_dir_entry() {
    assert_refused(
        LayerBuilder::new()
            .file(&format!("{UP_TO_WORLD}/outside/victim"), b"pwned")
            .build(),
        "'..'",
    );
    assert_refused(
        LayerBuilder::new().file("a/../../x", b"pwned").build(),
        "'..'",
    );
}

#[test]
fn refuses_absolute_path() {
    let world = World::new();
    let victim = world.path("outside/victim");
    assert_refused(
        LayerBuilder::new()
            .file(victim.to_str().unwrap(), b"pwned")
            .build(),
        "absolute",
    );
}

#[test]
fn refuses_escaping_symlink_and_writes_through_symlinks() {
    // A relative symlink climbing out of the layer.
    assert_refused(
        LayerBuilder::new()
            .symlink("evil", &format!("{UP_TO_WORLD}/outside"))
            .file("evil/victim", b"pwned")
            .build(),
        "escapes",
    );
    // An absolute symlink is legal (it points inside the container's root)
    // but writing through it on the host is not.
    let world = World::new();
    let outside = world.path("outside");
    assert_refused(
        LayerBuilder::new()
            .symlink("evil", outside.to_str().unwrap())
            .file("evil/victim", b"pwned")
            .build(),
        "symlink",
    );
    // Nor through a symlink pointing inside the layer.
    assert_refused(
        LayerBuilder::new()
            .dir("real/")
            .symlink("alias", "real")
            .file("alias/x", b"x")
            .build(),
        "symlink",
    );
}

#[test]
fn refuses_escaping_hardlinks() {
    assert_refused(
        LayerBuilder::new()
            .hardlink("link", &format!("{UP_TO_WORLD}/outside/victim"))
            .file("link", b"pwned")
            .build(),
        "escapes",
    );
    let world = World::new();
    let victim = world.path("outside/victim");
    assert_refused(
        LayerBuilder::new()
            .hardlink("link", victim.to_str().unwrap())
            .build(),
        "escapes",
    );
    // A hardlink through a symlink to outside.
    assert_refused(
        LayerBuilder::new()
            .symlink("out", world.path("outside").to_str().unwrap())
            .hardlink("link", "out/victim")
            .build(),
        "not inside this layer",
    );
}

#[test]
fn refuses_device_nodes_and_fifos() {
    assert_refused(
        LayerBuilder::new().char_device("dev/null").build(),
        "device",
    );
    assert_refused(LayerBuilder::new().fifo("pipe").build(), "fifo");
}

#[test]
fn refused_layer_after_good_ones_leaves_the_good_ones_only() {
    let world = World::new();
    let good = LayerBuilder::new().file("ok", b"ok").build();
    let bad = LayerBuilder::new().fifo("pipe").build();
    let layers = vec![ImageLayer::plain(good.clone()), ImageLayer::plain(bad)];
    world.add_archive("half:1", &docker_save("half:1", &layers, json!({})));
    let provisioner = world.provisioner("copy");
    provisioner
        .provision("c", &reference("half:1"))
        .unwrap_err();
    // The good layer is whole and reusable; the bad one left nothing.
    assert_eq!(world.layer_count(), 1);
    assert!(
        world
            .path(&format!("store/layers/{}/rootfs/ok", sha256(&good).hex()))
            .is_file()
    );
    assert_eq!(world.staging_count(), 0);
    assert!(provisioner.containers().unwrap().is_empty());
}

#[test]
fn digest_mismatches_are_refused() {
    // OCI: a layer blob that does not match its descriptor.
    let world = World::new();
    let layers = two_layer_image();
    let layout = world.registry().join("app:1");
    std::fs::create_dir_all(&layout).unwrap();
    oci_layout(&layout, "1", &layers, json!({}));
    let blob = layout
        .join("blobs/sha256")
        .join(sha256(&layers[0].tar).hex());
    let mut tampered = LayerBuilder::new().file("etc/passwd", b"evil").build();
    tampered.resize(layers[0].tar.len(), 0);
    std::fs::write(&blob, &tampered).unwrap();
    let error = world
        .provisioner("copy")
        .provision("c", &reference("app:1"))
        .unwrap_err();
    assert!(matches!(error, Error::DigestMismatch { .. }), "{error}");
    assert_eq!(world.layer_count(), 0);
    assert_eq!(world.staging_count(), 0);

    // OCI: the gzipped layer recompressed differently: same tar (so its
    // diff_id matches), different blob.
    let world = World::new();
    let layout = world.registry().join("app:1");
    std::fs::create_dir_all(&layout).unwrap();
    oci_layout(&layout, "1", &layers, json!({}));
    let blob = layout
        .join("blobs/sha256")
        .join(sha256(&layers[1].blob()).hex());
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, &layers[1].tar).unwrap();
    std::fs::write(&blob, encoder.finish().unwrap()).unwrap();
    let error = world
        .provisioner("copy")
        .provision("c", &reference("app:1"))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("digest mismatch for layer blob"),
        "{error}"
    );
    assert_eq!(
        world.layer_count(),
        1,
        "only the untouched bottom layer is stored"
    );
    assert_eq!(world.staging_count(), 0);

    // docker save: a config whose diff_id does not match the layer.
    let world = World::new();
    let layers = vec![ImageLayer::plain(
        LayerBuilder::new().file("f", b"1").build(),
    )];
    let mut config = image_config(&layers, json!({}));
    config["rootfs"]["diff_ids"][0] = json!(format!("sha256:{}", "0".repeat(64)));
    world.add_archive("app:2", &docker_save_with_config("app:2", &layers, &config));
    let error = world
        .provisioner("copy")
        .provision("c", &reference("app:2"))
        .unwrap_err();
    assert!(matches!(error, Error::DigestMismatch { .. }), "{error}");
    assert_eq!(world.layer_count(), 0);

    // docker save: a config file whose name (its digest) does not match.
    let world = World::new();
    let mut archive = docker_save("app:3", &layers, json!({"Cmd": ["a"]}));
    let needle = br#""Cmd":["a"]"#;
    let at = archive
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    archive[at + 8] = b'b';
    world.add_archive("app:3", &archive);
    let error = world
        .provisioner("copy")
        .provision("c", &reference("app:3"))
        .unwrap_err();
    assert!(matches!(error, Error::DigestMismatch { .. }), "{error}");
}

#[test]
fn missing_images_and_bad_names_are_clear_errors() {
    let world = World::new();
    let provisioner = world.provisioner("copy");
    let error = provisioner
        .provision("c", &reference("nothere:1"))
        .unwrap_err();
    assert!(matches!(error, Error::ImageNotFound { .. }));
    assert!(error.to_string().contains("nothere:1.tar"), "{error}");
    assert!(provisioner.containers().unwrap().is_empty());

    for bad in ["UPPER", "a:b:c", "x@sha256:12", ""] {
        let error = ImageReference::parse(bad).unwrap_err();
        assert!(
            matches!(error, Error::InvalidReference { .. }),
            "{bad}: {error}"
        );
        assert!(error.to_string().contains("invalid image name"), "{error}");
    }
    for bad_id in ["", "..", "a/b", "a b"] {
        assert!(matches!(
            provisioner.provision(bad_id, &reference("x")),
            Err(Error::InvalidContainerId { .. })
        ));
    }
    assert!(matches!(
        mesos_provisioners::Provisioner::new(world.path("p2"), world.store(), "aufs"),
        Err(Error::UnknownBackend { .. })
    ));
}

#[test]
fn provisioning_one_container_twice_is_refused() {
    let world = World::new();
    let layers = vec![ImageLayer::plain(
        LayerBuilder::new().file("f", b"1").build(),
    )];
    world.add_archive("one:1", &docker_save("one:1", &layers, json!({})));
    let provisioner = world.provisioner("copy");
    provisioner.provision("c", &reference("one:1")).unwrap();
    assert!(matches!(
        provisioner.provision("c", &reference("one:1")),
        Err(Error::AlreadyProvisioned(_))
    ));
    // The first rootfs is intact.
    assert!(world.path("provisioner/containers/c/rootfs/f").is_file());
}

#[test]
fn concurrent_provisions_share_layers_safely() {
    let world = Arc::new(World::new());
    let layers = two_layer_image();
    world.add_archive(
        "shared:1",
        &docker_save("shared:1", &layers, two_layer_runtime()),
    );
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let world = Arc::clone(&world);
            std::thread::spawn(move || {
                // Separate provisioner objects, as separate processes would.
                let provisioner = world.provisioner("copy");
                provisioner
                    .provision(&format!("c{i}"), &reference("shared:1"))
                    .unwrap()
            })
        })
        .collect();
    for thread in threads {
        let info = thread.join().unwrap();
        assert_two_layer_rootfs(&info.rootfs);
    }
    assert_eq!(world.layer_count(), 2);
    assert_eq!(world.staging_count(), 0);
}

#[test]
fn prune_keeps_requested_images_and_live_containers_layers() {
    let world = World::new();
    let base = LayerBuilder::new().file("base", b"base").build();
    let only_a = LayerBuilder::new().file("a", b"a").build();
    let only_b = LayerBuilder::new().file("b", b"b").build();
    let image_a = vec![
        ImageLayer::plain(base.clone()),
        ImageLayer::plain(only_a.clone()),
    ];
    let image_b = vec![
        ImageLayer::plain(base.clone()),
        ImageLayer::gzipped(only_b.clone()),
    ];
    world.add_archive("a:1", &docker_save("a:1", &image_a, json!({})));
    world.add_archive("b:1", &docker_save("b:1", &image_b, json!({})));
    let provisioner = world.provisioner("copy");
    provisioner.provision("live", &reference("a:1")).unwrap();
    provisioner.provision("gone", &reference("b:1")).unwrap();
    provisioner.destroy("gone").unwrap();
    assert_eq!(world.layer_count(), 3);
    let layer_exists = |tar: &[u8]| {
        world
            .path(&format!("store/layers/{}", sha256(tar).hex()))
            .exists()
    };

    // Nothing kept by name: b's own layer goes, the live container's stay.
    let stats = provisioner.prune_images(&[]).unwrap();
    assert_eq!(stats.layers_removed, 1);
    assert_eq!(stats.images_removed, 2);
    assert!(layer_exists(&base) && layer_exists(&only_a) && !layer_exists(&only_b));
    // The live container still works.
    assert!(world.path("provisioner/containers/live/rootfs/a").is_file());

    // b provisioned again, then the live container ends; keeping b keeps
    // the shared base and drops a's own layer.
    provisioner.provision("again", &reference("b:1")).unwrap();
    provisioner.destroy("again").unwrap();
    provisioner.destroy("live").unwrap();
    let stats = provisioner.prune_images(&[reference("b:1")]).unwrap();
    assert_eq!(stats.layers_removed, 1);
    assert!(layer_exists(&base) && !layer_exists(&only_a) && layer_exists(&only_b));

    // The kept image still provisions from the store alone, even with
    // the archive gone from the registry.
    std::fs::remove_file(world.registry().join("b:1.tar")).unwrap();
    let info = provisioner
        .provision("from-cache", &reference("b:1"))
        .unwrap();
    assert!(info.rootfs.join("b").is_file());
    provisioner.destroy("from-cache").unwrap();
}

#[test]
fn recover_destroys_unknown_containers() {
    let world = World::new();
    let layers = vec![ImageLayer::plain(
        LayerBuilder::new().file("f", b"1").build(),
    )];
    world.add_archive("r:1", &docker_save("r:1", &layers, json!({})));
    let provisioner = world.provisioner("copy");
    provisioner.provision("known", &reference("r:1")).unwrap();
    provisioner.provision("orphan", &reference("r:1")).unwrap();
    // A fresh provisioner over the same directories, as after a restart.
    let restarted = world.provisioner("copy");
    let destroyed = restarted.recover(&["known".to_string()]).unwrap();
    assert_eq!(destroyed, vec!["orphan"]);
    assert_eq!(restarted.containers().unwrap(), vec!["known"]);
}

/// Damaged archives (truncated anywhere, bytes flipped) give errors, never
/// a panic, and never leave a partial layer behind.
#[test]
fn damaged_archives_fail_cleanly() {
    let world = World::new();
    let layers = two_layer_image();
    let archive = docker_save("dmg:1", &layers, two_layer_runtime());
    let provisioner = world.provisioner("copy");
    let store = world.path("store/layers");
    let mut outcomes = (0, 0);
    let step = (archive.len() / 40).max(1);
    for (i, cut) in (0..archive.len()).step_by(step).enumerate() {
        let mut damaged = archive[..cut].to_vec();
        if i % 2 == 1 {
            // Also flip a byte inside what is left.
            if let Some(byte) = damaged.get_mut(cut / 2) {
                *byte ^= 0x5a;
            }
        }
        world.add_archive("dmg:1", &damaged);
        let id = format!("c{i}");
        match provisioner.provision(&id, &reference("dmg:1")) {
            Ok(_) => {
                outcomes.0 += 1;
                provisioner.destroy(&id).unwrap();
            }
            Err(_) => outcomes.1 += 1,
        }
        // Every stored layer is a whole, verified one.
        for entry in std::fs::read_dir(&store).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                layers.iter().any(|l| sha256(&l.tar).hex() == name),
                "unexpected layer {name} in the store"
            );
        }
        assert_eq!(world.staging_count(), 0);
    }
    assert!(outcomes.1 > 0, "no damaged archive was refused");
    world.assert_outside_untouched();
}
