//! The registry: the agents this master admitted, those it declared
//! unreachable and those an operator marked gone, so that a restarted
//! master recognises its cluster. `--registry=replicated_log` keeps it in
//! `--work_dir/registry` (one file, replaced atomically: temp file, fsync,
//! rename); `in_memory` forgets it with the process.
//!
//! The master loop never waits for the disk: it sends each change to a
//! writer task, which applies every change queued so far and writes the
//! result once. A crash may lose the last changes, never corrupt the file.
//! The store is a trait so that a ZooKeeper-backed one can replace it.

use std::io::Write;
use std::path::{Path, PathBuf};

use mesos_proto::internal::v1::{Registry, registry::UnreachableAgent};
use mesos_proto::v1;
use prost::Message;
use tokio::sync::{mpsc, oneshot};

/// Where the registry is kept.
pub trait Store: Send + 'static {
    fn load(&mut self) -> Result<Registry, RegistryError>;
    fn save(&mut self, registry: &Registry) -> Result<(), RegistryError>;
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("registry {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// Nothing survives the process (`--registry=in_memory`).
#[derive(Debug, Default)]
pub struct InMemory;

impl Store for InMemory {
    fn load(&mut self) -> Result<Registry, RegistryError> {
        Ok(Registry::default())
    }

    fn save(&mut self, _registry: &Registry) -> Result<(), RegistryError> {
        Ok(())
    }
}

/// One file in the master's work directory.
#[derive(Debug)]
pub struct InFile {
    path: PathBuf,
}

impl InFile {
    pub fn new(work_dir: &Path) -> Self {
        Self {
            path: work_dir.join("registry"),
        }
    }

    fn io(&self, source: std::io::Error) -> RegistryError {
        RegistryError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl Store for InFile {
    fn load(&mut self) -> Result<Registry, RegistryError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Registry::default()),
            Err(e) => return Err(self.io(e)),
        };
        Registry::decode(bytes.as_slice()).map_err(|e| RegistryError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    fn save(&mut self, registry: &Registry) -> Result<(), RegistryError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        let temp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&registry.encode_to_vec())?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| self.io(e))
    }
}

/// One change to the registry.
#[derive(Debug, Clone)]
pub enum Change {
    Admit(v1::AgentInfo),
    Unreachable {
        id: String,
        time: f64,
    },
    Remove(String),
    Gone(String),
    /// Every weight, as it now stands.
    Weights(Vec<v1::WeightInfo>),
    /// Every quota config, as it now stands.
    Quota(Vec<v1::quota::QuotaConfig>),
}

fn apply(registry: &mut Registry, change: Change) {
    let id_of = |info: &v1::AgentInfo| info.id.as_ref().map(|i| i.value.clone());
    match change {
        Change::Admit(info) => {
            let id = id_of(&info);
            registry.agents.retain(|a| id_of(a) != id);
            registry
                .unreachable
                .retain(|u| Some(&u.id.value) != id.as_ref());
            registry.agents.push(info);
        }
        Change::Unreachable { id, time } => {
            registry
                .agents
                .retain(|a| id_of(a).as_deref() != Some(id.as_str()));
            registry.unreachable.retain(|u| u.id.value != id);
            registry.unreachable.push(UnreachableAgent {
                id: v1::AgentId { value: id },
                time,
            });
        }
        Change::Remove(id) => {
            registry
                .agents
                .retain(|a| id_of(a).as_deref() != Some(id.as_str()));
            registry.unreachable.retain(|u| u.id.value != id);
        }
        Change::Weights(weights) => registry.weights = weights,
        Change::Quota(configs) => registry.quota_configs = configs,
        Change::Gone(id) => {
            registry
                .agents
                .retain(|a| id_of(a).as_deref() != Some(id.as_str()));
            registry.unreachable.retain(|u| u.id.value != id);
            if !registry.gone.iter().any(|g| g.value == id) {
                registry.gone.push(v1::AgentId { value: id });
            }
        }
    }
}

/// A change, and who waits for it to be on disk.
type Queued = (Change, Option<oneshot::Sender<()>>);

/// The master's side: changes go to the writer.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Queued>,
}

