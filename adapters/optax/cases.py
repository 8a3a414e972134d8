"""optax cases: every alias on both implementation variants (``eager``, ``jit``), as `OptaxCase` records.

Rules were chosen by reading optax 0.2.8 and confirmed by running (see the module docstring of
tests/conformance/test_jax_findings.py for the findings they state). Hyper-parameters are passed the
way optax users pass them: Python floats closed over by the transformation, the learning rate a float
when the golden keeps it constant and otherwise a schedule (optconform.adapters.optax.transform).

What a case adds to the alias call is typed, never a keyword of its own:

- `OptaxCase.chain`: transforms put in front of the alias (`Transform.CLIP` = `optax.clip(clip_value)`
  when the golden clips, `Transform.ADD_DECAYED_WEIGHTS` = coupled L2 the optax way);
- `OptaxCase.mask`: the form of the alias's ``mask`` argument (`MaskForm.PYTREE` or `MaskForm.CALLABLE`),
  built from the spec's `weight_decay_exclude` regexes (`MaskExclude`) and `weight_decay_mask`
  (`MaskInclude`);
- `OptaxCase.schedules`: alias arguments given as callables of the step count even when constant.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping

from optconform.adapters.base import Arg, Case, Hook
from optconform.reference.precision import Powers, ScalarPrecision


class Transform(enum.Enum):
    """A transform put in front of the alias in ``optax.chain``; the value is its optax name."""
    CLIP = "clip"
    ADD_DECAYED_WEIGHTS = "add_decayed_weights"


class MaskForm(enum.Enum):
    """The form of the ``mask`` argument: a pytree of booleans shaped like the params, or a callable
    that optax evaluates on params at init and on updates at update."""
    PYTREE = "pytree"
    CALLABLE = "callable"


@dataclass(frozen=True)
class Clip(Hook):
    """clip_value: `optax.clip(value)` (elementwise clipping of the gradient), the case's
    `Transform.CLIP` in front of the alias; absent when the golden does not clip."""


@dataclass(frozen=True)
class MaskExclude(Hook):
    """weight_decay_exclude: regexes (re.search) of tensor names whose decay the mask switches off."""


@dataclass(frozen=True)
class MaskInclude(Hook):
    """weight_decay_mask: {tensor name: bool}, False switches the tensor's decay off in the mask."""


@dataclass(frozen=True)
class SameAs(Hook):
    """A canonical hyper-parameter the alias takes no argument for because it uses another one's value
    (optax.contrib.muon's Adam partition uses Muon's `eps`): the run must give both the same value."""
    other: str = ""


@dataclass(frozen=True)
class Negated(Hook):
    """A canonical hyper-parameter the alias takes with the opposite sign, under its own name (optax
    adafactor's decay_rate = -beta2_decay)."""
    name: str = ""


@dataclass(frozen=True)
class OptaxCase(Case):
    """An optax case: `alias` is the ``optax.<alias>`` called (after `chain`, with `mask` and
    `schedules` applied as the module docstring says)."""
    alias: str = ""
    chain: tuple[Transform, ...] = ()
    mask: MaskForm | None = None
    schedules: frozenset[str] = frozenset()


_ADAM_HP = {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "eps": "eps"}
_WD = {"weight_decay": "weight_decay"}
_CLIP = {"clip_value": Clip()}
_MASK = {"weight_decay_exclude": MaskExclude(), "weight_decay_mask": MaskInclude()}
_RMS = {"lr": "learning_rate", "rho": "decay", "eps": "eps", "centered": "centered",
        "initial_accumulator_value": "initial_scale"}
_RMS_UNCENTERED = {k: v for k, v in _RMS.items() if k != "centered"}
_SGD_M = {"lr": "learning_rate", "momentum": "momentum"}
_ADAGRAD = {"lr": "learning_rate", "eps": "eps", "initial_accumulator_value": "initial_accumulator_value"}
_NO_TRUST_BOUNDS = {"trust_lower_bound": 0.0, "trust_upper_bound": float("inf")}
_L2_CLIP = (Transform.CLIP, Transform.ADD_DECAYED_WEIGHTS)

