//! Per-mode overrides of the fusion weights, as users write them in the
//! settings file (`[search.issue] lexical = 0.8`): every value is optional,
//! and what is left out keeps the mode's measured default.

use crate::{Mode, Weights};

/// Overrides for each mode. The default overrides nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tuning {
    /// Text (prose) queries.
    pub text: WeightsPatch,
    /// Pasted snippets.
    pub code: WeightsPatch,
    /// Pasted issues.
    pub issue: WeightsPatch,
}

impl Tuning {
    /// The weights for `mode`: its defaults with this tuning's overrides.
    pub fn weights(&self, mode: Mode) -> Weights {
        let patch = match mode {
            Mode::Text | Mode::Auto => &self.text,
            Mode::Code => &self.code,
            Mode::Issue => &self.issue,
        };
        patch.apply(Weights::for_mode(mode))
    }

    /// Checks every value: weights finite and not negative, counts at
    /// least 1 and sane. The message names the mode and the key.
    pub fn validate(&self) -> Result<(), String> {
        for (mode, patch) in [
            ("text", &self.text),
            ("code", &self.code),
            ("issue", &self.issue),
        ] {
            patch
                .validate()
                .map_err(|e| format!("[search.{mode}] {e}"))?;
        }
        Ok(())
    }
}

/// Optional replacements for the fields of [`Weights`].
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightsPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dense: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lexical: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lexical_named: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defines: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_path: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<usize>,
}

/// Most candidates per retriever a setting may ask for.
const MAX_CANDIDATES: usize = 10_000;
/// Most parts a long query may be embedded in.
const MAX_PARTS: usize = 32;

impl WeightsPatch {
    /// `weights` with every value this patch sets replaced.
    pub fn apply(&self, weights: Weights) -> Weights {
        Weights {
            dense: self.dense.unwrap_or(weights.dense),
            lexical: self.lexical.unwrap_or(weights.lexical),
            lexical_named: self.lexical_named.unwrap_or(weights.lexical_named),
            defines: self.defines.unwrap_or(weights.defines),
            in_path: self.in_path.unwrap_or(weights.in_path),
            uses: self.uses.unwrap_or(weights.uses),
            frame: self.frame.unwrap_or(weights.frame),
            tests: self.tests.unwrap_or(weights.tests),
            file: self.file.unwrap_or(weights.file),
            language: self.language.unwrap_or(weights.language),
            candidates: self.candidates.unwrap_or(weights.candidates),
            parts: self.parts.unwrap_or(weights.parts),
        }
    }

    fn validate(&self) -> Result<(), String> {
        let weights = [
            ("dense", self.dense),
            ("lexical", self.lexical),
            ("lexical_named", self.lexical_named),
            ("defines", self.defines),
            ("in_path", self.in_path),
            ("uses", self.uses),
            ("frame", self.frame),
            ("tests", self.tests),
            ("file", self.file),
            ("language", self.language),
        ];
        for (key, value) in weights {
            if let Some(value) = value {
                if !value.is_finite() || value < 0.0 {
                    return Err(format!("{key} = {value}: a weight is a number ≥ 0"));
                }
            }
        }
        if let Some(n) = self.candidates {
            if !(1..=MAX_CANDIDATES).contains(&n) {
                return Err(format!("candidates = {n}: between 1 and {MAX_CANDIDATES}"));
            }
        }
        if let Some(n) = self.parts {
            if !(1..=MAX_PARTS).contains(&n) {
                return Err(format!("parts = {n}: between 1 and {MAX_PARTS}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_name() {
        let tuning: Tuning = parse(r#"{"issue": {"lexical": 0.8, "parts": 2}}"#);
        let issue = tuning.weights(Mode::Issue);
        let default = Weights::for_mode(Mode::Issue);
        assert_eq!(issue.lexical, 0.8);
        assert_eq!(issue.parts, 2);
        assert_eq!(issue.dense, default.dense);
        assert_eq!(tuning.weights(Mode::Text), Weights::for_mode(Mode::Text));
        assert_eq!(tuning.weights(Mode::Auto), Weights::for_mode(Mode::Text));
    }

    #[test]
    fn bad_values_and_keys_are_refused_with_their_name() {
        let negative: Tuning = parse(r#"{"code": {"dense": -1.0}}"#);
        let e = negative.validate().unwrap_err();
        assert!(e.contains("[search.code]") && e.contains("dense"), "{e}");
        let zero_parts: Tuning = parse(r#"{"issue": {"parts": 0}}"#);
        assert!(zero_parts.validate().unwrap_err().contains("parts"));
        assert!(serde_json::from_str::<Tuning>(r#"{"issue": {"lexcal": 1.0}}"#).is_err());
        assert!(Tuning::default().validate().is_ok());
    }

    fn parse(json: &str) -> Tuning {
        serde_json::from_str(json).unwrap()
    }
}
