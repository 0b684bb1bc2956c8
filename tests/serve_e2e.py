#!/usr/bin/env python3
"""End-to-end test of `llrt serve` with the official openai client (run by tests/serve_e2e.sh).

Starts the real server on loopback ports (port 0: the server picks one and prints it) with the
mini models and checks, as a client sees them: completions and chat, streaming and not, models
list, stop strings, seeds, max_tokens -> "length", n, logprobs, every error status (400, 401, 404,
413, 503), 16 concurrent streaming clients each getting exactly `llrt run`'s greedy text, 100
cancelled streams with the server still serving and its memory flat, hostile HTTP (malformed,
huge headers, a stalled client), the DeepSeek reasoning split, and SIGTERM -> exit 0.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import openai

ARGS = None
FAILS = []


def check(cond, what):
    if cond:
        print(f"  ok: {what}", flush=True)
    else:
        print(f"  FAIL: {what}", flush=True)
        FAILS.append(what)


class Server:
    def __init__(self, model, *extra, env=None):
        cmd = [ARGS.llrt, "serve", model, "--port", "0", *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        self.port = None
        self.stderr_lines = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        deadline = time.time() + 60
        self.loading_line = self.proc.stdout.readline()
        m = re.search(r"http://[^:]+:(\d+)", self.loading_line)
        if not m:
            raise RuntimeError(f"server did not start: {self.loading_line!r} {self.stderr_lines}")
        self.port = int(m.group(1))
        self.base = f"http://127.0.0.1:{self.port}"
        self.ready_line = None
        self._ready = threading.Event()
        threading.Thread(target=self._wait_ready, daemon=True).start()
        if not env or "LLRT_SERVE_LOAD_DELAY_MS" not in env:
            if not self._ready.wait(max(1, deadline - time.time())):
                raise RuntimeError(f"server not ready: {self.stderr_lines}")

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def _wait_ready(self):
        self.ready_line = self.proc.stdout.readline()
        self._ready.set()

    def client(self, **kw):
        return openai.OpenAI(base_url=self.base + "/v1", api_key=kw.pop("api_key", "none"), max_retries=0, timeout=120, **kw)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def metric(self, name):
        text = httpx.get(self.base + "/metrics").text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -999


def solo_ids(model, prompt, n):
    """The token ids of a solo greedy `llrt run` (the reference for the server's tokens)."""
    out = subprocess.run([ARGS.llrt, "run", model, "-p", prompt, "-n", str(n), "--temp", "0", "--print-ids"],
                         capture_output=True, text=True, check=True)
    return [int(x) for x in out.stdout.split()]


def completion_text(server, prompt, ids):
    """The text a completion of `prompt` made of `ids` shows: decode(prompt + ids) after decode(prompt)."""
    p = httpx.post(server.base + "/tokenize", json={"content": prompt, "add_special": True}).json()["tokens"]
    head = httpx.post(server.base + "/detokenize", json={"tokens": p}).json()["content"]
    full = httpx.post(server.base + "/detokenize", json={"tokens": p + ids}).json()["content"]
    assert full.startswith(head)
    return full[len(head):]


def error_shape(body):
    e = body.get("error", {}) if isinstance(body, dict) else {}
    return all(k in e for k in ("message", "type", "param", "code"))


def api_status(fn):
    """Runs fn; returns (status, body) of the openai APIStatusError it raises (None if none)."""
    try:
        fn()
    except openai.APIStatusError as e:
        return e.status_code, e.response.json()
    return None, None


# ---------------------------------------------------------------------------------------------

def test_completions(stories):
    print("== completions (stories260K)", flush=True)
    s = Server(stories, "--parallel", "4")
    c = s.client()
    try:
        models = c.models.list()
        check([m.id for m in models.data] == ["stories260K"], "models list holds the directory name")
        st, body = api_status(lambda: c.models.retrieve("gpt-4"))
        check(st == 404 and error_shape(body), "unknown model: 404 with the error object")

        prompt = "Once upon a time"
        ref = completion_text(s, prompt, solo_ids(stories, prompt, 24))
        r = c.completions.create(model="stories260K", prompt=prompt, max_tokens=24, temperature=0)
        check(r.choices[0].text == ref, f"greedy completion equals llrt run ({ref[:40]!r}...)")
        check(r.choices[0].finish_reason == "length", "max_tokens ends with finish_reason length")
        check(r.usage.completion_tokens == 24 and r.usage.prompt_tokens > 0, "usage counts")

        parts, finish, usage = [], None, None
        for ch in c.completions.create(model="stories260K", prompt=prompt, max_tokens=24, temperature=0, stream=True,
                                       stream_options={"include_usage": True}):
            if ch.choices:
                parts.append(ch.choices[0].text)
                finish = ch.choices[0].finish_reason or finish
            if ch.usage:
                usage = ch.usage
        check("".join(parts) == ref, "streamed completion equals the non-streamed one")
        check(finish == "length", "stream ends with finish_reason")
        check(usage is not None and usage.completion_tokens == 24, "include_usage: a usage chunk")
        check(usage is not None and usage.prompt_tokens_details.cached_tokens > 0,
              "the repeated prompt reuses the cache (prompt_tokens_details.cached_tokens)")

        stop = c.completions.create(model="stories260K", prompt=prompt, max_tokens=24, temperature=0, stop=["Lily"])
        check("Lily" in ref and stop.choices[0].text == ref[:ref.index("Lily")], "stop string: text up to it, not included")
        check(stop.choices[0].finish_reason == "stop", "stop string: finish_reason stop")

        a = c.completions.create(model="stories260K", prompt=prompt, max_tokens=30, temperature=1.0, seed=7)
        b = c.completions.create(model="stories260K", prompt=prompt, max_tokens=30, temperature=1.0, seed=7)
        d = c.completions.create(model="stories260K", prompt=prompt, max_tokens=30, temperature=1.0, seed=8)
        check(a.choices[0].text == b.choices[0].text, "same seed: same text")
        check(a.choices[0].text != d.choices[0].text, "another seed: another text")

        two = c.completions.create(model="stories260K", prompt=prompt, max_tokens=30, temperature=1.0, seed=3, n=2)
        check(len(two.choices) == 2 and [x.index for x in two.choices] == [0, 1], "n: 2 gives two choices")
        check(two.choices[0].text != two.choices[1].text, "n: 2 samples differ")
        check(two.usage.completion_tokens == 60, "usage adds up both choices")

        lp = c.completions.create(model="stories260K", prompt=prompt, max_tokens=8, temperature=0, logprobs=3)
        L = lp.choices[0].logprobs
        check(len(L.tokens) == 8 and len(L.token_logprobs) == 8 and all(len(t) == 3 for t in L.top_logprobs),
              "completion logprobs: a token, its logprob and 3 alternatives per step")
        check(all(v <= 0 for v in L.token_logprobs) and
              all(abs(L.token_logprobs[i] - max(L.top_logprobs[i].values())) < 1e-5 for i in range(8)),
              "greedy: the chosen token is the most likely (raw distribution)")

        ids = httpx.post(s.base + "/tokenize", json={"content": prompt}).json()["tokens"]
        echo = c.completions.create(model="stories260K", prompt=ids, max_tokens=4, temperature=0, echo=True)
        check(echo.choices[0].text.startswith(prompt), "token-id prompt with echo")
        multi = c.completions.create(model="stories260K", prompt=["Once upon a time", "The cat"], max_tokens=4, temperature=0)
        check(len(multi.choices) == 2, "a list of prompts: a choice each")
        detok = httpx.post(s.base + "/detokenize", json={"tokens": ids}).json()["content"]
        check(detok == prompt, "/detokenize")
        bos = httpx.post(s.base + "/tokenize", json={"content": prompt, "add_special": True}).json()["tokens"]
        check(bos == [1] + ids, "/tokenize adds BOS only with add_special")

        # Errors: the status and OpenAI's error object with its four keys.
        for name, fn, want in [
            ("max_tokens -5", lambda: c.completions.create(model="stories260K", prompt="x", max_tokens=-5), 400),
            ("prompt + max_tokens beyond the context",
             lambda: c.completions.create(model="stories260K", prompt="x", max_tokens=100000), 400),
            ("temperature as a string", lambda: c.completions.create(model="stories260K", prompt="x", temperature="hot"), 400),
            ("unknown model", lambda: c.completions.create(model="gpt-4", prompt="x"), 404),
            ("chat on a model without a template",
             lambda: c.chat.completions.create(model="stories260K", messages=[{"role": "user", "content": "hi"}]), 400),
        ]:
            st, body = api_status(fn)
            check(st == want and error_shape(body), f"{name}: {want} with the error object (got {st})")
        r = httpx.post(s.base + "/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"})
        check(r.status_code == 400 and error_shape(r.json()), "bad JSON: 400")
        r = httpx.post(s.base + "/v1/chat/completions", json={"model": "stories260K", "messages": "hello"})
        check(r.status_code == 400 and error_shape(r.json()) and r.json()["error"]["param"] == "messages",
              "messages as a string: 400 naming the param")
        r = httpx.get(s.base + "/v1/nothing")
        check(r.status_code == 404 and error_shape(r.json()), "unknown route: 404")
        r = httpx.post(s.base + "/v1/completions", content=b"x" * (9 << 20))
        check(r.status_code == 413 and error_shape(r.json()), "a 9 MiB body: 413")
        metrics = httpx.get(s.base + "/metrics").text
        check("llrt_time_to_first_token_seconds_bucket" in metrics and "llrt_inter_token_latency_seconds_count" in metrics
              and "llrt_queue_depth" in metrics and "llrt_generation_tokens_total" in metrics, "/metrics: Prometheus text")
    finally:
        check(s.stop() == 0, "SIGTERM: exit 0")


