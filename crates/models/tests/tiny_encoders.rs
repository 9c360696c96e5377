//! Parity of the cross-encoder rerankers and the NomicBert (CodeRankEmbed)
//! encoder with the tiny random-weight fixtures in `tests/fixtures/tiny/`,
//! whose `reference.json` files were computed by transformers (the
//! cross-encoders) and by a float64 numpy NomicBert (see the README there).
//! Floats compare as `|got - ref| <= 1e-4 + 1e-4 * |ref|`; token ids exactly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use quarry_models::nomic::{NomicDescription, Pooling, TextKind, CODE_RANK_EMBED};
use quarry_models::rerank::cross_encoder::{CrossEncoder, CrossEncoderArchitecture};
use quarry_models::rerank::{RerankInput, RerankTask, Reranker};
use quarry_models::{ModelError, NomicEmbedder};
use serde_json::Value;

/// Batched and one-by-one runs of the same input may differ by float
/// rounding only.
const SAME: f32 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(name)
}

fn reference(name: &str) -> Value {
    let path = fixture(name).join("reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an id list: {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a float list: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no string {key}"))
}

/// Asserts parity within the fixtures' tolerance; returns the largest
/// absolute deviation.
fn assert_parity(what: &str, got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let dev = (g - w).abs();
        assert!(
            dev <= 1e-4 + 1e-4 * w.abs(),
            "{what}[{i}]: got {g}, reference {w}"
        );
        worst = worst.max(dev);
    }
    worst
}

/// Asserts two runs of the same input agree up to rounding.
fn assert_same(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= SAME, "{what}[{i}]: {x} vs {y}");
    }
}

fn cross_encoder(name: &str) -> CrossEncoder {
    CrossEncoder::load(&fixture(name), Device::Cpu).unwrap()
}

/// Every reference case of a cross-encoder fixture: ids (and type / position
/// ids) exactly, logits within tolerance one by one and as one padded batch,
/// batch equal to one by one. Returns the largest logit deviation.
fn check_cross_encoder(name: &str, architecture: CrossEncoderArchitecture) -> f32 {
    let reference = reference(name);
    let model = cross_encoder(name);
    assert_eq!(model.architecture(), architecture);
    assert_eq!(
        reference["architecture"].as_str(),
        Some(architecture.config_name())
    );
    assert_eq!(
        model.max_length() as u64,
        reference["max_length"].as_u64().unwrap()
    );
    let roberta = architecture == CrossEncoderArchitecture::XlmRoberta;

    let cases = reference["cases"].as_array().unwrap();
    let pairs: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| (text(c, "query"), text(c, "document")))
        .collect();
    let mut worst = 0f32;
    let mut single = Vec::new();
    for (i, (case, pair)) in cases.iter().zip(&pairs).enumerate() {
        let inputs = model.inputs(&[*pair]).unwrap();
        let input_ids = ids(&case["input_ids"]);
        assert_eq!(inputs.input_ids, vec![input_ids.clone()], "case {i} ids");
        assert_eq!(
            inputs.attention_mask,
            vec![ids(&case["attention_mask"])],
            "case {i} mask"
        );
        if roberta {
            assert_eq!(inputs.token_type_ids, vec![vec![0; input_ids.len()]]);
            assert_eq!(
                inputs.position_ids,
                Some(vec![ids(&case["position_ids"])]),
                "case {i} position ids"
            );
        } else {
            assert_eq!(
                inputs.token_type_ids,
                vec![ids(&case["token_type_ids"])],
                "case {i} type ids"
            );
            assert_eq!(inputs.position_ids, None);
        }
        if case["truncated"].as_bool().unwrap() {
            assert_eq!(input_ids.len(), model.max_length(), "case {i} is cut");
        }
        let score = model.score_pairs(&[*pair]).unwrap();
        worst = worst.max(assert_parity(
            &format!("{name} case {i} logit"),
            &score,
            &floats(&case["logits"]),
        ));
        single.extend(score);
    }

    // The reference's padded batch, in its order.
    let batch = model.inputs(&pairs).unwrap();
    let column = |key: &str| -> Vec<Vec<u32>> { cases.iter().map(|c| ids(&c[key])).collect() };
    assert_eq!(batch.input_ids, column("padded_input_ids"));
    assert_eq!(batch.attention_mask, column("padded_attention_mask"));
    if roberta {
        assert_eq!(batch.position_ids, Some(column("padded_position_ids")));
    } else {
        assert_eq!(batch.token_type_ids, column("padded_token_type_ids"));
    }

    let batched = model.score_pairs(&pairs).unwrap();
    assert_same(&format!("{name} batch vs single"), &batched, &single);
    let want: Vec<f32> = cases.iter().flat_map(|c| floats(&c["logits"])).collect();
    worst = worst.max(assert_parity(&format!("{name} batch"), &batched, &want));

    // More pairs than one forward pass takes (32), in mixed lengths.
    let many: Vec<(&str, &str)> = pairs.iter().copied().cycle().take(41).collect();
    let scores = model.score_pairs(&many).unwrap();
    for (i, score) in scores.iter().enumerate() {
        assert_same(
            &format!("{name} pair {i} of 41"),
            &[*score],
            &[single[i % 4]],
        );
    }
    eprintln!("{name}: max |logit - reference| = {worst:e}");
    worst
}

