//! Sandbox garbage collection, as Mesos does it: a finished executor's run
//! directory is deleted `--gc_delay` after it was last modified, and sooner
//! as the disk fills. Every `--disk_watch_interval` the collector measures
//! the work directory's file system and deletes every scheduled directory
//! older than `gc_delay * max(0, 1 - gc_disk_headroom - usage)`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

/// The share of the file system holding `path` that is used, in [0, 1].
pub type DiskUsage = Arc<dyn Fn(&Path) -> Option<f64> + Send + Sync>;

#[derive(Clone)]
pub struct GcConfig {
    pub work_dir: PathBuf,
    pub delay: Duration,
    pub disk_watch_interval: Duration,
    pub disk_headroom: f64,
    pub disk_usage: DiskUsage,
}

impl GcConfig {
    /// The oldest a scheduled directory may get at this disk usage.
    fn max_allowed_age(&self, usage: f64) -> Duration {
        self.delay
            .mul_f64((1.0 - self.disk_headroom - usage).clamp(0.0, 1.0))
    }
}

/// Used share of the file system holding `path`, from `statvfs`.
pub fn statvfs_usage(path: &Path) -> Option<f64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    let total = stat.blocks() as f64;
    if total <= 0.0 {
        return None;
    }
    Some((1.0 - stat.blocks_available() as f64 / total).clamp(0.0, 1.0))
}

/// Schedules directories for deletion; cheap to clone.
#[derive(Clone, Debug)]
pub struct Gc {
    tx: mpsc::UnboundedSender<PathBuf>,
}

impl Gc {
    pub fn spawn(config: GcConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(config, rx));
        Self { tx }
    }

    /// Deletes `dir` once it is `gc_delay` old (by its mtime).
    pub fn schedule(&self, dir: PathBuf) {
        let _ = self.tx.send(dir);
    }
}

struct Schedule {
    /// Directories by the time they are due.
    due: BTreeMap<SystemTime, Vec<PathBuf>>,
    when: HashMap<PathBuf, SystemTime>,
}

impl Schedule {
    fn insert(&mut self, dir: PathBuf, at: SystemTime) {
        if let Some(old) = self.when.insert(dir.clone(), at)
            && let Some(dirs) = self.due.get_mut(&old)
        {
            dirs.retain(|d| *d != dir);
        }
        self.due.entry(at).or_default().push(dir);
    }

    /// Takes every directory due at or before `at`.
    fn take_until(&mut self, at: SystemTime) -> Vec<PathBuf> {
        let later = self.due.split_off(&(at + Duration::from_nanos(1)));
        let due = std::mem::replace(&mut self.due, later);
        let dirs: Vec<PathBuf> = due.into_values().flatten().collect();
        for dir in &dirs {
            self.when.remove(dir);
        }
        dirs
    }
}

async fn run(config: GcConfig, mut rx: mpsc::UnboundedReceiver<PathBuf>) {
    let mut schedule = Schedule {
        due: BTreeMap::new(),
        when: HashMap::new(),
    };
    let mut disk_watch =
        tokio::time::interval(config.disk_watch_interval.max(Duration::from_millis(10)));
    disk_watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next_due = schedule
            .due
            .keys()
            .next()
            .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
        tokio::select! {
            dir = rx.recv() => {
                let Some(dir) = dir else { return };
                let mtime = {
                    let dir = dir.clone();
                    tokio::task::spawn_blocking(move || std::fs::metadata(dir)?.modified())
                        .await
                };
                // An error means the directory is already gone.
                if let Ok(Ok(mtime)) = mtime {
                    tracing::debug!(dir = %dir.display(), "scheduled for garbage collection");
                    schedule.insert(dir, mtime + config.delay);
                }
            }
            _ = sleep_opt(next_due) => {
                remove(schedule.take_until(SystemTime::now())).await;
            }
            _ = disk_watch.tick() => {
                let usage = {
                    let (usage_of, work_dir) = (config.disk_usage.clone(), config.work_dir.clone());
                    tokio::task::spawn_blocking(move || usage_of(&work_dir)).await.ok().flatten()
                };
                let Some(usage) = usage else { continue };
                let max_age = config.max_allowed_age(usage);
                if max_age < config.delay {
                    // Due within (delay - max_age) from now means older than max_age.
                    let dirs = schedule.take_until(SystemTime::now() + (config.delay - max_age));
                    if !dirs.is_empty() {
                        tracing::info!(
                            usage = format!("{:.1}%", usage * 100.0),
                            max_age = ?max_age,
                            count = dirs.len(),
                            "disk filling up: deleting sandboxes early"
                        );
                    }
                    remove(dirs).await;
                }
            }
        }
    }
}

