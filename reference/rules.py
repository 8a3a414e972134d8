"""Rules: named presets over the semantic knobs, loaded from the machine-readable spec.

The spec files `spec/knobs.toml` and `spec/rules.toml` are the single source of the knob axes,
the families and the presets; this module only parses and validates them. A rule is
``family + knob values + default hyper-parameters``; a *derived* rule is written
``name[knob=value,...]`` and changes knobs of a preset (its defaults stay those of the preset).
"""
from __future__ import annotations

import functools
import math
import numbers
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Mapping

#: Hyper-parameters every rule accepts, with their defaults (None = off).
UNIVERSAL_HP: Mapping[str, Any] = MappingProxyType({
    "eta": 1.0,               # schedule multiplier eta_t (Loshchilov & Hutter), scalar or one per step
    "rescale_grad": 1.0,      # g <- rescale_grad*g first (MXNet)
    "clip_value": None,       # elementwise clip to [-c, c] (MXNet clip_gradient, Keras clipvalue)
    "clip_norm": None,        # per-tensor g <- g*c/max(||g||, c) (Keras clipnorm)
    "clip_global_norm": None,  # all tensors g <- g*c/max(||G||, c) (Keras global_clipnorm)
})

#: Hyper-parameters accepted by every rule that has weight decay.
DECAY_HP: Mapping[str, Any] = MappingProxyType({
    "weight_decay": 0.0,
    "weight_decay_exclude": (),   # regexes; re.search on the tensor name excludes it (BERT)
    "weight_decay_mask": None,    # tensor name -> bool, False excludes it (optax mask)
})

#: Hyper-parameters that may be given once per step.
PER_STEP_HP = ("lr", "eta")


@dataclass(frozen=True)
class Knob:
    """One semantic axis: its allowed values (with their maths) and when it matters."""
    name: str
    doc: str
    values: Mapping[str, str]
    applies_when: Mapping[str, str]


@dataclass(frozen=True)
class Family:
    """An algorithm family: the knobs it exposes and its base hyper-parameters."""
    name: str
    doc: str
    page: str
    knobs: Mapping[str, tuple[str, ...]]      # knob -> allowed values
    knob_defaults: Mapping[str, str]
    hp: Mapping[str, Any]
    extra_hp: Mapping[str, Mapping[str, Any]]  # group name -> hp added by a knob value


@dataclass(frozen=True)
class Rule:
    """A named preset: a family, one value per knob, and default hyper-parameters."""
    name: str
    family: str
    doc: str
    knobs: Mapping[str, str]
    defaults: Mapping[str, Any]
    mirrors: tuple[str, ...] = ()
    cite: tuple[str, ...] = ()
    base: str | None = None          # the preset a derived rule came from
    overrides: Mapping[str, str] = field(default_factory=dict)

    def relevant_knobs(self) -> dict[str, str]:
        """The knob values that change the maths; knobs whose `applies_when` fails are dropped."""
        return relevant_knobs(self.knobs, self.family)

    def with_knobs(self, **changes: str) -> "Rule":
        """A derived rule: this preset with some knobs changed (validated)."""
        return derive(self.base or self.name, {**self.overrides, **changes})


@functools.cache
def _spec() -> tuple[dict[str, Knob], dict[str, Family], dict[str, dict]]:
    root = resources.files("optconform.spec")
    knob_doc = tomllib.loads(root.joinpath("knobs.toml").read_text("utf-8"))
    rule_doc = tomllib.loads(root.joinpath("rules.toml").read_text("utf-8"))
    knobs = {name: Knob(name, k["doc"], MappingProxyType(dict(k["values"])),
                        MappingProxyType(dict(k.get("applies_when", {}))))
             for name, k in knob_doc["knobs"].items()}
    families = {}
    for name, f in knob_doc["families"].items():
        allowed = {k: tuple(v["values"]) for k, v in f["knobs"].items()}
        for knob, values in allowed.items():
            unknown = set(values) - set(knobs[knob].values)
            if unknown:
                raise ValueError(f"spec/knobs.toml: family {name!r} lists unknown values {sorted(unknown)} of knob {knob!r}")
        extra = {k: MappingProxyType(dict(v)) for k, v in f.items() if k.endswith("_hp") and k != "hp"}
        families[name] = Family(name, f["doc"], f["page"], MappingProxyType(allowed),
                                MappingProxyType({k: v["default"] for k, v in f["knobs"].items()}),
                                MappingProxyType(dict(f["hp"])), MappingProxyType(extra))
    return knobs, families, rule_doc["rules"]


