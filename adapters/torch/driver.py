"""torch.optim driver: a stateful optimizer on leaf tensors, lr changed per step through
`param_groups` (the torch way to apply a schedule); state read from `optimizer.state` under spec names.
"""
from __future__ import annotations

import importlib
import importlib.util
import operator
import re
from typing import Any, Mapping

import numpy as np

from optconform.adapters.base import Adapter, Case, Driver, RunInput

from . import cases as _cases

#: torch state key -> spec state name
STATE_NAMES = {"z": "z", "exp_avg": "m", "exp_avg_sq": "v", "max_exp_avg_sq": "v_max", "momentum_buffer": "momentum",
               "sum": "sum", "square_avg": "v", "grad_avg": "g_avg", "exp_inf": "u", "mu_product": "mu_product"}
FUSED_CPU_SINCE = (2, 4)


def release(version: str) -> tuple[int, ...]:
    """'2.13.0+cpu' -> (2, 13)."""
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0])[:2])


class TorchDriver(Driver):
    """`torch.optim.<cls>(params, lr=lr_0, **kwargs)` (or a user's factory(params, **hp))."""

    def __init__(self, torch, case: Case, inp: RunInput, device: str, dtype: str):
        self.torch, self.device, self.dtype = torch, device, getattr(torch, dtype)
        self.names = inp.tensors
        self.tensors = [torch.tensor(np.asarray(inp.params0[n]), dtype=self.dtype, device=device).requires_grad_(True)
                        for n in inp.tensors]
        kwargs: dict[str, Any] = case.native_kwargs(inp.hp)
        if case.factory is not None:
            if "lr" in case.hp_map:
                kwargs["lr"] = inp.lr[0]
            self.optimizer = case.factory(self.tensors, **kwargs)
        else:
            module, _, name = case.native.rpartition(".")
            cls = getattr(torch.optim if module == "torch.optim" else importlib.import_module(module), name)
            self.optimizer = cls(self.tensors, lr=inp.lr[0], **kwargs)
        if callable(getattr(self.optimizer, "train", None)):
            self.optimizer.train()                      # schedule-free: step in train mode (parameters = y)

    def native_grads(self, grads: Mapping[str, np.ndarray]) -> list:
        return [self.torch.tensor(np.asarray(grads[n]), dtype=self.dtype, device=self.device) for n in self.names]

    failed = False
    #: the gradient tensors the parameters hold since the last assignment (the driver's references)
    _held: tuple = ()

    def step(self, grads: list, lr_t: float, eta_t: float) -> None:
        """One step. A ZeroDivisionError of the native step (torch Adafactor's RMS of an empty tensor,
        `param.numel() ** 0.5` in a Python division, torch/optim/_adafactor.py:381 at v2.13.0) leaves the
        step half taken: the run reports +inf from there on (deviates; registered in deviations.toml).

        `p.grad = g` is skipped when the parameters already hold these very tensors (the step-time
        benchmark steps on the same gradients): torch's .grad setter checks dtype, device and shape
        in C++ for every tensor (~0.16 us each; 199 tensors = 31 us, +2.4 % on a 1.9 ms fused step);
        identity against the driver's own references costs ~0.03 us each, and torch optimizers never
        replace .grad themselves."""
        if self.failed:
            return
        if len(grads) != len(self._held) or not all(map(operator.is_, grads, self._held)):
            for p, g in zip(self.tensors, grads):
                p.grad = g
            self._held = tuple(grads)
        for group in self.optimizer.param_groups:
            group["lr"] = lr_t                          # schedule applied the torch way (eta folded into lr)
        try:
            self.optimizer.step()
        except ZeroDivisionError:
            self.failed = True

    def _host(self, tensor) -> np.ndarray:
        return tensor.detach().to(self.torch.float64).cpu().numpy().copy()

    def params(self) -> dict[str, np.ndarray]:
        if self.failed:
            return {n: np.full(tuple(p.shape), np.inf) for n, p in zip(self.names, self.tensors)}
        return {n: self._host(p) for n, p in zip(self.names, self.tensors)}

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        out: dict[str, dict[str, np.ndarray]] = {}
        for n, p in zip(self.names, self.tensors):
            for key, value in self.optimizer.state[p].items():
                if key in STATE_NAMES and self.torch.is_tensor(value):
                    out.setdefault(STATE_NAMES[key], {})[n] = self._host(value)
        return out


class TorchAdapter(Adapter):
    name = "torch"
    factory_style = "params"       # factory(params, **hp) -> torch.optim.Optimizer-like
    compiling_variants = frozenset({"compiled"})

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
        return _cases.cases()

    def unsupported(self, case: Case, device: str) -> str:
        """Also: `fused=True` on CPU needs torch >= 2.4 (earlier releases raise "fused=True requires
        ... devices: ['cuda']"; CPU kernels added in torch/optim/optimizer.py
        `_get_fused_kernel_supported_devices` at v2.4.0)."""
        reason = super().unsupported(case, device)
        package = case.native.split(".", 1)[0]
        if not reason and case.factory is None and package != "torch" and importlib.util.find_spec(package) is None:
            return f"the {package} package is not installed in this environment (pip install {package})"
        if not reason and case.kwargs.get("fused") and device == "cpu" and release(self.version()) < FUSED_CPU_SINCE:
            reason = f"fused=True runs on CPU only since torch 2.4 (this is {self.version()})"
        return reason

    def stepper(self):
        from .bench import TorchStepper
        return TorchStepper(self)

    def driver(self, case: Case, inp: RunInput, device: str, dtype: str) -> TorchDriver:
        return TorchDriver(self.load(), case, inp, device, dtype)
