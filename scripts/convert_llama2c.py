#!/usr/bin/env python3
"""Convert a llama2.c checkpoint (legacy "version 0" export) into a Hugging Face
Llama checkpoint folder (config.json, model.safetensors F32, tokenizer files).

Used to produce models/stories260K/ from karpathy's stories260K.bin + tok512.model
(see models/stories260K/README.md). Only numpy + safetensors are needed for the
weights; tokenizer.json is made with transformers 4.x
`LlamaTokenizerFast(vocab_file=..., from_slow=True, legacy=True)`, the way the
Hub's Llama-2 tokenizer.json files were made (needs sentencepiece + protobuf).

Legacy llama2.c layout (all little-endian):
  header: 7 x int32  dim, hidden_dim, n_layers, n_heads, n_kv_heads,
                     vocab_size (negative => separate classifier wcls), seq_len
  then float32 arrays, each stacked over layers where per-layer:
    token_embedding [vocab, dim]
    rms_att         [L, dim]
    wq              [L, n_heads*hd, dim]        (row = output feature)
    wk              [L, n_kv_heads*hd, dim]
    wv              [L, n_kv_heads*hd, dim]
    wo              [L, dim, n_heads*hd]
    rms_ffn         [L, dim]
    w1              [L, hidden, dim]   -> mlp.gate_proj
    w2              [L, dim, hidden]   -> mlp.down_proj
    w3              [L, hidden, dim]   -> mlp.up_proj
    rms_final       [dim]
    freq_cis_real   [seq_len, hd/2]
    freq_cis_imag   [seq_len, hd/2]
    wcls            [vocab, dim]       (only when vocab_size < 0)

RoPE layout. llama2.c (like Meta's original Llama code) rotates interleaved pairs
(x[2i], x[2i+1]) of each head. HF's LlamaAttention uses rotate_half, i.e. pairs
(x[i], x[i + hd/2]). HF's convert_llama_weights_to_hf.py maps Meta -> HF with
    permute(w, n_heads, dim1, dim2) =
        w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)
and llama2.c's export.py maps HF -> llama2.c with the inverse `permute_reverse`
(view(n_heads, 2, dim1 // n_heads // 2, dim2)). A checkpoint trained in llama2.c
is in the interleaved layout, so here we apply HF's `permute` to wq (n_heads,
dim1 = n_heads*hd) and to wk (n_kv_heads, dim1 = n_kv_heads*hd). Within each head
HF row j (j < hd/2) = llama2.c row 2j, HF row j + hd/2 = llama2.c row 2j+1.
"""

import argparse
import hashlib
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

HEADER_FIELDS = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len")


