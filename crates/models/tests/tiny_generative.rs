//! ERank (generative pointwise) and CodeRankLLM (listwise) against the tiny
//! random-weight fixtures in `tests/fixtures/tiny/` (see its README.md):
//! prompts rebuilt from the raw strings must give the reference text and ids
//! exactly, and greedy generation the reference ids. With random weights the
//! generated text is junk, which also exercises the parsers' fallbacks
//! (no score found, no permutation found) on a real model's output.

use std::path::PathBuf;

use candle_core::Device;
use quarry_models::rerank::generative::{
    erank_prompt, erank_user_content, hybrid_scores, parse_score, z_scores, GenerativeOptions,
    GenerativeReranker, ERANK_PROMPT_TEMPLATE,
};
use quarry_models::rerank::listwise::{
    listwise_prompt, listwise_user_content, parse_permutation, window_ranges, ListwiseOptions,
    ListwisePrompt, ListwiseReranker,
};
use quarry_models::rerank::{RerankInput, RerankTask, Reranker};
use quarry_models::{DecoderLm, ModelError};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(name)
}

fn reference(name: &str, section: &str) -> Value {
    let path = fixture(name).join("reference.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("reference.json parses");
    doc[section].clone()
}

fn s(v: &Value) -> &str {
    v.as_str().expect("a string")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an id array")
        .iter()
        .map(|x| u32::try_from(x.as_u64().expect("an id")).expect("an id fits u32"))
        .collect()
}

fn erank(options: GenerativeOptions) -> GenerativeReranker {
    GenerativeReranker::load(&fixture("qwen3"), None, &Device::Cpu, "tiny-erank", options)
        .expect("load the tiny Qwen3 as ERank")
}

fn coderankllm(options: ListwiseOptions) -> ListwiseReranker {
    ListwiseReranker::load(
        &fixture("qwen2"),
        None,
        &Device::Cpu,
        "tiny-coderankllm",
        options,
    )
    .expect("load the tiny Qwen2 as CodeRankLLM")
}

/// Distinct code-ish documents, more than two windows' worth.
fn documents(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("def f{i}(xs):\n    return xs[{i}] + {}", i * 7 % 11))
        .collect()
}

