"""MXNet 1.9.1 drivers: an `mx.optimizer.<Class>` stepped the way `mx.optimizer.Updater` steps it, or
the NDArray update operators called directly (ops.py).

Tensors are created under ``mx.util.np_shape(True)`` (`MXNetAdapter.context`) so that 0-d and
zero-size tensors exist (the legacy shape semantics read a 0 as "unknown"). MXNet exposes no state
under spec names here: `state()` is {}.

The schedule multiplier eta: only ``contrib.adamw_update`` takes it (its cases map ``eta``); every
other case folds it into lr, lr_t <- lr_t*eta_t (exact there: decay scaled by lr, or coupled).
"""
from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from optconform.adapters.base import Adapter, Driver, RunInput

from . import cases as _cases
from .cases import Hardcoded, InitialState, MXNetCase
from .ops import OPS, OpState


class MXNetDriver(Driver):
    """Weights on `device` ("cpu" or "gpu" = gpu 0) in the run's dtype, host gradients converted the
    same way; lr_t*eta_t folded unless the case maps eta."""

    def __init__(self, mx, case: MXNetCase, inp: RunInput, device: str, dtype: str):
        self.mx, self.dtype = mx, dtype
        self.ctx = mx.gpu(0) if device == "gpu" else mx.cpu()
        self.names = inp.tensors
        self.native_eta = "eta" in case.hp_map
        self.weights = [self._array(inp.params0[n]) for n in inp.tensors]

    def _array(self, value):
        return self.mx.nd.array(np.asarray(value, dtype=np.float64), ctx=self.ctx, dtype=self.dtype)

    def schedule(self, lr_t: float, eta_t: float) -> tuple[float, float]:
        """(lr, eta) as the native call takes them."""
        return (lr_t, eta_t) if self.native_eta else (lr_t * eta_t, 1.0)

    def native_grads(self, grads: Mapping[str, np.ndarray]) -> list:
        return [self._array(grads[n]) for n in self.names]

    def params(self) -> dict[str, np.ndarray]:
        return {n: w.asnumpy().astype(np.float64) for n, w in zip(self.names, self.weights)}


#: `InitialState.slot` -> the NDArray of that slot in the state `create_state` returned (AdaGrad: the
#: state is the history NDArray itself)
STATE_SLOTS: Mapping[str, Callable[[Any], Any]] = {"history": lambda state: state}


def _write_state(driver: "OptimizerDriver", hook: InitialState, value: Any) -> None:
    for state in driver.states:
        STATE_SLOTS[hook.slot](state)[:] = value


def _hardcoded(driver: "OptimizerDriver", hook: Hardcoded, value: Any) -> None:
    """Nothing to apply: MXNet behaves as if the value were `hook.value`."""


#: Hook type -> how the optimizer driver applies the value
HOOKS: Mapping[type, Callable[["OptimizerDriver", Any, Any], None]] = {
    InitialState: _write_state, Hardcoded: _hardcoded}


class OptimizerDriver(MXNetDriver):
    """`mx.optimizer.<Class>(learning_rate=lr_0, **kwargs)`, one `create_state(i, w)` per tensor, and per
    step `set_learning_rate(lr_t)` then `update(i, w, g, state)` per index (variant ``optimizer``) or
    `update(indices, weights, grads, states)` in chunks of `aggregate_num` tensors, as
    `mx.optimizer.Updater.__call__` passes them (optimizer.py:2103-2124 at 1.9.1; the multi_* kernels
    take at most that many tensors: one call with all 199 BERT tensors segfaults)."""

    def __init__(self, mx, case: MXNetCase, inp: RunInput, device: str, dtype: str):
        super().__init__(mx, case, inp, device, dtype)
        cls = getattr(mx.optimizer, case.native.rsplit(".", 1)[1])
        self.optimizer = cls(learning_rate=self.schedule(inp.lr[0], inp.eta[0])[0], **case.native_kwargs(inp.hp))
        self.states = [self.optimizer.create_state(i, w) for i, w in enumerate(self.weights)]
        for hook, value in case.hooked(inp.hp).items():
            HOOKS[type(hook)](self, hook, value)
        self.aggregated = case.variant == "optimizer-aggregated"

    def step(self, grads: list, lr_t: float, eta_t: float) -> None:
        self.optimizer.set_learning_rate(self.schedule(lr_t, eta_t)[0])
        indices = list(range(len(self.weights)))
        if self.aggregated:
            size = max(1, int(getattr(self.optimizer, "aggregate_num", 0) or 1))
            for k in range(0, len(indices), size):
                chunk = slice(k, k + size)
                self.optimizer.update(indices[chunk], self.weights[chunk], grads[chunk], self.states[chunk])
        else:
            for i in indices:
                self.optimizer.update(i, self.weights[i], grads[i], self.states[i])


class OpDriver(MXNetDriver):
    """One update operator (`OPS`, keyed by the op's name) per tensor and step, writing the weight in
    place (``out=w``), with per-tensor moments the driver owns and the step count t = 1, 2, ..."""

    def __init__(self, mx, case: MXNetCase, inp: RunInput, device: str, dtype: str):
        super().__init__(mx, case, inp, device, dtype)
        self.op = OPS[case.native.rsplit(".", 1)[1]]
        self.slots = OpState.create(mx.nd, case, inp.hp, self.weights, self.ctx, dtype)

    def step(self, grads: list, lr_t: float, eta_t: float) -> None:
        lr, eta = self.schedule(lr_t, eta_t)
        self.slots.t += 1
        for i, (w, g) in enumerate(zip(self.weights, grads)):
            self.op(self.slots, i, w, g, lr, eta)


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

    def cases(self) -> list[MXNetCase]:
        return _cases.cases()

    @contextlib.contextmanager
    def context(self, device: str, dtype: str) -> Iterator[None]:
        """NumPy shape semantics (0-d and zero-size tensors), MXNet's deprecation noise silenced."""
        mx = self.load()
        with mx.util.np_shape(True), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            # `weight[:] += x` (AdaGrad, Nadam, Adamax) copies an array onto itself: harmless, noisy
            warnings.filterwarnings("ignore", message="You are attempting to copy an array to itself")
            yield

    def stepper(self):
        from .bench import MXNetStepper
        return MXNetStepper(self)

    def driver(self, case: MXNetCase, inp: RunInput, device: str, dtype: str) -> MXNetDriver:
        cls = OptimizerDriver if case.native.startswith("mxnet.optimizer.") else OpDriver
        return cls(self.load(), case, inp, device, dtype)
