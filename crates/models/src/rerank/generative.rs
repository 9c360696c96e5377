//! ERank-style generative pointwise reranking (Alibaba-NLP ERank-4B/14B/32B,
//! arXiv 2509.00520): a reasoning Qwen3 model reads one query and one
//! document, thinks, and writes an integer relevance score from 0 to 10 as
//! `<think>…</think><answer>7</answer>`. The document's score is `s × Pr(s)`
//! (§3.2 of the paper: the integer weighted by how sure the model was of it),
//! and the final score blends it with the first stage's score after
//! z-normalising both over the candidates of the query (Appendix G,
//! `examples/utils.py` `hybrid_scores`).
//!
//! Everything that does not need the model — the prompt, the score parser,
//! the hybrid — is a plain function here, so it is tested on its own.

use std::ops::Range;
use std::path::Path;

use candle_core::Device;

use super::{RerankInput, Reranker};
use crate::decoder::DecoderLm;
use crate::error::ModelError;

/// ERank's user message (`examples/utils.py` `prompt_template`), verbatim:
/// the model was trained on exactly this text, so any change moves it off its
/// training distribution. Placeholders: `{instruction}`, `{query}`, `{doc}`.
pub const ERANK_PROMPT_TEMPLATE: &str =
    "Given a query and a document, please give a relevance score of 0~10.\n\
The goal or relevance definition is: {instruction}\n\
\n\
Here is the query:\n\
{query}\n\
\n\
Here is the document:\n\
{doc}\n\
\n\
After thinking, directly choose a relevance score from [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].\n\
- 0 represents completely not related\n\
- 10 means perfectly related.\n\
\n\
Desired output format:\n\
<think>put your thinking here</think><answer>Only allows an integer here</answer>\n\
\n\
Your output:";

/// The highest score ERank's prompt allows; the lowest is 0.
pub const ERANK_MAX_SCORE: u8 = 10;

/// ERank's user message for one query/document pair: the template with its
/// three fields filled in (in one pass, so a `{doc}` inside the query is left
/// as the user wrote it).
pub fn erank_user_content(instruction: &str, query: &str, document: &str) -> String {
    let mut out = String::with_capacity(
        ERANK_PROMPT_TEMPLATE.len() + instruction.len() + query.len() + document.len(),
    );
    let mut rest = ERANK_PROMPT_TEMPLATE;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let (value, len) = if tail.starts_with("{instruction}") {
            (instruction, "{instruction}".len())
        } else if tail.starts_with("{query}") {
            (query, "{query}".len())
        } else if tail.starts_with("{doc}") {
            (document, "{doc}".len())
        } else {
            ("{", 1)
        };
        out.push_str(value);
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// The whole prompt as the model sees it: ERank's user message as the single
/// user turn of the Qwen3 chat template, with the generation prompt (what
/// `apply_chat_template(add_generation_prompt=True)` renders; no system turn,
/// and the model opens its own `<think>`).
pub fn erank_prompt(instruction: &str, query: &str, document: &str) -> String {
    format!(
        "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
        erank_user_content(instruction, query, document)
    )
}

/// A relevance score found in the model's output, and where: the span lets
/// the caller find the generated token(s) that wrote it and so the model's
/// probability of the score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedScore {
    /// The integer, 0 to [`ERANK_MAX_SCORE`].
    pub value: u8,
    /// Byte range of its digits in the parsed text.
    pub span: Range<usize>,
}

