//! Real root filesystems: a busybox image built offline from the host's
//! `/bin/busybox` (Debian's busybox-static) as a `docker save` archive,
//! provisioned with the overlay and copy backends and run with `chroot`.
//! These need root (mount, chroot): without it they are skipped with the
//! reason printed, and with `CI=true` a skip is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use mesos_provisioners::ImageReference;
use mesos_provisioners::mounts::is_mount_point;
use serde_json::json;

/// Unmounts a rootfs left mounted by a failing test, so its temporary
/// directory can go.
struct UnmountOnDrop(std::path::PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        if is_mount_point(&self.0).unwrap_or(false) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

#[test]
fn busybox_with_overlay_runs_and_unmounts() {
    if require_root("mounting overlayfs").is_none() {
        return;
    }
    let Some(archive) = busybox_archive() else {
        return;
    };
    let world = World::new();
    world.add_archive("busybox:latest", &archive);
    let provisioner = world.provisioner("overlay");
    let info = provisioner
        .provision("bb", &ImageReference::parse("busybox").unwrap())
        .unwrap();
    let _guard = UnmountOnDrop(info.rootfs.clone());

    assert!(
        is_mount_point(&info.rootfs).unwrap(),
        "rootfs is not mounted"
    );
    assert!(info.rootfs.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read(info.rootfs.join("etc/hostname")).unwrap(),
        b"busybox\n"
    );
    assert_eq!(info.config.cmd, vec!["sh"]);
    assert_eq!(chroot_echo(&info.rootfs), "hi\n");

    // Writes land in the container's upper directory, never in a layer.
    std::fs::write(info.rootfs.join("tmp/written"), b"x").unwrap();
    for layer in &info.layers {
        let layer_tmp = world.path(&format!("store/layers/{}/rootfs/tmp/written", layer.hex()));
        assert!(
            !layer_tmp.exists(),
            "container write reached a shared layer"
        );
    }
    assert!(
        world
            .path("provisioner/containers/bb/upper/tmp/written")
            .is_file()
    );

    assert!(provisioner.destroy("bb").unwrap());
    assert!(
        !is_mount_point(&info.rootfs).unwrap(),
        "rootfs still mounted"
    );
    assert!(!world.path("provisioner/containers/bb").exists());
    // The layers survive for the next container.
    for layer in &info.layers {
        assert!(
            world
                .path(&format!("store/layers/{}/rootfs", layer.hex()))
                .is_dir()
        );
    }
}

#[test]
fn busybox_with_copy_runs_in_chroot() {
    if require_root("chroot").is_none() {
        return;
    }
    let Some(archive) = busybox_archive() else {
        return;
    };
    let world = World::new();
    world.add_archive("busybox:latest", &archive);
    let provisioner = world.provisioner("copy");
    let info = provisioner
        .provision("bb", &ImageReference::parse("busybox:latest").unwrap())
        .unwrap();
    assert!(!is_mount_point(&info.rootfs).unwrap());
    assert_eq!(chroot_echo(&info.rootfs), "hi\n");
    provisioner.destroy("bb").unwrap();
    assert!(!world.path("provisioner/containers/bb").exists());
}

#[test]
fn overlay_applies_whiteouts_and_layers_then_serve_copy() {
    if require_root("mounting overlayfs").is_none() {
        return;
    }
    let world = World::new();
    let layers = two_layer_image();
    world.add_archive("wh:1", &docker_save("wh:1", &layers, two_layer_runtime()));
    let image = ImageReference::parse("wh:1").unwrap();

    let overlay = world.provisioner("overlay");
    let info = overlay.provision("ov", &image).unwrap();
    let _guard = UnmountOnDrop(info.rootfs.clone());
    assert_two_layer_rootfs(&info.rootfs);

    // The layers now carry overlay whiteouts; the copy backend must still
    // produce the same tree from them.
    let copy = world.provisioner("copy");
    let copied = copy.provision("cp", &image).unwrap();
    assert_two_layer_rootfs(&copied.rootfs);

    // destroy uses the backend that built each container, whichever
    // provisioner object is asked.
    assert!(copy.destroy("ov").unwrap());
    assert!(!is_mount_point(&info.rootfs).unwrap());
    assert!(overlay.destroy("cp").unwrap());
    assert!(overlay.containers().unwrap().is_empty());
}

/// `docker` CLI output, or why it failed.
fn docker(args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut child = Command::new("docker")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("docker CLI: {e}"))?;
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).map_err(|e| e.to_string())?;
    }
    drop(input);
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The archive format Docker itself writes (Docker 25+: an OCI layout with
/// `manifest.json` beside it), from a real `docker save`.
#[test]
fn real_docker_save_archive_with_overlay() {
    if require_root("mounting overlayfs").is_none() {
        return;
    }
    let Some(rootfs) = busybox_rootfs() else {
        return;
    };
    if let Err(reason) = docker(&["version"], None) {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("no Docker Engine in CI: {reason}");
        }
        eprintln!("SKIPPED: no Docker Engine: {reason}");
        return;
    }
    const IMAGE: &str = "mesos-provisioners-test/busybox:1";
    docker(
        &[
            "import",
            "--change",
            r#"CMD ["sh"]"#,
            "--change",
            "ENV A=b",
            "-",
            IMAGE,
        ],
        Some(&rootfs),
    )
    .unwrap();
    let world = World::new();
    let archive = world.registry().join(format!("{IMAGE}.tar"));
    std::fs::create_dir_all(archive.parent().unwrap()).unwrap();
    let saved = docker(&["save", "-o", archive.to_str().unwrap(), IMAGE], None);
    // Each run imports anew; leave no image behind either way.
    let _ = docker(&["rmi", IMAGE], None);
    saved.unwrap();

    let provisioner = world.provisioner("overlay");
    let info = provisioner
        .provision("saved", &ImageReference::parse(IMAGE).unwrap())
        .unwrap();
    let _guard = UnmountOnDrop(info.rootfs.clone());
    assert_eq!(info.config.cmd, vec!["sh"]);
    assert!(
        info.config.env.contains(&"A=b".to_string()),
        "{:?}",
        info.config.env
    );
    assert_eq!(chroot_echo(&info.rootfs), "hi\n");
    assert!(provisioner.destroy("saved").unwrap());
    assert!(!is_mount_point(&info.rootfs).unwrap());
}

