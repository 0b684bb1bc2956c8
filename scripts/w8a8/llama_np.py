"""Independent float64 numpy forward pass of a Llama (HF LlamaForCausalLM semantics),
with the w8a8 compressed-tensors linear emulated exactly in integers.

Math (HF transformers, eager attention), all in float64:
  RMSNorm      y = w * x / sqrt(mean(x^2) + eps)
  RoPE         rotate_half layout, inv_freq with rope_scaling none / linear / llama3
               (llama3: HF `_compute_llama3_parameters`)
  attention    causal softmax(q k^T / sqrt(head_dim)) v, GQA: query head h reads kv head
               h // (n_heads / n_kv_heads)
  MLP          down(silu(gate(x)) * up(x))
w8a8 linear (the convention llrt's I8 Linear kernels implement, see src/quant/quant.h):
  dynamic token symmetric   s = absmax(x_row)/127, q = clamp(rint(x/s), -128, 127)
  dynamic token asymmetric  lo = min(min(x),0), hi = max(max(x),0), s = (hi-lo)/255,
                            zp = clamp(rint(-128 - lo/s), -128, 127),
                            q = clamp(rint(x/s) + zp, -128, 127)
  static tensor             s = input_scale, zp = input_zero_point (0 if absent),
                            q = clamp(rint(x/s) + zp, -128, 127)
  y[n] = (sum_k q[k] w[n,k] - zp * sum_k w[n,k]) * s * w_scale[n]   (exact integer sum)
  rint = round half to even (numpy rint). An all-zero row quantizes to q = 0 (s = 0).
"""
import math

import numpy as np


def rope_inv_freq(cfg):
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (base ** (np.arange(0, hd, 2, dtype=np.int64).astype(np.float64) / hd))
    rs = cfg.get("rope_scaling")
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "linear":
            inv = inv / rs["factor"]
        elif kind == "llama3":
            factor = rs["factor"]
            lo_f, hi_f = rs["low_freq_factor"], rs["high_freq_factor"]
            old = rs["original_max_position_embeddings"]
            lo_wl, hi_wl = old / lo_f, old / hi_f
            wl = 2 * math.pi / inv
            inv_l = np.where(wl > lo_wl, inv / factor, inv)
            smooth = (old / wl - lo_f) / (hi_f - lo_f)
            smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
            medium = ~(wl < hi_wl) & ~(wl > lo_wl)
            inv = np.where(medium, smoothed, inv_l)
        elif kind not in (None, "default"):
            raise ValueError(kind)
    return inv, hd


def rmsnorm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def quantize_act(x, act):
    """x [T, K] float64 -> (q int64 [T,K], scale [T], zp [T])."""
    if act["dynamic"]:
        if act["symmetric"]:
            s = np.max(np.abs(x), axis=-1) / act.get("qmax", 127.0)
            zp = np.zeros(len(x))
            safe = np.where(s == 0, 1.0, s)
            q = np.clip(np.rint(x / safe[:, None]), -128, 127)
        else:
            lo = np.minimum(x.min(axis=-1), 0.0)
            hi = np.maximum(x.max(axis=-1), 0.0)
            s = (hi - lo) / 255.0
            safe = np.where(s == 0, 1.0, s)
            zp = np.where(s == 0, 0.0, np.clip(np.rint(-128.0 - lo / safe), -128, 127))
            q = np.clip(np.rint(x / safe[:, None]) + zp[:, None], -128, 127)
        q = np.where(s[:, None] == 0, 0, q)
    else:
        s = np.full(len(x), act["scale"])
        zp = np.full(len(x), float(act.get("zero_point", 0)))
        q = np.clip(np.rint(x / act["scale"]) + zp[:, None], -128, 127)
    return q.astype(np.int64), s, zp


def linear(x, p):
    """p: {"w": float64 [N,K]} (float layer) or {"qw": int64 [N,K], "ws": [N] or [1],
    "act": dict} (w8a8 layer)."""
    if "w" in p:
        return x @ p["w"].T
    q, s, zp = quantize_act(x, p["act"])
    acc = q @ p["qw"].T - zp[:, None] * p["qw"].sum(axis=1)[None, :]
    return acc * s[:, None] * p["ws"][None, :]


