//! `exp estimate`: the roofline model of a model on a GPU, as a table or JSON.

use crate::cli::{EstimateArgs, EstimateMethod};
use crate::hw::estimate::{self, EstimateRequest, Method};
use crate::hw::{Gpu, ModelConfig};

/// Computes the estimate and returns the text to print.
pub(super) fn run(args: &EstimateArgs) -> anyhow::Result<String> {
    let model = ModelConfig::load(&args.model)?;
    let gpu = Gpu::load(&args.gpu)?;
    let mut req = EstimateRequest::new(model, gpu);
    req.prompt = args.prompt;
    req.output = args.output;
    req.batch = args.batch;
    req.tp = args.tp;
    req.method = match args.method {
        EstimateMethod::Full => Method::Full,
        EstimateMethod::Seed => Method::Seed,
    };
    let est = estimate::estimate(&req)?;
    Ok(if args.json {
        serde_json::to_string_pretty(&est)? + "\n"
    } else {
        estimate::render_table(&est)
    })
}
