//! A master and agents as real processes on free loopback ports, each in
//! its own temporary work directory; killed when dropped. If the test
//! panics, their logs are printed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The directory holding the workspace's binaries: tests run from
/// `target/<profile>/deps`, binaries live in `target/<profile>`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// A port nobody listens on right now.
/// Starts an agent alone (no master listens) with `flags` and returns
/// its output once it exits, for flags that must stop it at start.
/// Panics if it exits successfully or is still running after 30 s.
pub fn agent_start_failure(flags: &[String]) -> String {
    let work = tempfile::tempdir().expect("a temporary work directory");
    let mut child = Command::new(binary("mesos-agent"))
        .arg(format!("--master=127.0.0.1:{}", free_port()))
        .arg(format!("--work_dir={}", work.path().display()))
        .arg("--ip=127.0.0.1")
        .arg(format!("--port={}", free_port()))
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mesos-agent starts");
    // An agent that started would run until killed: give it a bound.
    for _ in 0..300 {
        if child.try_wait().ok().flatten().is_some() {
            let out = child.wait_with_output().expect("the agent's output");
            assert!(!out.status.success(), "the agent exited successfully");
            return format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the agent started with {flags:?}");
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

#[derive(Debug, Clone)]
pub struct Options {
    pub agents: usize,
    pub agent_resources: String,
    pub master_flags: Vec<String>,
    pub agent_flags: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            agents: 1,
            agent_resources: "cpus:2;mem:2048;disk:4096;ports:[31000-32000]".into(),
            master_flags: vec!["--allocation_interval=100ms".into()],
            agent_flags: vec![],
        }
    }
}

struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    /// Killed on purpose: its exit is not a failure.
    stopped: bool,
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub master: String,
    pub agents: Vec<String>,
    processes: Vec<Process>,
    /// Each agent's command line, for restarts.
    agent_args: Vec<Vec<String>>,
    /// The master's command line, for restarts.
    master_args: Vec<String>,
}

fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> anyhow::Result<Process> {
    let file = std::fs::File::create(log)?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file))
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    Ok(Process {
        name: name.to_string(),
        child,
        log: log.to_path_buf(),
        stopped: false,
    })
}

