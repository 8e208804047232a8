//! Starting and destroying executor processes, as Mesos's POSIX launcher
//! does. Each executor leads its own session and process group, so that
//! pymesos's `killpg(0, SIGKILL)` on shutdown cannot reach the agent, and so
//! that destroying an executor can find everything it started: every
//! process of its session. Everything here blocks (fork, file creation,
//! `/proc` scans); run it off the async runtime's worker threads.
//!
//! An executor may also start in new namespaces (`namespaces/pid`,
//! `namespaces/ipc`). It stays the agent's own child either way, so its
//! pid is the host's pid of the executor: the one checkpointed, reaped,
//! found again by recovery and used to destroy its session.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Gid, Pid, Uid, User};

use mesos_plugin_api::isolator::{Bind, Namespace, SeccompFilter};

use crate::command::CommandLine;
use crate::privileges::{Kernel, Privileges};

/// What to start for an executor.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub command: CommandLine,
    /// The working directory; `stdout` and `stderr` are created in it.
    pub sandbox: PathBuf,
    /// Replaces the inherited environment when set.
    pub base_env: Option<BTreeMap<String, String>>,
    /// Added to the environment; `command.env` overrides these.
    pub env: BTreeMap<String, String>,
    /// Run as this user (switching needs the agent to be root).
    pub user: Option<String>,
    /// `cgroup.procs` files the executor joins before it execs.
    pub cgroup_procs: Vec<PathBuf>,
    /// New namespaces the executor starts in.
    pub namespaces: Vec<Namespace>,
    /// Capabilities and `no_new_privs` (`linux/capabilities`, `linux/nnp`).
    pub privileges: Privileges,
    /// Installed as root, last before the user switch (`linux/seccomp`).
    pub seccomp_filters: Vec<SeccompFilter>,
    /// A network namespace to join, by its `nsfs` file (`network/cni`).
    pub network_namespace: Option<PathBuf>,
    /// A UTS namespace of its own with this hostname.
    pub hostname: Option<String>,
    /// Bound over host files in its mount namespace (`(source, target)`);
    /// a missing target is skipped.
    pub file_binds: Vec<(PathBuf, PathBuf)>,
    /// Directories bound in its mount namespace (volumes); a bind that
    /// fails fails the launch.
    pub binds: Vec<Bind>,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("Failed to create '{path}': {source}")]
    File { path: PathBuf, source: io::Error },
    #[error("Failed to open the network namespace '{path}': {source}")]
    NetworkNamespace { path: PathBuf, source: io::Error },
    #[error("'{0}' contains a NUL byte")]
    Nul(String),
    #[error("Failed to execute '{program}': {source}")]
    Spawn { program: String, source: io::Error },
    #[error("Failed to switch to user '{user}': {reason}")]
    User { user: String, reason: String },
    #[error("Failed to start '{program}' in a new PID namespace: {reason}")]
    PidNamespace { program: String, reason: String },
}

/// Starts the executor. The caller reaps the returned child.
pub fn launch(spec: &LaunchSpec) -> Result<tokio::process::Child, LaunchError> {
    let owner = match &spec.user {
        Some(user) => switch_to(user)?,
        None => None,
    };
    let stdout = create_owned(&spec.sandbox.join("stdout"), owner)?;
    let stderr = create_owned(&spec.sandbox.join("stderr"), owner)?;
    if let Some((uid, gid)) = owner {
        chown(&spec.sandbox, uid, gid)?;
    }

    let mut command = spec.command.to_command();
    if let Some(base) = &spec.base_env {
        command.env_clear().envs(base);
    }
    let mut env = spec.env.clone();
    env.extend(spec.command.env.clone());
    command
        .envs(&env)
        .current_dir(&spec.sandbox)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .kill_on_drop(false);
    // The child's set-up runs in this order: what needs root (joining
    // cgroups, creating namespaces, mounting) before the user switch.
    new_session(&mut command);
    join_cgroups(&mut command, &spec.cgroup_procs)?;
    if let Some(path) = &spec.network_namespace {
        join_network_namespace(&mut command, path)?;
    }
    enter_new_namespaces(&mut command, &spec.namespaces);
    if let Some(hostname) = &spec.hostname {
        set_hostname(&mut command, hostname)?;
    }
    if !spec.file_binds.is_empty() || !spec.binds.is_empty() {
        bind_mounts(&mut command, &spec.file_binds, &spec.binds)?;
    }
    if !spec.privileges.is_empty() {
        privileges_before_switch(&mut command, spec.privileges, owner.is_some());
    }
    for filter in &spec.seccomp_filters {
        install_seccomp_filter(&mut command, filter);
    }
    if let Some((uid, gid)) = owner {
        switch_user_before_exec(&mut command, uid, gid);
    }
    if !spec.privileges.is_empty() {
        privileges_after_switch(&mut command, spec.privileges);
    }
    if spec.namespaces.contains(&Namespace::Pid) {
        return spawn_in_new_pid_namespace(&mut command, &spec.command.program);
    }
    command.spawn().map_err(|source| LaunchError::Spawn {
        program: spec.command.program.clone(),
        source,
    })
}

