//! One registry conversation: GETs against `/v2/...` that answer auth
//! challenges (basic, or a bearer token fetched from the challenge's
//! realm) once, follow redirects (blob stores often live elsewhere), and
//! read bodies within a bound or stream them to disk while hashing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use http::{HeaderValue, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::auth::{Challenge, Credentials, parse_challenge};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;
/// A request or a transfer that sends nothing for this long is given up.
const STALL: Duration = Duration::from_secs(60);
/// How often a download in progress is logged.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// Token responses and error bodies are small documents.
const MAX_TOKEN: u64 = 1 << 20;
const MAX_ERROR_BODY: u64 = 64 << 10;

type HttpClient = LegacyClient<HttpConnector, Empty<Bytes>>;
type HttpsClient = LegacyClient<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Where and as whom: `scheme://authority`, the repository, and the
/// image name for messages.
pub struct Session {
    http: HttpClient,
    https: std::result::Result<HttpsClient, String>,
    base: String,
    registry: String,
    image: String,
    repository: String,
    credentials: Option<Credentials>,
    /// Once a challenge was answered, sent with every request to the
    /// registry (never to redirect targets on other hosts).
    authorization: Option<HeaderValue>,
}

/// A successful response whose body is still to be read.
pub struct Response {
    pub body: Incoming,
    pub content_length: Option<u64>,
    pub content_type: Option<String>,
    pub digest_header: Option<String>,
}

