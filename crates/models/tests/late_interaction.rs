//! MaxSim (late interaction) over the tiny BERT fixture's token vectors.

use std::path::PathBuf;

use candle_core::Device;
use quarry_models::rerank::late_interaction::MaxSimReranker;
use quarry_models::rerank::{RerankInput, RerankTask, Reranker};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/bert-embedder")
}

#[test]
fn a_document_equal_to_the_query_matches_every_token_fully() {
    let reranker = MaxSimReranker::load(&fixture(), Device::Cpu, 64, 0.0).unwrap();
    let query = "parse the config file";
    let scores = reranker
        .maxsim(
            query,
            &[query, "def parse(path): return open(path).read()", "zzz"],
        )
        .unwrap();
    assert!((scores[0] - 1.0).abs() < 1e-5, "{scores:?}");
    assert!(scores[1] < scores[0] && scores[2] < scores[0], "{scores:?}");
    for s in &scores {
        assert!((-1.0..=1.0 + 1e-5).contains(s), "{scores:?}");
    }
    // Batching and order do not change a document's score.
    let alone = reranker.maxsim(query, &["zzz"]).unwrap();
    assert!((alone[0] - scores[2]).abs() < 1e-5);
    assert!(reranker.maxsim(query, &[]).unwrap().is_empty());
}

#[test]
fn the_first_stage_is_blended_by_z_scores() {
    let documents = [
        "parse the config file",
        "read a file",
        "unrelated words here",
    ];
    let alone = MaxSimReranker::load(&fixture(), Device::Cpu, 64, 0.0).unwrap();
    let blended = MaxSimReranker::load(&fixture(), Device::Cpu, 64, 0.5).unwrap();
    let input = RerankInput {
        task: RerankTask::TextToCode,
        query: "parse the config file",
        documents: &documents,
        first_stage: &[0.1, 0.3, 0.2],
    };
    let maxsim = alone.rerank(&input).unwrap();
    let mixed = blended.rerank(&input).unwrap();
    let z = |xs: &[f32]| quarry_models::rerank::generative::z_scores(xs);
    let expected: Vec<f32> = z(&[0.1, 0.3, 0.2])
        .iter()
        .zip(z(&maxsim))
        .map(|(f, m)| 0.5 * f + 0.5 * m)
        .collect();
    for (got, want) in mixed.iter().zip(&expected) {
        assert!((got - want).abs() < 1e-5, "{mixed:?} vs {expected:?}");
    }
    assert!(MaxSimReranker::load(&fixture(), Device::Cpu, 64, 1.5).is_err());
}