VARIANTS = ("eager", "jit")
#: Aliases whose bias corrections are `1 - decay**count` (optax tree_utils/_tree_math.py:442-452 at
#: v0.2.8): a Python-float beta with the int32 count, i.e. beta rounded to float32 and the power in
#: float32 without x64, exact and float64 with it (powers=param; spec/tolerance.md, "Scalar precision").
POWERS = ("adam", "adamw", "amsgrad", "lamb", "nadam", "nadamw", "radam", "adamax", "contrib.muon",
          "contrib.schedule_free_adamw")


def native(alias: str, chain: tuple[Transform, ...]) -> str:
    """The native expression recorded in the results: ``optax.<alias>``, or the chain in front of it."""
    if not chain:
        return f"optax.{alias}"
    return "optax.chain(" + ", ".join(f"optax.{t.value}" for t in chain) + f", optax.{alias})"


def _optax(name: str, alias: str, rule: str, *, hp_map: Mapping[str, Any], kwargs: Mapping[str, Any] | None = None,
           fixed_hp: Mapping[str, Any] | None = None, chain: tuple[Transform, ...] = (),
           mask: MaskForm | None = None, schedules: tuple[str, ...] = (),
           variants: tuple[str, ...] = VARIANTS) -> list[OptaxCase]:
    """One configuration of ``optax.<alias>``, on both variants (or the `variants` given)."""
    precision = ScalarPrecision(powers=Powers.PARAM) if alias in POWERS else None
    return [OptaxCase(framework="jax", name=name, native=native(alias, chain), rule=rule, variant=variant,
                      kwargs=dict(kwargs or {}), hp_map=hp_map, fixed_hp=dict(fixed_hp or {}),
                      dtypes=("float64", "float32"), devices=("cpu", "cuda"), precision=precision,
                      alias=alias, chain=chain, mask=mask, schedules=frozenset(schedules))
            for variant in variants]


def _sgd_and_adam() -> list[OptaxCase]:
    return [
        # --- SGD: optax.sgd has no weight decay; trace (tr <- g + mu*tr) sits before the lr scaling
        *_optax("sgd", "sgd", "sgd[decay=none]", hp_map={"lr": "learning_rate"}),
        *_optax("chain(add_decayed_weights,sgd)", "sgd", "sgd", chain=_L2_CLIP,
                hp_map={"lr": "learning_rate", **_WD, **_CLIP}),
        *_optax("sgd(momentum)", "sgd", "sgd_momentum[decay=none]", kwargs={"nesterov": False}, hp_map=_SGD_M,
                fixed_hp={"dampening": 0.0, "nesterov": False}),
        *_optax("sgd(momentum,nesterov)", "sgd", "sgd_momentum[decay=none]", kwargs={"nesterov": True},
                hp_map=_SGD_M, fixed_hp={"dampening": 0.0, "nesterov": True}),
        *_optax("chain(add_decayed_weights,sgd(momentum))", "sgd", "sgd_momentum", chain=_L2_CLIP,
                hp_map={**_SGD_M, "nesterov": "nesterov", **_WD, **_CLIP}, fixed_hp={"dampening": 0.0}),
        # --- Adam family
        *_optax("adam", "adam", "adam", hp_map=_ADAM_HP),
        *_optax("chain(add_decayed_weights,adam)", "adam", "adam_l2", chain=_L2_CLIP,
                hp_map={**_ADAM_HP, **_WD, **_CLIP}),
        *_optax("adamw", "adamw", "adamw", hp_map={**_ADAM_HP, **_WD}),
        *_optax("adamw(schedules)", "adamw", "adamw", schedules=("learning_rate", "weight_decay"),
                hp_map={**_ADAM_HP, **_WD}),
        # masks: BERT's goldens carry weight_decay_exclude = [LayerNorm, layer_norm, bias]; optax adamw
        # with that mask is AdamW (bias-corrected) over BERT's exclusions
        *_optax("adamw(mask=pytree)", "adamw", "bert_adamw[bias_correction=on]", mask=MaskForm.PYTREE,
                hp_map={**_ADAM_HP, **_WD, **_MASK}),
        *_optax("adamw(mask=callable)", "adamw", "bert_adamw[bias_correction=on]", mask=MaskForm.CALLABLE,
                hp_map={**_ADAM_HP, **_WD, **_MASK}),
        *_optax("amsgrad", "amsgrad", "amsgrad_corrected", hp_map=_ADAM_HP),
        *_optax("lamb", "lamb", "lamb", hp_map={**_ADAM_HP, **_WD}, fixed_hp=_NO_TRUST_BOUNDS),
    ]


