//! Retrieval items: pinned formats, determinism, needle depth, prompt lengths with and without
//! a tokenizer, and scoring.

use std::path::Path;

use super::*;

const BPE: &str = include_str!("../../tests/fixtures/tokenizer/bpe.json");

fn bpe() -> ModelTokenizer {
    ModelTokenizer::from_json(Path::new("bpe.json"), BPE).unwrap()
}

fn words(text: &str) -> u32 {
    text.split_whitespace().count() as u32
}

fn item(answer: &str) -> Item {
    Item {
        index: 0,
        depth: 0.5,
        context_tokens: 100,
        prompt: String::new(),
        answer: answer.into(),
    }
}

#[test]
fn a_short_passkey_prompt_is_pinned() {
    // 47 words of fixed text and 15 of filler: four sentences, the needle after two.
    let item = &items(Task::Passkey, 62, 1, &[0.5], 7, None).unwrap()[0];
    let key = &item.answer;
    assert_eq!(key.len(), 5);
    let expected = format!(
        "There is an important info hidden inside a lot of irrelevant text. Find it and \
         memorize it. I will quiz you about the important information there.\n\
         The grass is green. The sky is blue. \
         The pass key is {key}. Remember it. {key} is the pass key. \
         The sun is yellow. Here we go.\n\
         What is the pass key? The pass key is"
    );
    assert_eq!(item.prompt, expected);
    assert_eq!(words(&item.prompt), 62);
}

#[test]
fn a_short_haystack_prompt_has_four_needles_and_asks_for_one() {
    let item = &items(Task::Niah, 120, 1, &[0.0], 7, None).unwrap()[0];
    let p = &item.prompt;
    assert!(p.starts_with(NIAH_HEAD), "{p}");
    assert_eq!(
        p.matches("One of the special magic numbers for ").count(),
        4
    );
    // Depth 0: the asked needle comes first, right after the instruction.
    let first = &p[NIAH_HEAD.len()..];
    let word = first
        .strip_prefix("One of the special magic numbers for ")
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(first.contains(&format!("{word} is: {}.", item.answer)));
    assert!(p.ends_with(&format!(
        "\nWhat is the special magic number for {word} mentioned in the provided text? \
         The special magic number for {word} mentioned in the provided text is"
    )));
    assert_eq!(item.answer.len(), 7);
    assert_eq!(words(p), 120);
}

#[test]
fn items_depend_only_on_their_inputs_and_not_on_the_trial_count() {
    for task in [Task::Passkey, Task::Niah] {
        let a = items(task, 500, 6, &DEFAULT_DEPTHS, 42, None).unwrap();
        assert_eq!(a, items(task, 500, 6, &DEFAULT_DEPTHS, 42, None).unwrap());
        assert_eq!(
            a[..3],
            items(task, 500, 3, &DEFAULT_DEPTHS, 42, None).unwrap()
        );
        let other = items(task, 500, 6, &DEFAULT_DEPTHS, 43, None).unwrap();
        assert!(a.iter().zip(&other).all(|(x, y)| x.answer != y.answer));
        let depths: Vec<f64> = a.iter().map(|i| i.depth).collect();
        assert_eq!(depths, [0.0, 0.25, 0.5, 0.75, 1.0, 0.0]);
        assert!(a.iter().enumerate().all(|(k, i)| i.index == k as u32));
    }
    let answers: std::collections::BTreeSet<_> = items(Task::Passkey, 100, 50, &[0.5], 1, None)
        .unwrap()
        .into_iter()
        .map(|i| i.answer)
        .collect();
    assert!(answers.len() > 45, "keys vary: {answers:?}");
}

/// Filler words before the asked needle, over all filler words (needles, head and question
/// left out).
fn measured_depth(item: &Item) -> f64 {
    let (head, question) = match item.prompt.starts_with(PASSKEY_HEAD) {
        true => (PASSKEY_HEAD, PASSKEY_QUESTION.to_owned()),
        false => {
            let at = item.prompt.rfind("\nWhat is").unwrap();
            (NIAH_HEAD, item.prompt[at..].to_owned())
        }
    };
    let body = &item.prompt[head.len()..item.prompt.len() - question.len()];
    let tokens: Vec<&str> = body.split_whitespace().collect();
    let (mut filler, mut before, mut k) = (0, None, 0);
    while k < tokens.len() {
        let needle_words = match tokens[k] {
            "The" if tokens[k + 1] == "pass" => 12,
            "One" if tokens[k + 1] == "of" && tokens[k + 3] == "special" => 10,
            _ => 0,
        };
        if needle_words == 0 {
            filler += 1;
            k += 1;
            continue;
        }
        let asked = tokens[k..k + needle_words]
            .iter()
            .any(|t| t.trim_end_matches('.') == item.answer);
        if asked {
            before = Some(filler);
        }
        k += needle_words;
    }
    f64::from(before.expect("the asked needle is in the prompt")) / f64::from(filler)
}

