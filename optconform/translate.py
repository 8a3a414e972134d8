"""`optconform translate`: the native configuration of another framework that computes what a source
call computes -- exactly where one exists, else the nearest one with the divergence it causes.

Everything is built from the adapters' `Case` records (adapters/<fw>/cases.py): the source call is
resolved to a case (its native, fixed keywords and hp_map), hence to a spec rule (preset) and the
canonical hyper-parameters; the candidates are the target framework's cases of the same family.

A `Pair` (source case, target case) carries the hyper-parameter conversion. Canonical names map one to
one, except the decoupled-decay coefficient: with decay ``x lr`` (torch AdamW, Keras, optax) the shrink
is eta_t*lr_t*wd; with decay ``x eta`` (MXNet adamw_update, spec/adam.md, decay_scaling) it is
eta_t*wd', so wd' = lr*wd and the lr schedule moves into eta (eta'_t = eta_t*lr_t/lr, lr' = lr); the
reverse is wd = wd'/lr under a constant lr. A pair is *exact* when the two rules have the same maths
(reference.rules.same_maths: family and relevant knobs, after that conversion; with no decay at all
the decay knobs are irrelevant) and the target can express every hyper-parameter the source has.
Otherwise it is the *nearest*: the candidate whose float64 reference is closest to the source's on the
source's probe goldens (optconform.translate_measure), with the divergence stated.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Mapping

from optconform import registry
from optconform.adapters.base import NEUTRAL_HP, Arg, Case, Hook
from optconform.reference import get_rule
from optconform.reference.rules import same_maths

from .translate_natives import NATIVES, REQUIRED, TARGETS
from .translate_parse import NativeCall, TranslateError

#: What a native's None (or MXNet's clip_gradient=-1) means for a canonical hyper-parameter.
_NONE_MEANS: Mapping[str, Any] = {"weight_decay": 0.0, "weight_decay_exclude": (), "trust_lower_bound": 0.0,
                                  "trust_upper_bound": math.inf, "clip_value": None}
#: Decoupled decay scalings between which wd converts exactly (spec/knobs.toml, decay_scaling).
_CONVERTIBLE = ("lr", "schedule")


def canonical_value(name: str, value: Any) -> Any:
    """A native value as the spec takes it: None (and a negative clip) as the neutral value, lists as tuples."""
    if value is None or (name == "clip_value" and isinstance(value, (int, float)) and value < 0):
        return _NONE_MEANS.get(name)
    return tuple(value) if isinstance(value, list) else value


#: Values at which a hyper-parameter switches its feature off (besides adapters.base.NEUTRAL_HP).
OFF: Mapping[str, Any] = {"weight_decay": 0.0, "momentum": 0.0, "nesterov": False, "dampening": 0.0,
                          "trust_lower_bound": 0.0, "trust_upper_bound": math.inf}


def is_neutral(name: str, value: Any) -> bool:
    """Whether `value` of canonical `name` does nothing (no decay, no momentum, no clip, ...)."""
    if name in OFF:
        return value == OFF[name] or (name == "weight_decay" and not value)
    neutral = NEUTRAL_HP.get(name, object())
    return (not value) if isinstance(neutral, list) else value == neutral


@functools.cache
def target_cases(target: str) -> tuple[Case, ...]:
    """The covered cases of a target, one per native configuration (the first implementation variant)."""
    if target not in TARGETS:
        raise TranslateError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")
    seen, out = set(), []
    for case in registry.load_adapter(TARGETS[target]).cases():
        if case.native in NATIVES and (case.native, case.name) not in seen:
            seen.add((case.native, case.name))
            out.append(case)
    return tuple(out)


def _fixed(case: Case) -> dict[str, Any]:
    implementation = NATIVES[case.native].implementation
    return {k: v for k, v in case.kwargs.items() if k not in implementation}


def _spelled(case: Case, name: str) -> str:
    return NATIVES[case.native].spelled.get(name, name)


@dataclass(frozen=True)
class Configuration:
    """A native configuration: its case and canonical hyper-parameters (lr included)."""
    case: Case
    hp: Mapping[str, Any]

    @property
    def decays(self) -> bool:
        return not is_neutral("weight_decay", self.hp.get("weight_decay", 0.0))


def _canonical_hp(case: Case, given: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical hyper-parameters of `case` called with `given` (adapter spellings), the native's
    defaults for the keywords not given; TranslateError when a required keyword is missing."""
    defaults = NATIVES[case.native].defaults
    accepted = set(get_rule(case.rule).defaults) | {"lr"}
    hp: dict[str, Any] = {}
    for name, target in case.hp_map.items():
        if not isinstance(target, Arg) or name not in accepted:
            continue
        value = given.get(target.name, defaults.get(_spelled(case, target.name), REQUIRED))
        if value is REQUIRED:
            raise TranslateError(f"{case.native}: keyword {_spelled(case, target.name)!r} has no default; give it")
        hp[name] = canonical_value(name, value if target.index is None else value[target.index])
    return {**hp, **case.fixed_hp}


