//! An in-process Docker registry (HTTP API v2, the GET side) for the pull
//! tests: serves manifests and blobs from memory, optionally behind basic
//! auth or a bearer token service, and records every request so tests can
//! tell what was downloaded.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mesos_provisioners::Digest;
use serde_json::{Value, json};

use super::{ImageLayer, image_config};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const TOKEN: &str = "token-for-tests";

#[derive(Clone, Debug)]
pub enum Auth {
    Anonymous,
    Basic {
        user: String,
        password: String,
    },
    /// `/v2/` wants `Bearer TOKEN`, handed out by `/token` to these
    /// credentials.
    Bearer {
        user: String,
        password: String,
    },
}

#[derive(Default)]
struct Content {
    /// `(repository, tag or digest)` -> (content type, bytes, the digest
    /// sent as `Docker-Content-Digest`).
    manifests: HashMap<(String, String), (String, Vec<u8>, String)>,
    /// Digest -> bytes served for it (tests may make them lie).
    blobs: HashMap<String, Vec<u8>>,
}

pub struct FakeRegistry {
    pub addr: SocketAddr,
    content: Arc<Mutex<Content>>,
    requests: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeRegistry {
    pub fn start(auth: Auth) -> FakeRegistry {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let content = Arc::new(Mutex::new(Content::default()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = (content.clone(), requests.clone(), auth, addr);
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, request)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeRegistry {
            addr,
            content,
            requests,
            _runtime: runtime,
        }
    }

    /// `host:port`, to prefix image names with.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, as `<path and query> <authorization>`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.contains(needle))
            .count()
    }

    pub fn put_blob(&self, data: &[u8]) -> Digest {
        let digest = Digest::of(data);
        self.content
            .lock()
            .unwrap()
            .blobs
            .insert(digest.to_string(), data.to_vec());
        digest
    }

    /// Serves `data` under `digest`, whatever its real digest.
    pub fn put_blob_as(&self, digest: &Digest, data: &[u8]) {
        self.content
            .lock()
            .unwrap()
            .blobs
            .insert(digest.to_string(), data.to_vec());
    }

    pub fn put_manifest(&self, repository: &str, reference: &str, content_type: &str, data: &[u8]) {
        self.put_manifest_as(repository, reference, content_type, data, &Digest::of(data));
    }

    /// Serves `data` with `digest` in the `Docker-Content-Digest` header,
    /// whatever its real digest.
    pub fn put_manifest_as(
        &self,
        repository: &str,
        reference: &str,
        content_type: &str,
        data: &[u8],
        digest: &Digest,
    ) {
        let mut content = self.content.lock().unwrap();
        let entry = (content_type.to_string(), data.to_vec(), digest.to_string());
        content.manifests.insert(
            (repository.to_string(), Digest::of(data).to_string()),
            entry.clone(),
        );
        content
            .manifests
            .insert((repository.to_string(), reference.to_string()), entry);
    }

    /// Pushes an image (config, layers, schema 2 manifest) as
    /// `repository:tag`; returns the manifest's bytes.
    pub fn push(
        &self,
        repository: &str,
        tag: &str,
        layers: &[ImageLayer],
        runtime: Value,
    ) -> Vec<u8> {
        let manifest = self.image_manifest(layers, runtime);
        self.put_manifest(repository, tag, DOCKER_MANIFEST, &manifest);
        manifest
    }

    /// Stores the config and layer blobs; returns the manifest naming them
    /// (not stored under any tag).
    pub fn image_manifest(&self, layers: &[ImageLayer], runtime: Value) -> Vec<u8> {
        let config = serde_json::to_vec(&image_config(layers, runtime)).unwrap();
        let config_digest = self.put_blob(&config);
        let layer_descriptors: Vec<Value> = layers
            .iter()
            .map(|layer| {
                let blob = layer.blob();
                let digest = self.put_blob(&blob);
                json!({
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": digest.to_string(),
                    "size": blob.len(),
                })
            })
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": layer_descriptors,
        }))
        .unwrap()
    }
}

type State = (
    Arc<Mutex<Content>>,
    Arc<Mutex<Vec<String>>>,
    Auth,
    SocketAddr,
);

fn handle(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (content, requests, auth, addr) = state;
    let path = request.uri().path().to_string();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    requests
        .lock()
        .unwrap()
        .push(format!("{target} {authorization}"));

    let basic = |user: &str, password: &str| {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    };
    if path == "/token" {
        return match auth {
            Auth::Bearer { user, password } if authorization == basic(user, password) => {
                json_response(StatusCode::OK, &json!({"token": TOKEN}))
            }
            _ => registry_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "bad token credentials",
            ),
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return registry_error(StatusCode::NOT_FOUND, "NOT_FOUND", "not a registry path");
    };
    let (repository, kind, reference) = match rest.rsplit_once("/manifests/") {
        Some((repository, reference)) => (repository, "manifest", reference),
        None => match rest.rsplit_once("/blobs/") {
            Some((repository, digest)) => (repository, "blob", digest),
            None => return registry_error(StatusCode::NOT_FOUND, "NOT_FOUND", "unknown path"),
        },
    };
    match auth {
        Auth::Anonymous => {}
        Auth::Basic { user, password } if authorization != basic(user, password) => {
            let mut response = registry_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            response.headers_mut().insert(
                "www-authenticate",
                "Basic realm=\"fake-registry\"".parse().unwrap(),
            );
            return response;
        }
        Auth::Bearer { .. } if authorization != format!("Bearer {TOKEN}") => {
            let mut response = registry_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            let challenge = format!(
                "Bearer realm=\"http://{addr}/token\",service=\"fake-registry\",scope=\"repository:{repository}:pull\""
            );
            response
                .headers_mut()
                .insert("www-authenticate", challenge.parse().unwrap());
            return response;
        }
        _ => {}
    }
    let content = content.lock().unwrap();
    if kind == "manifest" {
        match content
            .manifests
            .get(&(repository.to_string(), reference.to_string()))
        {
            Some((content_type, data, digest)) => {
                let mut response = Response::new(Full::new(Bytes::from(data.clone())));
                response
                    .headers_mut()
                    .insert("content-type", content_type.parse().unwrap());
                response
                    .headers_mut()
                    .insert("docker-content-digest", digest.parse().unwrap());
                response
            }
            None => registry_error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            ),
        }
    } else {
        match content.blobs.get(reference) {
            Some(data) => Response::new(Full::new(Bytes::from(data.clone()))),
            None => registry_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown"),
        }
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(serde_json::to_vec(value).unwrap())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn registry_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        &json!({"errors": [{"code": code, "message": message}]}),
    )
}
