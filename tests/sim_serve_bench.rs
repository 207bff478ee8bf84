//! Throughput and emission lag of `exp serve --sim` under many concurrent streams.
//!
//! Ignored by default; run in release:
//! `cargo test --release --test sim_serve_bench -- --ignored --nocapture`.
//!
//! The server runs on its own tokio runtime with 2 worker threads (plus its engine thread);
//! `STREAMS` raw-TCP clients, each a closed loop of streaming completions on one keep-alive
//! connection, run on a second runtime. On a machine with 4 or more CPUs the server's threads
//! are pinned to CPUs 0–1 and the clients' to the rest; on fewer, both share every CPU and the
//! clients' work counts against the server's. The simulated GPU (Llama-3.1-8B, ideal preset,
//! `TP` H100s, every stream in one batch) is chosen to emit more than 100,000 tokens/s, so the
//! server, not the model, sets the pace. Knobs (environment): `EXP_BENCH_STREAMS` (1000),
//! `EXP_BENCH_SECS` (20), `EXP_BENCH_WARMUP_SECS` (5), `EXP_BENCH_TP` (2),
//! `EXP_BENCH_OUTPUT` (mean output tokens, 256), `EXP_BENCH_PROMPT` (words, 32),
//! `EXP_BENCH_FIFO` (1: the server's threads at real-time priority, so that other processes on
//! a shared machine cannot preempt them; needs CAP_SYS_NICE).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use exp::hw::{Deployment, Efficiency, Gpu, ModelConfig};
use exp::serve::sim::{SimServeConfig, SimServerStats, spawn_sim};
use exp::sim::EngineParams;
use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Pins the calling thread to `cpus` (Linux); a no-op when `cpus` is empty.
fn pin(cpus: &[usize]) {
    if cpus.is_empty() {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; the call affects only
    // the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Lowers the calling thread's priority to `nice` (Linux: per thread).
fn renice(nice: i32) {
    // SAFETY: gettid has no preconditions; setpriority on our own thread id only changes its
    // scheduling weight.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice);
    }
}

/// Gives the calling thread real-time priority 1 (`SCHED_FIFO`), so that other processes
/// cannot preempt it; threads it spawns inherit it. Needs CAP_SYS_NICE; says so when refused.
fn realtime() {
    // SAFETY: sched_param is plain data; the call affects only the calling thread.
    let rc = unsafe {
        let param = libc::sched_param { sched_priority: 1 };
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &param)
    };
    if rc != 0 {
        eprintln!("SCHED_FIFO refused: {}", std::io::Error::last_os_error());
    }
}

fn runtime(
    name: &str,
    threads: usize,
    cpus: Vec<usize>,
    nice: i32,
    fifo: bool,
) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .on_thread_start(move || {
            pin(&cpus);
            renice(nice);
            if fifo {
                realtime();
            }
        })
        .build()
        .unwrap()
}

/// CPU time (ns) used so far by this process's threads whose name starts with each prefix,
/// from `/proc/self/task/*/schedstat`.
fn cpu_ns(prefixes: &[&str]) -> Vec<u64> {
    let mut out = vec![0; prefixes.len()];
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let ns: u64 = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        if let Some(i) = prefixes.iter().position(|p| comm.starts_with(p)) {
            out[i] += ns;
        }
    }
    out
}

/// Thread-name prefixes: the server's workers, its engine thread, the clients' workers.
const GROUPS: [&str; 3] = ["sim-server", "exp-sim-engine", "bench-client"];

fn config(streams: u32, tp: u32) -> SimServeConfig {
    let model = ModelConfig::load("llama-3.1-8b").unwrap();
    let gpu = Gpu::load("h100-sxm").unwrap();
    let (w, kv) = (model.dtype, model.default_kv_dtype());
    let deployment = Deployment::new(model, gpu, tp, w, kv, Efficiency::ideal()).unwrap();
    let kv_tokens = deployment.kv_capacity_tokens(0.9).unwrap();
    let mut params = EngineParams::new(streams, 8192, kv_tokens);
    params.noise_cv = 0.0;
    SimServeConfig {
        cost: Arc::new(deployment),
        params,
        seed: 0,
        model: "bench".into(),
    }
}

/// The start of every token frame.
const FRAME: &[u8] = b"data: {";

