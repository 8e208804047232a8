//! The `oci` containerizer: a command task in a container image runs
//! under an OCI runtime (`--oci_runtime`, runc by default; crun and youki
//! take the same commands) instead of the Mesos containerizer's own
//! launch.
//!
//! Everything up to the task is shared with the Mesos containerizer: the
//! agent provisions the image into a rootfs and works the task's argv,
//! environment, working directory, user and bind mounts out
//! ([`RootfsLaunch`]); the command executor runs on the host. Where the
//! Mesos containerizer's executor forks the task into the rootfs itself,
//! this one writes an OCI runtime bundle (a `config.json` around that
//! rootfs, with the task's cpu and memory in its cgroup) and runs
//! `<runtime> run` in the foreground: the runtime's exit status is the
//! task's, signals go through `<runtime> kill`.
//!
//! The runtime keeps its state under `<runtime_dir>/oci/state` (apart from
//! Docker's and anyone else's runc containers), bundles under
//! `<runtime_dir>/oci/bundles/<container id>`. The container is called
//! `mesos-<container id>`; the agent deletes it before the rootfs goes, so
//! a container whose executor died is not left running.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use mesos_proto::v1;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::command_executor::rootfs::{HOST_NETWORK_FILES, RootfsLaunch};

/// The executor's environment variable holding the [`OciLaunch`].
pub const OCI_LAUNCH_VAR: &str = "MESOS_TASK_OCI_LAUNCH";

/// The capabilities a task keeps: container runtimes' usual default set.
const CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Hidden from the task, as runtimes' default specs do.
const MASKED_PATHS: [&str; 8] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
];

const READONLY_PATHS: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// An OCI runtime and where its containers' state and bundles live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciRuntime {
    /// The runtime's binary.
    pub binary: PathBuf,
    /// `<runtime_dir>/oci`.
    pub root: PathBuf,
    /// `--cgroups_root`: tasks' cgroups go under their container's there.
    pub cgroups_root: String,
}

impl OciRuntime {
    /// `--oci_runtime` (a name looked up in `PATH`, or a path) under
    /// `runtime_dir`; an error when there is no such binary.
    pub fn resolve(flag: &str, runtime_dir: &Path, cgroups_root: &str) -> Result<Self, String> {
        let binary = if flag.contains('/') {
            Some(PathBuf::from(flag)).filter(|p| p.is_file())
        } else {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(flag))
                    .find(|p| p.is_file())
            })
        };
        let binary = binary.ok_or_else(|| {
            format!("--oci_runtime: cannot find the OCI runtime '{flag}' (is it installed?)")
        })?;
        Ok(Self {
            binary,
            root: runtime_dir.join("oci"),
            cgroups_root: cgroups_root.trim_matches('/').to_string(),
        })
    }

    fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    fn bundles(&self) -> PathBuf {
        self.root.join("bundles")
    }

    /// The runtime's name for the container of `container_id`.
    pub fn name(container_id: &str) -> String {
        format!("mesos-{container_id}")
    }

    /// What the executor of `container_id` needs.
    pub fn launch(&self, container_id: &str) -> OciLaunch {
        OciLaunch {
            runtime: self.clone(),
            name: Self::name(container_id),
            bundle: self.bundles().join(container_id),
            cgroups_path: format!("/{}/{container_id}/task", self.cgroups_root),
        }
    }

    fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.binary);
        command.arg("--root").arg(self.state());
        command
    }

    /// Deletes the container of `container_id` (killing what runs in it)
    /// and its bundle, if it has one: the executor removes the bundle once
    /// the runtime is done, so one left means the executor died first.
    /// Blocks.
    pub fn destroy(&self, container_id: &str) {
        let bundle = self.bundles().join(container_id);
        if !bundle.exists() {
            return;
        }
        let name = Self::name(container_id);
        let deleted = self
            .command()
            .args(["delete", "--force", &name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match deleted {
            Ok(out) if out.status.success() => {
                tracing::info!(container = container_id, "OCI container deleted");
            }
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                if !stderr.contains("does not exist") && !stderr.contains("not exist") {
                    tracing::warn!(container = container_id, "cannot delete {name}: {stderr}");
                }
            }
            Err(e) => tracing::warn!(container = container_id, "cannot run the OCI runtime: {e}"),
        }
        if let Err(e) = std::fs::remove_dir_all(&bundle)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(bundle = %bundle.display(), "cannot remove the bundle: {e}");
        }
    }

    /// After a restart: containers (bundles) not `live` are destroyed.
    pub fn recover(&self, live: &[String]) {
        let Ok(entries) = std::fs::read_dir(self.bundles()) else {
            return;
        };
        for entry in entries.flatten() {
            let container_id = entry.file_name().to_string_lossy().into_owned();
            if !live.contains(&container_id) {
                self.destroy(&container_id);
            }
        }
    }
}

/// How the executor runs its task under the runtime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciLaunch {
    pub runtime: OciRuntime,
    /// The container's name for the runtime.
    pub name: String,
    pub bundle: PathBuf,
    /// The task's cgroup, inside its container's.
    pub cgroups_path: String,
}

