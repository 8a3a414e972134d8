"""What a translation does on the probe scenarios: the target's scenario for each source golden, the
divergence between the two float64 references, and the choice of the nearest candidate.

The probes are the goldens of the source's rule that the source case runs (optconform.plan). For a
`Pair` the target runs the same tensors and gradients with its converted hyper-parameters
(Pair.target_hp at the golden's first lr); where wd converts from x lr to x eta, the golden's lr
schedule moves into eta (lr'_t = lr_1, eta'_t = eta_t*lr_t/lr_1: the same eta_t*lr_t step and
eta_t*lr_t*wd shrink); from x eta to x lr it needs a constant lr (other goldens are skipped).

The divergence is measured between the reference of the source rule on the golden and the reference
of the target rule on its scenario, in float32 tolerance units of the source's trajectory
(reference/tolerance.py, spec/tolerance.md): the error a float32 run of the target would show against
the source's maths. Worst element over every probe, and the first step where any probe exceeds 1 unit.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable

from optconform import compare, plan
from optconform.golden.format import Golden
from optconform.reference import get_rule

from .translate import Configuration, Pair, candidates, is_neutral

#: The dtype whose tolerance units the divergence is stated in.
UNITS_DTYPE = "float32"


@dataclass(frozen=True)
class Scenario:
    """A source golden as the target runs it: the golden with the target's schedule, and the target's
    canonical hyper-parameters."""
    golden: Golden
    hp: dict


@dataclass(frozen=True)
class Measure:
    """The divergence of a pair on the probes: worst units (golden, step), first step over 1 unit."""
    units: float
    worst: str
    first: str
    probes: int
    lost: tuple[str, ...]


def probe_hp(config: Configuration, golden: Golden) -> dict:
    """The source's hyper-parameters on a probe: the golden's, with what the configuration switches
    off switched off there too (a configuration without decay runs the probes without decay)."""
    off = {k: v for k, v in config.hp.items() if is_neutral(k, v) or isinstance(v, bool)}
    return {**plan.scenario_hp(config.case.rule, golden), **off}


def source_goldens(config: Configuration) -> list[Golden]:
    """The probes: the goldens of the source rule the source case runs (the reference takes eta)
    whose switches agree with the configuration's (no Nesterov probes for heavy-ball momentum)."""
    def fits(golden: Golden) -> bool:
        hp = plan.scenario_hp(config.case.rule, golden)
        return all(hp.get(k, v) == v for k, v in config.hp.items() if isinstance(v, bool))
    return [g for g in plan.goldens_for(config.case, supports_eta=True) if fits(g)]


def scenario(pair: Pair, golden: Golden, hp: dict) -> Scenario | None:
    """The target's scenario for a source golden run with source hyper-parameters `hp` (None when the
    target cannot run it exactly: an lr schedule under an x-eta source converted to x lr)."""
    lr0 = golden.lr[0]
    target_hp, _ = pair.target_hp(hp, lr0)
    if not pair.moves_schedule:
        return Scenario(golden, target_hp)
    if pair.scalings[1] == "schedule":
        eta = tuple(e * lr / lr0 for e, lr in zip(golden.eta, golden.lr))
        moved = dataclasses.replace(golden, name=golden.name + "~eta", lr=(lr0,) * golden.steps, eta=eta)
        return Scenario(moved, target_hp)
    if len(set(golden.lr)) != 1:
        return None
    return Scenario(golden, target_hp)


def measure(pair: Pair, config: Configuration, goldens: Iterable[Golden]) -> Measure | None:
    """The divergence of the target's reference from the source's on `goldens` (None: no probe runs)."""
    knobs = get_rule(pair.source.rule).knobs
    worst = first = None
    probes, lost = 0, set()
    for golden in goldens:
        hp = probe_hp(config, golden)
        scen = scenario(pair, golden, hp)
        source = compare.expected(pair.source.rule, golden, overrides=hp)
        target = compare.expected(pair.target.rule, scen.golden, overrides=scen.hp) if scen else None
        if source is None or target is None:
            continue
        lost.update(pair.target_hp(hp, golden.lr[0])[1])
        probes += 1
        div = compare.compare(target, source, golden, UNITS_DTYPE, knobs)
        if worst is None or div.units > worst.units:
            worst = div
        early = compare.first_divergence(target, source, golden, UNITS_DTYPE, knobs)
        if early is not None and (first is None or early.step < first.step):
            first = early
    if worst is None:
        return None
    return Measure(worst.units, f"{worst.golden} step {worst.step}",
                   f"{first.golden} step {first.step}" if first else "", probes, tuple(sorted(lost)))


@dataclass(frozen=True)
class Choice:
    """The translation of a configuration to one target: the pair chosen, exact or not, its measure."""
    pair: Pair
    exact: bool
    measure: Measure


def choose(config: Configuration, target: str) -> Choice | None:
    """The exact candidate (first in case order), else the nearest; None if no candidate runs a probe."""
    goldens = source_goldens(config)
    best: Choice | None = None
    best_rank: tuple = ()
    source_class = config.case.native.rsplit(".", 1)[-1]
    for pair in candidates(config.case, target):
        lost = pair.target_hp(config.hp, config.hp.get("lr", 1.0))[1]
        exact = not lost and pair.same_maths(config.decays)
        measured = measure(pair, config, goldens)
        if measured is None:
            continue
        # exact first; then fewest hyper-parameters lost, fewest knobs apart; then the plainest call
        rank = (not exact, len(lost), 0 if exact else pair.knob_distance(config.decays),
                0 if exact else measured.units, len(getattr(pair.target, "chain", ())), len(pair.target.kwargs),
                pair.target.native.rsplit(".", 1)[-1] != source_class)
        if best is None or rank < best_rank:
            best, best_rank = Choice(pair, exact, measured), rank
    return best