def read_llama2c(path):
    """Read a legacy llama2.c checkpoint. Returns (config dict, dict of float32 arrays
    in llama2.c's own layout, i.e. q/k rows still interleaved)."""
    raw = Path(path).read_bytes()
    hdr = struct.unpack("<7i", raw[:28])
    cfg = dict(zip(HEADER_FIELDS, hdr))
    cfg["shared_classifier"] = cfg["vocab_size"] > 0
    cfg["vocab_size"] = abs(cfg["vocab_size"])
    dim, hidden, L = cfg["dim"], cfg["hidden_dim"], cfg["n_layers"]
    nh, nkv, V, S = cfg["n_heads"], cfg["n_kv_heads"], cfg["vocab_size"], cfg["seq_len"]
    if dim % nh or nh % nkv:
        raise ValueError(f"bad head config: dim={dim} n_heads={nh} n_kv_heads={nkv}")
    hd = dim // nh
    cfg["head_dim"] = hd
    flat = np.frombuffer(raw, dtype="<f4", offset=28)
    shapes = [
        ("token_embedding", (V, dim)),
        ("rms_att", (L, dim)),
        ("wq", (L, nh * hd, dim)),
        ("wk", (L, nkv * hd, dim)),
        ("wv", (L, nkv * hd, dim)),
        ("wo", (L, dim, nh * hd)),
        ("rms_ffn", (L, dim)),
        ("w1", (L, hidden, dim)),
        ("w2", (L, dim, hidden)),
        ("w3", (L, hidden, dim)),
        ("rms_final", (dim,)),
        ("freq_cis_real", (S, hd // 2)),
        ("freq_cis_imag", (S, hd // 2)),
    ]
    if not cfg["shared_classifier"]:
        shapes.append(("wcls", (V, dim)))
    w, off = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        if off + n > flat.size:
            raise ValueError(f"{path}: truncated while reading {name}")
        w[name] = flat[off:off + n].reshape(shape).astype(np.float32)
        off += n
    if off != flat.size:
        raise ValueError(f"{path}: {flat.size - off} trailing floats; not a legacy llama2.c file?")
    return cfg, w


def check_rope_table(cfg, w, theta=10000.0):
    """The legacy file stores the cos/sin table it was trained with; confirm theta."""
    hd, S = cfg["head_dim"], cfg["seq_len"]
    inv = 1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.arange(S, dtype=np.float64)[:, None] * inv[None, :]
    err = max(np.abs(w["freq_cis_real"] - np.cos(ang)).max(), np.abs(w["freq_cis_imag"] - np.sin(ang)).max())
    if err > 1e-4:
        raise ValueError(f"stored RoPE table does not match theta={theta} (max err {err})")
    return float(err)


def permute_interleaved_to_hf(wt, n_heads):
    """HF convert_llama_weights_to_hf.py `permute` (Meta/llama2.c interleaved -> HF rotate_half)."""
    dim1, dim2 = wt.shape
    return wt.reshape(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(0, 2, 1, 3).reshape(dim1, dim2)


def to_hf_tensors(cfg, w):
    nh, nkv = cfg["n_heads"], cfg["n_kv_heads"]
    t = {"model.embed_tokens.weight": w["token_embedding"], "model.norm.weight": w["rms_final"]}
    for i in range(cfg["n_layers"]):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = w["rms_att"][i]
        t[p + "self_attn.q_proj.weight"] = permute_interleaved_to_hf(w["wq"][i], nh)
        t[p + "self_attn.k_proj.weight"] = permute_interleaved_to_hf(w["wk"][i], nkv)
        t[p + "self_attn.v_proj.weight"] = w["wv"][i]
        t[p + "self_attn.o_proj.weight"] = w["wo"][i]
        t[p + "post_attention_layernorm.weight"] = w["rms_ffn"][i]
        t[p + "mlp.gate_proj.weight"] = w["w1"][i]
        t[p + "mlp.up_proj.weight"] = w["w3"][i]
        t[p + "mlp.down_proj.weight"] = w["w2"][i]
    if not cfg["shared_classifier"]:
        t["lm_head.weight"] = w["wcls"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in t.items()}


def hf_config(cfg):
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": cfg["head_dim"],
        "hidden_act": "silu",
        "hidden_size": cfg["dim"],
        "initializer_range": 0.02,
        "intermediate_size": cfg["hidden_dim"],
        "max_position_embeddings": cfg["seq_len"],
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": cfg["n_heads"],
        "num_hidden_layers": cfg["n_layers"],
        "num_key_value_heads": cfg["n_kv_heads"],
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": bool(cfg["shared_classifier"]),
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": cfg["vocab_size"],
    }


def write_tokenizer(tok_model, out):
    """tokenizer.model (copy), tokenizer.json + tokenizer_config.json via transformers 4.x."""
    import transformers
    from transformers import LlamaTokenizerFast

    if int(transformers.__version__.split(".")[0]) >= 5:
        sys.exit("tokenizer.json must be made with transformers 4.x (pip install 'transformers<5')")
    shutil.copyfile(tok_model, out / "tokenizer.model")
    # add_prefix_space=True must be explicit: 4.4x+ otherwise leaves the slow tokenizer's
    # add_prefix_space at None and the converter then drops the Prepend("▁") normalizer and
    # the Strip decoder that the Hub's Llama-2 tokenizer.json files have (tok512.model has
    # add_dummy_prefix=1 like Llama 2's).
    tok = LlamaTokenizerFast(vocab_file=str(out / "tokenizer.model"), from_slow=True, legacy=True,
                             add_prefix_space=True, add_bos_token=True, add_eos_token=False)
    tok.save_pretrained(str(out))
    (out / "special_tokens_map.json").unlink(missing_ok=True)  # keep the folder minimal
    tc = json.loads((out / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    tc.pop("add_prefix_space", None)  # would force a slow->fast re-conversion on every load
    tc.update({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
               "add_eos_token": False, "legacy": True, "tokenizer_class": "LlamaTokenizer"})
    (out / "tokenizer_config.json").write_text(json.dumps(tc, indent=2, ensure_ascii=False) + "\n")
    return transformers.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="/work/shared/assets/stories260K/stories260K.bin")
    ap.add_argument("--tokenizer", default="/work/shared/assets/stories260K/tok512.model")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "models" / "stories260K"))
    args = ap.parse_args()

    from safetensors.numpy import save_file

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg, w = read_llama2c(args.bin)
    rope_err = check_rope_table(cfg, w)
    tensors = to_hf_tensors(cfg, w)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})

    tf_version = write_tokenizer(args.tokenizer, out)
    conf = hf_config(cfg)
    conf["transformers_version"] = tf_version
    (out / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    gen = {"bos_token_id": 1, "eos_token_id": 2, "transformers_version": tf_version}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")

    sha = hashlib.sha256(Path(args.bin).read_bytes()).hexdigest()
    print(f"header: {json.dumps({k: cfg[k] for k in HEADER_FIELDS + ('shared_classifier',)})}")
    print(f"source sha256 {sha}; stored RoPE table matches theta 10000 (max err {rope_err:.2e})")
    print(f"wrote {len(tensors)} tensors, {sum(v.size for v in tensors.values())} params to {out}")


if __name__ == "__main__":
    main()
