//! Processes of a launched server: spawned in a process group of their own (so the whole
//! tree can be signalled, and the terminal's Ctrl-C reaches exp only), watched for exit, and
//! stopped with SIGTERM to the group, then SIGKILL after the grace period. [`GroupGuard`]
//! kills the group when dropped, so an error path or a panic never leaves the server behind.
//!
//! A `kill -9` of exp runs no guard: for that, each server is spawned with a parent-death
//! signal (Linux `PR_SET_PDEATHSIG`, [`DEATH_SIGNAL`]), which the kernel sends it when the
//! thread that spawned it ends. So every server is spawned from one thread that lives as long
//! as exp (never from a tokio blocking-pool thread, which ends after 10 s idle). The signal
//! reaches the launched process only, not the rest of its group (what a shell wrapper started
//! survives it): `run` also records the process's start time, and `exp run --resume` stops a
//! group left behind ([`crate::server::leftover`]).

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Sent by the kernel to a launched server when exp dies (Linux). SIGTERM rather than
/// SIGKILL: an engine then stops its own workers, as on a normal stop.
pub const DEATH_SIGNAL: libc::c_int = libc::SIGTERM;

/// Signals a whole process group; `false` when no process is left in it.
pub fn signal_group(pgid: u32, signal: libc::c_int) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

/// Live (not zombie) processes of a process group, read from `/proc`. Zombies are left out:
/// they hold no resources, and a container's init may never reap the orphans it adopts.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        // No /proc: fall back to asking the kernel whether the group has anyone.
        return if signal_group(pgid, 0) {
            vec![pgid]
        } else {
            vec![]
        };
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            proc_stat(*pid).is_some_and(|s| s.pgrp == pgid && !matches!(s.state, 'Z' | 'X'))
        })
        .collect()
}

/// The fields of `/proc/<pid>/stat` exp uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcStat {
    /// Process state (`R`, `S`, `Z`, …).
    pub state: char,
    /// Process group id.
    pub pgrp: u32,
    /// The kernel's per-task flags (`PF_*`; field 9).
    pub flags: u64,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// When the process started, in clock ticks after boot: with the pid, it names one
    /// process (a pid alone may have been reused).
    pub start_ticks: u64,
}

/// Reads `/proc/<pid>/stat`.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses one `/proc/<pid>/stat` line. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) pgrp(5) … flags(9) … utime(14) stime(15) …
    // starttime(22).
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        flags: f.get(6)?.parse().ok()?,
        cpu_ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

/// The kernel's `PF_EXITING`: set on a task when it starts to exit, before its files (and
/// sockets) are closed.
const PF_EXITING: u64 = 0x4;

/// True when process `pid` is gone, a zombie, or already exiting. A server whose sockets
/// closed because it is exiting reads as exiting here even before its parent can reap it.
pub fn is_ending(pid: u32) -> bool {
    proc_stat(pid).is_none_or(|s| matches!(s.state, 'Z' | 'X') || s.flags & PF_EXITING != 0)
}

/// Describes how a process ended: `exit status: 2`, `signal: 9 (SIGKILL)`.
pub fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status: {code}"),
        (None, Some(sig)) => format!("signal: {sig} ({})", signal_name(sig)),
        _ => status.to_string(),
    }
}

fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGKILL => "SIGKILL",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// A spawned command in its own process group, with its exit watched.
pub(crate) struct Spawned {
    /// Process id, also the process group id.
    pub pid: u32,
    /// `Some(description)` once the process has exited (it is reaped by a watcher task).
    pub exit: watch::Receiver<Option<String>>,
}

/// Spawns `argv` with `env` in `cwd`, stdout and stderr appended to `log`, stdin closed, in
/// a new process group, with [`DEATH_SIGNAL`] as its parent-death signal. Never through a
/// shell (unless `argv` is `sh -c …`). Must be called within a tokio runtime.
pub(crate) fn spawn(
    argv: &[String],
    env: &[(String, String)],
    cwd: Option<&Path>,
    log: &std::fs::File,
) -> std::io::Result<Spawned> {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .process_group(0)
        .kill_on_drop(false);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    die_with_exp(&mut cmd);
    let runtime = tokio::runtime::Handle::current();
    let mut child = on_spawner_thread(move || {
        let _entered = runtime.enter();
        cmd.spawn()
    })?;
    let pid = child.id().expect("a just-spawned child has a pid");
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let text = match child.wait().await {
            Ok(status) => describe_exit(&status),
            Err(e) => format!("unknown ({e})"),
        };
        let _ = tx.send(Some(text));
    });
    Ok(Spawned { pid, exit: rx })
}

/// Asks the kernel to send the child [`DEATH_SIGNAL`] when its parent thread ends; a child
/// whose parent already ended before that (exp died while it forked) does not start.
#[cfg(target_os = "linux")]
fn die_with_exp(cmd: &mut tokio::process::Command) {
    // SAFETY: getpid(2) has no preconditions.
    let exp = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the child between fork and exec; it calls only
    // async-signal-safe functions (prctl, getppid) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, DEATH_SIGNAL as libc::c_ulong) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != exp {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_exp(_cmd: &mut tokio::process::Command) {}

/// Runs `job` on the one thread that spawns servers, which lives until exp exits: the
/// parent-death signal fires when the spawning *thread* ends, so a server spawned from a
/// short-lived thread would be signalled long before exp exits. Where that thread cannot be
/// started, the job runs here.
fn on_spawner_thread<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> T {
    type Job = Box<dyn FnOnce() + Send>;
    static SPAWNER: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("exp-spawner".into())
            .spawn(move || rx.into_iter().for_each(|job| job()));
        thread.ok().map(|_| tx)
    });
    let Some(spawner) = spawner else {
        return job();
    };
    let (done, result) = std::sync::mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = done.send(job());
    });
    if let Err(returned) = spawner.send(job) {
        // The spawner thread is gone (a job panicked on it): run the job here.
        (returned.0)();
    }
    result
        .recv()
        .expect("a job that does not panic reports its result")
}

/// Kills a process group (and runs its stop command) when dropped while armed: the backstop
/// for errors, panics and interruptions. A graceful stop disarms it.
#[derive(Debug)]
pub(crate) struct GroupGuard {
    pub pgid: u32,
    pub stop_command: Option<Vec<String>>,
    pub armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(argv) = &self.stop_command {
            run_blocking(argv, Duration::from_secs(10));
        }
        signal_group(self.pgid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !group_members(self.pgid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs a command to completion or `limit` (then kills it), ignoring its output.
fn run_blocking(argv: &[String], limit: Duration) {
    let Ok(mut child) = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return;
    };
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs a command with a time limit; its combined output is returned when it succeeds.
pub(crate) async fn run_for_output(
    argv: &[String],
    env: &[(String, String)],
    cwd: Option<&Path>,
    limit: Duration,
) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    match tokio::time::timeout(limit, cmd.output()).await {
        Err(_) => Err(format!("`{}` did not finish within {limit:?}", argv[0])),
        Ok(Err(e)) => Err(format!("cannot run `{}`: {e}", argv[0])),
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into()),
        Ok(Ok(out)) => Err(format!(
            "`{}` failed ({})",
            argv[0],
            describe_exit(&out.status)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 25 0 0 20 0 3 0 100 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.state, s.pgrp, s.flags, s.cpu_ticks, s.start_ticks),
            ('S', 4242, 4194560, 175, 100)
        );
        assert_eq!(s.flags & PF_EXITING, 0);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn a_running_process_is_not_ending_and_a_reaped_one_is() {
        assert!(!is_ending(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(is_ending(pid));
    }
}
