"""The limit of a step: the memory roofline, bytes per parameter over a bandwidth measured in the same run.

The limit: bytes/param of the rule (spec/bandwidth.toml) divided by a stream bandwidth measured in the
same run, on the same device, at the same size, over the same number of arrays: single-pass in-place
``w += r`` kernels, one per array the rule writes (each moves 12 B/element in float32, counted as
read+read+write, no write-allocate), timed in rounds alternating with the step it bounds
(bench_blocks: on a shared machine the bandwidth drifts within seconds). Every row reads "achieved
GB/s (bytes/param x params / median step), % of limit" with the limit's spread over the rounds and
a confidence interval of the % of limit.
"""
from __future__ import annotations

import tomllib
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optconform.bench_config import BenchConfig
    from optconform.bench_stepper import Built, Stepper


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


def stream_probe(stepper: Stepper, config: BenchConfig, n: int, tr: dict) -> Built:
    """The limit kernel of a row: in-place stream updates over the rule's arrays at n elements (one
    per written array), built on the framework's own arrays; the caller times it in rounds with the
    step (bench_blocks) and closes it."""
    return stepper.stream(n, len(tr["arrays"]), len(tr["written"]), config.device, config.dtype)


def limits_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results document's record of the stream probes: per timed row, the probe's GB/s per round."""
    return [{"case": r["case"], "layout": r["layout"], "n_params": r["n_params"], "GBps_per_block": r["limit_blocks_GBps"]}
            for r in rows if r.get("limit_blocks_GBps")]
