//! Tests with known answers: official parameter counts (hardware.md §1.2, §6), the worked
//! example (§2), the seed numbers (metrics.md "Theory"), and grid properties of the roofline.

mod config;
mod deployment;
mod estimate;
mod gpu;
mod properties;
mod worked_example;

use super::{Deployment, Efficiency, Gpu, ModelConfig};

/// A catalog model on a catalog GPU with checkpoint dtypes and ideal efficiency.
fn ideal(model: &str, gpu: &str, tp: u32) -> Deployment {
    let model = ModelConfig::load(model).expect("catalog model");
    let gpu = Gpu::by_name(gpu).expect("catalog GPU");
    let (w, kv) = (model.dtype, model.default_kv_dtype());
    Deployment::new(model, gpu, tp, w, kv, Efficiency::ideal()).expect("valid deployment")
}

/// `|actual − expected| ≤ rel · |expected|`, with a readable failure.
#[track_caller]
fn close(actual: f64, expected: f64, rel: f64) {
    assert!(
        (actual - expected).abs() <= rel * expected.abs(),
        "{actual} is not within {rel} (relative) of {expected}"
    );
}
