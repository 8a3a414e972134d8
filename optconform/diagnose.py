"""What `check` can say about an optimizer beyond "it diverges", without asserting what it did not
establish (issue 16).

- `unseen_knobs`: the knob flips of the claimed rule that no probe the factory ran can see; `check`
  refuses to pass on such probes (a wrong value of that knob would have passed too).
- `patterns`: which probes diverge and when, and what the pattern suggests: divergence only where the
  gradient norm (or ||w||) exceeds what every conforming probe saw (clipping, a cap), only with one
  hyper-parameter value, only where the lr changes; weights that never move; errors at the rounding
  level of a lower precision.
- `verified_hints`: built-in settings seen in the wild (a clip threshold, a trust-ratio cap) tried
  against the reference; a hint is printed only when the rule with that setting reproduces every probe.

Every statement is a measured fact about the probes that ran (spec/tolerance.md for the units).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from optconform.reference.precision import ScalarPrecision
from optconform.golden.format import Golden
from optconform.reference import families, get_rule, same_maths
from optconform.reference.tolerance import TINY, error_units, tolerance

from . import compare

#: A knob flip is seen when it moves some probe that ran by at least this many tolerance units of the
#: check's dtype (an optimizer within 1 unit of the rule is then >= 9 units from the flipped rule).
VISIBLE_UNITS = 10.0
#: Weight decay given to a flip that adds decay to a rule without any (golden/audit.HIDDEN_DECAY).
HIDDEN_DECAY = 0.01
_DECAY_KNOBS = ("decay", "decay_scaling", "decay_order", "clip_scope", "trust_ratio_scope")
#: Settings third-party optimizers ship switched on, tried as --hp overrides (golden/wild.py has sources).
BUILT_IN = (("clip_global_norm", (0.5, 1.0, 5.0, 10.0)), ("clip_norm", (0.5, 1.0, 5.0, 10.0)),
            ("trust_upper_bound", (1.0, 10.0, 100.0)))

Runs = Sequence[tuple[Golden, Mapping[str, np.ndarray]]]


def _moves(a: Mapping[str, np.ndarray] | None, b: Mapping[str, np.ndarray] | None, golden: Golden,
           dtype: str, knobs) -> float:
    """How far trajectory a is from b on `golden`, in tolerance units of b (inf if a cannot run)."""
    if a is None or b is None:
        return float("inf") if a is None and b is not None else 0.0
    return compare.compare(a, b, golden, dtype, knobs).units


def unseen_knobs(rule_name: str, ran: Sequence[Golden], dtype: str, overrides: Mapping[str, Any],
                 precision: ScalarPrecision | None = None) -> list[str]:
    """`knob=value` for every flip of the rule's knobs that moves no golden in `ran` by VISIBLE_UNITS.

    Flips with the same maths (a knob that does not apply) are not flips; clip_scope is skipped when no
    probe clips, the decay knobs when every probe that ran has weight_decay = 0 (the optimizer then
    shows no decay to classify). A flip that adds decay to a rule without any gets HIDDEN_DECAY, as in
    the corpus audit (golden/audit.py)."""
    rule = get_rule(rule_name)
    hp = [compare.reference_hp(rule.name, g, overrides) for g in ran]
    clipped = any(h.get(k) is not None for h in hp for k in ("clip_value", "clip_norm", "clip_global_norm"))
    no_decay = rule.knobs["decay"] != "none" and all(not h.get("weight_decay") for h in hp)
    unseen = []
    for knob, values in families()[rule.family].knobs.items():
        if (knob == "clip_scope" and not clipped) or (knob in _DECAY_KNOBS and no_decay):
            continue
        for value in values:
            mutant = rule.with_knobs(**{knob: value}) if value != rule.knobs[knob] else None
            if mutant is None or same_maths(mutant, rule):
                continue
            extra = dict(overrides)
            if rule.knobs["decay"] == "none" and "weight_decay" in mutant.defaults:
                extra.setdefault("weight_decay", HIDDEN_DECAY)
            if not any(_moves(compare.expected(mutant.name, g, precision, extra),
                              compare.expected(rule.name, g, precision, overrides), g, dtype, rule.knobs)
                       >= VISIBLE_UNITS for g in ran):
                unseen.append(f"{knob}={value}")
    return unseen


@dataclass(frozen=True)
class ProbeOutcome:
    golden: Golden
    native: Mapping[str, np.ndarray]
    expected: Mapping[str, np.ndarray]
    first_step: int | None          # first step out of tolerance (None: conforms)


def _global_grad_norms(golden: Golden) -> np.ndarray:
    """||g_t|| over every tensor, t = 1..T (index t-1)."""
    return np.array([np.sqrt(sum(float(np.sum(np.square(g[n], dtype=np.float64))) for n in golden.tensors))
                     for g in golden.grads])


def _weight_norms(golden: Golden, expected: Mapping[str, np.ndarray]) -> np.ndarray:
    """The largest per-tensor ||w_{t-1}|| the step t sees (reference weights), t = 1..T."""
    norms = [np.sqrt(np.sum(np.square(np.asarray(expected[n], dtype=np.float64)[:-1]).reshape(golden.steps, -1),
                            axis=1)) for n in golden.tensors]
    return np.max(np.stack(norms), axis=0) if norms else np.zeros(golden.steps)


def _lr_changes(golden: Golden) -> np.ndarray:
    """1 at steps t where lr_t*eta_t differs from the first step's, else 0."""
    step = np.asarray(golden.lr, dtype=np.float64) * np.asarray(golden.eta, dtype=np.float64)
    return (step != step[0]).astype(float)


