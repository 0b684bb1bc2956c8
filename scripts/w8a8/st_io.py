"""Minimal safetensors reader/writer on numpy (handles BF16, which numpy lacks).

BF16 tensors are returned as float32 arrays (exact widening) together with their
stored dtype name, so callers can round-trip them. Used only by the reference
generators in this folder; nothing at test run time depends on Python.
"""
import json
import os
import struct

import numpy as np

_NP = {"F32": np.float32, "F16": np.float16, "I8": np.int8, "I32": np.int32,
       "U8": np.uint8, "F64": np.float64, "I64": np.int64, "I16": np.int16}


def bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """Round-to-nearest-even F32 -> BF16 bit pattern (NaN not expected here)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = u + 0x7FFF + ((u >> 16) & 1)
    return (u >> 16).astype(np.uint16)


def round_to_dtype(x, dtype):
    """Value of x after storing in `dtype` ("BF16"/"F16"/"F32"), as float64."""
    x = np.asarray(x, dtype=np.float64)
    if dtype == "F32":
        return x.astype(np.float32).astype(np.float64)
    if dtype == "F16":
        return x.astype(np.float16).astype(np.float64)
    if dtype == "BF16":
        return bf16_bits_to_f32(f32_to_bf16_bits(x.astype(np.float32))).astype(np.float64)
    raise ValueError(dtype)


def read_file(path):
    """-> dict name -> (dtype_name, np.ndarray). BF16 arrays are widened to float32."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, shape, (a, b) = info["dtype"], info["shape"], info["data_offsets"]
        raw = data[a:b]
        if dt == "BF16":
            arr = bf16_bits_to_f32(np.frombuffer(raw, dtype=np.uint16)).reshape(shape)
        else:
            arr = np.frombuffer(raw, dtype=_NP[dt]).reshape(shape)
        out[name] = (dt, arr)
    return out


def read_model(model_dir):
    """All tensors of a (possibly sharded) checkpoint directory."""
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for fn in files:
        out.update(read_file(os.path.join(model_dir, fn)))
    return out


def write_file(path, tensors, metadata=None):
    """tensors: dict name -> (dtype_name, array). Arrays are converted to dtype_name."""
    header = {}
    blobs = []
    off = 0
    # Like the safetensors library: larger dtypes first, then by name, so every tensor
    # stays aligned to its element size (zero-copy use needs it).
    size = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "BF16": 2, "F16": 2, "I16": 2}
    for name in sorted(tensors, key=lambda n: (-size.get(tensors[n][0], 1), n)):
        dt, arr = tensors[name]
        arr = np.asarray(arr)
        if dt == "BF16":
            raw = f32_to_bf16_bits(arr.astype(np.float32)).tobytes()
        else:
            raw = np.ascontiguousarray(arr.astype(_NP[dt])).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = metadata or {"format": "pt"}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