class Llama:
    def __init__(self, cfg, params):
        """params: name -> float64 array for float tensors, or for quantized linears
        the module name -> dict as accepted by `linear`."""
        self.cfg, self.p = cfg, params
        self.inv_freq, self.hd = rope_inv_freq(cfg)
        self.trace = None  # optional dict: module name -> list of (x, y) per call

    def lin(self, name, x):
        y = linear(x, self.p[name])
        if self.trace is not None:
            self.trace.setdefault(name, []).append((x.copy(), y.copy()))
        return y

    def logits(self, ids):
        cfg, p = self.cfg, self.p
        T = len(ids)
        H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], self.hd
        eps = cfg["rms_norm_eps"]
        x = p["model.embed_tokens.weight"][np.asarray(ids)]
        pos = np.arange(T, dtype=np.float64)
        fr = np.outer(pos, self.inv_freq)
        emb = np.concatenate([fr, fr], axis=-1)
        cos, sin = np.cos(emb), np.sin(emb)

        def rope(t):  # t [T, heads, hd]
            half = hd // 2
            rot = np.concatenate([-t[..., half:], t[..., :half]], axis=-1)
            return t * cos[:, None, :] + rot * sin[:, None, :]

        mask = np.triu(np.full((T, T), -np.inf), k=1)
        for L in range(cfg["num_hidden_layers"]):
            pre = f"model.layers.{L}."
            h = rmsnorm(x, p[pre + "input_layernorm.weight"], eps)
            q = rope(self.lin(pre + "self_attn.q_proj", h).reshape(T, H, hd))
            k = rope(self.lin(pre + "self_attn.k_proj", h).reshape(T, KV, hd))
            v = self.lin(pre + "self_attn.v_proj", h).reshape(T, KV, hd)
            rep = H // KV
            out = np.empty((T, H, hd))
            for hh in range(H):
                s = q[:, hh, :] @ k[:, hh // rep, :].T / math.sqrt(hd) + mask
                s = np.exp(s - s.max(axis=-1, keepdims=True))
                s /= s.sum(axis=-1, keepdims=True)
                out[:, hh, :] = s @ v[:, hh // rep, :]
            x = x + self.lin(pre + "self_attn.o_proj", out.reshape(T, H * hd))
            h = rmsnorm(x, p[pre + "post_attention_layernorm.weight"], eps)
            g = self.lin(pre + "mlp.gate_proj", h)
            u = self.lin(pre + "mlp.up_proj", h)
            x = x + self.lin(pre + "mlp.down_proj", g / (1.0 + np.exp(-g)) * u)
        x = rmsnorm(x, p["model.norm.weight"], eps)
        head = "lm_head" if "lm_head" in p else None
        if head:
            return self.lin("lm_head", x)
        return x @ p["model.embed_tokens.weight"].T

    def greedy(self, ids, n):
        ids = list(ids)
        toks, margins = [], []
        for _ in range(n):
            lg = self.logits(ids)[-1]
            o = np.argsort(-lg, kind="stable")
            toks.append(int(o[0]))
            margins.append(float(lg[o[0]] - lg[o[1]]))
            ids.append(int(o[0]))
        return toks, margins


LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def params_from_checkpoint(cfg, tensors, act_for=None):
    """Build Llama params from a checkpoint's tensors (name -> (dtype, array)).
    Quantized linears (an I8 `weight`) use their weight_scale / input_scale /
    input_zero_point; act_for(module) gives the activation scheme dict for them."""
    p = {}
    mods = {}
    for name, (dt, arr) in tensors.items():
        mod, _, leaf = name.rpartition(".")
        if leaf in ("weight", "weight_scale", "weight_zero_point", "input_scale", "input_zero_point"):
            mods.setdefault(mod, {})[leaf] = (dt, arr)
    for mod, d in mods.items():
        dt, w = d["weight"]
        if dt == "I8":
            ws = d["weight_scale"][1].astype(np.float64).reshape(-1)
            act = dict(act_for(mod))
            if not act["dynamic"]:
                act["scale"] = float(d["input_scale"][1].astype(np.float64).reshape(-1)[0])
                if "input_zero_point" in d:
                    act["zero_point"] = int(d["input_zero_point"][1].reshape(-1)[0])
            p[mod] = {"qw": w.astype(np.int64), "ws": ws, "act": act}
        elif mod.endswith(("_proj", "lm_head")):
            p[mod] = {"w": w.astype(np.float64)}
        else:
            p[mod + ".weight"] = w.astype(np.float64)
    return p
