#!/usr/bin/env python3
"""Vectors for tokenizer_config.json `legacy` on a SentencePiece tokenizer.model (issue 16, point 10).

For each string: the ids transformers' LlamaTokenizerFast builds from the TinyLlama / Llama 2
tokenizer.model (from_slow=True, add_prefix_space=True) gives with legacy=True and with legacy=False,
and, for the record, the slow (sentencepiece) LlamaTokenizer's ids. llrt matches the fast form
(the one it builds everywhere); the slow one differs only where the text starts with a space under
legacy=False (it prepends one more "▁").

Writes tests/data/tokenizer/sentencepiece_legacy.json. Run from the repository root with the venv
that has transformers 4.57 + sentencepiece + tokenizers:
    /work/thirdparty/venv/bin/python scripts/tokenizer/make_legacy_vectors.py

transformers 4.57's convert_slow_tokenizer imports sentencepiece's generated protobuf module,
which needs protobuf >= 5.26; with the venv's protobuf 4.25 transformers' own copy of that
module is put in its place (the same message definitions).
"""
import json
import sys
from pathlib import Path

from transformers.utils import sentencepiece_model_pb2_new

sys.modules["sentencepiece.sentencepiece_model_pb2"] = sentencepiece_model_pb2_new
import transformers  # noqa: E402
from transformers import LlamaTokenizer, LlamaTokenizerFast  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" if (ROOT.parent / "shared").is_dir() else ROOT / "tests" / "data" / "shared"
MODEL = SHARED / "models" / "tinyllama-mini-f16" / "tokenizer.model"

TEXTS = [
    "</s>\n<|user|>", "</s>\n<|user|>\nHi there</s>\n<|assistant|>\n", "</s>Hello", "<s> hi</s> there\nfoo",
    "Hello world", "<|user|>\nHi", "hi  there", "\n", "<s>x", "a</s> b", "</s>\n\n x", "<s><s>a", "</s></s>",
    "x</s>\ny", "caf\u00e9 \U0001F600</s>\u00fc", "<s>\u2581already", "tab\there</s>\ttab", " lead", " ",
]


def main():
    out = {"model": "tinyllama-mini-f16/tokenizer.model", "transformers": transformers.__version__, "cases": []}
    toks = {}
    for legacy in (True, False):
        toks[legacy] = (
            LlamaTokenizerFast(vocab_file=str(MODEL), legacy=legacy, from_slow=True, add_prefix_space=True),
            LlamaTokenizer(str(MODEL), legacy=legacy),
        )
    for t in TEXTS:
        case = {"text": t}
        for legacy in (True, False):
            fast, slow = toks[legacy]
            key = "legacy_true" if legacy else "legacy_false"
            case[key] = fast.encode(t)
            case[key + "_slow"] = slow.encode(t)
        out["cases"].append(case)
    path = ROOT / "tests" / "data" / "tokenizer" / "sentencepiece_legacy.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