async fn sleep_opt(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn remove(dirs: Vec<PathBuf>) {
    if dirs.is_empty() {
        return;
    }
    let _ = tokio::task::spawn_blocking(move || {
        for dir in dirs {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "deleted sandbox");
                    remove_empty_executor_dir(&dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(dir = %dir.display(), "failed to delete sandbox: {e}"),
            }
        }
    })
    .await;
}

/// After its last run is gone, an executor's directory holds `runs/` and a
/// dangling `runs/latest`: delete them too. Only empty directories are
/// removed, so a run the agent starts meanwhile survives.
fn remove_empty_executor_dir(run_dir: &Path) {
    let Some(runs) = run_dir.parent() else { return };
    let latest = runs.join("latest");
    if latest.exists() {
        return; // `latest` still points at a live run.
    }
    let _ = std::fs::remove_file(&latest);
    if std::fs::remove_dir(runs).is_ok()
        && let Some(executor_dir) = runs.parent()
    {
        let _ = std::fs::remove_dir(executor_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn config(work_dir: &Path, delay: Duration, usage: Arc<AtomicU64>) -> GcConfig {
        GcConfig {
            work_dir: work_dir.to_path_buf(),
            delay,
            disk_watch_interval: Duration::from_millis(20),
            disk_headroom: 0.1,
            disk_usage: Arc::new(move |_| Some(usage.load(Ordering::Relaxed) as f64 / 100.0)),
        }
    }

    fn run_dir(root: &Path, executor: &str) -> PathBuf {
        let run = root.join(format!("executors/{executor}/runs/C1"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("stdout"), "out").unwrap();
        symlink("C1", run.with_file_name("latest")).unwrap();
        run
    }

    async fn gone_within(path: &Path, limit: Duration) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if !path.exists() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[test]
    fn shortens_the_delay_as_the_disk_fills() {
        let c = config(Path::new("/"), Duration::from_secs(1000), Arc::default());
        assert_eq!(c.max_allowed_age(0.0), Duration::from_secs(900));
        assert_eq!(c.max_allowed_age(0.5), Duration::from_secs(400));
        assert_eq!(c.max_allowed_age(0.95), Duration::ZERO);
    }

    #[tokio::test]
    async fn deletes_after_the_delay_with_its_executor_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let run = run_dir(tmp.path(), "E1");
        let gc = Gc::spawn(config(
            tmp.path(),
            Duration::from_millis(200),
            Arc::default(),
        ));
        gc.schedule(run.clone());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(run.exists(), "deleted before its delay");
        assert!(gone_within(&run, Duration::from_secs(5)).await);
        assert!(gone_within(&tmp.path().join("executors/E1"), Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn a_full_disk_deletes_at_once_and_a_roomy_one_waits() {
        let tmp = tempfile::tempdir().unwrap();
        let usage = Arc::new(AtomicU64::new(50));
        let gc = Gc::spawn(config(
            tmp.path(),
            Duration::from_secs(7 * 86400),
            usage.clone(),
        ));
        let run = run_dir(tmp.path(), "E1");
        gc.schedule(run.clone());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(run.exists(), "half-full disk: a fresh sandbox stays");

        usage.store(95, Ordering::Relaxed);
        assert!(gone_within(&run, Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn keeps_an_executor_dir_with_a_newer_run() {
        let tmp = tempfile::tempdir().unwrap();
        let old = run_dir(tmp.path(), "E1");
        let newer = old.with_file_name("C2");
        std::fs::create_dir_all(&newer).unwrap();
        std::fs::remove_file(old.with_file_name("latest")).unwrap();
        symlink("C2", old.with_file_name("latest")).unwrap();
        let gc = Gc::spawn(config(
            tmp.path(),
            Duration::from_millis(10),
            Arc::default(),
        ));
        gc.schedule(old.clone());
        assert!(gone_within(&old, Duration::from_secs(5)).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(newer.exists());
    }
}
