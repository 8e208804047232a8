//! Network namespaces that outlive any process: a new namespace is made
//! by a short-lived thread and kept by a bind mount of its
//! `/proc/thread-self/ns/net` onto a file, as `ip netns add` does. The CNI
//! plugins configure it through that file, and the launcher has the
//! executor join it before it runs; it lasts until the file is unmounted.

use std::io;
use std::path::Path;

/// Creates a network namespace held at `path` (a new, empty file).
pub fn create(path: &Path) -> io::Result<()> {
    std::fs::File::create(path)?;
    let target = path.to_path_buf();
    // unshare(CLONE_NEWNET) moves only the calling thread, so a thread of
    // its own makes the namespace and dies with it; the mount keeps it.
    let made = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || -> io::Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(io::Error::from)
        })?
        .join()
        .map_err(|_| io::Error::other("the thread creating the network namespace panicked"))?;
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Releases the namespace held at `path` and removes the file; a file that
/// is gone or holds nothing is not an error.
pub fn remove(path: &Path) -> io::Result<()> {
    match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_namespace_lives_in_its_file_until_removed() {
        if !nix::unistd::geteuid().is_root() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "needs root in CI"
            );
            eprintln!("SKIPPED: network namespaces need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns");
        create(&path).unwrap();
        // The file is now the namespace itself: nsfs, not the host's.
        let held = std::fs::metadata(&path).unwrap();
        let host = std::fs::metadata("/proc/self/ns/net").unwrap();
        assert_eq!(held.dev(), host.dev(), "an nsfs inode");
        assert_ne!(held.ino(), host.ino(), "a namespace of its own");
        remove(&path).unwrap();
        assert!(!path.exists());
        remove(&path).unwrap();
    }
}
