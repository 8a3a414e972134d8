"""The stepper interface: how a framework plugs into the step-time benchmark.

A `Stepper` builds the adapter's own driver for a case (`Stepper.build` times `Driver.step` and
nothing else), a stream probe on the framework's own arrays (`Stepper.stream`, the limit kernel), the
bare native call the harness overhead is measured against (`Stepper.bare_step`) and the way a step's
peak memory is read (`Stepper.memory_probe`: the process RSS high-water mark on CPU). It is returned by `Adapter.stepper()`
(adapters/<framework>/bench.py) or registered under the entry-point group ``optconform.steppers``.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

import numpy as np

from optconform.adapters.base import Adapter, Case, RunInput

from . import bench_layouts
from .bench_memory import MemoryProbe, rss_probe
from .bench_timing import samples

GROUP = "optconform.steppers"


@dataclass
class Built:
    """A native optimizer ready to step: `step()` runs one step (no sync), `sync()` waits for the device."""
    step: Callable[[], None]
    sync: Callable[[], None]
    n_params: int
    n_tensors: int
    native: Any = None                               # the native optimizer (for the bare loop)
    close: Callable[[], None] = lambda: None
    bytes_per_call: float = 0.0                      # stream probes: bytes one step() moves
    kind: str = ""                                   # stream probes: what the kernel is


class Stepper:
    """Per-framework benchmark plumbing. Subclass and implement `build` and `stream` (and `bare_loop`
    where the plainest native loop is not `built.step` + `built.sync`)."""
    framework = ""
    #: variants whose harness overhead is measured against a bare loop
    overhead_variants: tuple[str, ...] = ("fused",)

    def __init__(self, adapter: Adapter):
        self.adapter = adapter

    @property
    def module(self):
        """The framework's module, as the adapter imports it."""
        return self.adapter.load()

    # cases -------------------------------------------------------------------------------------
    def native_device(self, device: str) -> str:
        """The name `Case.devices` uses for `device` (cpu / cuda)."""
        return device

    def bench_cases(self, rule: str, device: str) -> list[Case]:
        """Every variant of the plainest case claiming `rule` (fewest fixed kwargs/hp)."""
        dev = self.native_device(device)
        cases = [c for c in self.adapter.cases() if c.rule == rule and dev in c.devices and "float32" in c.dtypes]
        if not cases:
            return []
        order = list(dict.fromkeys(c.name for c in cases))
        cost = {n: min(len(c.kwargs) + len(c.fixed_hp) for c in cases if c.name == n) for n in order}
        name = min(order, key=lambda n: (cost[n], order.index(n)))
        return [c for c in cases if c.name == name]

    def gate_goldens(self, case: Case):
        """Goldens for the correctness gate (None: every golden the case can express)."""
        return None

    # framework hooks ----------------------------------------------------------------------------
    def pin_threads(self, threads: int) -> Callable[[], None]:
        """Apply the framework's thread setting; return a function that restores it."""
        return lambda: None

    def build(self, case: Case, shapes: bench_layouts.Shapes, device: str, dtype: str,
              hp: dict[str, Any], seed: int = 0) -> Built:
        """The adapter's own driver for `case` (the one the conformance run uses), at random parameters
        and gradients of `shapes`; `Built.step` is `Driver.step` and nothing else."""
        inp = bench_input(shapes, hp, seed)
        with self.adapter.context(device, dtype):
            driver = self.adapter.driver(case, inp, device, dtype)
            grads = driver.native_grads(bench_grads(shapes, seed))
        lr = inp.lr[0]

        def step() -> None:
            driver.step(grads, lr, 1.0)

        return Built(step=step, sync=self.sync(device, driver), n_params=sum(math.prod(s) for s in shapes),
                     n_tensors=len(shapes), native=driver)

    def sync(self, device: str, driver) -> Callable[[], None]:
        """Wait until the driver's last step has finished on `device`."""
        return lambda: None

    def memory_probe(self, device: str) -> MemoryProbe | str:
        """How a step's peak memory is read on `device` (bench_memory), or why it cannot be. CPU: the
        process' RSS high-water mark, whatever the framework; other devices: the stepper's own."""
        if device == "cpu":
            return rss_probe()
        return f"no peak-memory statistics for device {device!r} in the {self.framework} stepper"

    def stream(self, n: int, arrays: int, written: int, device: str, dtype: str) -> Built:
        """The limit kernel: `arrays` arrays of n elements, one in-place single-pass update per written array."""
        raise NotImplementedError

    def bare_step(self, built: Built) -> Callable[[], None]:
        """The plainest native call of one step (the harness overhead is measured against it);
        steppers whose native call differs from `built.step` override it."""
        return built.step

    def bare_loop(self, built: Built, n: int) -> list[float]:
        """n per-step seconds from the plainest possible loop (perf_counter, native step, native sync)."""
        return samples(self.bare_step(built), built.sync, n)

    def environment(self, device: str) -> dict[str, Any]:
        return {}


def stepper_frameworks() -> list[str]:
    """Every known framework that has a benchmark stepper (its framework is not imported)."""
    from optconform import registry
    names = []
    for name in registry.adapter_names():
        try:
            get_stepper(name, registry.load_adapter(name))
        except (LookupError, ImportError, TypeError):
            continue
        names.append(name)
    return names


def get_stepper(framework: str, adapter: Adapter) -> Stepper:
    """The stepper for `framework`: the adapter's own (`Adapter.stepper`), else one registered under
    the entry-point group ``optconform.steppers``."""
    own = adapter.stepper()
    if own is not None:
        return own
    try:
        targets = {ep.name: ep.value for ep in metadata.entry_points(group=GROUP)}
    except Exception:       # a broken distribution's metadata must not break discovery
        targets = {}
    if framework not in targets:
        raise LookupError(f"no benchmark stepper for framework {framework!r} yet (steppers: {', '.join(sorted(targets))}); "
                          f"add one under the entry-point group {GROUP!r}")
    module, _, attr = targets[framework].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls(adapter)


def bench_input(shapes: bench_layouts.Shapes, hp: dict[str, Any], seed: int = 0) -> RunInput:
    """Random float32 parameters of `shapes` (names p0, p1, ...), constant lr hp["lr"], no eta."""
    rng = np.random.default_rng(seed)
    names = tuple(f"p{i}" for i in range(len(shapes)))
    params = {n: rng.standard_normal(shape, dtype=np.float32) for n, shape in zip(names, shapes)}
    return RunInput(tensors=names, params0=params, grads=(), lr=(float(hp["lr"]),), eta=(1.0,),
                    hp={k: v for k, v in hp.items() if k != "lr"})


def bench_grads(shapes: bench_layouts.Shapes, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 gradients of `shapes`, 1e-3 times a standard normal."""
    rng = np.random.default_rng(seed + 1)
    return {f"p{i}": rng.standard_normal(shape, dtype=np.float32) * np.float32(1e-3) for i, shape in enumerate(shapes)}


def bench_hp(case: Case) -> dict[str, Any]:
    """Canonical hyper-parameters the benchmark uses: the rule's defaults the case can take (lr apart)."""
    from optconform.reference import get_rule
    defaults = get_rule(case.rule).defaults
    hp = {k: (list(v) if isinstance(v, tuple) else v) for k, v in defaults.items()
          if k in case.hp_map and k not in ("lr", "eta")}
    hp["lr"] = float(defaults.get("lr", 1e-3))
    return hp
