//! Parity of the Qwen2/Qwen3 decoder, the LoRA merge, the pointwise
//! reranker and the decoder embedders with the tiny random-weight fixtures
//! (`tests/fixtures/tiny/`, references from transformers / peft; see the
//! README there for every key).

use candle_core::{DType, Device, Tensor};
use quarry_models::rerank::pointwise::{self, PointwiseReranker};
use quarry_models::rerank::{RerankInput, RerankTask, Reranker};
use quarry_models::{DecoderEmbedStyle, DecoderEmbedder, DecoderLm};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(name)
}

fn reference(name: &str) -> Value {
    let path = fixture(name).join("reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Largest |got − ref|, asserting each within 1e-4 + 1e-4·|ref|.
fn assert_close(what: &str, got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= 1e-4 + 1e-4 * w.abs(),
            "{what}[{i}]: got {g}, reference {w} (|diff| {err})"
        );
        worst = worst.max(err);
    }
    eprintln!("{what}: max |diff| {worst:.3e} over {} values", got.len());
    worst
}

fn qwen3() -> &'static DecoderLm {
    static LM: OnceLock<DecoderLm> = OnceLock::new();
    LM.get_or_init(|| DecoderLm::load(&fixture("qwen3"), None, &Device::Cpu).unwrap())
}

fn qwen2() -> &'static DecoderLm {
    static LM: OnceLock<DecoderLm> = OnceLock::new();
    LM.get_or_init(|| DecoderLm::load(&fixture("qwen2"), None, &Device::Cpu).unwrap())
}

/// The fixture reranker as the reference ran it: max_length 256.
fn reranker(adapter: bool) -> PointwiseReranker {
    let adapter = adapter.then(|| fixture("qwen3-lora"));
    let mut r =
        PointwiseReranker::load("tiny", &fixture("qwen3"), adapter.as_deref(), &Device::Cpu)
            .unwrap();
    r.max_length = 256;
    r
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

// ---------------------------------------------------------------- decoder

#[test]
fn qwen3_last_position_logits_match_transformers() {
    let r = &reference("qwen3")["reranker"]["cases"][0];
    let logits = qwen3().last_logits(&[ids(&r["input_ids"])]).unwrap();
    assert_eq!(logits.dims(), &[1, 336]);
    let got: Vec<f32> = logits.squeeze(0).unwrap().to_vec1().unwrap();
    assert_close(
        "qwen3 last_position_logits",
        &got,
        &floats(&r["last_position_logits"]),
    );
}

#[test]
fn qwen3_left_padded_batch_matches_each_sequence_alone() {
    let r = reference("qwen3");
    let rr = &r["reranker"];
    let cases = rr["cases"].as_array().unwrap();
    let batch: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["input_ids"])).collect();
    assert!(
        batch.iter().any(|s| s.len() != batch[0].len()),
        "the batch pads"
    );
    let (yes, no) = (
        rr["yes_token_id"].as_u64().unwrap() as usize,
        rr["no_token_id"].as_u64().unwrap() as usize,
    );
    let batched: Vec<Vec<f32>> = qwen3().last_logits(&batch).unwrap().to_vec2().unwrap();
    for (i, c) in cases.iter().enumerate() {
        let pair = [batched[i][yes], batched[i][no]];
        let want = [
            c["logit_yes"].as_f64().unwrap() as f32,
            c["logit_no"].as_f64().unwrap() as f32,
        ];
        assert_close(&format!("qwen3 batched case {i} yes/no"), &pair, &want);
        let alone: Vec<Vec<f32>> = qwen3()
            .last_logits(&[batch[i].clone()])
            .unwrap()
            .to_vec2()
            .unwrap();
        assert_close(
            &format!("qwen3 batched vs alone, case {i}"),
            &batched[i],
            &alone[0],
        );
    }
}

