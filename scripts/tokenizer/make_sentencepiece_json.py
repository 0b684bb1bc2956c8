#!/usr/bin/env python3
"""Make the tokenizer.json that transformers 4.x `LlamaTokenizerFast.from_slow` builds from a
SentencePiece tokenizer.model, in the legacy form the Hub's Llama 2 / TinyLlama files have
(normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer). Written compactly (no
indentation) so it can be committed; the content is exactly what `save()` writes.

  pip install 'transformers<5' sentencepiece protobuf tokenizers
  python scripts/tokenizer/make_sentencepiece_json.py

Outputs (committed):
  tests/data/tokenizer/llama2-from-slow/{tokenizer.json,tokenizer_config.json}
      from /work/shared/models/tinyllama-mini-f16 (the real Llama 2 tokenizer.model)
  tests/data/tokenizer/stories260k-from-slow/tokenizer.json
      from /work/shared/assets/stories260K/tok512.model (no tokenizer_config.json: defaults)
"""
import json
import os
import shutil
import sys
import tempfile

import transformers
from transformers import LlamaTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("LLRT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
OUT = os.path.join(ROOT, "tests", "data", "tokenizer")


def convert(src_dir, out_dir, copy_config):
    assert transformers.__version__.startswith("4."), "use transformers 4.x (pip install 'transformers<5')"
    tok = LlamaTokenizerFast.from_pretrained(src_dir, from_slow=True, legacy=True)
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tokenizer.json")
        tok.backend_tokenizer.save(path)
        data = json.load(open(path, encoding="utf-8"))
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
    if copy_config:
        shutil.copy(os.path.join(src_dir, "tokenizer_config.json"), os.path.join(out_dir, "tokenizer_config.json"))
    print(out_dir, os.path.getsize(os.path.join(out_dir, "tokenizer.json")), "bytes")


def main():
    convert(os.path.join(SHARED, "models", "tinyllama-mini-f16"), os.path.join(OUT, "llama2-from-slow"), True)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(SHARED, "assets", "stories260K", "tok512.model"), os.path.join(tmp, "tokenizer.model"))
        convert(tmp, os.path.join(OUT, "stories260k-from-slow"), False)


if __name__ == "__main__":
    sys.exit(main())
