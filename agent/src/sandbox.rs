//! Mesos's sandbox layout under `--work_dir`:
//! `slaves/<agent>/frameworks/<framework>/executors/<executor>/runs/<container>`,
//! with `runs/latest` pointing at the newest run and `slaves/latest` at the
//! current agent ID. The functions here do blocking file I/O: call them off
//! the async runtime's worker threads.

use std::io;
use std::path::{Path, PathBuf};

/// The IDs that name one executor run.
#[derive(Debug, Clone, Copy)]
pub struct RunIds<'a> {
    pub agent_id: &'a str,
    pub framework_id: &'a str,
    pub executor_id: &'a str,
    pub container_id: &'a str,
}

pub fn executor_dir(work_dir: &Path, ids: &RunIds<'_>) -> PathBuf {
    work_dir
        .join("slaves")
        .join(ids.agent_id)
        .join("frameworks")
        .join(ids.framework_id)
        .join("executors")
        .join(ids.executor_id)
}

pub fn run_dir(work_dir: &Path, ids: &RunIds<'_>) -> PathBuf {
    executor_dir(work_dir, ids)
        .join("runs")
        .join(ids.container_id)
}

/// Creates the run directory and points `runs/latest` at it.
pub fn create(work_dir: &Path, ids: &RunIds<'_>) -> io::Result<PathBuf> {
    // The IDs come from the network; one containing `/` or `..` would put
    // the sandbox outside the work directory.
    for id in [
        ids.agent_id,
        ids.framework_id,
        ids.executor_id,
        ids.container_id,
    ] {
        mesos_proto::ids::validate_id(id)
            .map_err(|reason| io::Error::new(io::ErrorKind::InvalidInput, reason))?;
    }
    let dir = run_dir(work_dir, ids);
    std::fs::create_dir_all(&dir)?;
    replace_symlink(Path::new(ids.container_id), &dir.with_file_name("latest"))?;
    Ok(dir)
}

/// Points `slaves/latest` at the agent's directory.
pub fn link_latest_agent(work_dir: &Path, agent_id: &str) -> io::Result<()> {
    let slaves = work_dir.join("slaves");
    std::fs::create_dir_all(slaves.join(agent_id))?;
    replace_symlink(Path::new(agent_id), &slaves.join("latest"))
}

/// Creates `link -> target`, atomically replacing an older link so readers
/// never see it missing.
fn replace_symlink(target: &Path, link: &Path) -> io::Result<()> {
    let temporary = link.with_file_name(format!(".latest.{}", uuid::Uuid::new_v4()));
    std::os::unix::fs::symlink(target, &temporary)?;
    std::fs::rename(&temporary, link).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<'a>(container_id: &'a str) -> RunIds<'a> {
        RunIds {
            agent_id: "a",
            framework_id: "f",
            executor_id: "e",
            container_id,
        }
    }

    #[test]
    fn layout_and_latest_link() {
        let tmp = tempfile::tempdir().unwrap();
        let first = create(tmp.path(), &ids("c1")).unwrap();
        assert_eq!(
            first,
            tmp.path().join("slaves/a/frameworks/f/executors/e/runs/c1")
        );
        let second = create(tmp.path(), &ids("c2")).unwrap();
        let latest = second.with_file_name("latest");
        assert_eq!(std::fs::read_link(&latest).unwrap(), PathBuf::from("c2"));
        assert!(first.is_dir() && second.is_dir());
        assert_eq!(
            std::fs::canonicalize(latest).unwrap(),
            second.canonicalize().unwrap()
        );
    }

    #[test]
    fn ids_cannot_escape_the_work_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let mut bad = ids("c");
        bad.executor_id = "..";
        assert!(create(tmp.path(), &bad).is_err());
        bad.executor_id = "x/../../y";
        assert!(create(tmp.path(), &bad).is_err());
    }

    #[test]
    fn latest_agent_link() {
        let tmp = tempfile::tempdir().unwrap();
        link_latest_agent(tmp.path(), "S1").unwrap();
        link_latest_agent(tmp.path(), "S2").unwrap();
        let link = tmp.path().join("slaves/latest");
        assert_eq!(std::fs::read_link(link).unwrap(), PathBuf::from("S2"));
    }
}
