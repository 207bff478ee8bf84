#!/usr/bin/env python3
"""Writes a tiny random-weight llama-architecture GGUF with a real byte-level BPE tokenizer.

For exp's real-engine test (tests/llamacpp.rs): llama.cpp's `llama-server` loads it on CPU and
generates a few thousand tokens/s on one core. The model is deliberately small (about 1 M
parameters): on a CPU, llama.cpp's decode of a small model is compute-bound, so batching more
sequences per step saves only the fixed cost of a step (graph, sampling, HTTP); the smaller the
model, the larger that share, and the clearer the gain of 4 slots over 1 (measured: 4.3 M
parameters, ~1.25x; 0.9 M, ~1.4x).
Nothing is downloaded: the tokenizer is trained here (the `tokenizers` package) on generated
English-like text, and the weights are seeded random numbers. Same inputs, same file.

Usage: make-tiny-model.py OUT.gguf   (run in the .venv that scripts/install-llamacpp.sh makes)
"""

import json
import random
import re
import sys
from pathlib import Path

import gguf
import gguf.quants
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SEED = 20240611
VOCAB_SIZE = 2048  # target; the trainer stops earlier if the corpus runs out of pairs
N_EMBD = 128
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 352
N_CTX_TRAIN = 2048
END_OF_TEXT = "<|endoftext|>"
# Matrices in F16: on CPU, llama.cpp's F16 kernels reuse weights across the sequences of a
# batch (4 slots decode at about half the CPU per token of 1 slot), where its F32 path barely
# does; norms stay F32.
MATRIX_TYPE = gguf.GGMLQuantizationType.F16

# exp's own synthetic-prompt vocabulary (src/workload/words.rs), so that a prompt of N words is
# about N tokens for this model as for real ones; plus a few words of the trade.
WORDS_RS = Path(__file__).resolve().parent.parent / "src" / "workload" / "words.rs"
EXTRA_WORDS = (
    "server request token batch cache memory latency throughput model prompt queue engine slot "
    "parallel stream output input second minute measure compare repeat result"
).split()


def exp_words() -> list[str]:
    """The 256 words of `WORDS` in src/workload/words.rs."""
    text = WORDS_RS.read_text()
    body = text.split("pub const WORDS: [&str; 256] = [", 1)[1].split("];", 1)[0]
    words = re.findall(r'"([a-z]+)"', body)
    assert len(words) == 256, f"{WORDS_RS}: expected 256 words, found {len(words)}"
    return words


SYLLABLES = "ba be bi bo ka ke ki ko ra re ri ro ta te ti to la le li lo na ne ni no".split()


def corpus(rng: random.Random, n_sentences: int = 6000) -> list[str]:
    """English-like sentences: Zipf-weighted common words, some made-up words, punctuation.
    Every word of exp's prompts also appears in runs of uniformly drawn words, as prompts have."""
    words = exp_words() + EXTRA_WORDS
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    lines = []
    for _ in range(n_sentences):
        picked = []
        for _ in range(rng.randint(5, 18)):
            if rng.random() < 0.08:
                picked.append("".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))))
            else:
                picked.append(rng.choices(words, weights)[0])
        sentence = " ".join(picked).capitalize()
        if rng.random() < 0.2:
            sentence += f", {rng.randint(1, 2048)} times"
        lines.append(sentence + rng.choice([".", ".", ".", "?", "!"]))
    for _ in range(n_sentences // 4):
        lines.append(" ".join(rng.choices(exp_words(), k=32)))
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


def gpt2_byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character standing for each byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def visible(tokens: list[str], eot: int) -> np.ndarray:
    """True for tokens that decode on their own to visible UTF-8 text. Greedy decoding of
    random weights tends to repeat one token forever; if that token were a partial UTF-8 byte
    or a control character, a stream would carry no text at all."""
    decoder = gpt2_byte_decoder()
    ok = np.zeros(len(tokens), dtype=bool)
    for i, tok in enumerate(tokens):
        try:
            text = bytes(decoder[c] for c in tok).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            continue
        ok[i] = i != eot and text.strip() != "" and text.strip().isprintable()
    return ok


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
