//! Downloads over http and https: follows a few redirects, gives up on a
//! transfer that sends nothing for the stall timeout, and logs progress of
//! long downloads. https trusts the system's root certificates (or those
//! in `SSL_CERT_FILE` / `SSL_CERT_DIR`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::AsyncWriteExt;

use super::Failure;

/// Redirects followed before giving up (curl's habit is more; a handful
/// covers mirrors and CDNs).
const MAX_REDIRECTS: usize = 5;
/// How often a download in progress is logged.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>;
type HttpsClient = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

#[derive(Debug)]
pub struct Client {
    http: HttpClient,
    /// Why there is none: no root certificate could be loaded, say.
    https: Result<HttpsClient, String>,
}

impl Client {
    /// Trusting the system's roots. Reads them: blocking.
    pub fn new() -> Self {
        let https = native_roots().and_then(https_client);
        if let Err(e) = &https {
            tracing::warn!("the fetcher cannot fetch https URIs: {e}");
        }
        Self {
            http: LegacyClient::builder(TokioExecutor::new()).build_http(),
            https,
        }
    }

    /// Trusting only the certificates in a PEM file.
    #[cfg(test)]
    fn trusting(pem: &Path) -> Self {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(pem).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        Self {
            http: LegacyClient::builder(TokioExecutor::new()).build_http(),
            https: https_client(roots),
        }
    }

    async fn request(
        &self,
        request: http::Request<Empty<Bytes>>,
    ) -> Result<http::Response<Incoming>, Failure> {
        let result = if request.uri().scheme_str() == Some("https") {
            let client = self
                .https
                .as_ref()
                .map_err(|e| Failure::Unsupported(format!("https is not available: {e}")))?;
            client.request(request).await
        } else {
            self.http.request(request).await
        };
        result.map_err(|e| Failure::Http(describe(&e)))
    }
}

fn native_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(format!(
            "no trusted root certificates found ({})",
            errors.join("; ")
        ));
    }
    Ok(roots)
}

fn https_client(roots: RootCertStore) -> Result<HttpsClient, String> {
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    Ok(LegacyClient::builder(TokioExecutor::new()).build(connector))
}

/// A response whose body is still to be read.
#[derive(Debug)]
pub struct Response {
    pub body: Incoming,
    /// From Content-Length.
    pub content_length: Option<u64>,
}

