#!/usr/bin/env python3
"""Reference embedding throughput: Intel's OpenVINO runtime through its Python API.

`quarry-bench embed` runs this beside Quarry on the very same texts, so the
numbers are measured in one run on one machine. The encoder graph is built here
independently of Quarry (OpenVINO's Python opset API, weights from
model.safetensors via numpy), batched the same way Quarry batches (longest
first, at most 32 texts and 4096 padded tokens per batch), and run in f32 and
bf16, timed from texts to vectors (tokenisation included, as on Quarry's
side). It also measures the machine's matrix-multiply peak (numpy f32 and an
OpenVINO MatMul in f32 and bf16) for the effective-FLOP/s column.

Usage: openvino_reference.py MODEL_DIR TEXTS_JSON [MAX_BATCH TOKEN_BUDGET]
(prints one JSON object; the batch limits default to 32 texts / 4096 tokens,
and `quarry-bench embed` passes the ones Quarry's OpenVINO engine uses)
Requires: openvino, numpy, safetensors, tokenizers (all from PyPI).
"""

import json
import sys
import time

import numpy as np
import openvino as ov
import openvino.opset13 as op
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_BATCH = 32
TOKEN_BUDGET = 4096
MAX_TOKENS = 256


def const(a):
    return op.constant(np.array(a, copy=True, order="C"))


def build(model_dir):
    cfg = json.load(open(model_dir + "/config.json"))
    w = load_file(model_dir + "/model.safetensors")
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_dim, eps = hidden // heads, cfg["layer_norm_eps"]

    def layer_norm(x, p):
        n = op.mvn(x, const(np.array([-1], np.int64)), True, eps, "inside_sqrt")
        return op.add(op.multiply(n, const(w[p + ".weight"])), const(w[p + ".bias"]))

    def linear(x, p):
        return op.add(op.matmul(x, const(w[p + ".weight"]), False, True), const(w[p + ".bias"]))

    ids = op.parameter([-1, -1], ov.Type.i64, name="input_ids")
    mask = op.parameter([-1, -1], ov.Type.i64, name="attention_mask")
    zero = const(np.array(0, np.int64))
    length = op.gather(op.shape_of(ids), const(np.array(1, np.int64)), zero)
    positions = op.range(zero, length, const(np.array(1, np.int64)), "i64")
    x = op.gather(const(w["embeddings.word_embeddings.weight"]), ids, zero)
    x = op.add(x, op.gather(const(w["embeddings.position_embeddings.weight"]), positions, zero))
    x = op.add(x, const(w["embeddings.token_type_embeddings.weight"][0]))
    x = layer_norm(x, "embeddings.LayerNorm")
    mask_f = op.convert(mask, "f32")
    bias = op.multiply(op.subtract(const(np.float32(1.0)), mask_f), const(np.float32(-1e9)))
    bias = op.unsqueeze(bias, const(np.array([1, 2], np.int64)))
    split = const(np.array([0, 0, heads, head_dim], np.int64))
    swap = const(np.array([0, 2, 1, 3], np.int64))
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def split_heads(t):
            return op.transpose(op.reshape(t, split, True), swap)

        q = split_heads(linear(x, p + "attention.self.query"))
        k = split_heads(linear(x, p + "attention.self.key"))
        v = split_heads(linear(x, p + "attention.self.value"))
        s = op.multiply(op.matmul(q, k, False, True), const(np.float32(1.0 / np.sqrt(head_dim))))
        a = op.softmax(op.add(s, bias), -1)
        ctx = op.reshape(op.transpose(op.matmul(a, v, False, False), swap),
                         const(np.array([0, 0, hidden], np.int64)), True)
        x = layer_norm(op.add(linear(ctx, p + "attention.output.dense"), x), p + "attention.output.LayerNorm")
        h = op.gelu(linear(x, p + "intermediate.dense"), "erf")
        x = layer_norm(op.add(linear(h, p + "output.dense"), x), p + "output.LayerNorm")
    m3 = op.unsqueeze(mask_f, const(np.array([2], np.int64)))
    axis1 = const(np.array([1], np.int64))
    summed = op.reduce_sum(op.multiply(x, m3), axis1, False)
    mean = op.divide(summed, op.maximum(op.reduce_sum(m3, axis1, False), const(np.float32(1e-9))))
    norm = op.maximum(op.sqrt(op.reduce_sum(op.multiply(mean, mean), axis1, True)), const(np.float32(1e-12)))
    return ov.Model([op.divide(mean, norm)], [ids, mask], "minilm")


def embed_all(request, encodings):
    order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
    start = 0
    while start < len(order):
        longest = max(1, len(encodings[order[start]].ids))
        fit = max(1, min(MAX_BATCH, TOKEN_BUDGET // longest))
        batch = order[start:start + fit]
        ids = np.zeros((len(batch), longest), np.int64)
        mask = np.zeros_like(ids)
        for r, j in enumerate(batch):
            n = len(encodings[j].ids)
            ids[r, :n] = encodings[j].ids
            mask[r, :n] = 1
        request.infer({"input_ids": ids, "attention_mask": mask})
        start += fit


def matmul_peak(core, precision, n=1536, reps=8):
    a = op.parameter([n, n], ov.Type.f32, name="a")
    b = const(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32))
    model = ov.Model([op.matmul(a, b, False, False)], [a], "mm")
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                  "PERFORMANCE_HINT": "LATENCY"})
    req = compiled.create_infer_request()
    x = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    req.infer({"a": x})
    t = time.perf_counter()
    for _ in range(reps):
        req.infer({"a": x})
    return 2.0 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def numpy_peak(n=1536, reps=8):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    a @ a
    t = time.perf_counter()
    for _ in range(reps):
        a @ a
    return 2.0 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def main():
    global MAX_BATCH, TOKEN_BUDGET
    model_dir, texts_path = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 4:
        MAX_BATCH, TOKEN_BUDGET = int(sys.argv[3]), int(sys.argv[4])
    texts = json.load(open(texts_path))
    tok = Tokenizer.from_file(model_dir + "/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(MAX_TOKENS)
    encodings = tok.encode_batch(texts)
    model = build(model_dir)
    core = ov.Core()
    out = {"openvino": ov.__version__.split("-")[0], "texts": len(texts),
           "max_batch": MAX_BATCH, "token_budget": TOKEN_BUDGET,
           "tokens": sum(len(e.ids) for e in encodings)}
    for precision in ["f32", "bf16"]:
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                      "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        embed_all(request, encodings[:8])  # warm-up
        # Timed like Quarry's side: texts in, vectors out (tokenisation included).
        t = time.perf_counter()
        embed_all(request, tok.encode_batch(texts))
        out[f"seconds_{precision}"] = time.perf_counter() - t
    out["peak_gflops_numpy_f32"] = numpy_peak()
    out["peak_gflops_openvino_f32"] = matmul_peak(core, "f32")
    out["peak_gflops_openvino_bf16"] = matmul_peak(core, "bf16")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
