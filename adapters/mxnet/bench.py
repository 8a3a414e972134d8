"""MXNet 1.9.1 stepper for the step-time benchmark (optconform.bench).

Variants, as the adapter's drivers (driver.py) run them: ``optimizer`` (an `mx.optimizer.<Class>`, one
`update(i, weight, grad, state)` per tensor, the way `mx.optimizer.Updater` drives it),
``optimizer-aggregated`` (`update(indices, weights, grads, states)` in chunks of `aggregate_num`: the
multi_* kernels) and ``op`` (the NDArray update kernels called directly with ``out=weight``:
`nd.adam_update`, `nd.contrib.adamw_update`, `nd.sgd_mom_update`, ...). Sync is ``mx.nd.waitall()``
(MXNet's engine is asynchronous: every op returns before it ran).

Rules: no MXNet case claims ``adamw`` or ``sgd_momentum``. A requested rule is answered by the MXNet
counterparts in `COUNTERPARTS`, each row filed under the case's own rule: MXNet Adam is
``mxnet_adam`` (coupled decay inside the clip, eps-hat), the bare ``adam_update`` kernel
``mxnet_adam[bias_correction=off]``, ``contrib.adamw_update`` ``adamw_paper[bias_correction=off]``,
SGD momentum the velocity form ``sgd_momentum_inside``.

Threads: MXNet reads OMP_NUM_THREADS / MXNET_CPU_WORKER_NTHREADS at start-up only; the harness'
affinity pinning applies. Peak memory: n/a on CPU.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from optconform.adapters.base import Case
from optconform.bench_stepper import Built, Stepper

#: requested rule -> counterpart rules (the plainest case per variant of each is timed)
COUNTERPARTS = {
    "adamw": ("mxnet_adam", "mxnet_adam[bias_correction=off]", "adamw_paper[bias_correction=off]"),
    "sgd_momentum": ("sgd_momentum_inside",),
}


class MXNetStepper(Stepper):
    framework = "mxnet"
    overhead_variants = ("op",)

    def native_device(self, device: str) -> str:
        return "gpu" if device == "cuda" else device

    def _ctx(self, device: str):
        mx = self.module
        return mx.gpu(0) if device == "cuda" else mx.cpu()

    def bench_cases(self, rule: str, device: str) -> list[Case]:
        dev = self.native_device(device)
        targets = (rule,) if any(c.rule == rule for c in self.adapter.cases()) else COUNTERPARTS.get(rule, ())
        out = []
        for target in targets:
            cases = [c for c in self.adapter.cases() if c.rule == target and dev in c.devices and "float32" in c.dtypes]
            for variant in dict.fromkeys(c.variant for c in cases):
                mine = [c for c in cases if c.variant == variant]
                out.append(min(mine, key=lambda c: (len(c.kwargs) + len(c.fixed_hp), mine.index(c))))
        return out

    def environment(self, device: str) -> dict[str, Any]:
        mx = self.module
        return {"framework_version": mx.__version__, "device_name": self.adapter.device_name(self.native_device(device)),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "mxnet_features": [f.name for f in mx.runtime.Features().values() if f.enabled][:40]}

    def sync(self, device: str, driver=None):
        return self.module.nd.waitall

    def build(self, case: Case, shapes, device: str, dtype: str, hp: dict[str, Any], seed: int = 0) -> Built:
        """The adapter's driver on MXNet's name for the device, its initialisation finished
        (``nd.waitall()``) before anything is timed."""
        built = super().build(case, shapes, self.native_device(device), dtype, hp, seed)
        driver = built.native
        self.module.nd.waitall()
        built.close = driver.weights.clear
        return built

    def stream(self, n: int, arrays: int, written: int, device: str, dtype: str) -> Built:
        nd = self.module.nd
        ctx = self._ctx(device)
        bufs = [nd.full((n,), 1.0 if i < written else 1e-3, ctx=ctx, dtype=dtype) for i in range(arrays)]
        read_only = bufs[written:] or bufs[:1]
        pairs = [(bufs[i], read_only[i % len(read_only)]) for i in range(written)]

        def step():
            for w, r in pairs:
                w += r                           # one pass: read w, read r, write w in place
        nd.waitall()
        return Built(step=step, sync=self.sync(device), n_params=n, n_tensors=arrays,
                     bytes_per_call=3.0 * np.dtype(dtype).itemsize * n * written, close=bufs.clear)

