"""The tokenizer of exp's tiny test models, shared by make-tiny-model.py (GGUF, for llama.cpp)
and make-tiny-hf-model.py (Hugging Face format, for vLLM): a byte-level BPE trained here on
generated English-like text built from exp's own prompt words, so that a prompt of N words is
about N tokens, as for real models. Nothing is downloaded; same inputs, same tokenizer.
"""

import random
import re
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SEED = 20240611
VOCAB_SIZE = 2048  # target; the trainer stops earlier if the corpus runs out of pairs
END_OF_TEXT = "<|endoftext|>"

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


def tokenizer() -> Tokenizer:
    """The trained tokenizer, checked to round-trip."""
    tok = train_tokenizer(corpus(random.Random(SEED)))
    sample = "The server streams tokens, batch after batch."
    assert tok.decode(tok.encode(sample).ids) == sample, "byte-level BPE must round-trip"
    return tok