#[test]
fn erank_prompt_text_and_ids_match_the_fixture() {
    let r = reference("qwen3", "erank");
    assert_eq!(s(&r["prompt_template"]), ERANK_PROMPT_TEMPLATE);
    let model = erank(GenerativeOptions::default());
    let cases = r["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 2);
    for case in cases {
        let (instruction, query, document) = (
            s(&case["instruction"]),
            s(&case["query"]),
            s(&case["document"]),
        );
        assert_eq!(
            erank_user_content(instruction, query, document),
            s(&case["user_content"])
        );
        assert_eq!(
            erank_prompt(instruction, query, document),
            s(&case["prompt_text"])
        );
        assert_eq!(
            model
                .prompt_ids(instruction, query, document)
                .expect("prompt ids"),
            ids(&case["input_ids"])
        );
    }
}

#[test]
fn erank_generation_matches_the_fixture() {
    let r = reference("qwen3", "erank");
    let max_new =
        usize::try_from(r["max_new_tokens"].as_u64().expect("max_new_tokens")).expect("fits usize");
    let model = erank(GenerativeOptions {
        max_new_tokens: max_new,
        ..GenerativeOptions::default()
    });
    for case in r["cases"].as_array().expect("cases") {
        let judged = model
            .judge(
                s(&case["instruction"]),
                s(&case["query"]),
                s(&case["document"]),
            )
            .expect("judge");
        assert_eq!(judged.prompt_ids, ids(&case["input_ids"]));
        assert_eq!(judged.generated_ids, ids(&case["generated_ids"]));
        // Random weights write junk: no score, so the lowest one.
        assert_eq!(judged.score, parse_score(&judged.text).map(|p| p.value));
        assert_eq!(judged.score, None, "junk output {:?}", judged.text);
        assert_eq!(judged.probability, 0.0);
        assert_eq!(judged.value, 0.0);
    }
}

#[test]
fn coderankllm_prompt_text_and_ids_match_the_fixture() {
    let r = reference("qwen2", "coderankllm");
    let case = &r["cases"][0];
    let passages: Vec<&str> = case["passages"]
        .as_array()
        .expect("passages")
        .iter()
        .map(s)
        .collect();
    let query = s(&case["query"]);
    assert_eq!(
        ListwisePrompt::Docstring.system_message(),
        s(&case["system_message"])
    );
    assert_eq!(
        listwise_user_content(ListwisePrompt::Docstring, query, &passages),
        s(&case["user_content"])
    );
    assert_eq!(
        listwise_prompt(ListwisePrompt::Docstring, query, &passages),
        s(&case["prompt_text"])
    );
    let model = coderankllm(ListwiseOptions::default());
    assert_eq!(
        model
            .prompt_ids(ListwisePrompt::Docstring, query, &passages)
            .expect("prompt ids"),
        ids(&case["input_ids"])
    );
}

#[test]
fn coderankllm_generation_matches_the_fixture() {
    let r = reference("qwen2", "coderankllm");
    let case = &r["cases"][0];
    let passages: Vec<&str> = case["passages"]
        .as_array()
        .expect("passages")
        .iter()
        .map(s)
        .collect();
    let max_new =
        usize::try_from(r["max_new_tokens"].as_u64().expect("max_new_tokens")).expect("fits usize");
    let model = coderankllm(ListwiseOptions {
        max_new_tokens: Some(max_new),
        ..ListwiseOptions::default()
    });
    let window = model
        .rank_window(ListwisePrompt::Docstring, s(&case["query"]), &passages)
        .expect("rank one window");
    assert_eq!(window.prompt_ids, ids(&case["input_ids"]));
    assert_eq!(window.generated_ids, ids(&case["generated_ids"]));
    assert_eq!(window.permutation, parse_permutation(&window.text, 4));
    // Junk output names no identifier: the window keeps its order.
    assert_eq!(window.permutation, vec![0, 1, 2, 3]);
}

#[test]
fn erank_as_dyn_reranker_blends_with_the_first_stage() {
    let model = erank(GenerativeOptions {
        max_new_tokens: 3,
        ..GenerativeOptions::default()
    });
    let reranker: &dyn Reranker = &model;
    assert_eq!(reranker.name(), "tiny-erank");
    let docs = documents(23);
    let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let first_stage: Vec<f32> = (0..23).map(|i| 30.0 - i as f32 * 1.5).collect();
    let input = RerankInput {
        task: RerankTask::TextToCode,
        query: "return an item of a list",
        documents: &docs,
        first_stage: &first_stage,
    };
    let scores = reranker.rerank(&input).expect("rerank");
    assert_eq!(scores.len(), 23);

    // Each document judged on its own with the task's instruction; the
    // random model starts some answers with the digit "9", so both the
    // found-score and the no-score paths run.
    let lm = DecoderLm::load(&fixture("qwen3"), None, &Device::Cpu).expect("load decoder");
    let nine = lm.token_id("9").expect("a digit token");
    let mut values = Vec::new();
    let (mut found, mut missing) = (0, 0);
    for doc in &docs {
        let j = model
            .judge(RerankTask::TextToCode.instruction(), input.query, doc)
            .expect("judge");
        match j.score {
            Some(score) => {
                found += 1;
                // Here the score is the first generated token, so Pr(s) is
                // the softmax of the prompt's last logits at that token.
                assert_eq!((score, j.generated_ids[0]), (9, nine), "{:?}", j.text);
                let logits: Vec<f32> = lm
                    .last_logits(std::slice::from_ref(&j.prompt_ids))
                    .expect("logits")
                    .squeeze(0)
                    .expect("one row")
                    .to_vec1()
                    .expect("f32 logits");
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
                let p = (logits[nine as usize] - max).exp() / sum;
                assert!(
                    (j.probability - p).abs() <= 1e-5,
                    "{} vs {p}",
                    j.probability
                );
                assert!((j.value - 9.0 * p).abs() <= 1e-4);
            }
            None => {
                missing += 1;
                assert_eq!((j.probability, j.value), (0.0, 0.0));
            }
        }
        values.push(j.value);
    }
    assert!(found > 0 && missing > 0, "{found} scored, {missing} not");
    let expected = hybrid_scores(&first_stage, &values, 0.2).expect("hybrid");
    assert_eq!(scores, expected);
    let (zf, zr) = (z_scores(&first_stage), z_scores(&values));
    for i in 0..23 {
        assert!((scores[i] - (0.2 * zf[i] + 0.8 * zr[i])).abs() < 1e-6);
    }

    // Without first-stage scores the raw ERank scores come back.
    let bare = RerankInput {
        first_stage: &[],
        ..input
    };
    assert_eq!(reranker.rerank(&bare).expect("rerank"), values);

    // First-stage scores that do not match the documents are an error.
    let wrong = RerankInput {
        first_stage: &first_stage[..3],
        ..input
    };
    assert!(matches!(
        reranker.rerank(&wrong),
        Err(ModelError::Rerank(_))
    ));
}

#[test]
fn erank_cuts_long_texts_to_the_token_budget() {
    let model = erank(GenerativeOptions {
        max_text_tokens: 5,
        ..GenerativeOptions::default()
    });
    let full = erank(GenerativeOptions::default());
    let doc = "def first(xs):\n    return xs[0]";
    let longer = format!(
        "{doc}\n\n# and a long tail that is never seen {}",
        "x ".repeat(200)
    );
    let cut = model.prompt_ids("i", "q", doc).expect("ids");
    assert_eq!(model.prompt_ids("i", "q", &longer).expect("ids"), cut);
    assert!(cut.len() < full.prompt_ids("i", "q", doc).expect("ids").len());
    assert!(full.prompt_ids("i", "q", &longer).expect("ids").len() > cut.len() + 200);
}

#[test]
fn coderankllm_as_dyn_reranker_slides_over_23_documents() {
    let model = coderankllm(ListwiseOptions {
        max_passage_tokens: 24,
        ..ListwiseOptions::default()
    });
    let docs = documents(23);
    let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let input = RerankInput {
        task: RerankTask::TextToCode,
        query: "Return the first item of a list",
        documents: &docs,
        first_stage: &[],
    };
    let reranker: &dyn Reranker = &model;
    assert_eq!(reranker.name(), "tiny-coderankllm");
    let scores = reranker.rerank(&input).expect("rerank");
    assert_eq!(scores.len(), 23);
    let mut sorted = scores.clone();
    sorted.sort_by(f32::total_cmp);
    assert_eq!(sorted, (1..=23).map(|i| i as f32).collect::<Vec<_>>());

    // The same order by hand: four windows (13..23, 8..18, 3..13, 0..8),
    // each ranked by the model and applied to the current order.
    let ranges = window_ranges(23, 10, 5);
    assert_eq!(ranges, vec![13..23, 8..18, 3..13, 0..8]);
    let mut order: Vec<usize> = (0..23).collect();
    for range in ranges {
        let members = order[range.clone()].to_vec();
        let passages: Vec<&str> = members.iter().map(|&i| docs[i]).collect();
        let window = model
            .rank_window(ListwisePrompt::Docstring, input.query, &passages)
            .expect("rank a window");
        assert_eq!(window.permutation.len(), members.len());
        for (slot, &p) in order[range].iter_mut().zip(&window.permutation) {
            *slot = members[p];
        }
    }
    // The random model's junk contains bare digits, read as identifiers
    // when no bracketed one is present: some windows do move candidates.
    assert_ne!(order, (0..23).collect::<Vec<_>>());
    assert_eq!(model.rank(&input).expect("rank"), order);
    for (position, &doc) in order.iter().enumerate() {
        assert_eq!(scores[doc], (23 - position) as f32);
    }
}

#[test]
fn invalid_options_are_rejected() {
    let bad_window = ListwiseReranker::load(
        &fixture("qwen2"),
        None,
        &Device::Cpu,
        "x",
        ListwiseOptions {
            window: 10,
            stride: 11,
            ..ListwiseOptions::default()
        },
    );
    assert!(matches!(bad_window, Err(ModelError::Rerank(_))));
    let bad_alpha = GenerativeReranker::load(
        &fixture("qwen3"),
        None,
        &Device::Cpu,
        "x",
        GenerativeOptions {
            alpha: 1.5,
            ..GenerativeOptions::default()
        },
    );
    assert!(matches!(bad_alpha, Err(ModelError::Rerank(_))));
}
