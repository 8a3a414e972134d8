"""Peak extra memory of an optimizer step, on CPU as on CUDA.

Measured: the high-water mark of memory during one step minus the memory in use right before it,
per parameter. Two steps are measured: the first (the optimizer's state is allocated there in torch;
a jit compiles there) and a steady-state step after the warm-up (the temporaries a step allocates:
a fused kernel none, a for-loop / foreach step one or more arrays per tensor, a jit step without
donation fresh output buffers). Reported beside the rule's state size (its state arrays in
spec/bandwidth.toml x the item size), so "extra per step" reads against "what the rule must keep".

- CPU (Linux): the process' resident set high-water mark. Writing "5" to /proc/self/clear_refs resets
  VmHWM to the current VmRSS (Documentation/filesystems/proc.rst, "clear_refs"; Linux >= 4.0), then
  VmHWM in /proc/self/status is the peak RSS since. It sees every allocator (glibc, XLA's, TF's), at
  page granularity. Before each measured step glibc's free memory is returned to the system
  (`malloc_trim(0)`, where the C library has it), so a step that allocates from memory an earlier
  row freed still touches new pages and counts; allocators with caches of their own (XLA's, TF's)
  may still serve a step from pages resident already: those bytes are not "extra".
- CUDA (torch): torch.cuda.reset_peak_memory_stats / max_memory_allocated / memory_allocated (the
  caching allocator's tensor bytes).
Where neither works the probe is None and each row says why (`MemoryProbe.unavailable`).
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Callable

_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"


@dataclass
class MemoryProbe:
    """How a step's memory is read: `reset()` starts a high-water period, `peak()` and `current()`
    return bytes."""
    method: str
    reset: Callable[[], None]
    peak: Callable[[], int]
    current: Callable[[], int]


def _status_kib(field: str) -> int:
    with open(_STATUS, encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{_STATUS} has no {field}")


def _reset_hwm() -> None:
    with open(_CLEAR_REFS, "w", encoding="ascii") as fh:
        fh.write("5")


def _malloc_trim() -> Callable[[], None] | None:
    """glibc's malloc_trim(0) (give free heap pages back to the system), or None elsewhere."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return lambda: trim(0) and None


def rss_probe() -> MemoryProbe | str:
    """The VmHWM probe, or why this platform cannot give it."""
    try:
        _reset_hwm()
        _status_kib("VmHWM")
    except OSError as exc:
        return f"the process RSS high-water mark cannot be reset here ({type(exc).__name__}: {exc})"
    trim = _malloc_trim()
    method = "VmHWM - VmRSS (Linux /proc/self, reset via clear_refs" + (", after malloc_trim)" if trim else ")")

    def reset() -> None:
        if trim is not None:
            trim()
        _reset_hwm()
    return MemoryProbe(method, reset, lambda: _status_kib("VmHWM") * 1024, lambda: _status_kib("VmRSS") * 1024)


def step_extra_bytes(probe: MemoryProbe, step: Callable[[], None], sync: Callable[[], None]) -> int:
    """Peak bytes in use during one step beyond those in use right before it (>= 0)."""
    sync()
    probe.reset()
    before = probe.current()
    step()
    sync()
    return max(0, probe.peak() - before)


def state_bytes_per_param(traffic: dict, itemsize: int) -> int:
    """The rule's state per parameter: its arrays (spec/bandwidth.toml) other than p and g."""
    return itemsize * len([a for a in traffic["arrays"] if a not in ("p", "g")])
