"""A user's optimizer factory as a case of the adapter that runs it: which canonical hyper-parameters it
takes (by name or alias), the Case, and everything validated before `check` runs it."""
from __future__ import annotations

import inspect
from typing import Callable, Mapping

from optconform import registry
from optconform.adapters.base import NEUTRAL_HP, Arg, Case
from optconform.reference import get_rule
from optconform.reference.precision import ScalarPrecision
from optconform.reference.tolerance import TINY

from . import validate


#: Native names a factory may use instead of a canonical one, per factory style: torch's `betas`
#: tuple, Keras' `learning_rate` / `beta_1` / `epsilon`, optax's `b1` / `b2`. A class such as
#: torch.optim.AdamW is then a factory as it is.
FACTORY_ALIASES: Mapping[str, Mapping[str, tuple[Arg, ...]]] = {
    "params": {"beta1": (Arg("betas", 0),), "beta2": (Arg("betas", 1),)},
    "hp": {"lr": (Arg("learning_rate"),), "beta1": (Arg("beta_1"), Arg("b1")), "beta2": (Arg("beta_2"), Arg("b2")),
           "eps": (Arg("epsilon"),)},
}


def factory_hp_map(factory: Callable, style: str, rule_hp) -> dict[str, Arg]:
    """Canonical hyper-parameter -> the factory argument that receives it: its own name when the factory
    takes it, else a FACTORY_ALIASES name it takes. A factory taking **kwargs receives every
    hyper-parameter of the rule but the gradient-processing and exclusion options (clip_*, rescale_grad,
    weight_decay_exclude, weight_decay_mask: NEUTRAL_HP), which it must name to receive: **kwargs cannot
    say that it implements them, so the goldens that set them are not its."""
    params = list(inspect.signature(factory).parameters.values())
    if style == "params" and params:
        params = params[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return {k: Arg(k) for k in rule_hp if k not in NEUTRAL_HP or k == "eta"}
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    out = {k: Arg(k) for k in rule_hp if k in names}
    for canonical, aliases in FACTORY_ALIASES.get(style, {}).items():
        if canonical in rule_hp and canonical not in out:
            alias = next((a for a in aliases if a.name in names), None)
            if alias is not None:
                out[canonical] = alias
    return out


def factory_case(factory: Callable, rule: str, framework: str, style: str, dtype: str,
                 precision: ScalarPrecision | None = None) -> Case:
    """A Case for a user's factory: hp_map from factory_hp_map; the rule's defaults fixed for the names
    it does not take (goldens that need another value for them cannot run)."""
    rule_obj = get_rule(rule)
    hp_map = factory_hp_map(factory, style, rule_obj.defaults)
    fixed = {k: (list(v) if isinstance(v, tuple) else v) for k, v in rule_obj.defaults.items()
             if k not in hp_map and k not in NEUTRAL_HP and k not in ("lr", "eta")}
    name = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', repr(factory))}"
    return Case(framework=framework, name=name, native=name, rule=rule, variant="factory",
                hp_map=dict(sorted(hp_map.items())), fixed_hp=fixed, dtypes=(dtype,), factory=factory,
                precision=precision)


def prepare(factory: Callable, rule: str, framework: str, dtype: str, device: str, repro, hp):
    """Everything validated before any work: (rule, overrides, adapter, case)."""
    rule_obj = get_rule(rule)
    hp = validate.hp_overrides(rule_obj, hp)
    if dtype not in TINY:
        raise ValueError(f"unknown dtype {dtype!r}; choose from {', '.join(TINY)}")
    if repro is not None:
        validate.output_path(repro, "repro")
    adapter = registry.load_adapter(framework)
    if not adapter.factory_style:
        raise ValueError(f"the {framework} adapter does not support user factories")
    adapter.load()
    if device not in adapter.devices():
        raise ValueError(f"device {device!r} is not available to {framework} here (available: "
                         f"{', '.join(adapter.devices())})")
    validate.factory_signature(factory, adapter.factory_style, rule_obj, FACTORY_ALIASES.get(adapter.factory_style))
    precision = adapter.factory_precision      # e.g. Keras: lr rounded to float32, powers=param
    case = factory_case(factory, rule, framework, adapter.factory_style, dtype,
                        precision.resolved(dtype) if precision is not None else None)
    return rule_obj, hp, adapter, case
