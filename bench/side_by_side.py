#!/usr/bin/env python3
"""llrt vs llama.cpp on the same model, in one run: bandwidth probe, llama-bench, llrt bench.

    python3 bench/side_by_side.py /work/synth/llama-3.2-1b-bf16 \
        --gguf /work/synth/gguf/llama-3.2-1b-bf16.gguf

A developer tool, not a test: it is not run by meson test or CI. What it expects of each program
(command lines, output formats) is written down in bench/README.md. Steps:

 1. memory read bandwidth probe (a small C program, compiled on first use with the system gcc
    into ~/.cache/llrt-bench/: 2 threads, 1 GiB, best of N sums over the buffer, on huge pages
    (MADV_HUGEPAGE) and on 4 KiB pages). It runs before the engines and again after them,
    because this machine is shared and noisy; `llrt bench --json` also reports its own probe.
    The limit used for "tg % of limit" is the best of all probes of the run.
 2. llama.cpp's llama-bench on the GGUF: -p P -n N -t T -r R -lm mmap,none -o jsonl (older
    llama-bench: --mmap 1,0); llama.cpp's best is taken per test (pp, tg) over the load modes.
 3. `llrt bench MODEL_DIR -p P -n N -r R -t T --json` once per --llrt-variant (default: `--mmap`
    and `--no-mmap`). Tolerant reader: a JSON object, or failing that a markdown table with
    `test` and `t/s` columns (`pp512 | 145.2 ± 1.1` or `pp | 512 ...`).
 4. Both tables, then the ratios llrt / llama.cpp-best for pp and tg, and tg as % of the
    bandwidth limit (limit tokens/s = bandwidth / bytes streamed per decoded token).
"""

import argparse
import datetime
import glob
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import cpu_name, run_timed  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_LLAMA_BENCH = "/work/thirdparty/llama.cpp-build/bin/llama-bench"
DEFAULT_LLRT = os.path.join(REPO, "build", "tools", "llrt")

# ----------------------------------------------------------------------------------------------
# Bandwidth probe
# ----------------------------------------------------------------------------------------------

PROBE_C = r"""
// STREAM-like read probe: sum over a buffer (read only, as decode streams weights), best of
// `reps` passes, `threads` OpenMP threads each reading a contiguous share. read_gbs uses wall
// time; read_cpu_gbs uses the slowest thread's CPU time (what the memory delivers while the
// threads are actually scheduled: differs from read_gbs when other processes take the cores). Plus a triad
// a[i] = b[i] + s*c[i] (STREAM counting: 3 x 4 bytes per element). Prints one JSON line.
#define _GNU_SOURCE
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
typedef float v16 __attribute__((vector_size(64)));
static double clk(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static double now(void) { return clk(CLOCK_MONOTONIC); }
static float *alloc(size_t bytes, int thp) {
  size_t align = 2u << 20; bytes = (bytes + align - 1) / align * align;
  float *p = mmap(NULL, bytes + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); exit(1); }
  p = (float *)(((unsigned long)p + align - 1) & ~(align - 1));
  madvise(p, bytes, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  return p;
}
int main(int argc, char **argv) {
  size_t mb = argc > 1 ? strtoul(argv[1], 0, 10) : 1024;
  int threads = argc > 2 ? atoi(argv[2]) : 2, reps = argc > 3 ? atoi(argv[3]) : 10, thp = argc > 4 ? atoi(argv[4]) : 1;
  omp_set_num_threads(threads);
  size_t n = (mb << 20) / sizeof(float); n -= n % (16 * 4 * threads);
  float *a = alloc(n * 4, thp);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) a[i] = (float)(i & 1023) * 1e-3f;
  double best = 1e30, sum_t = 0, best_cpu = 1e30; float sink = 0;
  for (int r = 0; r < reps; ++r) {
    double t0 = now(), cpu = 0; float tot = 0;
#pragma omp parallel reduction(+ : tot) reduction(max : cpu)
    {
      double c0 = clk(CLOCK_THREAD_CPUTIME_ID);
      int t = omp_get_thread_num(), nt = omp_get_num_threads();
      size_t per = n / nt, lo = per * t, hi = t == nt - 1 ? n : lo + per;
      v16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
      for (size_t i = lo; i + 64 <= hi; i += 64) {
        const v16 *x = (const v16 *)(a + i);  // 64-byte aligned: buffer 2 MiB aligned, shares multiples of 256 B
        s0 += x[0]; s1 += x[1]; s2 += x[2]; s3 += x[3];
      }
      v16 s = s0 + s1 + s2 + s3; float acc = 0;
      for (int k = 0; k < 16; ++k) acc += s[k];
      tot += acc;
      cpu = clk(CLOCK_THREAD_CPUTIME_ID) - c0;
    }
    double dt = now() - t0; sink += tot; sum_t += dt; if (dt < best) best = dt; if (cpu < best_cpu) best_cpu = cpu;
  }
  float *b = alloc(n / 2 * 4, thp), *c = alloc(n / 2 * 4, thp); size_t m = n / 2;
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < m; ++i) { b[i] = 1.0f; c[i] = 2.0f; }
  double best_tr = 1e30;
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < m; ++i) a[i] = b[i] + 3.0f * c[i];
    double dt = now() - t0; if (dt < best_tr) best_tr = dt;
  }
  printf("{\"threads\": %d, \"mbytes\": %zu, \"thp\": %d, \"read_gbs\": %.2f, \"read_mean_gbs\": %.2f, \"read_cpu_gbs\": %.2f, \"triad_gbs\": %.2f, \"sink\": %g}\n",
         threads, mb, thp, n * 4.0 / best / 1e9, n * 4.0 * reps / sum_t / 1e9, n * 4.0 / best_cpu / 1e9, m * 12.0 / best_tr / 1e9, (double)sink + a[m / 3]);
  return 0;
}
"""


