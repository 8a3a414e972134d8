"""optax (JAX) stepper for the step-time benchmark (optconform.bench), built on the conformance driver.

Variants: the adapter's ``jit`` cases (one ``jax.jit(step, donate_argnums=(0, 1))`` per step, params and
optimizer state donated, the pattern of a real training loop) and ``eager`` cases (`opt.update` and
`optax.apply_updates` dispatched op by op). The GradientTransformation is the one the driver builds for
the conformance run (optconform.adapters.optax.transform), at the benchmark's constant hyper-parameters.

The jit step is traced and compiled on the first call (`OptaxDriver.step`): the first step's time is
the compile time (reported apart as `first_step_s` / `compile_s`). Sync is `jax.block_until_ready` on
the new params and state. Float32 steps run in JAX's default configuration (x64 off, like the adapter's
float32 runs); float64 steps enter ``jax.enable_x64(True)`` themselves (`OptaxDriver.step`).

The stream probe is a jitted ``w + r`` with ``w`` donated (in place where XLA honours the donation),
one call per written array. Thread count: XLA's CPU thread pool is fixed at backend start-up, so
`pin_threads` only relies on the process affinity the harness sets before JAX loads.
"""
from __future__ import annotations

from typing import Any

from optconform.adapters.base import Case
from optconform.bench_stepper import Built, Stepper


class OptaxStepper(Stepper):
    framework = "jax"
    overhead_variants = ("jit",)

    @property
    def jax(self):
        return self.adapter.load()[0]

    def environment(self, device: str) -> dict[str, Any]:
        jax, optax = self.adapter.load()
        return {"framework_version": self.adapter.version(), "device_name": self.adapter.device_name(device),
                "jax_backend": jax.default_backend(), "optax": optax.__version__}

    def sync(self, device: str, driver=None):
        jax = self.jax

        def sync():
            jax.block_until_ready((driver.tree, driver.opt_state))
        return sync

    def build(self, case: Case, shapes, device: str, dtype: str, hp: dict[str, Any], seed: int = 0) -> Built:
        built = super().build(case, shapes, device, dtype, hp, seed)
        driver = built.native
        self.jax.block_until_ready((driver.tree, driver.opt_state))

        def close():
            driver.tree = driver.opt_state = None
        built.close = close
        return built

    def stream(self, n: int, arrays: int, written: int, device: str, dtype: str) -> Built:
        jax = self.jax
        jnp = jax.numpy
        with self.adapter.context(device, dtype):
            dev = self.adapter.jax_device(device)
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
