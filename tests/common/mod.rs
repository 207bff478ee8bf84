//! Helpers shared by the binary-level tests: run the built `exp` with a deadline, find the
//! run directory it made, read its files. Every test runs `exp` from the crate root, so paths
//! in messages are the relative ones a user would type (`tests/fixtures/cli/...`).

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

/// Generous: the machine that runs these may be small and busy.
pub const DEADLINE: Duration = Duration::from_secs(240);

/// The crate root, where `exp` runs.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `exp` with the given arguments, run from the crate root.
pub fn exp<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_exp"));
    cmd.args(args).current_dir(root());
    cmd
}

/// What a finished `exp` said.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The exit code (panics if a signal ended the process).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("exp was ended by a signal: {self:?}"))
    }

    /// Asserts the exit code, showing both streams when it differs.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "exit status {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The run directory named on stderr (`run directory: <path>`).
    pub fn run_dir(&self) -> PathBuf {
        run_dir_from(&self.stderr)
    }
}

/// The run directory named in `exp run`'s stderr.
pub fn run_dir_from(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("run directory: "))
        .unwrap_or_else(|| panic!("no `run directory:` line in stderr:\n{stderr}"));
    let path = PathBuf::from(line);
    if path.is_absolute() {
        path
    } else {
        root().join(path)
    }
}

/// A spawned `exp` whose output is collected in the background.
pub struct Running {
    pub child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

/// Spawns `cmd` with both streams captured.
pub fn spawn(mut cmd: Command) -> Running {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("exp starts");
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    Running {
        child,
        stdout: Some(stdout),
        stderr: Some(stderr),
    }
}

impl Running {
    /// Waits for the process, killing it (and failing) after [`DEADLINE`].
    pub fn wait(self) -> Outcome {
        self.wait_within(DEADLINE)
    }

    /// Waits for the process, killing it (and failing) after `deadline`.
    pub fn wait_within(mut self, deadline: Duration) -> Outcome {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                break status;
            }
            if start.elapsed() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("exp did not finish within {deadline:?}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        Outcome {
            status,
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }

    /// Sends `signal` (SIGINT, SIGKILL, …) to the process.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }
}

/// A test that fails half-way must not leave `exp` (a server, a long run) behind.
impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `exp` with these arguments to the end.
pub fn run<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    spawn(exp(args)).wait()
}

/// Waits until `ready()` holds, failing after [`DEADLINE`].
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until a run started in the background has created its directory under
/// `scenario_dir` (`<out>/<scenario name>`), and returns it.
pub fn wait_for_run_dir(scenario_dir: &Path) -> PathBuf {
    wait_until("the run directory", || {
        std::fs::read_dir(scenario_dir).is_ok_and(|mut d| d.next().is_some())
    });
    std::fs::read_dir(scenario_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// A client for exp's own fixed-timing server at `base_url` (model `exp-fixed`, 30 s
/// timeout, `ignore_eos`), as the end-to-end tests drive it.
pub fn fixed_client(
    protocol: exp::backend::Protocol,
    base_url: String,
    max_connections: usize,
) -> exp::backend::Client {
    exp::backend::Client::new(exp::backend::ClientConfig {
        protocol,
        base_url,
        model: "exp-fixed".into(),
        headers: vec![],
        api_key: None,
        timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(10),
        token_timeout: None,
        ignore_eos: true,
        continuous_usage_stats: false,
        max_connections,
    })
    .unwrap()
}

/// A fixture path relative to the crate root.
pub fn fixture(name: &str) -> String {
    format!("tests/fixtures/cli/{name}")
}

/// Reads a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads a text file.
pub fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The planned (cell id, round) slots of a run, from its manifest.
pub fn planned_slots(dir: &Path) -> Vec<(String, u32)> {
    let manifest = json(&dir.join("manifest.json"));
    let reps = manifest["repetitions"].as_u64().unwrap() as u32;
    let cells = manifest["cells"].as_array().unwrap();
    cells
        .iter()
        .flat_map(|c| {
            let id = c["id"].as_str().unwrap().to_string();
            (0..reps).map(move |r| (id.clone(), r))
        })
        .collect()
}

/// `records/<cell>/rep-NNN` without extension.
pub fn rep_stem(dir: &Path, cell: &str, round: u32) -> PathBuf {
    dir.join("records")
        .join(cell)
        .join(format!("rep-{round:03}"))
}

/// The records file of a slot.
pub fn records_path(dir: &Path, cell: &str, round: u32) -> PathBuf {
    rep_stem(dir, cell, round).with_extension("jsonl")
}

/// The completion marker of a slot.
pub fn marker_path(dir: &Path, cell: &str, round: u32) -> PathBuf {
    rep_stem(dir, cell, round).with_extension("done.json")
}

/// Every completion marker under `dir/records` (0 if the folder is not there yet).
pub fn count_markers(dir: &Path) -> usize {
    walk(&dir.join("records"))
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".done.json"))
        .count()
}