def probe_binary():
    cache = os.path.join(os.path.expanduser("~"), ".cache", "llrt-bench")
    os.makedirs(cache, exist_ok=True)
    src = os.path.join(cache, "bw_probe.c")
    exe = os.path.join(cache, "bw_probe")
    if not (os.path.exists(src) and open(src).read() == PROBE_C and os.path.exists(exe)):
        with open(src, "w") as f:
            f.write(PROBE_C)
        cmd = ["gcc", "-O3", "-march=native", "-fopenmp", "-o", exe, src]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("compiling the bandwidth probe failed:\n" + r.stderr)
    return exe


def run_probe(threads, reps, mbytes):
    exe = probe_binary()
    res = {}
    for thp in (1, 0):
        r = subprocess.run([exe, str(mbytes), str(threads), str(reps), str(thp)], capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            raise SystemExit("bandwidth probe failed:\n" + r.stderr)
        res["thp" if thp else "4k"] = json.loads(r.stdout)
    return res


# ----------------------------------------------------------------------------------------------
# Model facts (from the safetensors headers)
# ----------------------------------------------------------------------------------------------

def st_headers(model_dir):
    out = {}
    files = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
    if not files:
        raise SystemExit(f"no *.safetensors in {model_dir}")
    for p in files:
        with open(p, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            h = json.loads(f.read(n))
        h.pop("__metadata__", None)
        for k, v in h.items():
            out[k] = (v["dtype"], v["shape"], v["data_offsets"][1] - v["data_offsets"][0])
    return out


def hf_streamed_bytes(model_dir):
    """Bytes a decode step reads: all tensors, but of an untied embedding table only one row."""
    h = st_headers(model_dir)
    total = sum(v[2] for v in h.values())
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if not cfg.get("tie_word_embeddings", False) and "model.embed_tokens.weight" in h:
        e = h["model.embed_tokens.weight"][2]
        total -= e - e // cfg["vocab_size"]
    dtypes = {}
    for dt, _, nb in h.values():
        dtypes[dt] = dtypes.get(dt, 0) + nb
    return total, sum(v[2] for v in h.values()), cfg, dtypes


def gguf_tensor_sizes(path):
    """{name: (bytes, dims)} of a GGUF file, read with the standard library only.

    GGUF v2/v3: magic, version u32, n_tensors u64, n_kv u64, the key/values (skipped), then per
    tensor: name, n_dims u32, dims u64[n_dims], ggml type u32, offset u64; data starts at the next
    multiple of general.alignment (default 32). A tensor's size is the distance to the next
    tensor's offset (the last one: to the end of the file), so padding (< alignment) is counted.
    """
    fixed = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    with open(path, "rb") as f:
        def rd(fmt):
            return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))

        def rstr():
            (n,) = rd("Q")
            return f.read(n).decode("utf-8", "replace")

        def skip(t):
            if t in fixed:
                f.seek(fixed[t], 1)
            elif t == 8:
                rstr()
            elif t == 9:
                (et,), (cnt,) = rd("I"), rd("Q")
                if et in fixed:
                    f.seek(fixed[et] * cnt, 1)
                else:
                    for _ in range(cnt):
                        skip(et)
            else:
                raise ValueError(f"unknown GGUF value type {t}")

        magic = f.read(4)
        if magic != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        (version,) = rd("I")
        n_tensors, n_kv = rd("QQ")
        align = 32
        for _ in range(n_kv):
            key = rstr()
            (t,) = rd("I")
            if key == "general.alignment" and t == 4:
                (align,) = rd("I")
            else:
                skip(t)
        infos = []
        for _ in range(n_tensors):
            name = rstr()
            (nd,) = rd("I")
            dims = list(rd("Q" * nd))
            (_t,), (off,) = rd("I"), rd("Q")
            infos.append((off, name, dims))
        data_start = (f.tell() + align - 1) // align * align
        end = os.path.getsize(path) - data_start
    infos.sort()
    out = {}
    for i, (off, name, dims) in enumerate(infos):
        nxt = infos[i + 1][0] if i + 1 < len(infos) else end
        out[name] = (nxt - off, dims)
    return out