/// Sends the GET, following redirects; fails on a non-2xx status.
pub async fn open(client: &Client, url: &str, stall: Duration) -> Result<Response, Failure> {
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| Failure::Http(format!("invalid URL '{url}': {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(Failure::Http(format!("unsupported URL '{url}'")));
        }
        let request = http::Request::get(uri.clone())
            .body(Empty::new())
            .map_err(|e| Failure::Http(format!("invalid request: {e}")))?;
        let response = tokio::time::timeout(stall, client.request(request))
            .await
            .map_err(|_| Failure::Stalled(mesos_flags::Duration(stall)))??;
        let status = response.status();
        if status.is_redirection()
            && let Some(location) = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
        {
            let next = resolve(&uri, location);
            tracing::info!(from = %url, to = %next, "following redirect");
            url = next;
            continue;
        }
        if !status.is_success() {
            return Err(Failure::Http(format!("HTTP {status}")));
        }
        let content_length = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        return Ok(Response {
            body: response.into_body(),
            content_length,
        });
    }
    Err(Failure::Http(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// hyper's errors say little at the top level; their sources say why.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A Location header against the URL that sent it.
fn resolve(base: &http::Uri, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = base.path();
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    format!("{scheme}://{authority}{dir}/{location}")
}

/// Writes the body to `to`.
pub async fn save(
    response: Response,
    to: &Path,
    stall: Duration,
    uri: &str,
) -> Result<(), Failure> {
    let Response {
        mut body,
        content_length,
    } = response;
    let mut file = tokio::fs::File::create(to)
        .await
        .map_err(Failure::io(format!("cannot create '{}'", to.display())))?;
    let mut progress = Progress::new(content_length, Instant::now());
    let mut received: u64 = 0;
    loop {
        let frame = match tokio::time::timeout(stall, body.frame()).await {
            Err(_) => return Err(Failure::Stalled(mesos_flags::Duration(stall))),
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|e| Failure::Http(describe(&e)))?,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        file.write_all(&data)
            .await
            .map_err(Failure::io(format!("cannot write '{}'", to.display())))?;
        received += data.len() as u64;
        if let Some(line) = progress.add(data.len() as u64, Instant::now()) {
            tracing::info!(uri, "downloading: {line}");
        }
    }
    file.flush()
        .await
        .map_err(Failure::io(format!("cannot write '{}'", to.display())))?;
    if let Some(expected) = content_length
        && received != expected
    {
        return Err(Failure::Http(format!(
            "received {received} of {expected} bytes"
        )));
    }
    Ok(())
}

/// When and what to log of a download in progress.
struct Progress {
    total: Option<u64>,
    received: u64,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(total: Option<u64>, now: Instant) -> Self {
        Self {
            total,
            received: 0,
            started: now,
            last: now,
        }
    }

    /// Counts `bytes` more; returns the line to log when one is due.
    fn add(&mut self, bytes: u64, now: Instant) -> Option<String> {
        self.received += bytes;
        if now.duration_since(self.last) < PROGRESS_INTERVAL {
            return None;
        }
        self.last = now;
        let elapsed = now.duration_since(self.started).as_secs();
        let received = self.received;
        Some(match self.total {
            Some(total) if total > 0 => format!(
                "{received} of {total} bytes ({}%) after {elapsed}s",
                received.saturating_mul(100) / total
            ),
            _ => format!("{received} bytes after {elapsed}s"),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn progress_is_logged_every_few_seconds() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut progress = Progress::new(Some(200), start);
        assert_eq!(progress.add(10, at(1)), None);
        assert_eq!(
            progress.add(40, at(5)).as_deref(),
            Some("50 of 200 bytes (25%) after 5s")
        );
        assert_eq!(progress.add(50, at(9)), None);
        assert_eq!(
            progress.add(0, at(10)).as_deref(),
            Some("100 of 200 bytes (50%) after 10s")
        );
        let mut unknown = Progress::new(None, start);
        assert_eq!(unknown.add(7, at(6)).as_deref(), Some("7 bytes after 6s"));
    }

    #[test]
    fn redirects_resolve_against_the_sender() {
        let base: http::Uri = "http://h:8/a/b/c.tgz".parse().unwrap();
        assert_eq!(resolve(&base, "http://o/x"), "http://o/x");
        assert_eq!(resolve(&base, "/x/y"), "http://h:8/x/y");
        assert_eq!(resolve(&base, "d.tgz"), "http://h:8/a/b/d.tgz");
    }

    /// A real TLS server (`openssl s_server -WWW`, serving its directory)
    /// with a certificate for 127.0.0.1 made here.
    struct TlsServer {
        child: std::process::Child,
        port: u16,
        dir: tempfile::TempDir,
    }

    impl TlsServer {
        fn start() -> Self {
            let dir = tempfile::tempdir().unwrap();
            // A CA, and a leaf for 127.0.0.1 signed by it (webpki refuses a
            // CA certificate as the server's own).
            let openssl = |args: &[&str]| {
                let status = std::process::Command::new("openssl")
                    .args(args)
                    .current_dir(dir.path())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success(), "openssl {args:?} failed");
            };
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=test CA",
            ]);
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
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
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = std::process::Command::new("openssl")
                .args([
                    "s_server", "-quiet", "-WWW", "-cert", "cert.pem", "-key", "key.pem",
                ])
                .args(["-accept", &format!("127.0.0.1:{port}")])
                .current_dir(dir.path())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "openssl s_server did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
            Self { child, port, dir }
        }
    }

    impl Drop for TlsServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[tokio::test]
    async fn fetches_over_https_trusting_only_known_roots() {
        let server = TlsServer::start();
        std::fs::write(server.dir.path().join("hello.txt"), "over tls").unwrap();
        let url = format!("https://127.0.0.1:{}/hello.txt", server.port);
        let stall = Duration::from_secs(20);

        let trusting = Client::trusting(&server.dir.path().join("ca.pem"));
        let response = open(&trusting, &url, stall).await.unwrap();
        let out = server.dir.path().join("fetched");
        save(response, &out, stall, &url).await.unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"over tls");

        // The system does not know the test's certificate.
        let err = open(&Client::new(), &url, stall).await.unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
    }
}
