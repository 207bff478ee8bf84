//! GPU catalog, TOML files and efficiency presets.

use super::close;
use crate::hw::{Dtype, Efficiency, Gpu, HwError};

#[test]
fn catalog_has_the_required_gpus_with_their_figures() {
    let h20 = Gpu::by_name("h20").unwrap();
    assert_eq!(
        (h20.bf16_dense_tflops, h20.fp8_dense_tflops),
        (148.0, Some(296.0))
    );
    // Memory is what nvidia-smi reports (issue 13): 97,871 MiB on an H20, 46,068 on an L40S.
    assert_eq!(h20.memory_bytes, 97_871 << 20);
    assert_eq!(Gpu::by_name("L40S").unwrap().memory_bytes, 46_068 << 20);
    assert_eq!(Gpu::by_name("H100-SXM").unwrap().memory_bytes, 81_559 << 20);
    assert_eq!(
        (h20.bandwidth_bytes_per_s, h20.interconnect_bytes_per_s),
        (4.0e12, 450e9)
    );
    let l20 = Gpu::by_name("L20").unwrap();
    assert_eq!(
        (l20.bf16_dense_tflops, l20.bandwidth_bytes_per_s),
        (119.5, 864e9)
    );
    assert!(l20.source.starts_with("approximate"));
    for name in [
        "H100-SXM",
        "H100-PCIe",
        "H200",
        "B200",
        "A100-40GB",
        "A100-80GB",
        "L40S",
        "L4",
        "A10G",
        "RTX-4090",
        "MI300X",
        "Ascend-910B",
    ] {
        let gpu = Gpu::by_name(name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(
            gpu.validate(name).is_ok() && !gpu.source.is_empty(),
            "{name}"
        );
    }
    assert_eq!(Gpu::catalog().len(), 14);
}

#[test]
fn nvidia_smi_names_and_loose_spellings_resolve() {
    assert_eq!(
        Gpu::by_name("NVIDIA H100 80GB HBM3").unwrap().name,
        "H100-SXM"
    );
    assert_eq!(Gpu::by_name("a100_sxm4_80gb").unwrap().name, "A100-80GB");
    assert_eq!(Gpu::by_name("rtx 4090").unwrap().name, "RTX-4090");
    assert_eq!(Gpu::load("mi300x").unwrap().name, "MI300X");
}

#[test]
fn a_user_toml_file_loads_and_unknown_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my-gpu.toml");
    let text = "name = \"Lab GPU\"\nbf16_dense_tflops = 500.0\nmemory_bytes = 68719476736\n\
                bandwidth_bytes_per_s = 2.5e12\ninterconnect_bytes_per_s = 1e11\n";
    std::fs::write(&path, text).unwrap();
    let gpu = Gpu::load(path.to_str().unwrap()).unwrap();
    assert_eq!((gpu.name.as_str(), gpu.fp8_dense_tflops), ("Lab GPU", None));
    assert!(gpu.source.starts_with("user file"));
    let typo = Gpu::from_toml_str(&format!("{text}bandwith = 1.0\n"), "typo.toml").unwrap_err();
    assert!(matches!(typo, HwError::GpuToml { .. }));
    assert!(typo.to_string().contains("bandwith"), "{typo}");
    let zero = text.replace("500.0", "0.0");
    let err = Gpu::from_toml_str(&zero, "zero.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bf16_dense_tflops"), "{err}");
}

#[test]
fn unknown_gpu_suggests_and_explains_the_file_format() {
    let err = Gpu::load("H100-SMX").unwrap_err().to_string();
    assert!(err.contains("did you mean `H100-SXM`?"), "{err}");
    assert!(
        err.contains("bf16_dense_tflops") && err.contains("H20, H100-SXM"),
        "{err}"
    );
}

#[test]
fn calibrated_presets_are_the_fidelity_fit_by_family() {
    let pair = |name: &str, weights| {
        let e = Efficiency::calibrated(&Gpu::by_name(name).unwrap(), weights);
        (e.matmul, e.matmul_half_tokens, e.memory)
    };
    assert_eq!(pair("H100-SXM", Dtype::Bf16), (0.62, 139.0, 0.88));
    assert_eq!(pair("H100-SXM", Dtype::Int4), (0.62, 139.0, 0.88));
    // FP8 weights run at the FP8 peak, of which FP8 GEMMs reach a smaller share.
    assert_eq!(pair("H100-SXM", Dtype::Fp8), (0.55, 139.0, 0.88));
    assert_eq!(pair("H20", Dtype::Bf16), pair("H100-SXM", Dtype::Bf16));
    assert_eq!(pair("A100-40GB", Dtype::Bf16), (0.72, 139.0, 0.88));
    // The A100 has no FP8 rate: FP8 weights are computed at the BF16 peak and fraction.
    assert_eq!(
        pair("A100-40GB", Dtype::Fp8),
        pair("A100-40GB", Dtype::Bf16)
    );
    assert_eq!(pair("L40S", Dtype::Fp8), pair("H100-SXM", Dtype::Fp8));
    let e = Efficiency::calibrated(&Gpu::by_name("MI300X").unwrap(), Dtype::Bf16);
    close(e.step_overhead_s, 550e-6, 1e-12);
    close(e.per_layer_overhead_s, 56e-6, 1e-12);
    close(e.per_sequence_overhead_s, 15e-6, 1e-12);
    close(e.per_request_overhead_s, 1.6e-3, 1e-12);
    close(e.per_prompt_token_overhead_s, 0.1e-6, 1e-15);
    close(e.admission_seconds(1000), 1.7e-3, 1e-12);
    let ideal = Efficiency::ideal();
    assert_eq!(ideal.admission_seconds(1000), 0.0);
    assert!(
        Efficiency::calibration_basis(&Gpu::by_name("MI300X").unwrap()).starts_with("uncalibrated")
    );
    assert_eq!(Efficiency::ideal().memory, 1.0);
}

#[test]
fn profiles_with_the_old_efficiency_keys_still_load() {
    let old = "prefill_compute = 0.5\ndecode_compute = 0.3\nmemory = 0.8\ncomm = 0.8\n\
               step_overhead_s = 1e-4\nper_layer_overhead_s = 0.0\n";
    let e: Efficiency = toml::from_str(old).unwrap();
    assert_eq!(
        (e.matmul, e.attention, e.matmul_half_tokens),
        (0.5, 0.3, 0.0)
    );
    assert_eq!(e.per_sequence_overhead_s, 0.0);
    assert_eq!(
        e.per_request_overhead_s + e.per_prompt_token_overhead_s,
        0.0
    );
}

#[test]
fn efficiency_round_trips_through_toml() {
    let e = Efficiency::calibrated(&Gpu::by_name("A100-80GB").unwrap(), Dtype::Bf16);
    let text = toml::to_string(&e).unwrap();
    let back: Efficiency = toml::from_str(&text).unwrap();
    assert_eq!(back, e);
    assert!(toml::from_str::<Efficiency>(&format!("{text}extra = 1\n")).is_err());
}
