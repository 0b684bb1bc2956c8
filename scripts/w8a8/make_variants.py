#!/usr/bin/env python3
"""Make the small w8a8 compressed-tensors test checkpoints in tests/data/w8a8/ and
their references (independent float64 numpy emulation, scripts/w8a8/llama_np.py).

Source: ../shared/models/llama-3.1-mini-sharded (BF16, Llama 3.1 architecture). Each
variant shrinks it (2 layers, hidden 128, 4 heads / 2 KV heads of 32, intermediate 256,
vocab 256: slices of the real tensors, real tensor names and config layout) and then
quantizes it the way compressed-tensors does:
  weights   symmetric int8, scale = absmax / 127.5 (channel: per output row, tensor: one),
            rounded to the stored scale dtype, codes = clamp(rint(w / scale), -128, 127)
            (so -128 codes occur, as in real compressed-tensors checkpoints)
  static activations (calibrated on prompts that are not the test prompts, running the
            float64 model): symmetric scale = absmax / 127.5; asymmetric
            (min,max widened to include 0) scale = (max - min) / 255,
            zero point = clamp(rint(-128 - min / scale), -128, 127)  [stored I8 [1]]
The references then run the stored int8 checkpoint through llama_np (the activation
arithmetic documented there and in src/quant/quant.h).

Usage: python3 scripts/w8a8/make_variants.py [--shared ../shared] [--out tests/data/w8a8]
Needs numpy (and safetensors only for reading the shared reference logits, optional).
Also prints the check of llama_np against ../shared/references (float32 and w8a8) and
the absmax/127 vs /127.5 activation-scale convention gap on the shared w8a8 model.
"""
import argparse
import copy
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_np  # noqa: E402
import st_io  # noqa: E402

HID, INTER, HEADS, KVH, HD, LAYERS, VOCAB = 128, 256, 4, 2, 32, 2, 256
PROMPTS = [[1, 17, 200, 41, 9, 100, 22, 5], [1, 250, 13, 77, 130, 64, 3, 199, 88, 12, 240]]
CALIB = [[1, 90, 91, 92, 14, 15, 180, 181, 30, 31, 201, 7, 8], [1, 55, 56, 57, 210, 211, 60, 61]]
N_GREEDY = 16
DYN_SYM = {"dynamic": True, "symmetric": True}
DYN_ASYM = {"dynamic": True, "symmetric": False}


# ---------------------------------------------------------------- shrinking
def shrink(cfg, t):
    """Slice the sharded mini model down to the variant size (float64 params)."""
    out = {}
    for name, (dt, a) in t.items():
        a = a.astype(np.float64)
        if name.startswith("model.layers."):
            L = int(name.split(".")[2])
            if L >= LAYERS:
                continue
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            a = a[:VOCAB, :HID]
        elif name.endswith("norm.weight"):
            a = a[:HID]
        elif "q_proj" in name:
            a = a[:HEADS * HD, :HID]
        elif "k_proj" in name or "v_proj" in name:
            a = a[:KVH * HD, :HID]
        elif "o_proj" in name:
            a = a[:HID, :HEADS * HD]
        elif "gate_proj" in name or "up_proj" in name:
            a = a[:INTER, :HID]
        elif "down_proj" in name:
            a = a[:HID, :INTER]
        out[name] = np.ascontiguousarray(st_io.round_to_dtype(a, "BF16"))
    c = copy.deepcopy(cfg)
    c.update(hidden_size=HID, intermediate_size=INTER, num_attention_heads=HEADS,
             num_key_value_heads=KVH, head_dim=HD, num_hidden_layers=LAYERS, vocab_size=VOCAB)
    return c, out


def float_params(t):
    p = {}
    for name, a in t.items():
        mod = name[:-len(".weight")]
        if mod.endswith(("_proj", "lm_head")):
            p[mod] = {"w": a}
        else:
            p[name] = a
    return p


def calibrate(cfg, t):
    """Per-linear input (min, max) over the calibration prompts, float64 float model."""
    m = llama_np.Llama(cfg, float_params(t))
    m.trace = {}
    for ids in CALIB:
        m.logits(ids)
    return {mod: (min(x.min() for x, _ in calls), max(x.max() for x, _ in calls))
            for mod, calls in m.trace.items()}


