"""Keras 3 cases: every `keras.optimizers` class, without and with `weight_decay`, on both backends.

Sources: ``keras/src/optimizers/*.py`` at v3.15.1, TF overrides ``keras/src/backend/tensorflow/optimizer.py``
at v3.15.1. What every case claims, and why:

- Every Keras `weight_decay` is the base-class pre-step shrink `w <- w - w*wd*lr_t` (decoupled, x lr,
  before the optimizer's own step, never inside its statistics): so `Adam(weight_decay)` claims
  `adamw_eps_hat`, `SGD(momentum, weight_decay)` claims `sgd_momentum_inside[decay=decoupled]`, ...
  Without `weight_decay` a case claims its rule with `decay=none` (it runs the same goldens, whose
  decay the native optimizer is not given, against the reference without decay).
- Clipping (`clipvalue`) happens before the decay and never sees it: with decoupled decay the
  reference clips the gradient only, so the `clip_with_decay` goldens of the coupled presets run
  honestly under the derived `[decay=decoupled]` rules (clip_value 0.5, wd 0.5). No golden has
  `clip_norm` / `clip_global_norm`; Keras `clipnorm` / `global_clipnorm` are checked against the
  reference in tests/conformance/test_keras_findings.py.
- Compiled variants (graph / XLA on TF, jit on JAX) run every optimizer in its weight-decay
  configuration; eager runs every configuration.

Scalar precision (`Case.precision`: which Python hyper-parameters Keras rounds to float32):

- TF backend: `ops.cast(python_float, "float64")` goes through a float32 tensor (`tf.cast` of a Python
  float), while Python floats combined with a float64 tensor (`m + (g-m)*(1-beta_1)`, `+ epsilon`) are
  exact. So lr (float32 variable/table), weight_decay (`tf.cast`,
  ``keras/src/backend/tensorflow/optimizer.py:97`` at v3.15.1) and whatever an optimizer `ops.cast`s are
  rounded: SGD momentum, Lion betas (used only through the cast), the Adam family's betas *in the
  bias-correction powers only* (the EMA uses the exact `1 - beta`): ``powers=Powers.FLOAT32``
  (spec/tolerance.md, "Scalar precision").
- JAX backend (float64 needs `jax_enable_x64`, set by the adapter: without it Keras' float64 variables
  are silently float32): `ops.cast` of a Python float is exact; only lr (float32) is rounded, and the
  bias-correction powers use beta in the variable dtype (``powers=Powers.PARAM``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from optconform.adapters.base import Case, Hook
from optconform.reference.precision import Powers, ScalarPrecision

_ADAM = {"lr": "lr", "beta1": "beta_1", "beta2": "beta_2", "eps": "epsilon"}
_WD = {"weight_decay": "weight_decay"}
_CLIP = {"clip_value": "clipvalue"}
_LAMB_FIXED = {"trust_lower_bound": 0.0, "trust_upper_bound": math.inf}
_RMS = {"lr": "lr", "rho": "rho", "eps": "epsilon", **_CLIP}
#: Keras RMSprop's velocity always starts at 0
_RMS_FIXED = {"initial_accumulator_value": 0.0}
_ADAGRAD = {"lr": "lr", "eps": "epsilon", "initial_accumulator_value": "initial_accumulator_value", **_CLIP}
_MOMENTUM = {"lr": "lr", "momentum": "momentum", **_CLIP}
#: Hyper-parameters every Keras optimizer rounds on the TF backend (lr: float32 table; weight_decay: tf.cast).
_TF_ROUNDED = ("lr", "weight_decay")
#: Classes whose bias-correction powers are ops.power(ops.cast(beta, variable.dtype), local_step), in
#: the variable dtype (``keras/src/optimizers/adam.py:108-113`` at v3.15.1; nadam.py, lamb.py,
#: adamax.py): from a float32-rounded beta on TF, from beta rounded to the variable dtype on JAX (the
#: `powers` of Case.precision; spec/tolerance.md, "Scalar precision").
POWERS = frozenset({"Adam", "AdamW", "Nadam", "Lamb", "Adamax"})
#: Lane -> its implementation variants (the first, eager, runs every configuration).
VARIANTS: Mapping[str, tuple[str, ...]] = {"tensorflow": ("eager", "graph", "xla"), "keras-jax": ("eager", "jit")}
DEVICES = ("cpu", "gpu")


@dataclass(frozen=True)
class ExcludeFromWeightDecay(Hook):
    """`optimizer.exclude_from_weight_decay(<keyword>=[...])` with the golden's `weight_decay_exclude`
    patterns, called before `optimizer.build` (an empty list excludes nothing and is not passed).
    With ``var_names`` Keras `re.search`-es each pattern on the variable's *name*."""
    keyword: str = "var_names"

    def apply(self, optimizer, patterns) -> None:
        if patterns:
            optimizer.exclude_from_weight_decay(**{self.keyword: list(patterns)})