#[test]
fn the_asked_needle_sits_at_its_depth() {
    let depths = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0];
    for task in [Task::Passkey, Task::Niah] {
        for item in items(task, 3000, 14, &depths, 9, None).unwrap() {
            let got = measured_depth(&item);
            assert!(
                (got - item.depth).abs() < 0.01,
                "{task:?} #{}: depth {} measured {got}",
                item.index,
                item.depth
            );
        }
    }
}

#[test]
fn without_a_tokenizer_prompts_fill_the_context_in_words() {
    for target in [200, 1000, 4096] {
        for item in items(Task::Passkey, target, 5, &DEFAULT_DEPTHS, 3, None).unwrap() {
            let n = words(&item.prompt);
            // Within one filler sentence (3 or 4 words), never over.
            assert!(n <= target && n + 4 > target, "{target}: {n}");
        }
        for item in items(Task::Niah, target, 5, &DEFAULT_DEPTHS, 3, None).unwrap() {
            assert_eq!(words(&item.prompt), target);
        }
    }
}

#[test]
fn with_a_tokenizer_prompts_fill_the_context_in_its_tokens_with_few_counts() {
    let t = bpe();
    for (task, target) in [
        (Task::Passkey, 300),
        (Task::Passkey, 6000),
        (Task::Niah, 300),
        (Task::Niah, 6000),
    ] {
        let mut fitter = Fitter::new(Some(&t), target);
        let trials = 10;
        let all = build(task, trials, &DEFAULT_DEPTHS, 5, &mut fitter).unwrap();
        for item in &all {
            let n = t.count(&item.prompt).unwrap();
            // One passkey sentence is 5 or 6 of this tokenizer's tokens; a haystack word 1 to 4
            // (7 capitalised, before its period).
            assert!(n <= target && n + 8 > target, "{task:?} {target}: {n}");
            assert_eq!(
                answer_in(&item.prompt).as_deref(),
                Some(item.answer.as_str())
            );
        }
        // A few counts an item (one of them of the fixed text alone), not a bisection's dozen.
        assert!(
            fitter.counts <= 5 * trials,
            "{task:?} {target}: {} counts",
            fitter.counts
        );
    }
}

#[test]
fn a_context_too_short_for_the_task_gets_its_fixed_text_alone() {
    let item = &items(Task::Niah, 10, 1, &[0.5], 1, None).unwrap()[0];
    assert_eq!(item.context_tokens, 10);
    assert_eq!(item.prompt.matches("One of the special").count(), 4);
    assert_eq!(answer_in(&item.prompt), Some(item.answer.clone()));
}

#[test]
fn score_is_an_exact_match_on_the_first_run_of_digits() {
    let it = item("68217");
    for (reply, ok) in [
        (" 68217.", true),
        ("68217", true),
        ("The pass key is 68217", true),
        (" 68217 is the pass key. 12345", true),
        ("6821", false),
        ("682170", false),
        ("12345, no: 68217", false),
        ("", false),
        (" sixty-eight thousand", false),
    ] {
        assert_eq!(score(&it, reply), ok, "{reply:?}");
    }
}

#[test]
fn answer_in_reads_both_tasks_and_nothing_else() {
    for task in [Task::Passkey, Task::Niah] {
        for item in items(task, 400, 5, &DEFAULT_DEPTHS, 11, None).unwrap() {
            assert_eq!(
                answer_in(&item.prompt),
                Some(item.answer.clone()),
                "{task:?}"
            );
        }
    }
    assert_eq!(answer_in("Write a story about the sea."), None);
    assert_eq!(answer_in(""), None);
    // The question without a needle, and a needle without its question.
    assert_eq!(answer_in(PASSKEY_QUESTION), None);
    assert_eq!(
        answer_in("The pass key is 12345. Remember it. 12345 is the pass key."),
        None
    );
    assert_eq!(
        answer_in("What is the special magic number for sea mentioned in the provided text?"),
        None
    );
}

#[test]
fn tasks_are_snake_case_in_serde() {
    assert_eq!(
        serde_json::to_string(&[Task::Passkey, Task::Niah]).unwrap(),
        r#"["passkey","niah"]"#
    );
    let t: Task = serde_json::from_str(r#""niah""#).unwrap();
    assert_eq!(t, Task::Niah);
}
