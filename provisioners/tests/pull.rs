//! Registry pulls against an in-process fake registry: anonymous, basic
//! auth, bearer tokens, manifest lists, digest checks, and the layer cache
//! saving downloads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/fake_registry.rs"]
mod fake_registry;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use fake_registry::{Auth, DOCKER_MANIFEST, FakeRegistry, OCI_INDEX, TOKEN};
use mesos_provisioners::{DockerConfig, DockerStore, Error, ImageReference, Provisioner, Remote};
use serde_json::json;

fn base_layer() -> ImageLayer {
    ImageLayer::gzipped(
        LayerBuilder::new()
            .dir("etc/")
            .file("etc/os-release", b"ID=fake\n")
            .dir("bin/")
            .file_mode("bin/tool", b"#!tool", 0o755)
            .build(),
    )
}

fn app_layer(text: &[u8]) -> ImageLayer {
    ImageLayer::gzipped(
        LayerBuilder::new()
            .dir("app/")
            .file("app/data", text)
            .build(),
    )
}

fn runtime() -> serde_json::Value {
    json!({"Cmd": ["/bin/tool"], "Env": ["PATH=/bin"], "WorkingDir": "/app"})
}

/// A provisioner over a store pulling from `default_registry`.
fn pulling(world: &World, default_registry: &str, config: DockerConfig) -> Provisioner {
    let remote = Remote::new(default_registry, config).unwrap();
    let store = DockerStore::remote(world.path("store"), remote).unwrap();
    Provisioner::new(world.path("provisioner"), store, "copy").unwrap()
}

fn config_for(registry: &FakeRegistry, user: &str, password: &str) -> DockerConfig {
    let json = json!({"auths": {
        format!("http://{}", registry.host()): {
            "auth": STANDARD.encode(format!("{user}:{password}"))
        }
    }});
    DockerConfig::parse(json.to_string().as_bytes(), "test config").unwrap()
}

fn image(name: &str) -> ImageReference {
    ImageReference::parse(name).unwrap()
}

/// The store holds nothing from a failed pull.
fn assert_store_empty(world: &World) {
    assert_eq!(world.layer_count(), 0, "layers left in the store");
    assert_eq!(world.staging_count(), 0, "staging not cleaned");
    assert_eq!(
        std::fs::read_dir(world.path("store/images"))
            .unwrap()
            .count(),
        0,
        "an image record was written"
    );
}

#[test]
fn anonymous_pull_from_the_default_registry_provisions_a_rootfs() {
    let registry = FakeRegistry::start(Auth::Anonymous);
    registry.push("app", "1.0", &[base_layer(), app_layer(b"v1")], runtime());
    let world = World::new();
    let provisioner = pulling(&world, &registry.url(), DockerConfig::default());

    // A name without a registry goes to the default one, as written.
    let info = provisioner.provision("c1", &image("app:1.0")).unwrap();
    assert_eq!(std::fs::read(info.rootfs.join("app/data")).unwrap(), b"v1");
    assert_eq!(
        std::fs::read(info.rootfs.join("etc/os-release")).unwrap(),
        b"ID=fake\n"
    );
    assert_eq!(info.config.cmd, vec!["/bin/tool"]);
    assert_eq!(info.config.working_dir.as_deref(), Some("/app"));
    assert_eq!(info.layers.len(), 2);
    assert_eq!(registry.count("/v2/app/manifests/1.0"), 1);
    assert_eq!(
        registry.count("/v2/app/blobs/"),
        3,
        "{:?}",
        registry.requests()
    );
    assert_eq!(world.staging_count(), 0);
    // No credentials were invented.
    assert!(registry.requests().iter().all(|r| r.ends_with(" -")));
}

