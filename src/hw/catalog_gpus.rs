//! Built-in GPU catalog (hardware.md §5 unless a comment says otherwise).
//!
//! Conventions: TFLOPS are dense (never 2:4 sparse) tensor-core rates; memory is what the device
//! reports, `nvidia-smi --query-gpu=memory.total` in MiB (an "80 GB" H100 reports 81,559 MiB,
//! a "48 GB" L40S 46,068 MiB: the marketed figure read as GiB overstates the L40S by 4%), with
//! the MI300X and Ascend 910B at their marketed GiB (not checked on a device); bandwidth is
//! decimal (GB/s = 1e9 B/s); the interconnect is the per-direction GPU-to-GPU bandwidth, with
//! PCIe Gen4 x16 = 32 GB/s and Gen5 x16 = 64 GB/s per direction where a card has no NVLink.

/// One catalog row.
pub(crate) struct GpuSpec {
    pub name: &'static str,
    /// Extra spellings, including `nvidia-smi` names.
    pub aliases: &'static [&'static str],
    pub bf16_tflops: f64,
    pub fp8_tflops: Option<f64>,
    /// Device memory as `nvidia-smi --query-gpu=memory.total` reports it, MiB.
    pub memory_mib: f64,
    pub bandwidth_gb_s: f64,
    pub link_gb_s_per_dir: f64,
    pub source: &'static str,
}

