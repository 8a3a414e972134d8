"""MXNet 1.9.1 adapter: the `mx.optimizer` classes (Python bookkeeping) and the update ops (kernels).

Two kinds of case:

- variant ``optimizer``: an `mx.optimizer.<Class>` object driven the way `mx.optimizer.Updater` drives
  it: one `create_state` and one `update(index, weight, grad, state)` per parameter index and step,
  so the optimizer's own bookkeeping is exercised (per-index step count `t`, the bias correction
  folded into lr, `lr` set per step with `set_learning_rate`). Variant ``optimizer-aggregated`` passes
  every tensor in one `update(indices, weights, grads, states)` call (the `multi_*` kernels of SGD
  and LAMB).
- variant ``op``: the NDArray update operators called directly (`nd.adam_update`, `nd.sgd_mom_update`,
  `nd.lamb_update_phase1/2`, `nd.contrib.adamw_update`, `nd.contrib.mp_adamw_update`), with the
  adapter doing only what a caller must (passing lr, eta, t; the norms between the LAMB phases).

MXNet kernels take their hyper-parameters as C++ ``float``: every case declares ``hp_dtype =
"float32"`` (the expected trajectory is the reference run on float32-rounded hyper-parameters).
Tensors are created under ``mx.util.np_shape(True)`` so that 0-d and zero-size tensors exist (the
legacy shape semantics read a 0 as "unknown"). Sources: python/mxnet/optimizer/optimizer.py and
src/operator/{optimizer_op-inl.h,contrib/adamw-inl.h} at tag 1.9.1 (shared/notes/semantics.md §4).

Hyper-parameters MXNet has no argument for are declared in ``hp_map`` with a marker instead of a
native name, so that the case still runs the goldens (and shows the difference where it matters):
``"state:history"`` -- the adapter writes the value into the state `create_state` returned (AdaGrad
has no initial-accumulator argument; its history starts at 0); ``"hardcoded:0"`` -- MXNet has no
such argument and behaves as if it were 0 (Adamax has no eps): the value is *not* passed.
"""
from __future__ import annotations

import math
import os
import warnings
from typing import Any

import numpy as np

from .base import Adapter, Case, NativeRun, RunInput

F32 = "float32"
_COMMON = {"lr": "learning_rate", "weight_decay": "wd", "rescale_grad": "rescale_grad",
           "clip_value": "clip_gradient"}
_ADAM = {**_COMMON, "beta1": "beta1", "beta2": "beta2", "eps": "epsilon"}
_LAMB = {**_ADAM, "trust_lower_bound": "lower_bound", "trust_upper_bound": "upper_bound"}
_DEVICES = ("cpu", "gpu")
_FLOATS = ("float64", "float32")


def _opt(name: str, cls: str, rule: str, kwargs: dict, hp_map: dict, fixed: dict | None = None,
         dtypes: tuple[str, ...] = _FLOATS, variant: str = "optimizer", notes: str = "",
         hp_dtype: str | None = F32) -> Case:
    return Case(framework="mxnet", name=name, native=f"mxnet.optimizer.{cls}", rule=rule, variant=variant,
                kwargs=kwargs, hp_map=hp_map, fixed_hp=fixed or {}, dtypes=dtypes, devices=_DEVICES,
                hp_dtype=hp_dtype, notes=notes)


def _op(name: str, native: str, rule: str, hp_map: dict, kwargs: dict | None = None, fixed: dict | None = None,
        dtypes: tuple[str, ...] = _FLOATS, notes: str = "") -> Case:
    return Case(framework="mxnet", name=name, native=native, rule=rule, variant="op", kwargs=kwargs or {},
                hp_map=hp_map, fixed_hp=fixed or {}, dtypes=dtypes, devices=_DEVICES, hp_dtype=F32, notes=notes)