/// Reads ERank's integer relevance score out of generated text, never
/// panicking on whatever a model writes.
///
/// * An `<answer>` tag decides when there is one (the last one, since a model
///   may quote the format while thinking): its content must be exactly one
///   integer, whitespace and other text around it allowed
///   (`<answer> 7 </answer>`, `<answer>Score: 7</answer>`); a missing
///   `</answer>` (generation cut off) is tolerated.
/// * Without a tag, the last integer after the reasoning (after the last
///   `</think>`, else anywhere) is taken, as a model that forgets the tags
///   usually ends with its verdict.
/// * Only a whole, non-negative integer in 0–10 is a score, as the prompt
///   allows exactly those values: `-3`, `11`, `7.5` and several numbers inside
///   one answer are rejected rather than clamped or guessed (a model that
///   writes 11 did not follow the format; its number means nothing on the
///   scale). `7/10` counts as 7. Digits glued to letters (`i64`) are not
///   numbers. Only ASCII digits count: the prompt lists ASCII integers, and a
///   stray non-ASCII digit is far more likely to be text than a verdict.
///
/// `None` when no acceptable score is found.
pub fn parse_score(text: &str) -> Option<ParsedScore> {
    const OPEN: &str = "<answer>";
    const CLOSE: &str = "</answer>";
    if let Some(open) = text.rfind(OPEN) {
        let start = open + OPEN.len();
        let inner = &text[start..];
        let end = inner.find(CLOSE).unwrap_or(inner.len());
        let numbers = numbers(&inner[..end]);
        return match numbers.as_slice() {
            [only] => accept(only, start),
            _ => None,
        };
    }
    let from = text.rfind("</think>").map_or(0, |i| i + "</think>".len());
    numbers(&text[from..])
        .last()
        .and_then(|last| accept(last, from))
}

/// One number-like run in generated text.
#[derive(Debug)]
struct Number {
    /// The integer part's value, `None` when it overflows.
    value: Option<u64>,
    negative: bool,
    /// It had a fractional part (`7.5`).
    fractional: bool,
    /// Byte range of the integer part's digits.
    digits: Range<usize>,
}

fn accept(n: &Number, offset: usize) -> Option<ParsedScore> {
    let value = n.value?;
    if n.negative || n.fractional || value > u64::from(ERANK_MAX_SCORE) {
        return None;
    }
    Some(ParsedScore {
        value: u8::try_from(value).ok()?,
        span: offset + n.digits.start..offset + n.digits.end,
    })
}

/// The numbers of a text: maximal ASCII digit runs not glued to letters, with
/// a sign when a `-` stands before them on its own, a fractional part, and a
/// `/denominator` swallowed so `7/10` is one number, 7.
fn numbers(text: &str) -> Vec<Number> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let digits = start..i;
        let glued_before = start > 0 && word(bytes[start - 1]);
        let negative =
            start > 0 && bytes[start - 1] == b'-' && (start < 2 || !word(bytes[start - 2]));
        let fractional = i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit();
        if fractional {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
        if i + 1 < bytes.len() && bytes[i] == b'/' && bytes[i + 1].is_ascii_digit() {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
        let glued_after = i < bytes.len() && word(bytes[i]);
        if glued_before || glued_after {
            continue;
        }
        out.push(Number {
            value: text[digits.clone()].parse().ok(),
            negative,
            fractional,
            digits,
        });
    }
    out
}

/// `(x − mean) / std` over one call's candidates (population standard
/// deviation, like numpy's default). A constant list carries no ranking
/// information, so it maps to zeros instead of dividing by zero; non-finite
/// inputs count as the list's mean for the same reason.
pub fn z_scores(xs: &[f32]) -> Vec<f32> {
    let finite: Vec<f64> = xs
        .iter()
        .filter(|x| x.is_finite())
        .map(|&x| f64::from(x))
        .collect();
    if finite.is_empty() {
        return vec![0.0; xs.len()];
    }
    let n = finite.len() as f64;
    let mean = finite.iter().sum::<f64>() / n;
    let var = finite.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    xs.iter()
        .map(|&x| {
            if !x.is_finite() || std <= f64::EPSILON * mean.abs().max(1.0) {
                0.0
            } else {
                ((f64::from(x) - mean) / std) as f32
            }
        })
        .collect()
}