#[test]
fn bert_cross_encoder_matches_transformers() {
    check_cross_encoder("bert-cross-encoder", CrossEncoderArchitecture::Bert);
}

#[test]
fn xlm_roberta_cross_encoder_matches_transformers() {
    check_cross_encoder(
        "xlm-roberta-cross-encoder",
        CrossEncoderArchitecture::XlmRoberta,
    );
}

/// Indices sorted by decreasing score.
fn ranking(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

#[test]
fn cross_encoders_as_rerankers_rank_like_the_reference() {
    for name in ["bert-cross-encoder", "xlm-roberta-cross-encoder"] {
        let reference = reference(name);
        let cases = reference["cases"].as_array().unwrap();
        let model = cross_encoder(name);
        let reranker: &dyn Reranker = &model;
        assert_eq!(reranker.name(), name);

        let mut scores = Vec::new();
        for case in cases {
            let documents = [text(case, "document")];
            let input = RerankInput {
                task: RerankTask::TextToCode,
                query: text(case, "query"),
                documents: &documents,
                first_stage: &[0.0],
            };
            let got = reranker.rerank(&input).unwrap();
            assert_eq!(got.len(), 1);
            scores.push(got[0]);
        }
        let want: Vec<f32> = cases.iter().map(|c| floats(&c["logits"])[0]).collect();
        assert_parity(&format!("{name} rerank"), &scores, &want);
        assert_eq!(ranking(&scores), ranking(&want), "{name} order");

        // One query against every document: one score per document, in
        // input order, the same as scoring the pairs directly.
        let query = text(&cases[0], "query");
        let documents: Vec<&str> = cases.iter().map(|c| text(c, "document")).collect();
        let input = RerankInput {
            task: RerankTask::TextToCode,
            query,
            documents: &documents,
            first_stage: &[0.0; 4],
        };
        let got = reranker.rerank(&input).unwrap();
        let pairs: Vec<(&str, &str)> = documents.iter().map(|&d| (query, d)).collect();
        assert_same(name, &got, &model.score_pairs(&pairs).unwrap());
        assert_parity(&format!("{name} rerank doc 0"), &got[..1], &want[..1]);

        let empty = RerankInput {
            task: RerankTask::TextToCode,
            query,
            documents: &[],
            first_stage: &[],
        };
        assert!(reranker.rerank(&empty).unwrap().is_empty());

        let renamed = cross_encoder(name).with_name("bge-reranker-base");
        assert_eq!(Reranker::name(&renamed), "bge-reranker-base");
    }
}

#[test]
fn cross_encoder_truncates_the_longer_text_first() {
    let reference = reference("bert-cross-encoder");
    let case = &reference["cases"][0];
    let full = ids(&case["input_ids"]); // [CLS] 9 query tokens [SEP] 21 document tokens [SEP]
    let pair = (text(case, "query"), text(case, "document"));
    let model = cross_encoder("bert-cross-encoder")
        .with_max_length(24)
        .unwrap();
    assert_eq!(model.max_length(), 24);
    let cut = model.inputs(&[pair]).unwrap().input_ids.remove(0);
    // 21 text tokens fit: the 9-token query stays whole, the document keeps 12.
    let mut want = full[..11].to_vec();
    want.extend_from_slice(&full[11..23]);
    want.push(3);
    assert_eq!(cut, want);
    let score = model.score_pairs(&[pair]).unwrap();
    assert!(score[0].is_finite());
    // Truncated pairs batched with others score as they do alone.
    let long = (
        text(&reference["cases"][1], "query"),
        text(&reference["cases"][1], "document"),
    );
    let batched = model.score_pairs(&[long, pair]).unwrap();
    assert_same("truncated batch", &batched[1..], &score);

    for bad in [2, 65] {
        let err = cross_encoder("bert-cross-encoder")
            .with_max_length(bad)
            .unwrap_err();
        assert!(matches!(err, ModelError::Config { .. }), "{bad}: {err}");
        assert!(err.to_string().contains("max length"), "{err}");
    }
}

/// Copies `bert-cross-encoder` into `dir` with a two-label head whose
/// positive minus negative logit equals the one-label logit.
fn two_label_copy(dir: &Path) {
    let source = fixture("bert-cross-encoder");
    std::fs::copy(source.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("config.json")).unwrap())
            .unwrap();
    config["id2label"] = serde_json::json!({"0": "LABEL_0", "1": "LABEL_1"});
    config["label2id"] = serde_json::json!({"LABEL_0": 0, "LABEL_1": 1});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();

    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(source.join("model.safetensors"), &Device::Cpu).unwrap();
    let halve = |t: &Tensor, sign: f64| t.affine(0.5 * sign, 0.0).unwrap();
    let weight = tensors["classifier.weight"].clone(); // (1, hidden)
    let bias = tensors["classifier.bias"].clone(); // (1)
    let weight = Tensor::cat(&[halve(&weight, -1.0), halve(&weight, 1.0)], 0).unwrap();
    let bias = Tensor::cat(&[halve(&bias, -1.0), halve(&bias, 1.0)], 0).unwrap();
    tensors.insert("classifier.weight".into(), weight);
    tensors.insert("classifier.bias".into(), bias);
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
}

