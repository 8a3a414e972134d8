"""MXNet 1.9.1 cases: the `mx.optimizer` classes (Python bookkeeping) and the update ops (kernels).

Two kinds of case:

- variant ``optimizer``: an `mx.optimizer.<Class>` object driven the way `mx.optimizer.Updater` drives
  it: one `create_state` and one `update(index, weight, grad, state)` per parameter index and step,
  so the optimizer's own bookkeeping is exercised (per-index step count `t`, the bias correction
  folded into lr, `lr` set per step with `set_learning_rate`). Variant ``optimizer-aggregated`` passes
  the tensors as lists to `update(indices, weights, grads, states)` (the `multi_*` kernels of SGD
  and LAMB).
- variant ``op``: the NDArray update operators called directly (`nd.adam_update`, `nd.sgd_mom_update`,
  `nd.lamb_update_phase1/2`, `nd.contrib.adamw_update`, `nd.contrib.mp_adamw_update`), with the
  driver doing only what a caller must (passing lr, eta, t; the norms between the LAMB phases).

MXNet kernels take their hyper-parameters as C++ ``float``: the cases declare ``precision=FLOAT32``
(the expected trajectory is the reference run on float32-rounded hyper-parameters). Sources:
python/mxnet/optimizer/optimizer.py and src/operator/{optimizer_op-inl.h,contrib/adamw-inl.h} at
tag 1.9.1.

Hyper-parameters MXNet has no argument for are mapped to a `Hook`, so that the case still runs the
goldens (and shows the difference where it matters): `InitialState` -- the driver writes the value
into the state `create_state` returned (AdaGrad has no initial-accumulator argument; its history
starts at 0); `Hardcoded` -- MXNet has no such argument and behaves as if it were that value (Adamax
has no eps): the value is *not* passed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from optconform.adapters.base import Case, Hook
from optconform.reference.precision import ALL, FLOAT32, Powers, ScalarPrecision


@dataclass(frozen=True)
class InitialState(Hook):
    """The value is written into the optimizer state `slot` after `create_state` (one slot:
    ``"history"``, AdaGrad's accumulator, which `create_state` returns as zeros: optimizer.py:1662-1663
    at 1.9.1)."""
    slot: str


@dataclass(frozen=True)
class Hardcoded(Hook):
    """MXNet has no argument for the hyper-parameter and behaves as if it were `value`; the golden's
    value is not passed anywhere (the comparison shows where it matters)."""
    value: float


@dataclass(frozen=True)
class MXNetCase(Case):
    """corrected_lr (op cases): the caller passes lr*sqrt(1-beta2^t)/(1-beta1^t) to the kernel, as
    gluon-nlp BERTAdam does, computed from the float32 betas the kernel uses."""
    corrected_lr: bool = False


_DEVICES = ("cpu", "gpu")
_FLOATS = ("float64", "float32")
_COMMON = {"lr": "learning_rate", "weight_decay": "wd", "rescale_grad": "rescale_grad",
           "clip_value": "clip_gradient"}
_ADAM = {**_COMMON, "beta1": "beta1", "beta2": "beta2", "eps": "epsilon"}
_LAMB = {**_ADAM, "trust_lower_bound": "lower_bound", "trust_upper_bound": "upper_bound"}
_SGD_MOM = {**_COMMON, "momentum": "momentum"}
_NO_NESTEROV = {"nesterov": False, "dampening": 0.0}
_RMS = {**_COMMON, "rho": "gamma1", "eps": "epsilon"}
_RMS_FIXED = {"initial_accumulator_value": 0.0}
_ADA = {**_COMMON, "eps": "eps"}
_ADA_FIXED = {"lr_decay": 0.0}
#: the Adam optimizer folds sqrt(1-beta2^t)/(1-beta1^t) into lr in Python float64 from the unrounded
#: betas (optimizer.py:1616-1619 at 1.9.1); adam_update's EMAs use float betas
_EXACT_POWERS = ScalarPrecision(ALL, Powers.EXACT)


def _optimizer(name: str, cls: str, rule: str, *, kwargs: Mapping[str, Any] | None = None,
               hp_map: Mapping[str, Any], fixed_hp: Mapping[str, Any] | None = None,
               dtypes: tuple[str, ...] = _FLOATS, variant: str = "optimizer",
               precision: ScalarPrecision | None = FLOAT32, notes: str = "") -> MXNetCase:
    """One configuration of mx.optimizer.<cls>."""
    return MXNetCase(framework="mxnet", name=name, native=f"mxnet.optimizer.{cls}", rule=rule, variant=variant,
                     kwargs=kwargs or {}, hp_map=hp_map, fixed_hp=fixed_hp or {}, dtypes=dtypes, devices=_DEVICES,
                     precision=precision, notes=notes)


def _op(name: str, native: str, rule: str, *, hp_map: Mapping[str, Any], kwargs: Mapping[str, Any] | None = None,
        fixed_hp: Mapping[str, Any] | None = None, corrected_lr: bool = False,
        dtypes: tuple[str, ...] = _FLOATS, notes: str = "") -> MXNetCase:
    """One update operator, called directly."""
    return MXNetCase(framework="mxnet", name=name, native=native, rule=rule, variant="op", kwargs=kwargs or {},
                     hp_map=hp_map, fixed_hp=fixed_hp or {}, dtypes=dtypes, devices=_DEVICES, precision=FLOAT32,
                     notes=notes, corrected_lr=corrected_lr)


def _optimizers() -> list[MXNetCase]:
    cases = []
    for lazy in (True, False):
        tag = f"lazy_update={lazy}"
        cases += [
            _optimizer(f"SGD({tag})", "SGD", "sgd", kwargs={"momentum": 0.0, "lazy_update": lazy}, hp_map=_COMMON),
            _optimizer(f"SGD(momentum,{tag})", "SGD", "sgd_momentum_inside", kwargs={"lazy_update": lazy},
                       hp_map=_SGD_MOM, fixed_hp=_NO_NESTEROV),
        ]
    return cases + [
        _optimizer("SGD(momentum)", "SGD", "sgd_momentum_inside", hp_map=_SGD_MOM, fixed_hp=_NO_NESTEROV,
                   variant="optimizer-aggregated"),
        _optimizer("Adam", "Adam", "mxnet_adam", hp_map=_ADAM, precision=_EXACT_POWERS),
        _optimizer("AdaGrad", "AdaGrad", "adagrad_eps_inside[decay=decoupled]", hp_map=_ADA,
                   fixed_hp={**_ADA_FIXED, "initial_accumulator_value": 0.0}, dtypes=("float32",), precision=None,
                   notes="history starts at 0 (no argument); decay added to the step: w -= lr*(g/sqrt(H+eps) + wd*w)"),
        _optimizer("AdaGrad(history0)", "AdaGrad", "adagrad_eps_inside[decay=decoupled]",
                   hp_map={**_ADA, "initial_accumulator_value": InitialState("history")}, fixed_hp=_ADA_FIXED,
                   dtypes=("float32",), precision=None,
                   notes="the adapter writes initial_accumulator_value into the history state create_state returned"),
        # RMSProp states are created without a dtype (float32): float64 weights raise in the kernel
        _optimizer("RMSProp", "RMSProp", "rmsprop_eps_inside[clip_scope=gradient_and_decay]",
                   kwargs={"centered": False}, hp_map=_RMS, fixed_hp={**_RMS_FIXED, "centered": False},
                   dtypes=("float32",)),
        _optimizer("RMSProp(centered,gamma2=0)", "RMSProp", "rmsprop_eps_inside[clip_scope=gradient_and_decay]",
                   kwargs={"centered": True, "gamma2": 0.0}, hp_map=_RMS, fixed_hp={**_RMS_FIXED, "centered": True},
                   dtypes=("float32",)),
        _optimizer("RMSProp(centered)", "RMSProp",
                   "rmsprop_eps_inside[clip_scope=gradient_and_decay,momentum_form=lr_inside]",
                   kwargs={"centered": True}, hp_map={**_RMS, "momentum": "gamma2"},
                   fixed_hp={**_RMS_FIXED, "centered": True}, dtypes=("float32",),
                   notes="centered RMSProp is Graves' form: delta <- gamma2*delta - lr*g/sqrt(n - gbar^2 + eps)"),
        _optimizer("LAMB", "LAMB", "lamb", kwargs={"bias_correction": True}, hp_map=_LAMB),
        _optimizer("LAMB(bias_correction=False)", "LAMB", "lamb_uncorrected", kwargs={"bias_correction": False},
                   hp_map=_LAMB),
        _optimizer("LAMB", "LAMB", "lamb", kwargs={"bias_correction": True}, hp_map=_LAMB,
                   variant="optimizer-aggregated"),
        _optimizer("Nadam", "Nadam", "nadam[clip_scope=gradient_and_decay]",
                   hp_map={**_ADAM, "momentum_decay": "schedule_decay"}, precision=None),
        _optimizer("Adamax", "Adamax", "adamax[clip_scope=gradient_and_decay]",
                   hp_map={**_COMMON, "beta1": "beta1", "beta2": "beta2", "eps": Hardcoded(0.0)}, precision=None,
                   notes="MXNet Adamax has no eps: u <- max(beta2*u, |g|), w -= lr/bc1 * m/u"),
    ]


def _ops() -> list[MXNetCase]:
    adamw = {**_ADAM, "eta": "eta"}
    return [
        _op("sgd_update", "mxnet.nd.sgd_update", "sgd", hp_map=_COMMON),
        _op("sgd_mom_update", "mxnet.nd.sgd_mom_update", "sgd_momentum_inside", hp_map=_SGD_MOM,
            fixed_hp=_NO_NESTEROV),
        _op("adam_update", "mxnet.nd.adam_update", "mxnet_adam[bias_correction=off]", hp_map=_ADAM,
            notes="the op has no bias correction: the optimizer folds it into lr"),
        _op("adamw_update", "mxnet.nd.contrib.adamw_update", "adamw_paper[bias_correction=off]", hp_map=adamw,
            notes="w -= eta*(lr*m/(sqrt(v)+eps) + wd*w): no bias correction, decay x eta"),
        _op("adamw_update(bias-corrected lr)", "mxnet.nd.contrib.adamw_update", "adamw_paper[eps_placement=eps_hat]",
            hp_map=adamw, corrected_lr=True,
            notes="lr passed as lr*sqrt(1-beta2^t)/(1-beta1^t) (as gluon-nlp BERTAdam does), computed from the "
                  "float32 betas the kernel uses"),
        _op("mp_adamw_update(bias-corrected lr)", "mxnet.nd.contrib.mp_adamw_update",
            "adamw_paper[eps_placement=eps_hat]", hp_map=adamw, corrected_lr=True, dtypes=("float16",),
            notes="float16 weights and gradients, float32 master weights and moments"),
        _op("lamb_update_phase1/2", "mxnet.nd.lamb_update_phase1", "lamb", hp_map=_LAMB,
            kwargs={"bias_correction": True}),
        _op("lamb_update_phase1/2(bias_correction=False)", "mxnet.nd.lamb_update_phase1", "lamb_uncorrected",
            hp_map=_LAMB, kwargs={"bias_correction": False}),
    ]


def cases() -> list[MXNetCase]:
    return _optimizers() + _ops()
