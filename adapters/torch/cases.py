"""torch.optim cases: every optimizer on each implementation torch offers for it -- the single-tensor
for-loop (``foreach=False``), ``foreach=True``, and ``fused=True`` (SGD, Adam, AdamW, Adagrad; CPU
included since torch 2.4). Rules read from torch/optim/*.py at v2.13.0 and confirmed by running
(spec/README.md, native-name crosswalk).
"""
from __future__ import annotations

from typing import Any, Mapping

from optconform.adapters.base import Arg, Case
from optconform.reference.precision import Powers, ScalarPrecision

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


#: Under torch.compile the foreach Adam family computes its bias corrections from the float32 `step`
#: tensor: `_get_value(step)` returns the tensor while compiling (torch/optim/optimizer.py:90-95 at
#: v2.13.0; eager calls .item()), so `1 - beta ** step` is float32 arithmetic on float32-rounded betas
#: (torch/optim/adam.py:771-778) -- Powers.FLOAT32, measured to conform (0.15 units) where the default
#: model is 2-6 tolerance units off at step 1 (1 - float32(0.999) is 1.3e-5 away from 1e-3).
COMPILED_PRECISION = ScalarPrecision(powers=Powers.FLOAT32)
#: Case name -> (torch.optim class, scalar precision) of the torch.compile'd cases: the benchmark's
#: headline rule only. Every golden compiles: AdamW's 13 cost 37 s of CPU from a cold inductor cache
#: (7 s warm); SGD(momentum)'s 16 (measured: all conform, 0.30 units, no precision model needed)
#: would add 66 s more to the torch lane, so it is not in the matrix.
COMPILED: Mapping[str, tuple[str, ScalarPrecision | None]] = {"AdamW": ("AdamW", COMPILED_PRECISION)}


def compiled_factory(cls_name: str):
    """`factory(params, **kwargs)`: torch.optim.<cls_name>(params, **kwargs) with its `step` wrapped in
    torch.compile (the torch.compile-optimizer tutorial's pattern). `torch._dynamo.reset()` first, so
    every optimizer instance compiles afresh and dynamo's recompile limit never carries over from the
    previous instance (a run past the limit would silently step eagerly). dynamo's log is set to errors
    only: its two warnings here are expected and documented in `compiled_cases` (the recompile limit) or
    harmless (optimizer.step's profiler `record_function` is ignored while tracing)."""
    def factory(params, **kwargs):
        import logging

        import torch
        torch._logging.set_logs(dynamo=logging.ERROR)
        torch._dynamo.reset()
        optimizer = getattr(torch.optim, cls_name)(params, **kwargs)
        optimizer.step = torch.compile(optimizer.step)
        return optimizer
    factory.__name__ = factory.__qualname__ = f"compiled_{cls_name}"
    return factory


def compiled_cases(base: list[Case]) -> list[Case]:
    """The `compiled` variant of each COMPILED optimizer: its foreach case with `step` wrapped in
    torch.compile (inductor's C++ kernels on CPU). float32 only: every golden compiles (0.3-3 s each on
    CPU, 20 s for the first of a process with a cold cache), and float32 is the dtype the benchmark times.
    CPU only: no CUDA device was lent to verify the precision model under inductor's Triton kernels,
    and tools/gpu-check's budget has no room for 13 Triton compilations.

    A golden whose lr changes every step (adamw__random_wide: 100 values) recompiles the step per new
    Python-float lr (dynamo guards on `param_groups[0]['lr']`); past torch._dynamo.config.recompile_limit
    (8) dynamo runs the step eagerly, so that golden checks the compiled kernel on its first 8 steps."""
    out = []
    for case in base:
        if case.name in COMPILED and case.variant == "foreach":
            cls, precision = COMPILED[case.name]
            out.append(Case(framework="torch", name=case.name, native=case.native, rule=case.rule, variant="compiled",
                            kwargs=dict(case.kwargs), hp_map=case.hp_map, fixed_hp=case.fixed_hp, dtypes=("float32",),
                            devices=("cpu",),
                            precision=precision, factory=compiled_factory(cls),
                            notes="foreach optimizer, step wrapped in torch.compile"))
    return out


def cases() -> list[Case]:
    """Every torch case; a compiled variant follows its optimizer's other variants."""
    base = _native_cases()
    compiled = {c.name: c for c in compiled_cases(base)}
    out: list[Case] = []
    for i, case in enumerate(base):
        out.append(case)
        last_of_name = i + 1 == len(base) or base[i + 1].name != case.name
        if last_of_name and case.name in compiled:
            out.append(compiled[case.name])
    return out


def _native_cases() -> list[Case]:
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
