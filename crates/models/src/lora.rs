//! PEFT LoRA adapters merged into the base weights at load time.
//!
//! CoREB-Reranker is Qwen3-Reranker-4B plus a LoRA adapter. Merging once
//! (`W += scale · B @ A`) leaves the model exactly as fast as its base and
//! lets the decoder stay free of adapter code; the adapter's effect is the
//! same as peft's unmerged forward up to float rounding.

use crate::error::ModelError;
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The adapter_config.json fields that change what merging means. Options
/// that Quarry does not implement are read too, so they are refused instead
/// of silently ignored.
#[derive(Debug, Deserialize)]
struct AdapterConfig {
    peft_type: Option<String>,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    target_modules: Option<serde_json::Value>,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    lora_bias: bool,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    rank_pattern: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    alpha_pattern: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    modules_to_save: Option<serde_json::Value>,
}

/// One adapted module's low-rank pair, f32 on the CPU.
#[derive(Debug)]
struct LoraPair {
    /// `[r, in]`.
    a: Tensor,
    /// `[out, r]`.
    b: Tensor,
}

/// A loaded adapter whose pairs are consumed as the base weights are merged,
/// so an adapter that targets modules the base does not have is an error
/// instead of a no-op.
#[derive(Debug)]
pub(crate) struct LoraAdapter {
    dir: PathBuf,
    scale: f64,
    fan_in_fan_out: bool,
    /// Keyed by the base weight's name without the `model.` prefix, e.g.
    /// `layers.0.self_attn.q_proj.weight`.
    pairs: HashMap<String, LoraPair>,
    merged: usize,
}

impl LoraAdapter {
    /// Reads `adapter_config.json` and `adapter_model.safetensors` from `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Self, ModelError> {
        let config_path = dir.join("adapter_config.json");
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let config: AdapterConfig =
            serde_json::from_str(&text).map_err(|e| ModelError::Adapter {
                path: config_path.clone(),
                message: format!("unreadable adapter_config.json: {e}"),
            })?;
        let fail = |message: String| ModelError::Adapter {
            path: dir.to_path_buf(),
            message,
        };
        check_supported(&config).map_err(fail)?;
        let scale = if config.use_rslora {
            config.lora_alpha / (config.r as f64).sqrt()
        } else {
            config.lora_alpha / config.r as f64
        };

        let weights_path = dir.join("adapter_model.safetensors");
        if !weights_path.is_file() {
            return Err(ModelError::MissingFile { path: weights_path });
        }
        let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu).map_err(|e| {
            ModelError::Adapter {
                path: weights_path.clone(),
                message: format!("unreadable adapter weights: {e}"),
            }
        })?;
        let pairs = pair_tensors(tensors, &config).map_err(fail)?;
        tracing::info!(
            adapter = %dir.display(),
            modules = pairs.len(),
            r = config.r,
            scale,
            "loaded LoRA adapter"
        );
        Ok(Self {
            dir: dir.to_path_buf(),
            scale,
            fan_in_fan_out: config.fan_in_fan_out,
            pairs,
            merged: 0,
        })
    }

    /// Returns `weight` (f32, CPU) with this adapter's update for the base
    /// weight `name` added, or unchanged when the adapter does not touch it.
    pub(crate) fn merge(&mut self, name: &str, weight: Tensor) -> Result<Tensor, ModelError> {
        let Some(pair) = self.pairs.remove(name) else {
            return Ok(weight);
        };
        let (r, fan_in) = pair.a.dims2()?;
        let (fan_out, r_b) = pair.b.dims2()?;
        let expected = if self.fan_in_fan_out {
            [fan_in, fan_out]
        } else {
            [fan_out, fan_in]
        };
        if weight.dims() != expected || r != r_b {
            return Err(ModelError::Adapter {
                path: self.dir.clone(),
                message: format!(
                    "{name}: lora_A {:?} and lora_B {:?} make an update of shape {expected:?}, \
                     but the base weight is {:?} (an adapter for another model?)",
                    pair.a.dims(),
                    pair.b.dims(),
                    weight.dims()
                ),
            });
        }
        let delta = (pair.b.matmul(&pair.a)? * self.scale)?;
        let delta = if self.fan_in_fan_out {
            delta.t()?
        } else {
            delta
        };
        self.merged += 1;
        Ok((weight + delta)?)
    }

    /// Ends the merge: every adapted module must have met its base weight.
    pub(crate) fn finish(self) -> Result<usize, ModelError> {
        if self.pairs.is_empty() {
            return Ok(self.merged);
        }
        let mut left: Vec<&str> = self.pairs.keys().map(String::as_str).collect();
        left.sort_unstable();
        Err(ModelError::Adapter {
            path: self.dir,
            message: format!(
                "the base model has no weight for {} adapted module(s): {} \
                 (an adapter for another architecture?)",
                left.len(),
                left.join(", ")
            ),
        })
    }
}

