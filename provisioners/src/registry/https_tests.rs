//! A pull over https from an in-process TLS registry whose certificate,
//! for 127.0.0.1, is signed by a CA made here with openssl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde_json::json;

use super::*;

impl Remote {
    /// Trusting only the certificates in a PEM file.
    fn trusting(url: &str, pem: &Path) -> Remote {
        let mut remote = Remote::new(url, DockerConfig::default()).unwrap();
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(pem).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        remote.tls = tls_with_roots(roots);
        remote
    }
}

/// A CA and a leaf for 127.0.0.1 signed by it (webpki refuses a CA
/// certificate as the server's own), or `None` without openssl.
fn certificates(dir: &Path) -> Option<()> {
    if Command::new("openssl").arg("version").output().is_err() {
        let reason = "openssl not found: apt-get install openssl";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{reason}");
        }
        eprintln!("SKIPPED: {reason}");
        return None;
    }
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl {args:?} failed");
    };
    openssl(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=test CA",
    ]);
    openssl(&[
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-subj",
        "/CN=127.0.0.1",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ]);
    Some(())
}

/// Serves `files` (path -> bytes) over https on a port of 127.0.0.1 until
/// the returned runtime is dropped.
fn serve_tls(dir: &Path, files: HashMap<String, Vec<u8>>) -> (tokio::runtime::Runtime, u16) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("cert.pem"))
        .unwrap()
        .collect::<std::result::Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let files = Arc::new(files);
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let files = files.clone();
            tokio::spawn(async move {
                // Clients that refuse the certificate end here.
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request: http::Request<_>| {
                    let found = files.get(request.uri().path()).cloned();
                    async move {
                        let mut response = http::Response::new(Full::new(Bytes::from(
                            found.clone().unwrap_or_default(),
                        )));
                        if found.is_none() {
                            *response.status_mut() = http::StatusCode::NOT_FOUND;
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (runtime, port)
}

#[test]
fn pulls_over_https_trusting_only_known_roots() {
    let certs = tempfile::tempdir().unwrap();
    if certificates(certs.path()).is_none() {
        return;
    }
    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(3);
    layer
        .append_data(&mut header, "hello", &b"tls"[..])
        .unwrap();
    let layer = layer.into_inner().unwrap();
    let layer_digest = Digest::of(&layer);
    let config = serde_json::to_vec(&json!({
        "config": {"Cmd": ["cat", "/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
    }))
    .unwrap();
    let config_digest = Digest::of(&config);
    // Served without a content type: the manifest's own mediaType decides.
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest::DOCKER_MANIFEST,
        "config": {"digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"digest": layer_digest.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let files = HashMap::from([
        ("/v2/app/manifests/1".to_string(), manifest),
        (format!("/v2/app/blobs/{config_digest}"), config),
        (format!("/v2/app/blobs/{layer_digest}"), layer.clone()),
    ]);
    let (_server, port) = serve_tls(certs.path(), files);
    let url = format!("https://127.0.0.1:{port}");
    let image = ImageReference::parse("app:1").unwrap();

    let remote = Remote::trusting(&url, &certs.path().join("ca.pem"));
    assert_eq!(remote.target(&image).scheme, "https");
    let dir = tempfile::tempdir().unwrap();
    let pulled = remote.pull(&image, dir.path(), &|_| false).unwrap();
    assert_eq!(pulled.image.config.cmd, vec!["cat", "/hello"]);
    assert_eq!(pulled.manifest_url, format!("{url}/v2/app/manifests/1"));
    let stored = dir
        .path()
        .join(format!("blobs/sha256/{}", layer_digest.hex()));
    assert_eq!(std::fs::read(stored).unwrap(), layer);

    // The system's roots do not know the test's CA.
    let system = Remote::new(&url, DockerConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = system
        .pull(&image, dir.path(), &|_| false)
        .err()
        .expect("an untrusted certificate must fail the pull");
    assert!(error.to_string().contains("certificate"), "{error}");
}