/// ERank's hybrid: `α·z(first_stage) + (1 − α)·z(rerank)`, both z-scored over
/// the candidates of the call, so the two scales (BM25 or cosine vs 0–10)
/// become comparable. `α` weighs the first stage (the paper uses 0.2).
pub fn hybrid_scores(
    first_stage: &[f32],
    rerank: &[f32],
    alpha: f32,
) -> Result<Vec<f32>, ModelError> {
    if first_stage.len() != rerank.len() {
        return Err(ModelError::Rerank(format!(
            "hybrid scores need one first-stage score per reranked document \
             ({} first-stage scores, {} documents)",
            first_stage.len(),
            rerank.len()
        )));
    }
    Ok(z_scores(first_stage)
        .into_iter()
        .zip(z_scores(rerank))
        .map(|(f, r)| alpha * f + (1.0 - alpha) * r)
        .collect())
}

/// The score of one judged document: `s × Pr(s)`, with `Pr(s)` the product
/// of the probabilities the model gave the tokens that spell `s` (Qwen
/// tokenizers write every digit as its own token, so `10` is two); 0 when no
/// score was found, the lowest the scale allows.
pub fn document_score(score: Option<u8>, probability: f32) -> f32 {
    score.map_or(0.0, |s| f32::from(s) * probability)
}

/// How ERank runs: the knobs a user may want to turn, with the model card's
/// and paper's values as defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerativeOptions {
    /// Weight of the first stage in the hybrid (the paper's 0.2; 0 ignores
    /// the first stage, 1 ignores ERank).
    pub alpha: f32,
    /// Most tokens the model may write per document. Reasoning comes before
    /// the answer, so a small limit cuts the answer off; 2048 is ERank-4B's
    /// `generation_config.json`.
    pub max_new_tokens: usize,
    /// Most tokens of the query and of the document each, like ERank's
    /// `truncate_length` (the end is cut). Bounds prompt length and memory.
    pub max_text_tokens: usize,
    /// The relevance definition given to the model; `None` uses the call's
    /// [`RerankTask::instruction`](super::RerankTask::instruction).
    pub instruction: Option<String>,
}

impl Default for GenerativeOptions {
    fn default() -> Self {
        GenerativeOptions {
            alpha: 0.2,
            max_new_tokens: 2048,
            max_text_tokens: 1024,
            instruction: None,
        }
    }
}

/// What the model did with one query/document pair, for callers and tests
/// that want more than the final number.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The prompt's token ids.
    pub prompt_ids: Vec<u32>,
    /// The tokens the model wrote (stop token included, when it stopped).
    pub generated_ids: Vec<u32>,
    /// Their text, special tokens left out.
    pub text: String,
    /// The integer relevance score parsed from it.
    pub score: Option<u8>,
    /// The model's probability of that score (product over its tokens); 0
    /// without a score.
    pub probability: f32,
    /// `score × probability`: the document's ERank score before the hybrid.
    pub value: f32,
}

/// ERank: a generative pointwise reranker on a Qwen3 decoder. Documents are
/// judged one at a time (greedy decoding, as the scores must be reproducible
/// between runs); see the module documentation for the scoring.
pub struct GenerativeReranker {
    lm: DecoderLm,
    name: String,
    options: GenerativeOptions,
    stop: Vec<u32>,
}

impl GenerativeReranker {
    /// Loads the model from a local directory (optionally merging a LoRA
    /// adapter) and wraps it.
    pub fn load(
        dir: &Path,
        adapter: Option<&Path>,
        device: &Device,
        name: impl Into<String>,
        options: GenerativeOptions,
    ) -> Result<Self, ModelError> {
        let lm = DecoderLm::load(dir, adapter, device)?;
        Self::new(lm, name, options)
    }