#[test]
fn qwen3_greedy_generation_reproduces_erank_ids() {
    let r = reference("qwen3");
    for (i, c) in r["erank"]["cases"].as_array().unwrap().iter().enumerate() {
        let want = ids(&c["generated_ids"]);
        let got = qwen3()
            .generate_greedy(&ids(&c["input_ids"]), want.len(), &[])
            .unwrap();
        assert_eq!(got.ids, want, "erank case {i}");
        assert_eq!(got.probs.len(), want.len());
        assert!(got.probs.iter().all(|p| *p > 0.0 && *p <= 1.0));
    }
    let c = &r["erank"]["cases"][0];
    let logits = qwen3().last_logits(&[ids(&c["input_ids"])]).unwrap();
    let got: Vec<f32> = logits.squeeze(0).unwrap().to_vec1().unwrap();
    assert_close(
        "qwen3 erank prompt logits",
        &got,
        &floats(&c["last_position_logits"]),
    );
}

#[test]
fn greedy_generation_stops_after_a_stop_id_and_reports_its_probability() {
    let c = &reference("qwen3")["erank"]["cases"][0];
    let prompt = ids(&c["input_ids"]);
    let want = ids(&c["generated_ids"]);
    // Stop on the third generated id: decoding ends right after it.
    let got = qwen3().generate_greedy(&prompt, 12, &[want[2]]).unwrap();
    let first = want.iter().position(|&id| id == want[2]).unwrap();
    assert_eq!(got.ids, want[..=first]);
    // The first step's probability is the softmax of the prompt's last logits.
    let logits: Vec<f32> = qwen3()
        .last_logits(std::slice::from_ref(&prompt))
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    let max = logits.iter().cloned().fold(f32::MIN, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    assert!((got.probs[0] - 1.0 / sum).abs() < 1e-6);
    assert!(qwen3()
        .generate_greedy(&prompt, 0, &[])
        .unwrap()
        .ids
        .is_empty());
}

#[test]
fn qwen2_greedy_generation_reproduces_coderankllm_ids() {
    let c = &reference("qwen2")["coderankllm"]["cases"][0];
    let want = ids(&c["generated_ids"]);
    let got = qwen2()
        .generate_greedy(&ids(&c["input_ids"]), want.len(), &[])
        .unwrap();
    assert_eq!(got.ids, want);
    let logits = qwen2().last_logits(&[ids(&c["input_ids"])]).unwrap();
    let got: Vec<f32> = logits.squeeze(0).unwrap().to_vec1().unwrap();
    assert_close(
        "qwen2 coderankllm prompt logits",
        &got,
        &floats(&c["last_position_logits"]),
    );
}

#[test]
fn token_id_finds_single_tokens_and_refuses_others() {
    assert_eq!(qwen3().token_id("yes").unwrap(), 264);
    assert_eq!(qwen3().token_id("no").unwrap(), 269);
    assert_eq!(qwen3().token_id("<|endoftext|>").unwrap(), 320);
    let err = qwen3().token_id("definitely not one token").unwrap_err();
    assert!(err.to_string().contains("not one token"), "{err}");
}

// ---------------------------------------------------------------- pointwise reranker

#[test]
fn pointwise_prompt_text_and_ids_equal_the_reference_including_truncation() {
    let r = reference("qwen3");
    let rr = &r["reranker"];
    assert_eq!(pointwise::PREFIX, text(&rr["prefix"]));
    assert_eq!(pointwise::SUFFIX, text(&rr["suffix"]));
    let reranker = reranker(false);
    assert_eq!(rr["max_length"].as_u64(), Some(256));
    let cases = rr["cases"].as_array().unwrap();
    let mut truncated = 0;
    for (i, c) in cases.iter().enumerate() {
        let (instruction, query, doc) = (
            text(&c["instruction"]),
            text(&c["query"]),
            text(&c["document"]),
        );
        assert_eq!(
            pointwise::body(instruction, query, doc),
            text(&c["body_text"]),
            "case {i}"
        );
        assert_eq!(
            pointwise::prompt_text(instruction, query, doc),
            text(&c["prompt_text"]),
            "case {i}"
        );
        let got = reranker.prompt_ids(instruction, query, doc).unwrap();
        assert_eq!(got, ids(&c["input_ids"]), "case {i}");
        assert!(got.len() <= 256);
        if c["truncated"].as_bool().unwrap() {
            truncated += 1;
            assert_eq!(got.len(), 256, "a truncated prompt fills max_length");
        }
    }
    assert_eq!(truncated, 1, "the reference exercises truncation");
}

#[test]
fn pointwise_scores_and_logits_match_the_reference() {
    let r = reference("qwen3");
    let reranker = reranker(false);
    for (i, c) in r["reranker"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let got = reranker
            .score(
                text(&c["instruction"]),
                text(&c["query"]),
                &[text(&c["document"])],
            )
            .unwrap();
        assert_close(
            &format!("qwen3 reranker score, case {i}"),
            &got,
            &[c["score"].as_f64().unwrap() as f32],
        );
    }
    let c = &r["reranker"]["cases"][0];
    let prompt = reranker
        .prompt_ids(
            text(&c["instruction"]),
            text(&c["query"]),
            text(&c["document"]),
        )
        .unwrap();
    let logits: Vec<f32> = reranker
        .model()
        .last_logits(&[prompt])
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_close(
        "qwen3 reranker case 0 logits",
        &logits,
        &floats(&c["last_position_logits"]),
    );
}

#[test]
fn pointwise_batches_score_like_one_by_one_in_input_order() {
    let r = reference("qwen3");
    let cases = r["reranker"]["cases"].as_array().unwrap();
    let docs: Vec<&str> = cases.iter().map(|c| text(&c["document"])).collect();
    let (instruction, query) = (text(&cases[2]["instruction"]), text(&cases[2]["query"]));
    let mut reranker = reranker(false);
    let batched = reranker.score(instruction, query, &docs).unwrap();
    reranker.batch_size = 1;
    let alone = reranker.score(instruction, query, &docs).unwrap();
    assert_close("batched vs one by one", &batched, &alone);
    // Documents of different lengths, so sorting by length reorders them.
    let lengths: Vec<usize> = docs
        .iter()
        .map(|d| reranker.prompt_ids(instruction, query, d).unwrap().len())
        .collect();
    assert!(lengths.windows(2).any(|w| w[0] > w[1]), "{lengths:?}");
    assert_close(
        "case 2 inside the batch",
        &batched[2..],
        &[cases[2]["score"].as_f64().unwrap() as f32],
    );
}

#[test]
fn the_reranker_trait_uses_the_task_instruction_unless_one_is_set() {
    let r = reference("qwen3");
    let c = &r["reranker"]["cases"][1];
    let (query, doc) = (text(&c["query"]), text(&c["document"]));
    let docs = [doc, text(&r["reranker"]["cases"][0]["document"])];
    let input = RerankInput {
        task: RerankTask::TextToCode,
        query,
        documents: &docs,
        first_stage: &[1.0, 0.5],
    };
    let mut reranker = reranker(false);
    assert_eq!(reranker.name(), "tiny");
    let by_task = reranker.rerank(&input).unwrap();
    let expected = reranker
        .score(RerankTask::TextToCode.instruction(), query, &docs)
        .unwrap();
    assert_eq!(by_task, expected);
    reranker.instruction = Some(text(&c["instruction"]).to_string());
    let custom = reranker.rerank(&input).unwrap();
    assert_close(
        "custom instruction",
        &custom[..1],
        &[c["score"].as_f64().unwrap() as f32],
    );
    assert_ne!(by_task, custom, "the instruction reaches the prompt");
    let empty = RerankInput {
        documents: &[],
        first_stage: &[],
        ..input
    };
    assert!(reranker.rerank(&empty).unwrap().is_empty());
}

#[test]
fn max_length_bounds_every_prompt_and_keeps_the_suffix() {
    let mut reranker = reranker(false);
    let suffix = ids(&reference("qwen3")["reranker"]["suffix_ids"]);
    // A query longer than the budget is cut too; the answer position stays.
    let query = "read a file line by line ".repeat(40);
    let prompt = reranker
        .prompt_ids("find code", &query, "def f(): pass")
        .unwrap();
    assert_eq!(prompt.len(), 256);
    assert!(prompt.ends_with(&suffix));
    assert_eq!(
        reranker.score("find code", &query, &["x"]).unwrap().len(),
        1
    );

    reranker.max_length = 20;
    let err = reranker.prompt_ids("i", "q", "d").unwrap_err().to_string();
    assert!(err.contains("max_length 20"), "{err}");
}

// ---------------------------------------------------------------- LoRA

#[test]
fn merged_lora_adapter_matches_the_unmerged_peft_model() {
    let base = reference("qwen3");
    let r = reference("qwen3-lora");
    let reranker = reranker(true);
    for (i, c) in r["reranker"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let (instruction, query, doc) = (
            text(&c["instruction"]),
            text(&c["query"]),
            text(&c["document"]),
        );
        assert_eq!(
            reranker.prompt_ids(instruction, query, doc).unwrap(),
            ids(&c["input_ids"])
        );
        let got = reranker.score(instruction, query, &[doc]).unwrap();
        assert_close(
            &format!("lora score, case {i}"),
            &got,
            &[c["score"].as_f64().unwrap() as f32],
        );
        // The adapter changes the answer: not the base model's score.
        let base_score = base["reranker"]["cases"][i]["score"].as_f64().unwrap() as f32;
        assert!(
            (got[0] - base_score).abs() > 1e-3,
            "case {i}: adapter had no effect"
        );
    }
    let c = &r["reranker"]["cases"][0];
    let logits: Vec<f32> = reranker
        .model()
        .last_logits(&[ids(&c["input_ids"])])
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_close(
        "lora case 0 logits",
        &logits,
        &floats(&c["last_position_logits"]),
    );
}

/// Writes the fixture adapter to a temporary directory, its config and
/// tensors edited.
fn edited_adapter(
    edit_config: impl FnOnce(&mut Value),
    edit_tensors: impl FnOnce(&mut HashMap<String, Tensor>),
) -> tempfile::TempDir {
    let src = fixture("qwen3-lora");
    let dir = tempfile::tempdir().unwrap();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("adapter_config.json")).unwrap())
            .unwrap();
    edit_config(&mut config);
    std::fs::write(dir.path().join("adapter_config.json"), config.to_string()).unwrap();
    let mut tensors =
        candle_core::safetensors::load(src.join("adapter_model.safetensors"), &Device::Cpu)
            .unwrap();
    edit_tensors(&mut tensors);
    candle_core::safetensors::save(&tensors, dir.path().join("adapter_model.safetensors")).unwrap();
    dir
}