def knobs() -> dict[str, Knob]:
    """All knobs of the spec, by name."""
    return dict(_spec()[0])


def families() -> dict[str, Family]:
    """All families of the spec, by name."""
    return dict(_spec()[1])


def applicable_knobs(values: Mapping[str, str]) -> dict[str, str]:
    """The knob values whose `applies_when` condition holds (the others cannot change the maths)."""
    all_knobs = _spec()[0]
    return {k: v for k, v in values.items()
            if all(values.get(c) == want for c, want in all_knobs[k].applies_when.items())}


def relevant_knobs(values: Mapping[str, str], family: str = "") -> dict[str, str]:
    """Drop knobs whose `applies_when` condition is not met, and fold equivalent values.

    Two knob vectors with equal relevant knobs define the same maths: Muon's decay x the adjusted lr
    is decay x lr without shape scaling; with bias correction off,
    eps-hat is eps outside (bc2 = 1) and corrected_lr scaling is lr scaling (bc1 = bc2 = 1); plain SGD
    (no momentum) with coupled decay outside the clip is the lr-scaled pre-step shrink.
    """
    kept = applicable_knobs(values)
    if (family == "sgd" and kept.get("momentum_form") == "none" and kept.get("decay") == "coupled"
            and kept.get("clip_scope") == "gradient"):
        # plain SGD: w - lr*(g + wd*w) is the lr-scaled pre-step shrink w - lr*wd*w - lr*g
        kept.pop("clip_scope")
        kept.update(decay="decoupled", decay_scaling="lr", decay_order="before")
    if kept.get("decay_scaling") == "adjusted_lr" and kept.get("shape_scaling") == "none":
        kept["decay_scaling"] = "lr"        # Muon: the adjusted lr is the lr when nothing scales it
    if kept.get("bias_correction") == "off":
        if kept.get("eps_placement") == "eps_hat":
            kept["eps_placement"] = "outside"
        if kept.get("decay_scaling") == "corrected_lr":
            kept["decay_scaling"] = "lr"
        if kept.get("amsgrad") == "corrected":
            kept["amsgrad"] = "raw"
    return kept


def _hp_vocabulary(family: Family, knob_values: Mapping[str, str]) -> dict[str, Any]:
    """Hyper-parameters (with family defaults) implied by a family and its knob values."""
    hp = dict(UNIVERSAL_HP)
    hp.update(family.hp)
    if knob_values.get("decay", "none") != "none":
        hp.update(DECAY_HP)
    if knob_values.get("momentum_form", "none") != "none":
        hp.update(family.extra_hp["momentum_hp"])
    if knob_values.get("nadam_schedule") == "dozat":
        hp.update(family.extra_hp["schedule_hp"])
    if knob_values.get("trust_ratio") == "on":
        hp.update(family.extra_hp["trust_ratio_hp"])
    if knob_values.get("shape_scaling") == "rms":
        hp.update(family.extra_hp["rms_hp"])
    if knob_values.get("non_matrix", "none") != "none":
        hp.update(family.extra_hp["fallback_hp"])
    if knob_values.get("param_scale", "none") != "none":
        hp.update(family.extra_hp["scale_hp"])
    if knob_values.get("sf_weighting") == "lr_power":
        hp.update(family.extra_hp["weighting_hp"])
    return hp


