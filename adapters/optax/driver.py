"""optax driver: pure `init`/`update` GradientTransformations on pytrees, run eagerly and under jax.jit.

optax is the functional paradigm: an optimizer is a `GradientTransformation` (a chain of small
transforms), its state an explicit pytree, and `optax.apply_updates(params, updates)` adds the final
update. The adapter interface needs no special case for it: an `OptaxCase` names the optax alias (and
the chain in front of it), its fixed arguments in `kwargs`, how canonical hyper-parameters map onto
the alias's arguments in `hp_map`, and its implementation `variant`:

- ``eager``: `opt.update` and `optax.apply_updates` dispatched op by op;
- ``jit``: one ``jax.jit(step, donate_argnums=(0, 1))`` per step, params and state donated (the
  trajectory is copied to host before the buffers are handed back). Compiled executables are cached
  per (case, hyper-parameters, tree structure and shapes, dtype, device) and their trace+compile
  time is counted separately (`OptaxAdapter.jit_compile_seconds`; every JAX compile second of the
  process in `OptaxAdapter.compile_seconds`), so matrix timings exclude it.

float64 runs execute inside ``jax.enable_x64(True)``; float32 runs inside ``jax.enable_x64(False)``
(JAX's default configuration, what a float32 user gets). Arrays are always created with an explicit
dtype. Devices: cpu always; ``cuda`` when JAX sees a GPU (auto-detected, never required).

The transformation is built once per run with the run's whole lr sequence (a float when constant,
else a schedule: optconform.adapters.optax.transform); `OptaxDriver.step` checks that the lr it is
given is the one the optimizer uses at that step.

Sources: optax 0.2.8 `_src/alias.py`, `_src/transform.py`, `transforms/` (spec/README.md, native-name
crosswalk).
"""
from __future__ import annotations

import contextlib
import functools
import threading
import time
from typing import Any, Mapping

import numpy as np

from optconform.adapters.base import Adapter, Case, Driver, RunInput

from . import cases as _cases
from . import transform
from .trees import from_tree, host, nestable, to_tree

#: optax state class -> {field: spec state name} (the names the reference's pieces use).
STATE_NAMES: Mapping[str, Mapping[str, str]] = {
    "ScaleByAdamState": {"mu": "m", "nu": "v"},
    "ScaleByAmsgradState": {"mu": "m", "nu": "v", "nu_max": "v_max"},
    "ScaleByRssState": {"sum_of_squares": "sum"},
    "ScaleByRmsState": {"nu": "v"},
    "ScaleByRmsWithCountState": {"nu": "v"},
    "ScaleByRStdDevState": {"mu": "g_avg", "nu": "v"},
    "ScaleByRStdDevWithCountState": {"mu": "g_avg", "nu": "v"},
    "ScaleByLionState": {"mu": "m"},
    "TraceState": {"trace": "momentum"},
    "MuonState": {"mu": "momentum"},
    "ScheduleFreeState": {"z": "z"},
}
#: Per-alias meanings: adamax's nu is the infinity norm u; a trace before the lr scaling (sgd) is the
#: torch-form momentum buffer, after it (rmsprop) the velocity.
ALIAS_STATE_NAMES: Mapping[str, Mapping[str, Mapping[str, str]]] = {
    "adamax": {"ScaleByAdamState": {"mu": "m", "nu": "u"}},
    "rmsprop": {"TraceState": {"trace": "velocity"}},
}
#: Compile-time events of jax.monitoring counted in `OptaxAdapter.compile_seconds`.
COMPILE_EVENTS = frozenset({"/jax/core/compile/jaxpr_trace_duration",
                            "/jax/core/compile/jaxpr_to_mlir_module_duration",
                            "/jax/core/compile/backend_compile_duration"})


def state_names(case: Case) -> dict[str, Mapping[str, str]]:
    """STATE_NAMES with the meanings of the case's alias (a user's factory: the generic ones)."""
    alias = case.alias if isinstance(case, _cases.OptaxCase) else ""
    return {**STATE_NAMES, **ALIAS_STATE_NAMES.get(alias, {})}


