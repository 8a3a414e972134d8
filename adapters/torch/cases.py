"""torch.optim cases: every optimizer on each implementation torch offers for it -- the single-tensor
for-loop (``foreach=False``), ``foreach=True``, and ``fused=True`` (SGD, Adam, AdamW, Adagrad; CPU
included since torch 2.4). Rules read from torch/optim/*.py at v2.13.0 and confirmed by running
(spec/README.md, native-name crosswalk).
"""
from __future__ import annotations

from typing import Any, Mapping

from optconform.adapters.base import Arg, Case
from optconform.reference.precision import ScalarPrecision

_ADAM_HP = {"lr": "lr", "beta1": Arg("betas", 0), "beta2": Arg("betas", 1), "eps": "eps"}
_WD = {"weight_decay": "weight_decay"}
_SGD_MOMENTUM = {"lr": "lr", "momentum": "momentum", "dampening": "dampening", **_WD}
_RMSPROP = {"lr": "lr", "rho": "alpha", "eps": "eps", **_WD}
_NADAM = {**_ADAM_HP, **_WD, "momentum_decay": "momentum_decay"}
#: torch RMSprop's square_avg always starts at 0
_V0 = {"initial_accumulator_value": 0.0}
#: Optimizers with a fused implementation.
FUSED = ("SGD", "Adam", "AdamW", "Adagrad")
#: Implementation variant -> the keyword that selects it.
VARIANTS: Mapping[str, Mapping[str, bool]] = {
    "forloop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def _optimizer(name: str, cls: str, rule: str, *, kwargs: Mapping[str, Any] | None = None,
               hp_map: Mapping[str, Any], fixed_hp: Mapping[str, Any] | None = None) -> list[Case]:
    """One configuration of torch.optim.<cls>, on every implementation torch has for it."""
    variants = [v for v in VARIANTS if v != "fused" or cls in FUSED]
    return [Case(framework="torch", name=name, native=f"torch.optim.{cls}", rule=rule, variant=variant,
                 kwargs={**(kwargs or {}), **VARIANTS[variant]}, hp_map=hp_map, fixed_hp=fixed_hp or {},
                 dtypes=("float64", "float32", "bfloat16"))
            for variant in variants]


_MUON = {"lr": "lr", "weight_decay": "weight_decay", "momentum": "momentum", "nesterov": "nesterov", "eps": "eps",
         "ns_a": Arg("ns_coefficients", 0), "ns_b": Arg("ns_coefficients", 1), "ns_c": Arg("ns_coefficients", 2),
         "ns_steps": "ns_steps"}
#: torch.optim.Muon computes its Newton-Schulz iteration in bfloat16 whatever the parameters' dtype
#: (`grad.bfloat16()`, torch/optim/_muon.py:55 at v2.13.0): modelled, not widened (spec/muon.md).
MUON_PRECISION = ScalarPrecision(iteration="bfloat16")


def muon_cases() -> list[Case]:
    """torch.optim.Muon (one implementation: foreach raises, torch/optim/_muon.py:365-366), 2-D tensors
    only (it raises on others at construction, _muon.py:128-133): the case runs the 2-D goldens."""
    common = dict(framework="torch", native="torch.optim.Muon", variant="default", hp_map=_MUON,
                  dtypes=("float64", "float32", "bfloat16"), precision=MUON_PRECISION, tensor_ndims=(2,))
    return [
        # its docstring's buffer is B <- mu*B + g (torch/optim/_muon.py:220), the code an EMA (lerp, :333)
        Case(name="Muon", rule="muon", documented_rule="muon[muon_buffer=sum]", **common),
        Case(name="Muon(adjust_lr_fn=match_rms_adamw)", rule="muon[shape_scaling=rms]",
             kwargs={"adjust_lr_fn": "match_rms_adamw"}, fixed_hp={"rms_rate": 0.2}, **common),
    ]


_ADAFACTOR = {"lr": "lr", "beta2_decay": "beta2_decay", "eps": Arg("eps", 0), "eps2": Arg("eps", 1),
              "clip_threshold": "d", "weight_decay": "weight_decay"}


def adafactor_cases() -> list[Case]:
    """torch.optim.Adafactor, for-loop and foreach (torch/optim/_adafactor.py at v2.13.0); it factors every
    tensor with two or more axes (min_dim_size_to_factor = 0)."""
    return [Case(framework="torch", name="Adafactor", native="torch.optim.Adafactor", rule="adafactor",
                 variant=variant, kwargs=dict(VARIANTS[variant]), hp_map=_ADAFACTOR,
                 fixed_hp={"min_dim_size_to_factor": 0}, dtypes=("float64", "float32", "bfloat16"))
            for variant in ("forloop", "foreach")]


