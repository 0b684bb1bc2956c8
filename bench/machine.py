"""What the bench scripts say about the machine a number comes from (shared by side_by_side.py,
batched_side_by_side.py and serve_side_by_side.py; standard library only)."""
import platform


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
