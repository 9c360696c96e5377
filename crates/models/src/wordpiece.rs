//! Exact, fast token counts for BERT WordPiece tokenizers.
//!
//! The chunker counts the tokens of every line of every file, to cut chunks
//! at the model's window. The general tokenizer pipeline (a normalised
//! string that tracks alignments per character, an `Encoding` with half a
//! dozen vectors per call) costs more per line than parsing the file. For
//! printable ASCII — nearly all code — this counter follows the same steps
//! (lower case, split at whitespace and punctuation, greedy longest-match
//! word pieces) without allocating per word; any other text goes to the
//! tokenizer itself, so counts are always exact.

use std::collections::HashSet;

/// Counts WordPiece tokens of ASCII text the way a BERT tokenizer would.
#[derive(Debug)]
pub(crate) struct WordPieceCounter {
    /// Every vocabulary entry (continuations keep their `##` prefix).
    vocab: HashSet<String>,
    /// Prefix of word pieces that continue a word (`##`).
    continuation: String,
    /// Longer words are a single unknown token.
    max_word_chars: usize,
    lowercase: bool,
    /// Added tokens (`[CLS]`, `[MASK]`…) are matched before normalisation;
    /// text containing one is left to the tokenizer.
    added: Vec<String>,
}

impl WordPieceCounter {
    /// Reads the pipeline from a `tokenizer.json`; `None` unless it is the
    /// BERT pipeline this counter reproduces (BERT normaliser and
    /// pre-tokenizer, WordPiece model).
    pub(crate) fn from_tokenizer_json(json: &[u8]) -> Option<Self> {
        let config: serde_json::Value = serde_json::from_slice(json).ok()?;
        let normalizer = &config["normalizer"];
        if normalizer["type"] != "BertNormalizer"
            || config["pre_tokenizer"]["type"] != "BertPreTokenizer"
            || config["model"]["type"] != "WordPiece"
        {
            return None;
        }
        let lowercase = normalizer["lowercase"].as_bool()?;
        // Accent stripping and Chinese-character handling only touch non-ASCII
        // text, which is never counted here.
        let model = &config["model"];
        let vocab: HashSet<String> = model["vocab"].as_object()?.keys().cloned().collect();
        let added = config["added_tokens"]
            .as_array()
            .map(|tokens| {
                tokens
                    .iter()
                    .filter_map(|t| t["content"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            vocab,
            continuation: model["continuing_subword_prefix"]
                .as_str()
                .unwrap_or("##")
                .to_string(),
            max_word_chars: model["max_input_chars_per_word"].as_u64().unwrap_or(100) as usize,
            lowercase,
            added,
        })
    }

    /// Tokens in `text` (no special tokens), or `None` when `text` is not
    /// printable ASCII or contains an added token.
    pub(crate) fn count(&self, text: &str) -> Option<usize> {
        let bytes = text.as_bytes();
        if !bytes
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
        {
            return None;
        }
        if bytes.contains(&b'[') && self.added.iter().any(|t| text.contains(t.as_str())) {
            return None;
        }
        let mut piece = String::with_capacity(self.max_word_chars + self.continuation.len());
        let mut count = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_alphanumeric() {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                count += self.word_pieces(&text[start..i], &mut piece);
            } else {
                // Every ASCII punctuation character is a word of its own and a
                // single token (itself, or the unknown token); whitespace none.
                count += usize::from(b.is_ascii_punctuation());
                i += 1;
            }
        }
        Some(count)
    }

    /// Word pieces of one alphanumeric word: greedy longest match from the
    /// left; a word that cannot be split, or is too long, is one unknown token.
    fn word_pieces(&self, word: &str, piece: &mut String) -> usize {
        if word.len() > self.max_word_chars {
            return 1;
        }
        let lowered;
        let word = if self.lowercase && word.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = word.to_ascii_lowercase();
            lowered.as_str()
        } else {
            word
        };
        let mut pieces = 0;
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            loop {
                piece.clear();
                if start > 0 {
                    piece.push_str(&self.continuation);
                }
                piece.push_str(&word[start..end]);
                if self.vocab.contains(piece.as_str()) {
                    break;
                }
                end -= 1;
                if end == start {
                    return 1;
                }
            }
            pieces += 1;
            start = end;
        }
        pieces
    }
}
