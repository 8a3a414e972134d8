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
#: Hyper-parameters every Keras optimizer rounds on the TF backend (lr: float32 lr variable; weight_decay: tf.cast).
_TF_ROUNDED = ("lr", "weight_decay")
#: Classes whose bias-correction powers are ops.power(ops.cast(beta, variable.dtype), local_step), in
#: the variable dtype (``keras/src/optimizers/adam.py:108-113`` at v3.15.1; nadam.py, lamb.py,
#: adamax.py): from a float32-rounded beta on TF, from beta rounded to the variable dtype on JAX (the
#: `powers` of Case.precision; spec/tolerance.md, "Scalar precision").
POWERS = frozenset({"Adam", "AdamW", "Nadam", "Lamb", "Adamax", "Muon", "ScheduleFreeAdamW"})
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
    # lr rounded (float32 lr variable), weight_decay too (tf.cast, keras/src/backend/tensorflow/optimizer.py:97
    # at v3.15.1), powers from float32 betas
    "tensorflow": ScalarPrecision(rounded=_TF_ROUNDED, powers=Powers.FLOAT32),
    # lr rounded (float32 lr variable); powers from beta in the parameter dtype
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


_MUON = {"lr": "lr", "weight_decay": "weight_decay", "momentum": "momentum", "nesterov": "nesterov",
         "ns_a": "muon_a", "ns_b": "muon_b", "ns_c": "muon_c", "ns_steps": "ns_steps",
         "adam_beta1": "adam_beta_1", "adam_beta2": "adam_beta_2", "adam_eps": "epsilon",
         "adam_weight_decay": "adam_weight_decay"}
#: Keras Muon's Newton-Schulz eps is the literal 1e-7 of ``x / (norm + 1e-7)`` (keras/src/optimizers/muon.py:282)
_MUON_FIXED = {"eps": 1e-7}


def muon_configs() -> list[KerasOptimizer]:
    """keras.optimizers.Muon: 2-D variables Muon, the others its eps-hat AdamW step (muon.py:141-151).
    Its weight decay is its own `_apply_weight_decay` (muon.py:293-305: ops.cast(wd, dtype), so on TF
    weight_decay and adam_weight_decay are float32-rounded); the AdamW step's powers are cast betas."""
    rounded = (*_TF_ROUNDED, "adam_weight_decay")
    return [
        KerasOptimizer("Muon", "Muon", "keras_muon", {**_MUON, "rms_rate": "rms_rate"}, fixed_hp=_MUON_FIXED,
                       tf_rounded=rounded),
        KerasOptimizer("Muon(rms_rate=None)", "Muon", "keras_muon[shape_scaling=none]", dict(_MUON),
                       kwargs={"rms_rate": None}, fixed_hp=_MUON_FIXED, tf_rounded=rounded),
    ]


_ADAFACTOR = {"lr": "lr", "beta2_decay": "beta_2_decay", "eps": "epsilon_1", "eps2": "epsilon_2",
              "clip_threshold": "clip_threshold"}
#: Keras factors every variable with two or more axes
_ADAFACTOR_FIXED = {"min_dim_size_to_factor": 0}


def adafactor_configs() -> list[KerasOptimizer]:
    """keras.optimizers.Adafactor (keras/src/optimizers/adafactor.py at v3.15.1): without weight_decay,
    with it (the base class's lr-scaled pre-step shrink, before update_step reads RMS(w)), and with
    relative_step=False, which changes nothing (the step is min(lr, 1/sqrt(t)) either way, adafactor.py:
    144-150). epsilon_2 is ops.cast (float32 on TF)."""
    rounded = (*_TF_ROUNDED, "eps2")
    return [
        KerasOptimizer("Adafactor", "Adafactor", "keras_adafactor[decay=none]", dict(_ADAFACTOR),
                       fixed_hp=_ADAFACTOR_FIXED, tf_rounded=rounded),
        KerasOptimizer("Adafactor(weight_decay)", "Adafactor", "keras_adafactor", {**_ADAFACTOR, **_WD},
                       fixed_hp=_ADAFACTOR_FIXED, tf_rounded=rounded),
        KerasOptimizer("Adafactor(relative_step=False)", "Adafactor", "keras_adafactor", {**_ADAFACTOR, **_WD},
                       kwargs={"relative_step": False}, fixed_hp=_ADAFACTOR_FIXED, tf_rounded=rounded),
    ]


_SF = {"lr": "lr", "beta1": "beta_1", "beta2": "beta_2", "eps": "epsilon", "warmup_steps": "warmup_steps"}


def schedule_free_configs(framework: str = "keras-jax") -> list[KerasOptimizer]:
    """keras.optimizers.ScheduleFreeAdamW (keras/src/optimizers/schedule_free_adamw.py:115-185 at v3.15.1):
    the variable is y, c_t = 1/t; weight_decay is the base class's shrink of y. It ops.casts beta_1,
    beta_2 and epsilon to the variable dtype (float32 on TF) and its powers are of the cast beta_2."""
    rounded = (*_TF_ROUNDED, "beta1", "beta2", "eps")
    # on TF `momentum_old = momentum.value` (schedule_free_adamw.py:143) is the tf.Variable itself, read
    # after `assign_sub(momentum, ...)`: x_{t-1} is recovered from the updated z (knob x_recovery)
    tf = ",x_recovery=z_next" if framework == "tensorflow" else ""
    return [
        KerasOptimizer("ScheduleFreeAdamW", "ScheduleFreeAdamW", f"keras_schedule_free_adamw[decay=none{tf}]",
                       dict(_SF), tf_rounded=rounded),
        KerasOptimizer("ScheduleFreeAdamW(weight_decay)", "ScheduleFreeAdamW",
                       f"keras_schedule_free_adamw[x_recovery=z_next]" if tf else "keras_schedule_free_adamw",
                       {**_SF, **_WD}, tf_rounded=rounded),
    ]


#: Muon on the TF backend multiplies its float32 learning rate into a float64 update (`lr * update`,
#: muon.py:206, no cast): float64 variables raise InvalidArgumentError (tests/conformance/
#: test_keras_findings.py::test_muon_cannot_step_float64_on_tensorflow); its TF cases run float32.
MUON_DTYPES: Mapping[str, tuple[str, ...]] = {"tensorflow": ("float32",), "keras-jax": ("float64", "float32")}


def cases(framework: str) -> list[Case]:
    """The lane's cases: every configuration eagerly, the weight-decay ones also compiled."""
    precision = PRECISION[framework]
    out = []
    for config in configs() + muon_configs() + adafactor_configs() + schedule_free_configs(framework):
        for variant in VARIANTS[framework]:
            if variant != "eager" and "weight_decay" not in config.hp_map:
                continue        # compiled variants: every optimizer, in its weight-decay configuration
            dtypes = MUON_DTYPES[framework] if config.cls == "Muon" else ("float64", "float32")
            documented = config.rule.replace(",x_recovery=z_next", "").replace("[x_recovery=z_next]", "")
            out.append(Case(framework=framework, name=config.name, native=f"keras.optimizers.{config.cls}",
                            rule=config.rule, variant=variant, kwargs=config.kwargs, hp_map=config.hp_map,
                            fixed_hp=config.fixed_hp, dtypes=dtypes, devices=DEVICES,
                            precision=precision(config),
                            documented_rule=documented if documented != config.rule else ""))
    return out
