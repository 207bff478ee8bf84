//! The report's warnings about prompt lengths: approximate without a tokenizer, and, with one,
//! requests whose prompt the server counted differently from the client (issue 2).

use crate::analysis::{CellResults, cell_label};
use crate::backend::PromptCount;
use crate::metrics::repetition::PROMPT_TOKEN_TOLERANCE;
use crate::scenario::model::{TargetConfig, TargetKind};

/// Warnings for `cells`, whose targets are `targets` (same order: the plan's cells).
pub(super) fn warnings(targets: &[&TargetConfig], cells: &[CellResults]) -> Vec<String> {
    let mut out = Vec::new();
    let real = |t: &&&TargetConfig| t.kind != TargetKind::Sim;
    if targets.iter().filter(real).any(|t| t.tokenizer.is_none()) {
        out.push(
            "prompt lengths are approximate (no `[target] tokenizer`: synthetic prompts are counted in words, not the model's tokens); input token counts and throughputs use the server's usage".into(),
        );
    }
    for (target, cell) in targets.iter().zip(cells) {
        let TargetKind::Http(protocol) = target.kind else {
            continue;
        };
        if target.tokenizer.is_none() {
            continue;
        }
        if let Some(w) = mismatch(protocol.prompt_count(), cell) {
            out.push(format!("cell {}: {w}", cell_label(&cell.swept)));
        }
    }
    out
}

/// The warning for one cell with a tokenizer, if its server's counts disagree. A prompt
/// tokenized as sent (completions) should match to a BOS; a template (chat) adds tokens, so
/// those cells warn only when the server counted fewer (a truncated prompt, or another
/// tokenizer).
fn mismatch(count: PromptCount, cell: &CellResults) -> Option<String> {
    let sum = |f: fn(&crate::metrics::RepetitionSummary) -> u64| -> u64 {
        cell.reps.iter().map(|r| f(&r.summary)).sum()
    };
    let (compared, over, under) = (
        sum(|s| s.prompt_counts_compared),
        sum(|s| s.prompt_tokens_over),
        sum(|s| s.prompt_tokens_under),
    );
    let tol = PROMPT_TOKEN_TOLERANCE;
    match count {
        PromptCount::AsSent => (over + under > 0).then(|| format!(
            "{} of {compared} prompts were counted differently by the server (`usage.prompt_tokens`) than by `[target] tokenizer`, by more than {tol} tokens ({over} more, {under} fewer): is it the served model's tokenizer?",
            over + under
        )),
        PromptCount::Templated => (under > 0).then(|| format!(
            "{under} of {compared} prompts were counted by the server (`usage.prompt_tokens`) as more than {tol} tokens shorter than by `[target] tokenizer`: the server may truncate prompts, or the tokenizer is not the served model's"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::RepResult;
    use crate::backend::Protocol;
    use crate::metrics::RepetitionSummary;
    use std::time::Duration;

    fn target(kind: TargetKind, tokenizer: bool) -> TargetConfig {
        TargetConfig {
            kind,
            base_url: Some("http://127.0.0.1:1/v1".into()),
            model: None,
            api_key_env: None,
            headers: vec![],
            timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            token_timeout: None,
            ignore_eos: true,
            tokenizer: tokenizer.then(|| "tokenizer.json".into()),
            hardware: None,
            sim: None,
        }
    }

    fn cell(over: u64, under: u64) -> CellResults {
        let summary = RepetitionSummary {
            prompt_counts_compared: 10,
            prompt_tokens_over: over,
            prompt_tokens_under: under,
            ..Default::default()
        };
        let rep = RepResult {
            round: 0,
            order: 0,
            summary,
            wall_seconds: 1.0,
            client_cpu_seconds: None,
        };
        CellResults {
            id: "c".into(),
            vars: Default::default(),
            swept: Default::default(),
            reps: vec![rep.clone(), rep],
        }
    }

    #[test]
    fn approximate_only_without_a_tokenizer_and_never_for_the_simulator() {
        let cells = [cell(0, 0)];
        let with = target(TargetKind::Http(Protocol::OpenaiCompletions), true);
        let without = target(TargetKind::Http(Protocol::OpenaiCompletions), false);
        let sim = target(TargetKind::Sim, false);
        assert!(warnings(&[&with], &cells).is_empty());
        assert!(warnings(&[&sim], &cells).is_empty());
        let w = warnings(&[&without], &cells);
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("prompt lengths are approximate"), "{w:?}");
    }

    #[test]
    fn mismatches_are_summed_over_repetitions_and_judged_by_protocol() {
        let completions = target(TargetKind::Http(Protocol::OpenaiCompletions), true);
        let chat = target(TargetKind::Http(Protocol::OpenaiChat), true);
        let w = warnings(&[&completions], &[cell(1, 2)]);
        assert_eq!(
            w,
            [
                "cell default: 6 of 20 prompts were counted differently by the server (`usage.prompt_tokens`) than by `[target] tokenizer`, by more than 4 tokens (2 more, 4 fewer): is it the served model's tokenizer?"
            ]
        );
        // A chat template adds tokens: only prompts the server found shorter are suspicious.
        assert!(warnings(&[&chat], &[cell(3, 0)]).is_empty());
        let w = warnings(&[&chat], &[cell(3, 1)]);
        assert!(w[0].starts_with("cell default: 2 of 20 prompts"), "{w:?}");
        // Without a tokenizer the lengths are approximate anyway: no per-cell warning.
        let plain = target(TargetKind::Http(Protocol::OpenaiCompletions), false);
        assert_eq!(warnings(&[&plain], &[cell(5, 5)]).len(), 1);
    }
}
