//! Resuming a run whose secrets were not saved: the scenario copy and the recorded `--set`
//! overrides hold markers (`<redacted:1a2b3c4d>`) where the first run had secrets, so the
//! resumed run takes them back — from the original scenario file when it is unchanged, and
//! from `--set` arguments that match the recorded markers.

use std::path::Path;

use crate::plan::Plan;
use crate::secrets::{has_marker, marker};
use crate::store::{Manifest, RunDir};

/// The plan a resumed run sends requests with: the saved one, with every redacted secret
/// given back. Refuses, naming what to pass, when one is missing or does not match.
pub(super) fn resumed_plan(
    dir: &RunDir,
    manifest: &Manifest,
    given: &[String],
) -> anyhow::Result<Plan> {
    let root = dir.root().display();
    let saved = dir.scenario_text()?;
    let text = match has_marker(&saved) {
        true => original_scenario(manifest).ok_or_else(|| {
            anyhow::anyhow!(
                "{root}: the scenario held secrets, which a run directory never keeps, and its file {} is gone or has changed since the run began (SHA-256 {}); put the file back as it was, then resume",
                manifest.scenario_file,
                &manifest.scenario_sha256[..12.min(manifest.scenario_sha256.len())]
            )
        })?,
        false => saved,
    };
    let overrides =
        given_back(&manifest.overrides, given).map_err(|e| anyhow::anyhow!("{root}: {e}"))?;
    super::plan_from(dir, manifest, &text, overrides)
}

/// The scenario file the run was started from, when it still hashes to the recorded SHA-256.
fn original_scenario(manifest: &Manifest) -> Option<String> {
    use sha2::{Digest, Sha256};
    let text = std::fs::read_to_string(Path::new(&manifest.scenario_file)).ok()?;
    let hash: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (hash == manifest.scenario_sha256).then_some(text)
}

/// The recorded overrides with each redacted one replaced by the `--set` that matches it (same
/// key, and a value whose marker is the recorded one).
fn given_back(recorded: &[String], given: &[String]) -> Result<Vec<String>, String> {
    let mut used = vec![false; given.len()];
    let mut out = Vec::with_capacity(recorded.len());
    let mut missing = Vec::new();
    for r in recorded {
        let Some((key, value)) = r.split_once('=').filter(|(_, v)| has_marker(v)) else {
            out.push(r.clone());
            continue;
        };
        let found = given.iter().position(|g| {
            g.split_once('=')
                .is_some_and(|(k, v)| k == key && marker(v) == value)
        });
        match found {
            Some(i) => {
                used[i] = true;
                out.push(given[i].clone());
            }
            None => missing.push(key.to_string()),
        }
    }
    if !missing.is_empty() {
        let sets: Vec<String> = (missing.iter()).map(|k| format!("--set {k}=…")).collect();
        return Err(format!(
            "this run was given secrets that a run directory never keeps ({}); resume with the same values: `exp run --resume DIR {}` (a value that differs from the first run's is refused)",
            crate::scenario::quoted_list(&missing),
            sets.join(" ")
        ));
    }
    if let Some(i) = used.iter().position(|u| !u) {
        let key = given[i]
            .split_once('=')
            .map_or(given[i].as_str(), |(k, _)| k);
        let secret_there = (recorded.iter()).any(|r| {
            r.split_once('=')
                .is_some_and(|(k, v)| k == key && has_marker(v))
        });
        let hint = match secret_there {
            true => "its value differs from the first run's secret",
            false => "the first run set no secret there",
        };
        return Err(format!(
            "--set {key}: with --resume, --set only gives back a secret the first run was given, and {hint}; a resumed run keeps its scenario (start a new run to change it)"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn secrets_are_given_back_by_matching_markers() {
        let recorded = vec![
            "experiment.repetitions=3".to_string(),
            format!("vars.fixed.token={}", marker("sk-live-1")),
        ];
        assert_eq!(
            given_back(&recorded, &s(&["vars.fixed.token=sk-live-1"])).unwrap(),
            s(&["experiment.repetitions=3", "vars.fixed.token=sk-live-1"])
        );
        let err = given_back(&recorded, &[]).unwrap_err();
        assert_eq!(
            err,
            "this run was given secrets that a run directory never keeps (`vars.fixed.token`); resume with the same values: `exp run --resume DIR --set vars.fixed.token=…` (a value that differs from the first run's is refused)"
        );
        let err = given_back(&recorded, &s(&["vars.fixed.token=sk-live-2"])).unwrap_err();
        assert!(err.starts_with("this run was given secrets"), "{err}");
        let err = given_back(
            &recorded,
            &s(&["vars.fixed.token=sk-live-1", "experiment.repetitions=5"]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "--set experiment.repetitions: with --resume, --set only gives back a secret the first run was given, and the first run set no secret there; a resumed run keeps its scenario (start a new run to change it)"
        );
    }
}