def gguf_streamed_bytes(path):
    """Bytes a llama.cpp decode step reads: all tensors, of an untied token_embd only one row."""
    try:
        sizes = gguf_tensor_sizes(path)
    except (OSError, ValueError, struct.error) as e:
        print(f"  (could not read the GGUF tensor table: {e}; using llama-bench's model_size)")
        return None
    total = sum(v[0] for v in sizes.values())
    if "output.weight" in sizes and "token_embd.weight" in sizes:
        e, dims = sizes["token_embd.weight"]
        total -= e - e // max(dims[-1], 1)
    return total


# ----------------------------------------------------------------------------------------------
# llama-bench
# ----------------------------------------------------------------------------------------------

def llama_load_arg(exe, modes):
    """llama-bench's option for the load modes: `-lm mmap,none` (newer, --load-mode) or `--mmap 1,0`."""
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    if "--load-mode" in r.stdout + r.stderr:
        return ["-lm", ",".join(modes)]
    return ["--mmap", ",".join("1" if m == "mmap" else "0" for m in modes)]


def run_llama_bench(exe, gguf_path, p, n, t, reps, modes, extra, timeout):
    """Runs llama-bench with `-o jsonl` (one JSON object per finished test), so that the tests that
    finished before a timeout are kept."""
    cmd = [exe, "-m", gguf_path, "-p", str(p), "-n", str(n), "-t", str(t), "-r", str(reps)] + \
        llama_load_arg(exe, modes) + extra + ["-o", "jsonl"]
    out, err, rc = run_timed(cmd, timeout, "tests")
    rows = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
        elif line.startswith("["):  # -o json from an older llama-bench
            rows.extend(json.loads(out))
            break
    if rc not in (0, None) or not rows:
        raise SystemExit(f"llama-bench failed ({rc}):\n{err[-3000:]}")
    return cmd, rows


def row_load(x):
    if x.get("load_mode"):
        return str(x["load_mode"])
    return "mmap" if x.get("use_mmap") else "none"


def llama_rows_table(rows):
    lines = ["| model | size | params | threads | load | test | t/s |", "|---|---|---|---|---|---|---|"]
    for x in rows:
        test = f"pp{x['n_prompt']}" if x.get("n_gen", 0) == 0 else f"tg{x['n_gen']}"
        lines.append(f"| {x.get('model_type', '?')} | {x.get('model_size', 0) / 2**30:.2f} GiB | "
                     f"{x.get('model_n_params', 0) / 1e9:.2f} B | {x.get('n_threads')} | {row_load(x)} | "
                     f"{test} | {x['avg_ts']:.2f} ± {x.get('stddev_ts', 0):.2f} |")
    return "\n".join(lines)


def llama_best(rows):
    best = {}
    for x in rows:
        kind = "pp" if x.get("n_gen", 0) == 0 else "tg"
        if kind not in best or x["avg_ts"] > best[kind]["mean_tps"]:
            best[kind] = {"mean_tps": x["avg_ts"], "sd": x.get("stddev_ts", 0.0), "load": row_load(x),
                          "n": x["n_prompt"] if kind == "pp" else x["n_gen"]}
    return best


