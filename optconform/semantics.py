"""The semantics axis of a verdict: which rule a native case implements, separated from its precision.

`compare.match` scores every candidate rule (the claimed one and every preset of its family) by its
worst error against the native runs, in tolerance units. The semantics are *identified* when the best
candidate is separated from the runner-up by at least SEPARATION (the ratio runner-up / max(best, 1)),
whether or not the best one is within tolerance: a float32 run that is 6 units off `adamw_eps_hat` and
4e5 units off every other preset implements `adamw_eps_hat`'s maths with a precision problem, not an
unknown rule. SEPARATION = 100 is the observability audit's MIN_MARGIN (spec/tolerance.md): every knob
flip of every preset moves some golden by at least 100 float32 tolerance units, so two rules closer
than that are not told apart by the probes.

Candidates whose float64 references coincide on every golden the case ran (within one float64
tolerance unit) are *equivalent* for this configuration — e.g. coupled L2 and decoupled x lr decay
for SGD without momentum, or every decay order with wd = 0 — and are listed, never counted as the
runner-up (spec/README.md, "Weight-decay taxonomy": same maths); so are the decay kinds of a rule's
own canonical knob vector (plain SGD's coupled L2 is decoupled x lr).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from optconform.reference import get_rule

from . import compare

#: Runner-up / best error ratio from which a match names the rule (the audit's MIN_MARGIN).
SEPARATION = 100.0


@dataclass
class Semantics:
    status: str                     # identified | equivalent | ambiguous | unknown
    rule: str                       # the best candidate ("" when no candidate could be scored)
    decay_kind: str                 # its decay kind, or "unknown"
    units: float                    # the best candidate's worst error (tolerance units)
    runner_up: str = ""             # the best candidate that is neither the rule nor equivalent to it
    runner_up_units: float = math.inf
    separation: float = math.inf    # runner_up_units / max(units, 1)
    equivalent_rules: list[str] = field(default_factory=list)
    equivalent_decay_kinds: list[str] = field(default_factory=list)
    #: goldens left out of the judgement: no candidate fits them and none is separated there
    #: (`informative`); their failure is on the precision axis
    uninformative_goldens: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("units", "runner_up_units", "separation"):
            value = data[key]
            data[key] = value if math.isfinite(value) else (None if math.isnan(value) else "inf")
        return data

    def label(self) -> str:
        """The decay column: the decay kind, with equivalent readings, e.g.
        'coupled (L2) = decoupled x lr (equivalent)'."""
        kinds = [self.decay_kind] + [k for k in self.equivalent_decay_kinds if k != self.decay_kind]
        text = " = ".join(kinds)
        return text + " (equivalent)" if len(kinds) > 1 else text


def equivalent(a: str, b: str, goldens: Sequence) -> bool:
    """Whether the float64 references of rules `a` and `b` coincide (<= 1 float64 tolerance unit, with
    the knobs of `a`) on every golden scenario in `goldens`: the same maths for this configuration."""
    knobs = get_rule(a).knobs
    for golden in goldens:
        ea, eb = compare.expected(a, golden), compare.expected(b, golden)
        if ea is None or eb is None:
            return False
        if compare.compare(eb, ea, golden, "float64", knobs).units > 1.0:
            return False
    return True


def informative(units: Mapping[str, Sequence[float]]) -> list[int]:
    """Indices of the runs that can tell candidates apart: a run on which no candidate fits (> 1 unit)
    and the best two are within SEPARATION of each other (or every candidate is infinitely off: a
    NaN/Inf native output) carries no information about *which* maths the case implements — it is a
    defect or precision problem of its own, judged on the precision axis."""
    keep = []
    for i in range(len(next(iter(units.values()), []))):
        col = sorted(u[i] for u in units.values())
        best, second = col[0], (col[1] if len(col) > 1 else math.inf)
        if best <= 1.0 or (math.isfinite(best) and second >= SEPARATION * best):
            keep.append(i)
    return keep


def identify_runs(units: Mapping[str, Sequence[float]], claimed: str, runs: Sequence) -> tuple[Semantics, list[str]]:
    """Semantics from per-run candidate errors (compare.per_golden), judged on the informative runs
    (all of them when none is); also the names of the goldens left out."""
    keep = informative(units) or list(range(len(runs)))
    scores = {name: max((u[i] for i in keep), default=0.0) for name, u in units.items()}
    best = compare.best_of(scores, claimed)
    sem = identify(scores, best, [runs[i] for i in keep])
    sem.uninformative_goldens = [runs[i][0].name for i in range(len(runs)) if i not in keep]
    return sem, sem.uninformative_goldens


def identify(scores: Mapping[str, float], best: str, runs: Sequence) -> Semantics:
    """The semantics of native `runs` ((golden, params) pairs) from the candidates' `scores`
    (compare.match) and the best candidate `best`."""
    best_units = scores[best]
    if not math.isfinite(best_units):
        return Semantics("unknown", best, "unknown", best_units, separation=math.nan)
    scale = max(best_units, 1.0)
    goldens = [golden for golden, _ in runs]
    close = sorted((n for n in scores if n != best and scores[n] < SEPARATION * scale), key=lambda n: scores[n])
    same = [n for n in close if equivalent(best, n, goldens)]
    others = sorted((scores[n], n) for n in scores if n != best and n not in same)
    kinds = {compare.decay_kind(n) for n in same} | {_canonical_kind(best)}
    sem = Semantics("identified", best, compare.decay_kind(best), best_units, equivalent_rules=same,
                    equivalent_decay_kinds=sorted(kinds - {compare.decay_kind(best)}))
    if others:
        sem.runner_up_units, sem.runner_up = others[0]
        sem.separation = sem.runner_up_units / scale
    if sem.separation < SEPARATION:
        rivals = [n for units, n in others if units < SEPARATION * scale]
        rival_kinds = {compare.decay_kind(n) for n in [best, *rivals]}
        # within tolerance of the best but not 100x from a rival: the probes cannot tell them apart
        # (e.g. bfloat16, whose tolerance is 2^16 float32's); out of tolerance as well: unknown
        sem.status = "ambiguous" if best_units <= 1.0 else "unknown"
        if len(rival_kinds) > 1:
            sem.decay_kind = "unknown"
    elif sem.equivalent_decay_kinds or same:
        sem.status = "equivalent"
    return sem


def _canonical_kind(rule_name: str) -> str:
    """The decay kind of a rule's canonical knob vector (reference.rules.relevant_knobs folds the same
    maths: plain SGD's coupled L2 is the lr-scaled pre-step shrink)."""
    rule = get_rule(rule_name)
    return compare.decay_kind_of({**rule.knobs, **rule.relevant_knobs()})