/// Refuses the adapter options whose merge is not `W += scale · B @ A`.
fn check_supported(config: &AdapterConfig) -> Result<(), String> {
    if let Some(kind) = &config.peft_type {
        if kind != "LORA" {
            return Err(format!("peft_type {kind} is not supported (only LORA)"));
        }
    }
    if config.r == 0 {
        return Err("r is 0".to_string());
    }
    if config.use_dora {
        return Err("DoRA adapters (use_dora) are not supported".to_string());
    }
    if config.lora_bias {
        return Err("adapters with a LoRA bias (lora_bias) are not supported".to_string());
    }
    if let Some(bias) = &config.bias {
        if bias != "none" {
            return Err(format!(
                "adapters that train biases (bias \"{bias}\") are not supported"
            ));
        }
    }
    if config.rank_pattern.as_ref().is_some_and(|p| !p.is_empty())
        || config.alpha_pattern.as_ref().is_some_and(|p| !p.is_empty())
    {
        return Err(
            "per-module ranks or alphas (rank_pattern, alpha_pattern) are not supported"
                .to_string(),
        );
    }
    if config
        .modules_to_save
        .as_ref()
        .is_some_and(|m| !m.is_null() && m.as_array().is_none_or(|a| !a.is_empty()))
    {
        return Err(
            "adapters with fully trained modules (modules_to_save) are not supported".to_string(),
        );
    }
    Ok(())
}

/// Groups `…​.lora_A.weight` / `…​.lora_B.weight` tensors by the base weight
/// they update, checking names, ranks and `target_modules`.
fn pair_tensors(
    tensors: HashMap<String, Tensor>,
    config: &AdapterConfig,
) -> Result<HashMap<String, LoraPair>, String> {
    let targets: Option<Vec<&str>> = match &config.target_modules {
        Some(serde_json::Value::Array(items)) => {
            Some(items.iter().filter_map(serde_json::Value::as_str).collect())
        }
        // A string is a regular expression over module names; the tensors
        // present then say what was adapted.
        _ => None,
    };
    let mut halves: HashMap<String, (Option<Tensor>, Option<Tensor>)> = HashMap::new();
    for (name, tensor) in tensors {
        let (module, is_a) = if let Some(m) = name.strip_suffix(".lora_A.weight") {
            (m, true)
        } else if let Some(m) = name.strip_suffix(".lora_B.weight") {
            (m, false)
        } else {
            return Err(format!(
                "tensor {name} is not a LoRA A/B matrix (embedding adapters, trained \
                 biases and saved modules are not supported)"
            ));
        };
        let module = canonical_module(module);
        if let Some(targets) = &targets {
            let last = module.rsplit('.').next().unwrap_or(module);
            if !targets.contains(&last) {
                return Err(format!(
                    "tensor {name} adapts {last}, which is not among target_modules {targets:?}"
                ));
            }
        }
        let tensor = tensor
            .to_dtype(DType::F32)
            .map_err(|e| format!("tensor {name}: {e}"))?;
        let entry = halves.entry(format!("{module}.weight")).or_default();
        if is_a {
            entry.0 = Some(tensor);
        } else {
            entry.1 = Some(tensor);
        }
    }
    let mut pairs = HashMap::new();
    for (weight, halves) in halves {
        let (Some(a), Some(b)) = halves else {
            return Err(format!("{weight}: lora_A or lora_B is missing"));
        };
        let rank = a.dims2().map_err(|e| format!("{weight} lora_A: {e}"))?.0;
        if rank != config.r {
            return Err(format!(
                "{weight}: lora_A has rank {rank}, adapter_config.json says r = {}",
                config.r
            ));
        }
        b.dims2().map_err(|e| format!("{weight} lora_B: {e}"))?;
        pairs.insert(weight, LoraPair { a, b });
    }
    Ok(pairs)
}

