//! Validated `[server]`, `[probes]` and `[cost]` of one cell: how to launch, wait for, reset
//! and stop the inference server; what to sample while a repetition runs; what a GPU-hour
//! costs. Built by `Scenario::resolve` (templates rendered with the cell's variables and the
//! port); the server lifecycle itself lives in `crate::server`.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

/// When a launched server is stopped and a fresh one started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Relaunch when the rendered command, environment or directory changes, and at every
    /// repetition round (default): launches = rounds × configurations.
    PerCell,
    /// A fresh instance for every repetition (an independent sample of the instance too).
    PerRepetition,
    /// An external, already running server: nothing is launched or stopped.
    Never,
}

/// The scenario spelling (`per-cell`, `per-repetition`, `never`).
impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RestartPolicy::PerCell => "per-cell",
            RestartPolicy::PerRepetition => "per-repetition",
            RestartPolicy::Never => "never",
        })
    }
}

/// `[server] port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortChoice {
    /// Always this port.
    Fixed(u16),
    /// A free port picked for every launch (`port = "auto"`, the default).
    Auto,
}

/// What a server must do before it counts as ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// `GET` this URL until it answers 2xx.
    Url(String),
    /// Wait for this text in the server's output (stdout and stderr).
    Log(LogPattern),
}

/// `ready_log`: a plain substring, or `{ regex = "…" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPattern {
    /// Appears verbatim in one line.
    Substring(String),
    /// A regular expression (Rust `regex` syntax) that matches one line.
    Regex(String),
}

/// `[server]`, rendered for one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Program and arguments (`["sh", "-c", text]` for `shell = true`); `None` only for
    /// `restart = "never"`.
    pub command: Option<Vec<String>>,
    /// Run after SIGTERM is due, for launchers that outlive their process (`docker stop …`).
    pub stop_command: Option<Vec<String>>,
    /// Prints the engine's version (first non-empty line of its standard output).
    pub version_command: Option<Vec<String>>,
    /// Extra environment of the server, in file order (values rendered).
    pub env: Vec<(String, String)>,
    /// Working directory (relative paths are from the scenario file's directory).
    pub cwd: Option<PathBuf>,
    /// Port policy; `None` only for `restart = "never"` without a port.
    pub port: Option<PortChoice>,
    /// The port the templates were rendered with: `None` while an automatic port is not yet
    /// picked (plans show `<port>` instead).
    pub bound_port: Option<u16>,
    /// Readiness probe.
    pub ready: Readiness,
    /// Longest wait for readiness (default 10 min).
    pub ready_timeout: Duration,
    /// Requests sent and discarded once the server is ready (per launch; `[workload] warmup`
    /// is per repetition and comes on top).
    pub warmup_requests: u32,
    /// Time between SIGTERM and SIGKILL (default 30 s).
    pub stop_grace: Duration,
    /// When to relaunch.
    pub restart: RestartPolicy,
    /// `POST` here before every repetition but the first of a launch (e.g. vLLM's
    /// `/reset_prefix_cache`).
    pub reset_url: Option<String>,
}

/// The rendered command, environment and directory of a launch: cells with equal keys share
/// a server configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LaunchKey {
    /// Program and arguments.
    pub command: Option<Vec<String>>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
}

/// The text standing for an automatic port that is not picked yet.
pub const PORT_PLACEHOLDER: &str = "<port>";

impl ServerConfig {
    /// What makes two cells share a launch: the command, the environment and the directory.
    pub fn launch_key(&self) -> LaunchKey {
        LaunchKey {
            command: self.command.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
        }
    }

    /// True when exp starts and stops this server.
    pub fn launched(&self) -> bool {
        self.command.is_some() && self.restart != RestartPolicy::Never
    }
}

/// `[probes] gpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuProbe {
    /// Never sample GPUs.
    Off,
    /// Sample with `nvidia-smi`; a missing `nvidia-smi` is an error.
    On,
    /// Sample when `nvidia-smi` is present and answers (default).
    Auto,
}

/// `[probes]`, rendered for one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    /// Time between samples (default 1 s).
    pub interval: Duration,
    /// GPU sampling through `nvidia-smi`.
    pub gpu: GpuProbe,
    /// The server's Prometheus endpoint; `None` when turned off (`metrics_url = false`).
    pub metrics_url: Option<String>,
    /// CPU of the server's process tree and of exp, network bytes (default true).
    pub host: bool,
    /// Network interface to watch (`/proc/net/dev`); every non-loopback one when `None`.
    pub net_interface: Option<String>,
    /// The interface's line rate in bits per second (for `net_util`); read from
    /// `/sys/class/net/<if>/speed` when `None`.
    pub net_line_rate: Option<f64>,
}

/// `[cost]` with the cell's GPU count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostConfig {
    /// Price of one GPU-hour.
    pub gpu_hour: f64,
    /// GPUs of the deployment (`[target] gpus`, default `tp`).
    pub gpus: NonZeroU32,
}

pub use crate::secrets::is_secret_name;

/// Text written in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// A command line with the values of secret-looking options hidden (`--api-key X`,
/// `--hf-token=X`), for manifests, plans and messages.
pub fn redacted_command(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for arg in argv {
        if hide_next {
            out.push(REDACTED.to_string());
            hide_next = false;
            continue;
        }
        match arg.strip_prefix('-').map(|a| a.trim_start_matches('-')) {
            Some(opt) if is_secret_name(opt.split('=').next().unwrap_or("")) => {
                match arg.split_once('=') {
                    Some((name, _)) => out.push(format!("{name}={REDACTED}")),
                    None => {
                        out.push(arg.clone());
                        hide_next = true;
                    }
                }
            }
            _ => out.push(arg.clone()),
        }
    }
    out
}

/// An environment with the values of secret-looking names hidden.
pub fn redacted_env(env: &[(String, String)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| {
            let v = if is_secret_name(k) { REDACTED } else { v };
            (k.clone(), v.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_commands_and_environments_are_hidden() {
        let argv: Vec<String> = [
            "vllm",
            "serve",
            "m",
            "--api-key",
            "sk-1",
            "--hf-token=hf_2",
            "--port",
            "80",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            redacted_command(&argv),
            [
                "vllm",
                "serve",
                "m",
                "--api-key",
                REDACTED,
                "--hf-token=<redacted>",
                "--port",
                "80"
            ]
        );
        let env = vec![
            ("HF_TOKEN".to_string(), "hf_x".to_string()),
            ("CUDA_VISIBLE_DEVICES".to_string(), "0,1".to_string()),
        ];
        assert_eq!(redacted_env(&env)[0].1, REDACTED);
        assert_eq!(redacted_env(&env)[1].1, "0,1");
    }
}
