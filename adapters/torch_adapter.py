"""torch.optim adapter: stateful optimizers, lr changed per step through `param_groups`.

Every optimizer runs on each implementation torch offers for it: the single-tensor for-loop
(`foreach=False`), `foreach=True`, and `fused=True` (SGD, Adam, AdamW, Adagrad; CPU included since
torch 2.4). Sources: torch/optim/*.py of torch 2.13 (shared/notes/semantics.md section 1).
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from .base import Adapter, Case, NativeRun, RunInput

_ADAM_HP = {"lr": "lr", "beta1": "betas[0]", "beta2": "betas[1]", "eps": "eps"}
_WD = {"weight_decay": "weight_decay"}
#: torch state key -> spec state name
STATE_NAMES = {"exp_avg": "m", "exp_avg_sq": "v", "max_exp_avg_sq": "v_max", "momentum_buffer": "momentum",
               "sum": "sum", "square_avg": "v", "grad_avg": "g_avg", "exp_inf": "u", "mu_product": "mu_product"}
_FUSED = ("SGD", "Adam", "AdamW", "Adagrad")
FUSED_CPU_SINCE = (2, 4)


def _release(version: str) -> tuple[int, ...]:
    """'2.13.0+cpu' -> (2, 13)."""
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0])[:2])


def _configs() -> list[tuple[str, str, str, dict, dict, dict]]:
    """(case name, torch class, claimed rule, fixed kwargs, hp_map, fixed_hp) per configuration."""
    sgd_mom = {"lr": "lr", "momentum": "momentum", "dampening": "dampening", **_WD}
    rms = {"lr": "lr", "rho": "alpha", "eps": "eps", **_WD}
    nadam = {**_ADAM_HP, **_WD, "momentum_decay": "momentum_decay"}
    v0 = {"initial_accumulator_value": 0.0}           # torch RMSprop's square_avg always starts at 0
    return [
        ("SGD", "SGD", "sgd", {"momentum": 0.0}, {"lr": "lr", **_WD}, {}),
        ("SGD(momentum)", "SGD", "sgd_momentum", {"nesterov": False}, sgd_mom, {"nesterov": False}),
        ("SGD(nesterov)", "SGD", "sgd_momentum", {"nesterov": True, "dampening": 0.0},
         {"lr": "lr", "momentum": "momentum", **_WD}, {"nesterov": True, "dampening": 0.0}),
        ("Adam", "Adam", "adam", {"weight_decay": 0.0}, dict(_ADAM_HP), {}),
        ("Adam(weight_decay)", "Adam", "adam_l2", {}, {**_ADAM_HP, **_WD}, {}),
        ("Adam(amsgrad)", "Adam", "amsgrad", {"weight_decay": 0.0, "amsgrad": True}, dict(_ADAM_HP), {}),
        ("Adam(decoupled_weight_decay)", "Adam", "adamw", {"decoupled_weight_decay": True}, {**_ADAM_HP, **_WD}, {}),
        ("AdamW", "AdamW", "adamw", {}, {**_ADAM_HP, **_WD}, {}),
        ("AdamW(amsgrad)", "AdamW", "adamw_amsgrad", {"amsgrad": True}, {**_ADAM_HP, **_WD}, {}),
        ("Adagrad", "Adagrad", "adagrad", {},
         {"lr": "lr", "lr_decay": "lr_decay", "initial_accumulator_value": "initial_accumulator_value",
          "eps": "eps", **_WD}, {}),
        ("RMSprop", "RMSprop", "rmsprop", {"centered": False, "momentum": 0.0}, rms, {"centered": False, **v0}),
        ("RMSprop(centered)", "RMSprop", "rmsprop", {"centered": True, "momentum": 0.0}, rms, {"centered": True, **v0}),
        ("RMSprop(momentum)", "RMSprop", "rmsprop_momentum", {"centered": False},
         {**rms, "momentum": "momentum"}, {"centered": False, **v0}),
        ("RMSprop(centered,momentum)", "RMSprop", "rmsprop_momentum", {"centered": True},
         {**rms, "momentum": "momentum"}, {"centered": True, **v0}),
        ("NAdam", "NAdam", "nadam", {}, nadam, {}),
        ("NAdam(decoupled_weight_decay)", "NAdam", "nadamw", {"decoupled_weight_decay": True}, nadam, {}),
        ("RAdam", "RAdam", "radam", {}, {**_ADAM_HP, **_WD}, {}),
        ("RAdam(decoupled_weight_decay)", "RAdam", "radamw", {"decoupled_weight_decay": True}, {**_ADAM_HP, **_WD}, {}),
        ("Adamax", "Adamax", "adamax", {}, {**_ADAM_HP, **_WD}, {}),
    ]


def _cases() -> list[Case]:
    cases = []
    for name, cls, rule, kwargs, hp_map, fixed in _configs():
        variants = [("forloop", {"foreach": False}), ("foreach", {"foreach": True})]
        if cls in _FUSED:
            variants.append(("fused", {"fused": True}))
        for variant, impl in variants:
            cases.append(Case(framework="torch", name=name, native=f"torch.optim.{cls}", rule=rule, variant=variant,
                              kwargs={**kwargs, **impl}, hp_map=hp_map, fixed_hp=fixed,
                              dtypes=("float64", "float32", "bfloat16")))
    return cases


class TorchAdapter(Adapter):
    name = "torch"
    factory_style = "params"       # factory(params, **hp) -> torch.optim.Optimizer-like

    def _import(self):
        import torch
        return torch

    def devices(self) -> list[str]:
        torch = self.load()
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    def device_name(self, device: str) -> str:
        torch = self.load()
        if device == "cuda":
            props = torch.cuda.get_device_properties(0)
            return f"{props.name} (CUDA {torch.version.cuda})"
        return "cpu"

    def cases(self) -> list[Case]:
        return _cases()

    def unsupported(self, case: Case, device: str) -> str:
        """Also: `fused=True` on CPU needs torch >= 2.4 (earlier releases raise "fused=True requires
        ... devices: ['cuda']"; CPU kernels added in torch/optim/optimizer.py
        `_get_fused_kernel_supported_devices` at v2.4.0)."""
        reason = super().unsupported(case, device)
        if not reason and case.kwargs.get("fused") and device == "cpu" and _release(self.version()) < FUSED_CPU_SINCE:
            reason = f"fused=True runs on CPU only since torch 2.4 (this is {self.version()})"
        return reason

    def _run(self, case: Case, inp: RunInput, device: str, dtype: str) -> NativeRun:
        torch = self.load()
        tdtype = getattr(torch, dtype)
        params = [torch.tensor(np.asarray(inp.params0[n]), dtype=tdtype, device=device).requires_grad_(True)
                  for n in inp.tensors]
        kwargs: dict[str, Any] = case.native_kwargs(inp.hp)
        if case.factory is not None:
            if "lr" in case.hp_map:
                kwargs["lr"] = inp.lr[0]
            optimizer = case.factory(params, **kwargs)
        else:
            cls = getattr(torch.optim, case.native.rsplit(".", 1)[1])
            optimizer = cls(params, lr=inp.lr[0], **kwargs)
        history = {n: [p.detach().to(torch.float64).cpu().numpy().copy()] for n, p in zip(inp.tensors, params)}
        state_history: dict[str, dict[str, list]] = {}
        for t, grads in enumerate(inp.grads):
            for n, p in zip(inp.tensors, params):
                p.grad = torch.tensor(np.asarray(grads[n]), dtype=tdtype, device=device)
            for group in optimizer.param_groups:
                group["lr"] = inp.lr[t]                         # schedule applied the torch way
            optimizer.step()
            for n, p in zip(inp.tensors, params):
                history[n].append(p.detach().to(torch.float64).cpu().numpy().copy())
                for key, value in optimizer.state[p].items():
                    if key in STATE_NAMES and torch.is_tensor(value):
                        state_history.setdefault(STATE_NAMES[key], {}).setdefault(n, []).append(
                            value.detach().to(torch.float64).cpu().numpy().copy())
        state = {}
        for spec_name, per_tensor in state_history.items():
            if all(len(v) == inp.steps for v in per_tensor.values()) and len(per_tensor) == len(inp.tensors):
                state[spec_name] = {n: np.stack([np.full_like(v[0], np.nan)] + v) for n, v in per_tensor.items()}
        return NativeRun(params={n: np.stack(v) for n, v in history.items()}, state=state)


ADAPTER = TorchAdapter()
