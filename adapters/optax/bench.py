"""optax (JAX) stepper for the step-time benchmark (optconform.bench).

Variants: the adapter's ``jit`` cases (one ``jax.jit(step, donate_argnums=(0, 1))`` per step, params and
optimizer state donated, the pattern of a real training loop) and ``eager`` cases (`opt.update` and
`optax.apply_updates` dispatched op by op). The GradientTransformation is the one the adapter builds
for the conformance run (`OptaxAdapter._transformation`), at the benchmark's constant hyper-parameters.

The jit step is traced and compiled on the first call: the first step's time is the compile time
(reported apart as `first_step_s` / `compile_s`). Sync is `jax.block_until_ready` on the new params
and state. Float32 runs inside ``jax.enable_x64(False)`` like the adapter's float32 runs.

The stream probe is a jitted ``w + r`` with ``w`` donated (in place where XLA honours the donation),
one call per written array. Thread count: XLA's CPU thread pool is fixed at backend start-up, so
`pin_threads` only relies on the process affinity the harness sets before JAX loads.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any

from optconform.adapters.base import RunInput

from .bench import Built, Stepper


class OptaxStepper(Stepper):
    framework = "jax"
    overhead_variants = ("jit",)

    @property
    def jax(self):
        return self.adapter.load()[0]

    def _device(self, device: str):
        jax = self.jax
        return jax.devices("gpu")[0] if device == "cuda" else jax.devices("cpu")[0]

    def environment(self, device: str) -> dict[str, Any]:
        jax, optax = self.adapter.load()
        return {"framework_version": self.adapter.version(), "device_name": self.adapter.device_name(device),
                "jax_backend": jax.default_backend(), "optax": optax.__version__}

    def _context(self, device: str, dtype: str):
        jax = self.jax
        stack = contextlib.ExitStack()
        stack.enter_context(jax.enable_x64(dtype == "float64"))
        stack.enter_context(jax.default_device(self._device(device)))
        return stack

    def build(self, case, shapes, device: str, dtype: str, hp: dict[str, Any], seed: int = 0) -> Built:
        jax, optax = self.adapter.load()
        jnp = jax.numpy
        ctx = self._context(device, dtype)
        with ctx:
            dev = self._device(device)
            names = [f"p{i}" for i in range(len(shapes))]
            key = jax.random.PRNGKey(seed)
            params, grads = {}, {}
            for name, shape in zip(names, shapes):
                key, k1, k2 = jax.random.split(key, 3)
                params[name] = jax.device_put(jax.random.normal(k1, shape, dtype=getattr(jnp, dtype)), dev)
                grads[name] = jax.device_put(1e-3 * jax.random.normal(k2, shape, dtype=getattr(jnp, dtype)), dev)
            inp = RunInput(tensors=tuple(names), params0={}, grads=(), lr=(float(hp["lr"]),), eta=(1.0,), hp=hp)
            opt = self.adapter._transformation(case, inp, getattr(jnp, dtype), names, False)
            state = opt.init(params)
            jax.block_until_ready((params, grads, state))

        def update(params, state, grads):
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        fn = jax.jit(update, donate_argnums=(0, 1)) if case.variant == "jit" else update
        box = [params, state]

        if dtype == "float64":
            def step():
                with jax.enable_x64(True):
                    box[0], box[1] = fn(box[0], box[1], grads)
        else:                                   # JAX's default configuration: no per-step context
            def step():
                box[0], box[1] = fn(box[0], box[1], grads)

        def sync():
            jax.block_until_ready(box)

        def close():
            box.clear()
            grads.clear()
        return Built(step=step, sync=sync, n_params=sum(math.prod(s) for s in shapes), n_tensors=len(shapes),
                     native=fn, close=close)

    def stream(self, n: int, arrays: int, written: int, device: str, dtype: str) -> Built:
        jax = self.jax
        jnp = jax.numpy
        with self._context(device, dtype):
            dev = self._device(device)
            bufs = [jax.device_put(jnp.full((n,), 1.0 if i < written else 1e-3, dtype=getattr(jnp, dtype)), dev)
                    for i in range(arrays)]
        read_only = list(range(written, arrays)) or [0]
        pairs = [(i, read_only[i % len(read_only)]) for i in range(written)]
        add = jax.jit(lambda w, r: w + r, donate_argnums=(0,))

        def step():
            for i, j in pairs:
                bufs[i] = add(bufs[i], bufs[j])     # one pass: read w, read r, write w (donated)

        def sync():
            jax.block_until_ready(bufs)
        itemsize = jnp.dtype(getattr(jnp, dtype)).itemsize
        return Built(step=step, sync=sync, n_params=n, n_tensors=arrays,
                     bytes_per_call=3.0 * itemsize * n * written, close=bufs.clear)
