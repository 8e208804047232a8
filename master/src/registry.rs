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
//!
//! The writer keeps the registry indexed by agent ID with each agent
//! already encoded: a change is a map update and a write is a copy. (A
//! list searched per change, cloned and encoded whole per write, made 10k
//! agents re-registering after a failover quadratic.)

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use mesos_proto::internal::v1::{Registry, registry::UnreachableAgent};
use mesos_proto::v1;
use prost::Message;
use tokio::sync::{mpsc, oneshot};

/// Where the registry is kept.
pub trait Store: Send + 'static {
    fn load(&mut self) -> Result<Registry, RegistryError>;
    /// Replaces what is stored with `encoded`, an encoded [`Registry`].
    fn save(&mut self, encoded: &[u8]) -> Result<(), RegistryError>;
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

    fn save(&mut self, _encoded: &[u8]) -> Result<(), RegistryError> {
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

    fn save(&mut self, encoded: &[u8]) -> Result<(), RegistryError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        let temp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(encoded)?;
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

/// The registry as the writer keeps it.
#[derive(Debug, Default)]
struct Indexed {
    /// Encoded `AgentInfo`s by agent ID.
    agents: BTreeMap<String, Vec<u8>>,
    /// When each unreachable agent became so.
    unreachable: BTreeMap<String, f64>,
    gone: BTreeSet<String>,
    weights: Vec<v1::WeightInfo>,
    quota_configs: Vec<v1::quota::QuotaConfig>,
}

/// `Registry.agents`' field number.
const AGENTS_FIELD: u32 = 1;

impl Indexed {
    fn new(registry: Registry) -> Self {
        let mut indexed = Self {
            weights: registry.weights,
            quota_configs: registry.quota_configs,
            ..Self::default()
        };
        for info in registry.agents {
            indexed.admit(&info);
        }
        for u in registry.unreachable {
            indexed.unreachable.insert(u.id.value, u.time);
        }
        indexed.gone = registry.gone.into_iter().map(|id| id.value).collect();
        indexed
    }

    fn admit(&mut self, info: &v1::AgentInfo) {
        let id = info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default();
        self.unreachable.remove(&id);
        self.agents.insert(id, info.encode_to_vec());
    }

    fn apply(&mut self, change: Change) {
        match change {
            Change::Admit(info) => self.admit(&info),
            Change::Unreachable { id, time } => {
                self.agents.remove(&id);
                self.unreachable.insert(id, time);
            }
            Change::Remove(id) => {
                self.agents.remove(&id);
                self.unreachable.remove(&id);
            }
            Change::Weights(weights) => self.weights = weights,
            Change::Quota(configs) => self.quota_configs = configs,
            Change::Gone(id) => {
                self.agents.remove(&id);
                self.unreachable.remove(&id);
                self.gone.insert(id);
            }
        }
    }

    /// The encoded [`Registry`]: the small fields encoded as a message, the
    /// agents appended as its repeated field 1 (protobuf reads fields in
    /// any order).
    fn encode(&self) -> Vec<u8> {
        use prost::encoding::{WireType, encode_key, encode_varint};
        let rest = Registry {
            agents: Vec::new(),
            unreachable: self
                .unreachable
                .iter()
                .map(|(id, time)| UnreachableAgent {
                    id: v1::AgentId { value: id.clone() },
                    time: *time,
                })
                .collect(),
            gone: self
                .gone
                .iter()
                .map(|id| v1::AgentId { value: id.clone() })
                .collect(),
            weights: self.weights.clone(),
            quota_configs: self.quota_configs.clone(),
        };
        let size: usize = self.agents.values().map(|a| a.len() + 8).sum();
        let mut out = Vec::with_capacity(rest.encoded_len() + size);
        // Encoding into a Vec with room cannot fail.
        let _ = rest.encode(&mut out);
        for agent in self.agents.values() {
            encode_key(AGENTS_FIELD, WireType::LengthDelimited, &mut out);
            encode_varint(agent.len() as u64, &mut out);
            out.extend_from_slice(agent);
        }
        out
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
    tokio::spawn(write_changes(
        store_back,
        Indexed::new(registry.clone()),
        rx,
    ));
    Ok((registry, Writer { tx }))
}

async fn write_changes(
    mut store: Box<dyn Store>,
    mut registry: Indexed,
    mut rx: mpsc::UnboundedReceiver<Queued>,
) {
    while let Some((change, done)) = rx.recv().await {
        let mut waiting: Vec<oneshot::Sender<()>> = done.into_iter().collect();
        registry.apply(change);
        // Everything queued meanwhile goes into the same write.
        while let Ok((change, done)) = rx.try_recv() {
            registry.apply(change);
            waiting.extend(done);
        }
        let encoded = registry.encode();
        let (back, result) = match tokio::task::spawn_blocking(move || {
            let result = store.save(&encoded);
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

    /// The registry as it would be read back.
    fn stored(r: &Indexed) -> Registry {
        Registry::decode(r.encode().as_slice()).unwrap()
    }

    #[test]
    fn changes_move_agents_between_lists() {
        let mut r = Indexed::default();
        r.apply(Change::Admit(agent("a")));
        r.apply(Change::Admit(agent("b")));
        r.apply(Change::Admit(agent("a")));
        assert_eq!(
            stored(&r).agents,
            vec![agent("a"), agent("b")],
            "admitting again replaces"
        );
        r.apply(Change::Unreachable {
            id: "a".into(),
            time: 5.0,
        });
        r.apply(Change::Weights(vec![v1::WeightInfo {
            role: Some("web".into()),
            weight: 2.0,
        }]));
        let read = stored(&r);
        assert_eq!(read.agents, vec![agent("b")]);
        assert_eq!(read.unreachable[0].id.value, "a");
        assert_eq!(read.unreachable[0].time, 5.0);
        assert_eq!(read.weights[0].role.as_deref(), Some("web"));
        r.apply(Change::Admit(agent("a")));
        assert!(stored(&r).unreachable.is_empty(), "back from unreachable");
        r.apply(Change::Gone("b".into()));
        assert_eq!(stored(&r).gone[0].value, "b");
        r.apply(Change::Remove("a".into()));
        assert!(stored(&r).agents.is_empty());
        // What was read back indexes the same.
        assert_eq!(Indexed::new(stored(&r)).encode(), r.encode());
    }

    #[test]
    fn the_file_survives_and_a_corrupt_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = InFile::new(dir.path());
        assert_eq!(store.load().unwrap(), Registry::default(), "no file yet");
        let mut r = Indexed::default();
        r.apply(Change::Admit(agent("a")));
        store.save(&r.encode()).unwrap();
        assert_eq!(InFile::new(dir.path()).load().unwrap(), stored(&r));
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