/// A host directory bind-mounted into a container's rootfs (as the
/// containerizer does for sandboxes and volumes) is unmounted on destroy,
/// never deleted through.
#[test]
fn destroy_unmounts_binds_inside_the_rootfs_before_deleting() {
    if require_root("bind mounts").is_none() {
        return;
    }
    for backend in ["copy", "overlay"] {
        let world = World::new();
        let layers = vec![ImageLayer::plain(LayerBuilder::new().dir("mnt/").build())];
        world.add_archive("b:1", &docker_save("b:1", &layers, json!({})));
        let provisioner = world.provisioner(backend);
        let info = provisioner
            .provision("c", &ImageReference::parse("b:1").unwrap())
            .unwrap();
        let _guard = UnmountOnDrop(info.rootfs.clone());
        let target = info.rootfs.join("mnt");
        nix::mount::mount(
            Some(&world.path("outside")),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        let _bind_guard = UnmountOnDrop(target.clone());
        assert!(target.join("victim").is_file());

        assert!(provisioner.destroy("c").unwrap(), "{backend}");
        assert!(
            !is_mount_point(&target).unwrap(),
            "{backend}: bind left mounted"
        );
        assert!(
            !world.path("provisioner/containers/c").exists(),
            "{backend}"
        );
        world.assert_outside_untouched();
    }
}

/// More layers than one page of mount(2) options can name: mounted through
/// the new mount API, in the right order.
#[test]
fn overlay_with_more_layers_than_mount_options_fit() {
    if require_root("mounting overlayfs").is_none() {
        return;
    }
    const LAYERS: usize = 60;
    let layers: Vec<ImageLayer> = (0..LAYERS)
        .map(|i| {
            let mut layer = LayerBuilder::new()
                .file(&format!("f{i}"), format!("{i}").as_bytes())
                .file("top", format!("{i}").as_bytes());
            // Each layer deletes the previous layer's own file; the first
            // layer's stays.
            if i > 1 {
                layer = layer.whiteout(&format!("f{}", i - 1));
            }
            ImageLayer::plain(layer.build())
        })
        .collect();
    let world = World::new();
    world.add_archive("many:1", &docker_save("many:1", &layers, json!({})));
    let provisioner = world.provisioner("overlay");
    let info = match provisioner.provision("m", &ImageReference::parse("many:1").unwrap()) {
        Ok(info) => info,
        // Kernels before 6.8 have no `lowerdir+`: the error says so.
        Err(error) if error.to_string().contains("new mount API failed") => {
            eprintln!("SKIPPED: kernel without fsconfig lowerdir+: {error}");
            return;
        }
        Err(error) => panic!("{error}"),
    };
    let _guard = UnmountOnDrop(info.rootfs.clone());
    assert_eq!(info.layers.len(), LAYERS);
    let read = |name: &str| std::fs::read_to_string(info.rootfs.join(name)).ok();
    assert_eq!(read("top").as_deref(), Some("59"), "topmost layer must win");
    assert_eq!(read("f0").as_deref(), Some("0"));
    assert_eq!(read(&format!("f{}", LAYERS - 1)).as_deref(), Some("59"));
    for i in 1..LAYERS - 1 {
        assert_eq!(read(&format!("f{i}")), None, "f{i} was whited out");
    }
    assert!(provisioner.destroy("m").unwrap());
    assert!(!is_mount_point(&info.rootfs).unwrap());
}

/// After an agent restart, recover unmounts and removes the rootfs of
/// containers the agent no longer knows, and keeps the known ones mounted.
#[test]
fn recover_unmounts_unknown_overlay_containers() {
    if require_root("mounting overlayfs").is_none() {
        return;
    }
    let world = World::new();
    let layers = vec![ImageLayer::plain(
        LayerBuilder::new().file("f", b"1").build(),
    )];
    world.add_archive("r:1", &docker_save("r:1", &layers, json!({})));
    let image = ImageReference::parse("r:1").unwrap();
    let provisioner = world.provisioner("overlay");
    let known = provisioner.provision("known", &image).unwrap();
    let _known_guard = UnmountOnDrop(known.rootfs.clone());
    let orphan = provisioner.provision("orphan", &image).unwrap();
    let _orphan_guard = UnmountOnDrop(orphan.rootfs.clone());

    let restarted = world.provisioner("overlay");
    assert_eq!(
        restarted.recover(&["known".to_string()]).unwrap(),
        vec!["orphan"]
    );
    assert!(!is_mount_point(&orphan.rootfs).unwrap());
    assert!(!world.path("provisioner/containers/orphan").exists());
    assert!(is_mount_point(&known.rootfs).unwrap());
    assert_eq!(std::fs::read(known.rootfs.join("f")).unwrap(), b"1");
    assert!(restarted.destroy("known").unwrap());
}