# ---------------------------------------------------------------- quantizing
def quant_weight(w, strategy, scale_dtype):
    amax = np.abs(w).max(axis=1, keepdims=True) if strategy == "channel" else np.abs(w).max().reshape(1)
    s = st_io.round_to_dtype(amax / 127.5, scale_dtype)
    q = np.clip(np.rint(w / (s if strategy == "channel" else s[0])), -128, 127).astype(np.int8)
    return q, s


def static_act(lo, hi, symmetric):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if symmetric:
        return max(-lo, hi) / 127.5, None
    s = (hi - lo) / 255.0
    return s, int(np.clip(np.rint(-128.0 - lo / s), -128, 127))


def args_json(num_bits=8, typ="int", symmetric=True, strategy="channel", dynamic=False,
              observer="minmax"):
    return {"actorder": None, "block_structure": None, "dynamic": dynamic, "group_size": None,
            "num_bits": num_bits, "observer": observer, "observer_kwargs": {},
            "strategy": strategy, "symmetric": symmetric, "type": typ}


def scheme_json(targets, w_strategy, act):
    a = (args_json(symmetric=act["symmetric"], strategy="token", dynamic=True, observer=None)
         if act["dynamic"] else
         args_json(symmetric=act["symmetric"], strategy="tensor", dynamic=False))
    return {"input_activations": a, "output_activations": None, "targets": targets,
            "weights": args_json(strategy=w_strategy)}


# Each variant: groups = list of (targets, weight strategy, activation scheme, match fn);
# the match fn says which linears the group covers (the config's targets, evaluated
# here independently with Python `re`, compressed-tensors precedence: name > class).
import re  # noqa: E402


def lin_modules():
    mods = [f"model.layers.{L}.{n}" for L in range(LAYERS) for n in llama_np.LINEARS]
    return mods + ["lm_head"]


def resolve(mod, groups, ignore):
    """compressed-tensors semantics: ignored if any ignore entry matches (exact or
    re.match); else the group whose target matches, exact name > regex > class name."""
    def m(target):
        return re.match(target[3:], mod) is not None if target.startswith("re:") else target == mod
    if any(m(i) or i == "Linear" for i in ignore):
        return None
    best = None
    for gi, g in enumerate(groups):
        for tgt in g["targets"]:
            rank = 0 if (not tgt.startswith("re:") and tgt == mod) else 1 if (tgt.startswith("re:") and m(tgt)) else 2 if tgt == "Linear" else None
            if rank is not None and (best is None or rank < best[0] or (rank == best[0] and gi > best[1])):
                best = (rank, gi)
    return None if best is None else groups[best[1]]


VARIANTS = {
    "tensor-dynamic": dict(
        note="weights strategy tensor (one BF16 scale [1] per Linear), activations dynamic per-token symmetric",
        groups=[dict(targets=["Linear"], w="tensor", act=DYN_SYM)], ignore=["lm_head"],
        scale_dtype="BF16", format="int-quantized"),
    "static-tensor": dict(
        note="weights per-channel, activations static per-tensor symmetric (input_scale BF16 [1])",
        groups=[dict(targets=["Linear"], w="channel", act={"dynamic": False, "symmetric": True})],
        ignore=["lm_head"], scale_dtype="BF16", format="int-quantized"),
    "static-asym": dict(
        note="weights strategy tensor, activations static per-tensor asymmetric (input_scale BF16 [1] + input_zero_point I8 [1])",
        groups=[dict(targets=["Linear"], w="tensor", act={"dynamic": False, "symmetric": False})],
        ignore=["lm_head"], scale_dtype="BF16", format="int-quantized"),
    "dynamic-asym": dict(
        note="weights per-channel, activations dynamic per-token asymmetric (zero point per token)",
        groups=[dict(targets=["Linear"], w="channel", act=DYN_ASYM)], ignore=["lm_head"],
        scale_dtype="BF16", format="int-quantized"),
    "ignore-regex": dict(
        note="two config groups (regex target beats class target), format naive-quantized, "
             "ignore list with re: entries: every down_proj and layer 1 o_proj stay BF16",
        groups=[dict(targets=["Linear"], w="channel", act=DYN_SYM),
                dict(targets=["re:.*mlp\\.(gate|up)_proj$"], w="tensor", act=DYN_ASYM)],
        ignore=["lm_head", "re:.*down_proj", "model.layers.1.self_attn.o_proj"],
        scale_dtype="BF16", format="naive-quantized"),
    "f32-scales": dict(
        note="weights per-channel with F32 weight_scale, activations dynamic per-token symmetric",
        groups=[dict(targets=["Linear"], w="channel", act=DYN_SYM)], ignore=["lm_head"],
        scale_dtype="F32", format="int-quantized"),
    "f16-scales": dict(
        note="weights per-channel with F16 weight_scale and an all-zero I8 weight_zero_point, "
             "activations dynamic per-token symmetric; format given per group",
        groups=[dict(targets=["Linear"], w="channel", act=DYN_SYM, format="int-quantized")],
        ignore=["lm_head"], scale_dtype="F16", format="int-quantized", zero_points=True),
}


