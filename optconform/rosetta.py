"""The Rosetta table: each optimizer of the issue's list, as one source call, translated to every
target -- the README's "Rosetta" section is this table (`optconform translate --rosetta`), and each
cell is proven in the target's lanes (tests/conformance/test_translations.py) and on the references
(tests/harness/test_translate.py).
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Mapping

from .translate import resolve
from .translate_measure import choose
from .translate_natives import TARGETS
from .translate_parse import parse_call
from .translate_render import summary

#: Row name -> the source call translated (the framework the recipe usually comes from).
ROWS: Mapping[str, str] = {
    "AdamW": "torch.optim.AdamW(lr=1e-3, weight_decay=0.01)",
    "Adam + L2": "torch.optim.Adam(lr=1e-3, weight_decay=0.01)",
    "SGD momentum": "torch.optim.SGD(lr=0.01, momentum=0.9)",
    "SGD Nesterov": "torch.optim.SGD(lr=0.01, momentum=0.9, nesterov=True)",
    "LAMB": "optax.lamb(learning_rate=1e-3, weight_decay=0.01)",
    "BERT": "bert.optimization.AdamWeightDecayOptimizer(learning_rate=1e-4, weight_decay_rate=0.01, "
            "exclude_from_weight_decay=['LayerNorm', 'layer_norm', 'bias'])",
}
BEGIN, END = "<!-- rosetta:begin (optconform translate --rosetta --readme README.md) -->", "<!-- rosetta:end -->"


@functools.cache
def table() -> dict[str, dict[str, dict[str, Any]]]:
    """Row -> target -> the translation summary (translate_render.summary)."""
    out = {}
    for row, source in ROWS.items():
        config = resolve(parse_call(source))
        out[row] = {target: summary(choose(config, target), config, target) for target in TARGETS}
    return out


def _cell(data: Mapping[str, Any]) -> str:
    if data["status"] == "none":
        return "—"
    call = data["call"].replace("|", "\\|")
    hooks = "".join(f" + {hook}" for hook in data["hooks"])
    where = f"case `{data['case']}`, rule `{data['rule']}`"
    if data["status"] == "exact":
        return f"`{call}`{hooks} **exact** ({where})"
    return (f"`{call}`{hooks} nearest: {data['divergence_units']:.2g} units, from {data['first_divergence'] or '-'}"
            f" ({where})")


def markdown() -> str:
    """The README block: one row per optimizer, one column per target."""
    head = ["| optimizer (source) | " + " | ".join(TARGETS) + " |", "|---" * (len(TARGETS) + 1) + "|"]
    body = [f"| {row} (`{ROWS[row]}`) | " + " | ".join(_cell(cells[t]) for t in TARGETS) + " |"
            for row, cells in table().items()]
    return "\n".join([BEGIN, *head, *body, END])


def readme_with_table(text: str) -> str:
    """`text` (the README) with its Rosetta block replaced by the current table."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"no Rosetta block ({BEGIN} ... {END}) in the README")
    return pattern.sub(lambda _: markdown(), text)


def write_readme(path: str) -> None:
    from optconform.golden.fsio import atomic_write
    file = Path(path)
    atomic_write(file, readme_with_table(file.read_text("utf-8")).encode("utf-8"))