def test_concurrency_and_cancel(stories):
    print("== 16 concurrent streaming clients, 100 cancelled streams (stories260K)", flush=True)
    prompts = [f"{w} " + t for w, t in zip(
        ["Once", "One", "The", "A", "Lily", "Tom", "Sue", "Ben", "Max", "Mia", "Sam", "Tim", "Zoe", "Amy", "Bob", "Kim"],
        ["upon a time", "day", "cat was", "little bird", "saw a", "had a ball", "liked to", "and his mom",
         "went to the park", "found a", "was happy", "wanted", "ran to", "looked at the", "said", "played with"])]
    s = Server(stories, "--parallel", "4", "--max-queue", "32")
    refs = [completion_text(s, p, solo_ids(stories, p, 32)) for p in prompts]
    c = s.client()
    out = [None] * 16

    def stream(i):
        parts = []
        for ch in c.completions.create(model="stories260K", prompt=prompts[i], max_tokens=32, temperature=0, stream=True):
            parts.append(ch.choices[0].text)
        out[i] = "".join(parts)

    try:
        ts = [threading.Thread(target=stream, args=(i,)) for i in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        bad = [i for i in range(16) if out[i] != refs[i]]
        check(not bad, f"16 concurrent streams each equal a solo llrt run (mismatch: {bad})")

        def cancel_one():
            with httpx.stream("POST", s.base + "/v1/completions",
                              json={"prompt": "Once upon a time", "max_tokens": 480, "stream": True, "temperature": 0.9},
                              timeout=60) as r:
                n = 0
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        n += 1
                    if n >= 2:
                        break  # leaving the block closes the connection mid-stream

        for _ in range(10):
            cancel_one()
        time.sleep(0.5)
        rss0 = s.rss_kib()
        for _ in range(100):
            cancel_one()
        deadline = time.time() + 20
        while time.time() < deadline and (s.metric("llrt_sequences_running") > 0 or
                                          s.metric('llrt_sequences_total{end="cancelled"}') < 100):
            time.sleep(0.2)
        rss1 = s.rss_kib()
        cancelled = s.metric('llrt_sequences_total{end="cancelled"}')
        check(cancelled >= 100, f"disconnects cancel their generation ({cancelled:.0f} cancelled of 110)")
        check(s.metric("llrt_sequences_running") == 0, "every slot freed")
        check(rss1 - rss0 < 16 * 1024, f"memory flat over 100 cancelled streams (RSS {rss0} -> {rss1} KiB)")
        # A non-streaming client that leaves: its 16 choices (7680 tokens to make) are cancelled.
        try:
            httpx.post(s.base + "/v1/completions", json={"prompt": "Once", "max_tokens": 480, "n": 16, "temperature": 0.9},
                       timeout=0.3)
        except httpx.TimeoutException:
            pass
        deadline = time.time() + 10
        while time.time() < deadline and s.metric('llrt_sequences_total{end="cancelled"}') < cancelled + 1:
            time.sleep(0.1)
        check(s.metric('llrt_sequences_total{end="cancelled"}') > cancelled, "a non-streaming client that leaves is cancelled too")
        r = c.completions.create(model="stories260K", prompt=prompts[0], max_tokens=32, temperature=0)
        check(r.choices[0].text == refs[0], "still serves, same tokens")
    finally:
        check(s.stop() == 0, "SIGTERM: exit 0")


def test_overcommitted_pool(stories):
    print("== --max-running beyond --parallel: 8 streams share a KV pool sized for 1 (preemption)", flush=True)
    prompts = ["Once upon a time", "One day", "The cat was", "A little bird", "Lily saw a", "Tom had a ball",
               "Sue liked to", "Ben and his mom"]
    s = Server(stories, "--parallel", "1", "--max-running", "8", "--ctx", "256")
    refs = [completion_text(s, p, solo_ids(stories, p, 200)) for p in prompts]
    c = s.client()
    out = [None] * len(prompts)

    def stream(i):
        parts = []
        for ch in c.completions.create(model="stories260K", prompt=prompts[i], max_tokens=200, temperature=0, stream=True):
            parts.append(ch.choices[0].text)
        out[i] = "".join(parts)

    try:
        check("8 slots x 256 positions" in s.ready_line and "KV pool 8 blocks" in s.ready_line,
              f"the listening line names the slots and the pool ({s.ready_line.strip()})")
        ts = [threading.Thread(target=stream, args=(i,)) for i in range(len(prompts))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        bad = [i for i in range(len(prompts)) if out[i] != refs[i]]
        check(not bad, f"8 streams through one sequence's worth of KV blocks each equal a solo llrt run (mismatch: {bad})")
        check(s.metric("llrt_sequences_running") == 0, "every slot freed")
    finally:
        check(s.stop() == 0, "SIGTERM: exit 0")


def test_chat(llama):
    print("== chat (llama-3.2-mini: the real Llama 3.2 template)", flush=True)
    s = Server(llama, "--parallel", "2", "--ctx", "1024")
    c = s.client()
    try:
        msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]
        kw = dict(model="llama-3.2-mini", messages=msgs, max_tokens=12, temperature=0,
                  extra_body={"chat_template_kwargs": {"date_string": "01 Jan 2026"}})
        r = c.chat.completions.create(**kw)
        check(r.object == "chat.completion" and r.choices[0].message.role == "assistant", "chat completion shape")
        check(r.choices[0].finish_reason in ("length", "stop"), "chat finish_reason")
        parts, role = [], None
        for ch in c.chat.completions.create(stream=True, **kw):
            if ch.choices:
                role = role or ch.choices[0].delta.role
                parts.append(ch.choices[0].delta.content or "")
        check("".join(parts) == r.choices[0].message.content, "streamed chat equals the non-streamed one")
        check(role == "assistant", "the first delta carries the role")
        parts_msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hello!"}]}]
        r2 = c.chat.completions.create(**{**kw, "messages": parts_msgs})
        check(r2.choices[0].message.content == r.choices[0].message.content, "content as a list of text parts")
        # Second turn: the history is re-sent; only the new tokens are evaluated.
        turn2 = msgs + [{"role": "assistant", "content": r.choices[0].message.content}, {"role": "user", "content": "More?"}]
        r3 = c.chat.completions.create(**{**kw, "messages": turn2})
        cached = r3.usage.prompt_tokens_details.cached_tokens
        check(cached >= r.usage.prompt_tokens - 1, f"second turn: {cached} of {r3.usage.prompt_tokens} prompt tokens cached")
        lp = c.chat.completions.create(**{**kw, "max_tokens": 5}, logprobs=True, top_logprobs=3)
        content = lp.choices[0].logprobs.content
        check(len(content) == lp.usage.completion_tokens and all(len(t.top_logprobs) == 3 for t in content),
              "chat logprobs with top_logprobs")
        pen = c.chat.completions.create(**{**kw, "extra_body": {**kw["extra_body"], "repetition_penalty": 1.2, "top_k": 20,
                                                                "min_p": 0.05}}, presence_penalty=1.5, frequency_penalty=1.0,
                                        top_p=0.9)
        check(pen.choices[0].message.content is not None, "every sampling parameter accepted")
        first = r.usage.completion_tokens and c.chat.completions.create(**{**kw, "max_tokens": 1}, logprobs=True)
        banned = first.choices[0].logprobs.content[0].token if first else None
        tid = httpx.post(s.base + "/tokenize", json={"content": banned}).json()["tokens"] if banned else []
        if len(tid) == 1:
            b = c.chat.completions.create(**{**kw, "max_tokens": 1}, logit_bias={str(tid[0]): -100}, logprobs=True)
            check(b.choices[0].logprobs.content[0].token != banned, "logit_bias -100 bans the greedy token")
        st, body = api_status(lambda: c.chat.completions.create(model="llama-3.2-mini", messages=msgs, max_tokens=2000))
        check(st == 400 and error_shape(body), "prompt + max_tokens beyond --ctx: 400")
    finally:
        check(s.stop() == 0, "SIGTERM: exit 0")


def test_reasoning(deepseek):
    print("== reasoning_content (deepseek-r1-distill-mini, --reasoning-format deepseek)", flush=True)
    s = Server(deepseek, "--reasoning-format", "deepseek", "--ctx", "1024")
    c = s.client()
    try:
        kw = dict(model="deepseek-r1-distill-mini", messages=[{"role": "user", "content": "2+2?"}], max_tokens=24, temperature=0)
        raw = c.chat.completions.create(**kw, extra_body={"reasoning_format": "none"}).choices[0].message
        split = c.chat.completions.create(**kw).choices[0].message
        reasoning = getattr(split, "reasoning_content", None)
        check(isinstance(reasoning, str), "reasoning_content present")
        text = raw.content
        if "</think>" in text:
            check(text.startswith(reasoning) and split.content in text, "split at </think>")
        else:
            check(reasoning == text.removeprefix("<think>") and split.content == "", "no </think> yet: all reasoning")
        parts_r, parts_c = [], []
        for ch in c.chat.completions.create(stream=True, **kw):
            if ch.choices:
                d = ch.choices[0].delta
                parts_r.append(getattr(d, "reasoning_content", None) or "")
                parts_c.append(d.content or "")
        check("".join(parts_r) == reasoning and "".join(parts_c) == split.content, "streamed reasoning deltas")
    finally:
        check(s.stop() == 0, "SIGTERM: exit 0")


def test_limits_and_hostile(stories):
    print("== auth, queue full, hostile HTTP, slow clients, loading, SIGTERM mid-stream", flush=True)
    s = Server(stories, "--api-key", "sekret", "--parallel", "1", "--max-queue", "0", "--timeout", "2",
               env={"LLRT_SERVE_LOAD_DELAY_MS": "1500"})
    try:
        h = httpx.get(s.base + "/health")
        check(h.status_code == 503 and error_shape(h.json()), "/health: 503 while loading")
        check(s._ready.wait(60), "then ready")
        check(httpx.get(s.base + "/health").status_code == 200, "/health: 200 once loaded (no key needed)")
        st, body = api_status(lambda: s.client(api_key="wrong").models.list())
        check(st == 401 and error_shape(body), "wrong API key: 401")
        r = httpx.get(s.base + "/v1/models")
        check(r.status_code == 401 and error_shape(r.json()), "no API key: 401")
        c = s.client(api_key="sekret")
        check(c.models.list().data[0].id == "stories260K", "the right key works")

        # Queue full: one slot, no queue; a second request while the first streams gets 503.
        first = c.completions.create(model="stories260K", prompt="Once", max_tokens=480, temperature=0.9, stream=True)
        next(iter(first))
        st, body = api_status(lambda: c.completions.create(model="stories260K", prompt="Once", max_tokens=4))
        check(st == 503 and error_shape(body), f"queue full: 503 (got {st})")
        first.close()

        def raw(data, wait=3.0):
            sk = socket.create_connection(("127.0.0.1", s.port), timeout=wait)
            try:
                sk.sendall(data)
                got = b""
                while True:
                    chunk = sk.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                    if b"\r\n\r\n" in got:
                        break
                return got
            except (socket.timeout, ConnectionResetError, BrokenPipeError):
                return b"<timeout or reset>"
            finally:
                sk.close()

        got = raw(b"GARBAGE\r\n\r\n")
        check(got.startswith(b"HTTP/1.1 4") or got == b"", f"malformed request line: 4xx or closed ({got[:20]!r})")
        got = raw(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
        check(not got.startswith(b"HTTP/1.1 2"), f"a 1 MiB header is refused ({got[:20]!r})")
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(20000))
        got = raw(b"GET /health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        check(not got.startswith(b"HTTP/1.1 2"), f"20,000 headers (a 200 KiB head) are refused ({got[:20]!r})")
        got = raw(b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-B: 2\r\n\r\n")
        check(got.startswith(b"HTTP/1.1 200"), "a plain request on a raw socket is answered")
        t0 = time.time()
        sk = socket.create_connection(("127.0.0.1", s.port))
        sk.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\nContent-Length: 100\r\n\r\n{")
        sk.settimeout(10)
        try:
            got = sk.recv(4096)
        except (socket.timeout, ConnectionResetError):
            got = b"<timeout or reset>"
        sk.close()
        waited = time.time() - t0
        check(1.5 < waited < 8 and (got == b"" or got.startswith(b"HTTP/1.1 4")),
              f"a stalled client is dropped after --timeout 2 ({waited:.1f} s, {got[:20]!r})")
        check(httpx.get(s.base + "/health").status_code == 200, "healthy after the hostile clients")

        # SIGTERM mid-stream: the stream ends with a finish_reason and [DONE], the server exits 0.
        events = []
        stream = httpx.stream("POST", s.base + "/v1/completions", headers={"Authorization": "Bearer sekret"},
                              json={"prompt": "Once", "max_tokens": 480, "stream": True, "temperature": 0.9}, timeout=30)
        with stream as r:
            it = r.iter_lines()
            for line in it:
                if line.startswith("data: "):
                    events.append(line)
                    break
            s.proc.send_signal(signal.SIGTERM)
            for line in it:
                if line.startswith("data: "):
                    events.append(line)
        check(events[-1] == "data: [DONE]", "SIGTERM: the in-flight stream ends with [DONE]")
        last = json.loads(events[-2][6:]) if len(events) >= 2 else {}
        check(last.get("choices", [{}])[0].get("finish_reason") == "length", "... after a finish_reason")
        check(s.proc.wait(20) == 0, "SIGTERM: exit 0")
    finally:
        s.stop()


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--llrt", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--shared", required=True)
    ARGS = ap.parse_args()
    stories = os.path.join(ARGS.source, "models", "stories260K")
    t0 = time.time()
    test_completions(stories)
    test_concurrency_and_cancel(stories)
    test_overcommitted_pool(stories)
    test_chat(os.path.join(ARGS.shared, "models", "llama-3.2-mini"))
    test_reasoning(os.path.join(ARGS.shared, "models", "deepseek-r1-distill-mini"))
    test_limits_and_hostile(stories)
    print(f"serve e2e: {len(FAILS)} failed ({time.time() - t0:.0f} s)", flush=True)
    for f in FAILS:
        print("  FAILED:", f)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
