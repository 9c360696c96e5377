//! The BERT sentence encoder (mean pooling, L2 normalisation) as an OpenVINO graph.
//!
//! Inputs: `input_ids` and `attention_mask`, both i64 `[batch, tokens]`, any
//! sizes. Output: `[batch, hidden]` f32 unit vectors, the same function as the
//! candle path in `embed.rs` (token type 0 everywhere, absolute positions);
//! or, for late interaction, every token's unit vector `[batch, tokens,
//! hidden]`.

use serde::Deserialize;

use super::ir::{Graph, Out, SafetensorsIndex};

/// The fields of a BERT `config.json` the graph depends on.
#[derive(Debug, Deserialize)]
pub struct BertShape {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".to_string()
}

/// What the encoder graph outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphOutput {
    /// One unit vector per text: mean pooling over the mask, L2 norm.
    Sentence,
    /// One unit vector per token (MaxSim's input), pads included.
    Tokens,
}

/// Builds the encoder graph; returns the IR XML and the bytes to append to the weights file.
pub fn bert_graph(
    config: &BertShape,
    weights: &SafetensorsIndex,
    file_len: usize,
    output: GraphOutput,
) -> Result<(String, Vec<u8>), String> {
    let h = config.hidden_size;
    let heads = config.num_attention_heads;
    if heads == 0 || !h.is_multiple_of(heads) {
        return Err(format!("hidden size {h} is not divisible by {heads} heads"));
    }
    let gelu_mode = match config.hidden_act.as_str() {
        "gelu" => "ERF",
        "gelu_new" | "gelu_pytorch_tanh" => "TANH",
        other => return Err(format!("activation {other} is not supported")),
    };
    let eps = format!("{:e}", config.layer_norm_eps);
    let mut g = Graph::new(weights, file_len);
    // Checkpoints may or may not carry the "bert." prefix.
    let prefix = if g
        .weight_shape("bert.embeddings.word_embeddings.weight")
        .is_ok()
    {
        "bert."
    } else {
        ""
    };
    let w = |name: &str| format!("{prefix}{name}");

    let ids = g.parameter("input_ids", "i64", 2);
    let mask = g.parameter("attention_mask", "i64", 2);

    // Embeddings: word + position + token type 0, then LayerNorm.
    let axis0 = g.i64s(&[0], &[]);
    let words = g.weight(&w("embeddings.word_embeddings.weight"))?;
    let mut x = g.op(
        "Gather",
        "opset8",
        &[words, ids, axis0],
        &[("batch_dims", "0")],
    );
    let shape = g.op("ShapeOf", "opset3", &[ids], &[("output_type", "i64")]);
    let one = g.i64s(&[1], &[]);
    let len = g.op(
        "Gather",
        "opset8",
        &[shape, one, axis0],
        &[("batch_dims", "0")],
    );
    let zero = g.i64s(&[0], &[]);
    let positions = g.op(
        "Range",
        "opset4",
        &[zero, len, one],
        &[("output_type", "i64")],
    );
    let pos_table = g.weight(&w("embeddings.position_embeddings.weight"))?;
    let pos = g.op(
        "Gather",
        "opset8",
        &[pos_table, positions, axis0],
        &[("batch_dims", "0")],
    );
    x = add(&mut g, x, pos);
    let token_type = g.weight_row(&w("embeddings.token_type_embeddings.weight"), 0)?;
    x = add(&mut g, x, token_type);
    x = layer_norm(&mut g, x, &w("embeddings.LayerNorm"), &eps)?;

    // Additive attention bias: 0 where the mask is 1, a large negative number elsewhere.
    let mask_f = g.op("Convert", "opset1", &[mask], &[("destination_type", "f32")]);
    let one_f = g.f32_scalar(1.0);
    let inverted = g.op(
        "Subtract",
        "opset1",
        &[one_f, mask_f],
        &[("auto_broadcast", "numpy")],
    );
    let neg = g.f32_scalar(-1e9);
    let bias = mul(&mut g, inverted, neg);
    let axes12 = g.i64s(&[1, 2], &[2]);
    let bias = g.op("Unsqueeze", "opset1", &[bias, axes12], &[]);

    let head_dim = h / heads;
    let split_heads = g.i64s(&[0, 0, heads as i64, head_dim as i64], &[4]);
    let merge_heads = g.i64s(&[0, 0, h as i64], &[3]);
    let swap = g.i64s(&[0, 2, 1, 3], &[4]);
    let scale = g.f32_scalar(1.0 / (head_dim as f32).sqrt());
    for layer in 0..config.num_hidden_layers {
        let p = w(&format!("encoder.layer.{layer}."));
        let heads_of = |g: &mut Graph, t: Out| {
            let r = g.op(
                "Reshape",
                "opset1",
                &[t, split_heads],
                &[("special_zero", "true")],
            );
            g.op("Transpose", "opset1", &[r, swap], &[])
        };
        let q = linear(&mut g, x, &format!("{p}attention.self.query"))?;
        let q = heads_of(&mut g, q);
        let k = linear(&mut g, x, &format!("{p}attention.self.key"))?;
        let k = heads_of(&mut g, k);
        let v = linear(&mut g, x, &format!("{p}attention.self.value"))?;
        let v = heads_of(&mut g, v);
        let scores = matmul(&mut g, q, k, true);
        let scores = mul(&mut g, scores, scale);
        let scores = add(&mut g, scores, bias);
        let probs = g.op("SoftMax", "opset8", &[scores], &[("axis", "-1")]);
        let ctx = matmul(&mut g, probs, v, false);
        let ctx = g.op("Transpose", "opset1", &[ctx, swap], &[]);
        let ctx = g.op(
            "Reshape",
            "opset1",
            &[ctx, merge_heads],
            &[("special_zero", "true")],
        );
        let attn = linear(&mut g, ctx, &format!("{p}attention.output.dense"))?;
        let attn = add(&mut g, attn, x);
        x = layer_norm(
            &mut g,
            attn,
            &format!("{p}attention.output.LayerNorm"),
            &eps,
        )?;
        let inter = linear(&mut g, x, &format!("{p}intermediate.dense"))?;
        let inter = g.op(
            "Gelu",
            "opset7",
            &[inter],
            &[("approximation_mode", gelu_mode)],
        );
        let out = linear(&mut g, inter, &format!("{p}output.dense"))?;
        let out = add(&mut g, out, x);
        x = layer_norm(&mut g, out, &format!("{p}output.LayerNorm"), &eps)?;
    }

    if output == GraphOutput::Tokens {
        let unit = unit_rows(&mut g, x, 2);
        g.result(unit);
        return Ok(g.finish("bert_token_encoder"));
    }

    // Mean pooling over the mask, then L2 normalisation.
    let axis2 = g.i64s(&[2], &[1]);
    let mask3 = g.op("Unsqueeze", "opset1", &[mask_f, axis2], &[]);
    let masked = mul(&mut g, x, mask3);
    let axis1 = g.i64s(&[1], &[1]);
    let summed = g.op(
        "ReduceSum",
        "opset1",
        &[masked, axis1],
        &[("keep_dims", "false")],
    );
    let counts = g.op(
        "ReduceSum",
        "opset1",
        &[mask3, axis1],
        &[("keep_dims", "false")],
    );
    let tiny = g.f32_scalar(1e-9);
    let counts = g.op(
        "Maximum",
        "opset1",
        &[counts, tiny],
        &[("auto_broadcast", "numpy")],
    );
    let mean = div(&mut g, summed, counts);
    let unit = unit_rows(&mut g, mean, 1);
    g.result(unit);
    Ok(g.finish("bert_sentence_encoder"))
}