    /// Wraps an already loaded decoder. Generation stops at `<|im_end|>`
    /// (end of the assistant turn) or `<|endoftext|>` (ERank's EOS), when
    /// the tokenizer has them.
    pub fn new(
        lm: DecoderLm,
        name: impl Into<String>,
        options: GenerativeOptions,
    ) -> Result<Self, ModelError> {
        if !(0.0..=1.0).contains(&options.alpha) {
            return Err(ModelError::Rerank(format!(
                "ERank hybrid weight alpha must be within 0..=1, got {}",
                options.alpha
            )));
        }
        if options.max_new_tokens == 0 || options.max_text_tokens == 0 {
            return Err(ModelError::Rerank(
                "ERank max_new_tokens and max_text_tokens must be at least 1".into(),
            ));
        }
        let stop = ["<|im_end|>", "<|endoftext|>"]
            .iter()
            .filter_map(|t| lm.token_id(t).ok())
            .collect();
        Ok(GenerativeReranker {
            lm,
            name: name.into(),
            options,
            stop,
        })
    }

    /// The options in force.
    pub fn options(&self) -> &GenerativeOptions {
        &self.options
    }

    /// The prompt's token ids for one pair: query and document cut to
    /// [`GenerativeOptions::max_text_tokens`], the prompt text tokenised in
    /// one go (as the reference implementation does).
    pub fn prompt_ids(
        &self,
        instruction: &str,
        query: &str,
        document: &str,
    ) -> Result<Vec<u32>, ModelError> {
        let tokenizer = self.lm.tokenizer();
        let budget = self.options.max_text_tokens;
        let query = truncate_tokens(tokenizer, query, budget)?;
        let document = truncate_tokens(tokenizer, document, budget)?;
        let prompt = erank_prompt(instruction, query, document);
        let encoding = tokenizer
            .encode(prompt.as_str(), false)
            .map_err(|e| ModelError::Tokenizer(format!("ERank prompt: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Runs the model on one pair and scores its output.
    pub fn judge(
        &self,
        instruction: &str,
        query: &str,
        document: &str,
    ) -> Result<Judgement, ModelError> {
        let prompt_ids = self.prompt_ids(instruction, query, document)?;
        let generated =
            self.lm
                .generate_greedy(&prompt_ids, self.options.max_new_tokens, &self.stop)?;
        let tokenizer = self.lm.tokenizer();
        // Decode token by token so a score's byte span maps back to the
        // tokens (and probabilities) that wrote it. Digits and tags are
        // ASCII, so the concatenation parses like the whole decode.
        let mut pieces = String::new();
        let mut ends = Vec::with_capacity(generated.ids.len());
        for &id in &generated.ids {
            let piece = tokenizer
                .decode(&[id], true)
                .map_err(|e| ModelError::Tokenizer(format!("decoding ERank output: {e}")))?;
            pieces.push_str(&piece);
            ends.push(pieces.len());
        }
        let text = tokenizer
            .decode(&generated.ids, true)
            .map_err(|e| ModelError::Tokenizer(format!("decoding ERank output: {e}")))?;
        let parsed = parse_score(&pieces);
        let probability = match &parsed {
            Some(p) => span_probability(&ends, &generated.probs, &p.span),
            None => {
                tracing::debug!(
                    model = %self.name,
                    output = %text,
                    "no relevance score in the model's output; scoring the document 0"
                );
                0.0
            }
        };
        let score = parsed.map(|p| p.value);
        Ok(Judgement {
            prompt_ids,
            generated_ids: generated.ids,
            text,
            score,
            probability,
            value: document_score(score, probability),
        })
    }
}

/// The product of the probabilities of the tokens overlapping `span`, given
/// each token's end offset in the concatenated text.
fn span_probability(ends: &[usize], probs: &[f32], span: &Range<usize>) -> f32 {
    let mut start = 0;
    let mut p = 1.0f32;
    for (&end, &prob) in ends.iter().zip(probs) {
        if start < span.end && end > span.start {
            p *= prob;
        }
        start = end;
    }
    p
}

/// `text` cut after its first `budget` tokens, at the end of the last kept
/// token (so the prompt is re-tokenised from clean text).
pub(crate) fn truncate_tokens<'t>(
    tokenizer: &tokenizers::Tokenizer,
    text: &'t str,
    budget: usize,
) -> Result<&'t str, ModelError> {
    let encoding = tokenizer
        .encode(text, false)
        .map_err(|e| ModelError::Tokenizer(format!("counting tokens: {e}")))?;
    let offsets = encoding.get_offsets();
    if offsets.len() <= budget || budget == 0 {
        return Ok(if budget == 0 { "" } else { text });
    }
    let mut end = offsets[budget - 1].1.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Ok(&text[..end])
}

impl Reranker for GenerativeReranker {
    fn name(&self) -> &str {
        &self.name
    }

    /// ERank's `s × Pr(s)` per document, blended with the first stage's
    /// scores when the call has them (one per document); without them the
    /// ERank scores are returned as they are.
    fn rerank(&self, input: &RerankInput<'_>) -> Result<Vec<f32>, ModelError> {
        let instruction = self
            .options
            .instruction
            .as_deref()
            .unwrap_or_else(|| input.task.instruction());
        let mut values = Vec::with_capacity(input.documents.len());
        for document in input.documents {
            values.push(self.judge(instruction, input.query, document)?.value);
        }
        if input.first_stage.is_empty() {
            return Ok(values);
        }
        hybrid_scores(input.first_stage, &values, self.options.alpha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(text: &str) -> Option<u8> {
        parse_score(text).map(|p| p.value)
    }

    #[test]
    fn user_content_fills_every_field_once() {
        let got = erank_user_content("INS {query}", "Q {doc}", "D");
        assert!(got.starts_with(
            "Given a query and a document, please give a relevance score of 0~10.\n\
             The goal or relevance definition is: INS {query}\n\nHere is the query:\nQ {doc}\n\n\
             Here is the document:\nD\n\nAfter thinking"
        ));
        assert!(got.ends_with("</answer>\n\nYour output:"));
        assert!(erank_prompt("i", "q", "d").starts_with("<|im_start|>user\nGiven"));
        assert!(erank_prompt("i", "q", "d")
            .ends_with("Your output:<|im_end|>\n<|im_start|>assistant\n"));
    }

    #[test]
    fn answer_tag_wins() {
        assert_eq!(
            score("<think>maybe 3, maybe 9</think><answer>7</answer>"),
            Some(7)
        );
        assert_eq!(score("<answer> 10 </answer>"), Some(10));
        assert_eq!(score("<answer>Score: 4</answer>"), Some(4));
        assert_eq!(score("<answer>0</answer>"), Some(0));
        // The last tag counts: the format may be quoted while thinking.
        assert_eq!(
            score("<think>format is <answer>2</answer>, so</think><answer>8</answer>"),
            Some(8)
        );
        // Cut off before the closing tag.
        assert_eq!(score("<think>ok</think><answer>6"), Some(6));
        let p = parse_score("xx<answer>10</answer>").expect("score");
        assert_eq!(p.span, 10..12);
    }

    #[test]
    fn invalid_answers_are_rejected_not_guessed() {
        assert_eq!(score("<answer>11</answer>"), None);
        assert_eq!(score("<answer>-3</answer>"), None);
        assert_eq!(score("<answer>7.5</answer>"), None);
        assert_eq!(score("<answer>3 7</answer>"), None);
        assert_eq!(score("<answer></answer> 5"), None);
        assert_eq!(score("<answer>٧</answer>"), None);
        assert_eq!(score("<answer>７</answer>"), None);
        assert_eq!(score("<answer>99999999999999999999999</answer>"), None);
    }

    #[test]
    fn without_tags_the_last_integer_after_reasoning() {
        assert_eq!(score("I'd say 3, no: 7"), Some(7));
        assert_eq!(score("<think>it is a 2</think> final 9"), Some(9));
        // Numbers in the reasoning do not count once it is closed.
        assert_eq!(score("<think>score 4</think>none"), None);
        assert_eq!(score("score: 7/10"), Some(7));
        assert_eq!(score("The score is 7."), Some(7));
        assert_eq!(score("range 0-10 then 5"), Some(5));
        // Identifiers are not numbers.
        assert_eq!(score("uses i64 and u8"), None);
        assert_eq!(score("relevance -4"), None);
        assert_eq!(score("maybe 11"), None);
        assert_eq!(score("7.5"), None);
    }

    #[test]
    fn junk_never_panics() {
        for text in [
            "",
            "   ",
            "junk \u{fffd}\u{1f} ct",
            "<answer>",
            "</answer><answer",
            "</think>",
            "-",
            "7/",
            "7.",
            "[0, 1, 2]",
            "۷ ٧ ７",
            "\u{0}\u{10ffff}",
        ] {
            let _ = parse_score(text);
        }
        assert_eq!(score(""), None);
        assert_eq!(score("junk \u{fffd}\u{1f} ct"), None);
        assert_eq!(score("۷ ٧ ７"), None);
    }

    #[test]
    fn z_scores_and_zero_variance() {
        let z = z_scores(&[1.0, 2.0, 3.0]);
        // Mean 2, population std sqrt(2/3): z = ∓sqrt(3/2), 0.
        let s = 1.5f32.sqrt();
        assert!((z[0] + s).abs() < 1e-6 && z[1].abs() < 1e-6 && (z[2] - s).abs() < 1e-6);
        assert_eq!(z_scores(&[4.0, 4.0, 4.0]), vec![0.0; 3]);
        assert_eq!(z_scores(&[]), Vec::<f32>::new());
        assert_eq!(z_scores(&[f32::NAN, 1.0, 1.0]), vec![0.0; 3]);
    }

    #[test]
    fn hybrid_weights_the_first_stage_by_alpha() {
        let first = [3.0, 2.0, 1.0];
        let rerank = [0.0, 0.0, 9.0];
        let h = hybrid_scores(&first, &rerank, 0.2).expect("same length");
        let (zf, zr) = (z_scores(&first), z_scores(&rerank));
        for i in 0..3 {
            assert!((h[i] - (0.2 * zf[i] + 0.8 * zr[i])).abs() < 1e-6);
        }
        // ERank dominates at 0.2: the third document wins.
        assert!(h[2] > h[0] && h[0] > h[1]);
        // α = 1 is the first stage's order.
        let h1 = hybrid_scores(&first, &rerank, 1.0).expect("same length");
        assert!(h1[0] > h1[1] && h1[1] > h1[2]);
        // A constant ERank column leaves the first stage's order.
        let h2 = hybrid_scores(&first, &[5.0; 3], 0.2).expect("same length");
        assert!(h2[0] > h2[1] && h2[1] > h2[2]);
        assert!(matches!(
            hybrid_scores(&first, &[1.0], 0.2),
            Err(ModelError::Rerank(_))
        ));
    }

    #[test]
    fn document_score_is_score_times_probability() {
        assert_eq!(document_score(Some(7), 0.5), 3.5);
        assert_eq!(document_score(None, 0.9), 0.0);
        assert_eq!(document_score(Some(0), 1.0), 0.0);
    }

    #[test]
    fn span_probability_multiplies_the_overlapping_tokens() {
        // Tokens: "<answer>" [0,8), "1" [8,9), "0" [9,10), "</answer>" [10,19).
        let ends = [8, 9, 10, 19];
        let probs = [0.9, 0.5, 0.4, 0.8];
        assert!((span_probability(&ends, &probs, &(8..10)) - 0.2).abs() < 1e-7);
        assert!((span_probability(&ends, &probs, &(8..9)) - 0.5).abs() < 1e-7);
    }
}
