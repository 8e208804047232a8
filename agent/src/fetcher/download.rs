//! Downloads over http: follows a few redirects, gives up on a transfer
//! that sends nothing for the stall timeout, and logs progress of long
//! downloads.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt;

use super::Failure;

/// Redirects followed before giving up (curl's habit is more; a handful
/// covers mirrors and CDNs).
const MAX_REDIRECTS: usize = 5;
/// How often a download in progress is logged.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

pub type Client = hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
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
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(Failure::Unsupported(format!(
                    "redirected to '{url}': https is not supported yet"
                )));
            }
            _ => return Err(Failure::Http(format!("unsupported URL '{url}'"))),
        }
        let request = http::Request::get(uri.clone())
            .body(Empty::new())
            .map_err(|e| Failure::Http(format!("invalid request: {e}")))?;
        let response = tokio::time::timeout(stall, client.request(request))
            .await
            .map_err(|_| Failure::Stalled(mesos_flags::Duration(stall)))?
            .map_err(|e| Failure::Http(describe(&e)))?;
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
    let total = content_length.map_or_else(|| "?".to_string(), |n| n.to_string());
    let started = Instant::now();
    let mut last_report = started;
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
        if last_report.elapsed() >= PROGRESS_INTERVAL {
            last_report = Instant::now();
            tracing::info!(
                uri,
                "downloading: {received} of {total} bytes after {}s",
                started.elapsed().as_secs()
            );
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn redirects_resolve_against_the_sender() {
        let base: http::Uri = "http://h:8/a/b/c.tgz".parse().unwrap();
        assert_eq!(resolve(&base, "http://o/x"), "http://o/x");
        assert_eq!(resolve(&base, "/x/y"), "http://h:8/x/y");
        assert_eq!(resolve(&base, "d.tgz"), "http://h:8/a/b/d.tgz");
    }
}