/// `x` divided by its L2 norm along `axis` (at least 1e-12).
fn unit_rows(g: &mut Graph, x: Out, axis: i64) -> Out {
    let axis = g.i64s(&[axis], &[1]);
    let squares = mul(g, x, x);
    let sum_sq = g.op(
        "ReduceSum",
        "opset1",
        &[squares, axis],
        &[("keep_dims", "true")],
    );
    let norm = g.op("Sqrt", "opset1", &[sum_sq], &[]);
    let tinier = g.f32_scalar(1e-12);
    let norm = g.op(
        "Maximum",
        "opset1",
        &[norm, tinier],
        &[("auto_broadcast", "numpy")],
    );
    div(g, x, norm)
}

fn add(g: &mut Graph, a: Out, b: Out) -> Out {
    g.op("Add", "opset1", &[a, b], &[("auto_broadcast", "numpy")])
}

fn mul(g: &mut Graph, a: Out, b: Out) -> Out {
    g.op(
        "Multiply",
        "opset1",
        &[a, b],
        &[("auto_broadcast", "numpy")],
    )
}

fn div(g: &mut Graph, a: Out, b: Out) -> Out {
    g.op(
        "Divide",
        "opset1",
        &[a, b],
        &[("auto_broadcast", "numpy"), ("m_pythondiv", "true")],
    )
}

fn matmul(g: &mut Graph, a: Out, b: Out, transpose_b: bool) -> Out {
    let tb = if transpose_b { "true" } else { "false" };
    g.op(
        "MatMul",
        "opset1",
        &[a, b],
        &[("transpose_a", "false"), ("transpose_b", tb)],
    )
}

/// `x @ W^T + b` with torch's `[out, in]` weight layout.
fn linear(g: &mut Graph, x: Out, name: &str) -> Result<Out, String> {
    let weight = g.weight(&format!("{name}.weight"))?;
    let bias = g.weight(&format!("{name}.bias"))?;
    let y = matmul(g, x, weight, true);
    Ok(add(g, y, bias))
}

fn layer_norm(g: &mut Graph, x: Out, name: &str, eps: &str) -> Result<Out, String> {
    let axes = g.i64s(&[-1], &[1]);
    let normed = g.op(
        "MVN",
        "opset6",
        &[x, axes],
        &[
            ("eps", eps),
            ("normalize_variance", "true"),
            ("eps_mode", "INSIDE_SQRT"),
        ],
    );
    let gamma = g.weight(&format!("{name}.weight"))?;
    let beta = g.weight(&format!("{name}.bias"))?;
    let scaled = mul(g, normed, gamma);
    Ok(add(g, scaled, beta))
}