# ----------------------------------------------------------------------------------------------
# llrt bench (tolerant reader)
# ----------------------------------------------------------------------------------------------

def _num(d, *keys):
    for k in keys:
        if isinstance(d, dict) and d.get(k) is not None:
            return float(d[k])
    return None


def parse_llrt_output(text):
    """Returns {"pp": {...}, "tg": {...}, "bandwidth_gbs": x, ...} from JSON or a markdown table."""
    obj = None
    try:
        obj = json.loads(text)
    except ValueError:
        i, j = text.find("{"), text.rfind("}")
        if i >= 0 and j > i:
            try:
                obj = json.loads(text[i:j + 1])
            except ValueError:
                obj = None
    res = {"raw_json": obj}
    if isinstance(obj, dict):
        for kind in ("pp", "tg"):
            d = obj.get(kind)
            if isinstance(d, dict):
                res[kind] = {"n": int(_num(d, "n", "n_tokens") or 0),
                             "mean_tps": _num(d, "mean_tps", "avg_ts", "tps", "mean"),
                             "sd": _num(d, "sd", "stddev_ts", "stddev", "std") or 0.0}
        res["bandwidth_gbs"] = _num(obj, "bandwidth_gbs", "bw_gbs")
        res["streamed_bytes_per_token"] = _num(obj, "streamed_bytes_per_token", "bytes_per_token")
        for k in ("load", "threads", "load_seconds", "peak_rss_bytes", "dtypes", "cpu", "tg_limit_tps"):
            if k in obj:
                res[k] = obj[k]
        if "pp" in res or "tg" in res:
            return res
    # markdown: a header row with `test` and `t/s`, data rows like `| ... | pp512 | 145.23 ± 1.20 |`
    header = None
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.strip().startswith("|") else None
        if not cells:
            continue
        low = [c.lower() for c in cells]
        if "test" in low and "t/s" in low:
            header = low
            continue
        if header is None or set(line.replace("|", "").strip()) <= set("-: "):
            continue
        if len(cells) != len(header):
            continue
        test, ts = cells[header.index("test")], cells[header.index("t/s")]
        m = re.match(r"^(pp|tg)\s*(\d+)$", test.replace(" ", ""))
        v = re.match(r"^([\d.]+)\s*(?:±|\+/-|\+-)?\s*([\d.]+)?", ts)
        if m and v:
            res[m.group(1)] = {"n": int(m.group(2)), "mean_tps": float(v.group(1)),
                               "sd": float(v.group(2)) if v.group(2) else 0.0}
    bw = re.search(r"bandwidth[^:]*:\s*([\d.]+)\s*GB/s", text)
    if bw:
        res["bandwidth_gbs"] = float(bw.group(1))
    return res


def run_llrt(exe, model_dir, p, n, t, reps, extra, timeout):
    cmd = [exe, "bench", model_dir, "-p", str(p), "-n", str(n), "-r", str(reps), "-t", str(t), "--json", "--bandwidth"] + extra
    print(f"$ {shlex.join(cmd)}   [loadavg {os.getloadavg()[0]:.2f}]", flush=True)
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  llrt bench timed out after {timeout} s", flush=True)
        return cmd, None
    if r.returncode != 0:
        print(f"  llrt bench failed ({r.returncode}):\n{r.stderr[-3000:]}{r.stdout[-2000:]}", flush=True)
        return cmd, None
    res = parse_llrt_output(r.stdout)
    if "pp" not in res and "tg" not in res:
        print("  could not read pp/tg from llrt's output:\n" + r.stdout[-2000:], flush=True)
        return cmd, None
    print(f"  ({time.time() - t0:.0f} s)", flush=True)
    return cmd, res


# ----------------------------------------------------------------------------------------------

