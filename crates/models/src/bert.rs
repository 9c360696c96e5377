//! The BERT encoder every BERT-family model here runs on (the embedder,
//! the BERT and XLM-RoBERTa cross-encoders, MaxSim): candle-transformers'
//! `BertEncoder` layers under input embeddings and an attention mask built
//! here. candle's `BertModel` builds the mask as `f32::MIN` times `1 - mask`
//! in the activation dtype, which rounds to -inf in bf16 and f16 and makes
//! every unmasked position 0 × -inf = NaN; here the mask uses the dtype's
//! own lowest finite value, so the GPU precision (bf16) works.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};
use candle_transformers::models::bert::{BertEncoder, Config};

/// BERT's input embeddings: word + token type + position, then LayerNorm.
pub(crate) struct Embeddings {
    word: Embedding,
    token_type: Embedding,
    position: Embedding,
    norm: LayerNorm,
}

impl Embeddings {
    /// Loads `word_embeddings`, `token_type_embeddings`,
    /// `position_embeddings` and `LayerNorm` under `vb`.
    pub(crate) fn load(vb: VarBuilder, config: &Config) -> candle_core::Result<Self> {
        Ok(Embeddings {
            word: embedding(
                config.vocab_size,
                config.hidden_size,
                vb.pp("word_embeddings"),
            )?,
            token_type: embedding(
                config.type_vocab_size,
                config.hidden_size,
                vb.pp("token_type_embeddings"),
            )?,
            position: embedding(
                config.max_position_embeddings,
                config.hidden_size,
                vb.pp("position_embeddings"),
            )?,
            norm: layer_norm(
                config.hidden_size,
                config.layer_norm_eps,
                vb.pp("LayerNorm"),
            )?,
        })
    }

    /// (batch, len) ids, type ids and position ids → (batch, len, hidden).
    pub(crate) fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        positions: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let sum = (self.word.forward(ids)? + self.token_type.forward(type_ids)?)?;
        let sum = sum.broadcast_add(&self.position.forward(positions)?)?;
        self.norm.forward(&sum)
    }
}

/// A BERT encoder without a head: token states of a right-padded batch.
pub(crate) struct Bert {
    embeddings: Embeddings,
    encoder: BertEncoder,
}

impl Bert {
    /// Loads `embeddings.*` and `encoder.*` under `vb`, or under `bert.` /
    /// `{model_type}.` when the checkpoint nests them there (as candle's
    /// `BertModel` accepts).
    pub(crate) fn load(vb: VarBuilder, config: &Config) -> candle_core::Result<Self> {
        let load_at = |vb: VarBuilder| -> candle_core::Result<Self> {
            Ok(Bert {
                embeddings: Embeddings::load(vb.pp("embeddings"), config)?,
                encoder: BertEncoder::load(vb.pp("encoder"), config)?,
            })
        };
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        match load_at(vb.clone()) {
            Ok(bert) => Ok(bert),
            Err(err) => match &config.model_type {
                Some(model_type) => load_at(vb.pp(model_type)).map_err(|_| err),
                None => Err(err),
            },
        }
    }

    /// (batch, len) token ids, type ids and 1/0 mask → (batch, len, hidden)
    /// in the weights' dtype; positions count 0, 1, … from the left.
    pub(crate) fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (_, len) = ids.dims2()?;
        let positions = Tensor::arange(0u32, len as u32, ids.device())?.unsqueeze(0)?;
        let hidden = self.embeddings.forward(ids, type_ids, &positions)?;
        self.encode(&hidden, mask)
    }

    /// Token ids `rows`, right-padded to `width` on `device`: the token
    /// states as f32 `(rows, width, hidden)` and the 1/0 mask `(rows, width)`.
    pub(crate) fn forward_rows(
        &self,
        rows: &[&[u32]],
        width: usize,
        device: &Device,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let mut ids = vec![0u32; rows.len() * width];
        let mut mask = vec![0u32; rows.len() * width];
        for (r, row) in rows.iter().enumerate() {
            ids[r * width..r * width + row.len()].copy_from_slice(row);
            mask[r * width..r * width + row.len()].fill(1);
        }
        let ids = Tensor::from_vec(ids, (rows.len(), width), device)?;
        let mask = Tensor::from_vec(mask, (rows.len(), width), device)?;
        let hidden = self.forward(&ids, &ids.zeros_like()?, &mask)?;
        Ok((hidden.to_dtype(DType::F32)?, mask))
    }

    /// Runs the encoder layers over input embeddings with a 1/0 mask.
    pub(crate) fn encode(&self, hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        self.encoder
            .forward(hidden, &additive_mask(mask, hidden.dtype())?)
    }

    /// The embeddings, for models that number positions themselves.
    pub(crate) fn embeddings(&self) -> &Embeddings {
        &self.embeddings
    }
}

/// The lowest finite value of `dtype`: what attention adds on pads.
fn lowest(dtype: DType) -> f64 {
    match dtype {
        DType::BF16 => -3.389_531_389_251_535_5e38,
        DType::F16 => -65_504.0,
        DType::F64 => f64::MIN,
        _ => f64::from(f32::MIN),
    }
}

/// (batch, len) 1/0 mask → (batch, 1, 1, len) additive mask: 0 on tokens,
/// the dtype's lowest finite value on pads (what transformers adds to
/// attention scores).
pub(crate) fn additive_mask(mask: &Tensor, dtype: DType) -> candle_core::Result<Tensor> {
    let (rows, width) = mask.dims2()?;
    let mask = mask.to_dtype(dtype)?;
    (mask.ones_like()? - &mask)?
        .affine(lowest(dtype), 0.0)?
        .reshape((rows, 1, 1, width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additive_mask_is_zero_on_tokens_and_lowest_finite_on_pads() -> candle_core::Result<()> {
        let mask = Tensor::new(&[[1u32, 1, 0]], &Device::Cpu)?;
        let got = additive_mask(&mask, DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_eq!(got, vec![0.0, 0.0, f32::MIN]);
        for dtype in [DType::BF16, DType::F16] {
            let got = additive_mask(&mask, dtype)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            assert_eq!(got[..2], [0.0, 0.0], "{dtype:?}");
            assert!(got[2].is_finite() && got[2] < -6e4, "{dtype:?}: {}", got[2]);
        }
        Ok(())
    }
}
