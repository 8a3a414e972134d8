"""The weight-decay map as a figure (matplotlib): one row per configuration of decay_map.build, one
column per knob (decay kind, scaling, order, eps placement, bias correction), each cell coloured by
its value and labelled with it; the matched preset is the right-hand label."""
from __future__ import annotations

import io

from optconform.decay_map import DecayMap

KNOB_COLUMNS = ("decay kind", "scaling", "order", "eps placement", "bias correction")


def png(found: DecayMap) -> bytes:
    """The figure as PNG bytes; RuntimeError when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("the decay-map figure needs matplotlib (pip install 'optconform[report]')") from exc
    values = [[r.decay_kind, r.scaling, r.order, r.eps_placement, r.bias_correction] for r in found.rows]
    palette = plt.get_cmap("tab20").colors
    codes: dict[str, int] = {}
    fig_height = 0.9 + 0.24 * max(len(values), 1)
    fig, ax = plt.subplots(figsize=(13, fig_height))
    for y, row in enumerate(values):
        for x, value in enumerate(row):
            colour = "#eeeeee" if value in ("—", "?") else palette[codes.setdefault(value, len(codes)) % len(palette)]
            ax.add_patch(plt.Rectangle((x * 2.2, y), 2.15, 0.92, color=colour))
            ax.text(x * 2.2 + 1.07, y + 0.46, value[:30], ha="center", va="center", fontsize=6)
    ax.set_xlim(0, 2.2 * len(KNOB_COLUMNS))
    ax.set_ylim(len(values), 0)
    ax.set_xticks([x * 2.2 + 1.07 for x in range(len(KNOB_COLUMNS))], KNOB_COLUMNS, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([y + 0.46 for y in range(len(values))],
                  [f"{r.lanes}: {r.native.rsplit('.', 1)[-1]} {r.config}"[:60] for r in found.rows], fontsize=6)
    right = ax.secondary_yaxis("right")
    right.set_yticks([y + 0.46 for y in range(len(values))], [r.preset[:45] for r in found.rows], fontsize=6)
    for spine in (*ax.spines.values(), *right.spines.values()):
        spine.set_visible(False)
    ax.tick_params(length=0)
    right.tick_params(length=0)
    ax.set_title("Weight decay across frameworks (generated from results JSON)", fontsize=9, pad=22)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return _palette(buf.getvalue())


def _palette(png_bytes: bytes) -> bytes:
    """The PNG with a 256-colour palette (Pillow: a matplotlib dependency), about a third of the size."""
    from PIL import Image
    out = io.BytesIO()
    Image.open(io.BytesIO(png_bytes)).convert("RGB").quantize(256).save(out, format="png", optimize=True)
    return out.getvalue()