def _adagrad_and_rmsprop() -> list[OptaxCase]:
    inside, outside = {"eps_in_sqrt": True}, {"eps_in_sqrt": False}
    corrected = {"bias_correction": True, "centered": False}
    return [
        # --- AdaGrad: scale_by_rss, eps inside the root, 0 where the accumulator is 0
        *_optax("adagrad", "adagrad", "adagrad_eps_inside[decay=none]", hp_map=_ADAGRAD, fixed_hp={"lr_decay": 0.0}),
        *_optax("chain(add_decayed_weights,adagrad)", "adagrad", "adagrad_eps_inside", chain=_L2_CLIP,
                hp_map={**_ADAGRAD, **_WD, **_CLIP}, fixed_hp={"lr_decay": 0.0}),
        # --- RMSprop: momentum is a trace *after* the lr scaling (lr inside the buffer)
        *_optax("rmsprop", "rmsprop", "rmsprop_eps_inside[decay=none]", kwargs=inside, hp_map=_RMS),
        *_optax("rmsprop(eps_in_sqrt=False)", "rmsprop", "rmsprop[decay=none]", kwargs=outside, hp_map=_RMS),
        *_optax("rmsprop(momentum)", "rmsprop", "rmsprop_eps_inside[decay=none,momentum_form=lr_inside]",
                kwargs=inside, hp_map={**_RMS, "momentum": "momentum"}),
        *_optax("rmsprop(momentum,eps_in_sqrt=False)", "rmsprop", "rmsprop_momentum[decay=none,momentum_form=lr_inside]",
                kwargs=outside, hp_map={**_RMS, "momentum": "momentum"}),
        # bias_correction with centered=True also corrects the gradient average (v_hat - g_avg_hat^2),
        # which no knob of the spec expresses: those cases run the non-centered goldens only
        *_optax("rmsprop(bias_correction)", "rmsprop", "rmsprop_eps_inside[decay=none,bias_correction=on]",
                kwargs={**inside, **corrected}, hp_map=_RMS_UNCENTERED, fixed_hp={"centered": False}),
        *_optax("rmsprop(bias_correction,eps_in_sqrt=False)", "rmsprop", "rmsprop[decay=none,bias_correction=on]",
                kwargs={**outside, **corrected}, hp_map=_RMS_UNCENTERED, fixed_hp={"centered": False}),
        *_optax("chain(add_decayed_weights,rmsprop)", "rmsprop", "rmsprop_eps_inside", kwargs=inside,
                chain=_L2_CLIP, hp_map={**_RMS, **_WD, **_CLIP}),
    ]


