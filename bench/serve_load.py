#!/usr/bin/env python3
"""Load generator for OpenAI-compatible chat servers (llrt serve, llama-server, vLLM).

N concurrent clients each send R streaming chat requests back to back; reported: aggregate
output tokens/s (completion tokens of every request over the wall time), time to first token
(request sent -> first content delta) and inter-token latency (between consecutive content
deltas) as p50 / p99, and the failures. Standard library only.

    python3 bench/serve_load.py --url http://127.0.0.1:8080 --clients 8 --requests 4 --max-tokens 128
    python3 bench/serve_load.py --url http://127.0.0.1:8081 --clients 32 --json   # e.g. llama-server -np 8

Token counts come from the usage chunk (stream_options.include_usage) when the server sends one,
else from the number of content deltas. Prompts: --prompts FILE (one per line) or built-in ones;
every client walks the list from its own offset, so the mix is the same for every server.
"""
import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

PROMPTS = [
    "Explain in a few sentences why the sky is blue.",
    "Write a short story about a robot who learns to paint.",
    "List five uses of a paperclip and explain each briefly.",
    "What are the main differences between TCP and UDP?",
    "Describe the water cycle to a ten-year-old.",
    "Give three tips for writing clear technical documentation.",
    "Summarize the plot of a heist movie you invent on the spot.",
    "How does a hash table work? Keep it short.",
]


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def one_request(url, headers, body, timeout):
    """Sends one streaming chat request; returns (ttft_s, [itl_s], completion_tokens)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        t0 = time.perf_counter()
        conn.request("POST", (u.path.rstrip("/") or "") + "/v1/chat/completions", body=json.dumps(body), headers=headers)
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:200]!r}")
        ttft, last, itl, deltas, usage_tokens = None, None, [], 0, None
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("usage"):
                usage_tokens = chunk["usage"].get("completion_tokens")
            for ch in chunk.get("choices", []):
                delta = ch.get("delta", {})
                if delta.get("content") or delta.get("reasoning_content"):
                    now = time.perf_counter()
                    if ttft is None:
                        ttft = now - t0
                    else:
                        itl.append(now - last)
                    last = now
                    deltas += 1
        return ttft, itl, usage_tokens if usage_tokens is not None else deltas
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients")
    ap.add_argument("--requests", type=int, default=4, help="requests per client, back to back")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--model", help="model id (default: the first of /v1/models)")
    ap.add_argument("--api-key")
    ap.add_argument("--prompts", help="file with one prompt per line")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = ap.parse_args()

    prompts = PROMPTS
    if a.prompts:
        with open(a.prompts) as f:
            prompts = [l.strip() for l in f if l.strip()]
    headers = {"Content-Type": "application/json"}
    if a.api_key:
        headers["Authorization"] = "Bearer " + a.api_key
    model = a.model
    if not model:
        u = urllib.parse.urlparse(a.url)
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
        conn.request("GET", "/v1/models", headers=headers)
        model = json.loads(conn.getresponse().read())["data"][0]["id"]
        conn.close()

    ttfts, itls, tokens, errors = [], [], [0], []
    lock = threading.Lock()

    def client(ci):
        for r in range(a.requests):
            body = {"model": model, "messages": [{"role": "user", "content": prompts[(ci + r) % len(prompts)]}],
                    "max_tokens": a.max_tokens, "temperature": a.temperature, "stream": True,
                    "stream_options": {"include_usage": True}}
            try:
                ttft, itl, n = one_request(a.url, headers, body, a.timeout)
                with lock:
                    if ttft is not None:
                        ttfts.append(ttft)
                    itls.extend(itl)
                    tokens[0] += n
            except Exception as e:  # noqa: BLE001 - a load test reports every failure and goes on
                with lock:
                    errors.append(str(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = lambda v: round(v * 1000, 2)  # noqa: E731
    summary = {
        "url": a.url, "model": model, "clients": a.clients, "requests": a.clients * a.requests,
        "max_tokens": a.max_tokens, "wall_s": round(wall, 2), "output_tokens": tokens[0],
        "output_tok_per_s": round(tokens[0] / wall, 2) if wall > 0 else 0,
        "ttft_ms_p50": ms(percentile(ttfts, 50)), "ttft_ms_p99": ms(percentile(ttfts, 99)),
        "itl_ms_p50": ms(percentile(itls, 50)), "itl_ms_p99": ms(percentile(itls, 99)),
        "itl_ms_mean": ms(statistics.fmean(itls)) if itls else None,
        "errors": len(errors),
    }
    if a.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['requests']} requests from {a.clients} clients to {a.url} ({model}), {wall:.1f} s")
        print(f"  output: {tokens[0]} tokens, {summary['output_tok_per_s']} tokens/s aggregate")
        print(f"  TTFT:   p50 {summary['ttft_ms_p50']} ms, p99 {summary['ttft_ms_p99']} ms")
        print(f"  ITL:    p50 {summary['itl_ms_p50']} ms, p99 {summary['itl_ms_p99']} ms")
        if errors:
            print(f"  errors: {len(errors)} (first: {errors[0]})")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
