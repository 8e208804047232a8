//! The one thread that writes checkpoints. The agent loop hands it jobs
//! and never waits; the thread takes every job queued at once as a batch:
//! it writes every file of the batch, makes them durable with one
//! `syncfs` (rather than one `fsync` per file, which made a burst of 50
//! launches take seconds), then renames the new files into place. A file
//! is therefore replaced whole or not at all. Whoever needs a write on
//! disk before acting (the launch, before its fork) waits for
//! [`Checkpointer::durable`].

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

enum Job {
    /// Replace the file atomically.
    Write { path: PathBuf, bytes: Vec<u8> },
    /// Append to the file (created if missing).
    Append { path: PathBuf, bytes: Vec<u8> },
    /// Point the symlink `link` at `target`, atomically.
    Link { target: PathBuf, link: PathBuf },
    /// Answered once every earlier job is durable.
    Durable(oneshot::Sender<()>),
}

/// Hands checkpoint writes to the writer thread.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    tx: mpsc::Sender<Job>,
}

impl Checkpointer {
    /// Starts the writer thread; `root` is a directory on the file system
    /// the checkpoints live on (for `syncfs`).
    pub fn spawn(root: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let root = File::open(root)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("checkpoint".into())
            .stack_size(256 * 1024)
            .spawn(move || run(&rx, &root))?;
        Ok(Self { tx })
    }

    fn submit(&self, job: Job) {
        if self.tx.send(job).is_err() {
            tracing::error!("the checkpoint writer is gone; state is not being checkpointed");
        }
    }

    pub fn write(&self, path: PathBuf, bytes: Vec<u8>) {
        self.submit(Job::Write { path, bytes });
    }

    pub fn append(&self, path: PathBuf, bytes: Vec<u8>) {
        self.submit(Job::Append { path, bytes });
    }

    pub fn link(&self, target: PathBuf, link: PathBuf) {
        self.submit(Job::Link { target, link });
    }

    /// Resolves once everything submitted so far is on disk.
    pub fn durable(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Durable(tx));
        rx
    }

    /// Blocks until everything submitted so far is on disk.
    pub fn flush_blocking(&self) {
        let _ = self.durable().blocking_recv();
    }
}

/// A file written to its temporary name, renamed once durable.
struct Staged {
    temp: PathBuf,
    path: PathBuf,
}

fn run(rx: &mpsc::Receiver<Job>, root: &File) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let mut staged = Vec::new();
        let mut waiters = Vec::new();
        let mut dirty = false;
        for job in batch {
            let result = match job {
                // A second write of one file in a batch overwrites the same
                // temp file: it is renamed once, with the last content.
                Job::Write { path, bytes } => stage(&path, &bytes)
                    .map(|temp| {
                        if !staged.iter().any(|s: &Staged| s.path == path) {
                            staged.push(Staged {
                                temp,
                                path: path.clone(),
                            })
                        }
                    })
                    .map_err(|e| (path, e)),
                Job::Append { path, bytes } => append(&path, &bytes).map_err(|e| (path, e)),
                Job::Link { target, link } => replace_link(&target, &link).map_err(|e| (link, e)),
                Job::Durable(done) => {
                    waiters.push(done);
                    Ok(())
                }
            };
            dirty = true;
            if let Err((path, e)) = result {
                tracing::error!(path = %path.display(), "checkpoint failed: {e}");
            }
        }
        if dirty && let Err(e) = nix::unistd::syncfs(root) {
            tracing::error!("syncing checkpoints failed: {e}");
        }
        commit(&mut staged);
        for done in waiters {
            let _ = done.send(());
        }
    }
}

/// Renames staged files into place, in order.
fn commit(staged: &mut Vec<Staged>) {
    for Staged { temp, path } in staged.drain(..) {
        if let Err(e) = std::fs::rename(&temp, &path) {
            tracing::error!(path = %path.display(), "checkpoint failed: {e}");
            let _ = std::fs::remove_file(&temp);
        }
    }
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(".{name}.tmp"))
}

fn stage(path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    create_parent(path)?;
    let temp = temp_name(path);
    File::create(&temp)?.write_all(bytes)?;
    Ok(temp)
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent),
        None => Ok(()),
    }
}

/// Temp file in the same directory, fsync (if `sync`), rename: a reader
/// sees the old content or the new, never a mix.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    create_parent(path)?;
    let temp = temp_name(path);
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn append(path: &Path, bytes: &[u8]) -> io::Result<()> {
    create_parent(path)?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(bytes)
}

fn replace_link(target: &Path, link: &Path) -> io::Result<()> {
    create_parent(link)?;
    let temp = link.with_file_name(".latest.tmp");
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(target, &temp)?;
    std::fs::rename(&temp, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_appends_and_links_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Checkpointer::spawn(tmp.path()).unwrap();
        let info = tmp.path().join("a/b/x.info");
        c.write(info.clone(), b"one".to_vec());
        c.write(info.clone(), b"two".to_vec());
        let log = tmp.path().join("a/t/task.updates");
        c.append(log.clone(), b"1".to_vec());
        c.append(log.clone(), b"2".to_vec());
        c.link(PathBuf::from("b"), tmp.path().join("a/latest"));
        c.flush_blocking();
        assert_eq!(std::fs::read(&info).unwrap(), b"two");
        assert_eq!(std::fs::read(&log).unwrap(), b"12");
        assert_eq!(
            std::fs::read_link(tmp.path().join("a/latest")).unwrap(),
            PathBuf::from("b")
        );
        let names: Vec<_> = std::fs::read_dir(tmp.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("x.info")],
            "no temp file left"
        );
    }
}
