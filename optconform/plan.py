"""Which golden cases a native case runs, and what exactly it is fed.

A case runs the goldens of the rule it claims whose hyper-parameters it can express: every
non-neutral hyper-parameter must be mapped by the case or equal its `fixed_hp`. A case may claim a
derived rule `preset[knob=value,...]`: it then runs the goldens of the preset as scenarios, with the
golden's hyper-parameters completed by the derived rule's defaults, and is compared with the
reference run of the derived rule (optconform.compare.expected). The schedule
multiplier eta is folded into lr (lr_t <- eta_t*lr_t) for frameworks without one, which is exact
for every rule whose decay is not scaled by eta alone (spec: the step is eta_t*lr_t*d; lr-scaled decay
is eta_t*lr_t*wd, unscaled decay ignores both).
"""
from __future__ import annotations

import functools
from typing import Any, Iterable

from optconform.adapters.base import NEUTRAL_HP, Case, RunInput
from optconform.golden.corpus import iter_goldens
from optconform.golden.format import Golden
from optconform.reference import get_rule


@functools.cache
def all_goldens() -> tuple[Golden, ...]:
    """The installed corpus, read once per process."""
    return tuple(iter_goldens())


def is_neutral(name: str, value: Any) -> bool:
    if name not in NEUTRAL_HP:
        return False
    neutral = NEUTRAL_HP[name]
    if isinstance(neutral, list):
        return not value
    return value == neutral


def _eta_folds(rule_name: str) -> bool:
    knobs = get_rule(rule_name).relevant_knobs()
    return knobs.get("decay_scaling") != "schedule"


def scenario_hp(rule_name: str, golden: Golden) -> dict[str, Any]:
    """The golden's hyper-parameters (lr, eta excluded) as `rule_name` takes them: names the rule does
    not accept dropped, names it needs but the golden lacks filled with the rule's defaults."""
    rule = get_rule(rule_name)
    hp = {k: v for k, v in golden.hp.items() if k in rule.defaults}
    for name, value in rule.defaults.items():
        if name not in hp and name not in ("lr", "eta"):
            hp[name] = list(value) if isinstance(value, tuple) else value
    return hp


def base_rule(rule_name: str) -> str:
    """The preset whose goldens a (possibly derived) rule runs."""
    rule = get_rule(rule_name)
    return rule.base or rule.name


def runnable(case: Case, golden: Golden, supports_eta: bool = False) -> bool:
    """Whether `case` can run `golden` (its rule's preset, expressible hyper-parameters)."""
    if golden.rule != base_rule(case.rule):
        return False
    ndims = getattr(case, "tensor_ndims", None)
    if ndims is not None and any(len(golden.params0[n].shape) not in ndims for n in golden.tensors):
        return False
    for name, value in scenario_hp(case.rule, golden).items():
        if name in case.fixed_hp:
            if value != case.fixed_hp[name]:
                return False
        elif name not in case.hp_map and not is_neutral(name, value):
            return False
    if any(e != 1.0 for e in golden.eta) and not supports_eta and not _eta_folds(case.rule):
        return False
    return True


def goldens_for(case: Case, supports_eta: bool = False, goldens: Iterable[Golden] | None = None) -> list[Golden]:
    """The goldens `case` runs, in corpus order."""
    return [g for g in (all_goldens() if goldens is None else goldens) if runnable(case, g, supports_eta)]


def run_input(case: Case, golden: Golden, supports_eta: bool = False) -> RunInput:
    """What the adapter receives for `golden`: eta folded into lr unless the framework takes eta."""
    lr, eta = golden.lr, golden.eta
    if not supports_eta:
        lr, eta = tuple(float(a * b) for a, b in zip(lr, eta)), tuple(1.0 for _ in eta)
    hp = {k: v for k, v in scenario_hp(case.rule, golden).items() if not is_neutral(k, v) or k in case.hp_map}
    return RunInput(tensors=golden.tensors, params0=golden.params0, grads=golden.grads, lr=lr, eta=eta, hp=hp)