/// `base_model.model.model.layers.0.self_attn.q_proj` → `layers.0.self_attn.q_proj`:
/// peft's wrapper prefix and the causal-LM `model.` prefix removed, so the
/// names meet a base checkpoint stored with or without `model.`.
fn canonical_module(module: &str) -> &str {
    let module = module.strip_prefix("base_model.model.").unwrap_or(module);
    module.strip_prefix("model.").unwrap_or(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_adapter(dir: &Path, config: serde_json::Value, tensors: &[(&str, Tensor)]) {
        std::fs::write(
            dir.join("adapter_config.json"),
            serde_json::to_string(&config).unwrap(),
        )
        .unwrap();
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, dir.join("adapter_model.safetensors")).unwrap();
    }

    fn t(data: &[f32], shape: (usize, usize)) -> Tensor {
        Tensor::from_slice(data, shape, &Device::Cpu).unwrap()
    }

    fn config(r: usize, alpha: f64) -> serde_json::Value {
        serde_json::json!({
            "peft_type": "LORA", "r": r, "lora_alpha": alpha,
            "target_modules": ["q_proj"], "use_rslora": false, "fan_in_fan_out": false,
            "use_dora": false, "bias": "none", "rank_pattern": {}, "alpha_pattern": {},
            "modules_to_save": null
        })
    }

    const Q: &str = "base_model.model.model.layers.0.self_attn.q_proj";

    /// A: [1, 3], B: [2, 1], so B @ A = [[1, 2, 3], [2, 4, 6]].
    fn rank_one() -> Vec<(String, Tensor)> {
        vec![
            (format!("{Q}.lora_A.weight"), t(&[1.0, 2.0, 3.0], (1, 3))),
            (format!("{Q}.lora_B.weight"), t(&[1.0, 2.0], (2, 1))),
        ]
    }

    fn with(dir: &Path, config: serde_json::Value) -> Result<LoraAdapter, ModelError> {
        let tensors = rank_one();
        let refs: Vec<(&str, Tensor)> = tensors
            .iter()
            .map(|(n, t)| (n.as_str(), t.clone()))
            .collect();
        write_adapter(dir, config, &refs);
        LoraAdapter::load(dir)
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn merge_adds_scaled_b_times_a_to_the_named_weight_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut adapter = with(dir.path(), config(1, 2.0)).unwrap();
        let base = t(&[0.5; 6], (2, 3));
        // Another weight passes through untouched.
        let other = adapter
            .merge("layers.0.self_attn.k_proj.weight", base.clone())
            .unwrap();
        assert_eq!(values(&other), vec![0.5; 6]);
        let merged = adapter
            .merge("layers.0.self_attn.q_proj.weight", base)
            .unwrap();
        // scale = alpha / r = 2.
        assert_eq!(values(&merged), vec![2.5, 4.5, 6.5, 4.5, 8.5, 12.5]);
        assert_eq!(adapter.finish().unwrap(), 1);
    }

    #[test]
    fn rslora_scales_by_alpha_over_sqrt_r() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(1, 3.0);
        cfg["use_rslora"] = true.into();
        // r = 1: sqrt(r) = r, so use a rank-4 adapter to tell them apart.
        cfg["r"] = 4.into();
        let a = t(&[1.0; 12], (4, 3));
        let b = t(&[0.25; 8], (2, 4));
        write_adapter(
            dir.path(),
            cfg,
            &[
                (&format!("{Q}.lora_A.weight"), a),
                (&format!("{Q}.lora_B.weight"), b),
            ],
        );
        let mut adapter = LoraAdapter::load(dir.path()).unwrap();
        let merged = adapter
            .merge("layers.0.self_attn.q_proj.weight", t(&[0.0; 6], (2, 3)))
            .unwrap();
        // B @ A = 1 everywhere; scale = 3 / sqrt(4) = 1.5 (alpha / r would be 0.75).
        assert_eq!(values(&merged), vec![1.5; 6]);
    }

    #[test]
    fn fan_in_fan_out_merges_the_transposed_update() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(1, 1.0);
        cfg["fan_in_fan_out"] = true.into();
        let mut adapter = with(dir.path(), cfg).unwrap();
        // The base is stored [in, out] = [3, 2].
        let merged = adapter
            .merge("layers.0.self_attn.q_proj.weight", t(&[0.0; 6], (3, 2)))
            .unwrap();
        assert_eq!(values(&merged), vec![1.0, 2.0, 2.0, 4.0, 3.0, 6.0]);
    }

    #[test]
    fn a_base_weight_of_another_shape_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut adapter = with(dir.path(), config(1, 1.0)).unwrap();
        let err = adapter
            .merge("layers.0.self_attn.q_proj.weight", t(&[0.0; 8], (2, 4)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("q_proj") && err.contains("[2, 4]"), "{err}");
    }

    #[test]
    fn unsupported_options_are_refused_by_name() {
        for (key, value, word) in [
            ("use_dora", serde_json::json!(true), "DoRA"),
            ("bias", serde_json::json!("all"), "bias"),
            (
                "rank_pattern",
                serde_json::json!({"q_proj": 8}),
                "rank_pattern",
            ),
            (
                "modules_to_save",
                serde_json::json!(["score"]),
                "modules_to_save",
            ),
            ("peft_type", serde_json::json!("IA3"), "IA3"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut cfg = config(1, 1.0);
            cfg[key] = value;
            let err = with(dir.path(), cfg).unwrap_err().to_string();
            assert!(err.contains(word), "{key}: {err}");
        }
    }

    #[test]
    fn a_rank_other_than_r_and_a_module_outside_the_targets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = with(dir.path(), config(2, 1.0)).unwrap_err().to_string();
        assert!(err.contains("rank 1") && err.contains("r = 2"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(1, 1.0);
        cfg["target_modules"] = serde_json::json!(["v_proj"]);
        let err = with(dir.path(), cfg).unwrap_err().to_string();
        assert!(err.contains("target_modules"), "{err}");
    }

    #[test]
    fn modules_the_base_never_asked_for_fail_the_merge() {
        let dir = tempfile::tempdir().unwrap();
        let adapter = with(dir.path(), config(1, 1.0)).unwrap();
        let err = adapter.finish().unwrap_err().to_string();
        assert!(err.contains("layers.0.self_attn.q_proj.weight"), "{err}");
    }
}