impl Cluster {
    pub fn start() -> Cluster {
        Self::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Cluster {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut cluster = Cluster {
            master: format!("127.0.0.1:{}", free_port()),
            agents: Vec::new(),
            processes: Vec::new(),
            agent_args: Vec::new(),
            master_args: Vec::new(),
            dir,
        };
        if let Err(e) = cluster.boot(&options) {
            cluster.dump_logs();
            panic!("cluster failed to start: {e:#}");
        }
        cluster
    }

    fn boot(&mut self, options: &Options) -> anyhow::Result<()> {
        let port = self
            .master
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let mut args = vec![
            "--ip=127.0.0.1".to_string(),
            format!("--port={port}"),
            format!("--work_dir={}", self.dir.path().join("master").display()),
        ];
        if !options
            .master_flags
            .iter()
            .any(|f| f.starts_with("--registry="))
        {
            args.push("--registry=in_memory".to_string());
        }
        args.extend(options.master_flags.iter().cloned());
        let log = self.dir.path().join("master.log");
        self.processes
            .push(spawn("master", &binary("mesos-master"), &args, &log)?);
        self.master_args = args;
        self.wait_healthy(&self.master.clone())?;
        for i in 0..options.agents {
            self.add_agent(options, i)?;
        }
        self.wait_for_agents(options.agents)
    }

    fn add_agent(&mut self, options: &Options, i: usize) -> anyhow::Result<()> {
        // Loopback, unless the test gives the agent an address of its own.
        let given_ip = options
            .agent_flags
            .iter()
            .find_map(|f| f.strip_prefix("--ip="));
        let address = format!("{}:{}", given_ip.unwrap_or("127.0.0.1"), free_port());
        let port = address.rsplit(':').next().unwrap_or_default().to_string();
        let mut args = vec![
            format!("--master={}", self.master),
            format!("--port={port}"),
            format!(
                "--work_dir={}",
                self.dir.path().join(format!("agent-{i}")).display()
            ),
            format!("--resources={}", options.agent_resources),
            "--registration_backoff_factor=100ms".to_string(),
            // Each agent's own: isolators keep per-container state there
            // and clean up what another agent's recovery would not know.
            format!(
                "--runtime_dir={}",
                self.dir.path().join(format!("agent-{i}-run")).display()
            ),
        ];
        if given_ip.is_none() {
            args.push("--ip=127.0.0.1".to_string());
        }
        args.extend(options.agent_flags.iter().cloned());
        let log = self.dir.path().join(format!("agent-{i}.log"));
        self.processes.push(spawn(
            &format!("agent-{i}"),
            &binary("mesos-agent"),
            &args,
            &log,
        )?);
        self.agents.push(address);
        self.agent_args.push(args);
        Ok(())
    }

    /// Starts agent `i` again (after [`Cluster::kill_agent`]) with the same
    /// flags, work directory and port, except for the flags `extra`
    /// replaces or adds. Its log continues in the same file.
    pub fn restart_agent(&mut self, i: usize, extra: &[String]) -> anyhow::Result<()> {
        let name_of = |flag: &str| flag.split('=').next().unwrap_or_default().to_string();
        let replaced: Vec<String> = extra.iter().map(|f| name_of(f)).collect();
        let mut args: Vec<String> = self
            .agent_args
            .get(i)
            .context("no such agent")?
            .iter()
            .filter(|a| !replaced.contains(&name_of(a)))
            .cloned()
            .collect();
        args.extend(extra.iter().cloned());
        let log = self.dir.path().join(format!("agent-{i}.log"));
        let file = std::fs::OpenOptions::new().append(true).open(&log)?;
        let child = Command::new(binary("mesos-agent"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .spawn()?;
        let name = format!("agent-{i}");
        self.processes.retain(|p| p.name != name);
        self.processes.push(Process {
            name,
            child,
            log,
            stopped: false,
        });
        Ok(())
    }

    /// Whether agent `i`'s process has exited (and how), without waiting.
    pub fn agent_exit(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let name = format!("agent-{i}");
        let p = self.processes.iter_mut().find(|p| p.name == name)?;
        let status = p.child.try_wait().ok().flatten();
        if status.is_some() {
            p.stopped = true;
        }
        status
    }

    /// The pid of the master's process.
    pub fn master_pid(&self) -> Option<u32> {
        self.processes
            .iter()
            .find(|p| p.name == "master")
            .map(|p| p.child.id())
    }

    /// The pid of agent `i`'s process.
    pub fn agent_pid(&self, i: usize) -> Option<u32> {
        let name = format!("agent-{i}");
        self.processes
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.child.id())
    }

    /// What the master has logged so far.
    pub fn master_log(&self) -> String {
        self.log_of("master")
    }

    /// What agent `i` has logged so far.
    pub fn agent_log(&self, i: usize) -> String {
        self.log_of(&format!("agent-{i}"))
    }

    fn log_of(&self, name: &str) -> String {
        self.processes
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| std::fs::read_to_string(&p.log).ok())
            .unwrap_or_default()
    }

    /// The work directory of agent `i`.
    pub fn agent_work_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("agent-{i}"))
    }

    /// Pids of live processes whose working directory is inside this
    /// cluster's directory: executors and their tasks (they run in their
    /// sandboxes and, being in sessions of their own, outlive a killed
    /// agent).
    pub fn sandbox_processes(&self) -> Vec<i32> {
        let root = self.dir.path().canonicalize().unwrap_or_default();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(&root))
                    && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                        s.rsplit_once(')')
                            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
                    })
            })
            .collect()
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        for p in self.processes.iter_mut().filter(|p| !p.stopped) {
            if let Some(status) = p.child.try_wait()? {
                bail!("{} exited during start-up: {status}", p.name);
            }
        }
        Ok(())
    }

    fn wait_healthy(&mut self, address: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.check_alive()?;
            if let Ok(r) = crate::raw_http::get(address, "/health")
                && r.status == 200
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{address} did not become healthy");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_agents(&mut self, expected: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.check_alive()?;
            if self.metric("master/slaves_active").unwrap_or(0.0) as usize >= expected {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{expected} agent(s) did not register");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One metric of the master's `/metrics/snapshot`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let r = crate::raw_http::get(&self.master, "/metrics/snapshot").ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        v[name].as_f64()
    }

    /// The master's `/master/state`.
    pub fn state(&self) -> serde_json::Value {
        let r = crate::raw_http::get(&self.master, "/master/state").expect("GET /master/state");
        serde_json::from_slice(&r.body).expect("state is JSON")
    }

    /// SIGKILLs agent `i`, as a crash would.
    /// Kills the master with SIGKILL.
    pub fn kill_master(&mut self) {
        if let Some(p) = self.processes.iter_mut().find(|p| p.name == "master") {
            let _ = p.child.kill();
            let _ = p.child.wait();
            p.stopped = true;
        }
    }

    /// Starts the master again (after [`Cluster::kill_master`]) with the
    /// same flags and port, and waits until it answers. Its log continues
    /// in the same file.
    pub fn restart_master(&mut self) -> anyhow::Result<()> {
        let log = self.dir.path().join("master.log");
        let file = std::fs::OpenOptions::new().append(true).open(&log)?;
        let child = Command::new(binary("mesos-master"))
            .args(&self.master_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .spawn()?;
        self.processes.retain(|p| p.name != "master");
        self.processes.push(Process {
            name: "master".into(),
            child,
            log,
            stopped: false,
        });
        self.wait_healthy(&self.master.clone())
    }

    pub fn kill_agent(&mut self, i: usize) {
        let name = format!("agent-{i}");
        if let Some(p) = self.processes.iter_mut().find(|p| p.name == name) {
            let _ = p.child.kill();
            let _ = p.child.wait();
            p.stopped = true;
        }
    }

    /// Lets every user through the cluster's directory, so that a task
    /// switched to `nobody` reaches its sandbox.
    pub fn open_to_all_users(&self) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the cluster directory");
    }

    pub fn dump_logs(&self) {
        for p in &self.processes {
            let log = std::fs::read_to_string(&p.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("----- {} log ({}) -----", p.name, p.log.display());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
        // What executors said: why one exited early is only there.
        let mut stderrs = Vec::new();
        files_named(self.dir.path(), "stderr", &mut stderrs);
        for path in stderrs {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            eprintln!("----- {} -----", path.display());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        // For digging into a run: MESOS_TEST_KEEP_LOGS=DIR copies the logs,
        // under the test's name (tests of a binary run side by side).
        if let Some(keep) = std::env::var_os("MESOS_TEST_KEEP_LOGS") {
            let test = std::thread::current()
                .name()
                .unwrap_or("cluster")
                .to_string();
            let keep = PathBuf::from(keep).join(test.replace("::", "-"));
            let _ = std::fs::create_dir_all(&keep);
            for p in &self.processes {
                if let Some(name) = p.log.file_name() {
                    let _ = std::fs::copy(&p.log, keep.join(name));
                }
            }
        }
        for p in &mut self.processes {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        // Executors outlive a killed agent; do not leak them.
        for pid in self.sandbox_processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Nor the rootfs of containers whose teardown the kill cut short:
        // each left mount would slow every later mount table read and
        // mount namespace on the host.
        if let Ok(mounts) = mesos_provisioners::mounts::mounts_under(self.dir.path()) {
            let _ = mesos_provisioners::mounts::detach_all(mounts);
        }
    }
}

/// Every file called `name` under `dir`, not following symlinks (a
/// sandbox's `runs/latest`).
pub fn files_named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files_named(&path, name, out),
            Ok(t) if t.is_file() && entry.file_name() == name => out.push(path),
            _ => {}
        }
    }
}

/// The names in `dir`; none when it cannot be read.
pub fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