@dataclass(frozen=True)
class KerasOptimizer:
    """One configuration of ``keras.optimizers.<cls>``, before it is expanded to a lane's variants.

    tf_rounded: the hyper-parameters the TF backend rounds to float32 (module docstring); on JAX only
    lr is. The bias-correction powers follow from `cls` (POWERS)."""
    name: str
    cls: str
    rule: str
    hp_map: Mapping[str, Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    fixed_hp: Mapping[str, Any] = field(default_factory=dict)
    tf_rounded: tuple[str, ...] = _TF_ROUNDED


def _tf_precision(config: KerasOptimizer) -> ScalarPrecision:
    return ScalarPrecision(rounded=config.tf_rounded, powers=Powers.FLOAT32 if config.cls in POWERS else None)


def _jax_precision(config: KerasOptimizer) -> ScalarPrecision:
    return ScalarPrecision(rounded=("lr",), powers=Powers.PARAM if config.cls in POWERS else None)


#: Lane -> the scalar precision of a configuration on that backend (module docstring).
PRECISION: Mapping[str, Callable[[KerasOptimizer], ScalarPrecision]] = {
    "tensorflow": _tf_precision, "keras-jax": _jax_precision}
#: The scalar precision of a user's factory (optconform check), whatever the optimizer: lr rounded, and
#: on TF weight_decay too (tf.cast); the bias-correction powers of the cast betas (POWERS).
FACTORY_PRECISION: Mapping[str, ScalarPrecision] = {
    # lr rounded (float32 table), weight_decay too (tf.cast, keras/src/backend/tensorflow/optimizer.py:97
    # at v3.15.1), powers from float32 betas
    "tensorflow": ScalarPrecision(rounded=_TF_ROUNDED, powers=Powers.FLOAT32),
    # lr rounded (float32 table); powers from beta in the parameter dtype
    "keras-jax": ScalarPrecision(rounded=("lr",), powers=Powers.PARAM)}


def _with_decay(decay: bool) -> list[KerasOptimizer]:
    """Every optimizer with its own weight_decay configuration: without it (`decay=none`) or with it
    (the decoupled pre-step shrink, `decay=decoupled`)."""
    w, suffix, knob = (_WD, "(weight_decay)", "decoupled") if decay else ({}, "", "none")

    def named(base: str) -> str:        # "SGD(momentum)" + "(weight_decay)" -> "SGD(momentum,weight_decay)"
        return (base + suffix).replace(")(", ",")

    def rule(preset: str, extra: str = "") -> str:
        return f"{preset}[decay={knob}{extra}]"
    momentum_form = ",momentum_form=lr_inside"
    return [
        KerasOptimizer(named("SGD"), "SGD", rule("sgd"), {"lr": "lr", **w, **_CLIP}, kwargs={"momentum": 0.0}),
        KerasOptimizer(named("SGD(momentum)"), "SGD", rule("sgd_momentum_inside"), {**_MOMENTUM, **w},
                       kwargs={"nesterov": False}, fixed_hp={"nesterov": False, "dampening": 0.0},
                       tf_rounded=(*_TF_ROUNDED, "momentum")),
        KerasOptimizer(named("SGD(nesterov)"), "SGD", rule("sgd_momentum_inside"), {**_MOMENTUM, **w},
                       kwargs={"nesterov": True}, fixed_hp={"nesterov": True, "dampening": 0.0},
                       tf_rounded=(*_TF_ROUNDED, "momentum")),
        KerasOptimizer(named("Adagrad"), "Adagrad", rule("adagrad_eps_inside"), {**_ADAGRAD, **w},
                       fixed_hp={"lr_decay": 0.0},
                       tf_rounded=(*_TF_ROUNDED, "initial_accumulator_value")),  # Constant initializer ops.casts it
        KerasOptimizer(named("RMSprop"), "RMSprop", rule("rmsprop_eps_inside"), {**_RMS, **w},
                       kwargs={"centered": False, "momentum": 0.0}, fixed_hp={"centered": False, **_RMS_FIXED}),
        KerasOptimizer(named("RMSprop(centered)"), "RMSprop", rule("rmsprop_eps_inside"), {**_RMS, **w},
                       kwargs={"centered": True, "momentum": 0.0}, fixed_hp={"centered": True, **_RMS_FIXED}),
        KerasOptimizer(named("RMSprop(momentum)"), "RMSprop", rule("rmsprop_eps_inside", momentum_form),
                       {**_RMS, **w, "momentum": "momentum"}, kwargs={"centered": False},
                       fixed_hp={"centered": False, **_RMS_FIXED}),
        KerasOptimizer(named("RMSprop(centered,momentum)"), "RMSprop", rule("rmsprop_eps_inside", momentum_form),
                       {**_RMS, **w, "momentum": "momentum"}, kwargs={"centered": True},
                       fixed_hp={"centered": True, **_RMS_FIXED}),
        # Keras' fixed 0.96^t momentum schedule is momentum_decay = 1; Nadam uses the cast betas throughout
        KerasOptimizer(named("Nadam"), "Nadam", rule("nadam"), {**_ADAM, **w}, fixed_hp={"momentum_decay": 1.0},
                       tf_rounded=(*_TF_ROUNDED, "beta1", "beta2")),
        KerasOptimizer(named("Lion"), "Lion", rule("lion"), {"lr": "lr", "beta1": "beta_1", "beta2": "beta_2", **w},
                       tf_rounded=(*_TF_ROUNDED, "beta1", "beta2")),
        KerasOptimizer(named("Lamb"), "Lamb", rule("lamb_decay_outside"), {**_ADAM, **w}, fixed_hp=dict(_LAMB_FIXED)),
        KerasOptimizer(named("Adamax"), "Adamax", rule("adamax", ",eps_placement=outside_max"),
                       {**_ADAM, **w, **_CLIP}),
    ]


def configs() -> list[KerasOptimizer]:
    """Every configuration, in the order of the results (Adam family last)."""
    adamw = {**_ADAM, **_WD}
    return [
        *_with_decay(False),
        *_with_decay(True),
        KerasOptimizer("Adam", "Adam", "adam_eps_hat", dict(_ADAM)),
        KerasOptimizer("Adam(weight_decay)", "Adam", "adamw_eps_hat", adamw),
        KerasOptimizer("AdamW", "AdamW", "adamw_eps_hat", adamw),
        KerasOptimizer("Adam(amsgrad)", "Adam", "amsgrad[eps_placement=eps_hat]", dict(_ADAM), kwargs={"amsgrad": True}),
        KerasOptimizer("AdamW(amsgrad)", "AdamW", "adamw_amsgrad[eps_placement=eps_hat]", adamw,
                       kwargs={"amsgrad": True}),
        # clipvalue on Adam: the only Adam-family goldens with a clip are MXNet's; with decoupled decay
        # (Keras) the derived rule is adamw_eps_hat's maths on those scenarios.
        KerasOptimizer("AdamW(clipvalue)", "AdamW", "mxnet_adam[decay=decoupled]", {**adamw, **_CLIP}),
        # exclude_from_weight_decay(var_names=...): BERT's exclusion goldens; bias-corrected, eps-hat.
        KerasOptimizer("AdamW.exclude_from_weight_decay(var_names)", "AdamW",
                       "bert_adamw[bias_correction=on,eps_placement=eps_hat]",
                       {**adamw, "weight_decay_exclude": ExcludeFromWeightDecay("var_names")}),
    ]


def cases(framework: str) -> list[Case]:
    """The lane's cases: every configuration eagerly, the weight-decay ones also compiled."""
    precision = PRECISION[framework]
    out = []
    for config in configs():
        for variant in VARIANTS[framework]:
            if variant != "eager" and "weight_decay" not in config.hp_map:
                continue        # compiled variants: every optimizer, in its weight-decay configuration
            out.append(Case(framework=framework, name=config.name, native=f"keras.optimizers.{config.cls}",
                            rule=config.rule, variant=variant, kwargs=config.kwargs, hp_map=config.hp_map,
                            fixed_hp=config.fixed_hp, dtypes=("float64", "float32"), devices=DEVICES,
                            precision=precision(config)))
    return out
