#!/usr/bin/env python3
"""Writes a tiny random-weight llama-architecture GGUF with a real byte-level BPE tokenizer.

For exp's real-engine test (tests/llamacpp.rs): llama.cpp's `llama-server` loads it on CPU and
generates a few thousand tokens/s on one core. The model is deliberately small (about 1 M
parameters): on a CPU, llama.cpp's decode of a small model is compute-bound, so batching more
sequences per step saves only the fixed cost of a step (graph, sampling, HTTP); the smaller the
model, the larger that share, and the clearer the gain of 4 slots over 1 (measured: 4.3 M
parameters, ~1.25x; 0.9 M, ~1.4x).
Nothing is downloaded: the tokenizer is trained here (the `tokenizers` package) on generated
English-like text (scripts/tiny_tokenizer.py), and the weights are seeded random numbers. Same inputs, same file.

Usage: make-tiny-model.py OUT.gguf   (run in the .venv that scripts/install-llamacpp.sh makes)
"""

import json
import sys
from pathlib import Path

import gguf
import gguf.quants
import numpy as np
from tokenizers import Tokenizer

from tiny_tokenizer import END_OF_TEXT, SEED, tokenizer, visible

N_EMBD = 128
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 352
N_CTX_TRAIN = 2048
# Matrices in F16: on CPU, llama.cpp's F16 kernels reuse weights across the sequences of a
# batch (4 slots decode at about half the CPU per token of 1 slot), where its F32 path barely
# does; norms stay F32.
MATRIX_TYPE = gguf.GGMLQuantizationType.F16


def vocab_of(tok: Tokenizer) -> tuple[list[str], list[str], list[int], int]:
    """Tokens by id, merges as 'a b' strings, GGUF token types, and the end-of-text id."""
    model = json.loads(tok.to_str())["model"]
    by_id = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    assert [i for _, i in by_id] == list(range(len(by_id))), "token ids must be dense"
    tokens = [t for t, _ in by_id]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    eot = model["vocab"][END_OF_TEXT]
    types = [
        gguf.TokenType.CONTROL if i == eot else gguf.TokenType.NORMAL
        for i in range(len(tokens))
    ]
    return tokens, merges, [int(t) for t in types], eot


def weights(rng: np.random.Generator, speak: np.ndarray) -> dict[str, np.ndarray]:
    """Llama tensors in GGUF names; numpy shape (rows, cols) is ggml's (cols, rows). Rows of
    the output projection are zero for tokens outside `speak`: their logit is always 0, below
    the best of the others, so greedy decoding never picks them (prompts still use them)."""
    n_vocab = len(speak)

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    head_dim = N_EMBD // N_HEAD
    t = {"token_embd.weight": mat(n_vocab, N_EMBD)}
    for b in range(N_LAYER):
        p = f"blk.{b}."
        t[p + "attn_norm.weight"] = ones(N_EMBD)
        t[p + "attn_q.weight"] = mat(N_HEAD * head_dim, N_EMBD)
        t[p + "attn_k.weight"] = mat(N_HEAD_KV * head_dim, N_EMBD)
        t[p + "attn_v.weight"] = mat(N_HEAD_KV * head_dim, N_EMBD)
        t[p + "attn_output.weight"] = mat(N_EMBD, N_HEAD * head_dim)
        t[p + "ffn_norm.weight"] = ones(N_EMBD)
        t[p + "ffn_gate.weight"] = mat(N_FF, N_EMBD)
        t[p + "ffn_up.weight"] = mat(N_FF, N_EMBD)
        t[p + "ffn_down.weight"] = mat(N_EMBD, N_FF)
    t["output_norm.weight"] = ones(N_EMBD)
    t["output.weight"] = mat(n_vocab, N_EMBD) * speak[:, None].astype(np.float32)
    return t


def write_gguf(path: Path, tok: Tokenizer) -> int:
    """Writes the model; returns its parameter count."""
    tokens, merges, types, eot = vocab_of(tok)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("exp-tiny-llama")
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(eot)
    w.add_eos_token_id(eot)
    w.add_add_bos_token(False)
    speak = visible(tokens, eot)
    tensors = weights(np.random.default_rng(SEED), speak)
    for name, data in tensors.items():
        if data.ndim == 2:
            w.add_tensor(name, gguf.quants.quantize(data, MATRIX_TYPE), raw_dtype=MATRIX_TYPE)
        else:
            w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{int(speak.sum())} of {len(tokens)} tokens can be generated (visible text)")
    return sum(a.size for a in tensors.values())


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    tok = tokenizer()
    sample = "The server streams tokens, batch after batch."
    ids = tok.encode(sample).ids
    tmp = out.with_suffix(".tmp")
    params = write_gguf(tmp, tok)
    tmp.replace(out)
    size = out.stat().st_size / 2**20
    print(f"{out}: {params / 1e6:.2f} M parameters, vocabulary {tok.get_vocab_size()}, {size:.1f} MiB")
    print(f"'{sample}' -> {len(ids)} tokens")


if __name__ == "__main__":
    main()
