//! The contract suite against the store's built-in and dylib forms: both
//! pack the same directory into the same OCI layout, byte for byte, and
//! refuse the same names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use image_dirs::ImageDirs;
use mesos_plugin_api::contract::{self, Limits};

/// `<root>/app/1/`: a rootfs with a file, a directory and a symlink, and
/// a config.
fn image_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let image = root.path().join("app/1");
    std::fs::create_dir_all(image.join("rootfs/etc")).unwrap();
    std::fs::write(image.join("rootfs/etc/motd"), "hello\n").unwrap();
    std::os::unix::fs::symlink("etc/motd", image.join("rootfs/motd")).unwrap();
    std::fs::write(image.join("config.json"), r#"{"Env": ["PATH=/bin"]}"#).unwrap();
    root
}

/// The dylib's instance is one per process, as in the agent: tests that
/// configure it with different roots take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn compare(root: &Path, images: &[&str]) -> Result<Vec<String>, String> {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let scratch = tempfile::tempdir().unwrap();
    contract::compare_image_store::<ImageDirs>(
        &contract::artifact("image_dirs"),
        root.display().to_string().as_bytes(),
        images,
        scratch.path(),
        Limits::default(),
    )
}

#[test]
fn both_forms_pack_the_same_layout() {
    let root = image_root();
    let seen = compare(root.path(), &["app:1", "app:2", "../../etc:1"]).unwrap();
    assert_eq!(seen[0], "Ok(\"layout\")", "{seen:#?}");
    // `path size sha256` of each file: the config, manifest and layer
    // blobs, each named by its digest, then the index and the marker.
    let files: Vec<Vec<&str>> = seen[1].lines().map(|f| f.split(' ').collect()).collect();
    assert_eq!(files.len(), 5, "{seen:#?}");
    for blob in &files[..3] {
        assert_eq!(
            blob[0],
            format!("layout/blobs/sha256/{}", blob[2]),
            "{seen:#?}"
        );
    }
    assert_eq!(files[3][0], "layout/index.json", "{seen:#?}");
    assert_eq!(files[4][0], "layout/oci-layout", "{seen:#?}");
    assert!(
        seen[2].contains("no image 'com.example.image-dirs/app:2'"),
        "{seen:#?}"
    );
    assert!(
        seen[4].contains("'com.example.image-dirs/../../etc:1' does not name a directory"),
        "{seen:#?}"
    );
}

#[test]
fn an_unchanged_directory_packs_to_the_same_blobs() {
    let root = image_root();
    let first = compare(root.path(), &["app:1"]).unwrap();
    assert_eq!(first, compare(root.path(), &["app:1"]).unwrap());
}

#[test]
fn a_relative_root_is_refused_at_configure() {
    let err = compare(Path::new("images"), &["app:1"]).unwrap_err();
    assert!(
        err.contains("the root 'images' is not an absolute path"),
        "{err}"
    );
}