_SF = {"lr": "lr", "beta1": Arg("betas", 0), "beta2": Arg("betas", 1), "eps": "eps", "weight_decay": "weight_decay",
       "warmup_steps": "warmup_steps", "r": "r", "weight_lr_power": "weight_lr_power"}


def schedule_free_cases() -> list[Case]:
    """schedulefree.AdamWScheduleFree (the `schedulefree` package, 1.4.1; schedulefree/adamw_schedulefree.py:
    121-213), for-loop and foreach, stepped in train mode (the parameters are y); n/a where the package is
    not installed (the torch lane: it runs in an environment with `pip install schedulefree`)."""
    return [Case(framework="torch", name="AdamWScheduleFree", native="schedulefree.AdamWScheduleFree",
                 rule="schedulefree_adamw", variant=variant, kwargs=dict(VARIANTS[variant]), hp_map=_SF,
                 dtypes=("float64", "float32", "bfloat16"))
            for variant in ("forloop", "foreach")]


def cases() -> list[Case]:
    return [
        *_optimizer("SGD", "SGD", "sgd", kwargs={"momentum": 0.0}, hp_map={"lr": "lr", **_WD}),
        *_optimizer("SGD(momentum)", "SGD", "sgd_momentum", kwargs={"nesterov": False}, hp_map=_SGD_MOMENTUM,
                    fixed_hp={"nesterov": False}),
        *_optimizer("SGD(nesterov)", "SGD", "sgd_momentum", kwargs={"nesterov": True, "dampening": 0.0},
                    hp_map={"lr": "lr", "momentum": "momentum", **_WD}, fixed_hp={"nesterov": True, "dampening": 0.0}),
        *_optimizer("Adam", "Adam", "adam", kwargs={"weight_decay": 0.0}, hp_map=_ADAM_HP),
        *_optimizer("Adam(weight_decay)", "Adam", "adam_l2", hp_map={**_ADAM_HP, **_WD}),
        *_optimizer("Adam(amsgrad)", "Adam", "amsgrad", kwargs={"weight_decay": 0.0, "amsgrad": True}, hp_map=_ADAM_HP),
        *_optimizer("Adam(decoupled_weight_decay)", "Adam", "adamw", kwargs={"decoupled_weight_decay": True},
                    hp_map={**_ADAM_HP, **_WD}),
        *_optimizer("AdamW", "AdamW", "adamw", hp_map={**_ADAM_HP, **_WD}),
        *_optimizer("AdamW(amsgrad)", "AdamW", "adamw_amsgrad", kwargs={"amsgrad": True}, hp_map={**_ADAM_HP, **_WD}),
        *_optimizer("Adagrad", "Adagrad", "adagrad",
                    hp_map={"lr": "lr", "lr_decay": "lr_decay", "initial_accumulator_value": "initial_accumulator_value",
                            "eps": "eps", **_WD}),
        *_optimizer("RMSprop", "RMSprop", "rmsprop", kwargs={"centered": False, "momentum": 0.0}, hp_map=_RMSPROP,
                    fixed_hp={"centered": False, **_V0}),
        *_optimizer("RMSprop(centered)", "RMSprop", "rmsprop", kwargs={"centered": True, "momentum": 0.0},
                    hp_map=_RMSPROP, fixed_hp={"centered": True, **_V0}),
        *_optimizer("RMSprop(momentum)", "RMSprop", "rmsprop_momentum", kwargs={"centered": False},
                    hp_map={**_RMSPROP, "momentum": "momentum"}, fixed_hp={"centered": False, **_V0}),
        *_optimizer("RMSprop(centered,momentum)", "RMSprop", "rmsprop_momentum", kwargs={"centered": True},
                    hp_map={**_RMSPROP, "momentum": "momentum"}, fixed_hp={"centered": True, **_V0}),
        *_optimizer("NAdam", "NAdam", "nadam", hp_map=_NADAM),
        *_optimizer("NAdam(decoupled_weight_decay)", "NAdam", "nadamw", kwargs={"decoupled_weight_decay": True},
                    hp_map=_NADAM),
        *_optimizer("RAdam", "RAdam", "radam", hp_map={**_ADAM_HP, **_WD}),
        *_optimizer("RAdam(decoupled_weight_decay)", "RAdam", "radamw", kwargs={"decoupled_weight_decay": True},
                    hp_map={**_ADAM_HP, **_WD}),
        *_optimizer("Adamax", "Adamax", "adamax", hp_map={**_ADAM_HP, **_WD}),
        *muon_cases(),
        *adafactor_cases(),
        *schedule_free_cases(),
    ]
