//! Processes of the benchmark: `exp serve --fixed` and `exp run`, each pinned to its own core,
//! with the CPU time and peak memory the kernel accounted to each.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The `exp` binary cargo built for this benchmark.
pub const EXP: &str = env!("CARGO_BIN_EXE_exp");

/// Which cores the client and the server run on (`None`: unpinned, a 1-core machine).
#[derive(Debug, Clone, Copy)]
pub struct Cores {
    pub client: Option<usize>,
    pub server: Option<usize>,
}

impl Cores {
    /// The first two cores this process may use: client on the first, server on the second.
    pub fn pick() -> Cores {
        let cpus = allowed_cpus();
        match cpus.as_slice() {
            [a, b, ..] => Cores {
                client: Some(*a),
                server: Some(*b),
            },
            _ => Cores {
                client: None,
                server: None,
            },
        }
    }

    pub fn describe(&self) -> String {
        match (self.client, self.server) {
            (Some(c), Some(s)) => format!("client on core {c}, server on core {s}"),
            _ => "one core: client and server share it".into(),
        }
    }
}

fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the cpu_set_t we own.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Run the benchmark's processes under `SCHED_FIFO` (`LOADGEN_RT=1`): on a machine busy with
/// other work this keeps other processes from delaying them, as an idle machine would.
pub static REALTIME: AtomicBool = AtomicBool::new(false);

/// Makes `cmd` run on `core` only (and at real-time priority under `LOADGEN_RT`).
pub fn pin(cmd: &mut Command, core: Option<usize>) {
    let realtime = REALTIME.load(Ordering::Relaxed);
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // async-signal-safe functions on memory it owns.
    unsafe {
        cmd.pre_exec(move || place_current(core, realtime));
    }
}

/// Applies a core and the scheduling class to the calling thread (or process, before exec).
pub fn place_current(core: Option<usize>, realtime: bool) -> std::io::Result<()> {
    // SAFETY: both calls read structs we own and change only the calling thread.
    unsafe {
        if let Some(core) = core {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(core, &mut set);
            let size = std::mem::size_of::<libc::cpu_set_t>();
            if libc::sched_setaffinity(0, size, &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if realtime {
            let param = libc::sched_param { sched_priority: 10 };
            if libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// What the kernel accounted to a finished child.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub peak_rss_mb: f64,
    pub wall_seconds: f64,
    pub success: bool,
}

/// Waits for `child` and returns its CPU time and peak resident memory (`wait4`).
pub fn wait_with_usage(child: Child, started: Instant) -> Usage {
    let mut status = 0;
    // SAFETY: wait4 writes the status and rusage we own; the child is ours and not yet
    // waited for (std's Child is not used to wait afterwards).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(rc, pid, "wait4 failed");
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        cpu_seconds: tv(ru.ru_utime) + tv(ru.ru_stime),
        peak_rss_mb: ru.ru_maxrss as f64 / 1024.0,
        wall_seconds: started.elapsed().as_secs_f64(),
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    }
}

/// CPU seconds a running process has used so far (`/proc/PID/stat`).
pub fn cpu_of(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// The 1-minute load average.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A running `exp serve --fixed`; killed if dropped without [`Server::stop`] (a failed part).
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub truth_log: Option<PathBuf>,
}

impl Server {
    /// Starts `exp serve --fixed SPEC` on a free port, pinned to `core`, and waits until it
    /// answers.
    pub fn start(spec: &str, core: Option<usize>, dir: &Path, truth: bool) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let truth_log = truth.then(|| dir.join(format!("truth-{port}.jsonl")));
        let mut cmd = Command::new(EXP);
        cmd.args(["serve", "--fixed", spec, "--port", &port.to_string()]);
        if let Some(path) = &truth_log {
            cmd.arg("--truth-log").arg(path);
        }
        let log = std::fs::File::create(dir.join(format!("server-{port}.log"))).expect("log");
        cmd.stdout(Stdio::null()).stderr(log);
        pin(&mut cmd, core);
        let child = cmd.spawn().expect("exp serve starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "exp serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child: Some(child),
            addr,
            truth_log,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Stops the server (Ctrl-C), letting it write its truth log; returns its CPU seconds.
    pub fn stop(mut self) -> Usage {
        let child = self.child.take().expect("stopped once");
        let started = Instant::now();
        // SAFETY: signals our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        wait_with_usage(child, started)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `exp run` on `scenario` pinned to `core`; returns its usage and the run directory.
pub fn exp_run(scenario: &str, core: Option<usize>, dir: &Path, name: &str) -> (Usage, PathBuf) {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, scenario).expect("scenario written");
    let out = dir.join(format!("runs-{name}"));
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
    let mut cmd = Command::new(EXP);
    cmd.arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .arg("--no-progress")
        .stdout(Stdio::null())
        .stderr(log);
    pin(&mut cmd, core);
    let started = Instant::now();
    let usage = wait_with_usage(cmd.spawn().expect("exp run starts"), started);
    if !usage.success {
        let mut text = String::new();
        let _ = std::fs::File::open(dir.join(format!("{name}.log")))
            .and_then(|mut f| f.read_to_string(&mut text));
        panic!("exp run {name} failed:\n{text}");
    }
    let run_dir = std::fs::read_dir(out.join(name))
        .expect("run directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .next()
        .expect("one run");
    (usage, run_dir)
}
