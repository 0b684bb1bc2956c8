#!/usr/bin/env python3
"""llrt batched-bench vs llama.cpp's llama-batched-bench on the same model, in one run.

    python3 bench/batched_side_by_side.py /work/synth/llama-3.2-1b-bf16 \
        --gguf /work/synth/gguf/llama-3.2-1b-bf16.gguf -npp 128 -ntg 128 -npl 1,2,4,8,16 -t 2

A developer tool, not a test: it is not run by meson test or CI. What it expects of each program
is written down in bench/README.md. Steps:

 1. `llrt batched-bench MODEL_DIR -npp P -ntg N -npl L -t T -b B --kv-type K [-pps]` (markdown
    output: the machine line, the KV pool line and llama-batched-bench's table).
 2. `llama-batched-bench -m GGUF -npp P -ntg N -npl L -t T -tb T -b B -ub B -c C -ctk K -ctv K [-pps]`
    with C = max(npl) * (max(npp) + max(ntg) rounded up to 256) so that every test fits
    (llama-batched-bench skips the tests whose positions exceed -c; a -c that is not a multiple of
    256 per sequence made it crash here).
 3. Both tables are read (the rows `| PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s |
    T s | S t/s |`, from stdout and stderr), then one side-by-side table per (PP, TG, B): S_PP and
    S_TG of each engine, the ratios llrt / llama.cpp, and S_TG(B) / S_TG(1) of each (how much a
    step of B sequences gains over one: the point of batching).

The KV cache type defaults to f16 for both (llama.cpp's default; llrt's is f32): --kv-type.
The machine is shared: run on a quiet one; the load average at the start and end is printed.
"""

import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import cpu_name, run_timed  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_LLAMA = "/work/thirdparty/llama.cpp-build/bin/llama-batched-bench"
DEFAULT_LLRT = os.path.join(REPO, "build", "tools", "llrt")
COLUMNS = ["PP", "TG", "B", "N_KV", "T_PP s", "S_PP t/s", "T_TG s", "S_TG t/s", "T s", "S t/s"]


def int_list(s):
    try:
        v = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{s}' is not a comma-separated list of whole numbers")
    if not v or any(x < 0 for x in v):
        raise argparse.ArgumentTypeError(f"'{s}': give one or more whole numbers >= 0")
    return v