/// Forks the executor as pid 1 of a new PID namespace.
///
/// `unshare(CLONE_NEWPID)` does not move its caller: it makes the caller's
/// next child pid 1 of a new namespace, and a thread can do it only once.
/// So a short-lived thread of the agent unshares and forks: the executor
/// is still a direct child of the agent (which reaps it), and the pid the
/// fork returns is the executor's host pid. (Unsharing in the forked child
/// and forking again would put an intermediate process between the agent
/// and the executor, whose pid the agent would then track instead.) The
/// other threads' children are unaffected; the thread ends after the fork.
fn spawn_in_new_pid_namespace(
    command: &mut tokio::process::Command,
    program: &str,
) -> Result<tokio::process::Child, LaunchError> {
    let error = |reason: String| LaunchError::PidNamespace {
        program: program.to_string(),
        reason,
    };
    // The child is registered with the runtime's reaper, which the new
    // thread has to enter.
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| error(format!("no async runtime to reap the executor: {e}")))?;
    std::thread::scope(|scope| {
        let forker = std::thread::Builder::new()
            .name("pid-namespace-fork".into())
            .spawn_scoped(scope, || {
                let _runtime = runtime.enter();
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID)
                    .map_err(|e| error(format!("unshare: {e}")))?;
                command.spawn().map_err(|source| LaunchError::Spawn {
                    program: program.to_string(),
                    source,
                })
            })
            .map_err(|e| error(format!("cannot start the forking thread: {e}")))?;
        forker
            .join()
            .map_err(|_| error("the forking thread panicked".to_string()))?
    })
}

/// In the child, before exec: new mount and IPC namespaces. A new mount
/// namespace is made private first, so that nothing the container mounts
/// propagates back to the host. In it, a new PID namespace (the child is
/// its pid 1 by now) gets a fresh `/proc`, showing the container's
/// processes only, and a new IPC namespace a fresh `/dev/shm`, where POSIX
/// shared memory lives.
#[allow(unsafe_code)]
fn enter_new_namespaces(command: &mut tokio::process::Command, namespaces: &[Namespace]) {
    use nix::mount::{MsFlags, mount};
    use nix::sched::CloneFlags;
    let mut flags = CloneFlags::empty();
    // PID and IPC namespaces come with a mount namespace, whoever asked
    // for them: what they mount must not land in the host's.
    for namespace in namespaces {
        flags |= match namespace {
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNS,
            // The PID namespace itself is made by the fork (see
            // spawn_in_new_pid_namespace).
            Namespace::Pid => CloneFlags::CLONE_NEWNS,
        };
    }
    if flags.is_empty() {
        return;
    }
    let mount_proc = namespaces.contains(&Namespace::Pid);
    let mount_shm = namespaces.contains(&Namespace::Ipc);
    // SAFETY: the closure runs in the forked child before exec. unshare(2)
    // and mount(2) are plain system calls; their arguments are static C
    // strings, so nothing is allocated and no memory shared with the
    // parent (whose other threads may hold locks) is touched.
    unsafe {
        command.pre_exec(move || {
            nix::sched::unshare(flags).map_err(io::Error::from)?;
            if flags.contains(CloneFlags::CLONE_NEWNS) {
                mount(
                    None::<&std::ffi::CStr>,
                    c"/",
                    None::<&std::ffi::CStr>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&std::ffi::CStr>,
                )
                .map_err(io::Error::from)?;
                if mount_proc {
                    mount(
                        Some(c"proc"),
                        c"/proc",
                        Some(c"proc"),
                        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                        None::<&std::ffi::CStr>,
                    )
                    .map_err(io::Error::from)?;
                }
                if mount_shm {
                    match mount(
                        Some(c"shm"),
                        c"/dev/shm",
                        Some(c"tmpfs"),
                        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                        Some(c"mode=1777"),
                    ) {
                        // A host without /dev/shm has no shared memory
                        // there to hide.
                        Ok(()) | Err(Errno::ENOENT) => {}
                        Err(e) => return Err(io::Error::from(e)),
                    }
                }
            }
            Ok(())
        });
    }
}

