"""Keras 3 adapters: `keras.optimizers` on the TensorFlow backend ("tensorflow": eager, tf.function
graph, tf.function(jit_compile=True) XLA) and on the JAX backend ("keras-jax": eager `apply`, and
`jax.jit` of `stateless_apply`).

Both cache: finished `NativeRun`s (deterministic: the CLI's match and the tests reuse them; never for
a user's factory) and rigs (rig.py: variables, optimizer and compiled step reused across goldens with
the same tensors, shapes and hyper-parameters, so graph/XLA/jit compile once per such group).
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import ContextManager

from optconform.adapters.base import Adapter, AdapterUnavailable, Arg, Case, NativeRun, RunInput

from . import cases as _cases
from .driver import JAX_DRIVERS, JaxDriver, KerasDriver, TFDriver
from .rig import Rig, build_rig, fingerprint, rig_key

#: the base class whose named options every Keras optimizer's **kwargs accepts
_BASE_OPTIMIZER = "keras.src.optimizers.base_optimizer.BaseOptimizer"


def import_keras(backend: str):
    """Import keras with KERAS_BACKEND=backend; fail clearly if keras is already in with another one."""
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        have = keras.backend.backend()
        if have != backend:
            raise AdapterUnavailable(
                f"keras is already imported in this process with backend {have!r}; the {backend!r} backend "
                f"must be chosen before keras is imported (run this adapter in its own process, with "
                f"KERAS_BACKEND={backend})")
        return keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")        # TF start-up noise; errors still shown
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax":
        import jax

        from optconform.adapters import jax_cache
        jax.config.update("jax_enable_x64", True)             # else float64 variables are float32
        jax_cache.enable(jax)
    import keras
    if keras.backend.backend() != backend:
        raise AdapterUnavailable(f"keras imported with backend {keras.backend.backend()!r}, wanted {backend!r}")
    return keras


class KerasAdapter(Adapter):
    """What both backends share: cases, the NativeRun and rig caches, a user's factory."""
    backend = ""
    #: A user's factory (optconform check): `factory(**hp)` -> a keras.optimizers.Optimizer, with `lr`
    #: (or `learning_rate`) given as a LearningRateSchedule that returns each probe's lr; run eagerly.
    factory_style = "hp"
    compiling_variants = frozenset({"graph", "xla", "jit"})

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[tuple, NativeRun] = {}
        self._rigs: dict[tuple, Rig] = {}

    def _import(self):
        return import_keras(self.backend)

    @property
    def factory_precision(self):
        """The scalar precision of a user's factory on this backend (cases.FACTORY_PRECISION)."""
        return _cases.FACTORY_PRECISION[self.name]

    @property
    def backend_module(self):
        """The backend's module (tensorflow or jax), imported after Keras chose it."""
        self.load()
        return importlib.import_module(self.backend)

    def version(self) -> str:
        return f"{self.load().__version__} ({self.backend} {self.backend_module.__version__})"

    def cases(self) -> list[Case]:
        return _cases.cases(self.name)

    def unsupported(self, case: Case, device: str) -> str:
        """As the base, and for every keyword the case's hyper-parameters map to: a Keras optimizer takes
        **kwargs, but only the base optimizer's named options pass (anything else raises "Argument(s) not
        recognized", keras/src/optimizers/base_optimizer.py `_process_kwargs`), so the class's named
        parameters and BaseOptimizer's are all it takes (keras 3.12's Muon has no `rms_rate`: n/a there)."""
        reason = super().unsupported(case, device)
        if reason or case.factory is not None:
            return reason
        from optconform import natives
        mapped = {v.name if isinstance(v, Arg) else v for k, v in case.hp_map.items()
                  if isinstance(v, (str, Arg)) and k != "lr"}            # lr: the rig passes learning_rate
        known = set(natives.keyword_options(case.native) or ()) | set(natives.keyword_options(_BASE_OPTIMIZER) or ())
        missing = sorted(mapped - known)
        return f"{case.native} has no keyword {', '.join(map(repr, missing))} in this release" if missing else ""

    def trajectory(self, case: Case, inp: RunInput, device: str, dtype: str) -> NativeRun:
        """The base loop, its finished runs cached (a user's factory: never served from another's cache)."""
        if case.factory is not None:
            return super().trajectory(case, inp, device, dtype)
        key = (case.id, device, dtype, fingerprint(inp))
        if key not in self._cache:
            self._cache[key] = super().trajectory(case, inp, device, dtype)
        return self._cache[key]

    def driver(self, case: Case, inp: RunInput, device: str, dtype: str) -> KerasDriver:
        """The rig for this case and scenario shape (built and compiled on first use), reset to the
        golden's start, driven by the variant's driver."""
        key = rig_key(case, inp, device, dtype)
        rig = self._rigs.get(key)
        if rig is None:
            rig = self._rigs[key] = build_rig(self.load(), case, inp, dtype)
            rig.step = self._compile(case, rig)
        rig.reset(inp)
        return self._driver(case, rig, inp, device, dtype)

    def discard_rigs(self) -> None:
        """Forget every rig (a failed step left its optimizer state undefined; a benchmark is done)."""
        self._rigs.clear()

    def _compile(self, case: Case, rig: Rig):
        raise NotImplementedError

    def _driver(self, case: Case, rig: Rig, inp: RunInput, device: str, dtype: str) -> KerasDriver:
        raise NotImplementedError


class TensorFlowKerasAdapter(KerasAdapter):
    name = "tensorflow"
    backend = "tensorflow"
    tf = KerasAdapter.backend_module

    def devices(self) -> list[str]:
        return ["cpu"] + (["gpu"] if self.tf.config.list_physical_devices("GPU") else [])

    def device_name(self, device: str) -> str:
        if device == "gpu":
            tf = self.tf
            gpus = tf.config.list_physical_devices("GPU")
            details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
            return str(details.get("device_name", "gpu"))
        return "cpu"

    def context(self, device: str, dtype: str) -> ContextManager:
        return self.tf.device("/GPU:0" if device == "gpu" else "/CPU:0")

    def stepper(self):
        from .bench import KerasTFStepper
        return KerasTFStepper(self)

    def _compile(self, case: Case, rig: Rig):
        return TFDriver.compile(self.tf, rig, case.variant)

    def _driver(self, case: Case, rig: Rig, inp: RunInput, device: str, dtype: str) -> TFDriver:
        return TFDriver(self.tf, rig, inp, device, dtype, self.discard_rigs)


class JaxKerasAdapter(KerasAdapter):
    name = "keras-jax"
    backend = "jax"
    jax = KerasAdapter.backend_module

    def devices(self) -> list[str]:
        try:
            return ["cpu"] + (["gpu"] if self.jax.devices("gpu") else [])
        except RuntimeError:
            return ["cpu"]

    def device_name(self, device: str) -> str:
        return str(self.jax.devices("gpu")[0].device_kind) if device == "gpu" else "cpu"

    def context(self, device: str, dtype: str) -> ContextManager:
        jax = self.jax
        return jax.default_device(jax.devices("gpu" if device == "gpu" else "cpu")[0])

    def _compile(self, case: Case, rig: Rig):
        return JAX_DRIVERS.get(case.variant, JaxDriver).compile(self.jax, rig)

    def _driver(self, case: Case, rig: Rig, inp: RunInput, device: str, dtype: str) -> JaxDriver:
        return JAX_DRIVERS.get(case.variant, JaxDriver)(self.jax, rig, inp, dtype)

