"""Timing one native optimizer step.

Method: first step (state allocation, compile/jit) timed separately; ``warmup`` steps; ``repeats``
samples (steps shorter than 100 us are repeated inside a sample and the sample divided); median and
IQR. The device is synchronised inside every timed sample.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

#: a sample lasts at least this long (steps shorter than this are repeated inside one sample)
MIN_SAMPLE_S = 1e-4


def samples(step: Callable[[], None], sync: Callable[[], None], repeats: int, inner: int = 1) -> list[float]:
    """`repeats` samples of seconds per step; the device sync is inside each timed sample."""
    pc = time.perf_counter
    out = []
    if inner == 1:
        for _ in range(repeats):
            t0 = pc()
            step()
            sync()
            out.append(pc() - t0)
        return out
    loop = range(inner)
    for _ in range(repeats):
        t0 = pc()
        for _ in loop:
            step()
        sync()
        out.append((pc() - t0) / inner)
    return out


@dataclass
class Timing:
    first_s: float
    samples: list[float]
    inner: int

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    @property
    def best(self) -> float:
        return float(np.min(self.samples))


def measure(step: Callable[[], None], sync: Callable[[], None], repeats: int = 25, warmup: int = 5,
            min_sample_s: float = MIN_SAMPLE_S) -> Timing:
    """First step timed alone (allocation, compile/jit), `warmup` steps, then `repeats` samples."""
    pc = time.perf_counter
    t0 = pc()
    step()
    sync()
    first = pc() - t0
    for _ in range(warmup):
        step()
        sync()
    t0 = pc()
    step()
    sync()
    est = max(pc() - t0, 1e-7)
    inner = 1 if est >= min_sample_s else min(1000, math.ceil(min_sample_s / est))
    return Timing(first, samples(step, sync, repeats, inner), inner)
