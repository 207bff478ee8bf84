#!/usr/bin/env python3
"""Writes the generated corpus that exp's checked-in quality scenarios score
(scenarios/data/generated-corpus.jsonl): English-like paragraphs of exp's own prompt words
(src/workload/words.rs), Zipf-weighted, with punctuation and numbers, one JSON object
{"text": ...} per line, as `[quality] perplexity = { corpus = ... }` reads it.

The repository ships no text it did not generate, so this is a stand-in: a perplexity on it
says whether two servers agree (the same model on two configurations) or one is worse (a
damaged model), not how good a model is at English. Replace it with your own text for that.
Standard library only; same seed, same file.

Usage: make-corpus.py [OUT]   (default scenarios/data/generated-corpus.jsonl)
"""

import json
import random
import re
import sys
from pathlib import Path

SEED = 17
DOCUMENTS = 40
ROOT = Path(__file__).resolve().parent.parent


def words() -> list[str]:
    """The 256 words of `WORDS` in src/workload/words.rs."""
    text = (ROOT / "src" / "workload" / "words.rs").read_text()
    body = text.split("pub const WORDS: [&str; 256] = [", 1)[1].split("];", 1)[0]
    found = re.findall(r'"([a-z]+)"', body)
    assert len(found) == 256, f"expected 256 words, found {len(found)}"
    return found


def sentence(rng: random.Random, vocab: list[str], weights: list[float]) -> str:
    picked = rng.choices(vocab, weights, k=rng.randint(6, 16))
    text = " ".join(picked).capitalize()
    if rng.random() < 0.2:
        text += f", {rng.randint(2, 999)} times"
    return text + rng.choice([".", ".", ".", "?", "!"])


def main() -> None:
    if len(sys.argv) > 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1]) if len(sys.argv) == 2 else ROOT / "scenarios/data/generated-corpus.jsonl"
    rng = random.Random(SEED)
    vocab = words()
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    lines = []
    for _ in range(DOCUMENTS):
        text = " ".join(sentence(rng, vocab, weights) for _ in range(rng.randint(8, 14)))
        lines.append(json.dumps({"text": text}))
    out.write_text("\n".join(lines) + "\n")
    print(f"{out}: {DOCUMENTS} documents, {sum(len(l) for l in lines)} bytes")


if __name__ == "__main__":
    main()