#[test]
fn two_label_head_scores_positive_minus_negative_logit() {
    let dir = tempfile::tempdir().unwrap();
    two_label_copy(dir.path());
    let model = CrossEncoder::load(dir.path(), Device::Cpu).unwrap();
    let reference = reference("bert-cross-encoder");
    let cases = reference["cases"].as_array().unwrap();
    let pairs: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| (text(c, "query"), text(c, "document")))
        .collect();
    let want: Vec<f32> = cases.iter().map(|c| floats(&c["logits"])[0]).collect();
    assert_parity("two labels", &model.score_pairs(&pairs).unwrap(), &want);
}

fn nomic() -> NomicEmbedder {
    NomicEmbedder::load(&fixture("nomic-bert"), Device::Cpu).unwrap()
}

fn kind_of(case: &Value) -> TextKind {
    match text(case, "kind") {
        "query" => TextKind::Query,
        "document" => TextKind::Document,
        other => panic!("unknown kind {other}"),
    }
}

/// Embeds every reference case with the matching method, queries and
/// documents each as one batch, in reference order.
fn embed_cases(model: &NomicEmbedder, cases: &[Value]) -> Vec<Vec<f32>> {
    let of = |kind: TextKind| -> Vec<&str> {
        cases
            .iter()
            .filter(|c| kind_of(c) == kind)
            .map(|c| text(c, "raw_text"))
            .collect()
    };
    let mut queries = model
        .embed_queries(&of(TextKind::Query))
        .unwrap()
        .into_iter();
    let mut documents = model
        .embed_documents(&of(TextKind::Document))
        .unwrap()
        .into_iter();
    cases
        .iter()
        .map(|c| match kind_of(c) {
            TextKind::Query => queries.next().unwrap(),
            TextKind::Document => documents.next().unwrap(),
        })
        .collect()
}