fn load_error(adapter: &tempfile::TempDir) -> String {
    DecoderLm::load(&fixture("qwen3"), Some(adapter.path()), &Device::Cpu)
        .unwrap_err()
        .to_string()
}

#[test]
fn adapters_that_do_not_fit_the_base_are_refused_with_the_reason() {
    const Q0: &str = "base_model.model.model.layers.0.self_attn.q_proj";
    // A rank other than the config's r.
    let dir = edited_adapter(|c| c["r"] = 8.into(), |_| {});
    let err = load_error(&dir);
    assert!(err.contains("rank 16") && err.contains("r = 8"), "{err}");
    // An option whose merge is not W += scale · B @ A.
    let dir = edited_adapter(|c| c["use_dora"] = true.into(), |_| {});
    assert!(load_error(&dir).contains("DoRA"));
    // An update of another shape than the base weight (a model of another size).
    let dir = edited_adapter(
        |_| {},
        |t| {
            let b = Tensor::zeros((16, 16), DType::F32, &Device::Cpu).unwrap();
            t.insert(format!("{Q0}.lora_B.weight"), b);
        },
    );
    let err = load_error(&dir);
    assert!(err.contains("q_proj") && err.contains("[32, 32]"), "{err}");
    // A module the base does not have (a deeper model).
    let dir = edited_adapter(
        |_| {},
        |t| {
            for half in ["lora_A", "lora_B"] {
                let x = t[&format!("{Q0}.{half}.weight")].clone();
                t.insert(
                    format!("base_model.model.model.layers.7.self_attn.q_proj.{half}.weight"),
                    x,
                );
            }
        },
    );
    let err = load_error(&dir);
    assert!(err.contains("layers.7.self_attn.q_proj.weight"), "{err}");
}

