#!/usr/bin/env python3
"""llrt tokenizer vs HF `tokenizers` encode throughput on the same ~10 MB text, single thread.

    python3 bench/tokenizer_side_by_side.py [--build build-tok] [--repeat 3]

Runs build/bench/bench_tokenizer (which generates the text and dumps it with
LLRT_BENCH_TEXT_DUMP), then HF `tokenizers` (pip) with RAYON_NUM_THREADS=1 on the same bytes:
Tokenizer.encode(text, add_special_tokens=False) on the whole text, and per ~4 KB chunk
(cut at line ends, as the C++ bench does) with plain encode calls (encode_batch not used).
Both sides are timed in CPU time (the machine may be shared). Checks both produce the same number of ids, then prints MB/s for each and the ratio llrt / HF.
A developer tool, not a test. Needs: pip install tokenizers.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("LLRT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))


def chunks(text):
    out, pos = [], 0
    while pos < len(text):
        end = min(len(text), pos + 4096)
        nl = text.find(b"\n", end)
        end = len(text) if nl < 0 else nl + 1
        out.append(text[pos:end])
        pos = end
    return out


def best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()  # CPU time, as Google Benchmark's bytes_per_second uses
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-tok"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from tokenizers import Tokenizer
    import tokenizers

    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "text.txt")
        env = dict(os.environ, LLRT_BENCH_TEXT_DUMP=dump, LLRT_SHARED=SHARED)
        exe = os.path.join(args.build, "bench", "bench_tokenizer")
        res = subprocess.run([exe, "--benchmark_format=json", "--benchmark_filter=encode"], env=env,
                             check=True, capture_output=True, text=True)
        llrt = {b["name"].split("/min_time")[0]: b for b in json.loads(res.stdout)["benchmarks"]}
        raw = open(dump, "rb").read()
    text = raw.decode("utf-8")
    mb = len(raw) / 1e6
    parts = [c.decode("utf-8") for c in chunks(raw)]
    hf_paths = {"llama3": os.path.join(SHARED, "models", "llama-3.2-mini", "tokenizer.json"),
                "llama2": os.path.join(ROOT, "tests", "data", "tokenizer", "llama2-from-slow", "tokenizer.json")}
    print(f"text: {mb:.2f} MB; HF tokenizers {tokenizers.__version__}, RAYON_NUM_THREADS=1; llrt: {exe}")
    print(f"{'case':<28}{'llrt MB/s':>12}{'HF MB/s':>12}{'llrt/HF':>10}")
    for name, path in hf_paths.items():
        tok = Tokenizer.from_file(path)
        whole = tok.encode(text, add_special_tokens=False).ids
        t_whole = best_time(lambda: tok.encode(text, add_special_tokens=False), args.repeat)
        t_chunks = best_time(lambda: [tok.encode(p, add_special_tokens=False) for p in parts], args.repeat)
        for case, t_hf in (("BM_encode/" + name, t_whole), ("BM_encode_chunks/" + name, t_chunks)):
            b = llrt[case]
            llrt_mbs = b["bytes_per_second"] / 1e6
            hf_mbs = mb / t_hf
            print(f"{case:<28}{llrt_mbs:>12.2f}{hf_mbs:>12.2f}{llrt_mbs / hf_mbs:>10.2f}")
        if llrt["BM_encode/" + name]["tokens"] != len(whole):
            print(f"WARNING: token counts differ for {name}: llrt {llrt['BM_encode/' + name]['tokens']} HF {len(whole)}")
        else:
            print(f"  {name}: both produce {len(whole)} tokens")


if __name__ == "__main__":
    sys.exit(main())