def x64(jax, enabled: bool):
    """The context manager that turns 64-bit mode on or off: ``jax.enable_x64(enabled)`` (jax 0.7 and
    later), ``jax.experimental.enable_x64()`` / ``disable_x64()`` before (jax/experimental/x64_context.py
    at jax-v0.4.13): the history lane runs optax releases as old as 0.1.4 on their own jax."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(enabled)
    from jax import experimental
    return experimental.enable_x64() if enabled else experimental.disable_x64()


class OptaxDriver(Driver):
    """``opt = optax.<alias>(...)`` (or a user's factory(**hp)), ``state = opt.init(params)``; a step is
    ``updates, state = opt.update(grads, state, params); params = optax.apply_updates(params, updates)``,
    eager or one compiled ``jax.jit`` of it (compiled at the first step, cached by the adapter)."""

    def __init__(self, adapter: "OptaxAdapter", case: Case, inp: RunInput, device: str, dtype: str):
        jax, self.optax = adapter.load()
        self.jax, self.adapter, self.case, self.inp = jax, adapter, case, inp
        self.dev, self.dtype, self.x64 = adapter.jax_device(device), np.dtype(dtype), dtype == "float64"
        self.names = list(inp.tensors)
        self.nested = nestable(self.names)
        self.schedule = transform.is_schedule(case, inp)
        #: the lr the optimizer was given (None: a factory that takes none)
        self.lrs = tuple(inp.lr) if case.factory is None or "lr" in case.hp_map else None
        self.opt = transform.transformation(jax, self.optax, case, inp, getattr(jax.numpy, dtype),
                                            self.names, self.nested)
        self.tree = self._tree(inp.params0)
        self.opt_state = self.opt.init(self.tree)
        self.state_names = state_names(case)
        self.t = 0
        self._update = None

    def _tree(self, values: Mapping[str, np.ndarray]):
        arrays = [self.jax.device_put(np.asarray(values[n], dtype=self.dtype), self.dev) for n in self.names]
        return to_tree(self.names, arrays, self.nested)

    def native_grads(self, grads: Mapping[str, np.ndarray]):
        return self._tree(grads)

    def _check_lr(self, lr_t: float) -> None:
        """The optimizer owns its schedule: lr_t must be the lr it uses at this step."""
        if self.lrs is None:
            return
        if self.schedule and self.t >= len(self.lrs):
            raise ValueError(f"{self.case.id}: step {self.t} is past the {len(self.lrs)}-step lr schedule")
        expected = self.lrs[self.t] if self.schedule else self.lrs[0]
        if lr_t != expected:
            raise ValueError(f"{self.case.id}: step {self.t} at lr {lr_t!r}, but the optimizer uses {expected!r}")

    def _step_fn(self):
        opt, optax = self.opt, self.optax

        def step(params, state, grads):
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state
        return step

    def _compiled(self, grads):
        """The jit variant's step: jax.jit(step, donate_argnums=(0, 1)), compiled ahead of time once per key."""
        args = (self.tree, self.opt_state, grads)
        leaves, treedef = self.jax.tree_util.tree_flatten(args)
        config = {**self.case.native_kwargs(self.inp.hp),
                  **{type(h).__name__: v for h, v in self.case.hooked(self.inp.hp).items()}}
        key = (self.case.id, self.dtype.name, bool(self.jax.config.jax_enable_x64), str(self.dev),
               repr(sorted(config.items())), tuple(self.inp.lr) if self.schedule else self.inp.lr[:1],
               tuple(self.inp.tensors), str(treedef), tuple((x.shape, str(x.dtype)) for x in leaves))
        return self.adapter.compiled(key, self._step_fn(), args)

    def step(self, grads, lr_t: float, eta_t: float) -> None:
        """One native step (eta is folded into lr: optax takes no schedule multiplier). float64 steps
        run under x64 wherever they are called from (the benchmark times them outside the run's context)."""
        self._check_lr(lr_t)
        with x64(self.jax, True) if self.x64 else contextlib.nullcontext():
            if self._update is None:
                self._update = self._compiled(grads) if self.case.variant == "jit" else self._step_fn()
            self.tree, self.opt_state = self._update(self.tree, self.opt_state, grads)
        self.t += 1

    def params(self) -> dict[str, np.ndarray]:
        # host copies, taken before the next step donates these buffers
        return {n: host(v) for n, v in from_tree(self.tree, self.names, self.nested).items()}

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        """The spec-named state tensors found in the optax state pytree."""
        out: dict[str, dict[str, np.ndarray]] = {}

        def visit(node) -> None:
            fields = self.state_names.get(type(node).__name__)
            if fields is not None:
                for fld, spec in fields.items():
                    try:
                        values = from_tree(getattr(node, fld), self.names, self.nested)
                    except (KeyError, TypeError):    # masked or partial trees: not exposed
                        continue
                    out[spec] = {n: host(v) for n, v in values.items()}
            elif hasattr(node, "inner_state"):
                visit(node.inner_state)
            elif isinstance(node, tuple):
                for child in node:
                    visit(child)
        visit(self.opt_state)
        return out


class OptaxAdapter(Adapter):
    name = "jax"
    factory_style = "hp"           # factory(**canonical hp) -> optax.GradientTransformation (run eagerly)
    compiling_variants = frozenset({"jit"})

    def __init__(self) -> None:
        super().__init__()
        self._compiled: dict[Any, Any] = {}
        self._lock = threading.Lock()
        #: trace+lower+compile seconds of the jit variant's step functions, and how many were compiled
        self.jit_compile_seconds = 0.0
        self.jit_compile_count = 0
        #: every JAX trace/lowering/XLA-compile second in this process (jax.monitoring events), which
        #: includes the per-primitive compilations of eager dispatch (new shape or dtype)
        self.compile_seconds = 0.0

    def _import(self):
        import jax
        import optax

        from optconform.adapters import jax_cache
        jax_cache.enable(jax)

        def listen(event: str, duration: float, **_kw) -> None:
            if event in COMPILE_EVENTS:
                self.compile_seconds += duration
        jax.monitoring.register_event_duration_secs_listener(listen)
        return jax, optax

    def version(self) -> str:
        jax, optax = self.load()
        return f"{jax.__version__} (optax {optax.__version__})"

    def _gpus(self):
        jax, _ = self.load()
        try:
            return jax.devices("gpu")
        except RuntimeError:          # no GPU backend: never required
            return []

    def devices(self) -> list[str]:
        return ["cpu"] + (["cuda"] if self._gpus() else [])

    def device_name(self, device: str) -> str:
        if device == "cuda":
            gpus = self._gpus()
            return getattr(gpus[0], "device_kind", "gpu") if gpus else "cuda (absent)"
        return "cpu"

    def jax_device(self, device: str):
        """The jax.Device of "cpu" / "cuda" (the first GPU)."""
        jax, _ = self.load()
        return self._gpus()[0] if device == "cuda" else jax.devices("cpu")[0]

    def cases(self) -> list[Case]:
        return _cases.cases()

    def unsupported(self, case: Case, device: str) -> str:
        """Also for chained cases (their `native` is a chain expression): the alias must take the case's
        keywords; and an alias given its arguments as schedules (`OptaxCase.schedules`) must take them
        so -- a probe step of `optax.<alias>` with those arguments as callables (optax 0.1.4's
        add_decayed_weights multiplies by its weight_decay and cannot take a function)."""
        reason = super().unsupported(case, device)
        if reason or case.factory is not None or not isinstance(case, _cases.OptaxCase):
            return reason
        from optconform import natives
        reason = natives.unsupported(f"optax.{case.alias}", list(case.kwargs))
        return reason or (self._schedules_refused(case.alias, case.schedules) if case.schedules else "")

    def _schedules_refused(self, alias: str, names: frozenset[str]) -> str:
        refused = [name for name in sorted(names) if not self._takes_schedule(alias, name)]
        return f"optax.{alias} takes no schedule for {', '.join(refused)} in this release" if refused else ""

    @functools.cache
    def _takes_schedule(self, alias: str, name: str) -> bool:
        """Whether one probe step of `optax.<alias>` runs with argument `name` given as a schedule."""
        jax, optax = self.load()
        try:
            opt = getattr(optax, alias)(**{"learning_rate": 0.01, name: (lambda count: 0.01)})
            params = {"w": jax.numpy.ones(2)}
            opt.update(params, opt.init(params), params)
        except TypeError:
            return False
        return True

    @contextlib.contextmanager
    def context(self, device: str, dtype: str):
        """``jax.enable_x64(dtype == "float64")`` and ``jax.default_device`` of the run's device."""
        jax, _ = self.load()
        with x64(jax, dtype == "float64"), jax.default_device(self.jax_device(device)):
            yield

    def driver(self, case: Case, inp: RunInput, device: str, dtype: str) -> OptaxDriver:
        return OptaxDriver(self, case, inp, device, dtype)

    def compiled(self, key, step, args):
        """``jax.jit(step, donate_argnums=(0, 1))`` lowered and compiled for `args`, once per `key`
        (timed into `jit_compile_seconds`)."""
        jax, _ = self.load()
        with self._lock:
            found = self._compiled.get(key)
        if found is None:
            started = time.perf_counter()
            found = jax.jit(step, donate_argnums=(0, 1)).lower(*args).compile()
            with self._lock:
                self.jit_compile_seconds += time.perf_counter() - started
                self.jit_compile_count += 1
                self._compiled[key] = found
        return found

    def stepper(self):
        from .bench import OptaxStepper
        return OptaxStepper(self)
