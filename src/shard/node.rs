//! The machine a run executes on, as recorded in `manifest.json` (`node`): its name and what
//! it is made of, so a merged run can tell its shards' machines apart and say when they
//! differ.

use serde::{Deserialize, Serialize};

/// Name and hardware of the machine that ran a run (or a shard).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Node {
    /// The node's name: `EXP_NODE` when set (the Kubernetes Job sets it to the pod's node),
    /// else Slurm's `SLURMD_NODENAME`, else the host name.
    pub name: String,
    /// CPU model (`model name` in `/proc/cpuinfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
    /// CPUs this process may run on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Total memory in bytes (`MemTotal` in `/proc/meminfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// GPUs as `nvidia-smi -L` names them (empty when it is absent or lists none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<String>,
}

impl Node {
    /// Describes this machine. Every part is best effort: what cannot be read is left out.
    pub fn detect() -> Node {
        Node {
            name: name(),
            cpu_model: cpu_model(),
            cpus: std::thread::available_parallelism()
                .ok()
                .and_then(|n| u32::try_from(n.get()).ok()),
            memory_bytes: memory_bytes(),
            gpus: gpus(),
        }
    }

    /// The hardware, without the name: `2 × AMD EPYC 7B13, 8 GiB, 1 × NVIDIA H100`.
    pub fn hardware_text(&self) -> String {
        let mut parts = Vec::new();
        match (&self.cpus, &self.cpu_model) {
            (Some(n), Some(m)) => parts.push(format!("{n} × {m}")),
            (Some(n), None) => parts.push(format!("{n} CPUs")),
            (None, Some(m)) => parts.push(m.clone()),
            (None, None) => {}
        }
        if let Some(b) = self.memory_bytes {
            parts.push(format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64));
        }
        let mut gpus: Vec<(String, usize)> = Vec::new();
        for g in &self.gpus {
            match gpus.iter_mut().find(|(name, _)| name == g) {
                Some((_, n)) => *n += 1,
                None => gpus.push((g.clone(), 1)),
            }
        }
        parts.extend(gpus.into_iter().map(|(g, n)| format!("{n} × {g}")));
        if parts.is_empty() {
            return "unknown hardware".into();
        }
        parts.join(", ")
    }

    /// The parts of the hardware that can change a measurement: CPU model, CPU count, GPUs
    /// (memory size rarely does, and varies by a few MB between identical machines).
    pub fn same_hardware(&self, other: &Node) -> bool {
        self.cpu_model == other.cpu_model && self.cpus == other.cpus && self.gpus == other.gpus
    }
}

fn name() -> String {
    for var in ["EXP_NODE", "SLURMD_NODENAME"] {
        if let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return v.trim().to_string();
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `nvidia-smi -L` lines (`GPU 0: NVIDIA H100 80GB HBM3 (UUID: …)`) as model names.
fn gpus() -> Vec<String> {
    let Ok(out) = std::process::Command::new("nvidia-smi")
        .arg("-L")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    if !out.status.success() {
        return Vec::new();
    }
    parse_gpu_list(&String::from_utf8_lossy(&out.stdout))
}

/// The model names in `nvidia-smi -L` output.
pub fn parse_gpu_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("GPU ")?.split_once(": "))
        .map(|(_, rest)| {
            rest.split(" (UUID")
                .next()
                .unwrap_or(rest)
                .trim()
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}
