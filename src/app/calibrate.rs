//! `exp calibrate <run-dir>`: read a run's records back, keep the requests that ran alone, fit
//! the simulator's efficiency factors to their TTFT and TPOT (`crate::calibrate`), write the
//! profile and print what was fitted and how well it predicts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::calibrate::{
    self, Calibration, CellModel, Counts, Observation, Profile, ProfileCell, ProfileMeta, report,
};
use crate::hw::{Deployment, Efficiency, Gpu, ModelConfig};
use crate::plan::Plan;
use crate::scenario::model::CellConfig;
use crate::store::{self, Manifest, RunDir};

/// `--model` and `--gpu`: the hardware of the run when its scenario does not name it (they
/// override the scenario's `[target] model_config` and `gpu` when both are present).
#[derive(Debug, Clone, Default)]
pub struct Hardware {
    /// Model: catalog name or config.json path.
    pub model: Option<String>,
    /// GPU: catalog name or GPU TOML path.
    pub gpu: Option<String>,
}

/// A finished calibration of a run directory, before anything is written.
#[derive(Debug, Clone)]
pub struct RunCalibration {
    /// The fit.
    pub calibration: Calibration,
    /// The profile to write.
    pub profile: Profile,
    /// Requests seen and used.
    pub counts: Counts,
}

/// `exp calibrate`: calibrates, writes the profile (default `<run-dir>/profile.toml`) and
/// prints the report.
pub fn run(run_dir: &Path, out: Option<&Path>, hardware: &Hardware) -> anyhow::Result<()> {
    let result = calibrate_run(run_dir, hardware)?;
    let path = out.map_or_else(|| run_dir.join("profile.toml"), PathBuf::from);
    store::write_atomic(&path, result.profile.render().as_bytes())?;
    let meta = result
        .profile
        .profile
        .as_ref()
        .expect("calibrate_run writes [profile]");
    // `sim_preset` resolves relative paths from the scenario's folder: print an absolute one.
    let path_text = std::fs::canonicalize(&path)
        .unwrap_or_else(|_| path.clone())
        .display()
        .to_string();
    let ctx = report::Context {
        model: &meta.model,
        gpu: &meta.gpu,
        run_dir: &meta.source_run,
        counts: result.counts,
        cells: &meta.cells,
        profile_path: &path_text,
    };
    print!("{}", report::render(&result.calibration, &ctx));
    Ok(())
}

/// Calibrates from a run directory without writing anything.
pub fn calibrate_run(run_dir: &Path, hardware: &Hardware) -> anyhow::Result<RunCalibration> {
    let (dir, manifest) = RunDir::open(run_dir)?;
    let plan = super::saved_plan(&dir, &manifest)?;
    let (observations, counts) = observe_run(&dir, &manifest)?;
    calibrate::fit::check_data(&observations)?;
    let used: BTreeSet<usize> = observations.iter().map(|o| o.cell).collect();
    let (model_name, gpu_name) = run_hardware(&plan, &manifest, &used, hardware)?;
    let model = ModelConfig::load(&model_name)?;
    let gpu = Gpu::load(&gpu_name)?;
    let used: Vec<usize> = used.into_iter().collect();
    let cells = used
        .iter()
        .map(|&i| cell_model(&plan.configs[i], &model, &gpu))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let compact: Vec<Observation> = observations
        .into_iter()
        .map(|mut o| {
            o.cell = used.binary_search(&o.cell).expect("used lists every cell");
            o
        })
        .collect();
    let calibration = calibrate::calibrate(&cells, &compact)?;
    let meta = ProfileMeta {
        model: model_name,
        gpu: gpu_name,
        tp: used
            .iter()
            .map(|&i| plan.configs[i].engine.tp.get())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        source_run: run_dir.display().to_string(),
        run_id: manifest.run_id.clone(),
        executor: manifest.executor.clone(),
        created: store::now_rfc3339(),
        exp_version: env!("CARGO_PKG_VERSION").into(),
        ..provenance(&calibration, &compact, &used, &manifest)
    };
    let profile = Profile {
        profile: Some(meta),
        efficiency: calibration.efficiency,
    };
    Ok(RunCalibration {
        calibration,
        profile,
        counts,
    })
}

