"""What machine a benchmark ran on: every number a benchmark prints is a claim about this CPU only."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_description() -> str:
    """CPU model and the SIMD flags that decide PyTorch's CPU kernels (avx2, avx512f)."""
    model, flags = platform.processor() or platform.machine() or "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    simd = [f for f in ("avx2", "avx512f") if f in flags] or ["neither avx2 nor avx512f"]
    return f"{model} ({', '.join(simd)}; {os.cpu_count()} logical CPUs)"


def load_average() -> float:
    """The 1-minute load average (0 where the OS has none): a busy machine makes times longer."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0