impl OciLaunch {
    pub fn to_json(&self) -> String {
        // Only strings: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The bundle's `config.json` for a task with `resources`, running as
    /// `launch` says, with `inherited` (the executor's environment) under
    /// the task's own variables.
    pub fn config(
        &self,
        launch: &RootfsLaunch,
        resources: &[v1::Resource],
        inherited: impl IntoIterator<Item = (String, String)>,
    ) -> Value {
        let mut env: Vec<(String, String)> = inherited
            .into_iter()
            .filter(|(name, _)| name != OCI_LAUNCH_VAR && !name.starts_with("MESOS_TASK_"))
            .collect();
        for (name, value) in &launch.env {
            env.retain(|(n, _)| n != name);
            env.push((name.clone(), value.clone()));
        }
        let (uid, gid) = launch.user.as_ref().map_or((0, 0), |u| (u.uid, u.gid));
        // linux/capabilities' sets when it gave some, the runtimes' usual
        // ones otherwise.
        let names = |set: u64| -> Vec<String> {
            mesos_isolators::capabilities::NAMES
                .iter()
                .enumerate()
                .filter(|(cap, _)| set & (1 << cap) != 0)
                .map(|(_, name)| format!("CAP_{name}"))
                .collect()
        };
        let defaults: Vec<String> = CAPABILITIES.iter().map(|c| c.to_string()).collect();
        let privileges = launch.privileges;
        let bounding = privileges.bounding.map_or_else(|| defaults.clone(), names);
        let effective = match (privileges.effective, privileges.bounding) {
            (Some(effective), _) => names(effective),
            // Root gets its bounding set back at exec, as in Mesos.
            (None, Some(bounding)) if uid == 0 => names(bounding),
            (None, _) => defaults,
        };
        let mut capabilities = json!({
            "bounding": bounding,
            "effective": effective,
            "permitted": effective,
        });
        if privileges.effective.is_some() {
            capabilities["inheritable"] = json!(effective);
            capabilities["ambient"] = json!(effective);
        }
        let scalar = |name: &str| {
            resources
                .iter()
                .filter(|r| r.name == name)
                .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
                .sum::<f64>()
        };
        let mut limits = serde_json::Map::new();
        let (cpus, mem_mb) = (scalar("cpus"), scalar("mem"));
        if cpus > 0.0 {
            // Mesos's shares: 1024 a cpu, at least 2.
            limits.insert(
                "cpu".into(),
                json!({ "shares": ((cpus * 1024.0) as u64).max(2) }),
            );
        }
        if mem_mb > 0.0 {
            limits.insert(
                "memory".into(),
                json!({ "limit": (mem_mb * 1024.0 * 1024.0) as i64 }),
            );
        }
        limits.insert(
            "devices".into(),
            json!([{ "allow": false, "access": "rwm" }]),
        );
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc"}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                   "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                   "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "ro"]}),
        ];
        for file in HOST_NETWORK_FILES {
            if Path::new(file).is_file() {
                mounts.push(json!({"destination": file, "type": "bind", "source": file,
                                   "options": ["rbind", "rprivate", "ro"]}));
            }
        }
        for mount in &launch.mounts {
            let mut options = vec!["rbind", "rprivate"];
            if mount.read_only {
                options.push("ro");
            }
            mounts.push(json!({"destination": mount.target, "type": "bind",
                               "source": mount.source, "options": options}));
        }
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": uid, "gid": gid},
                "args": launch.argv,
                "env": env.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>(),
                "cwd": launch.working_dir,
                "capabilities": capabilities,
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": privileges.no_new_privs,
            },
            "root": {"path": launch.rootfs, "readonly": false},
            "mounts": mounts,
            "linux": {
                // The network stays the executor's (the host's, or the
                // container's CNI namespace).
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}],
                "resources": limits,
                "cgroupsPath": self.cgroups_path,
                "maskedPaths": MASKED_PATHS,
                "readonlyPaths": READONLY_PATHS,
            },
        })
    }

    /// Writes the bundle and answers the command that runs the task in
    /// the foreground.
    pub fn run_command(&self, config: &Value) -> io::Result<tokio::process::Command> {
        std::fs::create_dir_all(&self.bundle)?;
        std::fs::write(self.bundle.join("config.json"), config.to_string())?;
        let mut command = tokio::process::Command::new(&self.runtime.binary);
        command
            .arg("--root")
            .arg(self.runtime.state())
            .arg("run")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg(&self.name);
        Ok(command)
    }

    /// Sends `signal` (a name: `TERM`, `KILL`) to the task; blocks for the
    /// runtime's answer.
    pub fn kill(&self, signal: &str) {
        let killed = self
            .runtime
            .command()
            .args(["kill", &self.name, signal])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !killed.is_ok_and(|s| s.success()) {
            tracing::debug!(container = %self.name, signal, "the runtime could not signal the task (gone?)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command_executor::rootfs::{BindMount, TaskUser};

    fn launch() -> RootfsLaunch {
        RootfsLaunch {
            rootfs: "/var/lib/mesos/provisioner/c1/rootfs".into(),
            argv: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: vec![
                ("PATH".into(), "/bin".into()),
                ("GREETING".into(), "image".into()),
            ],
            working_dir: "/work".into(),
            mounts: vec![BindMount {
                source: "/var/lib/mesos/slaves/s/sandbox".into(),
                target: "/mnt/mesos/sandbox".into(),
                read_only: false,
            }],
            user: Some(TaskUser {
                name: "nobody".into(),
                uid: 65534,
                gid: 65534,
            }),
            privileges: Default::default(),
        }
    }

    fn resources() -> Vec<v1::Resource> {
        ["cpus", "mem"]
            .iter()
            .zip([0.5, 64.0])
            .map(|(name, value)| v1::Resource {
                name: name.to_string(),
                r#type: v1::value::Type::Scalar as i32,
                scalar: Some(v1::value::Scalar { value }),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn the_bundle_runs_the_task_as_the_mesos_containerizer_would() {
        let runtime = OciRuntime {
            binary: "/usr/sbin/runc".into(),
            root: "/run/mesos/oci".into(),
            cgroups_root: "mesos".into(),
        };
        let oci = runtime.launch("c1");
        assert_eq!(oci.name, "mesos-c1");
        assert_eq!(oci.bundle, Path::new("/run/mesos/oci/bundles/c1"));
        let inherited = [
            (
                "MESOS_SANDBOX".to_string(),
                "/mnt/mesos/sandbox".to_string(),
            ),
            ("PATH".to_string(), "/usr/bin".to_string()),
            (OCI_LAUNCH_VAR.to_string(), "{}".to_string()),
            ("MESOS_TASK_ROOTFS_LAUNCH".to_string(), "{}".to_string()),
        ];
        let config = oci.config(&launch(), &resources(), inherited);
        let process = &config["process"];
        assert_eq!(process["args"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(
            process["env"],
            json!([
                "MESOS_SANDBOX=/mnt/mesos/sandbox",
                "PATH=/bin",
                "GREETING=image"
            ])
        );
        assert_eq!(process["cwd"], "/work");
        assert_eq!(process["user"], json!({"uid": 65534, "gid": 65534}));
        assert_eq!(
            config["root"]["path"],
            "/var/lib/mesos/provisioner/c1/rootfs"
        );
        let linux = &config["linux"];
        assert_eq!(linux["resources"]["cpu"]["shares"], 512);
        assert_eq!(linux["resources"]["memory"]["limit"], 64 * 1024 * 1024);
        assert_eq!(linux["cgroupsPath"], "/mesos/c1/task");
        let sandbox = config["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/mnt/mesos/sandbox")
            .unwrap();
        assert_eq!(sandbox["source"], "/var/lib/mesos/slaves/s/sandbox");
        assert_eq!(sandbox["options"], json!(["rbind", "rprivate"]));
        assert_eq!(process["capabilities"]["bounding"], json!(CAPABILITIES));
        assert_eq!(process["noNewPrivileges"], false);
    }

    #[test]
    fn linux_capabilities_sets_become_the_tasks() {
        let runtime = OciRuntime {
            binary: "/usr/sbin/runc".into(),
            root: "/run/mesos/oci".into(),
            cgroups_root: "mesos".into(),
        };
        let mut task = launch();
        // Bounding {CHOWN, NET_RAW}, effective {NET_RAW}, no_new_privs.
        task.privileges = crate::privileges::Privileges {
            bounding: Some(0x2001),
            effective: Some(0x2000),
            no_new_privs: true,
        };
        let config = runtime.launch("c1").config(&task, &resources(), []);
        let capabilities = &config["process"]["capabilities"];
        assert_eq!(
            capabilities["bounding"],
            json!(["CAP_CHOWN", "CAP_NET_RAW"])
        );
        for set in ["effective", "permitted", "inheritable", "ambient"] {
            assert_eq!(capabilities[set], json!(["CAP_NET_RAW"]), "{set}");
        }
        assert_eq!(config["process"]["noNewPrivileges"], true);
        // Root without an effective set gets its bounding set.
        task.user = None;
        task.privileges.effective = None;
        let config = runtime.launch("c1").config(&task, &resources(), []);
        let capabilities = &config["process"]["capabilities"];
        assert_eq!(
            capabilities["effective"],
            json!(["CAP_CHOWN", "CAP_NET_RAW"])
        );
        assert!(capabilities.get("ambient").is_none());
    }

    #[test]
    fn a_missing_runtime_is_named() {
        let error = OciRuntime::resolve("no-such-runtime", Path::new("/run"), "m").unwrap_err();
        assert!(
            error.contains("cannot find the OCI runtime 'no-such-runtime'"),
            "{error}"
        );
        let error = OciRuntime::resolve("/nonexistent/runc", Path::new("/run"), "m").unwrap_err();
        assert!(error.contains("'/nonexistent/runc'"), "{error}");
    }
}