def parse_table(text):
    """The rows of a llama-batched-bench table (either engine's) as dicts of COLUMNS; other lines ignored."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(COLUMNS):
            continue
        try:
            vals = [float(c) for c in cells]
        except ValueError:
            continue  # the header or the separator
        r = dict(zip(COLUMNS, vals))
        for k in ("PP", "TG", "B", "N_KV"):
            r[k] = int(r[k])
        rows.append(r)
    return rows


def fmt(x, f="{:.2f}"):
    return "-" if x is None else f.format(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", help="the safetensors checkpoint folder (llrt)")
    ap.add_argument("--gguf", help="the same model as GGUF (llama.cpp)")
    ap.add_argument("-npp", type=int_list, default=[128], help="prompt tokens per sequence (list)")
    ap.add_argument("-ntg", type=int_list, default=[128], help="generated tokens per sequence (list)")
    ap.add_argument("-npl", type=int_list, default=[1, 2, 4, 8, 16], help="sequences per step (list)")
    ap.add_argument("-t", type=int, default=2, help="threads (both engines)")
    ap.add_argument("-b", type=int, default=2048, help="rows per forward pass (llrt -b; llama -b and -ub)")
    ap.add_argument("-pps", action="store_true", help="one prompt shared by the B sequences (both engines)")
    ap.add_argument("--kv-type", default="f16", choices=["f32", "f16", "bf16"], help="KV cache type (both; default f16)")
    ap.add_argument("--llrt", default=DEFAULT_LLRT, help=f"the llrt binary (default {DEFAULT_LLRT})")
    ap.add_argument("--llama-bin", default=DEFAULT_LLAMA, help=f"llama-batched-bench (default {DEFAULT_LLAMA})")
    ap.add_argument("--llrt-extra", default="", help="more llrt batched-bench options, e.g. '--no-mmap'")
    ap.add_argument("--llama-extra", default="", help="more llama-batched-bench options, e.g. '-fa on'")
    ap.add_argument("--skip-llama", action="store_true")
    ap.add_argument("--skip-llrt", action="store_true")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per engine run")
    ap.add_argument("--json-out", help="also write the report (both tables, the ratios) as JSON here")
    args = ap.parse_args()

    model_dir = os.path.abspath(args.model_dir)
    if not os.path.isdir(model_dir):
        raise SystemExit(f"{model_dir} is not a directory")
    if not args.skip_llama:
        if not args.gguf or not os.path.exists(args.gguf):
            raise SystemExit("give the GGUF of the same model with --gguf (or --skip-llama)")
        if not os.path.exists(args.llama_bin):
            raise SystemExit(f"llama-batched-bench not found at {args.llama_bin} (see bench/README.md; or --llama-bin)")
    if not args.skip_llrt and not os.path.exists(args.llrt):
        raise SystemExit(f"llrt not found at {args.llrt} (build it, or --llrt PATH, or --skip-llrt)")
    lists = lambda v: ",".join(str(x) for x in v)
    name = os.path.basename(model_dir.rstrip("/"))
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name(), "nproc": os.cpu_count(),
              "loadavg_start": os.getloadavg(), "model_dir": model_dir, "gguf": args.gguf, "npp": args.npp, "ntg": args.ntg,
              "npl": args.npl, "t": args.t, "b": args.b, "pps": args.pps, "kv_type": args.kv_type}
    print(f"# batched side by side: {name}  ({report['date']}, {report['cpu']}, {os.cpu_count()} CPUs, {args.t} threads, "
          f"KV {args.kv_type}, loadavg {' '.join(f'{x:.2f}' for x in report['loadavg_start'])})")
    if report["loadavg_start"][0] > 0.75 * (os.cpu_count() or 1):
        print(f"WARNING: load average {report['loadavg_start'][0]:.1f} on {os.cpu_count()} CPUs: other processes "
              "compete for the cores and memory; these numbers understate both engines")

    engines = {}
    if not args.skip_llrt:
        cmd = [args.llrt, "batched-bench", model_dir, "-npp", lists(args.npp), "-ntg", lists(args.ntg), "-npl", lists(args.npl),
               "-t", str(args.t), "-b", str(args.b), "--kv-type", args.kv_type] + (["-pps"] if args.pps else []) + \
            shlex.split(args.llrt_extra)
        out, err, rc = run_timed(cmd, args.timeout)
        rows = parse_table(out + "\n" + err)
        if not rows:
            raise SystemExit(f"llrt batched-bench gave no table (exit {rc}):\n{(out + err)[-3000:]}")
        info = [ln for ln in out.splitlines() if ln.startswith(("llrt batched-bench:", "n_ctx", "KV pool", "peak KV"))]
        engines["llrt"] = {"cmd": shlex.join(cmd), "rows": rows, "info": info, "rc": rc}
    if not args.skip_llama:
        n_kv = max(args.npl) * (-(-(max(args.npp) + max(args.ntg)) // 256) * 256)  # llama.cpp pads per sequence to 256
        cmd = [args.llama_bin, "-m", args.gguf, "-npp", lists(args.npp), "-ntg", lists(args.ntg), "-npl", lists(args.npl),
               "-t", str(args.t), "-tb", str(args.t), "-b", str(args.b), "-ub", str(args.b), "-c", str(n_kv),
               "-ctk", args.kv_type, "-ctv", args.kv_type] + (["-pps"] if args.pps else []) + shlex.split(args.llama_extra)
        out, err, rc = run_timed(cmd, args.timeout)
        rows = parse_table(out + "\n" + err)
        if not rows:
            hint = ("\n(a crash: ggml's AMX repacked q8_0 matmul crashes here; retry with --llama-extra=-nr, "
                    "no weight repacking)") if rc is not None and rc < 0 else ""
            raise SystemExit(f"llama-batched-bench gave no table (exit {rc}):\n{(out + err)[-3000:]}{hint}")
        info = [ln.strip() for ln in (out + "\n" + err).splitlines() if "n_kv_max" in ln]
        engines["llama.cpp"] = {"cmd": shlex.join(cmd), "rows": rows, "info": info, "rc": rc}
    report["engines"] = engines

    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---:|" * len(COLUMNS)
    for eng, e in engines.items():
        print(f"\n## {eng}\n`{e['cmd']}`\n")
        for ln in e["info"]:
            print(ln + "  ")
        print()
        print(head)
        for r in e["rows"]:
            print("| " + " | ".join(str(r[c]) if isinstance(r[c], int) else f"{r[c]:.3f}" if c.startswith("T")
                                    else f"{r[c]:.2f}" for c in COLUMNS) + " |")

    # Side by side: one row per (PP, TG, B) either engine measured.
    by = {eng: {(r["PP"], r["TG"], r["B"]): r for r in e["rows"]} for eng, e in engines.items()}
    keys = sorted(set().union(*[set(v) for v in by.values()])) if by else []
    L, C = by.get("llrt", {}), by.get("llama.cpp", {})

    def get(d, k, col):
        r = d.get(k)
        return r[col] if r else None

    def ratio(a, b):
        return a / b if (a is not None and b) else None

    def scale(d, k):  # S_TG(B) / S_TG(1) at the same PP, TG
        return ratio(get(d, k, "S_TG t/s"), get(d, (k[0], k[1], 1), "S_TG t/s"))

    print(f"\n## side by side ({report['cpu']}, {args.t} threads, KV {args.kv_type})")
    print("| PP | TG | B | llrt S_PP | llama S_PP | S_PP llrt/llama | llrt S_TG | llama S_TG | S_TG llrt/llama | "
          "llrt S_TG(B)/S_TG(1) | llama S_TG(B)/S_TG(1) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    side = []
    for k in keys:
        row = {"pp": k[0], "tg": k[1], "b": k[2],
               "llrt_s_pp": get(L, k, "S_PP t/s"), "llama_s_pp": get(C, k, "S_PP t/s"),
               "llrt_s_tg": get(L, k, "S_TG t/s"), "llama_s_tg": get(C, k, "S_TG t/s")}
        row["pp_ratio"] = ratio(row["llrt_s_pp"], row["llama_s_pp"])
        row["tg_ratio"] = ratio(row["llrt_s_tg"], row["llama_s_tg"])
        row["llrt_tg_scale"], row["llama_tg_scale"] = scale(L, k), scale(C, k)
        side.append(row)
        print(f"| {k[0]} | {k[1]} | {k[2]} | {fmt(row['llrt_s_pp'])} | {fmt(row['llama_s_pp'])} | {fmt(row['pp_ratio'], '{:.2f}x')} | "
              f"{fmt(row['llrt_s_tg'])} | {fmt(row['llama_s_tg'])} | {fmt(row['tg_ratio'], '{:.2f}x')} | "
              f"{fmt(row['llrt_tg_scale'], '{:.2f}x')} | {fmt(row['llama_tg_scale'], '{:.2f}x')} |")
    report["side_by_side"] = side
    report["loadavg_end"] = os.getloadavg()
    print(f"\nS = tokens/s (S_PP: prompt tokens of all B sequences / prefill time; S_TG: B x TG / decode time); "
          f"loadavg at the end {' '.join(f'{x:.2f}' for x in report['loadavg_end'])}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