def _build(name: str, raw: Mapping[str, Any], overrides: Mapping[str, str], base: str | None) -> Rule:
    all_knobs, all_families, _ = _spec()
    if raw["family"] not in all_families:
        raise ValueError(f"rule {name!r}: unknown family {raw['family']!r}")
    family = all_families[raw["family"]]
    values = dict(family.knob_defaults)
    for source, given in (("spec/rules.toml", raw.get("knobs", {})), ("derived rule", overrides)):
        for knob, value in given.items():
            if knob not in family.knobs:
                raise ValueError(f"rule {name!r} ({source}): knob {knob!r} does not apply to family "
                                 f"{family.name!r}; its knobs are {sorted(family.knobs)}")
            if value not in family.knobs[knob]:
                raise ValueError(f"rule {name!r} ({source}): knob {knob!r} has no value {value!r} in family "
                                 f"{family.name!r}; allowed: {list(family.knobs[knob])}")
            values[knob] = value
    defaults = _hp_vocabulary(family, values)
    for hp_name, value in raw.get("defaults", {}).items():
        if hp_name not in defaults:
            if base is None:
                raise ValueError(f"rule {name!r}: default for unknown hyper-parameter {hp_name!r}")
            continue   # a derived rule dropped the knob that brought this hyper-parameter
        defaults[hp_name] = tuple(value) if isinstance(value, list) else value
    return Rule(name=name, family=family.name, doc=raw.get("doc", ""), knobs=MappingProxyType(values),
                defaults=MappingProxyType(defaults), mirrors=tuple(raw.get("mirrors", ())),
                cite=tuple(raw.get("cite", ())), base=base, overrides=MappingProxyType(dict(overrides)))


@functools.cache
def _presets() -> dict[str, Rule]:
    return {name: _build(name, raw, {}, None) for name, raw in _spec()[2].items()}


def rules() -> dict[str, Rule]:
    """All named presets, by name, in spec order."""
    return dict(_presets())


def derive(base: str, overrides: Mapping[str, str]) -> Rule:
    """The preset `base` with knob values changed; named ``base[k=v,...]`` (sorted, canonical)."""
    presets = _presets()
    if base not in presets:
        raise ValueError(f"unknown rule {base!r}; valid rules: {', '.join(presets)}")
    if not overrides:
        return presets[base]
    changed = {k: v for k, v in sorted(overrides.items())}
    name = base + "[" + ",".join(f"{k}={v}" for k, v in changed.items()) + "]"
    return _build(name, _spec()[2][base], changed, base)


_EXPR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(.*)\])?\s*$")


def get_rule(rule: "str | Rule") -> Rule:
    """Resolve a rule name or expression ``name[knob=value,...]`` to a Rule.

    Raises ValueError naming the problem and the valid choices.
    """
    if isinstance(rule, Rule):
        return rule
    return _parse_rule(str(rule))


@functools.cache
def _parse_rule(rule: str) -> Rule:
    """get_rule of a name or expression, parsed and built once per process (a Rule is immutable)."""
    match = _EXPR.match(rule)
    if not match:
        raise ValueError(f"cannot parse rule {rule!r}; write NAME or NAME[knob=value,...]")
    base, body = match.group(1), match.group(2)
    overrides: dict[str, str] = {}
    for item in filter(None, (body or "").split(",")):
        knob, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"rule {rule!r}: {item.strip()!r} is not knob=value")
        overrides[knob.strip()] = value.strip()
    return derive(base, overrides)


def same_maths(a: Rule, b: Rule) -> bool:
    """True when two rules define the same update maths (same family and relevant knobs)."""
    return a.family == b.family and a.relevant_knobs() == b.relevant_knobs()


def is_finite_number(value: Any) -> bool:
    """A real, finite number: Python int/float or a NumPy real scalar such as np.float32(0.1) (bools
    excluded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):   # np.bool_ is not Real
        return False
    return math.isfinite(value)