def make_variant(name, spec, cfg, t, calib, out_dir):
    groups = spec["groups"]
    tensors = {}
    for n, a in t.items():
        mod = n[:-len(".weight")]
        g = resolve(mod, groups, spec["ignore"]) if mod.endswith(("_proj", "lm_head")) else None
        if g is None:
            tensors[n] = ("BF16", a)
            continue
        q, s = quant_weight(a, g["w"], spec["scale_dtype"])
        tensors[n] = ("I8", q)
        tensors[mod + ".weight_scale"] = (spec["scale_dtype"], s)
        if spec.get("zero_points"):
            tensors[mod + ".weight_zero_point"] = ("I8", np.zeros(s.shape, np.int8))
        if not g["act"]["dynamic"]:
            sc, zp = static_act(*calib[mod], g["act"]["symmetric"])
            tensors[mod + ".input_scale"] = ("BF16", np.array([sc]))
            if zp is not None:
                tensors[mod + ".input_zero_point"] = ("I8", np.array([zp]))
    qc = {"config_groups": {}, "format": spec["format"], "global_compression_ratio": None,
          "ignore": spec["ignore"], "kv_cache_scheme": None, "quant_method": "compressed-tensors",
          "quantization_status": "compressed", "version": "0.9.1"}
    for gi, g in enumerate(groups):
        sj = scheme_json(g["targets"], g["w"], g["act"])
        if "format" in g:
            sj["format"] = g["format"]
        qc["config_groups"][f"group_{gi}"] = sj
    c = copy.deepcopy(cfg)
    c["quantization_config"] = qc
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=2)
    json.dump({"bos_token_id": 1, "eos_token_id": [2, 3], "do_sample": False},
              open(os.path.join(d, "generation_config.json"), "w"), indent=2)
    st_io.write_file(os.path.join(d, "model.safetensors"), tensors)

    # ---- reference: reload what was written, run the int8 emulation
    stored = st_io.read_file(os.path.join(d, "model.safetensors"))
    act_of = {m: resolve(m, groups, spec["ignore"]) for m in lin_modules()}
    m = llama_np.Llama(c, llama_np.params_from_checkpoint(c, stored, lambda mod: act_of[mod]["act"]))
    prompts, logits = [], {}
    for i, ids in enumerate(PROMPTS):
        m.trace = {} if i == 0 else None
        lg = m.logits(ids)
        trace = m.trace
        m.trace = None
        top = np.argsort(-lg, axis=-1, kind="stable")[:, :8]
        greedy, margins = m.greedy(ids, N_GREEDY)
        prompts.append({"prompt": ids, "top_ids": top.tolist(),
                        "top_logits": np.take_along_axis(lg, top, -1).tolist(),
                        "greedy": greedy, "greedy_top1_margins": margins})
        logits[f"f32.p{i}.last_logits"] = ("F32", lg[-1])
        if i == 0:
            # Kernel-level checks: inputs (F32) and float64 outputs of a few quantized
            # linears, the outputs recomputed from the F32-rounded inputs.
            for mod in ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.gate_proj",
                        "model.layers.1.mlp.down_proj", "model.layers.0.mlp.down_proj"]:
                if "qw" not in m.p[mod]:
                    continue
                x = np.concatenate([xx for xx, _ in trace[mod]]).astype(np.float32)
                y = llama_np.linear(x.astype(np.float64), m.p[mod])
                logits[f"lin.{mod}.x"] = ("F32", x)
                logits[f"lin.{mod}.y"] = ("F32", y)
    ref = {"model": name, "note": spec["note"] + ". References: " + llama_np.__doc__.split("\n")[0],
           "float32": {"dtype": "float64 numpy emulation (scripts/w8a8/llama_np.py)", "prompts": prompts}}
    rdir = os.path.join(out_dir, "references")
    os.makedirs(rdir, exist_ok=True)
    json.dump(ref, open(os.path.join(rdir, name + ".json"), "w"))
    st_io.write_file(os.path.join(rdir, name + ".safetensors"), logits)
    sizes = os.path.getsize(os.path.join(d, "model.safetensors"))
    print(f"{name}: {sizes/1024:.0f} KiB, greedy p0 {prompts[0]['greedy'][:8]} "
          f"min margin {min(prompts[0]['greedy_top1_margins']):.3f}")