/// In the child, as root: the bounding set (see `privileges`).
#[allow(unsafe_code)]
fn privileges_before_switch(
    command: &mut tokio::process::Command,
    privileges: Privileges,
    switching: bool,
) {
    // SAFETY: the closure runs in the forked child before exec and only
    // makes prctl(2) calls with integer arguments on a copied-in value; it
    // allocates nothing.
    unsafe {
        command.pre_exec(move || {
            privileges
                .before_switch(&Kernel, switching)
                .map_err(io::Error::from)
        });
    }
}

/// In the child, after the user switch and last before exec: the
/// effective, permitted, inheritable and ambient sets and `no_new_privs`.
#[allow(unsafe_code)]
fn privileges_after_switch(command: &mut tokio::process::Command, privileges: Privileges) {
    // SAFETY: the closure runs in the forked child before exec and only
    // makes capset(2) and prctl(2) calls on a copied-in value and stack
    // structs; it allocates nothing.
    unsafe {
        command.pre_exec(move || privileges.after_switch(&Kernel).map_err(io::Error::from));
    }
}

/// In the child, before anything else needs root: joins the network
/// namespace at `path`. The file is opened here, close-on-exec, so the
/// child only makes one system call on a descriptor it inherited.
#[allow(unsafe_code)]
fn join_network_namespace(
    command: &mut tokio::process::Command,
    path: &Path,
) -> Result<(), LaunchError> {
    let file = std::fs::File::open(path).map_err(|source| LaunchError::NetworkNamespace {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: the closure runs in the forked child before exec and makes
    // one setns(2) call on a descriptor the closure owns; it allocates
    // nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
        });
    }
    Ok(())
}

/// In the child, as root: a UTS namespace of its own, named `hostname`.
#[allow(unsafe_code)]
fn set_hostname(command: &mut tokio::process::Command, hostname: &str) -> Result<(), LaunchError> {
    let name = std::ffi::CString::new(hostname).map_err(|_| LaunchError::Nul(hostname.into()))?;
    // SAFETY: the closure runs in the forked child before exec and makes
    // unshare(2) and sethostname(2) calls on bytes it owns; it allocates
    // nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS).map_err(io::Error::from)?;
            let bytes = name.as_bytes();
            if nix::libc::sethostname(bytes.as_ptr().cast(), bytes.len()) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    Ok(())
}

/// In the child, in its own (private) mount namespace: each source bound
/// over its target; a target the host lacks is skipped.
#[allow(unsafe_code)]
fn bind_mounts(
    command: &mut tokio::process::Command,
    file_binds: &[(PathBuf, PathBuf)],
    binds: &[Bind],
) -> Result<(), LaunchError> {
    use std::os::unix::ffi::OsStrExt;
    let c = |path: &Path| {
        std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| LaunchError::Nul(path.display().to_string()))
    };
    // (source, target, read only, required)
    let mounts = file_binds
        .iter()
        .map(|(source, target)| Ok((c(source)?, c(target)?, false, false)))
        .chain(
            binds
                .iter()
                .map(|b| Ok((c(&b.source)?, c(&b.target)?, b.read_only, true))),
        )
        .collect::<Result<Vec<_>, LaunchError>>()?;
    // SAFETY: the closure runs in the forked child before exec and makes
    // mount(2) calls on C strings prepared above; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            use nix::mount::{MsFlags, mount};
            let none = None::<&std::ffi::CStr>;
            for (source, target, read_only, required) in &mounts {
                match mount(
                    Some(source.as_c_str()),
                    target.as_c_str(),
                    none,
                    MsFlags::MS_BIND,
                    none,
                ) {
                    Ok(()) => {}
                    Err(Errno::ENOENT) if !required => continue,
                    Err(e) => return Err(io::Error::from(e)),
                }
                // A bind takes the source's flags; read-only is a remount.
                if *read_only {
                    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                    mount(none, target.as_c_str(), none, flags, none).map_err(io::Error::from)?;
                }
            }
            Ok(())
        });
    }
    Ok(())
}