def _cases() -> list[Case]:
    sgd_mom = {**_COMMON, "momentum": "momentum"}
    no_nesterov = {"nesterov": False, "dampening": 0.0}
    rms = {**_COMMON, "rho": "gamma1", "eps": "epsilon"}
    rms_fixed = {"initial_accumulator_value": 0.0}
    ada = {**_COMMON, "eps": "eps"}
    ada_fixed = {"lr_decay": 0.0}
    cases = []
    for lazy in (True, False):
        tag = f"lazy_update={lazy}"
        cases += [
            _opt(f"SGD({tag})", "SGD", "sgd", {"momentum": 0.0, "lazy_update": lazy}, dict(_COMMON)),
            _opt(f"SGD(momentum,{tag})", "SGD", "sgd_momentum_inside", {"lazy_update": lazy}, sgd_mom, no_nesterov),
        ]
    cases += [
        _opt("SGD(momentum)", "SGD", "sgd_momentum_inside", {}, sgd_mom, no_nesterov, variant="optimizer-aggregated"),
        # the optimizer folds sqrt(1-beta2^t)/(1-beta1^t) into lr in Python float64 from the unrounded
        # betas (optimizer.py:1616-1619 at 1.9.1); adam_update's EMAs use float betas: powers=exact
        _opt("Adam", "Adam", "mxnet_adam", {}, dict(_ADAM), hp_dtype=F32 + ";powers=exact"),
        _opt("AdaGrad", "AdaGrad", "adagrad_eps_inside[decay=decoupled]", {}, ada,
             {**ada_fixed, "initial_accumulator_value": 0.0},
             dtypes=(F32,), hp_dtype=None,
             notes="history starts at 0 (no argument); decay added to the step: w -= lr*(g/sqrt(H+eps) + wd*w)"),
        _opt("AdaGrad(history0)", "AdaGrad", "adagrad_eps_inside[decay=decoupled]", {},
             {**ada, "initial_accumulator_value": "state:history"}, ada_fixed, dtypes=(F32,), hp_dtype=None,
             notes="the adapter writes initial_accumulator_value into the history state create_state returned"),
        # RMSProp states are created without a dtype (float32): float64 weights raise in the kernel
        _opt("RMSProp", "RMSProp", "rmsprop_eps_inside[clip_scope=gradient_and_decay]", {"centered": False},
             rms, {**rms_fixed, "centered": False}, dtypes=(F32,)),
        _opt("RMSProp(centered,gamma2=0)", "RMSProp", "rmsprop_eps_inside[clip_scope=gradient_and_decay]",
             {"centered": True, "gamma2": 0.0}, rms, {**rms_fixed, "centered": True}, dtypes=(F32,)),
        _opt("RMSProp(centered)", "RMSProp",
             "rmsprop_eps_inside[clip_scope=gradient_and_decay,momentum_form=lr_inside]", {"centered": True},
             {**rms, "momentum": "gamma2"}, {**rms_fixed, "centered": True}, dtypes=(F32,),
             notes="centered RMSProp is Graves' form: delta <- gamma2*delta - lr*g/sqrt(n - gbar^2 + eps)"),
        _opt("LAMB", "LAMB", "lamb", {"bias_correction": True}, dict(_LAMB)),
        _opt("LAMB(bias_correction=False)", "LAMB", "lamb_uncorrected", {"bias_correction": False}, dict(_LAMB)),
        _opt("LAMB", "LAMB", "lamb", {"bias_correction": True}, dict(_LAMB), variant="optimizer-aggregated"),
        _opt("Nadam", "Nadam", "nadam[clip_scope=gradient_and_decay]", {},
             {**_ADAM, "momentum_decay": "schedule_decay"}, hp_dtype=None),
        _opt("Adamax", "Adamax", "adamax[clip_scope=gradient_and_decay]", {},
             {**_COMMON, "beta1": "beta1", "beta2": "beta2", "eps": "hardcoded:0"}, hp_dtype=None,
             notes="MXNet Adamax has no eps: u <- max(beta2*u, |g|), w -= lr/bc1 * m/u"),
        # ---- ops: the kernels, called directly ---------------------------------------------------
        _op("sgd_update", "mxnet.nd.sgd_update", "sgd", dict(_COMMON)),
        _op("sgd_mom_update", "mxnet.nd.sgd_mom_update", "sgd_momentum_inside", sgd_mom, fixed=no_nesterov),
        _op("adam_update", "mxnet.nd.adam_update", "mxnet_adam[bias_correction=off]", dict(_ADAM),
            notes="the op has no bias correction: the optimizer folds it into lr"),
        _op("adamw_update", "mxnet.nd.contrib.adamw_update", "adamw_paper[bias_correction=off]",
            {**_ADAM, "eta": "eta"}, notes="w -= eta*(lr*m/(sqrt(v)+eps) + wd*w): no bias correction, decay x eta"),
        _op("adamw_update(bias-corrected lr)", "mxnet.nd.contrib.adamw_update", "adamw_paper[eps_placement=eps_hat]",
            {**_ADAM, "eta": "eta"}, kwargs={"corrected_lr": True},
            notes="lr passed as lr*sqrt(1-beta2^t)/(1-beta1^t) (as gluon-nlp BERTAdam does), computed from the "
                  "float32 betas the kernel uses"),
        _op("mp_adamw_update(bias-corrected lr)", "mxnet.nd.contrib.mp_adamw_update",
            "adamw_paper[eps_placement=eps_hat]", {**_ADAM, "eta": "eta"}, kwargs={"corrected_lr": True},
            dtypes=("float16",), notes="float16 weights and gradients, float32 master weights and moments"),
        _op("lamb_update_phase1/2", "mxnet.nd.lamb_update_phase1", "lamb", dict(_LAMB),
            kwargs={"bias_correction": True}),
        _op("lamb_update_phase1/2(bias_correction=False)", "mxnet.nd.lamb_update_phase1", "lamb_uncorrected",
            dict(_LAMB), kwargs={"bias_correction": False}),
    ]
    return cases


