//! `cargo bench --bench loadgen`: is exp's load generator ever the bottleneck? (issue 7)
//!
//! Every part runs `exp serve --fixed` and `exp run` as separate processes, the client pinned
//! to the first core this process may use and the server to the second, so the kernel's CPU
//! and memory accounting (`wait4`, `/proc/PID/stat`) separates them, and a 10,000-stream run
//! gets a full open-file limit in each process. Timing accuracy compares the client's records
//! with the server's `--truth-log` (when it handed each first and last token to its HTTP
//! layer): both are on `CLOCK_MONOTONIC`, which processes on one host share.
//!
//! Parts: (a) accuracy at 2 req/s, (b) accuracy and schedule at 200 req/s, (c) capacity
//! against an instant server, (d) that server alone under `wrk`, (e) 10,000 concurrent
//! streams, (f) the simulated engine. `LOADGEN_QUICK=1` runs a short version.

mod parts;
mod plain;
mod procs;
mod table;
mod truth;

/// Sizes of the parts (full or quick).
pub struct Sizes {
    light: u64,
    loaded: u64,
    capacity: u64,
    wrk_seconds: u64,
    streams: u64,
    sim: u64,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                light: 10,
                loaded: 600,
                capacity: 1000,
                wrk_seconds: 3,
                streams: 2000,
                sim: 50_000,
            }
        } else {
            Sizes {
                light: 60,
                loaded: 3000,
                capacity: 5000,
                wrk_seconds: 10,
                streams: 10_000,
                sim: 200_000,
            }
        }
    }
}

fn flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v != "0")
}

fn main() {
    let quick = flag("LOADGEN_QUICK");
    let sizes = Sizes::new(quick);
    // Children inherit the raised limit; each also raises its own.
    exp::fdlimit::raise();
    let cores = procs::Cores::pick();
    let realtime = flag("LOADGEN_RT");
    procs::REALTIME.store(realtime, std::sync::atomic::Ordering::Relaxed);
    // LOADGEN_DIR keeps the run directories, server logs and truth logs for a closer look.
    let kept = std::env::var_os("LOADGEN_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().expect("temp dir");
    let d = match &kept {
        Some(path) => {
            std::fs::create_dir_all(path).expect("LOADGEN_DIR");
            path.as_path()
        }
        None => temp.path(),
    };
    let rt = if realtime {
        ", SCHED_FIFO priority 10"
    } else {
        ""
    };
    let short = if quick { " (quick)" } else { "" };
    println!(
        "exp load generator benchmark{rt}{short}: {}",
        cores.describe()
    );
    let mut rows = Vec::new();
    let mut loads = Vec::new();
    // LOADGEN_PARTS=b,c runs only those parts.
    let only = std::env::var("LOADGEN_PARTS").ok();
    let mut step = |name: &str, f: &mut dyn FnMut() -> Vec<table::Row>| {
        let letter = name.trim_matches(|c| c == '(' || c == ')');
        if only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|p| p.trim() == letter))
        {
            return;
        }
        let load = procs::load_average();
        eprintln!("{name}… (load average {load})");
        let started = std::time::Instant::now();
        rows.extend(f());
        eprintln!("  {:.1} s", started.elapsed().as_secs_f64());
        loads.push(format!("{name} {load}"));
    };
    step("(a)", &mut || {
        parts::accuracy("(a) light load", "light", 2.0, sizes.light, cores, d)
    });
    step("(b)", &mut || {
        parts::accuracy("(b) under load", "loaded", 200.0, sizes.loaded, cores, d)
    });
    step("(c)", &mut || parts::capacity(&sizes, cores, d));
    step("(d)", &mut || parts::reference_server(&sizes, cores, d));
    step("(e)", &mut || parts::concurrency(&sizes, cores, d));
    step("(f)", &mut || parts::simulator(sizes.sim));
    println!("\n{}", table::render(&rows));
    println!(
        "load average (1, 5, 15 min) at the start of each part: {}",
        loads.join("; ")
    );
}
