#!/usr/bin/env python3
"""HF transformers on the GPU, for the side-by-side with `llrt bench --device cuda`.

    python3 bench/hf_cuda_bench.py MODEL_DIR [-p 512] [-n 128] [-r 3] [--attn sdpa]

Prints one JSON line: pp (tokens/s of one forward over P random tokens, prefill as
`generate` does it, median of R after a warm-up) and tg (tokens/s of
`model.generate(max_new_tokens=N, min_new_tokens=N, do_sample=False)` from a 1-token
prompt, the prompt's forward included: N decode steps through HF's KV cache), with the
load time. A developer tool (scripts/gpu_check.sh runs it), not a test.
"""

import argparse
import json
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--attn", default="sdpa")
    a = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    t0 = time.time()
    try:
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, attn_implementation=a.attn,
                                                     device_map="cuda")
    except TypeError:  # transformers 4.x spelling
        model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.bfloat16, attn_implementation=a.attn,
                                                     device_map="cuda")
    model.eval()
    torch.cuda.synchronize()
    load_s = time.time() - t0
    V = model.config.vocab_size
    g = torch.Generator().manual_seed(42)
    prompt = torch.randint(0, V, (1, a.p), generator=g).cuda()
    out = {"model": a.model, "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "transformers": transformers.__version__, "attn": a.attn, "load_seconds": load_s}
    with torch.no_grad():
        # prefill
        pp = []
        for r in range(a.r + 1):
            torch.cuda.synchronize()
            t = time.time()
            model(prompt, use_cache=True)
            torch.cuda.synchronize()
            if r > 0:
                pp.append(a.p / (time.time() - t))
        out["pp"] = {"n": a.p, "median_tps": statistics.median(pp), "runs": pp}
        # decode
        one = prompt[:, :1]
        kw = dict(do_sample=False, pad_token_id=0, eos_token_id=None)
        model.generate(one, max_new_tokens=8, min_new_tokens=8, **kw)  # warm-up
        tg = []
        for r in range(a.r):
            torch.cuda.synchronize()
            t = time.time()
            res = model.generate(one, max_new_tokens=a.n, min_new_tokens=a.n, **kw)
            torch.cuda.synchronize()
            assert res.shape[1] == a.n + 1, res.shape
            tg.append(a.n / (time.time() - t))
        out["tg"] = {"n": a.n, "median_tps": statistics.median(tg), "runs": tg}
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