impl Writer {
    pub fn record(&self, change: Change) {
        if self.tx.send((change, None)).is_err() {
            tracing::error!("the registry writer is gone; a change is not persisted");
        }
    }

    /// Records `change`; the receiver completes once it is stored (an
    /// operator call answers only then, as Mesos's registry operations do).
    pub fn record_durably(&self, change: Change) -> oneshot::Receiver<()> {
        let (done, stored) = oneshot::channel();
        if self.tx.send((change, Some(done))).is_err() {
            tracing::error!("the registry writer is gone; a change is not persisted");
        }
        stored
    }
}

/// Loads the registry and starts its writer.
pub async fn open(mut store: Box<dyn Store>) -> Result<(Registry, Writer), RegistryError> {
    let (store_back, loaded) = tokio::task::spawn_blocking(move || {
        let loaded = store.load();
        (store, loaded)
    })
    .await
    .map_err(|e| RegistryError::Io {
        path: PathBuf::from("registry"),
        source: std::io::Error::other(e.to_string()),
    })?;
    let registry = loaded?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(write_changes(store_back, registry.clone(), rx));
    Ok((registry, Writer { tx }))
}

async fn write_changes(
    mut store: Box<dyn Store>,
    mut registry: Registry,
    mut rx: mpsc::UnboundedReceiver<Queued>,
) {
    while let Some((change, done)) = rx.recv().await {
        let mut waiting: Vec<oneshot::Sender<()>> = done.into_iter().collect();
        apply(&mut registry, change);
        // Everything queued meanwhile goes into the same write.
        while let Ok((change, done)) = rx.try_recv() {
            apply(&mut registry, change);
            waiting.extend(done);
        }
        let snapshot = registry.clone();
        let (back, result) = match tokio::task::spawn_blocking(move || {
            let result = store.save(&snapshot);
            (store, result)
        })
        .await
        {
            Ok(done) => done,
            Err(e) => {
                tracing::error!("the registry writer failed: {e}");
                return;
            }
        };
        store = back;
        if let Err(e) = result {
            // The callers are not told it worked: their calls fail.
            tracing::error!("{e}");
            continue;
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn agent(id: &str) -> v1::AgentInfo {
        v1::AgentInfo {
            hostname: "h".into(),
            id: Some(v1::AgentId { value: id.into() }),
            ..Default::default()
        }
    }

    #[test]
    fn changes_move_agents_between_lists() {
        let mut r = Registry::default();
        apply(&mut r, Change::Admit(agent("a")));
        apply(&mut r, Change::Admit(agent("b")));
        apply(&mut r, Change::Admit(agent("a")));
        assert_eq!(r.agents.len(), 2, "admitting again replaces");
        apply(
            &mut r,
            Change::Unreachable {
                id: "a".into(),
                time: 5.0,
            },
        );
        assert_eq!(r.agents.len(), 1);
        assert_eq!(r.unreachable[0].id.value, "a");
        apply(&mut r, Change::Admit(agent("a")));
        assert!(r.unreachable.is_empty(), "back from unreachable");
        apply(&mut r, Change::Gone("b".into()));
        assert_eq!(r.gone[0].value, "b");
        apply(&mut r, Change::Remove("a".into()));
        assert!(r.agents.is_empty());
    }

    #[test]
    fn the_file_survives_and_a_corrupt_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = InFile::new(dir.path());
        assert_eq!(store.load().unwrap(), Registry::default(), "no file yet");
        let mut r = Registry::default();
        apply(&mut r, Change::Admit(agent("a")));
        store.save(&r).unwrap();
        assert_eq!(InFile::new(dir.path()).load().unwrap(), r);
        std::fs::write(dir.path().join("registry"), b"\xff\xff\xff").unwrap();
        let err = store.load().unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[tokio::test]
    async fn the_writer_persists_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (loaded, writer) = open(Box::new(InFile::new(dir.path()))).await.unwrap();
        assert!(loaded.agents.is_empty());
        writer.record(Change::Admit(agent("a")));
        writer.record(Change::Unreachable {
            id: "x".into(),
            time: 1.0,
        });
        for _ in 0..100 {
            let on_disk = InFile::new(dir.path()).load().unwrap();
            if on_disk.agents.len() == 1 && on_disk.unreachable.len() == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the changes never reached the file");
    }
}
