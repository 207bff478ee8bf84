//! A plain HTTP load generator for the reference server: `wrk` with a POST script when it is
//! installed (Debian: `apt-get install wrk`), else a minimal keep-alive client on raw sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::procs;

/// The request every tool sends: a 256-token stream with usage.
pub const BODY: &str = r#"{"model":"exp-fixed","prompt":"hello world","max_tokens":256,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true}"#;

/// Requests completed and the seconds they took.
pub struct Load {
    pub tool: &'static str,
    pub requests: u64,
    pub seconds: f64,
}

/// Drives `addr` for `seconds` from `core` with keep-alive connections.
pub fn drive(addr: SocketAddr, seconds: u64, core: Option<usize>, dir: &Path) -> Load {
    let wrk = Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if wrk {
        with_wrk(addr, seconds, core, dir)
    } else {
        with_sockets(addr, seconds, core)
    }
}

fn with_wrk(addr: SocketAddr, seconds: u64, core: Option<usize>, dir: &Path) -> Load {
    let script = dir.join("post.lua");
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{BODY}'\n"
    );
    std::fs::write(&script, lua).expect("wrk script");
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c64", &format!("-d{seconds}s", seconds = seconds)])
        .arg("-s")
        .arg(&script)
        .arg(format!("http://{addr}/v1/completions"));
    procs::pin(&mut cmd, core);
    let out = cmd.output().expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // "  30215 requests in 10.08s, 1.21GB read"
    let line = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .unwrap_or_else(|| panic!("unexpected wrk output:\n{text}"));
    let mut words = line.split_whitespace();
    let requests = words.next().and_then(|n| n.parse().ok()).expect("count");
    let secs = words
        .nth(2)
        .and_then(|s| s.trim_end_matches(',').trim_end_matches('s').parse().ok())
        .expect("seconds");
    Load {
        tool: "wrk",
        requests,
        seconds: secs,
    }
}

/// Threads with one keep-alive connection each, sending the request and reading until the
/// chunked body's last chunk. The threads run on `core` (this process's affinity is changed
/// for them and restored).
fn with_sockets(addr: SocketAddr, seconds: u64, core: Option<usize>) -> Load {
    let request = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (stop, done, request) = (stop.clone(), done.clone(), request.clone());
            std::thread::spawn(move || {
                pin_thread(core);
                let mut tcp = TcpStream::connect(addr).expect("connect");
                tcp.set_nodelay(true).expect("nodelay");
                let mut buf = vec![0u8; 1 << 16];
                while !stop.load(Ordering::Relaxed) {
                    tcp.write_all(request.as_bytes()).expect("write");
                    let mut tail = Vec::new();
                    loop {
                        let n = tcp.read(&mut buf).expect("read");
                        assert!(n > 0, "server closed the connection");
                        tail.extend_from_slice(&buf[..n]);
                        if tail.ends_with(b"\r\n0\r\n\r\n") {
                            break;
                        }
                        let keep = tail.len().saturating_sub(8);
                        tail.drain(..keep);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }
    Load {
        tool: "raw-socket client",
        requests: done.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn pin_thread(core: Option<usize>) {
    let realtime = procs::REALTIME.load(std::sync::atomic::Ordering::Relaxed);
    procs::place_current(core, realtime).expect("thread placement");
}