#[test]
fn cached_images_and_layers_are_not_downloaded_again() {
    let registry = FakeRegistry::start(Auth::Anonymous);
    registry.push("app", "1", &[base_layer(), app_layer(b"v1")], runtime());
    registry.push("app", "2", &[base_layer(), app_layer(b"v2")], runtime());
    let base_blob = common::sha256(&base_layer().blob());
    let world = World::new();
    let provisioner = pulling(&world, &registry.url(), DockerConfig::default());

    provisioner.provision("a", &image("app:1")).unwrap();
    let after_first = registry.requests().len();
    // The same image again: served from the store without a request.
    let again = provisioner.provision("b", &image("app:1")).unwrap();
    assert_eq!(std::fs::read(again.rootfs.join("app/data")).unwrap(), b"v1");
    assert_eq!(
        registry.requests().len(),
        after_first,
        "{:?}",
        registry.requests()
    );

    // Another image sharing the base layer: only its own layer comes down.
    let second = provisioner.provision("c", &image("app:2")).unwrap();
    assert_eq!(
        std::fs::read(second.rootfs.join("app/data")).unwrap(),
        b"v2"
    );
    assert_eq!(registry.count(&format!("/blobs/{base_blob}")), 1);
    assert_eq!(registry.count("/manifests/2"), 1);
    assert_eq!(world.layer_count(), 3);
}

#[test]
fn basic_auth_needs_the_credentials_of_the_docker_config() {
    let registry = FakeRegistry::start(Auth::Basic {
        user: "alice".into(),
        password: "pw".into(),
    });
    registry.push("team/app", "latest", &[base_layer()], runtime());
    let name = format!("{}/team/app", registry.host());

    // No credentials: a 401 naming the image and the registry.
    let world = World::new();
    let anonymous = pulling(
        &world,
        "https://registry-1.docker.io",
        DockerConfig::default(),
    );
    let error = anonymous.provision("c", &image(&name)).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::Registry { .. }), "{text}");
    assert!(text.contains(&name), "{text}");
    assert!(
        text.contains(&format!("http://{}", registry.host())),
        "{text}"
    );
    assert!(
        text.contains("401") && text.contains("no credentials"),
        "{text}"
    );
    assert_store_empty(&world);

    // Wrong password: refused, naming the user.
    let world = World::new();
    let wrong = pulling(
        &world,
        "https://registry-1.docker.io",
        config_for(&registry, "alice", "nope"),
    );
    let text = wrong.provision("c", &image(&name)).unwrap_err().to_string();
    assert!(text.contains("401") && text.contains("'alice'"), "{text}");
    assert_store_empty(&world);

    // The right ones, from a config.json file as --docker_config names it.
    let world = World::new();
    let config_path = world.path("config.json");
    std::fs::write(
        &config_path,
        json!({"auths": {registry.host(): {"auth": STANDARD.encode("alice:pw")}}}).to_string(),
    )
    .unwrap();
    let store = DockerStore::from_flags(
        world.path("store"),
        "https://registry-1.docker.io",
        Some(config_path.to_str().unwrap()),
    )
    .unwrap();
    let provisioner = Provisioner::new(world.path("provisioner"), store, "copy").unwrap();
    let info = provisioner.provision("c", &image(&name)).unwrap();
    assert!(info.rootfs.join("bin/tool").is_file());
    let expected = format!("Basic {}", STANDARD.encode("alice:pw"));
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.contains("/blobs/") && r.ends_with(&expected)),
        "{:?}",
        registry.requests()
    );
}

