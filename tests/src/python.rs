//! Running the pymesos scripts under `tests/python` with the venv's
//! interpreter. Without one a test is skipped with the reason printed;
//! with `CI=true` a skip is a failure.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The interpreter with pymesos, or why there is none.
pub fn interpreter() -> Result<PathBuf, String> {
    let python = std::env::var_os("MESOS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    if !python.exists() {
        return Err(format!(
            "{} not found: run ./scripts/bootstrap (or set MESOS_TEST_PYTHON)",
            python.display()
        ));
    }
    let ok = Command::new(&python)
        .args(["-c", "import pymesos"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return Err(format!(
            "{} cannot import pymesos: run ./scripts/bootstrap",
            python.display()
        ));
    }
    Ok(python)
}

/// Skips the calling test (returns `None`) unless running in CI, where a
/// missing prerequisite fails the test.
pub fn require() -> Option<PathBuf> {
    match interpreter() {
        Ok(p) => Some(p),
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("pymesos test cannot run in CI: {reason}")
        }
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

pub struct Outcome {
    pub success: bool,
    pub output: String,
}

/// Runs `tests/python/<script>` with `args`, killing it after `timeout`.
pub fn run_script(python: &PathBuf, script: &str, args: &[&str], timeout: Duration) -> Outcome {
    let path = repo_root().join("tests/python").join(script);
    let out_path =
        std::env::temp_dir().join(format!("pymesos-{}-{script}.log", std::process::id()));
    let out = std::fs::File::create(&out_path).expect("create output file");
    let mut child = Command::new(python)
        .arg(&path)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .stdout(out.try_clone().expect("clone file"))
        .stderr(out)
        .spawn()
        .expect("start python");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for python") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    if status.is_none() {
        output.push_str(&format!("\n[killed after {timeout:?}]"));
    }
    Outcome {
        success: status.is_some_and(|s| s.success()),
        output,
    }
}