def fmt(x, f="{:.2f}"):
    return "-" if x is None else f.format(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("model_dir", help="HF checkpoint dir (e.g. from tools/synth_model.py)")
    ap.add_argument("--gguf", help="the same model as GGUF for llama.cpp (default: look in MODEL_DIR/../gguf/"
                                   "<name>.gguf and MODEL_DIR/*.gguf)")
    ap.add_argument("--llama-bench", default=os.environ.get("LLAMA_BENCH", DEFAULT_LLAMA_BENCH))
    ap.add_argument("--llrt", default=os.environ.get("LLRT_BIN", DEFAULT_LLRT))
    ap.add_argument("-p", type=int, default=512, help="prompt tokens (pp test)")
    ap.add_argument("-n", type=int, default=128, help="generated tokens (tg test)")
    ap.add_argument("-t", type=int, default=2, help="threads (both engines and the probe)")
    ap.add_argument("-r", type=int, default=3, help="repetitions per test (both engines)")
    ap.add_argument("--llama-load", default="mmap,none",
                    help="llama-bench load modes to try (default mmap,none = --mmap 1 and 0: its best is taken)")
    ap.add_argument("--llama-extra", default="", help="extra llama-bench arguments (one string)")
    ap.add_argument("--llrt-variant", action="append", default=None,
                    help="extra llrt bench args, one run per occurrence (default: '--mmap' and '--no-mmap'); "
                         "'' runs llrt with its defaults")
    ap.add_argument("--skip-llama", action="store_true")
    ap.add_argument("--skip-llrt", action="store_true")
    ap.add_argument("--probe-mb", type=int, default=1024)
    ap.add_argument("--probe-reps", type=int, default=10)
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per engine run")
    ap.add_argument("--json-out", help="write every number of the run to this file")
    ap.add_argument("--busy-core", type=int, default=None,
                    help="after the quiet runs, run both engines again with a busy loop pinned to this core "
                         "(taskset) and report the share of its quiet speed each keeps (issue 11: shared machines)")
    args = ap.parse_args()

    model_dir = os.path.abspath(args.model_dir)
    hf_stream, hf_total, cfg, dtypes = hf_streamed_bytes(model_dir)
    name = os.path.basename(model_dir.rstrip("/"))
    gguf_path = args.gguf
    if not gguf_path and not args.skip_llama:
        cands = [os.path.join(os.path.dirname(model_dir), "gguf", name + ".gguf")] + \
            sorted(glob.glob(os.path.join(model_dir, "*.gguf")))
        gguf_path = next((c for c in cands if os.path.exists(c)), None)
        if not gguf_path:
            raise SystemExit("no GGUF found; pass --gguf (make one with llama.cpp's convert_hf_to_gguf.py, "
                             "see bench/README.md) or --skip-llama")
    if not args.skip_llama and not os.path.exists(args.llama_bench):
        raise SystemExit(f"llama-bench not found at {args.llama_bench} (see bench/README.md; or --llama-bench)")
    if not args.skip_llrt and not os.path.exists(args.llrt):
        raise SystemExit(f"llrt not found at {args.llrt} (build it, or --llrt PATH, or --skip-llrt)")
    variants = args.llrt_variant if args.llrt_variant is not None else ["--mmap", "--no-mmap"]

    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name(),
              "nproc": os.cpu_count(), "loadavg_start": os.getloadavg(), "model_dir": model_dir,
              "gguf": gguf_path, "p": args.p, "n": args.n, "t": args.t, "r": args.r,
              "hf_tensor_bytes": hf_total, "hf_streamed_bytes_per_token": hf_stream, "hf_dtypes": dtypes}
    print(f"# side by side: {name}  ({report['date']}, {report['cpu']}, {args.t} threads, "
          f"loadavg {' '.join(f'{x:.2f}' for x in report['loadavg_start'])})")
    print(f"HF checkpoint: {hf_total / 1e9:.3f} GB of tensors ({', '.join(sorted(dtypes))}); "
          f"decode streams {hf_stream / 1e9:.3f} GB/token")

    if report["loadavg_start"][0] > 0.75 * (os.cpu_count() or 1):
        print(f"WARNING: load average {report['loadavg_start'][0]:.1f} on {os.cpu_count()} CPUs: other processes "
              "compete for the cores and memory; these numbers understate both engines")
    probes = [("start", run_probe(args.t, args.probe_reps, args.probe_mb))]
    print("bandwidth probe (start): " + ", ".join(
        f"{k}: read {v['read_gbs']:.1f} GB/s, triad {v['triad_gbs']:.1f}" for k, v in probes[0][1].items()), flush=True)

    llama = None
    if not args.skip_llama:
        g_stream = gguf_streamed_bytes(gguf_path)
        modes = [x.strip() for x in args.llama_load.split(",") if x.strip()]
        cmd, rows = run_llama_bench(args.llama_bench, gguf_path, args.p, args.n, args.t, args.r, modes,
                                    shlex.split(args.llama_extra), args.timeout)
        llama = {"cmd": shlex.join(cmd), "rows": rows, "best": llama_best(rows),
                 "streamed_bytes_per_token": g_stream if g_stream else (rows[0].get("model_size") if rows else None)}
        report["llama_cpp"] = llama

    llrt_runs = []
    if not args.skip_llrt:
        for v in variants:
            cmd, res = run_llrt(args.llrt, model_dir, args.p, args.n, args.t, args.r, shlex.split(v), args.timeout)
            llrt_runs.append({"variant": v, "cmd": shlex.join(cmd), "result": res})
        report["llrt"] = llrt_runs

    busy = None
    if args.busy_core is not None:
        # Another process takes one core: a pinned spin loop, for the whole of both engines' runs.
        spin = subprocess.Popen(["taskset", "-c", str(args.busy_core), "sh", "-c", "while :; do :; done"])
        try:
            busy = {"core": args.busy_core}
            if not args.skip_llama:
                cmd, rows = run_llama_bench(args.llama_bench, gguf_path, args.p, args.n, args.t, args.r, modes,
                                            shlex.split(args.llama_extra), args.timeout)
                busy["llama_cpp"] = {"cmd": shlex.join(cmd), "rows": rows, "best": llama_best(rows)}
            if not args.skip_llrt:
                busy["llrt"] = []
                for v in variants:
                    cmd, res = run_llrt(args.llrt, model_dir, args.p, args.n, args.t, args.r, shlex.split(v), args.timeout)
                    busy["llrt"].append({"variant": v, "cmd": shlex.join(cmd), "result": res})
        finally:
            spin.kill()
            spin.wait()
        report["busy"] = busy

    probes.append(("end", run_probe(args.t, args.probe_reps, args.probe_mb)))
    report["probes"] = {k: v for k, v in probes}
    all_bw = [(f"probe {k} {pk}", pv["read_gbs"]) for k, v in probes for pk, pv in v.items()]
    for run in llrt_runs:
        if run["result"] and run["result"].get("bandwidth_gbs"):
            all_bw.append((f"llrt {run['variant'] or 'default'}", run["result"]["bandwidth_gbs"]))
    bw_src, bw = max(all_bw, key=lambda x: x[1])
    report["bandwidth_limit_gbs"] = bw
    report["bandwidth_limit_source"] = bw_src

    # ------------------------------------------------------------------ output
    print()
    print(f"## memory read bandwidth, {args.t} threads (GB/s)")
    print("| probe | read THP | read 4K | read THP per CPU-second | triad THP | triad 4K |\n|---|---|---|---|---|---|")
    for k, v in probes:
        print(f"| {k} | {v['thp']['read_gbs']:.1f} | {v['4k']['read_gbs']:.1f} | {v['thp'].get('read_cpu_gbs', 0):.1f} | "
              f"{v['thp']['triad_gbs']:.1f} | {v['4k']['triad_gbs']:.1f} |")
    for run in llrt_runs:
        if run["result"] and run["result"].get("bandwidth_gbs"):
            print(f"| llrt bench {run['variant'] or 'default'} | {run['result']['bandwidth_gbs']:.1f} | | | | |")
    print(f"limit used: {bw:.1f} GB/s ({bw_src})")

    if llama:
        print(f"\n## llama.cpp (llama-bench)\n`{llama['cmd']}`\n")
        print(llama_rows_table(llama["rows"]))
    for run in llrt_runs:
        print(f"\n## llrt bench {run['variant'] or '(defaults)'}\n`{run['cmd']}`\n")
        res = run["result"]
        if not res:
            print("(failed, see above)")
            continue
        print("| model | load | threads | test | t/s |\n|---|---|---|---|---|")
        for kind in ("pp", "tg"):
            if kind in res:
                x = res[kind]
                print(f"| {name} | {res.get('load', run['variant'] or '?')} | {res.get('threads', args.t)} | "
                      f"{kind}{x['n']} | {fmt(x['mean_tps'])} ± {fmt(x['sd'])} |")
        if res.get("peak_rss_bytes"):
            print(f"peak RSS {res['peak_rss_bytes'] / 2**30:.2f} GiB")

    print("\n## summary")
    print("| engine | config | pp t/s | tg t/s | tg % of limit | pp vs llama.cpp | tg vs llama.cpp |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    lb = llama["best"] if llama else {}
    if llama:
        lstream = llama["streamed_bytes_per_token"]
        lim = bw * 1e9 / lstream if lstream else None
        pp, tg = lb.get("pp"), lb.get("tg")
        pct = 100 * tg["mean_tps"] / lim if (tg and lim) else None
        cfgs = f"best of {args.llama_load} (pp: {pp['load'] if pp else '-'}, tg: {tg['load'] if tg else '-'})"
        print(f"| llama.cpp | {cfgs} | {fmt(pp and pp['mean_tps'])} | {fmt(tg and tg['mean_tps'])} | "
              f"{fmt(pct, '{:.1f}%')} | 1.00 | 1.00 |")
        summary.append({"engine": "llama.cpp", "pp": pp, "tg": tg, "tg_pct_of_limit": pct,
                        "streamed_bytes_per_token": lstream})
    for run in llrt_runs:
        res = run["result"]
        if not res:
            continue
        stream = res.get("streamed_bytes_per_token") or hf_stream
        lim = bw * 1e9 / stream
        pp, tg = res.get("pp"), res.get("tg")
        pct = 100 * tg["mean_tps"] / lim if tg and tg.get("mean_tps") else None
        rpp = pp["mean_tps"] / lb["pp"]["mean_tps"] if (pp and pp.get("mean_tps") and "pp" in lb) else None
        rtg = tg["mean_tps"] / lb["tg"]["mean_tps"] if (tg and tg.get("mean_tps") and "tg" in lb) else None
        print(f"| llrt | {run['variant'] or 'defaults'} | {fmt(pp and pp['mean_tps'])} | {fmt(tg and tg['mean_tps'])} | "
              f"{fmt(pct, '{:.1f}%')} | {fmt(rpp, '{:.2f}x')} | {fmt(rtg, '{:.2f}x')} |")
        summary.append({"engine": "llrt", "variant": run["variant"], "pp": pp, "tg": tg, "tg_pct_of_limit": pct,
                        "pp_ratio": rpp, "tg_ratio": rtg, "streamed_bytes_per_token": stream})
    print(f"\ntg limit = {bw:.1f} GB/s / bytes streamed per token "
          f"(llrt: {hf_stream / 1e9:.3f} GB from the safetensors headers"
          + (f"; llama.cpp: {llama['streamed_bytes_per_token'] / 1e9:.3f} GB from the GGUF" if llama and
             llama["streamed_bytes_per_token"] else "") + "). Ratios are against llama.cpp's best per test.")
    report["summary"] = summary
    if busy:
        print(f"\n## with a busy loop pinned to core {busy['core']}: share of the quiet speed kept")
        print("| engine | config | pp t/s busy | tg t/s busy | pp kept | tg kept |\n|---|---|---|---|---|---|")
        def kept(a, b):
            return a / b if (a and b) else None
        if "llama_cpp" in busy and llama:
            bb = busy["llama_cpp"]["best"]
            bpp, btg = bb.get("pp"), bb.get("tg")
            print(f"| llama.cpp | best | {fmt(bpp and bpp['mean_tps'])} | {fmt(btg and btg['mean_tps'])} | "
                  f"{fmt(kept(bpp and bpp['mean_tps'], lb.get('pp') and lb['pp']['mean_tps']), '{:.0%}')} | "
                  f"{fmt(kept(btg and btg['mean_tps'], lb.get('tg') and lb['tg']['mean_tps']), '{:.0%}')} |")
        for run, quiet in zip(busy.get("llrt", []), llrt_runs):
            res, q = run["result"] or {}, quiet["result"] or {}
            bpp, btg = res.get("pp"), res.get("tg")
            print(f"| llrt | {run['variant'] or 'defaults'} | {fmt(bpp and bpp['mean_tps'])} | {fmt(btg and btg['mean_tps'])} | "
                  f"{fmt(kept(bpp and bpp['mean_tps'], q.get('pp') and q['pp']['mean_tps']), '{:.0%}')} | "
                  f"{fmt(kept(btg and btg['mean_tps'], q.get('tg') and q['tg']['mean_tps']), '{:.0%}')} |")
    report["loadavg_end"] = os.getloadavg()
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json_out}")


if __name__ == "__main__":
    sys.exit(main())
