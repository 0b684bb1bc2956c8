#!/usr/bin/env python3
"""Component variants: small tokenizer.json files exercising what the real checkpoints don't
(added-token lstrip/rstrip/single_word/normalized, every Split behavior and invert, ByteLevel
use_regex + add_prefix_space, Metaspace prepend schemes and split, regex Replace normalizers,
Strip/Metaspace decoders, no decoder, TemplateProcessing with EOS), each with HF's ids and
decodes on a corpus subset. Written to tests/data/tokenizer/variants/<name>.json as
{"tokenizer": <the tokenizer.json given to HF>, "texts": [...], "cases": [...], "decode_cases": [...]}.

  pip install tokenizers
  python scripts/tokenizer/make_variants.py   (after make_reference.py: reads corpus.json)

A case HF itself cannot handle (it panics in Strip when start and stop overlap) is recorded as
{"hf_error": true} and skipped by the test.
"""
import copy
import json
import os
import random
import sys

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "tokenizer")
LLAMA3 = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
          "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")

EXTRA = ["x <L> y", "x<L>y", "x  \t<L>y", "<L><L>  <L>", "x<R>   y", "<R> <R>  z", "a \t<LR>\t b", "<LR>", "  <LR>  ",
         "zqx", "azqx", "zqx!", " zqx ", "_zqx", "ézqx", "zqx_", "1zqx", "zqx\u0301", "zqx-zqx", "(zqx)", "norm normal ab abc abcd", "<|bos|><|eos|>",
         "hi <|eos|> there", "<norm> x<norm>y", "▁hi hi", "a1b22c333 ABC def,,GHI..jkl", "  leading and trailing  ",
         "UPPER lower MiXeD", "e.g., 1.5, 2.75", "<s> x </s>", "x  y   z    w"]


def train_byte_level(texts):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3), "isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=700, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts * 3, trainer)
    j = json.loads(tok.to_str())
    for content in ["zqx", "<L>", "<R>", "<LR>", "norm", "ab", "abc"]:  # added tokens must be new
        assert content not in j["model"]["vocab"], content
    return j


def added(content, id_, special=False, lstrip=False, rstrip=False, single_word=False, normalized=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": normalized, "special": special}


def template(bos, bos_id, eos=None, eos_id=None):
    single = [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]
    special = {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}
    if eos:
        single.append({"SpecialToken": {"id": eos, "type_id": 0}})
        special[eos] = {"id": eos, "ids": [eos_id], "tokens": [eos]}
    return {"type": "TemplateProcessing", "single": single, "pair": single, "special_tokens": special}


def variants(bl, spm):
    v = {}
    n = len(bl["model"]["vocab"])
    j = copy.deepcopy(bl)
    j["added_tokens"] = [added("<|bos|>", n, special=True), added("<|eos|>", n + 1, special=True),
                         added("<L>", n + 2, lstrip=True), added("<R>", n + 3, rstrip=True),
                         added("<LR>", n + 4, special=True, lstrip=True, rstrip=True),
                         added("zqx", n + 5, single_word=True), added("norm", n + 6, normalized=True),
                         added("ab", n + 7), added("abc", n + 8)]
    j["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        template("<|bos|>", n, "<|eos|>", n + 1)]}
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    v["bl-llama3-added"] = j

    j = copy.deepcopy(bl)
    j["model"]["ignore_merges"] = False
    j["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    v["bl-gpt2"] = j

    j = copy.deepcopy(bl)
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\d"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"Regex": "[aeiou]"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed", "invert": False},
        {"type": "Split", "pattern": {"Regex": "[,.]"}, "behavior": "Contiguous", "invert": False},
        {"type": "Split", "pattern": {"Regex": "\\p{Lu}+"}, "behavior": "Isolated", "invert": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    j["decoder"] = None  # HF joins the tokens with spaces
    v["bl-splits-nodecoder"] = j

    base = copy.deepcopy(spm)
    base["normalizer"] = None
    for name, pre, dec in [
        ("spm-metaspace-first", {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}, None),
        ("spm-metaspace-always-split", {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
         {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}),
        ("spm-metaspace-never", {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": True},
         {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": True}),
        ("spm-metaspace-legacy-json", {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True},
         {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True})]:
        j = copy.deepcopy(base)
        j["pre_tokenizer"] = pre
        if dec is not None:
            j["decoder"] = dec
        v[name] = j

    j = copy.deepcopy(spm)
    j["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
        {"type": "Prepend", "prepend": "▁"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    m = len(spm["model"]["vocab"])
    j["added_tokens"] = j["added_tokens"] + [added("<norm>", m, normalized=True), added("hi", m + 1, normalized=True, special=True)]
    j["post_processor"] = template("<s>", 1, "</s>", 2)
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 2, "stop": 1}]}
    v["spm-normalizers-strip"] = j

    j = copy.deepcopy(spm)
    j["model"]["byte_fallback"] = False  # unknown characters become (fused) <unk>
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        {"type": "Fuse"}, {"type": "Replace", "pattern": {"String": "  "}, "content": "_"}]}
    v["spm-unk-nofallback"] = j
    j = copy.deepcopy(j)
    j["model"]["fuse_unk"] = False
    v["spm-unk-nofuse"] = j
    return v


def main():
    corpus = json.load(open(os.path.join(DATA, "corpus.json"), encoding="utf-8"))
    texts = corpus[::2] + EXTRA
    bl = train_byte_level(corpus)
    spm = json.load(open(os.path.join(DATA, "stories260k-from-slow", "tokenizer.json"), encoding="utf-8"))
    out_dir = os.path.join(DATA, "variants")
    os.makedirs(out_dir, exist_ok=True)
    for name, j in variants(bl, spm).items():
        tok = Tokenizer.from_str(json.dumps(j))
        cases = []
        for s in texts:
            try:
                ids = tok.encode(s).ids
                cases.append({"ids": ids, "plain": tok.encode(s, add_special_tokens=False).ids,
                              "decode": tok.decode(ids, skip_special_tokens=False),
                              "decode_skip": tok.decode(ids, skip_special_tokens=True)})
            except BaseException:  # pyo3 PanicException derives from BaseException
                cases.append({"hf_error": True})
        rng = random.Random(7)
        vs = tok.get_vocab_size(with_added_tokens=True)
        dcases = []
        for _ in range(40):
            ids = [rng.randrange(vs) if rng.random() < 0.6 else rng.randrange(min(vs, 300)) for _ in range(rng.choice([1, 3, 8, 16]))]
            try:
                dcases.append({"ids": ids, "decode": tok.decode(ids, skip_special_tokens=False),
                               "decode_skip": tok.decode(ids, skip_special_tokens=True)})
            except BaseException:
                pass
        with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as f:
            json.dump({"hf_tokenizers_version": tokenizers.__version__, "tokenizer": j, "texts": texts, "cases": cases,
                       "decode_cases": dcases}, f, ensure_ascii=False, separators=(",", ":"))
        print(name, len(texts), "texts,", sum(1 for c in cases if "hf_error" in c), "HF errors")


if __name__ == "__main__":
    sys.exit(main())