impl Session {
    /// Must be created inside the runtime that will drive it: the clients
    /// spawn their connection tasks there.
    pub fn new(
        scheme: &str,
        registry: &str,
        repository: &str,
        image: &str,
        credentials: Option<Credentials>,
        tls: &std::result::Result<Arc<ClientConfig>, String>,
    ) -> Session {
        let https = tls.clone().map(|config| {
            let connector = HttpsConnectorBuilder::new()
                .with_tls_config((*config).clone())
                .https_only()
                .enable_http1()
                .build();
            LegacyClient::builder(TokioExecutor::new()).build(connector)
        });
        Session {
            http: LegacyClient::builder(TokioExecutor::new()).build_http(),
            https,
            base: format!("{scheme}://{registry}"),
            registry: registry.to_string(),
            image: image.to_string(),
            repository: repository.to_string(),
            credentials,
            authorization: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An error about this pull.
    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::Registry {
            image: self.image.clone(),
            registry: self.base.clone(),
            reason: reason.into(),
        }
    }

    /// GETs `path` (`/v2/...`), answering one auth challenge and following
    /// redirects; any final status but 2xx is an error naming it.
    pub async fn get(&mut self, path: &str, accept: Option<&str>) -> Result<Response> {
        let mut url = self.url(path);
        let mut challenged = false;
        let mut redirects = 0;
        loop {
            let uri: Uri = url
                .parse()
                .map_err(|e| self.error(format!("invalid URL '{url}': {e}")))?;
            let to_registry = uri.authority().map(|a| a.as_str()) == Some(self.registry.as_str());
            let authorization = if to_registry {
                self.authorization.clone()
            } else {
                None
            };
            let response = self.send(&uri, accept, authorization).await?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && to_registry && !challenged {
                challenged = true;
                let challenge = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                self.answer(challenge.as_deref()).await?;
                continue;
            }
            if status.is_redirection()
                && let Some(location) = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
            {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(self.error(format!(
                        "more than {MAX_REDIRECTS} redirects from {}",
                        self.url(path)
                    )));
                }
                url = resolve(&uri, location);
                tracing::debug!(image = %self.image, to = %url, "following redirect");
                continue;
            }
            if !status.is_success() {
                let detail = error_detail(response.into_body()).await;
                return Err(self.status_error(status, &url, &detail));
            }
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_string)
            };
            let content_length = header(CONTENT_LENGTH).and_then(|v| v.trim().parse().ok());
            let content_type = header(CONTENT_TYPE);
            let digest_header = header(http::HeaderName::from_static("docker-content-digest"));
            return Ok(Response {
                body: response.into_body(),
                content_length,
                content_type,
                digest_header,
            });
        }
    }

    fn status_error(&self, status: StatusCode, url: &str, detail: &str) -> Error {
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        let reason = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => match &self.credentials {
                Some(c) => format!(
                    "access denied (HTTP {status}) at {url} for user '{}'{detail}",
                    c.username
                ),
                None => format!(
                    "access denied (HTTP {status}) at {url}; the docker config has no credentials for {}{detail}",
                    self.registry
                ),
            },
            StatusCode::NOT_FOUND => format!("not found (HTTP {status}) at {url}{detail}"),
            _ => format!("HTTP {status} from {url}{detail}"),
        };
        self.error(reason)
    }

    async fn send(
        &self,
        uri: &Uri,
        accept: Option<&str>,
        authorization: Option<HeaderValue>,
    ) -> Result<http::Response<Incoming>> {
        let mut request = http::Request::get(uri.clone());
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| self.error(format!("invalid request for {uri}: {e}")))?;
        let sent = async {
            if uri.scheme_str() == Some("https") {
                let client = self
                    .https
                    .as_ref()
                    .map_err(|e| self.error(format!("https is not available: {e}")))?;
                client
                    .request(request)
                    .await
                    .map_err(|e| self.error(format!("GET {uri}: {}", describe(&e))))
            } else {
                self.http
                    .request(request)
                    .await
                    .map_err(|e| self.error(format!("GET {uri}: {}", describe(&e))))
            }
        };
        tokio::time::timeout(STALL, sent)
            .await
            .map_err(|_| self.error(format!("GET {uri}: no response in {}s", STALL.as_secs())))?
    }

    /// Sets the authorization a challenge asks for.
    async fn answer(&mut self, challenge: Option<&str>) -> Result<()> {
        match challenge.and_then(parse_challenge) {
            Some(Challenge::Basic) => {
                let Some(credentials) = &self.credentials else {
                    return Err(self.error(format!(
                        "the registry asks for a password (HTTP 401) and the docker config has no credentials for {}",
                        self.registry
                    )));
                };
                self.authorization = Some(header_value(&credentials.basic_header(), self)?);
                Ok(())
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let token = self.token(&realm, service.as_deref(), &scope).await?;
                self.authorization = Some(header_value(&format!("Bearer {token}"), self)?);
                Ok(())
            }
            None => Err(self.error(format!(
                "HTTP 401 with an authentication challenge this client cannot answer: {}",
                challenge.unwrap_or("(no WWW-Authenticate header)")
            ))),
        }
    }

    /// A bearer token from the realm, asked for with the credentials if
    /// any (anonymous tokens serve public images).
    async fn token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let mut query = format!("scope={}", encode_query(scope));
        if let Some(service) = service {
            query = format!("service={}&{query}", encode_query(service));
        }
        let separator = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{separator}{query}");
        let uri: Uri = url
            .parse()
            .map_err(|e| self.error(format!("invalid token realm '{realm}': {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(self.error(format!("unsupported token realm '{realm}'")));
        }
        let authorization = match &self.credentials {
            Some(c) => Some(header_value(&c.basic_header(), self)?),
            None => None,
        };
        tracing::debug!(image = %self.image, realm, scope, "fetching a registry token");
        let response = self.send(&uri, None, authorization).await?;
        let status = response.status();
        if !status.is_success() {
            let detail = error_detail(response.into_body()).await;
            return Err(self.status_error(status, realm, &detail));
        }
        let bytes = read_limited(response.into_body(), MAX_TOKEN)
            .await
            .map_err(|e| self.error(format!("token from {realm}: {e}")))?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.error(format!("token from {realm}: {e}")))?;
        value
            .get("token")
            .or_else(|| value.get("access_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| self.error(format!("the token response from {realm} holds no token")))
    }

    /// The whole body, refused beyond `limit` bytes.
    pub async fn read(&self, response: Response, limit: u64, what: &str) -> Result<Vec<u8>> {
        if let Some(length) = response.content_length
            && length > limit
        {
            return Err(self.error(format!(
                "{what} is {length} bytes, more than the {limit} allowed"
            )));
        }
        read_limited(response.body, limit)
            .await
            .map_err(|e| self.error(format!("{what}: {e}")))
    }

    /// Streams a blob into `to`, hashing it on the way; the file is left
    /// only if the bytes match `expected` (the caller renames it into
    /// place). At most `size` bytes when the manifest gives one.
    pub async fn download(
        &self,
        response: Response,
        to: &Path,
        expected: &Digest,
        size: Option<u64>,
        label: &str,
    ) -> Result<u64> {
        use std::io::Write as _;
        let total = size.or(response.content_length);
        if let (Some(size), Some(length)) = (size, response.content_length)
            && size != length
        {
            return Err(self.error(format!(
                "{label}: the manifest says {size} bytes, the registry sends {length}"
            )));
        }
        let result = async {
            let file = std::fs::File::create(to).map_err(|e| Error::io(to, e))?;
            let mut file = std::io::BufWriter::new(file);
            let mut hasher = Sha256::new();
            let mut received: u64 = 0;
            let mut body = response.body;
            let started = Instant::now();
            let mut logged = started;
            loop {
                let frame = match tokio::time::timeout(STALL, body.frame()).await {
                    Err(_) => {
                        return Err(self.error(format!(
                            "{label}: nothing received for {}s",
                            STALL.as_secs()
                        )));
                    }
                    Ok(None) => break,
                    Ok(Some(frame)) => {
                        frame.map_err(|e| self.error(format!("{label}: {}", describe(&e))))?
                    }
                };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                received += data.len() as u64;
                if let Some(total) = total
                    && received > total
                {
                    return Err(
                        self.error(format!("{label}: more than the {total} bytes announced"))
                    );
                }
                hasher.update(&data);
                file.write_all(&data).map_err(|e| Error::io(to, e))?;
                if logged.elapsed() >= PROGRESS_INTERVAL {
                    logged = Instant::now();
                    tracing::info!(image = %self.image, "{label}: {}", progress(received, total));
                }
            }
            file.into_inner()
                .map_err(|e| Error::io(to, e.into_error()))?
                .sync_all()
                .map_err(|e| Error::io(to, e))?;
            if let Some(total) = total
                && received != total
            {
                return Err(self.error(format!("{label}: received {received} of {total} bytes")));
            }
            let actual = Digest::from_hex(&format!("{:x}", hasher.finalize()))
                .ok_or_else(|| self.error("sha256 produced an invalid digest"))?;
            expected.verify(
                &actual,
                format!("{label} of {} from {}", self.image, self.base),
            )?;
            tracing::info!(
                image = %self.image,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "{label}: {} done",
                progress(received, total)
            );
            Ok(received)
        }
        .await;
        if result.is_err() {
            // Unverified bytes never stay on disk.
            let _ = std::fs::remove_file(to);
        }
        result
    }
}

fn header_value(text: &str, session: &Session) -> Result<HeaderValue> {
    HeaderValue::from_str(text)
        .map_err(|_| session.error("credentials or token hold characters not allowed in a header"))
}

fn progress(received: u64, total: Option<u64>) -> String {
    match total {
        Some(total) if total > 0 => format!(
            "{received} / {total} bytes ({}%)",
            received.saturating_mul(100) / total
        ),
        _ => format!("{received} bytes"),
    }
}

async fn read_limited(mut body: Incoming, limit: u64) -> std::result::Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    loop {
        let frame = match tokio::time::timeout(STALL, body.frame()).await {
            Err(_) => return Err(format!("nothing received for {}s", STALL.as_secs())),
            Ok(None) => return Ok(bytes),
            Ok(Some(frame)) => frame.map_err(|e| describe(&e))?,
        };
        if let Ok(data) = frame.into_data() {
            if bytes.len() as u64 + data.len() as u64 > limit {
                return Err(format!("more than the {limit} bytes allowed"));
            }
            bytes.extend_from_slice(&data);
        }
    }
}

/// The registry's own words from an error body
/// (`{"errors":[{"code":...,"message":...}]}`), else nothing.
async fn error_detail(body: Incoming) -> String {
    let Ok(bytes) = read_limited(body, MAX_ERROR_BODY).await else {
        return String::new();
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return String::new();
    };
    value
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(Value::as_str).unwrap_or("error");
                    match e.get("message").and_then(Value::as_str) {
                        Some(message) => format!("{code} ({message})"),
                        None => code.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
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
fn resolve(base: &Uri, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
    format!("{scheme}://{authority}{dir}/{location}")
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn encodes_scopes() {
        assert_eq!(
            encode_query("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn resolves_locations() {
        let base: Uri = "http://h:1/v2/a/blobs/x".parse().unwrap();
        assert_eq!(resolve(&base, "/y"), "http://h:1/y");
        assert_eq!(resolve(&base, "z"), "http://h:1/v2/a/blobs/z");
        assert_eq!(resolve(&base, "https://cdn/q?s=1"), "https://cdn/q?s=1");
    }

    #[test]
    fn progress_lines() {
        assert_eq!(progress(50, Some(200)), "50 / 200 bytes (25%)");
        assert_eq!(progress(7, None), "7 bytes");
    }
}
