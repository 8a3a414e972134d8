"""Per-tensor cost of a step: the BERT-base layout (199 tensors) against one flat tensor of the same size.

Why not a fit: an earlier version fitted t = a + b*tensors + c*params over sizes and layouts. Across
1e5 ... 1e8 parameters the per-parameter cost c is not one number (1e6 float32 AdamW arrays sit in L3,
1e7 and up stream from DRAM at a fraction of that rate: the README's step-time table, the stream
limit at 1e6 vs 1e7), so the
linear model was misspecified and gave negative fixed costs a (issue 17). The per-tensor cost is
measured directly instead, at each size where both layouts were timed:

    per_tensor = (t_bert - t_flat * n_bert / n_flat) / (k_bert - k_flat)

(the flat time scaled to the BERT layout's parameter count, which differs from the flat one by the
rounding of the scaled dimensions, bench_layouts). Its uncertainty is that of the two medians.
"""
from __future__ import annotations

from typing import Any


def per_tensor_costs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (framework, rule, variant, device, requested size): the per-tensor cost in microseconds,
    from a timed flat row and a timed multi-tensor row of the same size and case."""
    flat: dict[tuple, dict] = {}
    many: dict[tuple, dict] = {}
    for r in rows:
        if not r.get("median_s"):
            continue
        key = (r["framework"], r["case"], r["rule"], r["variant"], r["device"], r["size_requested"])
        (flat if r["n_tensors"] == 1 else many)[key] = r
    out = []
    for key, m in many.items():
        f = flat.get(key)
        if f is None:
            continue
        scaled_flat = f["median_s"] * m["n_params"] / f["n_params"]
        out.append({"framework": key[0], "case": key[1], "rule": key[2], "variant": key[3], "device": key[4],
                    "layout": m["layout"], "n_params": m["n_params"], "n_tensors": m["n_tensors"],
                    "per_tensor_us": 1e6 * (m["median_s"] - scaled_flat) / (m["n_tensors"] - f["n_tensors"])})
    return out
