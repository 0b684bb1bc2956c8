#!/usr/bin/env python3
"""Make tests/data/tokenizer/corpus.json (>= 300 strings) and, for every tokenizer llrt is
tested with, the ids and decodes HF `tokenizers` produces (tests/data/tokenizer/expected/*.json).

  pip install tokenizers   (reference made with the version recorded in each file)
  python scripts/tokenizer/make_reference.py

Per corpus string: ids = encode(s, add_special_tokens=True), plain = encode(s, False),
decode = decode(ids, skip_special_tokens=False), decode_skip = decode(ids, True). Plus
"decode_cases": deterministic random id lists (heavy on byte tokens and special tokens) with
HF's decode of each, to test ByteLevel / ByteFallback edge cases and streaming.
"""
import json
import os
import random
import sys

import tokenizers
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("LLRT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
DATA = os.path.join(ROOT, "tests", "data", "tokenizer")

TOKENIZERS = {
    "llama3": os.path.join(SHARED, "models", "llama-3.2-mini", "tokenizer.json"),
    "deepseek-r1": os.path.join(SHARED, "models", "deepseek-r1-distill-mini", "tokenizer.json"),
    "llama2": os.path.join(DATA, "llama2-from-slow", "tokenizer.json"),
    "stories260k": os.path.join(DATA, "stories260k-from-slow", "tokenizer.json"),
}


def corpus():
    c = []
    add = c.append
    # --- basics
    for s in ["", " ", "  ", "a", "A", "Hello", "Hello world", " Hello world", "Hello world ", "hello, world!",
              "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "camelCaseWordsAndSnake_case_words",
              "e.g. i.e. etc. Mr. Dr. U.S.A.", "a-b-c a.b.c a/b/c a\\b\\c", "...", "!!!???", "—–-", "«quoted» “curly” ‘single’",
              "Once upon a time, there was a little girl named Lily.", "She liked to play outside in the sun."]:
        add(s)
    # --- contractions in every case
    for base in ["s", "t", "re", "ve", "m", "ll", "d"]:
        variants = {base, base.upper(), base.capitalize(), base[:-1] + base[-1].upper() if len(base) > 1 else base}
        for v in sorted(variants):
            add(f"it'{v} x'{v}")
            add(f"'{v}")
    for s in ["don't DON'T Don'T I'm I'M you're YOU'RE we've WE'VE she'll SHE'LL he'd HE'D",
              "y'all ma'am o'clock rock'n'roll", "'", "''", "'''", "' s", "'x", "'ſ 'ſt Kelvin'K", "’s curly’S", "''s", "'s's's",
              "l'homme d'accord qu'il", "It's 'quoted' text's end'"]:
        add(s)
    # --- whitespace
    for n in [1, 2, 3, 4, 5, 8, 16, 33]:
        add(" " * n + "x")
        add("x" + " " * n)
        add("a" + " " * n + "b")
    for s in ["\t", "\t\t", "a\tb", "a\t\tb", "\ta", "a\t", " \t a", "\n", "\n\n", "\n\n\n", "a\nb", "a\n\nb", "a\r\nb",
              "a\r\n\r\nb", "\r", "\r\r\n\n", "a \n b", "a  \n  b", " \n", "\n ", "  \n\n  x", "\t\n\t\n", "a\n\tb", "line1\nline2\r\nline3\rline4",
              "\u00a0", "a\u00a0b", "a\u00a0\u00a0b", "a\u2000b\u2001c\u200ad", "a\u3000b", "a\u0085b", "a\u2028b\u2029c", "a\u202fb\u205fc",
              "a\u1680b", "\u200b zero\u200bwidth", "\x0b\x0c vertical", "end with spaces   ", "   ", "\t \t \n \r\n"]:
        add(s)
    # --- numbers
    for s in ["1", "12", "123", "1234", "12345", "123456", "1234567", "12345678901234567890", "3.14159", "1,000,000",
              "-42", "+7", "1e10", "0x1F", "2024-01-31", "12:30:45", "$100.00", "50%", "1st 2nd 3rd 4th",
              "١٢٣٤٥", "１２３４", "²³¹", "½ ¼ ¾", "Ⅻ ⅻ", "①②③", "𝟙𝟚𝟛", "٣.١٤", "a1b2c3", "x" + "9" * 50]:
        add(s)
    # --- code
    add("def f(x):\n    return x * 2\n\nprint(f(21))\n")
    add("for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}")
    add('{"key": "value", "list": [1, 2, 3], "nested": {"a": null}}')
    add("<html><body><p class=\"x\">Hi &amp; bye</p></body></html>")
    add("SELECT * FROM users WHERE id = 42;")
    add("#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }")
    add("    indented\n        more\n    back")
    add("x += 1; y -= 2; z *= 3; w /= 4; a->b; c::d; e => f")
    add("// comment\n/* block */\n# hash\n-- sql")
    add("https://example.com/path?query=1&b=2#frag")
    add("user@example.com")
    add("```python\nimport os\n```")
    # --- scripts
    for s in ["Café naïve résumé façade", "Ελληνικά γράμματα", "Русский текст, ещё", "Հայերեն", "עברית שלום",
              "العربية مرحبا", "हिन्दी नमस्ते", "বাংলা", "தமிழ்", "ภาษาไทย", "ພາສາລາວ", "བོད་ཡིག", "ქართული",
              "한국어 안녕하세요", "ひらがな カタカナ", "中文字符测试", "日本語の文章です。", "𠀀𠀁𠀂 extension B", "ግዕዝ", "ᏣᎳᎩ",
              "ᠮᠣᠩᠭᠣᠯ", "ភាសាខ្មែរ", "မြန်မာ", "සිංහල", "𝐀𝐁𝐂 𝑎𝑏𝑐", "é (e + U+0301) ñ", "Zalgo: Z̴̡a̸l̵g̶o̷",
              "Türkçe İı", "Straße STRASSE", "ﬁ ﬂ ligatures", "Ｆｕｌｌｗｉｄｔｈ", "ǅ ǈ titlecase", "Ω Å K", "ſ long s"]:
        add(s)
    # --- emoji
    for s in ["😀", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸🇫🇷", "1️⃣ #️⃣", "❤️ ♥", "☺︎ ☺️", "🤖 robot", "I ❤ NY",
              "🧑🏿‍🚀", "emoji😀inside", " 😀", "😀 ", "🙂\n🙃"]:
        add(s)
    # --- special-token strings (all tokenizers' specials appear as text in the others)
    for s in ["<|begin_of_text|>", "<|begin_of_text|>Hello", "Hi<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nWhat?<|eot_id|>",
              "<|eot_id", "|eot_id|>", "<|reserved_special_token_5|>", "<|end_of_text|> <|end_of_text|>", "<|eom_id|><|python_tag|>",
              "<s>", "</s>", "<unk>", "<s>Hello</s>", " <s> ", "a</s>b", "abc</s> def ghi", "<s><s>", "< s >", "<s", "</s",
              "<｜User｜>hi<｜Assistant｜>", "<think>\nreason\n</think>\n\nanswer", "<｜begin▁of▁sentence｜>x", "<｜end▁of▁sentence｜>",
              "<|fim_prefix|>", "<0x0A>", "<0xFF>", "▁", "▁▁a", "Ġhello", "Ċ"]:
        add(s)
    # --- edge code points (valid UTF-8 around the invalid ranges)
    for s in ["\x00", "a\x00b", "\x01\x02\x1f", "\x7f", "\u0080\u009f", "\ud7ff", "\ue000", "\uf8ff", "\ufeffBOM", "\ufffd",
              "\ufffe\uffff", "\U0010ffff", "\U000e0001", "\U0001f600\U0010fffd", "\u00ff\u0100", "\u07ff\u0800", "\uffff\U00010000"]:
        add(s)
    # --- random mixes (deterministic)
    rng = random.Random(1234)
    pool = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + list(" \t\n\r'\".,;:!?-_()[]{}<>/\\|@#$%^&*+=~`") + \
        list("éèêëàâäôöûüçñßøåæœ") + list("αβγδεζηθ") + list("абвгдежз") + list("中文日本語한국어") + list("ـعربي") + \
        ["😀", "👍🏽", "🇺🇸", "\u00a0", "\u3000", "\u200b", "\u0301", "'s", "'LL", "<s>", "</s>", "<|eot_id|>", "<think>", "  ", "\r\n", "123", "1234"]
    for k in range(110):
        n = rng.choice([1, 2, 3, 5, 8, 13, 21, 40, 80])
        add("".join(rng.choice(pool) for _ in range(n)))
    # --- long
    add(("The year 2024 had 366 days; it's a leap year. " * 40).strip())
    add("".join(rng.choice(pool) for _ in range(2000)))
    return c


def decode_cases(tok, name):
    rng = random.Random(99)
    vocab = tok.get_vocab(with_added_tokens=True)
    n = max(vocab.values()) + 1
    special = [i for t, i in vocab.items() if t.startswith("<") and t.endswith(">") and len(t) > 2 and not t.startswith("<0x")][:50]
    # byte-ish tokens: <0xXX> (SentencePiece) or single ByteLevel characters standing for bytes >= 0x80
    bytes_like = [i for t, i in vocab.items() if (len(t) == 6 and t.startswith("<0x"))]
    if not bytes_like:
        bl = {c: b for b, c in enumerate(_bytes_to_unicode())}
        bytes_like = [i for t, i in vocab.items() if len(t) == 1 and t in bl and bl[t] >= 0x80]
        bytes_like += [i for t, i in vocab.items() if len(t) == 2 and all(ch in bl and bl[ch] >= 0x80 for ch in t)][:200]
    cases = []
    for k in range(60):
        ln = rng.choice([1, 2, 3, 4, 6, 10, 20])
        ids = []
        for _ in range(ln):
            r = rng.random()
            if r < 0.5:
                ids.append(rng.choice(bytes_like))
            elif r < 0.65 and special:
                ids.append(rng.choice(special))
            else:
                ids.append(rng.randrange(n))
        cases.append({"ids": ids, "decode": tok.decode(ids, skip_special_tokens=False),
                      "decode_skip": tok.decode(ids, skip_special_tokens=True)})
    return cases


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    m = dict(zip(bs, cs))
    return [chr(m[b]) for b in range(256)]


def main():
    texts = corpus()
    assert len(texts) >= 300, len(texts)
    os.makedirs(os.path.join(DATA, "expected"), exist_ok=True)
    with open(os.path.join(DATA, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False, indent=0)
    for name, path in TOKENIZERS.items():
        tok = Tokenizer.from_file(path)
        cases = []
        for s in texts:
            ids = tok.encode(s, add_special_tokens=True).ids
            plain = tok.encode(s, add_special_tokens=False).ids
            cases.append({"ids": ids, "plain": plain, "decode": tok.decode(ids, skip_special_tokens=False),
                          "decode_skip": tok.decode(ids, skip_special_tokens=True)})
        out = {"tokenizer": name, "hf_tokenizers_version": tokenizers.__version__, "cases": cases,
               "decode_cases": decode_cases(tok, name)}
        with open(os.path.join(DATA, "expected", name + ".json"), "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        rt = sum(1 for s, c in zip(texts, cases) if c["decode_skip"] == s)
        print(f"{name}: {len(texts)} strings, round trip holds for {rt}")


if __name__ == "__main__":
    sys.exit(main())