#[test]
fn bearer_token_flow() {
    let registry = FakeRegistry::start(Auth::Bearer {
        user: "bob".into(),
        password: "secret".into(),
    });
    registry.push("app", "1", &[base_layer(), app_layer(b"tok")], runtime());
    let world = World::new();
    let provisioner = pulling(
        &world,
        &registry.url(),
        config_for(&registry, "bob", "secret"),
    );

    let info = provisioner.provision("c", &image("app:1")).unwrap();
    assert_eq!(std::fs::read(info.rootfs.join("app/data")).unwrap(), b"tok");
    let requests = registry.requests();
    let tokens: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("/token"))
        .collect();
    // One token, asked for with the credentials, for pulling this
    // repository; reused for the config and every layer.
    assert_eq!(tokens.len(), 1, "{requests:?}");
    assert!(tokens[0].contains("service=fake-registry"), "{}", tokens[0]);
    assert!(
        tokens[0].contains("scope=repository%3Aapp%3Apull"),
        "{}",
        tokens[0]
    );
    assert!(tokens[0].ends_with(&format!("Basic {}", STANDARD.encode("bob:secret"))));
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.contains("/blobs/") && r.ends_with(&bearer))
            .count(),
        3,
        "{requests:?}"
    );

    // Without credentials the token service refuses, and the error says so.
    let world = World::new();
    let anonymous = pulling(&world, &registry.url(), DockerConfig::default());
    let text = anonymous
        .provision("c", &image("app:1"))
        .unwrap_err()
        .to_string();
    assert!(text.contains("401") && text.contains("/token"), "{text}");
    assert_store_empty(&world);
}

#[test]
fn manifest_list_picks_this_platform() {
    let registry = FakeRegistry::start(Auth::Anonymous);
    let native = registry.image_manifest(&[base_layer(), app_layer(b"native")], runtime());
    let other = registry.image_manifest(&[base_layer(), app_layer(b"other")], runtime());
    let native_digest = common::sha256(&native);
    let other_digest = common::sha256(&other);
    registry.put_manifest(
        "multi",
        native_digest.to_string().as_str(),
        DOCKER_MANIFEST,
        &native,
    );
    registry.put_manifest(
        "multi",
        other_digest.to_string().as_str(),
        DOCKER_MANIFEST,
        &other,
    );
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": DOCKER_MANIFEST, "digest": other_digest.to_string(), "size": other.len(),
             "platform": {"os": "linux", "architecture": "s390x"}},
            {"mediaType": DOCKER_MANIFEST, "digest": other_digest.to_string(), "size": other.len(),
             "platform": {"os": "windows", "architecture": arch}},
            {"mediaType": DOCKER_MANIFEST, "digest": native_digest.to_string(), "size": native.len(),
             "platform": {"os": "linux", "architecture": arch}},
        ],
    }))
    .unwrap();
    registry.put_manifest("multi", "latest", OCI_INDEX, &index);
    let world = World::new();
    let provisioner = pulling(&world, &registry.url(), DockerConfig::default());

    let info = provisioner.provision("c", &image("multi")).unwrap();
    assert_eq!(
        std::fs::read(info.rootfs.join("app/data")).unwrap(),
        b"native"
    );
    assert_eq!(registry.count(&format!("/manifests/{native_digest}")), 1);
    assert_eq!(registry.count(&format!("/manifests/{other_digest}")), 0);

    // A list without this platform: an error listing what there is.
    let only_other = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": other_digest.to_string(),
                       "platform": {"os": "linux", "architecture": "s390x"}}],
    }))
    .unwrap();
    registry.put_manifest("foreign", "latest", OCI_INDEX, &only_other);
    let text = provisioner
        .provision("d", &image("foreign"))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("linux/s390x") && text.contains(&format!("linux/{arch}")),
        "{text}"
    );
}

#[test]
fn pinned_digest_pulls_that_manifest() {
    let registry = FakeRegistry::start(Auth::Anonymous);
    let manifest = registry.push("app", "1", &[base_layer()], runtime());
    let digest = common::sha256(&manifest);
    let world = World::new();
    let provisioner = pulling(&world, &registry.url(), DockerConfig::default());
    let info = provisioner
        .provision("c", &image(&format!("app@{digest}")))
        .unwrap();
    assert!(info.rootfs.join("bin/tool").is_file());
    assert_eq!(registry.count(&format!("/v2/app/manifests/{digest}")), 1);
}

