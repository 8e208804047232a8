//! The fetcher: puts a container's `CommandInfo.URI`s into its sandbox
//! before the executor starts, one after the other, downloading over http(s)
//! or copying local files, then making them executable or unpacking them.
//! URIs marked `cache` go through a cache shared by all containers,
//! bounded by `--fetcher_cache_size` and emptied of its least recently used
//! files first.

mod cache;
mod download;
mod extract;
mod uri;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mesos_proto::v1::command_info::Uri;

use cache::{CacheIndex, Key, Lookup};
use extract::Archive;
use uri::Source;

/// Why one URI could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    OutputFile(String),
    #[error("{0}")]
    Http(String),
    #[error("no data for {0} (--fetcher_stall_timeout)")]
    Stalled(mesos_flags::Duration),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Extract(String),
    #[error("{0}")]
    User(String),
}

impl Failure {
    fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

/// A failed fetch (the task's status message).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("Failed to fetch '{uri}': {failure}")]
    Uri {
        uri: String,
        #[source]
        failure: Failure,
    },
    #[error("Failed to give the fetched files to their user: {0}")]
    Owner(#[source] Failure),
}

/// `--fetcher_*` flags.
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    pub cache_dir: PathBuf,
    /// Bytes.
    pub cache_size: u64,
    pub stall_timeout: Duration,
}

/// Shared by all launches (cheap to clone).
#[derive(Debug, Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: FetcherConfig,
    index: Mutex<CacheIndex>,
    client: download::Client,
    /// Names cache files uniquely.
    next_file: AtomicU64,
}

