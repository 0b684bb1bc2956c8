#!/usr/bin/env python3
"""Reference outputs for models/stories260K (tests/data/stories260K/greedy.json).

Two independent forward passes must agree:
  A. Hugging Face transformers 4.x LlamaForCausalLM loaded from the converted folder
     models/stories260K (float32, eager attention, rotate_half RoPE, permuted q/k).
  B. A numpy re-implementation of llama2.c's run.c `forward()` on the ORIGINAL
     stories260K.bin weights (interleaved-pair RoPE, un-permuted q/k), float32 like run.c
     (and once more in float64 to show the float32 noise level).
Greedy decoding (argmax, first index on ties) from BOS must give identical ids in A and B,
and the text must start with "Once upon a time, there was a little girl named Lily".
Text is decoded with llama2.c's decoder (tok512.bin) and with HF's tokenizer.json.

Needs: numpy, torch, 'transformers<5', sentencepiece, protobuf (CPU only).
"""

import argparse
import json
import re
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_llama2c import read_llama2c  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path("/work/shared/assets/stories260K")
EXPECTED_PREFIX = "Once upon a time, there was a little girl named Lily"


# ----------------------------------------------------------------------------
# B. llama2.c run.c forward pass in numpy (one token at a time, KV cache)

class Llama2cNumpy:
    def __init__(self, cfg, w, dtype):
        self.c, self.dt = cfg, dtype
        self.w = {k: v.astype(dtype) for k, v in w.items()}
        L, S = cfg["n_layers"], cfg["seq_len"]
        kv_dim = cfg["n_kv_heads"] * cfg["head_dim"]
        self.key_cache = np.zeros((L, S, kv_dim), dtype)
        self.value_cache = np.zeros((L, S, kv_dim), dtype)

    def rmsnorm(self, x, weight):
        ss = np.sum(x * x, dtype=self.dt) / x.size + self.dt(1e-5)
        return weight * (x * (self.dt(1.0) / np.sqrt(ss)))

    def forward(self, token, pos):
        c, w, dt = self.c, self.w, self.dt
        dim, hs, nh = c["dim"], c["head_dim"], c["n_heads"]
        kv_dim = c["n_kv_heads"] * hs
        kv_mul = nh // c["n_kv_heads"]
        x = w["token_embedding"][token].copy()
        for l in range(c["n_layers"]):
            xb = self.rmsnorm(x, w["rms_att"][l])
            q = w["wq"][l] @ xb
            k = w["wk"][l] @ xb
            v = w["wv"][l] @ xb
            # RoPE on interleaved pairs, exactly as run.c computes it
            for i in range(0, dim, 2):
                head_dim = i % hs
                freq = dt(1.0) / np.power(dt(10000.0), dt(head_dim) / dt(hs))
                val = dt(pos) * freq
                fcr, fci = np.cos(val), np.sin(val)
                rotn = 2 if i < kv_dim else 1
                for vec in (q, k)[:rotn]:
                    v0, v1 = vec[i], vec[i + 1]
                    vec[i] = v0 * fcr - v1 * fci
                    vec[i + 1] = v0 * fci + v1 * fcr
            self.key_cache[l, pos] = k
            self.value_cache[l, pos] = v
            att_out = np.empty(dim, dt)
            for h in range(nh):
                qh = q[h * hs:(h + 1) * hs]
                kvh = (h // kv_mul) * hs
                keys = self.key_cache[l, :pos + 1, kvh:kvh + hs]
                att = (keys @ qh) / np.sqrt(dt(hs))
                att = np.exp(att - att.max())
                att = att / att.sum()
                att_out[h * hs:(h + 1) * hs] = att @ self.value_cache[l, :pos + 1, kvh:kvh + hs]
            x = x + w["wo"][l] @ att_out
            xb = self.rmsnorm(x, w["rms_ffn"][l])
            hb = w["w1"][l] @ xb
            hb2 = w["w3"][l] @ xb
            hb = hb * (dt(1.0) / (dt(1.0) + np.exp(-hb))) * hb2
            x = x + w["w2"][l] @ hb
        x = self.rmsnorm(x, w["rms_final"])
        wcls = w["token_embedding"] if c["shared_classifier"] else w["wcls"]
        return wcls @ x


def numpy_run(cfg, w, dtype, prompt, n_new):
    """Feed the prompt, then greedy n_new tokens. Returns (ids, logits at every position)."""
    m = Llama2cNumpy(cfg, w, dtype)
    ids, logits = list(prompt), []
    for pos in range(len(prompt) + n_new - 1):
        lg = m.forward(ids[pos], pos)
        logits.append(lg)
        if pos >= len(prompt) - 1:
            ids.append(int(np.argmax(lg)))
    return ids[len(prompt):], np.stack(logits).astype(np.float64)


# ----------------------------------------------------------------------------
# llama2.c tokenizer (tok512.bin) decode, as run.c's decode() + safe_printf()

def load_llama2c_vocab(path):
    raw = Path(path).read_bytes()
    off, vocab = 4, []
    while off < len(raw):
        _score, n = struct.unpack_from("<fi", raw, off)
        off += 8
        vocab.append(raw[off:off + n])
        off += n
    return vocab


def llama2c_decode(vocab, prev_token, ids):
    out = bytearray()
    for tok in ids:
        piece = vocab[tok]
        if prev_token == 1 and piece.startswith(b" "):
            piece = piece[1:]  # run.c strips the leading space after BOS
        if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
            piece = bytes([int(piece[3:5], 16)])
        out += piece
        prev_token = tok
    return out.decode("utf-8", errors="replace")


# ----------------------------------------------------------------------------
# A. Hugging Face

def hf_run(model, torch, prompt, n_new):
    """Greedy with the KV cache; also return full-sequence logits of prompt+generated
    (one non-cached forward over everything) for comparison at every position."""
    with torch.no_grad():
        out = model(torch.tensor([prompt]), use_cache=True)
        past, lg = out.past_key_values, out.logits[0, -1]
        ids, margins = [], []
        for step in range(n_new):
            top2 = torch.topk(lg, 2).values
            margins.append(float(top2[0] - top2[1]))
            nxt = int(torch.argmax(lg))
            ids.append(nxt)
            if step + 1 < n_new:
                out = model(torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
                past, lg = out.past_key_values, out.logits[0, -1]
        full = model(torch.tensor([prompt + ids[:-1]])).logits[0].double().numpy()
        gen = model.generate(torch.tensor([prompt]), max_new_tokens=n_new, min_new_tokens=n_new,
                             do_sample=False, eos_token_id=None, pad_token_id=0)[0, len(prompt):].tolist()
    assert gen == ids, "HF generate() disagrees with the manual KV-cache greedy loop"
    return ids, full, margins


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "models" / "stories260K"))
    ap.add_argument("--out", default=str(ROOT / "tests" / "data" / "stories260K" / "greedy.json"))
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.manual_seed(0)
    cfg, w = read_llama2c(ASSETS / "stories260K.bin")
    vocab = load_llama2c_vocab(ASSETS / "tok512.bin")
    model = LlamaForCausalLM.from_pretrained(args.model, dtype=torch.float32,
                                             attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(args.model)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(ASSETS / "tok512.model"))

    runs = [("", 200), ("Once upon a time", 50), ("Lily and Ben went to the park. They saw a big dog.", 50)]
    result, report = {}, []
    for text, n_new in runs:
        prompt = [1] + (tok.encode(text, add_special_tokens=False) if text else [])
        if text:
            assert prompt[1:] == sp.encode(text), "HF tokenizer.json disagrees with sentencepiece"
        hf_ids, hf_logits, margins = hf_run(model, torch, prompt, n_new)
        np_ids, np32 = numpy_run(cfg, w, np.float32, prompt, n_new)
        np_ids64, np64 = numpy_run(cfg, w, np.float64, prompt, n_new)
        if hf_ids != np_ids or hf_ids != np_ids64:
            sys.exit(f"greedy ids differ for {text!r}:\nHF  {hf_ids}\nnp32 {np_ids}\nnp64 {np_ids64}")
        d32 = float(np.abs(hf_logits - np32).max())
        d64 = float(np.abs(hf_logits - np64).max())
        d3264 = float(np.abs(np32 - np64).max())
        entry = {
            "prompt_text": text,
            "prompt_ids": prompt,
            "greedy_ids": hf_ids,
            "text_llama2c": llama2c_decode(vocab, prompt[-1], hf_ids),
            "text_hf_decode": tok.decode(hf_ids),
            "greedy_top1_margins": [round(m, 6) for m in margins],
            "first_eos_index": hf_ids.index(2) if 2 in hf_ids else None,
            "first_bos_index": hf_ids.index(1) if 1 in hf_ids else None,
            "max_abs_logits_diff_hf_vs_numpy_f32": d32,
            "max_abs_logits_diff_hf_vs_numpy_f64": d64,
        }
        last = [float(x) for x in hf_logits[len(prompt) - 1].astype(np.float32)]
        report.append((text, entry, d32, d64, d3264))
        if not text:
            if not entry["text_llama2c"].startswith(EXPECTED_PREFIX):
                sys.exit(f"unexpected greedy text: {entry['text_llama2c'][:120]!r}")
            result.update(entry)
            result["last_logits_f32_bos"] = last
        else:
            entry["last_logits_f32"] = last
            result.setdefault("prompts", []).append(entry)

    result = {"model": "models/stories260K (karpathy stories260K.bin, converted by scripts/convert_llama2c.py)",
              "generator": f"scripts/stories260K_reference.py, transformers {transformers.__version__}, "
                           f"torch {torch.__version__}, numpy {np.__version__}, CPU, float32 eager attention",
              "notes": "greedy = argmax over HF float32 logits with the KV cache; identical ids from a numpy "
                       "llama2.c run.c forward (float32 and float64) on the original .bin. "
                       "last_logits_* = HF float32 logits at the last prompt position. "
                       "greedy_top1_margins = top1-top2 logit gap at each step.",
              **result}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text_out = json.dumps(result, indent=1, ensure_ascii=False)
    # one line per list of numbers (ids, margins, logits) keeps the file short and diffable
    text_out = re.sub(r"\[\s*([-0-9.e,\s]+?)\s*\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text_out)
    assert json.loads(text_out) == result
    out.write_text(text_out + "\n")
    for text, e, d32, d64, d3264 in report:
        print(f"--- prompt {text!r} ids {e['prompt_ids']}, {len(e['greedy_ids'])} greedy tokens, "
              f"first EOS at {e['first_eos_index']}, first BOS at {e['first_bos_index']}, "
              f"min top1 margin {min(e['greedy_top1_margins']):.4f}")
        print(f"    max|HF - np32| = {d32:.3e}   max|HF - np64| = {d64:.3e}   max|np32 - np64| = {d3264:.3e}")
        print(f"    llama2c text: {e['text_llama2c']!r}")
        print(f"    HF decode   : {e['text_hf_decode']!r}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