class MXNetAdapter(Adapter):
    name = "mxnet"
    supports_eta = True      # adamw_update takes eta; every other case folds eta into lr itself (exact there)

    def _import(self):
        # quiet start-up: MXNet 1.9.1 uses numpy aliases deprecated in numpy 1.20-1.23 at import time
        # (DeprecationWarning), and logs storage fallbacks for row_sparse ops; real errors still raise.
        os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")
        os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            import mxnet
        return mxnet

    def devices(self) -> list[str]:
        mx = self.load()
        return ["cpu"] + (["gpu"] if mx.context.num_gpus() > 0 else [])

    def device_name(self, device: str) -> str:
        return "gpu 0" if device == "gpu" else "cpu"

    def cases(self) -> list[Case]:
        return _cases()

    # ---------------------------------------------------------------------------------------------
    def _run(self, case: Case, inp: RunInput, device: str, dtype: str) -> NativeRun:
        mx = self.load()
        ctx = mx.gpu(0) if device == "gpu" else mx.cpu()
        lr, eta = list(inp.lr), list(inp.eta)
        if "eta" not in case.hp_map:     # fold the schedule multiplier (exact: decay scaled by lr or coupled)
            lr, eta = [a * b for a, b in zip(lr, eta)], [1.0] * len(eta)
        with mx.util.np_shape(True), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            # `weight[:] += x` (AdaGrad, Nadam, Adamax) copies an array onto itself: harmless, noisy
            warnings.filterwarnings("ignore", message="You are attempting to copy an array to itself")
            if case.native.startswith("mxnet.optimizer."):
                history = self._run_optimizer(mx, case, inp, ctx, dtype, lr)
            else:
                history = self._run_op(mx, case, inp, ctx, dtype, lr, eta)
        return NativeRun(params={n: np.stack(v) for n, v in history.items()})

    @staticmethod
    def _array(mx, value, ctx, dtype):
        return mx.nd.array(np.asarray(value, dtype=np.float64), ctx=ctx, dtype=dtype)

    @staticmethod
    def _np(arr) -> np.ndarray:
        return arr.asnumpy().astype(np.float64)

    def _run_optimizer(self, mx, case: Case, inp: RunInput, ctx, dtype: str, lr: list[float]):
        cls = getattr(mx.optimizer, case.native.rsplit(".", 1)[1])
        kwargs: dict[str, Any] = case.native_kwargs(inp.hp)
        state_init = {}
        for canonical, native in case.hp_map.items():
            if native.startswith(("state:", "hardcoded:")):
                value = kwargs.pop(native, None)
                if native.startswith("state:") and canonical in inp.hp:
                    state_init[native[len("state:"):]] = value
        kwargs.pop("learning_rate", None)
        opt = cls(learning_rate=lr[0], **kwargs)
        names = inp.tensors
        weights = [self._array(mx, inp.params0[n], ctx, dtype) for n in names]
        states = [opt.create_state(i, w) for i, w in enumerate(weights)]
        if "history" in state_init:      # AdaGrad: the state is the history NDArray itself
            for s in states:
                s[:] = state_init["history"]
        history = {n: [self._np(w)] for n, w in zip(names, weights)}
        aggregated = case.variant == "optimizer-aggregated"
        for t, grads in enumerate(inp.grads):
            opt.set_learning_rate(lr[t])
            g = [self._array(mx, grads[n], ctx, dtype) for n in names]
            if aggregated:
                opt.update(list(range(len(names))), weights, g, states)
            else:
                for i in range(len(names)):
                    opt.update(i, weights[i], g[i], states[i])
            for n, w in zip(names, weights):
                history[n].append(self._np(w))
        return history

    def _run_op(self, mx, case: Case, inp: RunInput, ctx, dtype: str, lr: list[float], eta: list[float]):
        nd = mx.nd
        hp = inp.hp
        op = case.native.rsplit(".", 1)[1]
        beta1, beta2 = float(hp.get("beta1", 0.9)), float(hp.get("beta2", 0.999))
        common = {"rescale_grad": float(hp.get("rescale_grad", 1.0))}
        if hp.get("clip_value") is not None:
            common["clip_gradient"] = float(hp["clip_value"])
        wd = float(hp.get("weight_decay", 0.0))
        mp = op.startswith("mp_")
        wdtype = dtype
        names = inp.tensors
        weights = [self._array(mx, inp.params0[n], ctx, wdtype) for n in names]
        sdtype = "float32" if mp else wdtype
        masters = [w.astype("float32") for w in weights] if mp else None
        mom = [nd.zeros(w.shape, ctx=ctx, dtype=sdtype) for w in weights]
        var = [nd.zeros(w.shape, ctx=ctx, dtype=sdtype) for w in weights]
        history = {n: [self._np(w)] for n, w in zip(names, weights)}
        for t, grads in enumerate(inp.grads):
            step = t + 1
            for i, n in enumerate(names):
                w, g = weights[i], self._array(mx, grads[n], ctx, wdtype)
                if op == "sgd_update":
                    nd.sgd_update(w, g, out=w, lr=lr[t], wd=wd, **common)
                elif op == "sgd_mom_update":
                    nd.sgd_mom_update(w, g, mom[i], out=w, lr=lr[t], wd=wd, momentum=float(hp["momentum"]), **common)
                elif op == "adam_update":
                    nd.adam_update(w, g, mom[i], var[i], out=w, lr=lr[t], wd=wd, beta1=beta1, beta2=beta2,
                                   epsilon=float(hp["eps"]), **common)
                elif op in ("adamw_update", "mp_adamw_update"):
                    step_lr = lr[t]
                    if case.kwargs.get("corrected_lr"):     # with the betas the kernel uses (C++ float)
                        b1, b2 = float(np.float32(beta1)), float(np.float32(beta2))
                        step_lr *= math.sqrt(1.0 - b2 ** step) / (1.0 - b1 ** step)
                    rescale = nd.array([common["rescale_grad"]], ctx=ctx, dtype="float32")
                    kw = {"lr": step_lr, "eta": eta[t], "wd": wd, "beta1": beta1, "beta2": beta2,
                          "epsilon": float(hp["eps"]), "clip_gradient": common.get("clip_gradient", -1.0)}
                    if mp:
                        nd.contrib.mp_adamw_update(w, g, mom[i], var[i], masters[i], rescale, out=w, **kw)
                    else:
                        nd.contrib.adamw_update(w, g, mom[i], var[i], rescale, out=w, **kw)
                elif op == "lamb_update_phase1":
                    upd = nd.lamb_update_phase1(w, g, mom[i], var[i], beta1=beta1, beta2=beta2,
                                                epsilon=float(hp["eps"]), t=step, wd=wd,
                                                bias_correction=bool(case.kwargs["bias_correction"]), **common)
                    bounds = {}
                    lower, upper = float(hp.get("trust_lower_bound", 0.0)), float(hp.get("trust_upper_bound", math.inf))
                    if lower > 0.0:
                        bounds["lower_bound"] = lower
                    if math.isfinite(upper):
                        bounds["upper_bound"] = upper
                    nd.lamb_update_phase2(w, upd, w.norm(), upd.norm(), lr=lr[t], out=w, **bounds)
                else:
                    raise ValueError(f"{case.id}: unknown op {op!r}")
            for n, w in zip(names, weights):
                history[n].append(self._np(w))
        return history


ADAPTER = MXNetAdapter()