#[test]
fn nomic_bert_matches_numpy_reference() {
    let reference = reference("nomic-bert");
    let cases = reference["cases"].as_array().unwrap();
    let model = nomic();
    assert_eq!(model.dim(), 16);
    assert_eq!(model.description(), CODE_RANK_EMBED);
    assert_eq!(
        reference["query_prefix"].as_str(),
        Some(CODE_RANK_EMBED.query_prefix)
    );
    assert_eq!(model.max_tokens(), 2048); // max_trained_positions

    for (i, case) in cases.iter().enumerate() {
        let kind = kind_of(case);
        let raw = text(case, "raw_text");
        assert_eq!(
            format!("{}{raw}", CODE_RANK_EMBED.prefix(kind)),
            text(case, "text")
        );
        let batch = model.encode(&[raw], kind).unwrap();
        let input_ids = ids(&case["input_ids"]);
        assert_eq!(batch.input_ids, vec![input_ids.clone()], "case {i} ids");
        assert_eq!(batch.token_type_ids, vec![ids(&case["token_type_ids"])]);
        assert_eq!(batch.attention_mask, vec![ids(&case["attention_mask"])]);
        // Without [CLS] and [SEP], and without the prefix.
        assert_eq!(
            model.count_tokens(text(case, "text")),
            input_ids.len() - 2,
            "case {i} count"
        );
    }
    assert_eq!(
        model.count_tokens(text(&cases[2], "raw_text")),
        ids(&cases[2]["input_ids"]).len() - 2
    );

    // The reference's padded batch (texts already prefixed; documents get no prefix).
    let texts: Vec<&str> = cases.iter().map(|c| text(c, "text")).collect();
    let batch = model.encode(&texts, TextKind::Document).unwrap();
    let column = |key: &str| -> Vec<Vec<u32>> { cases.iter().map(|c| ids(&c[key])).collect() };
    assert_eq!(batch.input_ids, column("padded_input_ids"));
    assert_eq!(batch.attention_mask, column("padded_attention_mask"));

    let mean = model.with_description(NomicDescription {
        pooling: Pooling::Mean,
        ..CODE_RANK_EMBED
    });
    let cls = nomic();
    let mut worst = [0f32; 2];
    for (slot, (model, key)) in [(&cls, "embedding_cls"), (&mean, "embedding_mean")]
        .into_iter()
        .enumerate()
    {
        let batched = embed_cases(model, cases);
        for (i, (case, vector)) in cases.iter().zip(&batched).enumerate() {
            let want = floats(&case[key]);
            worst[slot] = worst[slot].max(assert_parity(&format!("{key} case {i}"), vector, &want));
            let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{key} case {i} norm {norm}");
            // One by one: padding in the batch changes nothing.
            let alone = match kind_of(case) {
                TextKind::Query => model.embed_queries(&[text(case, "raw_text")]),
                TextKind::Document => model.embed_documents(&[text(case, "raw_text")]),
            }
            .unwrap();
            assert_same(&format!("{key} case {i} alone"), &alone[0], vector);
        }
    }
    eprintln!(
        "nomic-bert: max |embedding - reference| cls {:e}, mean {:e}",
        worst[0], worst[1]
    );

    // More texts than one forward pass takes (32), in mixed lengths.
    let documents: Vec<&str> = cases
        .iter()
        .map(|c| text(c, "raw_text"))
        .cycle()
        .take(41)
        .collect();
    let many = cls.embed_documents(&documents).unwrap();
    let each = cls.embed_documents(&documents[..4]).unwrap();
    for (i, vector) in many.iter().enumerate() {
        assert_same(&format!("document {i} of 41"), vector, &each[i % 4]);
    }
    assert!(cls.embed_queries(&[]).unwrap().is_empty());
}

