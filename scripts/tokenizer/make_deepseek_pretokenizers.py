#!/usr/bin/env python3
"""Pre-tokenizers for llama.cpp's DeepSeek test vocabularies (shared/assets/tokenizer-tests/
ggml-vocab-deepseek-{llm,coder}.gguf), which ship without their tokenizer.json.

The GGUF files give the vocabulary, merges and token types; the pre-tokenizer is llama.cpp's
description of it (llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM / _CODER): a Sequence of
Isolated Splits, then ByteLevel. llama.cpp writes the digit step as a \\p{N}+ (llm) / \\p{N}
(coder) regex; DeepSeek's own files use a Digits pre-tokenizer, which llrt does not implement
(it is an error there). This script builds the tokenizer.json HF would load from these pieces,
checks with HF `tokenizers` that it reproduces every .out vector, and writes the pre-tokenizers
(\\u-escaped JSON, so no tool normalizes the canonical singletons in the llm character class)
to tests/data/tokenizer/deepseek_pretokenizers.json for the C++ test, which reads the GGUF itself.

  pip install tokenizers gguf
  python scripts/tokenizer/make_deepseek_pretokenizers.py
"""
import json
import os
import sys

import gguf
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("LLRT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
VEC = os.path.join(SHARED, "assets", "tokenizer-tests")

LLM = ["[\r\n]",
       "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-"
       "ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-"
       "ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
       "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
       "\\s+$",
       "[一-龥ࠀ-一가-퟿]+"]
def fix(r):
    # the pattern as llama.cpp has it holds canonical singletons (U+1F7D, U+1FBE, U+1FD3, U+1FDB,
    # U+2126, U+212A) that text tools normalize away; restore them
    for a, b in [("\u1f5f-\u03ce", "\u1f5f-\u1f7d"), ("\u1fbc\u03b9", "\u1fbc\u1fbe"), ("\u1fd0-\u0390", "\u1fd0-\u1fd3"),
                 ("\u1fd6-\u038a", "\u1fd6-\u1fdb"), ("\u03a9\u2128", "\u2126\u2128"), ("\u2128K-\u212d", "\u2128\u212a-\u212d")]:
        assert a in r, a
        r = r.replace(a, b)
    return r
LLM[1] = fix(LLM[1])
CODER = ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+"]
DIGITS = {"deepseek-llm": "\\p{N}+", "deepseek-coder": "\\p{N}"}


def pre_tokenizer(name):
    regs = (LLM if name == "deepseek-llm" else CODER) + [DIGITS[name]]
    pts = [{"type": "Split", "pattern": {"Regex": x}, "behavior": "Isolated", "invert": False} for x in regs]
    pts.append({"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False})
    return {"type": "Sequence", "pretokenizers": pts}


def tokenizer_json(name, pre):
    r = gguf.GGUFReader(os.path.join(VEC, f"ggml-vocab-{name}.gguf"))
    toks = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    merges = r.fields["tokenizer.ggml.merges"].contents()
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": types[i] != 3, "special": types[i] == 3} for i, t in enumerate(toks) if types[i] in (3, 4)]
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
            "pre_tokenizer": pre, "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": {t: i for i, t in enumerate(toks)}, "merges": list(merges)}}


def main():
    out = {}
    for name in ["deepseek-llm", "deepseek-coder"]:
        pre = pre_tokenizer(name)
        tok = Tokenizer.from_str(json.dumps(tokenizer_json(name, pre)))
        texts = open(os.path.join(VEC, f"ggml-vocab-{name}.gguf.inp"), encoding="utf-8").read().split("\n__ggml_vocab_test__\n")[:-1]
        outs = open(os.path.join(VEC, f"ggml-vocab-{name}.gguf.out"), encoding="utf-8").read().split("\n")[:-1]
        ok = sum(tok.encode(s, add_special_tokens=False).ids == [int(x) for x in o.split()] for s, o in zip(texts, outs))
        print(f"{name}: HF reproduces {ok}/{len(texts)} vectors")
        assert ok == len(texts)
        out[name] = pre
    with open(os.path.join(ROOT, "tests", "data", "tokenizer", "deepseek_pretokenizers.json"), "w") as f:
        json.dump(out, f, ensure_ascii=True, indent=1)


if __name__ == "__main__":
    sys.exit(main())