/// In the child, as root, before the user switch: installs a seccomp
/// filter. Root may install one without `no_new_privs` (it has
/// `CAP_SYS_ADMIN`), which Mesos relies on too; so the filter also governs
/// the switch and the exec that follow, and its profile must allow them.
#[allow(unsafe_code)]
fn install_seccomp_filter(command: &mut tokio::process::Command, filter: &SeccompFilter) {
    let program = std::sync::Arc::clone(&filter.program);
    // SAFETY: the closure runs in the forked child before exec; it builds
    // a `sock_fprog` on the stack that points into the program the closure
    // owns (allocated before the fork, alive until exec) and makes one
    // prctl(2) call; it allocates nothing. `SockFilter` is `repr(C)` with
    // the layout of `struct sock_filter`.
    unsafe {
        command.pre_exec(move || {
            let len = u16::try_from(program.len()).map_err(|_| io::Error::from(Errno::E2BIG))?;
            let fprog = nix::libc::sock_fprog {
                len,
                filter: program.as_ptr().cast_mut().cast::<nix::libc::sock_filter>(),
            };
            let mode = nix::libc::c_ulong::from(nix::libc::SECCOMP_MODE_FILTER);
            let fprog_ptr: *const nix::libc::sock_fprog = &fprog;
            if nix::libc::prctl(nix::libc::PR_SET_SECCOMP, mode, fprog_ptr) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
}

/// In the child, last before exec: drops root for the executor's user, as
/// `Command::uid` would, but after the set-up above, which needs root
/// (`Command::uid` switches before any `pre_exec` step).
#[allow(unsafe_code)]
fn switch_user_before_exec(command: &mut tokio::process::Command, uid: Uid, gid: Gid) {
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setgroups(2), setgid(2) and setuid(2) on values copied in; it
    // allocates nothing.
    unsafe {
        command.pre_exec(move || {
            // Root's supplementary groups must not stay with the user; a
            // caller without CAP_SETGID has none worth dropping.
            match nix::unistd::setgroups(&[]) {
                Ok(()) | Err(Errno::EPERM) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
            nix::unistd::setgid(gid).map_err(io::Error::from)?;
            nix::unistd::setuid(uid).map_err(io::Error::from)
        });
    }
}

/// The uid and gid to run as, `None` when the agent already is that user.
fn switch_to(user: &str) -> Result<Option<(Uid, Gid)>, LaunchError> {
    let error = |reason: String| LaunchError::User {
        user: user.to_string(),
        reason,
    };
    let entry = User::from_name(user)
        .map_err(|e| error(e.to_string()))?
        .ok_or_else(|| error("no such user".to_string()))?;
    let current = Uid::effective();
    if entry.uid == current {
        return Ok(None);
    }
    if !current.is_root() {
        return Err(error(
            "the agent is not running as root (see --switch_user)".to_string(),
        ));
    }
    Ok(Some((entry.uid, entry.gid)))
}

fn create_owned(path: &Path, owner: Option<(Uid, Gid)>) -> Result<std::fs::File, LaunchError> {
    let file = std::fs::File::create(path).map_err(|source| LaunchError::File {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some((uid, gid)) = owner {
        chown(path, uid, gid)?;
    }
    Ok(file)
}

fn chown(path: &Path, uid: Uid, gid: Gid) -> Result<(), LaunchError> {
    nix::unistd::chown(path, Some(uid), Some(gid)).map_err(|e| LaunchError::File {
        path: path.to_path_buf(),
        source: io::Error::from(e),
    })
}

#[allow(unsafe_code)]
pub(crate) fn new_session(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setsid(2), which is async-signal-safe, allocates nothing and
    // touches no memory shared with the parent.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
    }
}

/// The child writes itself into each `cgroup.procs` before it execs, so
/// the executor and everything it starts are isolated from their first
/// instruction.
#[allow(unsafe_code)]
fn join_cgroups(
    command: &mut tokio::process::Command,
    procs: &[PathBuf],
) -> Result<(), LaunchError> {
    use std::os::unix::ffi::OsStrExt;
    if procs.is_empty() {
        return Ok(());
    }
    // Allocated here: the child may not allocate between fork and exec.
    let paths: Vec<std::ffi::CString> = procs
        .iter()
        .map(|p| {
            std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|e| LaunchError::File {
                path: p.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, e),
            })
        })
        .collect::<Result<_, _>>()?;
    // SAFETY: the closure runs in the forked child before exec and only
    // calls open(2), write(2) and close(2), which are async-signal-safe,
    // on paths allocated before the fork; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            for path in &paths {
                let fd = nix::fcntl::open(
                    path.as_c_str(),
                    nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(io::Error::from)?;
                // "0" is the writing process itself.
                nix::unistd::write(&fd, b"0").map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
    Ok(())
}

/// Signals a process group (an executor's group id is its pid).
pub fn signal_group(pgid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pgid) else {
        return;
    };
    match killpg(Pid::from_raw(raw), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pgid, %signal, "failed to signal process group: {e}"),
    }
}

/// SIGKILLs every process of the session `sid` (an executor's pid),
/// including task process groups the executor created and processes
/// orphaned by its exit. Returns how many processes were signalled.
pub fn destroy_session(sid: u32) -> usize {
    let Ok(sid) = i32::try_from(sid) else {
        return 0;
    };
    // A member can fork between the scan and the kill; the children of a
    // killed process keep the session, so a few rounds catch them.
    let mut killed = 0;
    for _ in 0..3 {
        let members = session_members(sid);
        if members.is_empty() {
            break;
        }
        for pid in members {
            if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
    }
    killed
}

/// Whether `pid` is a live (not zombie) process leading its own session,
/// as executors started here do. Tells a recovered executor from a pid
/// reused by something else, in most cases.
pub fn leads_session(pid: u32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = text
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X");
    !zombie && session_of(&text).and_then(|s| u32::try_from(s).ok()) == Some(pid)
}

fn session_members(sid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| session_of(&stat))
                .is_some_and(|session| session == sid)
        })
        .collect()
}

