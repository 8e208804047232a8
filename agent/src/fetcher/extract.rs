//! Unpacking fetched archives with the system's `tar`, `unzip` and `gzip`,
//! as Mesos's fetcher does.

use std::path::Path;
use std::process::Stdio;

use super::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// Any tarball; GNU tar recognises the compression itself.
    Tar,
    Zip,
    /// A single gzip-compressed file.
    Gzip,
}

impl Archive {
    /// The archive type of a file, by its name as Mesos decides it.
    pub fn of(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        const TARS: [&str; 7] = [
            ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz",
        ];
        if TARS.iter().any(|suffix| name.ends_with(suffix)) {
            Some(Self::Tar)
        } else if name.ends_with(".zip") {
            Some(Self::Zip)
        } else if name.ends_with(".gz") {
            Some(Self::Gzip)
        } else {
            None
        }
    }
}

/// Unpacks `file` into `into`. A gzipped file becomes the same name
/// without `.gz`.
pub async fn extract(archive: Archive, file: &Path, into: &Path) -> Result<(), Failure> {
    let mut command = match archive {
        Archive::Tar => {
            let mut c = tokio::process::Command::new("tar");
            // The files belong to the fetching user, not to the uids
            // recorded in the archive.
            c.arg("--no-same-owner")
                .arg("-C")
                .arg(into)
                .arg("-xf")
                .arg(file);
            c
        }
        Archive::Zip => {
            let mut c = tokio::process::Command::new("unzip");
            c.arg("-o").arg("-q").arg(file).arg("-d").arg(into);
            c
        }
        Archive::Gzip => {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let stem = name.get(..name.len().saturating_sub(3)).unwrap_or_default();
            if stem.is_empty() {
                return Err(Failure::Extract(format!(
                    "'{}' has no name left once '.gz' is removed",
                    file.display()
                )));
            }
            let output = tokio::fs::File::create(into.join(stem))
                .await
                .map_err(|e| Failure::Extract(format!("cannot create '{stem}': {e}")))?
                .into_std()
                .await;
            let mut c = tokio::process::Command::new("gzip");
            c.arg("-dc").arg(file).stdout(output);
            c
        }
    };
    if archive != Archive::Gzip {
        command.stdout(Stdio::null());
    }
    let program = match archive {
        Archive::Tar => "tar",
        Archive::Zip => "unzip",
        Archive::Gzip => "gzip",
    };
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Not `output()`: that would capture gzip's stdout too.
        .spawn()
        .map_err(|e| Failure::Extract(format!("cannot run {program}: {e}")))?
        .wait_with_output()
        .await
        .map_err(|e| Failure::Extract(format!("{program} failed: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(Failure::Extract(format!(
        "{program} failed ({}): {}",
        output.status,
        stderr.trim()
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn archive_types_by_name() {
        for tar in [
            "a.tar",
            "a.tar.gz",
            "a.TGZ",
            "a.tar.bz2",
            "a.tbz2",
            "a.tar.xz",
            "a.txz",
        ] {
            assert_eq!(Archive::of(tar), Some(Archive::Tar), "{tar}");
        }
        assert_eq!(Archive::of("a.zip"), Some(Archive::Zip));
        assert_eq!(Archive::of("a.gz"), Some(Archive::Gzip));
        for plain in ["a", "a.sh", "a.tar.gz.sig", "tgz"] {
            assert_eq!(Archive::of(plain), None, "{plain}");
        }
    }

    #[tokio::test]
    async fn extracts_a_tarball_and_reports_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), "hi").unwrap();
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .args(["-czf", "a.tgz", "d"])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let out = tempfile::tempdir().unwrap();
        extract(Archive::Tar, &dir.path().join("a.tgz"), out.path())
            .await
            .unwrap();
        assert_eq!(std::fs::read(out.path().join("d/f")).unwrap(), b"hi");

        std::fs::write(dir.path().join("bad.tgz"), "not a tarball").unwrap();
        let err = extract(Archive::Tar, &dir.path().join("bad.tgz"), out.path())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("tar failed"), "{err}");
    }

    #[tokio::test]
    async fn gunzips_a_plain_gz() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.txt"), "data").unwrap();
        let status = std::process::Command::new("gzip")
            .arg(dir.path().join("f.txt"))
            .status()
            .unwrap();
        assert!(status.success());
        extract(Archive::Gzip, &dir.path().join("f.txt.gz"), dir.path())
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("f.txt")).unwrap(), b"data");
    }

    #[tokio::test]
    async fn unzips_a_zip() {
        let dir = tempfile::tempdir().unwrap();
        // No `zip` program is needed to make one: Python's zipfile will do.
        let status = std::process::Command::new("python3")
            .args([
                "-c",
                "import zipfile; z = zipfile.ZipFile('a.zip', 'w'); z.writestr('d/f', 'zipped'); z.close()",
            ])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let out = tempfile::tempdir().unwrap();
        extract(Archive::Zip, &dir.path().join("a.zip"), out.path())
            .await
            .unwrap();
        assert_eq!(std::fs::read(out.path().join("d/f")).unwrap(), b"zipped");
    }
}
