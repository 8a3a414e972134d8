"""Interleaved timing blocks: the limit probe, the step and the bare loop measured in alternation.

A shared CPU's bandwidth drifts within seconds (another process, frequency, the page cache): a limit
probed once before a row and a step timed after it are two measurements under two conditions, which
is how one run read 83 % and the next 99 % of "the limit" (issue 17). So every row runs `blocks`
rounds of `repeats` samples of every kernel (probe, step, and for overhead variants the bare loop);
within a round the kernels alternate sample by sample (`alternate`), so each sample of the step has
a probe sample taken milliseconds before or after it, and a ratio of neighbouring samples cancels
the drift.

Statistics: the limit per round is the median of its probe samples (its spread over rounds is
reported); a ratio (% of limit, harness vs bare) is taken per neighbouring pair of samples and the
row's value is the median of all pairs, with a distribution-free confidence interval of that median (order statistics of the pairs: Hollander,
Wolfe & Chicken, *Nonparametric Statistical Methods*, 3rd ed., section 3.6: the interval
[x_(j), x_(K+1-j)] covers the median with probability 1 - 2 P(Bin(K, 1/2) < j)).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from .bench_timing import samples

#: the confidence of the intervals the benchmark reports
CONFIDENCE = 0.95


#: one kernel of a round: (sample name, step, sync, calls per sample)
Part = tuple[str, Callable[[], None], Callable[[], None], int]


def alternate(parts: Sequence[Part], repeats: int) -> dict[str, list[float]]:
    """`repeats` samples of each kernel, alternated sample by sample with the order rotated from one
    sample to the next (for two: A B, B A, ...): the limit probe and the step, or the harness' step
    and the bare native call, are then measured milliseconds apart, so a ratio of neighbouring
    samples cancels drift that a block-to-block ratio (a block lasts 0.1 s and more) keeps."""
    m = len(parts)
    out: dict[str, list[float]] = {p[0]: [] for p in parts}
    for i in range(repeats):
        for j in range(m):
            name, step, sync, inner = parts[(i + j) % m]
            out[name] += samples(step, sync, 1, inner)
    return out


def rounds(parts: Sequence[Part], blocks: int, repeats: int) -> dict[str, list[list[float]]]:
    """`blocks` rounds of `alternate`; sample name -> one list of samples per round."""
    out: dict[str, list[list[float]]] = {p[0]: [] for p in parts}
    for _ in range(blocks):
        for name, values in alternate(parts, repeats).items():
            out[name].append(values)
    return out


def block_medians(blocks: list[list[float]]) -> np.ndarray:
    return np.array([float(np.median(b)) for b in blocks])


def median_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(median, low, high): the order-statistic interval [x_(j), x_(K+1-j)] with the largest j whose
    coverage 1 - 2 P(Bin(K, 1/2) < j) is at least `confidence` (K = 7: min..max, 98.4 %; K = 9:
    2nd..8th, 96.1 %). Fewer than 6 values cannot reach 95 %: the interval is then min..max and its
    coverage lower (K = 5: 93.8 %), as `coverage` says."""
    x = np.sort(np.asarray(values, dtype=float))
    j = order_statistic(len(x), confidence)
    return float(np.median(x)), float(x[j - 1]), float(x[len(x) - j])


def order_statistic(k: int, confidence: float = CONFIDENCE) -> int:
    """The largest j >= 1 with coverage(k, j) >= confidence (1 when none reaches it)."""
    best = 1
    for j in range(1, k // 2 + 1):
        if coverage(k, j) >= confidence:
            best = j
    return best


def coverage(k: int, j: int) -> float:
    """P(x_(j) <= median <= x_(k+1-j)) for k i.i.d. draws of a continuous distribution."""
    below = sum(math.comb(k, i) for i in range(j)) / 2 ** k
    return 1.0 - 2.0 * below