/// The session id in a `/proc/<pid>/stat` line. The command name is in
/// parentheses and may itself contain spaces and parentheses, so fields are
/// counted from the last `)`: state, ppid, pgrp, session.
fn session_of(stat: &str) -> Option<i32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// Where `mesos-executor` lives: `--launcher_dir`, else next to this binary.
pub fn launcher_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1;

    fn spec(dir: &Path, script: &str) -> LaunchSpec {
        let info = v1::CommandInfo {
            value: Some(script.into()),
            environment: Some(v1::Environment {
                variables: vec![v1::environment::Variable {
                    name: "FOO".into(),
                    value: Some("from-command".into()),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        LaunchSpec {
            command: CommandLine::from_info(&info),
            sandbox: dir.to_path_buf(),
            base_env: None,
            env: BTreeMap::from([
                ("FOO".to_string(), "from-agent".to_string()),
                ("BAR".to_string(), "bar".to_string()),
            ]),
            user: None,
            cgroup_procs: Vec::new(),
            namespaces: Vec::new(),
            privileges: Privileges::default(),
            seccomp_filters: Vec::new(),
            network_namespace: None,
            hostname: None,
            file_binds: Vec::new(),
            binds: Vec::new(),
        }
    }

    #[tokio::test]
    async fn runs_in_its_sandbox_and_own_session_with_output_in_files() {
        let tmp = tempfile::tempdir().unwrap();
        let script = "echo out; echo err >&2; pwd; echo $FOO $BAR; ps -o sid= -p $$";
        let mut child = launch(&spec(tmp.path(), script)).unwrap();
        let pid = child.id().unwrap();
        assert!(child.wait().await.unwrap().success());
        let out = std::fs::read_to_string(tmp.path().join("stdout")).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "out");
        assert_eq!(
            std::fs::canonicalize(lines[1]).unwrap(),
            std::fs::canonicalize(tmp.path()).unwrap()
        );
        assert_eq!(lines[2], "from-command bar", "CommandInfo.environment wins");
        assert_eq!(
            lines[3].trim(),
            pid.to_string(),
            "the executor leads its own session"
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("stderr")).unwrap(),
            "err\n"
        );
    }

    #[tokio::test]
    async fn base_environment_replaces_the_inherited_one() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = spec(tmp.path(), "echo \"[$HOME]\" $ONLY");
        spec.base_env = Some(BTreeMap::from([("ONLY".to_string(), "this".to_string())]));
        let mut child = launch(&spec).unwrap();
        assert!(child.wait().await.unwrap().success());
        let out = std::fs::read_to_string(tmp.path().join("stdout")).unwrap();
        assert_eq!(out, "[] this\n");
    }

    #[tokio::test]
    async fn destroying_a_session_reaches_other_process_groups() {
        let tmp = tempfile::tempdir().unwrap();
        // The grandchild moves to a process group of its own, as the
        // command executor does with its task.
        let script = "perl -e 'setpgrp(0,0); sleep 60' & echo $! > grandchild; wait";
        let mut child = launch(&spec(tmp.path(), script)).unwrap();
        let sid = child.id().unwrap();
        let grandchild = loop {
            if let Ok(text) = std::fs::read_to_string(tmp.path().join("grandchild"))
                && let Ok(pid) = text.trim().parse::<i32>()
            {
                break pid;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        assert!(destroy_session(sid) >= 1);
        child.wait().await.unwrap();
        // The grandchild was re-parented to init (or a subreaper) and killed.
        for _ in 0..100 {
            let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
            if stat.is_err() || stat.is_ok_and(|s| s.contains(") Z ")) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("process {grandchild} survived the session's destruction");
    }

    #[test]
    fn parses_the_session_from_stat() {
        let stat = "4242 (we (ird) name) S 1 4240 4200 0 -1 4194560 100 0 0 0";
        assert_eq!(session_of(stat), Some(4200));
        assert_eq!(session_of("garbage"), None);
    }

    #[test]
    fn unknown_users_cannot_be_switched_to() {
        let err = switch_to("no-such-user-here").unwrap_err();
        assert!(err.to_string().contains("no such user"), "{err}");
        let me = User::from_uid(Uid::effective()).unwrap().unwrap();
        assert_eq!(switch_to(&me.name).unwrap(), None, "already that user");
    }

    /// Namespaces need root: skipped with the reason otherwise, and a
    /// failure with `CI=true`.
    fn root() -> bool {
        if Uid::effective().is_root() {
            return true;
        }
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "namespace tests need root in CI"
        );
        eprintln!("SKIPPED: creating namespaces needs root");
        false
    }

    async fn read_when_written(path: &Path) -> String {
        for _ in 0..500 {
            if let Ok(text) = std::fs::read_to_string(path)
                && text.ends_with('\n')
            {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{} was never written", path.display());
    }

    #[tokio::test]
    async fn a_pid_namespace_holds_the_executor_as_pid_1_under_its_host_pid() {
        if !root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let script =
            "sleep 1000 & sleep 1000 & echo $$ $(ls /proc | grep -c '^[0-9]') > seen; wait";
        let mut spec = spec(tmp.path(), script);
        spec.namespaces = vec![Namespace::Pid];
        let mut child = launch(&spec).unwrap();
        let pid = child.id().unwrap();
        let seen = read_when_written(&tmp.path().join("seen")).await;
        // Itself, two sleeps and the command substitution's shell, ls and
        // grep: on the host's /proc there would be many more.
        let (me, count) = seen.trim().split_once(' ').unwrap();
        assert_eq!(me, "1", "the executor is pid 1 inside");
        let count: usize = count.parse().unwrap();
        assert!((3..=6).contains(&count), "{count} processes seen");

        // The agent knows it by its host pid: the one it checkpoints,
        // finds again after a restart and destroys the session of.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
        assert_eq!(
            nspid.split_whitespace().collect::<Vec<_>>(),
            vec!["NSpid:", &pid.to_string(), "1"]
        );
        assert!(leads_session(pid));
        assert_ne!(
            std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap(),
            std::fs::read_link("/proc/self/ns/mnt").unwrap(),
            "/proc is mounted in a mount namespace of its own"
        );
        // The host's /proc was not touched by the container's mount.
        assert!(Path::new(&format!("/proc/{}", std::process::id())).exists());

        assert!(destroy_session(pid) >= 1);
        child.wait().await.unwrap();
        assert!(session_members(i32::try_from(pid).unwrap()).is_empty());
    }

    #[tokio::test]
    async fn namespaces_are_made_as_root_before_the_switch_to_the_user() {
        if !root() {
            return;
        }
        let Ok(Some(nobody)) = User::from_name("nobody") else {
            panic!("no user 'nobody' to switch to");
        };
        let tmp = tempfile::tempdir().unwrap();
        let script = "echo $(id -u) $$ $(ls /proc | grep -c '^[0-9]')";
        let mut spec = spec(tmp.path(), script);
        spec.user = Some("nobody".into());
        spec.namespaces = vec![Namespace::Pid, Namespace::Mount, Namespace::Ipc];
        let mut child = launch(&spec).unwrap();
        assert!(child.wait().await.unwrap().success());
        let out = std::fs::read_to_string(tmp.path().join("stdout")).unwrap();
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(words[..2], [nobody.uid.to_string().as_str(), "1"], "{out}");
    }

    #[tokio::test]
    async fn mounts_in_the_container_do_not_propagate_to_the_host() {
        use nix::mount::{MntFlags, MsFlags, mount, umount2};
        if !root() {
            return;
        }
        // A shared mount, as systemd makes `/`: without the container's
        // mounts turned private, a mount under it would reach the host.
        let tmp = tempfile::tempdir().unwrap();
        let shared = tmp.path().join("shared");
        std::fs::create_dir_all(shared.join("inner")).unwrap();
        let none: Option<&str> = None;
        mount(Some(&shared), &shared, none, MsFlags::MS_BIND, none).unwrap();
        mount(none, &shared, none, MsFlags::MS_SHARED, none).unwrap();
        let script = format!(
            "mount -t tmpfs none {0}/inner && touch {0}/inner/made",
            shared.display()
        );
        let mut spec = spec(tmp.path(), &script);
        spec.namespaces = vec![Namespace::Mount];
        let mut child = launch(&spec).unwrap();
        let status = child.wait().await.unwrap();
        let leaked = shared.join("inner/made").exists();
        let _ = umount2(&shared.join("inner"), MntFlags::MNT_DETACH);
        umount2(&shared, MntFlags::MNT_DETACH).unwrap();
        assert!(
            status.success(),
            "{:?}",
            std::fs::read_to_string(tmp.path().join("stderr"))
        );
        assert!(!leaked, "the container's mount propagated to the host");
    }

    #[tokio::test]
    async fn an_ipc_namespace_is_the_executors_own() {
        if !root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let shm = format!("mesos-launcher-test-{}", std::process::id());
        let script = format!("readlink /proc/self/ns/ipc; echo x > /dev/shm/{shm}");
        let mut spec = spec(tmp.path(), &script);
        // The mount namespace for /dev/shm comes along.
        spec.namespaces = vec![Namespace::Ipc];
        let mut child = launch(&spec).unwrap();
        assert!(child.wait().await.unwrap().success());
        let inside = std::fs::read_to_string(tmp.path().join("stdout")).unwrap();
        let host = std::fs::read_link("/proc/self/ns/ipc").unwrap();
        assert!(inside.starts_with("ipc:["), "{inside}");
        assert_ne!(inside.trim(), host.to_str().unwrap());
        assert!(
            !Path::new("/dev/shm").join(&shm).exists(),
            "the executor's /dev/shm is its own"
        );
    }

    /// The capability lines and `NoNewPrivs` of /proc/self/status, as a
    /// command run by the executor (a grandchild) sees them.
    const STATUS_LINES: &str =
        "sh -c \"grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status\"";

    fn status_lines(out: &str) -> BTreeMap<String, String> {
        out.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()
    }

    #[tokio::test]
    async fn capabilities_and_no_new_privs_reach_a_non_root_command() {
        if !root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = spec(tmp.path(), STATUS_LINES);
        spec.user = Some("nobody".into());
        // Bounding {CHOWN, NET_RAW}, effective {NET_RAW}.
        spec.privileges = Privileges {
            bounding: Some(0x2001),
            effective: Some(0x2000),
            no_new_privs: true,
        };
        let mut child = launch(&spec).unwrap();
        let status = child.wait().await.unwrap();
        let out = std::fs::read_to_string(tmp.path().join("stdout")).unwrap();
        let err = std::fs::read_to_string(tmp.path().join("stderr")).unwrap();
        assert!(status.success(), "{out}{err}");
        let seen = status_lines(&out);
        for (set, mask) in [
            ("CapBnd", "0000000000002001"),
            ("CapEff", "0000000000002000"),
            ("CapPrm", "0000000000002000"),
            ("CapInh", "0000000000002000"),
            ("CapAmb", "0000000000002000"),
            ("NoNewPrivs", "1"),
        ] {
            assert_eq!(
                seen.get(set).map(String::as_str),
                Some(mask),
                "{set}: {out}"
            );
        }
    }

    #[tokio::test]
    async fn a_root_command_gets_its_bounding_set() {
        if !root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = spec(tmp.path(), STATUS_LINES);
        spec.privileges = Privileges {
            bounding: Some(0x2001),
            effective: Some(0x1),
            no_new_privs: false,
        };
        let mut child = launch(&spec).unwrap();
        let status = child.wait().await.unwrap();
        let out = std::fs::read_to_string(tmp.path().join("stdout")).unwrap();
        assert!(status.success(), "{out}");
        let seen = status_lines(&out);
        // Root's executables count as having every file capability, so
        // exec gives root the bounding set, as in Mesos.
        assert_eq!(seen["CapBnd"], "0000000000002001", "{out}");
        assert_eq!(seen["CapEff"], "0000000000002001", "{out}");
        assert_eq!(seen["CapInh"], "0000000000000001", "{out}");
        assert_eq!(seen["NoNewPrivs"], "0", "{out}");
    }

    /// A filter from a Docker-format profile, through `linux/seccomp`.
    fn seccomp_filter(profile: &str) -> mesos_plugin_api::isolator::SeccompFilter {
        use mesos_plugin_api::isolator::{ContainerSpec, Isolator, SeccompRequest};
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.json"), profile).unwrap();
        let isolator = mesos_isolators::LinuxSeccomp::new(
            Some(dir.path().into()),
            Some("p.json".into()),
            None,
        )
        .unwrap();
        let spec = ContainerSpec {
            container_id: "c".into(),
            seccomp: SeccompRequest::AgentDefault,
            ..Default::default()
        };
        let mut launch = isolator.prepare(&spec).unwrap();
        launch.seccomp_filters.remove(0)
    }

    #[tokio::test]
    async fn a_seccomp_filter_governs_a_switched_user_in_a_pid_namespace() {
        if !root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let mut spec = spec(
            tmp.path(),
            "echo $$; mkdir d 2>&1; grep ^Seccomp: /proc/self/status",
        );
        spec.user = Some("nobody".into());
        spec.namespaces = vec![Namespace::Pid];
        spec.seccomp_filters = vec![seccomp_filter(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30}]}"#,
        )];
        let mut child = launch(&spec).unwrap();
        let status = child.wait().await.unwrap();
        let out = std::fs::read_to_string(tmp.path().join("stdout")).unwrap();
        assert!(status.success(), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "1", "pid 1 of its namespace: {out}");
        assert!(lines[1].contains("Read-only file system"), "EROFS: {out}");
        assert!(!tmp.path().join("d").exists());
        // 2: SECCOMP_MODE_FILTER.
        assert_eq!(lines[2].split_whitespace().nth(1), Some("2"), "{out}");
    }
}
