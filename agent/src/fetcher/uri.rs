//! What a `CommandInfo.URI` names: where the bytes come from and where in
//! the sandbox they go. The URI comes from a framework: nothing here may
//! let it write outside the sandbox.

use std::path::{Component, Path, PathBuf};

use super::Failure;

/// Where a URI's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An absolute path, given as is or as a `file://` URI.
    Local(PathBuf),
    /// An `http://` or `https://` URL.
    Http(String),
}

impl Source {
    pub fn parse(uri: &str) -> Result<Self, Failure> {
        if uri.starts_with('/') {
            return Ok(Self::Local(PathBuf::from(uri)));
        }
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(Failure::Unsupported(
                "expected an absolute path or a file://, http:// or https:// URI".into(),
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                // `file:///a/b` or `file://localhost/a/b`.
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(Failure::Unsupported(
                        "a file:// URI must name an absolute path on this host".into(),
                    ));
                }
                Ok(Self::Local(PathBuf::from(path)))
            }
            "http" | "https" => Ok(Self::Http(uri.to_string())),
            other => Err(Failure::Unsupported(format!(
                "the URI scheme '{other}' is not supported"
            ))),
        }
    }
}

/// The default name of a fetched file: the last segment of the URI's path
/// (without a query or fragment).
pub fn base_name(uri: &str) -> Option<String> {
    let without_scheme = match uri.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, path)| path).unwrap_or(""),
        None => uri,
    };
    let path = without_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or(without_scheme);
    let name = path.rsplit('/').next().unwrap_or(path);
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

/// Where in `sandbox` the URI's file goes: `output_file` (a relative path
/// that stays inside the sandbox) or the URI's base name.
pub fn target(sandbox: &Path, uri: &str, output_file: Option<&str>) -> Result<PathBuf, Failure> {
    let relative =
        match output_file {
            Some(output) => {
                let path = Path::new(output);
                let escapes = path.components().any(|c| {
                    matches!(
                        c,
                        Component::ParentDir | Component::RootDir | Component::Prefix(_)
                    )
                });
                if output.is_empty() || escapes || output.ends_with('/') {
                    return Err(Failure::OutputFile(format!(
                        "output_file '{output}' must be a relative file path inside the sandbox \
                     (no leading '/', no '..')"
                    )));
                }
                path.to_path_buf()
            }
            None => PathBuf::from(base_name(uri).ok_or_else(|| {
                Failure::OutputFile("the URI names no file; set output_file".into())
            })?),
        };
    Ok(sandbox.join(relative))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn names_come_from_the_last_path_segment() {
        assert_eq!(base_name("/tmp/a/b.tgz").as_deref(), Some("b.tgz"));
        assert_eq!(base_name("file:///tmp/x").as_deref(), Some("x"));
        assert_eq!(
            base_name("http://h:80/d/run.sh?v=1#top").as_deref(),
            Some("run.sh")
        );
        assert_eq!(base_name("http://h:80"), None);
        assert_eq!(base_name("http://h/dir/"), None);
        assert_eq!(base_name("/tmp/.."), None);
    }

    #[test]
    fn sources_by_scheme() {
        assert_eq!(Source::parse("/a/b").unwrap(), Source::Local("/a/b".into()));
        assert_eq!(
            Source::parse("file:///a/b").unwrap(),
            Source::Local("/a/b".into())
        );
        assert_eq!(
            Source::parse("file://localhost/a").unwrap(),
            Source::Local("/a".into())
        );
        for url in ["HTTP://h/x", "https://h/x"] {
            assert!(
                matches!(Source::parse(url).unwrap(), Source::Http(_)),
                "{url}"
            );
        }
        for bad in ["relative/path", "file://other/a", "ftp://h/x", "hdfs://x/y"] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn output_files_stay_inside_the_sandbox() {
        let sandbox = Path::new("/s");
        assert_eq!(
            target(sandbox, "/x/a.tgz", None).unwrap(),
            PathBuf::from("/s/a.tgz")
        );
        assert_eq!(
            target(sandbox, "/x/a.tgz", Some("sub/b.tgz")).unwrap(),
            PathBuf::from("/s/sub/b.tgz")
        );
        for bad in ["/etc/passwd", "../x", "a/../../x", "", "dir/"] {
            let err = target(sandbox, "/x/a", Some(bad)).unwrap_err();
            assert!(err.to_string().contains("output_file"), "{bad}: {err}");
        }
        assert!(target(sandbox, "http://h/", None).is_err());
    }
}
