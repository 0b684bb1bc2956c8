#!/usr/bin/env python3
"""llrt serve against llama.cpp's llama-server on the same model, in one run (issue 15).

Starts each server in turn on a loopback port with the same slots and threads, waits for
/health, drives it with bench/serve_load.py (the same prompts, clients, max_tokens and greedy
sampling), stops it, and prints one markdown table: aggregate output tokens/s, TTFT and
inter-token latency p50/p99 per (server, clients), with llrt / llama-server ratios.

    python3 bench/serve_side_by_side.py --model /work/synth/llama-3.2-1b-bf16 \\
        --gguf /work/synth/gguf/llama-3.2-1b-bf16.gguf --parallel 8 -t 2 --clients 8,32

Both servers get --parallel (llama-server -np) slots of --ctx positions each (llama-server's -c
is the total: parallel * ctx) and -t threads. Record the CPU model with every number (printed).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import cpu_name  # noqa: E402
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(url, proc, timeout=600):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    raise RuntimeError("server did not become healthy")


def run_load(url, clients, requests, max_tokens):
    out = subprocess.run([sys.executable, os.path.join(HERE, "serve_load.py"), "--url", url, "--clients", str(clients),
                          "--requests", str(requests), "--max-tokens", str(max_tokens), "--temperature", "0", "--json"],
                         capture_output=True, text=True)
    if not out.stdout.strip():
        raise RuntimeError(f"serve_load.py failed: {out.stderr[-500:]}")
    return json.loads(out.stdout)  # errors, if any, are counted in it


def serve(name, cmd, url, loads, log):
    print(f"# {name}: {' '.join(cmd)}", file=sys.stderr)
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    try:
        wait_health(url, proc)
        run_load(url, 2, 1, 8)  # warm-up (page cache, kernel choice, first-request paths)
        return [dict(run_load(url, c, r, m), server=name, clients=c) for c, r, m in loads]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="HF checkpoint folder for llrt")
    ap.add_argument("--gguf", required=True, help="the same model as GGUF for llama-server")
    ap.add_argument("--llrt", default=os.path.join(HERE, "..", "build", "tools", "llrt"))
    ap.add_argument("--llama-server", default="/work/thirdparty/llama.cpp-build/bin/llama-server")
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=1024, help="positions per slot")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--clients", default="8,32")
    ap.add_argument("--requests", type=int, default=2, help="requests per client (8 clients; 32 clients send 1)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--only", choices=["llrt", "llama"], help="run one server only")
    ap.add_argument("--log", default=os.devnull, help="servers' output")
    a = ap.parse_args()

    clients = [int(c) for c in a.clients.split(",")]
    loads = [(c, a.requests if c <= a.parallel else 1, a.max_tokens) for c in clients]
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs; threads {a.threads}; slots {a.parallel} x {a.ctx}")
    rows = []
    with open(a.log, "a") as log:
        if a.only != "llama":
            port = free_port()
            rows += serve("llrt", [a.llrt, "serve", a.model, "--port", str(port), "--parallel", str(a.parallel), "--ctx",
                                   str(a.ctx), "-t", str(a.threads), "--max-queue", "256", "--quiet"],
                          f"http://127.0.0.1:{port}", loads, log)
        if a.only != "llrt":
            port = free_port()
            rows += serve("llama-server", [a.llama_server, "-m", a.gguf, "--port", str(port), "-np", str(a.parallel), "-c",
                                           str(a.ctx * a.parallel), "-t", str(a.threads), "-tb", str(a.threads)],
                          f"http://127.0.0.1:{port}", loads, log)
    print("| server | clients | requests | tokens/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['clients']} | {r['requests']} | {r['output_tok_per_s']:.2f} | {r['ttft_ms_p50']:.0f} | "
              f"{r['ttft_ms_p99']:.0f} | {r['itl_ms_p50']:.1f} | {r['itl_ms_p99']:.1f} | {r['errors']} |")
    by = {(r["server"], r["clients"]): r for r in rows}
    for c in clients:
        l, g = by.get(("llrt", c)), by.get(("llama-server", c))
        if l and g and g["output_tok_per_s"] > 0:
            print(f"{c} clients: llrt / llama-server throughput {l['output_tok_per_s'] / g['output_tok_per_s']:.2f}x, "
                  f"TTFT p99 {l['ttft_ms_p99'] / max(g['ttft_ms_p99'], 1e-9):.2f}x, "
                  f"ITL p99 {l['itl_ms_p99'] / max(g['itl_ms_p99'], 1e-9):.2f}x (latency ratios: lower is better)")


if __name__ == "__main__":
    main()
