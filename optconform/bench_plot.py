"""The benchmark's plot (--plot): step time vs parameters, one panel per rule, with the roofline."""
from __future__ import annotations

from typing import Any

import numpy as np

from .bench_config import TIMED_VERDICTS

#: layout -> (line style, marker)
STYLES = {"flat": ("-", "o"), "bert-base": ("--", "s")}


def plot(doc: dict[str, Any], path: str) -> None:
    """PNG: step time vs parameters per variant/layout, one panel per rule, with the roofline."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in doc["rows"] if r["median_s"] is not None]
    rules = list(dict.fromkeys(r["rule"] for r in doc["rows"]))
    fig, axes = plt.subplots(1, max(1, len(rules)), figsize=(5.2 * max(1, len(rules)), 4.6), squeeze=False)
    for ax, rule in zip(axes[0], rules):
        _rule_panel(ax, rule, [r for r in rows if r["rule"] == rule])
    env = doc["environment"]
    fig.suptitle(f"{doc['framework']} {doc['version']}, {env.get('device_name', env['device'])}, "
                 f"{env['threads']} thread(s)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _rule_panel(ax, rule: str, rs: list[dict]) -> None:
    """One line per (framework, variant, layout) and the limit line, on log-log axes."""
    colors: dict[tuple, str] = {}
    for fw, variant, layout in dict.fromkeys((r["framework"], r["variant"], r["layout"]) for r in rs):
        pts = sorted((r["n_params"], r["median_s"] * 1e3) for r in rs
                     if (r["framework"], r["variant"], r["layout"]) == (fw, variant, layout))
        color = colors.setdefault((fw, variant), f"C{len(colors)}")
        ls, marker = STYLES.get(layout, (":", "^"))
        gated = all(r["gate"] in TIMED_VERDICTS for r in rs if (r["framework"], r["variant"]) == (fw, variant))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], ls, marker=marker, color=color,
                label=f"{fw} {variant} ({layout})" + ("" if gated else " [gate failed]"))
    limit = _limit_line(rs)
    if limit:
        ax.plot([p[0] for p in limit], [p[1] for p in limit], "-", color="black", lw=2.5, alpha=0.6,
                label=f"limit: {rs[0]['bytes_per_param']} B/param / stream GB/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("step time (ms, median)")
    ax.set_title(f"{rule} ({rs[0]['bytes_per_param'] if rs else '?'} B/param)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def _limit_line(rs: list[dict]) -> list[tuple[int, float]]:
    """(params, limit ms): the probe runs before every row, so the median per size (flat rows if any)."""
    per_n: dict[int, list[float]] = {}
    for r in [r for r in rs if r["layout"] == "flat"] or rs:
        per_n.setdefault(r["n_params"], []).append(r["limit_s"] * 1e3)
    return sorted((n, float(np.median(v))) for n, v in per_n.items())
