//! Resource usage of executors for `/monitor/statistics` and `/containers`,
//! read from procfs. Each executor leads a session of its own (see
//! `launcher`), so a container's processes are the processes of that
//! session, forks and daemons included, found in one pass over `/proc`.
//!
//! Cgroup-based isolators report richer numbers; this is what the posix
//! launcher can know. The functions here block: call them off the runtime.

use std::collections::HashMap;
use std::path::Path;

/// Usage summed over one session's processes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub processes: u32,
    pub threads: u32,
    pub cpus_user_time_secs: f64,
    pub cpus_system_time_secs: f64,
    pub mem_rss_bytes: u64,
}

/// The host's clock tick and page size, which scale `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy)]
pub struct Units {
    pub ticks_per_sec: f64,
    pub page_size: u64,
}

impl Units {
    pub fn of_host() -> Self {
        use nix::unistd::{SysconfVar, sysconf};
        let get = |var, default: i64| {
            sysconf(var)
                .ok()
                .flatten()
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        Self {
            // USER_HZ, which procfs reports in, is 100 on every Linux ABI.
            ticks_per_sec: get(SysconfVar::CLK_TCK, 100) as f64,
            page_size: get(SysconfVar::PAGE_SIZE, 4096).unsigned_abs(),
        }
    }
}

/// Sums the usage of the processes of each wanted session. Processes that
/// exit while we read are skipped; a session with no live process is absent.
pub fn sessions_usage(proc_root: &Path, sessions: &[u32], units: Units) -> HashMap<u32, Usage> {
    let mut usage: HashMap<u32, Usage> = HashMap::new();
    if sessions.is_empty() {
        return usage;
    }
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return usage;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(proc_root.join(pid).join("stat")) else {
            continue;
        };
        let Some(process) = parse_stat(&stat) else {
            continue;
        };
        if !sessions.contains(&process.session) {
            continue;
        }
        let total = usage.entry(process.session).or_default();
        total.processes += 1;
        total.threads += process.threads;
        total.cpus_user_time_secs += process.utime as f64 / units.ticks_per_sec;
        total.cpus_system_time_secs += process.stime as f64 / units.ticks_per_sec;
        total.mem_rss_bytes += process.rss_pages * units.page_size;
    }
    usage
}

#[derive(Debug, PartialEq)]
struct ProcStat {
    session: u32,
    utime: u64,
    stime: u64,
    threads: u32,
    rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may itself hold spaces and parentheses, so fields are counted from
/// the last `)`.
fn parse_stat(line: &str) -> Option<ProcStat> {
    let after_comm = &line[line.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name.
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    Some(ProcStat {
        session: field(6)?.parse().ok()?,
        utime: field(14)?.parse().ok()?,
        stime: field(15)?.parse().ok()?,
        threads: field(20)?.parse().ok()?,
        rss_pages: field(24)?.parse::<i64>().ok()?.max(0).unsigned_abs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_line(
        pid: u32,
        comm: &str,
        session: u32,
        utime: u64,
        stime: u64,
        threads: u32,
        rss: u64,
    ) -> String {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime cutime cstime priority nice threads
        // itrealvalue starttime vsize rss ...
        format!(
            "{pid} ({comm}) S 1 {session} {session} 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 {threads} 0 12345 1000000 {rss} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
        )
    }

    #[test]
    fn parses_names_with_spaces_and_parentheses() {
        let line = stat_line(42, "evil) S 1 2 3 (name", 7, 250, 50, 3, 1000);
        assert_eq!(
            parse_stat(&line),
            Some(ProcStat {
                session: 7,
                utime: 250,
                stime: 50,
                threads: 3,
                rss_pages: 1000
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
    }

    #[test]
    fn sums_each_sessions_processes() {
        let proc_root = tempfile::tempdir().unwrap();
        let write = |pid: u32, line: String| {
            let dir = proc_root.path().join(pid.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("stat"), line).unwrap();
        };
        write(100, stat_line(100, "sh", 100, 100, 50, 1, 10));
        write(101, stat_line(101, "sleep", 100, 300, 0, 4, 20));
        write(200, stat_line(200, "other", 200, 1, 1, 1, 1));
        write(300, stat_line(300, "unwanted", 300, 1, 1, 1, 1));
        std::fs::create_dir_all(proc_root.path().join("self")).unwrap();
        std::fs::create_dir_all(proc_root.path().join("400")).unwrap(); // exited: no stat

        let units = Units {
            ticks_per_sec: 100.0,
            page_size: 4096,
        };
        let usage = sessions_usage(proc_root.path(), &[100, 200, 999], units);
        assert_eq!(usage.len(), 2);
        assert_eq!(
            usage[&100],
            Usage {
                processes: 2,
                threads: 5,
                cpus_user_time_secs: 4.0,
                cpus_system_time_secs: 0.5,
                mem_rss_bytes: 30 * 4096,
            }
        );
        assert_eq!(usage[&200].processes, 1);
    }

    #[test]
    fn reads_the_real_procfs() {
        let me = nix::unistd::getsid(None).unwrap().as_raw().unsigned_abs();
        let usage = sessions_usage(Path::new("/proc"), &[me], Units::of_host());
        let mine = usage.get(&me).expect("this test's own session");
        assert!(mine.processes >= 1);
        assert!(mine.mem_rss_bytes > 0);
    }
}