def write_convention_reference(shared, out_dir):
    """The shared w8a8 model under compressed-tensors' fake-quant convention
    (activation scale absmax / 127.5 instead of vLLM's / 127): last-position logits of
    the shared reference prompts, so a test can show its tolerance covers both."""
    name = "llama-3.1-mini-w8a8"
    cfg = json.load(open(f"{shared}/models/{name}/config.json"))
    t = st_io.read_model(f"{shared}/models/{name}")
    ref = json.load(open(f"{shared}/references/{name}.json"))
    m = llama_np.Llama(cfg, llama_np.params_from_checkpoint(cfg, t, lambda mod: dict(DYN_SYM, qmax=127.5)))
    out, prompts = {}, []
    for i, pr in enumerate(ref["float32"]["prompts"]):
        lg = m.logits(pr["prompt"])
        out[f"ct127_5.p{i}.last_logits"] = ("F32", lg[-1])
        greedy, margins = m.greedy(pr["prompt"], 8)
        prompts.append({"prompt": pr["prompt"], "greedy": greedy, "greedy_top1_margins": margins})
    rdir = os.path.join(out_dir, "references")
    os.makedirs(rdir, exist_ok=True)
    st_io.write_file(os.path.join(rdir, name + "-ct127.5.safetensors"), out)
    json.dump({"model": name, "note": "float64 emulation with activation scale absmax/127.5 (compressed-tensors "
               "fake-quant) instead of /127 (vLLM, the shared reference); everything else identical",
               "prompts": prompts}, open(os.path.join(rdir, name + "-ct127.5.json"), "w"))


def check_against_shared(shared):
    """llama_np vs the shared HF references (float32 model and w8a8 model)."""
    try:
        from safetensors.numpy import load_file
    except ImportError:
        print("safetensors not installed: skipping the check against ../shared/references")
        return
    for name, act in [("llama-3.1-mini-sharded", None), ("llama-3.1-mini-w8a8", DYN_SYM)]:
        cfg = json.load(open(f"{shared}/models/{name}/config.json"))
        t = st_io.read_model(f"{shared}/models/{name}")
        ref = json.load(open(f"{shared}/references/{name}.json"))
        refl = load_file(f"{shared}/references/{name}.safetensors")
        for qmax in ([127.0] if act is None else [127.0, 127.5]):
            a = None if act is None else dict(act, qmax=qmax)
            m = llama_np.Llama(cfg, llama_np.params_from_checkpoint(cfg, t, lambda mod: a))
            for i, pr in enumerate(ref["float32"]["prompts"]):
                lg = m.logits(pr["prompt"])[-1]
                r = refl[f"f32.p{i}.last_logits"].astype(np.float64)
                top1 = int(np.argmax(lg)) == int(np.argmax(r))
                print(f"check {name} p{i}{'' if act is None else f' act absmax/{qmax}'}: "
                      f"max|d|/max|ref| = {np.abs(lg - r).max() / np.abs(r).max():.2e}, top1 same: {top1}")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap.add_argument("--shared", default=os.path.join(repo, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(repo, "tests", "data", "w8a8"))
    ap.add_argument("--no-check", action="store_true")
    a = ap.parse_args()
    if not a.no_check:
        check_against_shared(a.shared)
    write_convention_reference(a.shared, a.out)
    cfg0 = json.load(open(os.path.join(a.shared, "models", "llama-3.1-mini-sharded", "config.json")))
    t0 = st_io.read_model(os.path.join(a.shared, "models", "llama-3.1-mini-sharded"))
    cfg, t = shrink(cfg0, t0)
    calib = calibrate(cfg, t)
    for name, spec in VARIANTS.items():
        make_variant(name, spec, cfg, t, calib, a.out)


if __name__ == "__main__":
    main()
