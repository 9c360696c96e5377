//! Listwise reranking with a sliding window, as CodeRankLLM (nomic-ai, a
//! Qwen2.5-Coder-7B fine-tune) is run by its authors: the FIRST /
//! RankGPT-style prompt of gangiswag/llm-reranker (`rerank_type="code"`,
//! numeric identifiers, `variable_passages=True`), a window of 10 candidates
//! that slides by 5 from the bottom of the first stage's list to the top
//! (so a strong candidate found low can climb all the way), and the generated
//! permutation `[4] > [2] > [1] > …` applied to each window in turn.
//!
//! The prompt, the window schedule and the permutation parser are plain
//! functions, tested without the model.

use std::ops::Range;
use std::path::Path;

use candle_core::Device;

use super::generative::truncate_tokens;
use super::{RerankInput, RerankTask, Reranker};
use crate::decoder::DecoderLm;
use crate::error::ModelError;

/// Which of FIRST's code prompts: CodeRankLLM was evaluated with
/// `docstring` on text→code benchmarks and with `github_issue` on SWE-bench,
/// so the task picks the one the model knows for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListwisePrompt {
    /// "…relevance to the functionality described by the following doc
    /// string…" (`code_prompt_type="docstring"`).
    Docstring,
    /// "…relevance to contain the faults causing the GitHub issue…"
    /// (`code_prompt_type="github_issue"`).
    GithubIssue,
}

impl ListwisePrompt {
    /// The prompt for a task: issues get the GitHub-issue prompt, everything
    /// else (a description, or a snippet standing in for one) the doc-string
    /// prompt.
    pub fn for_task(task: RerankTask) -> Self {
        match task {
            RerankTask::IssueToCode => ListwisePrompt::GithubIssue,
            RerankTask::TextToCode | RerankTask::CodeToCode => ListwisePrompt::Docstring,
        }
    }

    /// The system message FIRST sends with this prompt
    /// (`scripts/utils/llm_util.py`).
    pub fn system_message(self) -> &'static str {
        match self {
            ListwisePrompt::Docstring => {
                "You are CodeRanker, an intelligent code reviewer that can analyze doc strings and \
                 rank code snippets based on their relevance to the doc string."
            }
            ListwisePrompt::GithubIssue => {
                "You are CodeRanker, an intelligent code reviewer that can analyze GitHub issues \
                 and rank code functions based on their relevance to contain the faults causing \
                 the GitHub issue."
            }
        }
    }
}

