"""Fixed per-step and per-tensor overheads of a step, fitted over sizes and layouts."""
from __future__ import annotations

from typing import Any

import numpy as np


def fit_overheads(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (framework, rule, variant, device): t = a + b*tensors + c*params, least squares weighted
    by 1/t (relative error: sizes span orders of magnitude). b is fitted only when the rows have at
    least two tensor counts; then a is the fixed per-step cost, b the per-tensor cost."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("median_s"):
            groups.setdefault((r["framework"], r["rule"], r["variant"], r["device"]), []).append(r)
    fits = []
    for (fw, rule, variant, device), rs in groups.items():
        k = np.array([r["n_tensors"] for r in rs], dtype=float)
        n = np.array([r["n_params"] for r in rs], dtype=float)
        t = np.array([r["median_s"] for r in rs], dtype=float)
        with_k = len(set(k)) > 1
        cols = [np.ones_like(t)] + ([k] if with_k else []) + [n]
        if len(rs) < len(cols) or len(set(n)) < 2 and not with_k:
            continue
        x = np.stack(cols, axis=1)
        w = 1.0 / t
        coef, *_ = np.linalg.lstsq(x * w[:, None], t * w, rcond=None)
        pred = x @ coef
        a, c = coef[0], coef[-1]
        b = coef[1] if with_k else None
        bpp = rs[0]["bytes_per_param"]
        fits.append({"framework": fw, "rule": rule, "variant": variant, "device": device, "points": len(rs),
                     "fixed_us": a * 1e6, "per_tensor_us": None if b is None else b * 1e6,
                     "ns_per_param": c * 1e9, "asymptotic_GBps": bpp / c / 1e9 if c > 0 else None,
                     "rel_rms": float(np.sqrt(np.mean(((pred - t) / t) ** 2)))})
    return fits