// ---------------------------------------------------------------- decoder embedders

fn check_embedder(folder: &str, style: DecoderEmbedStyle) {
    let r = reference(folder);
    let e = &r["embedding"];
    assert_eq!(text(&e["query_format"]), style.query_format);
    let task = text(&e["task"]);
    let mut embedder =
        DecoderEmbedder::load(&fixture(folder), style.clone(), &Device::Cpu).unwrap();
    assert_eq!(embedder.dimension(), 32);
    let cases = e["cases"].as_array().unwrap();
    let (mut queries, mut documents) = (Vec::new(), Vec::new());
    for (i, c) in cases.iter().enumerate() {
        let raw = text(&c["raw_text"]);
        let formatted = match text(&c["kind"]) {
            "query" => {
                queries.push(c);
                style.format_query(task, raw)
            }
            _ => {
                documents.push(c);
                raw.to_string()
            }
        };
        assert_eq!(formatted, text(&c["text"]), "{folder} case {i}");
        assert_eq!(
            embedder.token_ids(&formatted).unwrap(),
            ids(&c["input_ids"]),
            "{folder} case {i}"
        );
    }
    let raw = |cs: &[&Value]| {
        cs.iter()
            .map(|c| text(&c["raw_text"]).to_string())
            .collect::<Vec<_>>()
    };
    let (q_texts, d_texts) = (raw(&queries), raw(&documents));
    let q_refs: Vec<&str> = q_texts.iter().map(String::as_str).collect();
    let d_refs: Vec<&str> = d_texts.iter().map(String::as_str).collect();
    let got_q = embedder.embed_queries(task, &q_refs).unwrap();
    let got_d = embedder.embed_documents(&d_refs).unwrap();
    for (got, c) in got_q
        .iter()
        .chain(&got_d)
        .zip(queries.iter().chain(&documents))
    {
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_close(
            &format!("{folder} embedding {:?}", text(&c["raw_text"])),
            got,
            &floats(&c["embedding"]),
        );
    }
    embedder.batch_size = 1;
    let alone = embedder.embed_documents(&d_refs).unwrap();
    for (a, b) in alone.iter().zip(&got_d) {
        assert_close(&format!("{folder} batched vs alone"), a, b);
    }
}

#[test]
fn qwen3_embedding_matches_the_reference_ids_and_vectors() {
    let r = reference("qwen3");
    assert_eq!(
        DecoderEmbedStyle::qwen3_embedding().append_token.as_deref(),
        r["embedding"]["appended_token"].as_str()
    );
    check_embedder("qwen3", DecoderEmbedStyle::qwen3_embedding());
}

#[test]
fn coder_embedding_matches_the_reference_ids_and_vectors() {
    check_embedder("qwen2", DecoderEmbedStyle::bge_coder());
}

#[test]
fn embedder_truncation_keeps_the_appended_token() {
    let mut embedder = DecoderEmbedder::load(
        &fixture("qwen3"),
        DecoderEmbedStyle::qwen3_embedding(),
        &Device::Cpu,
    )
    .unwrap();
    embedder.max_length = 5;
    let ids = embedder
        .token_ids("def search(xs, target): return xs")
        .unwrap();
    assert_eq!(ids.len(), 5);
    assert_eq!(ids.last(), Some(&320));
}