/// Every file under `dir`, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A file's bytes and modification time, to prove it was not rewritten.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub bytes: Vec<u8>,
    pub modified: SystemTime,
}

/// Snapshots a file.
pub fn snapshot(path: &Path) -> Snapshot {
    Snapshot {
        bytes: std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        modified: std::fs::metadata(path).unwrap().modified().unwrap(),
    }
}

/// Snapshots the records and marker of every completed slot.
pub fn completed_snapshots(dir: &Path) -> BTreeMap<(String, u32), (Snapshot, Snapshot)> {
    planned_slots(dir)
        .into_iter()
        .filter(|(cell, round)| marker_path(dir, cell, *round).exists())
        .map(|(cell, round)| {
            let records = snapshot(&records_path(dir, &cell, round));
            let marker = snapshot(&marker_path(dir, &cell, round));
            ((cell, round), (records, marker))
        })
        .collect()
}

/// `n` per cell id from `summary.json`.
pub fn summary_n(dir: &Path) -> BTreeMap<String, u64> {
    let summary = json(&dir.join("summary.json"));
    summary["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["n"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The records of one repetition, one JSON value per line.
pub fn records(dir: &Path, cell: &str, round: u32) -> Vec<serde_json::Value> {
    text(&records_path(dir, cell, round))
        .lines()
        .map(|l| serde_json::from_str(l).expect("records are JSON lines"))
        .collect()
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `exp serve --fixed <spec>` on `port`, listening when this returns.
pub fn fixed_server(spec: &str, port: u16) -> Running {
    let server = spawn(exp(["serve", "--fixed", spec, "--port", &port.to_string()]));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_until("exp serve to listen", || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
    server
}

/// `dir/corpus.jsonl`: twelve documents of 20–75 generated words, for perplexity against the
/// referee (the repository ships no text it did not generate).
pub fn generated_corpus(dir: &Path) -> PathBuf {
    let words = [
        "queue", "batch", "token", "cache", "memory", "stream", "engine", "slot", "model",
        "server", "latency", "prompt",
    ];
    let lines: Vec<String> = (0..12)
        .map(|d| {
            let doc: Vec<&str> = (0..20 + 5 * d)
                .map(|i| words[(i * 7 + d) % words.len()])
                .collect();
            serde_json::json!({ "text": doc.join(" ") }).to_string()
        })
        .collect();
    let path = dir.join("corpus.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// `exp run <scenario> --out <out> --no-progress`.
pub fn run_scenario(scenario: &Path, out: &Path) -> Outcome {
    run([
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ])
}

/// Where an engine install script caches its version:
/// `${XDG_CACHE_HOME:-$HOME/.cache}/exp/<name>/<version>`, the version read from the script's
/// `version=` line (one place for it).
pub fn engine_cache(script: &str, name: &str) -> PathBuf {
    let path = root().join(script);
    let version = text(&path)
        .lines()
        .find_map(|l| l.strip_prefix("version=").map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("{} pins `version=`", path.display()));
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"),
            PathBuf::from,
        );
    base.join("exp").join(name).join(version)
}

/// summary.json's cells by label (`max_num_seqs=4 · prefix_caching=on`).
pub fn cells_by_label(summary: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    summary["cells"]
        .as_array()
        .expect("summary.json has cells")
        .iter()
        .map(|c| (c["label"].as_str().unwrap().to_string(), c.clone()))
        .collect()
}

/// `summary.json` without what differs between any two runs (the run id, wall-clock
/// seconds) and a merged run's own addition (its nodes' effects): what a merge of shards must
/// reproduce exactly.
pub fn statistics(dir: &Path) -> serde_json::Value {
    let mut s = json(&dir.join("summary.json"));
    let o = s.as_object_mut().unwrap();
    o.remove("run_id");
    o.remove("nodes");
    for rep in o["repetitions"].as_array_mut().unwrap() {
        rep.as_object_mut().unwrap().remove("wall_seconds");
    }
    s
}
