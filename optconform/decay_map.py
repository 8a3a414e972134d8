"""The weight-decay map: every native optimizer configuration with weight decay, across every lane of
a (merged) results document, with the decay the runs identified and the knobs of the matched preset
(spec/knobs.toml: decay, decay_scaling, decay_order, eps_placement, bias_correction). Generated from
results rows, never written by hand: as markdown (the README embeds it between MARKERS), as HTML
rows and as a figure.

A configuration's preset is the `matched_rule` of its rows whose semantics are identified or
equivalent (runner-up >= 100x further, spec/results-format.md); where no dtype identifies it the
map says 'unresolved (nearest X)'. Configurations whose decay is 'none' (no weight decay set) are
counted, not listed."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable

from optconform.matrix import decay_text

COLUMNS = ("lanes", "native configuration", "decay kind", "scaling", "order", "eps placement", "bias correction",
           "matched preset")
#: README.md markers around the generated table
MARKERS = ("<!-- decay-map:begin (generated: tools/update-decay-map) -->", "<!-- decay-map:end -->")
#: verdicts whose rows carry no semantics
NOT_RUN = ("error", "unavailable", "not-installed", "n/a", "no-goldens")
NOT_APPLICABLE = "—"


@dataclass(frozen=True)
class MapRow:
    lanes: str
    native: str
    config: str
    decay_kind: str
    scaling: str
    order: str
    eps_placement: str
    bias_correction: str
    preset: str

    def cells(self) -> list[str]:
        return [self.lanes, f"{self.native} · {self.config}", self.decay_kind, self.scaling, self.order,
                self.eps_placement, self.bias_correction, self.preset]


@dataclass(frozen=True)
class DecayMap:
    rows: list[MapRow]
    without_decay: int          # configurations whose identified decay is 'none'


def build(results: Iterable[dict[str, Any]]) -> DecayMap:
    """The map of a results document's rows: one MapRow per (native, case name), lanes that agree
    merged into one row (e.g. 'tensorflow, keras-jax')."""
    groups: "OrderedDict[tuple, list]" = OrderedDict()
    for r in results:
        if r.get("verdict") not in NOT_RUN and r.get("matched_rule"):
            groups.setdefault((r["framework"], r.get("native") or "", r.get("name") or r["case"]), []).append(r)
    merged: "OrderedDict[tuple, list[str]]" = OrderedDict()
    without = set()
    for (lane, native, config), items in groups.items():
        row = _configuration(native, config, items)
        if row is None:
            without.add((native, config))
            continue
        merged.setdefault(tuple(row.cells()[1:]), []).append(lane)
    rows = [MapRow(", ".join(lanes), *_split(key)) for key, lanes in merged.items()]
    rows.sort(key=lambda r: (r.decay_kind, r.lanes, r.native, r.config))
    return DecayMap(rows, len(without))


def _split(key: tuple[str, ...]) -> list[str]:
    native, config = key[0].split(" · ", 1)
    return [native, config, *key[1:]]


def _configuration(native: str, config: str, items: list[dict[str, Any]]) -> MapRow | None:
    """One configuration's row, from its identified rows (identified before equivalent), or None
    when its decay is 'none'."""
    by_status = {s: [r for r in items if (r.get("semantics") or {}).get("status") == s]
                 for s in ("identified", "equivalent")}
    named = by_status["identified"] or by_status["equivalent"]
    if not named:
        nearest = sorted({r["matched_rule"] for r in items})
        kinds = sorted({r.get("decay_kind") or "unknown" for r in items})
        return MapRow("", native, config, " / ".join(kinds), "?", "?", "?", "?",
                      f"unresolved (nearest {' / '.join(nearest)})")
    if {r.get("decay_kind") for r in named} == {"none"}:
        return None
    presets = sorted({r["matched_rule"] for r in named})
    kinds = sorted({decay_text(r) for r in named})
    knobs = [_knobs(p) for p in presets]
    column = lambda name: " / ".join(sorted({k[name] for k in knobs}))  # noqa: E731
    return MapRow("", native, config, " / ".join(kinds), column("scaling"), column("order"), column("eps"),
                  column("bias_correction"), " / ".join(presets))


def _knobs(preset: str) -> dict[str, str]:
    """The map's knob columns of a preset: decay scaling and order apply only to decoupled decay."""
    from optconform.reference import get_rule
    knobs = get_rule(preset).relevant_knobs()
    decoupled = knobs.get("decay") == "decoupled"
    return {"scaling": knobs.get("decay_scaling", NOT_APPLICABLE) if decoupled else NOT_APPLICABLE,
            "order": knobs.get("decay_order", NOT_APPLICABLE) if decoupled else NOT_APPLICABLE,
            "eps": knobs.get("eps_placement", NOT_APPLICABLE),
            "bias_correction": knobs.get("bias_correction", NOT_APPLICABLE)}


def markdown(found: DecayMap) -> str:
    """The map as a GitHub markdown table, with a line counting the configurations left out."""
    esc = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in found.rows:
        cells = [esc(row.lanes), f"`{esc(row.native)}` {esc(row.config)}", *map(esc, row.cells()[2:7]),
                 f"`{esc(row.preset)}`"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"{len(found.rows)} configurations with weight decay; {found.without_decay} configurations "
                 "without weight decay are not listed. Scaling and order apply to decoupled decay only (—).")
    return "\n".join(lines) + "\n"


def embed(readme: str, table: str) -> str:
    """README text with the table between MARKERS; ValueError when the markers are missing."""
    begin, end = MARKERS
    if readme.count(begin) != 1 or readme.count(end) != 1 or readme.index(begin) > readme.index(end):
        raise ValueError(f"the README needs one {begin!r} line and one {end!r} line after it")
    head, rest = readme.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{table}{end}{tail}"
