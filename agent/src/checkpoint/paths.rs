//! Paths of the checkpoint files (Mesos's `src/slave/paths.hpp` layout).

use std::path::{Path, PathBuf};

/// `<work_dir>/meta`.
#[derive(Debug, Clone)]
pub struct Meta {
    pub root: PathBuf,
}

impl Meta {
    pub fn new(work_dir: &Path) -> Self {
        Self {
            root: work_dir.join("meta"),
        }
    }

    pub fn boot_id(&self) -> PathBuf {
        self.root.join("boot_id")
    }

    /// What the master's operations made of the agent's resources
    /// (reservations, persistent volumes); kept across agent IDs.
    pub fn resources_info(&self) -> PathBuf {
        self.root.join("resources").join("resources.info")
    }

    pub fn slaves(&self) -> PathBuf {
        self.root.join("slaves")
    }

    pub fn latest_agent(&self) -> PathBuf {
        self.slaves().join("latest")
    }

    pub fn agent(&self, agent: &str) -> PathBuf {
        self.slaves().join(agent)
    }

    pub fn agent_info(&self, agent: &str) -> PathBuf {
        self.agent(agent).join("slave.info")
    }

    pub fn framework(&self, agent: &str, framework: &str) -> PathBuf {
        self.agent(agent).join("frameworks").join(framework)
    }

    pub fn framework_info(&self, agent: &str, framework: &str) -> PathBuf {
        self.framework(agent, framework).join("framework.info")
    }

    pub fn framework_pid(&self, agent: &str, framework: &str) -> PathBuf {
        self.framework(agent, framework).join("framework.pid")
    }

    pub fn executor(&self, agent: &str, framework: &str, executor: &str) -> PathBuf {
        self.framework(agent, framework)
            .join("executors")
            .join(executor)
    }

    pub fn executor_info(&self, agent: &str, framework: &str, executor: &str) -> PathBuf {
        self.executor(agent, framework, executor)
            .join("executor.info")
    }

    pub fn run(&self, agent: &str, framework: &str, executor: &str, container: &str) -> PathBuf {
        self.executor(agent, framework, executor)
            .join("runs")
            .join(container)
    }

    pub fn forked_pid(&self, run: &Path) -> PathBuf {
        run.join("pids").join("forked.pid")
    }

    /// Present once the run is over.
    pub fn sentinel(&self, run: &Path) -> PathBuf {
        run.join("executor.sentinel")
    }

    pub fn task(&self, run: &Path, task: &str) -> PathBuf {
        run.join("tasks").join(task)
    }

    pub fn task_info(&self, run: &Path, task: &str) -> PathBuf {
        self.task(run, task).join("task.info")
    }

    pub fn task_updates(&self, run: &Path, task: &str) -> PathBuf {
        self.task(run, task).join("task.updates")
    }
}
