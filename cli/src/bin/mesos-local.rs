//! `mesos-local`: a master and agents on this machine, in one command.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use mesos_flags::Loaded;
use tokio::process::{Child, Command};

mesos_flags::flags! {
    /// Flags of mesos-local.
    struct LocalFlags {
        /// IP address the master and agents listen on.
        ip: String = "127.0.0.1",
        /// Port of the master.
        port: u16 = "5050",
        /// Port of the first agent; further agents take the next ones.
        agent_port: u16 = "5051",
        /// Work directory (default: a new directory under /tmp).
        work_dir: Option<PathBuf>,
        /// Number of agents.
        num_slaves: u16 = "1",
        /// Resources of each agent (auto-detected when absent).
        resources: Option<String>,
        /// Period of the master's allocation cycle.
        allocation_interval: String = "1secs",
        /// Show the daemons' logs here instead of writing them to files.
        verbose: bool = "false",
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let flags = match LocalFlags::load() {
        Ok(Loaded::Flags(f)) => f,
        Ok(Loaded::Help(help)) => {
            println!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n\nSee 'mesos-local --help' for the flags.");
            return ExitCode::from(2);
        }
    };
    match run(flags).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesos-local: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating mesos-local")?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} not found next to mesos-local (build the workspace: cargo build --bins)",
            path.display()
        );
    }
    Ok(path)
}

fn spawn(program: &Path, args: &[String], log: Option<&Path>) -> anyhow::Result<Child> {
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null()).kill_on_drop(true);
    if let Some(log) = log {
        let file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file));
    }
    command
        .spawn()
        .with_context(|| format!("starting {}", program.display()))
}

async fn run(flags: LocalFlags) -> anyhow::Result<()> {
    let work_dir = match flags.work_dir.clone() {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("mesos-local-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    let master_addr = format!("{}:{}", flags.ip, flags.port);
    let log = |name: &str| (!flags.verbose).then(|| work_dir.join(format!("{name}.log")));

    let mut children: Vec<(String, Child)> = Vec::new();
    let master_log = log("master");
    children.push((
        "mesos-master".into(),
        spawn(
            &sibling("mesos-master")?,
            &[
                format!("--ip={}", flags.ip),
                format!("--port={}", flags.port),
                format!("--work_dir={}", work_dir.join("master").display()),
                format!("--allocation_interval={}", flags.allocation_interval),
            ],
            master_log.as_deref(),
        )?,
    ));
    let agent_bin = sibling("mesos-agent")?;
    for i in 0..flags.num_slaves {
        let mut args = vec![
            format!("--master={master_addr}"),
            format!("--ip={}", flags.ip),
            format!("--port={}", flags.agent_port + i),
            format!(
                "--work_dir={}",
                work_dir.join(format!("agent-{i}")).display()
            ),
        ];
        if let Some(r) = &flags.resources {
            args.push(format!("--resources={r}"));
        }
        let agent_log = log(&format!("agent-{i}"));
        children.push((
            format!("mesos-agent {i}"),
            spawn(&agent_bin, &args, agent_log.as_deref())?,
        ));
    }

    wait_for_agents(&master_addr, usize::from(flags.num_slaves), &mut children).await?;
    println!(
        "Mesos master listening on http://{master_addr} with {} agent(s)",
        flags.num_slaves
    );
    println!("Work directory: {}", work_dir.display());
    if !flags.verbose {
        println!(
            "Logs: {}/master.log, {}/agent-*.log",
            work_dir.display(),
            work_dir.display()
        );
    }
    println!("\nRun a task:");
    let execute = sibling("mesos-execute")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "mesos-execute".to_string());
    println!("  {execute} --master={master_addr} --name=hello --command='echo hello'");
    println!(
        "Or point a framework at it, e.g. pymesos: MesosSchedulerDriver(scheduler, framework, \"{master_addr}\")"
    );
    println!("\nPress Ctrl-C to stop.");

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let died = async {
        loop {
            for (name, child) in children.iter_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return format!("{name} exited ({status})");
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("\nStopping."),
        _ = sigterm.recv() => println!("Stopping."),
        reason = died => bail!("{reason}; stopping the others (logs in {})", work_dir.display()),
    }
    Ok(())
}

async fn wait_for_agents(
    master: &str,
    expected: usize,
    children: &mut [(String, Child)],
) -> anyhow::Result<()> {
    let url = format!("http://{master}/metrics/snapshot");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        for (name, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited during start-up ({status})");
            }
        }
        if let Ok(metrics) = mesos_cli::http_get::get_json(&url).await {
            let active = metrics["master/slaves_active"].as_f64().unwrap_or(0.0);
            if active as usize >= expected {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("agents did not register with the master within 30 seconds");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
