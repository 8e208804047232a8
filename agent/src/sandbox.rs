//! Mesos's sandbox layout under `--work_dir`:
//! `slaves/<agent>/frameworks/<framework>/executors/<executor>/runs/<container>`
//! plus a `runs/latest` symlink to the newest run.

use std::io;
use std::path::{Path, PathBuf};

pub fn executor_dir(work_dir: &Path, agent_id: &str, framework_id: &str, executor_id: &str) -> PathBuf {
    work_dir
        .join("slaves")
        .join(agent_id)
        .join("frameworks")
        .join(framework_id)
        .join("executors")
        .join(executor_id)
}

pub fn run_dir(
    work_dir: &Path,
    agent_id: &str,
    framework_id: &str,
    executor_id: &str,
    container_id: &str,
) -> PathBuf {
    executor_dir(work_dir, agent_id, framework_id, executor_id)
        .join("runs")
        .join(container_id)
}

/// Creates the run directory and points `runs/latest` at it. IDs were
/// validated by the master (no `/`, not `.` or `..`), so the path stays
/// under `work_dir`.
pub fn create(
    work_dir: &Path,
    agent_id: &str,
    framework_id: &str,
    executor_id: &str,
    container_id: &str,
) -> io::Result<PathBuf> {
    let dir = run_dir(work_dir, agent_id, framework_id, executor_id, container_id);
    std::fs::create_dir_all(&dir)?;
    let latest = dir.with_file_name("latest");
    match std::fs::remove_file(&latest) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::os::unix::fs::symlink(container_id, &latest)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_latest_link() {
        let tmp = tempfile::tempdir().unwrap();
        let first = create(tmp.path(), "a", "f", "e", "c1").unwrap();
        assert!(first.ends_with("slaves/a/frameworks/f/executors/e/runs/c1"));
        let second = create(tmp.path(), "a", "f", "e", "c2").unwrap();
        let latest = second.with_file_name("latest");
        assert_eq!(std::fs::read_link(&latest).unwrap(), PathBuf::from("c2"));
        assert!(first.is_dir() && second.is_dir());
    }
}