impl Fetcher {
    /// Loads the system's root certificates: blocking.
    pub fn new(config: FetcherConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                index: Mutex::new(CacheIndex::new(config.cache_size)),
                client: download::Client::new(),
                next_file: AtomicU64::new(1),
                config,
            }),
        }
    }

    /// Empties the cache directory: entries do not outlive the agent (as
    /// in Mesos). Blocking.
    pub fn clear_cache_dir(&self) -> io::Result<()> {
        let dir = &self.inner.config.cache_dir;
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(dir)
    }

    /// Fetches `uris` into `sandbox`, in order, stopping at the first
    /// failure. What is fetched ends up owned by `user` when given.
    pub async fn fetch_all(
        &self,
        uris: &[Uri],
        sandbox: &Path,
        user: Option<&str>,
    ) -> Result<(), FetchError> {
        if uris.is_empty() {
            return Ok(());
        }
        let owner = match user {
            Some(user) => {
                let name = user.to_string();
                tokio::task::spawn_blocking(move || Owner::of(&name))
                    .await
                    .map_err(|e| Failure::User(format!("the user lookup was aborted: {e}")))
                    .and_then(|r| r)
                    .map_err(FetchError::Owner)?
            }
            None => None,
        };
        for uri in uris {
            tracing::info!(uri = %uri.value, sandbox = %sandbox.display(), "fetching");
            self.fetch(uri, sandbox, user, owner)
                .await
                .map_err(|failure| FetchError::Uri {
                    uri: uri.value.clone(),
                    failure,
                })?;
        }
        if let Some(owner) = owner {
            let sandbox = sandbox.to_path_buf();
            tokio::task::spawn_blocking(move || chown_tree(&sandbox, owner))
                .await
                .map_err(|e| Failure::User(format!("the chown was aborted: {e}")))
                .and_then(|r| r)
                .map_err(FetchError::Owner)?;
        }
        Ok(())
    }

    async fn fetch(
        &self,
        uri: &Uri,
        sandbox: &Path,
        user: Option<&str>,
        owner: Option<Owner>,
    ) -> Result<(), Failure> {
        let source = Source::parse(&uri.value)?;
        let target = uri::target(sandbox, &uri.value, uri.output_file.as_deref())?;
        let parent = target.parent().unwrap_or(sandbox).to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(Failure::io(format!("cannot create '{}'", parent.display())))?;
        if uri.cache.unwrap_or(false) {
            let key = Key {
                user: user.unwrap_or_default().to_string(),
                uri: uri.value.clone(),
            };
            self.fetch_cached(&source, key, &target, owner).await?;
        } else {
            let opened = self.open(&source).await?;
            self.save(opened, &target, &uri.value, owner).await?;
        }
        if uri.executable.unwrap_or(false) {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                .await
                .map_err(Failure::io("cannot make the file executable"))?;
        } else if uri.extract.unwrap_or(true)
            && let Some(archive) = target
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(Archive::of)
        {
            extract::extract(archive, &target, &parent).await?;
        }
        tracing::info!(uri = %uri.value, target = %target.display(), "fetched");
        Ok(())
    }

    fn index(&self) -> MutexGuard<'_, CacheIndex> {
        // The index is consistent between calls; a panic elsewhere while
        // holding it does not make it unusable.
        self.inner
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn fetch_cached(
        &self,
        source: &Source,
        key: Key,
        target: &Path,
        owner: Option<Owner>,
    ) -> Result<(), Failure> {
        loop {
            let lookup = self.index().lookup(&key);
            match lookup {
                Lookup::Hit(path) => {
                    tracing::info!(uri = %key.uri, cached = %path.display(), "fetcher cache hit");
                    return self
                        .copy_from_cache(&path, source, &key, target, owner)
                        .await;
                }
                Lookup::Wait(mut rx) => {
                    tracing::info!(uri = %key.uri, "waiting for another fetch of the same URI");
                    // Fails once that fetch is over, however it ended.
                    let _ = rx.changed().await;
                }
                Lookup::Miss(tx) => {
                    let guard = Pending {
                        fetcher: self,
                        key: &key,
                        done: false,
                        _waiters: tx,
                    };
                    return self.download_to_cache(source, guard, target, owner).await;
                }
            }
        }
    }

    async fn download_to_cache(
        &self,
        source: &Source,
        mut pending: Pending<'_>,
        target: &Path,
        owner: Option<Owner>,
    ) -> Result<(), Failure> {
        let key = pending.key;
        let opened = self.open(source).await?;
        let reserved = match opened.size() {
            Some(size) => self.index().reserve(key, size).map_err(|e| e.to_string()),
            None => Err("its size is not known in advance".to_string()),
        };
        let evicted = match reserved {
            Ok(evicted) => evicted,
            Err(why) => {
                tracing::info!(uri = %key.uri, "not caching: {why}");
                drop(pending);
                return self.save(opened, target, &key.uri, owner).await;
            }
        };
        for path in evicted {
            tracing::info!(file = %path.display(), "evicting from the fetcher cache");
            if let Err(e) = tokio::fs::remove_file(&path).await {
                tracing::warn!(file = %path.display(), "cannot delete an evicted cache file: {e}");
            }
        }
        let n = self.inner.next_file.fetch_add(1, Ordering::Relaxed);
        let name = uri::base_name(&key.uri).unwrap_or_else(|| "file".into());
        let cached = self.inner.config.cache_dir.join(format!("{n}-{name}"));
        tokio::fs::create_dir_all(&self.inner.config.cache_dir)
            .await
            .map_err(Failure::io("cannot create the cache directory"))?;
        if let Err(e) = self.save(opened, &cached, &key.uri, owner).await {
            let _ = tokio::fs::remove_file(&cached).await;
            return Err(e);
        }
        let used = {
            let mut index = self.index();
            index.complete(key, cached.clone());
            index.used()
        };
        tracing::info!(
            uri = %key.uri, file = %cached.display(),
            "cached; the fetcher cache holds {used} of {} bytes",
            self.inner.config.cache_size
        );
        pending.done = true;
        drop(pending);
        self.copy_from_cache(&cached, source, key, target, owner)
            .await
    }

    async fn copy_from_cache(
        &self,
        cached: &Path,
        source: &Source,
        key: &Key,
        target: &Path,
        owner: Option<Owner>,
    ) -> Result<(), Failure> {
        match copy(cached, target).await {
            Ok(()) => Ok(()),
            // Evicted meanwhile, or deleted behind the agent's back (an
            // agent started with the same cache directory empties it):
            // fetch it anew, uncached.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::info!(uri = %key.uri, "the cached file is gone; fetching without the cache");
                self.index().forget_file(key, cached);
                let opened = self.open(source).await?;
                self.save(opened, target, &key.uri, owner).await
            }
            Err(e) => Err(Failure::io("cannot copy from the cache")(e)),
        }
    }

    async fn open(&self, source: &Source) -> Result<Opened, Failure> {
        match source {
            Source::Local(path) => {
                let metadata = tokio::fs::metadata(path)
                    .await
                    .map_err(Failure::io(format!("cannot read '{}'", path.display())))?;
                if !metadata.is_file() {
                    return Err(Failure::Unsupported(format!(
                        "'{}' is not a regular file",
                        path.display()
                    )));
                }
                Ok(Opened::Local {
                    path: path.clone(),
                    size: metadata.len(),
                })
            }
            Source::Http(url) => {
                let response =
                    download::open(&self.inner.client, url, self.inner.config.stall_timeout)
                        .await?;
                Ok(Opened::Http(response))
            }
        }
    }

    /// Writes what `opened` reads to `to`. A local file is read as
    /// `owner` (the fetch must not read what the task's user may not).
    async fn save(
        &self,
        opened: Opened,
        to: &Path,
        uri: &str,
        owner: Option<Owner>,
    ) -> Result<(), Failure> {
        match (opened, owner) {
            (Opened::Local { path, .. }, None) => copy(&path, to)
                .await
                .map_err(Failure::io(format!("cannot copy '{}'", path.display()))),
            (Opened::Local { path, .. }, Some(owner)) => copy_as(&path, to, owner).await,
            (Opened::Http(response), _) => {
                download::save(response, to, self.inner.config.stall_timeout, uri).await
            }
        }
    }
}