def _others() -> list[OptaxCase]:
    return [
        # --- NAdam (Nesterov-Adam without a momentum schedule), RAdam, Adamax, Lion
        *_optax("nadam", "nadam", "nadam_no_schedule", hp_map=_ADAM_HP),
        *_optax("nadamw", "nadamw", "nadamw[nadam_schedule=none]", hp_map={**_ADAM_HP, **_WD}),
        *_optax("radam", "radam", "radam_eps_outside", hp_map=_ADAM_HP),
        *_optax("adamax", "adamax", "adamax[decay=none]", hp_map=_ADAM_HP),
        *_optax("chain(add_decayed_weights,adamax)", "adamax", "adamax", chain=_L2_CLIP,
                hp_map={**_ADAM_HP, **_WD, **_CLIP}),
        *_optax("lion", "lion", "lion", hp_map={"lr": "learning_rate", "beta1": "b1", "beta2": "b2", **_WD}),
    ]


_MUON = {"lr": "learning_rate", "weight_decay": "weight_decay", "momentum": "beta", "nesterov": "nesterov",
         "eps": "eps", "ns_a": Arg("ns_coeffs", 0), "ns_b": Arg("ns_coeffs", 1), "ns_c": Arg("ns_coeffs", 2),
         "ns_steps": "ns_steps", "adam_beta1": "adam_b1", "adam_beta2": "adam_b2",
         "adam_weight_decay": "adam_weight_decay", "adam_eps": SameAs("eps")}


def _muon() -> list[OptaxCase]:
    """optax.contrib.muon (optax/contrib/_muon.py:519-727 at v0.2.8): 2-D tensors Muon, the others a
    partition to optax.adamw (nesterov=nesterov) with Muon's eps; its bias corrections 1 - b**count
    are in the parameter dtype (powers=param). jit only: its eager update re-traces the unrolled
    Newton-Schulz fori_loop (a new lambda per call, _muon.py:348-351) at every step, 2-3 s a step here,
    and computes the same maths."""
    return [*_optax("contrib.muon", "contrib.muon", "optax_muon", hp_map=_MUON, variants=("jit",)),
            *_optax("contrib.muon(consistent_rms)", "contrib.muon", "optax_muon[shape_scaling=rms]",
                    hp_map={**_MUON, "rms_rate": "consistent_rms"}, variants=("jit",))]


_ADAFACTOR = {"lr": "learning_rate", "beta2_decay": Negated("decay_rate"), "eps": "eps",
              "clip_threshold": "clipping_threshold", "min_dim_size_to_factor": "min_dim_size_to_factor",
              "weight_decay": "weight_decay_rate"}


def _adafactor() -> list[OptaxCase]:
    """optax.adafactor (optax/_src/alias.py:224-326 at v0.2.8), momentum=None, factored=True; its
    parameter-scale floor is scale_by_param_block_rms' fixed min_scale 1e-3 (eps2)."""
    return [*_optax("adafactor", "adafactor", "optax_adafactor", hp_map=_ADAFACTOR, fixed_hp={"eps2": 1e-3}),
            *_optax("adafactor(multiply_by_parameter_scale=False)", "adafactor", "optax_adafactor[param_scale=none]",
                    kwargs={"multiply_by_parameter_scale": False}, hp_map=_ADAFACTOR)]


_SF = {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "eps": "eps", "weight_decay": "weight_decay",
       "warmup_steps": "warmup_steps", "weight_lr_power": "weight_lr_power"}


def _schedule_free() -> list[OptaxCase]:
    """optax.contrib.schedule_free_adamw (optax/contrib/_schedule_free.py:298-381 at v0.2.8): the params are
    y (schedule_free_eval_params gives x); warmup_steps = 0 is passed as None (no warmup schedule); no r.
    Its bias correction 1 - b2**count is in the parameter dtype (powers=param)."""
    return _optax("contrib.schedule_free_adamw", "contrib.schedule_free_adamw", "optax_schedule_free_adamw",
                  hp_map=_SF, fixed_hp={"r": 0.0})


def cases() -> list[OptaxCase]:
    """Every optax case, in the order of the results (each configuration: eager, then jit)."""
    return [*_sgd_and_adam(), *_adagrad_and_rmsprop(), *_others(), *_muon(), *_adafactor(), *_schedule_free()]