/// `[digits]` inside a passage rewritten to `(digits)` (FIRST's
/// `_replace_number`), so code like `xs[0]` cannot be mistaken for an
/// identifier by the model or by the permutation parser.
pub fn replace_identifiers(passage: &str) -> String {
    let mut out = String::with_capacity(passage.len());
    let mut rest = passage;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after.as_bytes().get(digits) == Some(&b']') {
            out.push('(');
            out.push_str(&after[..digits]);
            out.push(')');
            rest = &after[digits + 1..];
        } else {
            out.push('[');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// FIRST's user message for one window (`create_prompt`): the task line, the
/// passages as `[1] …` to `[m] …` (identifiers rewritten inside them), the
/// query again and the output instruction. Passages are used as given:
/// truncation is the caller's.
pub fn listwise_user_content(prompt: ListwisePrompt, query: &str, passages: &[&str]) -> String {
    let num = passages.len();
    let mut text = match prompt {
        ListwisePrompt::Docstring => format!(
            "I will provide you with {num} code snippets, each indicated by a numerical \
             identifier []. Rank the code snippets based on their relevance to the functionality \
             described by the following doc string: {query}.\n"
        ),
        ListwisePrompt::GithubIssue => format!(
            "I will provide you with {num} code functions, each indicated by a numerical \
             identifier []. Rank the code functions based on their relevance to contain the \
             faults causing the GitHub issue: {query}.\n"
        ),
    };
    text.push('\n');
    for (i, passage) in passages.iter().enumerate() {
        text.push_str(&format!("[{}] {}\n", i + 1, replace_identifiers(passage)));
    }
    text.push_str(&match prompt {
        ListwisePrompt::Docstring => format!(
            "Doc String: {query}.\nRank the {num} code snippets above based on their relevance \
             to the functionality described by the doc string. All the code snippets should be \
             included and listed using identifiers, in descending order of relevance. The output \
             format should be [] > [], e.g., [2] > [1]. Only respond with the ranking results, do \
             not say any word or explain."
        ),
        ListwisePrompt::GithubIssue => format!(
            "GitHub Issue: {query}. \nRank the {num} code functions above based on their \
             relevance to contain the faults causing the GitHub issue. All the code functions \
             should be included and listed using identifiers, in descending order of relevance. \
             The output format should be [] > [], e.g., [2] > [1]. Only respond with the ranking \
             results, do not say any word or explain."
        ),
    });
    text
}

/// The whole prompt of one window in the Qwen2.5 chat format: system turn,
/// user turn, generation prompt (FIRST's `apply_chat_template`; its
/// `ftfy.fix_text` pass changes nothing in well-formed text and is left out).
pub fn listwise_prompt(prompt: ListwisePrompt, query: &str, passages: &[&str]) -> String {
    format!(
        "<|im_start|>system\n{}<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
        prompt.system_message(),
        listwise_user_content(prompt, query, passages)
    )
}

/// A window's new order from the model's output, as 0-based positions into
/// the window, always a full permutation of `0..n` whatever the text:
///
/// * identifiers are the numbers written in brackets (`[4] > [2]`, spaces
///   and newlines anywhere, junk between them ignored); when the text has no
///   bracketed number at all, every bare number counts (`4 > 2 > 1`);
/// * a repeated identifier keeps its first place; identifiers outside
///   `1..=n` are dropped;
/// * identifiers the model left out follow, in their original order (FIRST's
///   `receive_permutation`), so an empty output keeps the window as it was.
pub fn parse_permutation(text: &str, n: usize) -> Vec<usize> {
    let bracketed = bracketed_numbers(text);
    let ids = if bracketed.is_empty() {
        bare_numbers(text)
    } else {
        bracketed
    };
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for id in ids.into_iter().flatten() {
        if let Some(i) = id.checked_sub(1) {
            if i < n && !seen[i] {
                seen[i] = true;
                order.push(i);
            }
        }
    }
    order.extend((0..n).filter(|&i| !seen[i]));
    order
}

/// `[ 12 ]`-style numbers; `None` for one too large to be an identifier.
fn bracketed_numbers(text: &str) -> Vec<Option<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'[' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        let start = j;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        let end = j;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if end > start && j < bytes.len() && bytes[j] == b']' {
            out.push(text[start..end].parse().ok());
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Every maximal run of ASCII digits, as a number.
fn bare_numbers(text: &str) -> Vec<Option<usize>> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .map(|run| run.parse().ok())
        .collect()
}

/// The windows over a list of `n` candidates, in the order they are ranked:
/// the last `window` first, then each `stride` higher, the last one starting
/// at the top. Like FIRST's `sliding_windows` (window 10, step 5 for
/// CodeRankLLM), except that no window is repeated inside the top one
/// (FIRST ranks e.g. 0..8 and then 0..3 again; RankGPT's original loop never
/// reaches the top when `n − window` is not a multiple of the stride).
/// Requires `1 <= stride <= window`, checked by [`ListwiseReranker::new`].
pub fn window_ranges(n: usize, window: usize, stride: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    if n == 0 || window == 0 || stride == 0 {
        return out;
    }
    let mut end = n;
    loop {
        let start = end.saturating_sub(window);
        out.push(start..end);
        if start == 0 || end <= stride {
            break;
        }
        end -= stride;
    }
    out
}

/// Slides the windows over `0..n`: each window's current occupants are
/// handed to `rank` (best first by the current order) and put back in the
/// order it returns (positions into the window). The final order, best
/// first. Windows of one candidate are left alone.
fn slide<F>(n: usize, window: usize, stride: usize, mut rank: F) -> Result<Vec<usize>, ModelError>
where
    F: FnMut(&[usize]) -> Result<Vec<usize>, ModelError>,
{
    let mut order: Vec<usize> = (0..n).collect();
    for range in window_ranges(n, window, stride) {
        if range.len() < 2 {
            continue;
        }
        let current = order[range.clone()].to_vec();
        let permutation = rank(&current)?;
        if permutation.len() != current.len() {
            return Err(ModelError::Rerank(format!(
                "a window of {} candidates came back as {} positions",
                current.len(),
                permutation.len()
            )));
        }
        for (slot, &p) in order[range].iter_mut().zip(&permutation) {
            *slot = *current.get(p).ok_or_else(|| {
                ModelError::Rerank(format!(
                    "position {p} is outside a window of {}",
                    current.len()
                ))
            })?;
        }
    }
    Ok(order)
}

/// How the listwise reranker runs, with CodeRankLLM's evaluation settings as
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListwiseOptions {
    /// Candidates per prompt (10).
    pub window: usize,
    /// How far each window moves up the list (5): the overlap is what lets a
    /// candidate climb from one window into the next.
    pub stride: usize,
    /// Tokens kept of each passage (FIRST's 1024 for code): bounds the
    /// prompt at about `window × max_passage_tokens`.
    pub max_passage_tokens: usize,
    /// Most tokens the model may write per window; `None` allows the length
    /// of a complete ranking `[1] > [2] > … > [m]` of the window plus two
    /// (FIRST generates exactly its estimate of that length; here generation
    /// also stops at the end of the assistant turn).
    pub max_new_tokens: Option<usize>,
}

impl Default for ListwiseOptions {
    fn default() -> Self {
        ListwiseOptions {
            window: 10,
            stride: 5,
            max_passage_tokens: 1024,
            max_new_tokens: None,
        }
    }
}

/// One window as the model saw and ranked it, for callers and tests that
/// want more than the final order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRanking {
    /// The prompt's token ids.
    pub prompt_ids: Vec<u32>,
    /// The tokens the model wrote (stop token included, when it stopped).
    pub generated_ids: Vec<u32>,
    /// Their text, special tokens left out.
    pub text: String,
    /// The window's new order: 0-based positions, best first.
    pub permutation: Vec<usize>,
}

/// CodeRankLLM: a listwise reranker on a Qwen2 decoder, run over the first
/// stage's list with a sliding window (see the module documentation).
pub struct ListwiseReranker {
    lm: DecoderLm,
    name: String,
    options: ListwiseOptions,
    stop: Vec<u32>,
}

impl ListwiseReranker {
    /// Loads the model from a local directory (optionally merging a LoRA
    /// adapter) and wraps it.
    pub fn load(
        dir: &Path,
        adapter: Option<&Path>,
        device: &Device,
        name: impl Into<String>,
        options: ListwiseOptions,
    ) -> Result<Self, ModelError> {
        let lm = DecoderLm::load(dir, adapter, device)?;
        Self::new(lm, name, options)
    }

    /// Wraps an already loaded decoder, checking that the window can slide.
    /// Generation stops at `<|im_end|>` or `<|endoftext|>` when the
    /// tokenizer has them.
    pub fn new(
        lm: DecoderLm,
        name: impl Into<String>,
        options: ListwiseOptions,
    ) -> Result<Self, ModelError> {
        if options.window < 2 || options.stride == 0 || options.stride > options.window {
            return Err(ModelError::Rerank(format!(
                "listwise window {} / stride {}: the window must hold at least 2 candidates \
                 and the stride be between 1 and the window, or candidates are skipped",
                options.window, options.stride
            )));
        }
        if options.max_passage_tokens == 0 || options.max_new_tokens == Some(0) {
            return Err(ModelError::Rerank(
                "listwise max_passage_tokens and max_new_tokens must be at least 1".into(),
            ));
        }
        let stop = ["<|im_end|>", "<|endoftext|>"]
            .iter()
            .filter_map(|t| lm.token_id(t).ok())
            .collect();
        Ok(ListwiseReranker {
            lm,
            name: name.into(),
            options,
            stop,
        })
    }

    /// The options in force.
    pub fn options(&self) -> &ListwiseOptions {
        &self.options
    }

    /// The prompt's token ids for one window: each passage cut to
    /// [`ListwiseOptions::max_passage_tokens`], the prompt text tokenised in
    /// one go.
    pub fn prompt_ids(
        &self,
        prompt: ListwisePrompt,
        query: &str,
        passages: &[&str],
    ) -> Result<Vec<u32>, ModelError> {
        let tokenizer = self.lm.tokenizer();
        let cut = passages
            .iter()
            .map(|p| truncate_tokens(tokenizer, p, self.options.max_passage_tokens))
            .collect::<Result<Vec<_>, _>>()?;
        let text = listwise_prompt(prompt, query, &cut);
        let encoding = tokenizer
            .encode(text.as_str(), false)
            .map_err(|e| ModelError::Tokenizer(format!("listwise prompt: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Ranks one window of passages (at most what fits the prompt; the
    /// sliding is [`ListwiseReranker::rank`]'s).
    pub fn rank_window(
        &self,
        prompt: ListwisePrompt,
        query: &str,
        passages: &[&str],
    ) -> Result<WindowRanking, ModelError> {
        let prompt_ids = self.prompt_ids(prompt, query, passages)?;
        let max_new = match self.options.max_new_tokens {
            Some(n) => n,
            None => self.ranking_tokens(passages.len())? + 2,
        };
        let generated = self.lm.generate_greedy(&prompt_ids, max_new, &self.stop)?;
        let text = self
            .lm
            .tokenizer()
            .decode(&generated.ids, true)
            .map_err(|e| ModelError::Tokenizer(format!("decoding listwise output: {e}")))?;
        let permutation = parse_permutation(&text, passages.len());
        tracing::debug!(model = %self.name, output = %text, ?permutation, "listwise window ranked");
        Ok(WindowRanking {
            prompt_ids,
            generated_ids: generated.ids,
            text,
            permutation,
        })
    }

    /// The documents' final order (indices into `input.documents`, best
    /// first) after sliding the window over them in their input order (the
    /// first stage's, best first).
    pub fn rank(&self, input: &RerankInput<'_>) -> Result<Vec<usize>, ModelError> {
        let prompt = ListwisePrompt::for_task(input.task);
        slide(
            input.documents.len(),
            self.options.window,
            self.options.stride,
            |members| {
                let passages: Vec<&str> = members.iter().map(|&i| input.documents[i]).collect();
                Ok(self
                    .rank_window(prompt, input.query, &passages)?
                    .permutation)
            },
        )
    }

    /// Tokens of a complete ranking of `m` candidates.
    fn ranking_tokens(&self, m: usize) -> Result<usize, ModelError> {
        let ranking = (1..=m)
            .map(|i| format!("[{i}]"))
            .collect::<Vec<_>>()
            .join(" > ");
        let encoding = self
            .lm
            .tokenizer()
            .encode(ranking.as_str(), false)
            .map_err(|e| ModelError::Tokenizer(format!("listwise output length: {e}")))?;
        Ok(encoding.get_ids().len())
    }
}

impl Reranker for ListwiseReranker {
    fn name(&self) -> &str {
        &self.name
    }

    /// A listwise model gives an order, not scores: the document placed
    /// first gets `n`, the next `n − 1`, …, the last 1.
    fn rerank(&self, input: &RerankInput<'_>) -> Result<Vec<f32>, ModelError> {
        let order = self.rank(input)?;
        let n = order.len();
        let mut scores = vec![0.0; n];
        for (position, &doc) in order.iter().enumerate() {
            scores[doc] = (n - position) as f32;
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_inside_passages_are_rewritten() {
        assert_eq!(replace_identifiers("return xs[0]"), "return xs(0)");
        assert_eq!(
            replace_identifiers("a[12][3] b[] c[x] d[4"),
            "a(12)(3) b[] c[x] d[4"
        );
        assert_eq!(replace_identifiers("[[1]]"), "[(1)]");
        assert_eq!(replace_identifiers("ü[٣]"), "ü[٣]");
    }

    #[test]
    fn docstring_prompt_layout() {
        let text = listwise_user_content(ListwisePrompt::Docstring, "Q", &["a[1]", "b"]);
        assert_eq!(
            text,
            "I will provide you with 2 code snippets, each indicated by a numerical identifier []. \
             Rank the code snippets based on their relevance to the functionality described by \
             the following doc string: Q.\n\n[1] a(1)\n[2] b\nDoc String: Q.\nRank the 2 code \
             snippets above based on their relevance to the functionality described by the doc \
             string. All the code snippets should be included and listed using identifiers, in \
             descending order of relevance. The output format should be [] > [], e.g., [2] > \
             [1]. Only respond with the ranking results, do not say any word or explain."
        );
        let prompt = listwise_prompt(ListwisePrompt::Docstring, "Q", &["a"]);
        assert!(prompt.starts_with("<|im_start|>system\nYou are CodeRanker, an intelligent"));
        assert!(prompt.ends_with("explain.<|im_end|>\n<|im_start|>assistant\n"));
    }

    #[test]
    fn issues_get_the_github_issue_prompt() {
        assert_eq!(
            ListwisePrompt::for_task(RerankTask::IssueToCode),
            ListwisePrompt::GithubIssue
        );
        assert_eq!(
            ListwisePrompt::for_task(RerankTask::TextToCode),
            ListwisePrompt::Docstring
        );
        let text = listwise_user_content(ListwisePrompt::GithubIssue, "crash", &["f"]);
        assert!(text.starts_with(
            "I will provide you with 1 code functions, each indicated by a numerical identifier \
             []. Rank the code functions based on their relevance to contain the faults causing \
             the GitHub issue: crash.\n\n[1] f\nGitHub Issue: crash. \nRank the 1 code functions"
        ));
        assert!(ListwisePrompt::GithubIssue
            .system_message()
            .contains("analyze GitHub issues"));
    }

    #[test]
    fn permutation_well_formed() {
        assert_eq!(
            parse_permutation("[4] > [2] > [1] > [3]", 4),
            vec![3, 1, 0, 2]
        );
        assert_eq!(parse_permutation("[2]>[1]", 2), vec![1, 0]);
    }

    #[test]
    fn permutation_spaces_newlines_and_junk() {
        assert_eq!(
            parse_permutation(" [ 3 ]  >\n[1]\n>  [2] ", 3),
            vec![2, 0, 1]
        );
        assert_eq!(
            parse_permutation("Sure! The ranking is: [3] > [1] (close call) > [2].", 3),
            vec![2, 0, 1]
        );
        // No brackets at all: bare numbers.
        assert_eq!(parse_permutation("3 > 1 > 2", 3), vec![2, 0, 1]);
        // Brackets present: stray bare numbers in the junk are not ids.
        assert_eq!(parse_permutation("top 2: [3] > [1]", 3), vec![2, 0, 1]);
    }

    #[test]
    fn permutation_duplicates_keep_first() {
        assert_eq!(parse_permutation("[2] > [2] > [1] > [2]", 3), vec![1, 0, 2]);
    }

    #[test]
    fn permutation_out_of_range_dropped() {
        assert_eq!(
            parse_permutation("[0] > [5] > [2] > [99999999999999999999999]", 3),
            vec![1, 0, 2]
        );
    }

    #[test]
    fn permutation_missing_appended_in_order() {
        assert_eq!(parse_permutation("[5]", 6), vec![4, 0, 1, 2, 3, 5]);
        assert_eq!(parse_permutation("[3] > [", 4), vec![2, 0, 1, 3]);
    }

    #[test]
    fn permutation_empty_or_junk_keeps_order() {
        assert_eq!(parse_permutation("", 4), vec![0, 1, 2, 3]);
        assert_eq!(
            parse_permutation("\u{fffd}\u{4} g\u{fffd}", 3),
            vec![0, 1, 2]
        );
        assert_eq!(parse_permutation("[٣] > [２]", 3), vec![0, 1, 2]);
        assert_eq!(parse_permutation("[2] > [1]", 0), Vec::<usize>::new());
    }

    #[test]
    fn windows_go_bottom_up_and_end_at_the_top() {
        assert_eq!(window_ranges(23, 10, 5), vec![13..23, 8..18, 3..13, 0..8]);
        assert_eq!(window_ranges(20, 10, 5), vec![10..20, 5..15, 0..10]);
        assert_eq!(window_ranges(12, 10, 5), vec![2..12, 0..7]);
        assert_eq!(window_ranges(10, 10, 5), vec![0..10]);
        assert_eq!(window_ranges(3, 10, 5), vec![0..3]);
        assert_eq!(window_ranges(0, 10, 5), Vec::<Range<usize>>::new());
        assert_eq!(window_ranges(7, 2, 2), vec![5..7, 3..5, 1..3, 0..1]);
    }

    /// A perfect ranker: orders a window by a hidden relevance.
    fn by_relevance(
        relevance: &[u32],
    ) -> impl FnMut(&[usize]) -> Result<Vec<usize>, ModelError> + '_ {
        move |members| {
            let mut pos: Vec<usize> = (0..members.len()).collect();
            pos.sort_by_key(|&p| std::cmp::Reverse(relevance[members[p]]));
            Ok(pos)
        }
    }

    #[test]
    fn the_best_candidate_climbs_from_the_bottom_to_the_top() {
        let mut relevance = vec![0u32; 23];
        relevance[22] = 100; // best, found last by the first stage
        relevance[0] = 50;
        let order = slide(23, 10, 5, by_relevance(&relevance)).expect("slide");
        assert_eq!(order[0], 22);
        assert_eq!(order[1], 0);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..23).collect::<Vec<_>>());
    }

    #[test]
    fn each_window_sees_its_current_occupants() {
        let mut seen = Vec::new();
        let order = slide(12, 10, 5, |members| {
            seen.push(members.to_vec());
            // Reverse every window.
            Ok((0..members.len()).rev().collect())
        })
        .expect("slide");
        assert_eq!(seen[0], (2..12).collect::<Vec<_>>());
        // After reversing 2..12 the list is 0 1 11 10 9 8 7 6 5 4 3 2.
        assert_eq!(seen[1], vec![0, 1, 11, 10, 9, 8, 7]);
        assert_eq!(order, vec![7, 8, 9, 10, 11, 1, 0, 6, 5, 4, 3, 2]);
    }

    #[test]
    fn a_ranker_returning_a_bad_permutation_is_an_error() {
        assert!(slide(4, 4, 2, |_| Ok(vec![0])).is_err());
        assert!(slide(4, 4, 2, |_| Ok(vec![0, 1, 2, 9])).is_err());
        assert_eq!(
            slide(1, 10, 5, |_| Ok(vec![])).expect("no window ranked"),
            vec![0]
        );
    }
}