/// A source ready to be read.
enum Opened {
    Local { path: PathBuf, size: u64 },
    Http(download::Response),
}

impl Opened {
    fn size(&self) -> Option<u64> {
        match self {
            Self::Local { size, .. } => Some(*size),
            Self::Http(response) => response.content_length,
        }
    }
}

/// A cache entry being downloaded by this fetch. Dropped unfinished (an
/// error, or the launch given up), it is forgotten so that the next
/// request downloads it anew; either way its waiters wake up.
struct Pending<'a> {
    fetcher: &'a Fetcher,
    key: &'a Key,
    done: bool,
    _waiters: tokio::sync::watch::Sender<()>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.fetcher.index().abandon(self.key);
        }
    }
}

/// Copies a file (never a hard link: the copy may be chowned to another
/// user, and the task may change it).
async fn copy(from: &Path, to: &Path) -> io::Result<()> {
    tokio::fs::copy(from, to).await.map(drop)
}

/// The user fetched files are for, when it is not the agent's own.
#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

impl Owner {
    /// Blocking (reads the user database).
    fn of(user: &str) -> Result<Option<Self>, Failure> {
        use nix::unistd::{Uid, User};
        let entry = User::from_name(user)
            .map_err(|e| Failure::User(format!("cannot look up user '{user}': {e}")))?
            .ok_or_else(|| Failure::User(format!("no such user '{user}'")))?;
        Ok((entry.uid != Uid::effective()).then(|| Self {
            uid: entry.uid.as_raw(),
            gid: entry.gid.as_raw(),
        }))
    }
}

/// Copies `from` to `to` with `cat` running as `owner`, so that the
/// source's permissions apply to that user (the agent may be root).
async fn copy_as(from: &Path, to: &Path, owner: Owner) -> Result<(), Failure> {
    let file = tokio::fs::File::create(to)
        .await
        .map_err(Failure::io(format!("cannot create '{}'", to.display())))?
        .into_std()
        .await;
    let output = tokio::process::Command::new("cat")
        .arg("--")
        .arg(from)
        .uid(owner.uid)
        .gid(owner.gid)
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(Failure::io("cannot run cat"))?
        .wait_with_output()
        .await
        .map_err(Failure::io("cannot run cat"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(Failure::Io {
        what: format!("cannot copy '{}'", from.display()),
        source: io::Error::other(String::from_utf8_lossy(&output.stderr).trim().to_string()),
    })
}

/// Gives the sandbox and everything in it to `owner` (the fetch wrote
/// them as the agent's user). Changing the owner also clears set-user-ID
/// bits an archive may have carried.
fn chown_tree(root: &Path, owner: Owner) -> Result<(), Failure> {
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        std::os::unix::fs::lchown(&path, Some(owner.uid), Some(owner.gid))
            .map_err(Failure::io(format!("cannot chown '{}'", path.display())))?;
        let metadata = std::fs::symlink_metadata(&path)
            .map_err(Failure::io(format!("cannot stat '{}'", path.display())))?;
        if metadata.is_dir() {
            let entries = std::fs::read_dir(&path)
                .map_err(Failure::io(format!("cannot list '{}'", path.display())))?;
            for entry in entries {
                let entry =
                    entry.map_err(Failure::io(format!("cannot list '{}'", path.display())))?;
                pending.push(entry.path());
            }
        }
    }
    Ok(())
}
