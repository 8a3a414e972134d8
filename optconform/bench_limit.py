"""The limit of a step: the memory roofline, bytes per parameter over a bandwidth measured in the same run.

The limit: bytes/param of the rule (spec/bandwidth.toml) divided by a stream bandwidth measured in the
same run, on the same device, at the same size, over the same number of arrays: single-pass in-place
``w += r`` kernels, one per array the rule writes (each moves 12 B/element in float32, counted as
read+read+write, no write-allocate), re-measured right before every row (on a shared machine the
bandwidth drifts within minutes). Every row reads "achieved GB/s (bytes/param x params / median
step), % of limit".
"""
from __future__ import annotations

import gc
import tomllib
from importlib import resources
from typing import TYPE_CHECKING, Any

from .bench_timing import Timing, measure

if TYPE_CHECKING:
    from optconform.bench_config import BenchConfig
    from optconform.bench_stepper import Stepper


def bandwidth_table() -> dict[str, dict[str, Any]]:
    """spec/bandwidth.toml: rule -> {reads, writes, bytes_fp32, note}."""
    text = resources.files("optconform.spec").joinpath("bandwidth.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)["rules"]


def traffic(rule: str, itemsize: int = 4) -> dict[str, Any]:
    """Bytes/param and the arrays of `rule` (a derived rule `preset[...]` uses its preset's entry)."""
    table = bandwidth_table()
    base = rule.split("[", 1)[0]
    if base not in table:
        raise ValueError(f"no bytes-per-param entry for rule {rule!r} in spec/bandwidth.toml")
    entry = table[base]
    arrays = list(dict.fromkeys(entry["reads"] + entry["writes"]))
    written = list(dict.fromkeys(entry["writes"]))
    return {"rule": base, "bytes_per_param": entry["bytes_fp32"] * itemsize // 4, "arrays": arrays,
            "written": written, "read_only": [a for a in arrays if a not in written]}


def case_traffic(case_rule: str, requested: str, itemsize: int = 4) -> dict[str, Any]:
    """Bytes/param of a case's own rule; a stepper may answer a requested rule with a framework's
    counterpart (Keras AdamW, rule adamw_eps_hat, for --rule adamw): the row is filed under the case's
    rule, and a counterpart rule without its own spec/bandwidth.toml entry takes the requested rule's
    (the stepper vouches that it reads and writes the same per-parameter arrays)."""
    try:
        return traffic(case_rule, itemsize)
    except ValueError:
        return traffic(requested, itemsize)


#: a probe's key: (elements per array, arrays, written arrays)
ProbeKey = tuple[int, int, int]


def stream_gbps(stepper: Stepper, config: BenchConfig, n: int, tr: dict,
                limits: dict[ProbeKey, tuple[Timing, float]]) -> float:
    """Stream GB/s over the rule's arrays at n elements. `limits` caches by key; run() passes a fresh
    dict per row, so the probe runs right before the step it bounds (shared CPUs drift in minutes)."""
    key = (n, len(tr["arrays"]), len(tr["written"]))
    if key not in limits:
        probe = stepper.stream(n, key[1], key[2], config.device, config.dtype)
        try:
            limits[key] = (measure(probe.step, probe.sync, config.repeats, config.warmup), probe.bytes_per_call)
        finally:
            probe.close()
            del probe
            gc.collect()
    timing, nbytes = limits[key]
    return nbytes / timing.median / 1e9


def limits_json(limits: list[tuple[ProbeKey, Timing, float]]) -> list[dict[str, Any]]:
    """The results document's record of every stream probe of the run."""
    return [{"n_params": k[0], "arrays": k[1], "written": k[2], "median_s": t.median,
             "GBps": b / t.median / 1e9, "iqr_over_median": t.iqr / t.median}
            for k, t, b in limits]