#[test]
fn nomic_bert_truncation_cuts_the_end() {
    let reference = reference("nomic-bert");
    let document = &reference["cases"][2];
    let full = ids(&document["input_ids"]);
    let model = nomic().with_max_tokens(10).unwrap();
    assert_eq!(model.max_tokens(), 10);
    let raw = text(document, "raw_text");
    let cut = model.encode(&[raw], TextKind::Document).unwrap();
    let mut want = full[..9].to_vec();
    want.push(3); // [SEP]
    assert_eq!(cut.input_ids, vec![want]);

    // Cutting tokens is the same as embedding the text those tokens spell.
    let short = "with open(path) as f:";
    assert_eq!(model.encode(&[short], TextKind::Document).unwrap(), cut);
    let got = model.embed_documents(&[raw, short]).unwrap();
    assert_same("truncated vs short text", &got[0], &got[1]);

    // The query prefix counts towards the limit.
    let query = model
        .encode(&[text(&reference["cases"][0], "raw_text")], TextKind::Query)
        .unwrap();
    let query_full = ids(&reference["cases"][0]["input_ids"]);
    assert_eq!(query.input_ids[0][..9], query_full[..9]);
    assert_eq!(query.input_ids[0].len(), 10);

    for bad in [2, 8193] {
        let err = nomic().with_max_tokens(bad).unwrap_err();
        assert!(matches!(err, ModelError::Config { .. }), "{bad}: {err}");
    }
}

#[test]
fn nomic_description_sets_document_prefix() {
    let reference = reference("nomic-bert");
    let case = &reference["cases"][0];
    let described = NomicDescription {
        query_prefix: "",
        document_prefix: CODE_RANK_EMBED.query_prefix,
        pooling: Pooling::Cls,
    };
    let model = nomic().with_description(described);
    let batch = model
        .encode(&[text(case, "raw_text")], TextKind::Document)
        .unwrap();
    assert_eq!(batch.input_ids, vec![ids(&case["input_ids"])]);
    let got = model.embed_documents(&[text(case, "raw_text")]).unwrap();
    assert_parity(
        "prefixed document",
        &got[0],
        &floats(&case["embedding_cls"]),
    );
}

#[test]
fn missing_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    for err in [
        CrossEncoder::load(dir.path(), Device::Cpu).unwrap_err(),
        NomicEmbedder::load(dir.path(), Device::Cpu).unwrap_err(),
    ] {
        match &err {
            ModelError::MissingFile { path } => assert_eq!(path, &config),
            other => panic!("expected MissingFile, got {other:?}"),
        }
        assert!(err.to_string().contains("config.json"), "{err}");
    }
}

#[test]
fn unknown_architecture_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"architectures": ["GPT2ForSequenceClassification"], "model_type": "gpt2"}"#,
    )
    .unwrap();
    let err = CrossEncoder::load(dir.path(), Device::Cpu).unwrap_err();
    match &err {
        ModelError::UnsupportedArchitecture {
            architecture,
            supported,
            ..
        } => {
            assert_eq!(architecture, "GPT2ForSequenceClassification");
            assert!(supported.contains("XLMRobertaForSequenceClassification"));
        }
        other => panic!("expected UnsupportedArchitecture, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("GPT2ForSequenceClassification")
            && message.contains("BertForSequenceClassification"),
        "{message}"
    );

    // Each loader refuses the other's checkpoints by name, before any tensor.
    let err = CrossEncoder::load(&fixture("nomic-bert"), Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, ModelError::UnsupportedArchitecture { architecture, .. } if architecture == "NomicBertModel"),
        "{err:?}"
    );
    let err = NomicEmbedder::load(&fixture("bert-cross-encoder"), Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, ModelError::UnsupportedArchitecture { architecture, .. } if architecture == "BertForSequenceClassification"),
        "{err:?}"
    );

    // No `architectures` at all.
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "bert"}"#).unwrap();
    let err = CrossEncoder::load(dir.path(), Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("architectures"), "{err}");
}

