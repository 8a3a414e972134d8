"""What the golden corpus can see, and whether its tolerance model is honest.

- `observability()`: mutation testing of the corpus. For every preset, every knob and every other
  allowed value, the mutated rule (the preset with that one knob flipped) is run on every golden case
  of the preset; the flip is *caught* when some case deviates by >= MIN_MARGIN float32 tolerance units.
  A flip that yields the same maths (a knob that does not apply, e.g. decay_order without decoupled
  decay) is an equivalent mutant and is listed as such, not counted.
- `float32_sanity()`: the reference's own chain computed in float32 arithmetic, against the float64
  goldens, in float32 tolerance units; a correct float32 implementation must stay below 1.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from optconform.reference import families, rules, same_maths, simulate, trajectory
from optconform.reference.tolerance import error_units, power_conditioning, tolerance

from .corpus import iter_goldens
from .format import Golden

#: A flip must move some golden case by at least this many float32 tolerance units.
MIN_MARGIN = 100.0
#: Weight decay given to a mutant that adds decay to a rule without any (a hidden default, as torch
#: AdamW's 1e-2); without it the mutant would be equivalent (wd = 0).
HIDDEN_DECAY = 0.01


@dataclass(frozen=True)
class Flip:
    rule: str
    knob: str
    original: str
    flipped: str
    margin: float            # best case, in float32 tolerance units (0 when equivalent)
    caught_by: str           # golden case name with the largest margin
    equivalent: bool

    @property
    def caught(self) -> bool:
        return self.equivalent or self.margin >= MIN_MARGIN


def scalar_conditioning(golden: Golden) -> np.ndarray:
    """kappa_t of the golden's preset when its bias-correction (and NAdam schedule) scalars are computed
    in float32 from float32-rounded betas: the widest tolerance a case declaring `powers=float32` gets
    (optconform.reference.tolerance.power_conditioning; spec/tolerance.md, "Scalar precision")."""
    rule = rules()[golden.rule]
    hp = {k: v for k, v in golden.run_hp.items() if k in ("beta1", "beta2", "momentum_decay")}
    hp.update({k: float(np.float32(v)) for k, v in hp.items() if k != "momentum_decay"})
    return power_conditioning(rule.knobs, rule.family, hp, golden.steps)


def _worst_units(run_params, golden: Golden, dtype: str = "float32", scalars: bool = False) -> float:
    worst = 0.0
    knobs = golden.config["knobs"]
    cond = scalar_conditioning(golden) if scalars else None
    for name in golden.tensors:
        expected = golden.params[name]
        if expected.size == 0:
            continue
        units = error_units(run_params[name], expected, tolerance(expected, dtype, knobs, cond, golden.run_hp))
        worst = max(worst, float(np.max(units)))
    return worst


def _goldens_by_rule() -> dict[str, list[Golden]]:
    by_rule: dict[str, list[Golden]] = defaultdict(list)
    for golden in iter_goldens():
        by_rule[golden.rule].append(golden)
    return by_rule


def observability(scalars: bool = False) -> list[Flip]:
    """One Flip per (preset, knob, other value). `scalars`: margins under the tolerance of a native
    case whose bias-correction scalars are float32 (`scalar_conditioning`), which must also catch
    every flip."""
    by_rule = _goldens_by_rule()
    fams = families()
    flips = []
    for name, rule in rules().items():
        for knob, allowed in fams[rule.family].knobs.items():
            for value in allowed:
                if value == rule.knobs[knob]:
                    continue
                mutant = rule.with_knobs(**{knob: value})
                if same_maths(mutant, rule):
                    flips.append(Flip(name, knob, rule.knobs[knob], value, 0.0, "", True))
                    continue
                best, best_case = 0.0, ""
                for golden in by_rule[name]:
                    hp = {k: v for k, v in golden.run_hp.items() if k in mutant.defaults}
                    if rule.knobs["decay"] == "none" and "weight_decay" in mutant.defaults:
                        hp["weight_decay"] = HIDDEN_DECAY
                    run = trajectory(mutant, dict(golden.params0), list(golden.grads), **hp)
                    units = _worst_units(run.params, golden, scalars=scalars)
                    if units > best:
                        best, best_case = units, golden.name
                flips.append(Flip(name, knob, rule.knobs[knob], value, best, best_case, False))
    return flips


@dataclass(frozen=True)
class Sanity:
    case: str
    worst_units: float
    worst_ulps: float


def float32_sanity() -> list[Sanity]:
    """The reference chain in float32 arithmetic vs every float64 golden trajectory."""
    from optconform.reference.tolerance import ulps
    rows = []
    for golden in iter_goldens():
        run = simulate(golden.rule, dict(golden.params0), list(golden.grads), np.float32, **golden.run_hp)
        worst_ulps = max((float(np.max(ulps(run.params[n], golden.params[n], "float32")))
                          for n in golden.tensors if golden.params[n].size), default=0.0)
        rows.append(Sanity(golden.name, _worst_units(run.params, golden), worst_ulps))
    return rows


def format_observability(flips: list[Flip]) -> str:
    lines = [f"{'rule':22} {'knob':18} {'flip':34} {'margin (x f32 tol)':>18}  caught by"]
    for f in flips:
        flip = f"{f.original} -> {f.flipped}"
        if f.equivalent:
            lines.append(f"{f.rule:22} {f.knob:18} {flip:34} {'equivalent':>18}  (knob does not apply)")
        else:
            mark = "" if f.caught else "   <-- NOT CAUGHT"
            lines.append(f"{f.rule:22} {f.knob:18} {flip:34} {f.margin:18.3g}  {f.caught_by}{mark}")
    real = [f for f in flips if not f.equivalent]
    caught = sum(f.caught for f in real)
    lines.append(f"{caught}/{len(real)} knob flips caught with margin >= {MIN_MARGIN:g}x "
                 f"({len(flips) - len(real)} equivalent flips listed, not counted); "
                 f"smallest margin {min(f.margin for f in real):.3g}x")
    return "\n".join(lines)


def format_sanity(rows: list[Sanity]) -> str:
    rows = sorted(rows, key=lambda r: -r.worst_units)
    lines = [f"{'golden case':48} {'worst (f32 tol units)':>22} {'worst ULPs':>12}"]
    lines += [f"{r.case:48} {r.worst_units:22.3g} {r.worst_ulps:12.3g}" for r in rows[:15]]
    lines.append(f"... {len(rows)} cases; worst {rows[0].worst_units:.3g} tolerance units "
                 f"(median {float(np.median([r.worst_units for r in rows])):.3g})")
    return "\n".join(lines)