_QUANTITIES = (
    ("the global gradient norm ||g||", lambda o: _global_grad_norms(o.golden),
     "gradient clipping (by norm) with a threshold in that range"),
    ("the largest ||w|| of a tensor", lambda o: _weight_norms(o.golden, o.expected),
     "a cap on ||w|| (in a trust ratio: trust_upper_bound in that range)"),
)


def _separates(outcomes: Sequence[ProbeOutcome], series, positive: bool = True) -> tuple[float, float] | None:
    """(highest value any conforming probe reaches, lowest value every diverging probe reaches at or
    before its first divergence) when the first is below the second, else None; `positive`: only when
    some conforming probe reaches a value above 0 (a norm of 0 everywhere tells nothing)."""
    conforming = [float(np.max(series(o), initial=0.0)) for o in outcomes if o.first_step is None]
    diverging = [float(np.max(series(o)[: max(o.first_step, 1)], initial=0.0)) for o in outcomes
                 if o.first_step is not None]
    if not conforming or not diverging or (positive and max(conforming) <= 0.0):
        return None
    low, high = max(conforming), min(diverging)
    return (low, high) if low < high else None


def _hp_pattern(outcomes: Sequence[ProbeOutcome], rule_name: str) -> str:
    """A hyper-parameter value every diverging probe has and no conforming probe has."""
    from .plan import scenario_hp
    hp = [(o, scenario_hp(rule_name, o.golden)) for o in outcomes]
    for name in sorted({k for _, h in hp for k in h}):
        bad = {repr(h.get(name)) for o, h in hp if o.first_step is not None}
        good = {repr(h.get(name)) for o, h in hp if o.first_step is None}
        if len(bad) == 1 and good and not bad & good:
            return (f"only probes with {name}={next(iter(bad))} diverge (no conforming probe has that value): "
                    f"the optimizer treats that value specially")
    return ""


def _precision_hint(outcomes: Sequence[ProbeOutcome], dtype: str) -> str:
    """The lowest precision whose tolerance covers every error, when it is below the check's dtype."""
    order = [d for d in ("float32", "bfloat16", "float16") if TINY[d] > TINY.get(dtype, 0.0)]
    for lower in order:
        worst = max(float(np.max(error_units(np.asarray(o.native[n], np.float64), np.asarray(o.expected[n], np.float64),
                                             tolerance(np.asarray(o.expected[n], np.float64), lower, o.golden.config["knobs"],
                                                       hp=o.golden.run_hp)),
                                 initial=0.0))
                    for o in outcomes for n in o.golden.tensors if np.size(o.expected[n]))
        if worst <= 1.0:
            return (f"errors at {lower} rounding level: every trajectory is within the {lower} tolerance "
                    f"({worst:.3g} units): the optimizer computes in {lower}; try --dtype {lower}")
    return ""


def patterns(outcomes: Sequence[ProbeOutcome], rule_name: str, dtype: str) -> list[str]:
    """Lines: which probes diverge and when, then each pattern that holds."""
    bad = [o for o in outcomes if o.first_step is not None]
    if not bad:
        return []
    good = [o.golden.name for o in outcomes if o.first_step is None]
    lines = ["diverging probes: " + ", ".join(f"{o.golden.name} (from step {o.first_step})" for o in bad[:8])
             + (f", ... ({len(bad)} in all)" if len(bad) > 8 else "")
             + (f"; conforming: {', '.join(good[:8])}" + (f", ... ({len(good)} in all)" if len(good) > 8 else "")
                if good else "; none conforms")]
    if all(np.array_equal(np.asarray(o.native[n]), np.broadcast_to(np.asarray(o.native[n])[0], np.shape(o.native[n])))
           for o in outcomes for n in o.golden.tensors):
        lines.append("the weights never change: the optimizer's step does nothing (no rule of the spec does that)")
        return lines
    for what, series, means in _QUANTITIES:
        found = _separates(outcomes, series)
        if found:
            lines.append(f"only where {what} exceeds {found[0]:.3g}: every diverging probe reaches >= {found[1]:.3g} "
                         f"at or before its first divergence, every probe that stays <= {found[0]:.3g} conforms; "
                         f"looks like {means}")
    if _separates(outcomes, lambda o: _lr_changes(o.golden), positive=False):
        lines.append("only where the lr changes during the probe: the optimizer reads the lr schedule differently "
                     "(an lr cached at construction, decay x lr/lr0, ...)")
    for text in (_hp_pattern(outcomes, rule_name), _precision_hint(outcomes, dtype)):
        if text:
            lines.append(text)
    return lines


def verified_hints(runs: Runs, rule_name: str, dtype: str, overrides: Mapping[str, Any],
                   precision: ScalarPrecision | None = None) -> list[str]:
    """`--hp NAME=VALUE` settings from BUILT_IN with which the rule reproduces every run (<= 1 unit)."""
    rule = get_rule(rule_name)
    out = []
    for name, values in BUILT_IN:
        if name not in rule.defaults or name in overrides:
            continue
        for value in values:
            if compare.worst_units(rule.name, runs, dtype, precision, {**overrides, name: value},
                                   stop=lambda units: units > 1.0) <= 1.0:
                out.append(f"with --hp {name}={value:g} it conforms to {rule.name!r} on every probe that ran: "
                           f"the optimizer has that setting built in")
                break
    return out
