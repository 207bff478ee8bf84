#!/usr/bin/env python3
"""Writes a tiny random-weight llama-architecture GGUF with a real byte-level BPE tokenizer.

For exp's real-engine test (tests/llamacpp.rs): llama.cpp's `llama-server` loads it on CPU and
generates a few hundred tokens/s per core, so continuous batching is measurable in seconds.
Nothing is downloaded: the tokenizer is trained here (the `tokenizers` package) on generated
English-like text, and the weights are seeded random numbers. Same inputs, same file.

Usage: make-tiny-model.py OUT.gguf   (run in the .venv that scripts/install-llamacpp.sh makes)
"""

import json
import random
import sys
from pathlib import Path

import gguf
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SEED = 20240611
VOCAB_SIZE = 2048  # target; the trainer stops earlier if the corpus runs out of pairs
N_EMBD = 256
N_LAYER = 4
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 704
N_CTX_TRAIN = 2048
END_OF_TEXT = "<|endoftext|>"

WORDS = (
    "the of and to in is was for that on as with by he she it at from his her an were are "
    "which this be or have had not but they their one all we there been has who when would "
    "more if no out so said what up its about into than them can only other new some could "
    "time these two may then do first any my now such like our over man me even most made "
    "after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still "
    "own see men work long get here between both life being under never day same another "
    "know while last might us great old year off come since against go came right used take "
    "three server request token batch cache memory latency throughput model prompt queue "
    "engine slot parallel stream output input second minute measure compare repeat result"
).split()
SYLLABLES = "ba be bi bo ka ke ki ko ra re ri ro ta te ti to la le li lo na ne ni no".split()


def corpus(rng: random.Random, n_sentences: int = 6000) -> list[str]:
    """English-like sentences: Zipf-weighted common words, some made-up words, punctuation."""
    weights = [1.0 / (rank + 1) for rank in range(len(WORDS))]
    lines = []
    for _ in range(n_sentences):
        words = []
        for _ in range(rng.randint(5, 18)):
            if rng.random() < 0.08:
                words.append("".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))))
            else:
                words.append(rng.choices(WORDS, weights)[0])
        sentence = " ".join(words).capitalize()
        if rng.random() < 0.2:
            sentence += f", {rng.randint(1, 2048)} times"
        lines.append(sentence + rng.choice([".", ".", ".", "?", "!"]))
    return lines


def train_tokenizer(lines: list[str]) -> Tokenizer:
    """Byte-level BPE as GPT-2 has it: every byte is a token, so any text round-trips."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer)
    return tok


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


def weights(rng: np.random.Generator, n_vocab: int) -> dict[str, np.ndarray]:
    """Llama tensors in GGUF names; numpy shape (rows, cols) is ggml's (cols, rows)."""

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
    t["output.weight"] = mat(n_vocab, N_EMBD)
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
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(eot)
    w.add_eos_token_id(eot)
    w.add_add_bos_token(False)
    tensors = weights(np.random.default_rng(SEED), len(tokens))
    for name, data in tensors.items():
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return sum(a.size for a in tensors.values())


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(corpus(random.Random(SEED)))
    sample = "The server streams tokens, batch after batch."
    ids = tok.encode(sample).ids
    assert tok.decode(ids) == sample, "byte-level BPE must round-trip"
    tmp = out.with_suffix(".tmp")
    params = write_gguf(tmp, tok)
    tmp.replace(out)
    size = out.stat().st_size / 2**20
    print(f"{out}: {params / 1e6:.2f} M parameters, vocabulary {tok.get_vocab_size()}, {size:.1f} MiB")
    print(f"'{sample}' -> {len(ids)} tokens")


if __name__ == "__main__":
    main()
