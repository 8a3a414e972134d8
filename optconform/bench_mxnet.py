"""MXNet 1.9.1 stepper for the step-time benchmark (optconform.bench).

Variants, as the adapter exposes them: ``optimizer`` (an `mx.optimizer.<Class>`, one
`update(i, weight, grad, state)` per tensor, the way `mx.optimizer.Updater` drives it),
``optimizer-aggregated`` (one `update(indices, weights, grads, states)` call: the multi_* kernels) and
``op`` (the NDArray update kernels called directly with ``out=weight``: `nd.adam_update`,
`nd.contrib.adamw_update`, `nd.sgd_mom_update`). Sync is ``mx.nd.waitall()`` (MXNet's engine is
asynchronous: every op returns before it ran).

Rules: no MXNet case claims ``adamw`` or ``sgd_momentum``. A requested rule is answered by the MXNet
counterparts in `COUNTERPARTS`, each row filed under the case's own rule: MXNet Adam is
``mxnet_adam`` (coupled decay inside the clip, eps-hat), the bare ``adam_update`` kernel
``mxnet_adam[bias_correction=off]``, ``contrib.adamw_update`` ``adamw_paper[bias_correction=off]``,
SGD momentum the velocity form ``sgd_momentum_inside``.

Threads: MXNet reads OMP_NUM_THREADS / MXNET_CPU_WORKER_NTHREADS at start-up only; the harness'
affinity pinning applies. Peak memory: n/a on CPU.
"""
from __future__ import annotations

import math
from typing import Any

from optconform.adapters.base import Case

from .bench import Built, Stepper

#: requested rule -> counterpart rules (the plainest case per variant of each is timed)
COUNTERPARTS = {
    "adamw": ("mxnet_adam", "mxnet_adam[bias_correction=off]", "adamw_paper[bias_correction=off]"),
    "sgd_momentum": ("sgd_momentum_inside",),
}


class MXNetStepper(Stepper):
    framework = "mxnet"
    overhead_variants = ("op",)

    @property
    def mx(self):
        return self.adapter.load()

    def native_device(self, device: str) -> str:
        return "gpu" if device == "cuda" else device

    def _ctx(self, device: str):
        mx = self.mx
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
        mx = self.mx
        import os
        return {"framework_version": mx.__version__, "device_name": self.adapter.device_name(self.native_device(device)),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "mxnet_features": [f.name for f in mx.runtime.Features().values() if f.enabled][:40]}

    def _sync(self):
        return self.mx.nd.waitall

    def build(self, case: Case, shapes, device: str, dtype: str, hp: dict[str, Any], seed: int = 0) -> Built:
        import numpy as np
        mx = self.mx
        nd = mx.nd
        ctx = self._ctx(device)
        rng = np.random.default_rng(seed)
        weights = [nd.array(rng.standard_normal(s), ctx=ctx, dtype=dtype) for s in shapes]
        grads = [nd.array(1e-3 * rng.standard_normal(s), ctx=ctx, dtype=dtype) for s in shapes]
        lr = float(hp["lr"])
        wd = float(hp.get("weight_decay", 0.0))
        if case.native.startswith("mxnet.optimizer."):
            kwargs = {k: v for k, v in case.native_kwargs(hp).items() if not k.startswith(("state:", "hardcoded:"))}
            kwargs.pop("learning_rate", None)
            opt = getattr(mx.optimizer, case.native.rsplit(".", 1)[1])(learning_rate=lr, **kwargs)
            states = [opt.create_state(i, w) for i, w in enumerate(weights)]
            indices = list(range(len(weights)))
            if case.variant == "optimizer-aggregated":
                # chunks of opt.aggregate_num, as mx.optimizer.Updater passes them (the multi_* kernels
                # take at most that many tensors: one call with all 199 BERT tensors segfaults)
                size = max(1, int(getattr(opt, "aggregate_num", 0) or 1))
                chunks = [(indices[k:k + size], weights[k:k + size], grads[k:k + size], states[k:k + size])
                          for k in range(0, len(indices), size)]

                def step():
                    for chunk in chunks:
                        opt.update(*chunk)
            else:
                def step():
                    for i in indices:
                        opt.update(i, weights[i], grads[i], states[i])
            native = opt
        else:
            op = case.native.rsplit(".", 1)[1]
            mom = [nd.zeros(w.shape, ctx=ctx, dtype=dtype) for w in weights]
            var = [nd.zeros(w.shape, ctx=ctx, dtype=dtype) for w in weights]
            beta1, beta2, eps = float(hp.get("beta1", 0.9)), float(hp.get("beta2", 0.999)), float(hp.get("eps", 1e-8))
            items = list(zip(weights, grads, mom, var))
            if op == "sgd_mom_update":
                momentum = float(hp["momentum"])

                def step():
                    for w, g, m, _ in items:
                        nd.sgd_mom_update(w, g, m, out=w, lr=lr, wd=wd, momentum=momentum)
            elif op == "adam_update":
                def step():
                    for w, g, m, v in items:
                        nd.adam_update(w, g, m, v, out=w, lr=lr, wd=wd, beta1=beta1, beta2=beta2, epsilon=eps)
            elif op == "adamw_update" and not case.kwargs.get("corrected_lr"):
                rescale = nd.array([1.0], ctx=ctx, dtype="float32")

                def step():
                    for w, g, m, v in items:
                        nd.contrib.adamw_update(w, g, m, v, rescale, out=w, lr=lr, eta=1.0, wd=wd, beta1=beta1,
                                                beta2=beta2, epsilon=eps)
            else:
                raise NotImplementedError(f"{case.id}: op {op!r} is not benchmarked yet")
            native = None
        nd.waitall()

        def close():
            weights.clear()
            grads.clear()
        return Built(step=step, sync=self._sync(), n_params=sum(math.prod(s) for s in shapes),
                     n_tensors=len(shapes), native=native, close=close)

    def stream(self, n: int, arrays: int, written: int, device: str, dtype: str) -> Built:
        nd = self.mx.nd
        ctx = self._ctx(device)
        bufs = [nd.full((n,), 1.0 if i < written else 1e-3, ctx=ctx, dtype=dtype) for i in range(arrays)]
        read_only = bufs[written:] or bufs[:1]
        pairs = [(bufs[i], read_only[i % len(read_only)]) for i in range(written)]

        def step():
            for w, r in pairs:
                w += r                           # one pass: read w, read r, write w in place
        nd.waitall()
        import numpy as np
        return Built(step=step, sync=self._sync(), n_params=n, n_tensors=arrays,
                     bytes_per_call=3.0 * np.dtype(dtype).itemsize * n * written, close=bufs.clear)