def _matches(case: Case, given: Mapping[str, Any]) -> bool:
    defaults = NATIVES[case.native].defaults
    fixed = _fixed(case)
    args = {t.name for t in case.hp_map.values() if isinstance(t, Arg)}
    if any(k not in fixed and k not in args for k in given):
        return False
    return all(given.get(k, defaults.get(_spelled(case, k))) == v for k, v in fixed.items())


def resolve(call: NativeCall) -> Configuration:
    """The configuration a source call denotes; TranslateError naming what is unknown or missing."""
    if call.native not in NATIVES:
        covered = sorted(name for name in NATIVES if "(" not in name)     # optax chains: targets only
        raise TranslateError(f"unknown optimizer {call.native!r}; translate covers: {', '.join(covered)}")
    native = NATIVES[call.native]
    adapter_name = {real: name for name, real in native.spelled.items()}
    given: dict[str, Any] = {}
    for keyword, value in call.kwargs.items():
        if keyword in native.implementation:
            continue
        if keyword not in native.defaults:
            raise TranslateError(f"{call.native}: unknown keyword {keyword!r}; known: {', '.join(native.defaults)}")
        given[adapter_name.get(keyword, keyword)] = value
    for case in target_cases(native.target):
        if case.native == call.native and _matches(case, given):
            return Configuration(case, _canonical_hp(case, given))
    raise TranslateError(f"{call.text()}: no configuration the suite checks has these keywords")


@dataclass(frozen=True)
class Pair:
    """A source case and a target case of the same family, with the conversion between them."""
    source: Case
    target: Case

    @property
    def scalings(self) -> tuple[str, str]:
        """(source, target) decay_scaling when both decouple their decay, else ('', '')."""
        s, t = get_rule(self.source.rule).knobs, get_rule(self.target.rule).knobs
        if s.get("decay") == t.get("decay") == "decoupled":
            return s.get("decay_scaling", ""), t.get("decay_scaling", "")
        return "", ""

    @property
    def moves_schedule(self) -> bool:
        """Whether wd converts between x lr and x eta (and the lr schedule moves into eta or out of it)."""
        s, t = self.scalings
        return s != t and s in _CONVERTIBLE and t in _CONVERTIBLE

    def target_hp(self, hp: Mapping[str, Any], lr: float) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The target's canonical hyper-parameters for the source's `hp` at base lr `lr`, and the
        names the target cannot express (dropped: set to neutral) or fixes otherwise (overridden)."""
        accepted = set(get_rule(self.target.rule).defaults) | {"lr"}
        out = {k: v for k, v in hp.items() if k in accepted}
        lost = [k for k, v in hp.items() if k not in accepted and not is_neutral(k, v)]
        if self.moves_schedule and "weight_decay" in out:
            out["weight_decay"] = out["weight_decay"] * lr if self.scalings[1] == "schedule" else out["weight_decay"] / lr
        for name, value in list(out.items()):
            if name in self.target.fixed_hp:
                if value != self.target.fixed_hp[name]:
                    lost.append(name)
                out[name] = self.target.fixed_hp[name]
            elif name not in self.target.hp_map and not is_neutral(name, value):
                lost.append(name)
                out[name] = _NONE_MEANS.get(name, NEUTRAL_HP.get(name))
        return out, tuple(lost)

    def _rules(self, decays: bool):
        s, t = get_rule(self.source.rule), get_rule(self.target.rule)
        if not decays:
            return _without_decay(s), _without_decay(t)
        return s, (t.with_knobs(decay_scaling=self.scalings[0]) if self.moves_schedule else t)

    def same_maths(self, decays: bool) -> bool:
        """Same update maths once wd is converted (decay knobs irrelevant when nothing decays)."""
        s, t = self._rules(decays)
        return s is not None and t is not None and same_maths(s, t)

    def knob_differences(self, decays: bool) -> dict[str, tuple[str | None, str | None]]:
        """Knob -> (source value, target value) for every relevant knob that differs (None: the rule
        has no such knob), after the wd conversion."""
        s, t = self._rules(decays)
        if s is None or t is None:
            return {}
        a, b = s.relevant_knobs(), t.relevant_knobs()
        return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}

    def knob_distance(self, decays: bool) -> int:
        """How many relevant knobs differ (a knob only one side has counts): the nearest has fewest."""
        if self._rules(decays)[0] is None or self._rules(decays)[1] is None:
            return 99
        return len(self.knob_differences(decays))


def _without_decay(rule):
    try:
        return rule.with_knobs(decay="none")
    except ValueError:      # a family whose decay cannot be switched off
        return None


def candidates(source: Case, target: str) -> list[Pair]:
    """Every target case of the source's family, in case order."""
    family = get_rule(source.rule).family
    return [Pair(source, case) for case in target_cases(target) if get_rule(case.rule).family == family]
