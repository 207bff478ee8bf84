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

#[test]
#[ignore = "a release-mode benchmark: cargo test --release --test sim_serve_bench -- --ignored --nocapture"]
fn thousand_streams_keep_up_with_the_simulated_engine() {
    let streams = knob("EXP_BENCH_STREAMS", 1000) as u32;
    let secs = knob("EXP_BENCH_SECS", 20);
    let warmup = knob("EXP_BENCH_WARMUP_SECS", 5);
    let tp = knob("EXP_BENCH_TP", 2) as u32;
    let output = knob("EXP_BENCH_OUTPUT", 256);
    let prompt_words = knob("EXP_BENCH_PROMPT", 32) as usize;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (server_cpus, client_cpus): (Vec<usize>, Vec<usize>) = if cpus >= 4 {
        (vec![0, 1], (2..cpus).collect())
    } else {
        (vec![], vec![])
    };
    let shared = server_cpus.is_empty();
    let fifo = knob("EXP_BENCH_FIFO", 0) == 1;
    println!(
        "{streams} streams, {secs} s ({warmup} s warm-up), Llama-3.1-8B ideal on {tp} × H100, output ≈{output}, prompt {prompt_words} words; {cpus} CPUs, {}",
        if shared {
            "server and clients share every CPU (clients at nice 19)"
        } else {
            "server pinned to CPUs 0-1, clients to the rest"
        }
    );
    if fifo {
        println!("server threads at real-time priority (SCHED_FIFO 1)");
    }
    // With no CPUs to spare, the clients run at the lowest priority so that they read in the
    // server's idle time rather than delaying its writes.
    let client_nice = if shared { 19 } else { 0 };
    let server_rt = runtime("sim-server", 2, server_cpus, 0, fifo);
    let client_threads = client_cpus.len().clamp(2, 8);
    let client_rt = runtime(
        "bench-client",
        client_threads,
        client_cpus,
        client_nice,
        false,
    );
    // Spawned from a server worker so the engine thread inherits the server's CPUs.
    let srv = server_rt
        .block_on(server_rt.spawn(spawn_sim(
            "127.0.0.1:0".parse().unwrap(),
            config(streams, tp),
        )))
        .unwrap()
        .unwrap();
    let addr = srv.addr();
    let tokens = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let prompt = vec!["w"; prompt_words].join(" ");
    let clients: Vec<_> = (0..streams as u64)
        .map(|i| {
            // Output lengths spread over [output/2, 3·output/2) so streams do not finish in
            // lockstep.
            let max_tokens = output / 2 + (i * 7919) % output.max(1);
            let task = client(addr, prompt.clone(), max_tokens, until, tokens.clone());
            client_rt.spawn(task)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(warmup));
    let (t0, s0, c0, cpu0) = (
        Instant::now(),
        srv.stats(),
        tokens.load(Relaxed),
        cpu_ns(&GROUPS),
    );
    report("after warm-up", &s0);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let (t1, s1, c1, cpu1) = (
        Instant::now(),
        srv.stats(),
        tokens.load(Relaxed),
        cpu_ns(&GROUPS),
    );
    let requests: u64 = client_rt.block_on(async {
        let mut total = 0;
        for c in clients {
            total += c.await.unwrap();
        }
        total
    });
    let end = srv.stats();
    report("end", &end);
    let window = (t1 - t0).as_secs_f64();
    let server_rate = (s1.generation_tokens - s0.generation_tokens) as f64 / window;
    let client_rate = (c1 - c0) as f64 / window;
    let steps_rate = (s1.steps - s0.steps) as f64 / window;
    println!(
        "measured window {window:.1} s: {server_rate:.0} tokens/s written by the server, {client_rate:.0} tokens/s read by the clients, {steps_rate:.0} steps/s ({:.0} tokens/step), {requests} requests completed",
        (s1.generation_tokens - s0.generation_tokens) as f64 / (s1.steps - s0.steps).max(1) as f64,
    );
    let written = (s1.generation_tokens - s0.generation_tokens).max(1) as f64;
    for (i, group) in GROUPS.iter().enumerate() {
        let cpu = (cpu1[i] - cpu0[i]) as f64;
        println!(
            "CPU of {group} threads: {:.2} cores, {:.2} µs per token",
            cpu / 1e9 / window,
            cpu / 1e3 / written
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.trim());
    println!(
        "emission lag over the whole run ({} tokens): p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}, mean {:?}",
        end.lag.count, end.lag.p50, end.lag.p99, end.lag.p999, end.lag.max, end.lag.mean
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let p99_ms = end.lag.p99.as_secs_f64() * 1e3;
    println!(
        "targets: ≥ 100000 tokens/s: {} ({server_rate:.0}); {streams} concurrent streams: {} ({} running at the end of warm-up); p99 emission lag < 2 ms: {} ({p99_ms:.2} ms, {:.1}× the target)",
        verdict(server_rate >= 100_000.0),
        verdict(s0.running + s0.waiting >= u64::from(streams) * 9 / 10),
        s0.running,
        verdict(p99_ms < 2.0),
        p99_ms / 2.0,
    );
    assert_eq!(end.aborted, 0, "no client went away");
    assert!(
        requests >= u64::from(streams),
        "every stream completed a request"
    );
    drop(srv);
}
