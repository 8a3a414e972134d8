"""The machine a benchmark runs on: its CPUs, pinned for the run, and the environment recorded with the
results.

Threads are pinned on CPU: os.sched_setaffinity to the first `threads` CPUs of the current affinity
(or of BenchConfig.cpus), the framework's thread setting (Stepper.pin_threads), and
OMP_PROC_BIND=true when it is set before the framework loads.
"""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optconform.bench_config import BenchConfig
    from optconform.bench_stepper import Stepper


def affinity() -> list[int] | None:
    """The CPUs this process may run on (None where the platform cannot tell)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


@dataclass
class Pinning:
    """The threads a run uses and the CPUs it is pinned to (None: not pinned)."""
    threads: int
    pinned: list[int] | None
    original: list[int] | None

    def restore(self) -> None:
        """Give the process back the affinity it had before `pin`."""
        if self.pinned is not None and self.original:
            os.sched_setaffinity(0, self.original)


def pin(config: BenchConfig) -> Pinning:
    """Pin a CPU run to its first `threads` allowed CPUs. Called before the framework loads: its OpenMP
    runtime then starts inside the pinned set (with OMP_PROC_BIND=true it binds one thread per CPU of
    that set)."""
    original = affinity()
    allowed = sorted(config.cpus) if config.cpus else original
    threads = config.threads or (len(allowed) if allowed else (os.cpu_count() or 1))
    pinned = None
    if allowed and config.device == "cpu":
        pinned = allowed[:threads]
        os.sched_setaffinity(0, pinned)
    return Pinning(threads, pinned, original)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _allocator() -> str:
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            maps = fh.read()
    except OSError:
        return "unknown"
    for name in ("jemalloc", "tcmalloc", "mimalloc"):
        if name in maps:
            return name
    return "glibc" if "libc" in maps else "unknown"


def environment(stepper: Stepper, device: str, threads: int, pinned: list[int] | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("OMP_", "MKL_", "MALLOC_", "XLA_", "TF_", "KMP_", "GOMP_")) or k == "LD_PRELOAD"}
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(), "threads": threads, "pinned_cpus": pinned, "allocator": _allocator(),
            "env": env, "device": device, **stepper.environment(device)}
