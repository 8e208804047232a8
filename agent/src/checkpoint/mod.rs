//! Checkpointed agent state under `<work_dir>/meta`, in Mesos's layout:
//!
//! ```text
//! meta/boot_id
//! meta/slaves/latest -> <agent_id>
//! meta/slaves/<agent_id>/slave.info
//!   frameworks/<fw>/framework.info, framework.pid
//!   frameworks/<fw>/executors/<ex>/executor.info
//!   frameworks/<fw>/executors/<ex>/runs/latest -> <container>
//!   frameworks/<fw>/executors/<ex>/runs/<container>/pids/forked.pid
//!   frameworks/<fw>/executors/<ex>/runs/<container>/tasks/<task>/task.info, task.updates
//! ```
//!
//! `.info` files hold one length-prefixed protobuf record, `task.updates`
//! an append-only sequence of them; pid files hold decimal text. Only
//! frameworks with `checkpoint=true` are written (Mesos's rule).

mod paths;
mod records;
mod state;
mod writer;

use std::io;
use std::path::{Path, PathBuf};

pub use paths::Meta;
pub use records::{decode_all, decode_one, encode};
pub use state::{
    AgentState, ExecutorState, FrameworkState, RunState, TaskState, latest_agent, read_agent,
};
pub use writer::Checkpointer;
pub(crate) use writer::write_atomically;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint '{path}': {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("corrupt checkpoint '{path}': {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl CheckpointError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// This boot's ID (`/proc/sys/kernel/random/boot_id`); a different one in
/// `meta/boot_id` means the host rebooted and no process survived.
pub fn current_boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}
