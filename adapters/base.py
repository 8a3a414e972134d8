"""The adapter interface: native optimizer cases as keyword records, one driver per framework, and the
one trajectory loop every framework shares.

An adapter wraps one framework (torch optimizers, optax transforms, Keras `apply`, MXNet update ops).
It lives in its own package, ``adapters/<framework>/``:

- ``cases.py``: its native cases as `Case` records (native API, fixed keyword arguments, implementation
  variant, the spec rule it claims, where each canonical hyper-parameter goes: an `Arg` of the native
  call, or a `Hook` the driver applies itself), like PyTorch's `OptimizerInfo`;
- ``driver.py``: a `Driver` that builds the native optimizer once and takes one native step at a time;
- ``deviations.toml``: the framework's registered deviations (optconform.deviations);
- ``bench.py``: the step-time stepper, timing `Driver.step` of the same driver.

`Adapter.run` owns the trajectory loop: build the driver, record its parameters (and its state under
spec names, where the framework exposes it) before the first step and after every step.

Adapters never import their framework at module import time; `Adapter.load()` does, so importing
optconform stays framework-free.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, ContextManager, Mapping, Sequence

import numpy as np

from optconform.reference.precision import ScalarPrecision

#: Values of the universal hyper-parameters at which they do nothing: a case needs no native
#: argument for a hyper-parameter at its neutral value.
NEUTRAL_HP: Mapping[str, Any] = {
    "eta": 1.0, "rescale_grad": 1.0, "clip_value": None, "clip_norm": None, "clip_global_norm": None,
    "weight_decay_exclude": [], "weight_decay_mask": None,
}
DTYPES = ("float64", "float32", "bfloat16", "float16")
_DOTTED = re.compile(r"[A-Za-z]\w*(\.[A-Za-z]\w*)+")


@dataclass(frozen=True)
class Arg:
    """A native keyword argument that receives a canonical hyper-parameter; `index` puts the value at
    that position of a tuple argument (torch's ``betas=(beta1, beta2)``: ``Arg("betas", 0)``)."""
    name: str
    index: int | None = None


class Hook:
    """A canonical hyper-parameter the native API takes no keyword for, applied by the framework's
    driver itself (a torch param group, an optax mask, a state slot written after `create_state`).
    Each framework subclasses it (frozen dataclasses) with one class per way of applying a value."""


def _target(value: "Arg | Hook | str") -> "Arg | Hook":
    if isinstance(value, (Arg, Hook)):
        return value
    if isinstance(value, str) and value.isidentifier():
        return Arg(value)
    raise TypeError(f"hp_map values are Arg, Hook or a plain keyword name, got {value!r}")


@dataclass(frozen=True)
class Case:
    """One native optimizer configuration, as a keyword record.

    kwargs: the fixed keyword arguments of the native call (real keywords only).
    hp_map: canonical hyper-parameter -> where it goes (`Arg`, `Hook`; a plain name is `Arg(name)`).
      The case can run a golden only if every non-neutral hyper-parameter of the golden is mapped
      here or equals `fixed_hp`.
    fixed_hp: canonical values this configuration implies (e.g. nesterov=True for SGD(nesterov=True));
      goldens with other values are not this case's.
    precision: which hyper-parameters the framework rounds to float32 before use, and where its
      bias-correction powers take their betas from (optconform.reference.precision): the expected
      trajectory is the reference run on the hyper-parameters as the framework sees them -- a
      documented property of the case, not a wider tolerance.
    factory: a user's constructor (optconform check / fingerprint) used instead of `native`; it
      receives canonical hyper-parameters by name (hp_map is then the identity on the names it takes).
    documented_rule: the rule the native optimizer's documentation claims it implements, when that
      differs from or adds to `rule` (the rule it really implements); shown in reports, never compared.
    tensor_ndims: the tensor ranks the native accepts (None: any); goldens with a tensor of another rank
      are not this case's (torch.optim.Muon refuses every tensor that is not 2-D).
    """
    framework: str
    name: str
    native: str
    rule: str
    variant: str = "default"
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    hp_map: Mapping[str, Any] = field(default_factory=dict)
    fixed_hp: Mapping[str, Any] = field(default_factory=dict)
    dtypes: tuple[str, ...] = ("float64", "float32")
    devices: tuple[str, ...] = ("cpu", "cuda")
    precision: ScalarPrecision | None = None
    notes: str = ""
    factory: Callable[..., Any] | None = field(default=None, compare=False)
    documented_rule: str = ""
    tensor_ndims: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "hp_map", {k: _target(v) for k, v in self.hp_map.items()})

    @property
    def id(self) -> str:
        """Readable id, e.g. ``torch-AdamW[fused]``."""
        return f"{self.framework}-{self.name}[{self.variant}]"

    def native_kwargs(self, hp: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments of the native call: the fixed ones plus every hyper-parameter in `hp`
        mapped to an `Arg` (lr and eta excluded: drivers pass the schedule their framework's way)."""
        out: dict[str, Any] = dict(self.kwargs)
        tuples: dict[str, dict[int, Any]] = {}
        for canonical, target in self.hp_map.items():
            if canonical not in hp or canonical in ("lr", "eta") or not isinstance(target, Arg):
                continue
            if target.index is None:
                out[target.name] = hp[canonical]
            else:
                tuples.setdefault(target.name, {})[target.index] = hp[canonical]
        for name, items in tuples.items():
            out[name] = tuple(items[i] for i in range(len(items)))
        return out

    def hooked(self, hp: Mapping[str, Any]) -> dict[Hook, Any]:
        """The hyper-parameters in `hp` the driver applies itself: {hook: value}."""
        return {target: hp[k] for k, target in self.hp_map.items() if isinstance(target, Hook) and k in hp}


@dataclass(frozen=True)
class RunInput:
    """One scenario as an adapter sees it: float64 arrays (float32-exact values), per-step lr/eta,
    and the golden's resolved canonical hyper-parameters."""
    tensors: tuple[str, ...]
    params0: Mapping[str, np.ndarray]
    grads: Sequence[Mapping[str, np.ndarray]]
    lr: tuple[float, ...]
    eta: tuple[float, ...]
    hp: Mapping[str, Any]

    @property
    def steps(self) -> int:
        return len(self.grads)


@dataclass
class NativeRun:
    """What a native run returns: params (name -> (T+1, *shape) float64) and, where the framework
    exposes it, state under spec names (spec name -> tensor name -> (T+1, *shape))."""
    params: dict[str, np.ndarray]
    state: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


class Driver:
    """One native optimizer, built once, stepped one native step at a time.

    `native_grads` converts host gradients to the framework's tensors (outside any timed region);
    `step` takes one native step with them at the schedule's lr_t and eta_t (frameworks whose optimizer
    owns its schedule -- optax schedules, Keras LearningRateSchedule -- are built with the run's whole
    schedule, as their users do, and check that lr_t is the value it yields); `params` and `state`
    read the current values back to float64 host arrays."""

    def native_grads(self, grads: Mapping[str, np.ndarray]) -> Any:
        raise NotImplementedError

    def step(self, grads: Any, lr_t: float, eta_t: float) -> None:
        raise NotImplementedError

    def params(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        """Spec state name -> tensor -> value, for what the framework exposes now ({} = nothing)."""
        return {}


class AdapterUnavailable(RuntimeError):
    """The framework cannot be imported (the message says why)."""


class Adapter:
    """Base class. Subclasses set `name`, implement `_import`, `cases` and `driver`; optional
    `devices`, `device_name`, `version`, `context`."""
    name: str = ""
    #: Whether the framework takes the schedule multiplier eta natively (else eta is folded into lr).
    supports_eta: bool = False
    #: How `Case.factory` (a user's constructor) is called: "params" = factory(params, **hp) (torch),
    #: "hp" = factory(**hp) (optax, Keras); "" = not supported.
    factory_style: str = ""
    #: The scalar precision of a user's factory (the framework's, whatever the optimizer).
    factory_precision: ScalarPrecision | None = None
    #: Whether `optconform run --workers` may spread this adapter's rows over worker processes (False: the
    #: adapter starts processes of its own and batches its rows, torch-distributed).
    rows_in_workers: bool = True
    #: The implementation variants whose rows compile (torch.compile, XLA, jax.jit): `optconform run
    #: --workers` starts them first, so that no compile-heavy row is left to one worker at the end.
    compiling_variants: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self._module = None

    def load(self):
        """Import the framework (once); raises AdapterUnavailable with the import error."""
        if self._module is None:
            try:
                self._module = self._import()
            except Exception as exc:  # any import-time failure makes the adapter unavailable
                raise AdapterUnavailable(f"{self.name}: cannot import the framework: {type(exc).__name__}: {exc}") from exc
        return self._module

    def _import(self):
        raise NotImplementedError

    def version(self) -> str:
        """The framework's version string (loads it)."""
        return str(getattr(self.load(), "__version__", "unknown"))

    def devices(self) -> list[str]:
        """Devices available here (cpu always; accelerators when the framework sees one)."""
        return ["cpu"]

    def device_name(self, device: str) -> str:
        """Human-readable model of a device (GPU name) for the results JSON."""
        return device

    def cases(self) -> list[Case]:
        raise NotImplementedError

    def stepper(self):
        """This framework's step-time benchmark stepper (an optconform.bench_stepper.Stepper), or None."""
        return None

    def deviations_toml(self) -> str:
        """The text of this adapter's registered deviations (``deviations.toml`` next to its code;
        "" when it has none)."""
        package = type(self).__module__.rpartition(".")[0]
        path = resources.files(package).joinpath("deviations.toml")
        return path.read_text("utf-8") if path.is_file() else ""

    def unsupported(self, case: Case, device: str) -> str:
        """Why this release cannot run `case` on `device` ('' when it can): the native API or one of
        the fixed keywords that make the case (`fused=`, `decoupled_weight_decay=`, `amsgrad=`) does
        not exist in the installed release: verdict n/a, not an error. Natives named by a dotted path
        are checked."""
        if case.factory is not None or not _DOTTED.fullmatch(case.native):
            return ""
        from optconform import natives
        return natives.unsupported(case.native, list(case.kwargs))

    def locate(self, case: Case, inp: RunInput, golden: str, dtype: str, tensor: str, index) -> str:
        """Where a diverging element lives natively, for the failure message ('' = nothing to add; the
        distributed adapter names the rank and shard, and its repro command)."""
        return ""

    def context(self, device: str, dtype: str) -> ContextManager[Any]:
        """The framework context a run executes in (x64 mode, device scope, shape semantics)."""
        return contextlib.nullcontext()

    def driver(self, case: Case, inp: RunInput, device: str, dtype: str) -> Driver:
        """The native optimizer of `case`, built for `inp`'s tensors, hyper-parameters and schedule,
        at `inp.params0` (called inside `context`)."""
        raise NotImplementedError

    def run(self, case: Case, inp: RunInput, device: str, dtype: str) -> NativeRun:
        """Run one case on one scenario; validates the returned shapes."""
        if dtype not in case.dtypes:
            raise ValueError(f"{case.id} does not support dtype {dtype!r} (supports {case.dtypes})")
        with self.context(device, dtype):
            out = self.trajectory(case, inp, device, dtype)
        for name in inp.tensors:
            want = (inp.steps + 1, *np.shape(inp.params0[name]))
            got = np.shape(out.params.get(name))
            if got != want:
                raise ValueError(f"{case.id}: adapter returned shape {got} for tensor {name!r}, expected {want}")
        return out

    def trajectory(self, case: Case, inp: RunInput, device: str, dtype: str) -> NativeRun:
        """The one trajectory loop: parameters and exposed state before the first step and after each."""
        driver = self.driver(case, inp, device, dtype)
        params = {n: [v] for n, v in driver.params().items()}
        states: list[dict[str, dict[str, np.ndarray]]] = [driver.state()]
        for t, grads in enumerate(inp.grads):
            driver.step(driver.native_grads(grads), inp.lr[t], inp.eta[t])
            for n, v in driver.params().items():
                params[n].append(v)
            states.append(driver.state())
        return NativeRun(params={n: np.stack(v) for n, v in params.items()},
                         state=_stack_states(states, inp.tensors))


def _stack_states(states: Sequence[Mapping[str, Mapping[str, np.ndarray]]],
                  tensors: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """(T+1, *shape) per spec state name and tensor, for the names exposed for every tensor after
    every step; a state created lazily by the first step (torch) is NaN before it."""
    out: dict[str, dict[str, np.ndarray]] = {}
    after = states[1:] or states[:1]
    for spec in after[0]:
        if not all(spec in s and all(n in s[spec] for n in tensors) for s in after):
            continue
        out[spec] = {}
        for n in tensors:
            first = states[0].get(spec, {}).get(n)
            first = np.full_like(after[0][spec][n], np.nan) if first is None else first
            out[spec][n] = np.stack([first] + [s[spec][n] for s in states[1:]])
    return out