/// Largest |got - want| / (scale of the reference values), over all pairs.
fn relative_deviation(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, w| m.max(w.abs())).max(1e-6);
    got.iter().zip(want).fold(0f32, |m, (g, w)| {
        // NaN (a mask that overflowed) is the worst deviation, not none.
        let d = (g - w).abs() / scale;
        if d.is_nan() {
            f32::INFINITY
        } else {
            m.max(d)
        }
    })
}

/// The GPU path's precision (bf16, [`quarry_models::model_dtype`] on CUDA
/// 8.0+ and Metal), run on the CPU: every encoder loads in it and stays
/// within bf16's rounding of the f32 references (8-bit mantissas through
/// two layers: up to several percent of the tiny heads' small logits, not
/// the 1e-4 of f32), and the rerankers order the pairs as the reference.
/// Pairs run as one padded batch, so the pads' mask is exercised too.
#[test]
fn encoders_in_bf16_stay_close_to_the_references() {
    const BF16_TOLERANCE: f32 = 0.1;
    let mut report = Vec::new();
    for name in ["bert-cross-encoder", "xlm-roberta-cross-encoder"] {
        let model = CrossEncoder::load_as(&fixture(name), Device::Cpu, DType::BF16).unwrap();
        let expected = reference(name);
        let cases = expected["cases"].as_array().unwrap();
        let pairs: Vec<(&str, &str)> = cases
            .iter()
            .map(|c| (text(c, "query"), text(c, "document")))
            .collect();
        let got = model.score_pairs(&pairs).unwrap();
        let want: Vec<f32> = cases.iter().map(|c| floats(&c["logits"])[0]).collect();
        let deviation = relative_deviation(&got, &want);
        report.push(format!("{name} {deviation:.4}"));
        assert!(deviation <= BF16_TOLERANCE, "{name}: {got:?} vs {want:?}");
        assert_eq!(ranking(&got), ranking(&want), "{name}: {got:?} vs {want:?}");
    }

    let model = NomicEmbedder::load_as(&fixture("nomic-bert"), Device::Cpu, DType::BF16).unwrap();
    let expected = reference("nomic-bert");
    let cases = expected["cases"].as_array().unwrap();
    let got = embed_cases(&model, cases);
    for (case, vector) in cases.iter().zip(&got) {
        let deviation = relative_deviation(vector, &floats(&case["embedding_cls"]));
        report.push(format!("nomic-bert {deviation:.4}"));
        assert!(deviation <= BF16_TOLERANCE, "nomic-bert: {vector:?}");
    }

    let dir = fixture("bert-embedder");
    let spec = quarry_models::local_model(&dir).unwrap();
    let model = quarry_models::Embedder::load_as(&dir, spec, Device::Cpu, DType::BF16).unwrap();
    let expected = reference("bert-embedder");
    for case in expected["cases"].as_array().unwrap() {
        let vector = model.embed(&[text(case, "text")]).unwrap().remove(0);
        let deviation = relative_deviation(&vector, &floats(&case["embedding"]));
        report.push(format!("bert-embedder {deviation:.4}"));
        assert!(deviation <= BF16_TOLERANCE, "bert-embedder: {vector:?}");
    }
    eprintln!("bf16 deviations: {}", report.join(", "));
}