#[test]
fn a_layer_not_matching_its_digest_is_refused_and_nothing_stays() {
    let registry = FakeRegistry::start(Auth::Anonymous);
    let top = app_layer(b"genuine");
    registry.push("app", "1", &[base_layer(), top], runtime());
    // Same length, one byte flipped, under the genuine digest.
    let genuine = app_layer(b"genuine").blob();
    let mut tampered = genuine.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x55;
    registry.put_blob_as(&common::sha256(&genuine), &tampered);
    let world = World::new();
    let provisioner = pulling(&world, &registry.url(), DockerConfig::default());

    let error = provisioner.provision("c", &image("app:1")).unwrap_err();
    assert!(
        matches!(error, Error::DigestMismatch { .. }),
        "expected a digest mismatch, got {error}"
    );
    assert!(error.to_string().contains("layer 2/2"), "{error}");
    assert_store_empty(&world);
    assert!(!world.path("provisioner/containers/c").exists());
}

#[test]
fn a_manifest_not_matching_the_pinned_digest_is_refused() {
    let registry = FakeRegistry::start(Auth::Anonymous);
    let manifest = registry.image_manifest(&[base_layer()], runtime());
    let wrong = common::sha256(b"something else");
    registry.put_manifest("app", &wrong.to_string(), DOCKER_MANIFEST, &manifest);
    let world = World::new();
    let provisioner = pulling(&world, &registry.url(), DockerConfig::default());
    let error = provisioner
        .provision("c", &image(&format!("app@{wrong}")))
        .unwrap_err();
    assert!(matches!(error, Error::DigestMismatch { .. }), "{error}");
    assert_store_empty(&world);
}

#[test]
fn a_manifest_not_matching_its_digest_header_is_refused() {
    let registry = FakeRegistry::start(Auth::Anonymous);
    let genuine = registry.image_manifest(&[base_layer(), app_layer(b"x")], runtime());
    // A manifest altered on the way (one layer dropped), with the digest
    // of the genuine one.
    let mut altered: serde_json::Value = serde_json::from_slice(&genuine).unwrap();
    altered["layers"].as_array_mut().unwrap().pop();
    let altered = serde_json::to_vec(&altered).unwrap();
    registry.put_manifest_as(
        "app",
        "1",
        DOCKER_MANIFEST,
        &altered,
        &common::sha256(&genuine),
    );
    let world = World::new();
    let provisioner = pulling(&world, &registry.url(), DockerConfig::default());
    let error = provisioner.provision("c", &image("app:1")).unwrap_err();
    assert!(matches!(error, Error::DigestMismatch { .. }), "{error}");
    assert_eq!(registry.count("/blobs/"), 0, "{:?}", registry.requests());
    assert_store_empty(&world);
}

#[test]
fn zstd_layers_are_refused_before_downloading() {
    let registry = FakeRegistry::start(Auth::Anonymous);
    let manifest = registry.image_manifest(&[base_layer()], runtime());
    let mut manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    manifest["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd".into();
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    registry.put_manifest(
        "app",
        "1",
        DOCKER_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let world = World::new();
    let provisioner = pulling(&world, &registry.url(), DockerConfig::default());
    let text = provisioner
        .provision("c", &image("app:1"))
        .unwrap_err()
        .to_string();
    assert!(text.contains("zstd"), "{text}");
    assert_eq!(registry.count(&layer_digest), 0);
    assert_store_empty(&world);
}

#[test]
fn unknown_images_and_registries_are_clear_errors() {
    let registry = FakeRegistry::start(Auth::Anonymous);
    let world = World::new();
    let provisioner = pulling(&world, &registry.url(), DockerConfig::default());
    let text = provisioner
        .provision("c", &image("nothere:1"))
        .unwrap_err()
        .to_string();
    assert!(text.contains("nothere:1"), "{text}");
    assert!(
        text.contains("404") && text.contains("MANIFEST_UNKNOWN"),
        "{text}"
    );

    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = provisioner
        .provision("d", &image(&format!("127.0.0.1:{port}/x")))
        .unwrap_err()
        .to_string();
    assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
    assert_store_empty(&world);
}
