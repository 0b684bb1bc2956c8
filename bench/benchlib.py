"""What the side-by-side scripts share (side_by_side.py, batched_side_by_side.py,
serve_side_by_side.py): the machine a number comes from, and running a benchmark under a time
limit. Standard library only."""
import os
import platform
import shlex
import subprocess
import time


def cpu_name():
    """The CPU model as /proc/cpuinfo names it ("model name"), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_timed(cmd, timeout, what="rows"):
    """Runs cmd (printing it with the load average); returns (stdout, stderr, rc). On a timeout,
    what it printed so far and rc None, so that the tests that finished are kept."""
    print(f"$ {shlex.join(cmd)}   [loadavg {os.getloadavg()[0]:.2f}]", flush=True)
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out, err, rc = r.stdout, r.stderr, r.returncode
    except subprocess.TimeoutExpired as e:
        dec = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")  # noqa: E731
        out, err, rc = dec(e.output), dec(e.stderr) + f"\ntimed out after {timeout} s", None
        print(f"  timed out after {timeout} s; keeping the {what} that finished", flush=True)
    print(f"  ({time.time() - t0:.0f} s, exit {rc})", flush=True)
    return out, err, rc