pub(crate) const GPUS: &[GpuSpec] = &[
    GpuSpec {
        name: "H20",
        aliases: &["NVIDIA H20", "h20-96gb"],
        bf16_tflops: 148.0,
        fp8_tflops: Some(296.0),
        memory_mib: 97_871.0,
        bandwidth_gb_s: 4000.0,
        link_gb_s_per_dir: 450.0,
        // Not in hardware.md's table: 148 TFLOPS is the seed documents' figure (metrics.md);
        // the rest are the widely reported H20 figures (NVLink 900 GB/s bidirectional).
        source: "approximate: H20 as widely reported (148 TFLOPS dense BF16 per metrics.md seed; 296 FP8; 96 GB HBM3; 4.0 TB/s; NVLink 900 GB/s); no public NVIDIA datasheet",
    },
    GpuSpec {
        name: "H100-SXM",
        aliases: &["h100", "h100-sxm5", "h100-80gb", "NVIDIA H100 80GB HBM3"],
        bf16_tflops: 989.4,
        fp8_tflops: Some(1978.9),
        memory_mib: 81_559.0,
        bandwidth_gb_s: 3350.0,
        link_gb_s_per_dir: 450.0,
        source: "hardware.md §5: glennklockwood.com/garden/processors/h100; NVIDIA spec table (sparse 1,979/3,958 halved)",
    },
    GpuSpec {
        name: "H100-PCIe",
        aliases: &["NVIDIA H100 PCIe"],
        bf16_tflops: 756.0,
        fp8_tflops: Some(1513.0),
        memory_mib: 81_559.0,
        bandwidth_gb_s: 2000.0,
        link_gb_s_per_dir: 64.0,
        source: "hardware.md §5: archive-lib.hpctech.co.jp nvidia-h100; llm-analysis h100-pcie-80gb.json; link = PCIe Gen5 (the optional NVLink bridge gives 300 GB/s per direction)",
    },
    GpuSpec {
        name: "H200",
        aliases: &["h200-sxm", "h200-141gb", "NVIDIA H200"],
        bf16_tflops: 989.4,
        fp8_tflops: Some(1978.9),
        memory_mib: 143_771.0,
        bandwidth_gb_s: 4800.0,
        link_gb_s_per_dir: 450.0,
        source: "hardware.md §5: lzwjava.github.io nvidia-h200-gpu-specs; MLPerf v4.1 H200-SXM-141GBx8 system JSON",
    },
    GpuSpec {
        name: "B200",
        aliases: &["NVIDIA B200"],
        bf16_tflops: 2250.0,
        fp8_tflops: Some(4500.0),
        memory_mib: 183_359.0,
        bandwidth_gb_s: 8000.0,
        link_gb_s_per_dir: 900.0,
        source: "hardware.md §5: glennklockwood.com/garden/processors/B200 (HGX 1000 W, dense); docs.vultr.com B200 overview",
    },
    GpuSpec {
        name: "A100-40GB",
        aliases: &["a100-sxm4-40gb", "NVIDIA A100-SXM4-40GB"],
        bf16_tflops: 312.0,
        fp8_tflops: None,
        memory_mib: 40_960.0,
        bandwidth_gb_s: 1555.0,
        link_gb_s_per_dir: 300.0,
        source: "hardware.md §5: glennklockwood.com/garden/processors/A100 (NVIDIA A100 datasheet)",
    },
    GpuSpec {
        name: "A100-80GB",
        aliases: &[
            "a100",
            "a100-sxm4-80gb",
            "a100-80gb-sxm",
            "NVIDIA A100-SXM4-80GB",
        ],
        bf16_tflops: 312.0,
        fp8_tflops: None,
        memory_mib: 81_920.0,
        bandwidth_gb_s: 2039.0,
        link_gb_s_per_dir: 300.0,
        source: "hardware.md §5: glennklockwood.com/garden/processors/A100; llm-analysis a100-sxm-80gb.json",
    },
    GpuSpec {
        name: "L40S",
        aliases: &["NVIDIA L40S"],
        bf16_tflops: 362.05,
        fp8_tflops: Some(733.0),
        memory_mib: 46_068.0,
        bandwidth_gb_s: 864.0,
        link_gb_s_per_dir: 32.0,
        source: "hardware.md §5: NVIDIA L40/L40S table (mullet.se reproduction); itcreations; PCIe Gen4 x16",
    },
    GpuSpec {
        name: "L20",
        aliases: &["NVIDIA L20"],
        bf16_tflops: 119.5,
        fp8_tflops: Some(239.0),
        memory_mib: 46_068.0,
        bandwidth_gb_s: 864.0,
        link_gb_s_per_dir: 32.0,
        source: "approximate: L20 (China SKU) as widely reported (~119.5 TFLOPS dense BF16, 239 FP8, 48 GB GDDR6, 864 GB/s, PCIe Gen4); not in hardware.md",
    },
    GpuSpec {
        name: "L4",
        aliases: &["NVIDIA L4"],
        bf16_tflops: 121.0,
        fp8_tflops: Some(242.5),
        memory_mib: 23_034.0,
        bandwidth_gb_s: 300.0,
        link_gb_s_per_dir: 32.0,
        source: "hardware.md §5: datasheet sparse values (242 FP16, 485 FP8) halved; PCIe Gen4 x16",
    },
    GpuSpec {
        name: "A10G",
        aliases: &["NVIDIA A10G"],
        bf16_tflops: 70.0,
        fp8_tflops: None,
        memory_mib: 23_028.0,
        bandwidth_gb_s: 600.0,
        link_gb_s_per_dir: 32.0,
        source: "approximate (hardware.md §5): NVIDIA publishes no A10G tensor rate; llm-analysis a10g-pcie-24gb.json (70 TF); baseten.co A10 vs A10G",
    },
    GpuSpec {
        name: "RTX-4090",
        aliases: &["4090", "geforce-rtx-4090", "NVIDIA GeForce RTX 4090"],
        bf16_tflops: 165.2,
        fp8_tflops: Some(330.3),
        memory_mib: 24_564.0,
        bandwidth_gb_s: 1008.0,
        link_gb_s_per_dir: 32.0,
        source: "hardware.md §5: waredb.com RTX 4090 (dense, FP32 accumulate, as frameworks use); no NVLink, PCIe Gen4 x16",
    },
    GpuSpec {
        name: "MI300X",
        aliases: &["AMD Instinct MI300X", "instinct-mi300x"],
        bf16_tflops: 1307.4,
        fp8_tflops: Some(2614.9),
        memory_mib: 196_608.0,
        bandwidth_gb_s: 5300.0,
        link_gb_s_per_dir: 448.0,
        source: "hardware.md §5: GenZ system_configs.py citing the AMD MI300X platform data sheet; Infinity Fabric 896 GB/s aggregate",
    },
    GpuSpec {
        name: "Ascend-910B",
        aliases: &["910b", "ascend910b"],
        bf16_tflops: 313.0,
        fp8_tflops: None,
        memory_mib: 65_536.0,
        bandwidth_gb_s: 1600.0,
        link_gb_s_per_dir: 196.0,
        source: "approximate: Huawei Ascend 910B as widely reported (~313 TFLOPS FP16, 64 GB HBM2e, ~1.6 TB/s, HCCS ~392 GB/s taken as 196 per direction); not in hardware.md",
    },
];

/// Canonical form for matching: lower case without a leading `nvidia `, and without spaces,
/// `-` and `_`.
pub(crate) fn key(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let lower = lower.strip_prefix("nvidia").unwrap_or(&lower);
    lower
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .collect()
}

/// The row whose name or alias matches.
pub(crate) fn find(name: &str) -> Option<&'static GpuSpec> {
    let wanted = key(name);
    GPUS.iter()
        .find(|g| key(g.name) == wanted || g.aliases.iter().any(|a| key(a) == wanted))
}
