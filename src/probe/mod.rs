//! Probes: what the hardware and the server were doing while a repetition ran. Samplers
//! (one per source, a closed set: GPUs through `nvidia-smi`, the server's Prometheus
//! `/metrics`, the host's `/proc`) run at `[probes] interval` alongside the repetition and
//! append to `records/<cell>/rep-NNN.probes.jsonl`, one JSON object per sample:
//! `{"ts": <unix seconds>, "probe": "gpu"|"metrics"|"host", "gpu": <index>, "values": {…}}`.
//! `metrics::probes::summarize` turns a file into per-repetition values when results are read, so
//! reports stay a function of what is on disk. A source that cannot be read is noted in the
//! repetition's marker and gives no values (absent, never zero).

pub mod gpu;
pub mod host;
pub mod prometheus;

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::scenario::model::ProbeConfig;

pub use crate::record::{ProbeKind, ProbeSample};

/// Now, in Unix seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A source of samples.
enum Sampler {
    /// `nvidia-smi` with the fields this machine accepts.
    Gpu(&'static [&'static str]),
    /// `GET` the Prometheus text.
    Metrics(reqwest::Client, String),
    /// `/proc`: the server's process group (if exp launched it), exp, the network.
    Host {
        pgid: Option<u32>,
        interface: Option<String>,
        line_rate: Option<f64>,
    },
}

impl Sampler {
    fn name(&self) -> &'static str {
        match self {
            Sampler::Gpu(_) => "gpu",
            Sampler::Metrics(..) => "metrics",
            Sampler::Host { .. } => "host",
        }
    }

    async fn sample(&self) -> Result<Vec<ProbeSample>, String> {
        let one = |probe, values| {
            vec![ProbeSample {
                ts: unix_now(),
                probe,
                gpu: None,
                values,
            }]
        };
        match self {
            Sampler::Gpu(fields) => {
                let readings = gpu::query(fields).await?;
                let ts = unix_now();
                Ok(readings
                    .into_iter()
                    .map(|(i, values)| ProbeSample {
                        ts,
                        probe: ProbeKind::Gpu,
                        gpu: Some(i),
                        values,
                    })
                    .collect())
            }
            Sampler::Metrics(client, url) => {
                let text = fetch(client, url).await?;
                Ok(one(
                    ProbeKind::Metrics,
                    prometheus::extract(&prometheus::parse(&text)),
                ))
            }
            Sampler::Host {
                pgid,
                interface,
                line_rate,
            } => {
                let mut v = BTreeMap::new();
                let mut put = |k: &str, x: Option<f64>| x.map(|x| v.insert(k.to_string(), x));
                put("client_cpu_seconds", host::own_cpu_seconds());
                put("server_cpu_seconds", pgid.and_then(host::group_cpu_seconds));
                if let Some((bytes, speed)) = host::net_bytes(interface.as_deref()) {
                    put("net_bytes", Some(bytes));
                    put("net_line_rate", line_rate.or(speed));
                }
                Ok(one(ProbeKind::Host, v))
            }
        }
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let r = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", crate::backend::error_chain(&e)))?;
    if !r.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", r.status().as_u16()));
    }
    r.text().await.map_err(|e| format!("GET {url}: {e}"))
}

/// Samplers running for one repetition.
pub struct Sampling {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<Vec<String>>>,
}

/// Starts sampling to `path` (truncated). `gpu_fields` is what [`gpu::detect`] found (`None`:
/// no GPU sampling); `server_pgid` the process group of a server exp launched.
pub fn start(
    cfg: &ProbeConfig,
    gpu_fields: Option<&'static [&'static str]>,
    server_pgid: Option<u32>,
    path: PathBuf,
) -> Sampling {
    let mut samplers = Vec::new();
    if let Some(fields) = gpu_fields {
        samplers.push(Sampler::Gpu(fields));
    }
    if let Some(url) = &cfg.metrics_url {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a plain HTTP client builds");
        samplers.push(Sampler::Metrics(client, url.clone()));
    }
    if cfg.host {
        samplers.push(Sampler::Host {
            pgid: server_pgid,
            interface: cfg.net_interface.clone(),
            line_rate: cfg.net_line_rate,
        });
    }
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(run(samplers, cfg.interval, path, stopped));
    Sampling { stop, task }
}

impl Sampling {
    /// Takes a last sample, writes everything durably, and returns one note per source
    /// that never answered (`metrics: GET …: HTTP 404`).
    pub async fn finish(self) -> std::io::Result<Vec<String>> {
        let _ = self.stop.send(());
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
    }
}

async fn run(
    samplers: Vec<Sampler>,
    interval: Duration,
    path: PathBuf,
    mut stopped: oneshot::Receiver<()>,
) -> std::io::Result<Vec<String>> {
    let mut out = BufWriter::new(std::fs::File::create(&path)?);
    let mut first_error: Vec<Option<String>> = vec![None; samplers.len()];
    let mut answered = vec![false; samplers.len()];
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stopped, if !last => last = true,
        }
        for (i, s) in samplers.iter().enumerate() {
            match s.sample().await {
                Ok(samples) => {
                    answered[i] = true;
                    for sample in samples {
                        serde_json::to_writer(&mut out, &sample)?;
                        out.write_all(b"\n")?;
                    }
                }
                Err(e) => {
                    first_error[i].get_or_insert(e);
                }
            }
        }
        if last {
            break;
        }
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(samplers
        .iter()
        .zip(first_error)
        .zip(answered)
        .filter(|(_, ok)| !ok)
        .map(|((s, e), _)| format!("{}: {}", s.name(), e.unwrap_or_default()))
        .collect())
}

/// Reads a probe file back; lines that do not parse are skipped (a run killed mid-write
/// leaves a partial last line).
pub fn read(path: &Path) -> std::io::Result<Vec<ProbeSample>> {
    let file = std::fs::File::open(path)?;
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        if let Ok(s) = serde_json::from_str(&line?) {
            out.push(s);
        }
    }
    Ok(out)
}