/// Observations of every finished repetition of every cell (cell = index in the manifest).
fn observe_run(dir: &RunDir, manifest: &Manifest) -> anyhow::Result<(Vec<Observation>, Counts)> {
    let done = dir.completed()?;
    let (mut all, mut counts) = (Vec::new(), Counts::default());
    for (i, entry) in manifest.cells.iter().enumerate() {
        for round in 0..manifest.repetitions {
            if !done.contains(&(entry.id.clone(), round)) {
                continue;
            }
            let records = dir.rep_records(&entry.id, round);
            let (obs, c) = calibrate::select::observe_from(&records, i, round)?;
            all.extend(obs);
            counts += c;
        }
    }
    if done.is_empty() {
        bail!(
            "{}: no finished repetitions to calibrate from",
            dir.root().display()
        );
    }
    Ok((all, counts))
}

/// The one model × GPU of the cells used: `--model`/`--gpu`, else the scenario's `[target]`.
fn run_hardware(
    plan: &Plan,
    manifest: &Manifest,
    used: &BTreeSet<usize>,
    flags: &Hardware,
) -> anyhow::Result<(String, String)> {
    let mut found = BTreeSet::new();
    for &i in used {
        let hw = plan.configs[i].target.hardware.as_ref();
        let model = flags.model.clone().or(hw.map(|h| h.model_config.clone()));
        let gpu = flags.gpu.clone().or(hw.map(|h| h.gpu.clone()));
        let (Some(model), Some(gpu)) = (model, gpu) else {
            bail!(
                "cell {}: the scenario's [target] names no model_config and gpu; pass \
                 --model and --gpu (catalog names or file paths, as for `exp estimate`)",
                manifest.cells[i].id
            );
        };
        found.insert((model, gpu));
    }
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(one),
        (Some(a), Some(b)) => bail!(
            "the cells used run on different hardware ({} on {}, {} on {}, …); calibrate one \
             model × GPU at a time (pass --model and --gpu if the run really had one)",
            a.0,
            a.1,
            b.0,
            b.1
        ),
        (None, _) => bail!("no cell has a request that ran alone"),
    }
}

/// A cell's deployment with the GPU's calibrated preset as the starting point.
fn cell_model(cell: &CellConfig, model: &ModelConfig, gpu: &Gpu) -> anyhow::Result<CellModel> {
    let tp = cell.engine.tp.get();
    let deployment = Deployment::new(
        model.clone(),
        gpu.clone(),
        tp,
        model.dtype,
        model.default_kv_dtype(),
        Efficiency::calibrated(gpu, model.dtype),
    )
    .with_context(|| format!("{} on {} at tp = {tp}", model.name, gpu.name))?;
    Ok(CellModel {
        deployment,
        chunk_budget: cell.engine.max_num_batched_tokens.get(),
    })
}

/// The quality and provenance fields of `[profile]` that come from the fit.
fn provenance(
    c: &Calibration,
    obs: &[Observation],
    used: &[usize],
    manifest: &Manifest,
) -> ProfileMeta {
    let cells = (0..used.len())
        .map(|k| {
            let mine: Vec<&Observation> = obs.iter().filter(|o| o.cell == k).collect();
            let prompts = mine.iter().map(|o| o.prompt_tokens);
            ProfileCell {
                id: manifest.cells[used[k]].id.clone(),
                requests: mine.len(),
                prompt_tokens_min: prompts.clone().min().unwrap_or(0),
                prompt_tokens_max: prompts.max().unwrap_or(0),
            }
        })
        .collect();
    ProfileMeta {
        method: "requests that ran alone; memory and step_overhead_s from TPOT, then \
                 matmul from TTFT, by least squares on relative errors"
            .into(),
        ttft_requests: c.ttft.n,
        tpot_requests: c.tpot.n,
        ttft_rel_rms: c.ttft.rms,
        ttft_rel_mean: c.ttft.mean,
        tpot_rel_rms: c.tpot.rms,
        tpot_rel_mean: c.tpot.mean,
        fitted: c.fitted.iter().map(|f| f.name.to_string()).collect(),
        kept: report::kept(c)
            .into_iter()
            .map(|(name, value, why)| format!("{name} = {value}: {why}"))
            .collect(),
        std_errors: c
            .fitted
            .iter()
            .filter_map(|f| Some((f.name.to_string(), f.std_error?)))
            .collect(),
        cells,
        ..ProfileMeta::default()
    }
}

#[cfg(test)]
#[path = "calibrate_tests.rs"]
mod tests;
