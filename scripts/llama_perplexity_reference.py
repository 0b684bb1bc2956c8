#!/usr/bin/env python3
"""llama-perplexity's number for models/stories260K (tests/data/stories260K/llama_perplexity.json).

The reference `llrt perplexity` is held to (issue 16, point 5): llama.cpp's own tool on the same
weights and text. Steps:
  1. models/stories260K (F32 safetensors + tokenizer.model) -> GGUF F32 with llama.cpp's
     convert_hf_to_gguf.py (--outtype f32), in a temporary folder;
  2. llama-perplexity -m that.gguf -f tests/data/stories260K/ppl_text.txt -c CTX -b CTX -t 1
     --cache-type-k f32 --cache-type-v f32 (llrt's default KV type; llama.cpp's is f16);
  3. its "[1]x,[2]y,..." running values, chunk count and "Final estimate: PPL = X +/- Y" -> JSON.

Run from the repository root (paths overridable by environment):
    LLAMA_CPP_SRC=/work/thirdparty/src/llama_cpp_python-0.3.36/vendor/llama.cpp \\
    LLAMA_CPP_BIN=/work/thirdparty/llama.cpp-build/bin \\
    PYTHON=/work/thirdparty/venv/bin/python  python3 scripts/llama_perplexity_reference.py
llama-perplexity is built from that source, CPU only: cmake --build BUILD --target llama-perplexity.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(os.environ.get("LLAMA_CPP_SRC", "/work/thirdparty/src/llama_cpp_python-0.3.36/vendor/llama.cpp"))
BIN = Path(os.environ.get("LLAMA_CPP_BIN", "/work/thirdparty/llama.cpp-build/bin"))
PY = os.environ.get("PYTHON", "/work/thirdparty/venv/bin/python")
CTX = 128
TEXT = ROOT / "tests" / "data" / "stories260K" / "ppl_text.txt"
OUT = ROOT / "tests" / "data" / "stories260K" / "llama_perplexity.json"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        gguf = Path(tmp) / "stories260K-f32.gguf"
        env = dict(os.environ, PYTHONPATH=str(SRC / "gguf-py"))
        subprocess.run([PY, str(SRC / "convert_hf_to_gguf.py"), str(ROOT / "models" / "stories260K"), "--outtype", "f32",
                        "--outfile", str(gguf)], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cmd = [str(BIN / "llama-perplexity"), "-m", str(gguf), "-f", str(TEXT), "-c", str(CTX), "-b", str(CTX), "-t", "1",
               "--cache-type-k", "f32", "--cache-type-v", "f32"]
        # llama.cpp logs from a worker thread that does not always flush before exit: a few tries.
        for _ in range(10):
            r = subprocess.run(cmd, capture_output=True, text=True)
            log = r.stdout + r.stderr
            if "Final estimate" in log:
                break
    if r.returncode != 0 or "Final estimate" not in log:
        sys.exit(log)
    running = [float(v) for v in re.findall(r"\[\d+\](\d+\.\d+),", log)]
    final = re.search(r"Final estimate: PPL = (\d+\.\d+) \+/- (\d+\.\d+)", log)
    chunks = re.search(r"calculating perplexity over (\d+) chunks", log)
    build = subprocess.run([str(BIN / "llama-perplexity"), "--version"], capture_output=True, text=True)
    out = {
        "tool": "llama-perplexity", "llama_cpp_version": (build.stdout + build.stderr).splitlines()[0],
        "command": " ".join(["llama-perplexity", "-m", "stories260K-f32.gguf", "-f", "tests/data/stories260K/ppl_text.txt"] + cmd[5:]),
        "text": "tests/data/stories260K/ppl_text.txt", "ctx": CTX, "chunks": int(chunks.group(1)),
        "running_ppl": running, "ppl": float(final.group(1)), "ppl_stderr": float(final.group(2)),
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
