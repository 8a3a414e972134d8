"""The MXNet 1.9.1 update operators, called directly: one small function per op (`OPS`), each doing
what a caller of the kernel must and nothing more (sources: src/operator/optimizer_op-inl.h,
src/operator/contrib/adamw-inl.h at tag 1.9.1).

Every kernel takes its hyper-parameters as C++ ``float``; `wd` defaults to 0 and `rescale_grad` to 1,
`clip_gradient` is passed only when the golden clips (the kernels' -1 means off).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .cases import MXNetCase


@dataclass
class OpState:
    """What the caller of an update op keeps between steps: the moments (float32 for the mixed-precision
    ``mp_`` ops, which also take float32 master weights), the step count t, and the scalars."""
    nd: Any
    case: MXNetCase
    hp: Mapping[str, Any]
    mom: list
    var: list
    masters: list | None
    rescale: Any                  # rescale_grad as the float32 NDArray adamw_update takes
    common: dict[str, float]      # rescale_grad (and clip_gradient when set), as the kernels take them
    beta1: float
    beta2: float
    wd: float
    t: int = 0

    @classmethod
    def create(cls, nd, case: MXNetCase, hp: Mapping[str, Any], weights: list, ctx, dtype: str) -> "OpState":
        mp = case.native.rsplit(".", 1)[1].startswith("mp_")
        sdtype = "float32" if mp else dtype
        common = {"rescale_grad": float(hp.get("rescale_grad", 1.0))}
        if hp.get("clip_value") is not None:
            common["clip_gradient"] = float(hp["clip_value"])
        return cls(nd=nd, case=case, hp=hp,
                   mom=[nd.zeros(w.shape, ctx=ctx, dtype=sdtype) for w in weights],
                   var=[nd.zeros(w.shape, ctx=ctx, dtype=sdtype) for w in weights],
                   masters=[w.astype("float32") for w in weights] if mp else None,
                   rescale=nd.array([common["rescale_grad"]], ctx=ctx, dtype="float32"), common=common,
                   beta1=float(hp.get("beta1", 0.9)), beta2=float(hp.get("beta2", 0.999)),
                   wd=float(hp.get("weight_decay", 0.0)))


def _sgd(s: OpState, i: int, w, g, lr: float, eta: float) -> None:
    """w -= lr*(g' + wd*w), g' the rescaled, clipped gradient."""
    s.nd.sgd_update(w, g, out=w, lr=lr, wd=s.wd, **s.common)


def _sgd_mom(s: OpState, i: int, w, g, lr: float, eta: float) -> None:
    """mom <- momentum*mom - lr*(g' + wd*w); w += mom (the velocity form)."""
    s.nd.sgd_mom_update(w, g, s.mom[i], out=w, lr=lr, wd=s.wd, momentum=float(s.hp["momentum"]), **s.common)


def _adam(s: OpState, i: int, w, g, lr: float, eta: float) -> None:
    """Coupled L2 inside the clip, no bias correction (the optimizer folds it into lr), eps-hat."""
    s.nd.adam_update(w, g, s.mom[i], s.var[i], out=w, lr=lr, wd=s.wd, beta1=s.beta1, beta2=s.beta2,
                     epsilon=float(s.hp["eps"]), **s.common)


def _adamw_kwargs(s: OpState, lr: float, eta: float) -> dict[str, float]:
    """w -= eta*(lr*m/(sqrt(v)+eps) + wd*w). With `corrected_lr` the caller passes
    lr*sqrt(1-beta2^t)/(1-beta1^t), computed from the betas the kernel uses (C++ float)."""
    if s.case.corrected_lr:
        b1, b2 = float(np.float32(s.beta1)), float(np.float32(s.beta2))
        lr *= math.sqrt(1.0 - b2 ** s.t) / (1.0 - b1 ** s.t)
    return {"lr": lr, "eta": eta, "wd": s.wd, "beta1": s.beta1, "beta2": s.beta2, "epsilon": float(s.hp["eps"]),
            "clip_gradient": s.common.get("clip_gradient", -1.0)}


def _adamw(s: OpState, i: int, w, g, lr: float, eta: float) -> None:
    s.nd.contrib.adamw_update(w, g, s.mom[i], s.var[i], s.rescale, out=w, **_adamw_kwargs(s, lr, eta))


def _mp_adamw(s: OpState, i: int, w, g, lr: float, eta: float) -> None:
    """adamw_update on float32 master weights and moments; float16 weights and gradients."""
    s.nd.contrib.mp_adamw_update(w, g, s.mom[i], s.var[i], s.masters[i], s.rescale, out=w,
                                 **_adamw_kwargs(s, lr, eta))


def _lamb(s: OpState, i: int, w, g, lr: float, eta: float) -> None:
    """Phase 1 gives the direction u (moments, bias correction at step t, + wd*w); the caller takes
    the norms r1 = ||w||, r2 = ||u||; phase 2 clamps r1 to the bounds (passed only when set: lower > 0,
    upper finite) and applies w -= lr*(r1/r2)*u (lr alone when r1 or r2 is 0)."""
    upd = s.nd.lamb_update_phase1(w, g, s.mom[i], s.var[i], beta1=s.beta1, beta2=s.beta2,
                                  epsilon=float(s.hp["eps"]), t=s.t, wd=s.wd,
                                  bias_correction=bool(s.case.kwargs["bias_correction"]), **s.common)
    bounds = {}
    lower, upper = float(s.hp.get("trust_lower_bound", 0.0)), float(s.hp.get("trust_upper_bound", math.inf))
    if lower > 0.0:
        bounds["lower_bound"] = lower
    if math.isfinite(upper):
        bounds["upper_bound"] = upper
    s.nd.lamb_update_phase2(w, upd, w.norm(), upd.norm(), lr=lr, out=w, **bounds)


#: op name (the last component of `Case.native`) -> one update of tensor i: (state, i, w, g, lr, eta)
OPS: Mapping[str, Callable[..., None]] = {
    "sgd_update": _sgd, "sgd_mom_update": _sgd_mom, "adam_update": _adam, "adamw_update": _adamw,
    "mp_adamw_update": _mp_adamw, "lamb_update_phase1": _lamb}