/// One client: streaming completions back to back on one connection until `until`. Counts
/// token frames (`data: {` events; no usage chunk is asked for) into `tokens`.
async fn client(
    addr: std::net::SocketAddr,
    prompt: String,
    max_tokens: u64,
    until: Instant,
    tokens: Arc<AtomicU64>,
) -> u64 {
    let body = format!(
        r#"{{"model":"bench","prompt":"{prompt}","max_tokens":{max_tokens},"stream":true}}"#
    );
    let request = format!(
        "POST /v1/completions HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.set_nodelay(true).unwrap();
    let (frame, done, end) = (
        memmem::Finder::new(FRAME),
        memmem::Finder::new(b"data: [DONE]"),
        memmem::Finder::new(b"\r\n0\r\n\r\n"),
    );
    let mut buf = vec![0u8; 64 * 1024];
    let mut completed = 0;
    while Instant::now() < until {
        conn.write_all(request.as_bytes()).await.unwrap();
        // The last bytes of the previous read, so a marker split across reads is found.
        let mut carry: Vec<u8> = Vec::new();
        let mut seen_done = false;
        loop {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the server closed the connection");
            let fresh = carry.len();
            carry.extend_from_slice(&buf[..n]);
            // Only matches that end in the new bytes: the others were counted last time.
            let frames = frame
                .find_iter(&carry)
                .filter(|&at| at + FRAME.len() > fresh)
                .count() as u64;
            tokens.fetch_add(frames, Relaxed);
            seen_done |= done.find(&carry).is_some();
            if seen_done && end.find(&carry).is_some() {
                break;
            }
            let keep = carry.len().min(16);
            carry.drain(..carry.len() - keep);
        }
        completed += 1;
    }
    completed
}

fn report(label: &str, s: &SimServerStats) {
    println!(
        "{label}: {} tokens, {} requests finished, {} steps, running {}, waiting {}, lag p50 {:?} p99 {:?} p99.9 {:?} max {:?}",
        s.generation_tokens,
        s.finished,
        s.steps,
        s.running,
        s.waiting,
        s.lag.p50,
        s.lag.p99,
        s.lag.p999,
        s.lag.max
    );
}

/// The benchmark's settings, from the environment.
struct Knobs {
    streams: u32,
    secs: u64,
    warmup: u64,
    tp: u32,
    output: u64,
    prompt_words: usize,
    fifo: bool,
}

impl Knobs {
    fn from_env() -> Self {
        Knobs {
            streams: knob("EXP_BENCH_STREAMS", 1000) as u32,
            secs: knob("EXP_BENCH_SECS", 20),
            warmup: knob("EXP_BENCH_WARMUP_SECS", 5),
            tp: knob("EXP_BENCH_TP", 2) as u32,
            output: knob("EXP_BENCH_OUTPUT", 256),
            prompt_words: knob("EXP_BENCH_PROMPT", 32) as usize,
            fifo: knob("EXP_BENCH_FIFO", 0) == 1,
        }
    }
}

/// The server's and the clients' runtimes: pinned apart on 4+ CPUs; otherwise sharing them,
/// with the clients at the lowest priority so that they read in the server's idle time rather
/// than delaying its writes.
fn runtimes(k: &Knobs) -> (tokio::runtime::Runtime, tokio::runtime::Runtime) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (server_cpus, client_cpus): (Vec<usize>, Vec<usize>) = if cpus >= 4 {
        (vec![0, 1], (2..cpus).collect())
    } else {
        (vec![], vec![])
    };
    let shared = server_cpus.is_empty();
    println!(
        "{} streams, {} s ({} s warm-up), Llama-3.1-8B ideal on {} × H100, output ≈{}, prompt {} words; {cpus} CPUs, {}{}",
        k.streams,
        k.secs,
        k.warmup,
        k.tp,
        k.output,
        k.prompt_words,
        if shared {
            "server and clients share every CPU (clients at nice 19)"
        } else {
            "server pinned to CPUs 0-1, clients to the rest"
        },
        if k.fifo {
            "; server threads at real-time priority (SCHED_FIFO 1)"
        } else {
            ""
        }
    );
    let server = runtime("sim-server", 2, server_cpus, 0, k.fifo);
    let threads = client_cpus.len().clamp(2, 8);
    let nice = if shared { 19 } else { 0 };
    let client = runtime("bench-client", threads, client_cpus, nice, false);
    (server, client)
}

