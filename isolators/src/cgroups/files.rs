//! Reading and writing cgroup control files.

use std::io;
use std::path::Path;

/// A file holding one number (`memory.limit_in_bytes`); `max` is `None`.
pub fn read_u64(path: &Path) -> io::Result<Option<u64>> {
    let text = std::fs::read_to_string(path)?;
    let text = text.trim();
    if text == "max" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a number: {text:?}", path.display()),
        )
    })
}

/// A flat-keyed file (`memory.stat`, `cpu.stat`, `memory.events`): the
/// value of `key`, if present and numeric.
pub fn read_flat_keyed(path: &Path, key: &str) -> io::Result<Option<u64>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(key))
            .then(|| words.next()?.parse().ok())
            .flatten()
    }))
}

/// Lets the children of the v2 cgroup `dir` use `controller`.
pub(super) fn enable_controller(dir: &Path, controller: &str) -> io::Result<()> {
    let control = dir.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&control).unwrap_or_default();
    if enabled.split_whitespace().any(|c| c == controller) {
        return Ok(());
    }
    std::fs::write(&control, format!("+{controller}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_max_and_keyed_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "1048576\n").unwrap();
        assert_eq!(read_u64(&file).unwrap(), Some(1_048_576));
        std::fs::write(&file, "max\n").unwrap();
        assert_eq!(read_u64(&file).unwrap(), None);
        std::fs::write(&file, "garbage").unwrap();
        assert!(read_u64(&file).is_err());
        std::fs::write(&file, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        assert_eq!(read_flat_keyed(&file, "oom_kill").unwrap(), Some(2));
        assert_eq!(read_flat_keyed(&file, "oom").unwrap(), None);
    }
}
