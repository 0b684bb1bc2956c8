#!/usr/bin/env python3
"""Perplexity reference for models/stories260K (tests/data/stories260K/perplexity.json).

An independent evaluation: llama2.c's forward pass re-implemented in numpy
(scripts/stories260K_reference.py, class Llama2cNumpy) in float64 on the ORIGINAL
stories260K.bin weights, over a fixed text tokenized with the original tok512.model
(sentencepiece). The text is cut into chunks of CHUNK tokens; each chunk starts with BOS
and a fresh KV cache, and every token after the chunk's first is scored:
    nll_i = -log softmax(logits_{i-1})[tok_i]      (float64 log-sum-exp)
    ppl = exp(mean nll) over all scored tokens.
This is what `llrt perplexity --ctx CHUNK` computes (src/run/perplexity.cpp).

Needs: numpy, sentencepiece. Run from the repository root:
    python3 scripts/stories260K_perplexity.py
"""
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_llama2c import read_llama2c  # noqa: E402
from stories260K_reference import ASSETS, ROOT, Llama2cNumpy  # noqa: E402

CHUNK = 64
TEXT = (
    "Once upon a time, there was a little dog named Max. Max liked to run in the big green park "
    "with his friend Tim. One day, Tim found a red ball under a tree. He threw the ball and Max ran "
    "very fast to get it. The sun was warm and the birds were singing. Max brought the ball back and "
    "Tim laughed. \"Good dog!\" he said. Then they sat on the grass and ate some apples. Max was happy, "
    "and Tim was happy too. When the sky turned orange, they walked home together."
)


def main():
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(ASSETS / "tok512.model"))
    cfg, w = read_llama2c(ASSETS / "stories260K.bin")
    ids = sp.encode(TEXT)
    chunks, nll = [], []
    for c0 in range(0, len(ids), CHUNK - 1):
        body = ids[c0:c0 + CHUNK - 1]
        if len(body) < 2:
            break
        toks = [1] + body  # BOS + up to CHUNK-1 text tokens: CHUNK positions at most
        m = Llama2cNumpy(cfg, w, np.float64)
        chunk_nll = []
        for pos in range(len(toks) - 1):
            lg = m.forward(toks[pos], pos)
            mx = lg.max()
            lse = mx + math.log(float(np.exp(lg - mx).sum()))
            chunk_nll.append(float(lse - lg[toks[pos + 1]]))
        chunks.append({"tokens": toks, "nll": chunk_nll})
        nll += chunk_nll
    out = {
        "generator": "scripts/stories260K_perplexity.py (numpy float64 llama2.c forward, original weights)",
        "text": TEXT,
        "text_ids": ids,
        "chunk": CHUNK,
        "chunks": chunks,
        "scored_tokens": len(nll),
        "mean_nll": sum(nll) / len(nll),
        "ppl": math.exp(sum(nll) / len(nll)),
    }
    path = ROOT / "tests" / "data" / "stories260K" / "perplexity.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(ids)} tokens, {len(chunks)} chunks, {len(nll)} scored, ppl {out['ppl']:.6f} -> {path}")


if __name__ == "__main__":
    main()