/// Figures at one instant: time, server stats, tokens the clients read, CPU per thread group.
struct Mark {
    at: Instant,
    server: SimServerStats,
    read: u64,
    cpu: Vec<u64>,
}

impl Mark {
    fn take(srv: &exp::serve::sim::SimServerHandle, tokens: &AtomicU64) -> Self {
        Mark {
            at: Instant::now(),
            server: srv.stats(),
            read: tokens.load(Relaxed),
            cpu: cpu_ns(&GROUPS),
        }
    }
}

/// Prints rates over the window between `a` and `b`, the lag over the whole run (`end`), and
/// the verdict on each target.
fn summarize(k: &Knobs, a: &Mark, b: &Mark, end: &SimServerStats, requests: u64) {
    let window = (b.at - a.at).as_secs_f64();
    let written = (b.server.generation_tokens - a.server.generation_tokens).max(1) as f64;
    let steps = (b.server.steps - a.server.steps).max(1) as f64;
    let server_rate = written / window;
    println!(
        "measured window {window:.1} s: {server_rate:.0} tokens/s written by the server, {:.0} tokens/s read by the clients, {:.0} steps/s ({:.0} tokens/step), {requests} requests completed",
        (b.read - a.read) as f64 / window,
        steps / window,
        written / steps,
    );
    for (i, group) in GROUPS.iter().enumerate() {
        let cpu = (b.cpu[i] - a.cpu[i]) as f64;
        println!(
            "CPU of {group} threads: {:.2} cores, {:.2} µs per token",
            cpu / 1e9 / window,
            cpu / 1e3 / written
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.trim());
    let lag = &end.lag;
    println!(
        "emission lag over the whole run ({} tokens): p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}, mean {:?}",
        lag.count, lag.p50, lag.p99, lag.p999, lag.max, lag.mean
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let p99_ms = lag.p99.as_secs_f64() * 1e3;
    let in_engine = a.server.running + a.server.waiting;
    println!(
        "targets: ≥ 100000 tokens/s: {} ({server_rate:.0}); {} concurrent streams: {} ({in_engine} in the engine at the end of warm-up); p99 emission lag < 2 ms: {} ({p99_ms:.2} ms, {:.1}× the target)",
        verdict(server_rate >= 100_000.0),
        k.streams,
        verdict(in_engine >= u64::from(k.streams) * 9 / 10),
        verdict(p99_ms < 2.0),
        p99_ms / 2.0,
    );
}

#[test]
#[ignore = "a release-mode benchmark: cargo test --release --test sim_serve_bench -- --ignored --nocapture"]
fn thousand_streams_keep_up_with_the_simulated_engine() {
    let k = Knobs::from_env();
    let (server_rt, client_rt) = runtimes(&k);
    // Spawned from a server worker so the engine thread inherits the server's CPUs and policy.
    let config = config(k.streams, k.tp);
    let srv = server_rt
        .block_on(server_rt.spawn(spawn_sim("127.0.0.1:0".parse().unwrap(), config)))
        .unwrap()
        .unwrap();
    let tokens = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(k.secs);
    let prompt = vec!["w"; k.prompt_words].join(" ");
    let clients: Vec<_> = (0..u64::from(k.streams))
        .map(|i| {
            // Output lengths spread over [output/2, 3·output/2) so streams do not finish in
            // lockstep.
            let max_tokens = k.output / 2 + (i * 7919) % k.output.max(1);
            let task = client(
                srv.addr(),
                prompt.clone(),
                max_tokens,
                until,
                tokens.clone(),
            );
            client_rt.spawn(task)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(k.warmup));
    let a = Mark::take(&srv, &tokens);
    report("after warm-up", &a.server);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let b = Mark::take(&srv, &tokens);
    let requests: u64 = client_rt.block_on(async {
        let mut total = 0;
        for c in clients {
            total += c.await.unwrap();
        }
        total
    });
    let end = srv.stats();
    report("end", &end);
    summarize(&k, &a, &b, &end, requests);
    assert_eq!(end.aborted, 0, "no client went away");
    assert!(
        requests >= u64::from(k.streams),
        "every stream completed a request"
    );
}
