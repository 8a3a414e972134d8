"""The adapter interface: native optimizer cases as declarative data, and one `run` per framework.

An adapter wraps one framework (torch optimizers, optax transforms, Keras `apply_gradients`, MXNet
update ops). It declares its native cases as `Case` records — native class or function, fixed
constructor kwargs, implementation variant, the spec rule it claims and how canonical
hyper-parameters map onto native arguments (like PyTorch's `OptimizerInfo`) — and runs one case on
one golden scenario, on one device, in one dtype, returning the trajectory (and the native state
mapped to spec names where the framework exposes it).

Adapters never import their framework at module import time; `Adapter.load()` does, so importing
optconform stays framework-free.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

#: Values of the universal hyper-parameters at which they do nothing: a case needs no native
#: argument for a hyper-parameter at its neutral value.
NEUTRAL_HP: Mapping[str, Any] = {
    "eta": 1.0, "rescale_grad": 1.0, "clip_value": None, "clip_norm": None, "clip_global_norm": None,
    "weight_decay_exclude": [], "weight_decay_mask": None,
}
DTYPES = ("float64", "float32", "bfloat16", "float16")
_DOTTED = re.compile(r"[A-Za-z]\w*(\.[A-Za-z]\w*)+")
_KEYWORD = re.compile(r"[A-Za-z]\w*")


@dataclass(frozen=True)
class Case:
    """One native optimizer configuration, as data.

    hp_map: canonical hyper-parameter -> native argument; ``"betas[0]"`` puts the value at index 0
      of a tuple argument ``betas``. The case can run a golden only if every non-neutral
      hyper-parameter of the golden is mapped here or equals `fixed_hp`.
    fixed_hp: canonical values this configuration implies (e.g. nesterov=True for SGD(nesterov=True));
      goldens with other values are not this case's.
    hp_dtype: "float32" when the framework rounds Python hyper-parameters to float32 before use
      (Keras on TF, MXNet kernels): the expected trajectory is then the reference run on the
      float32-rounded hyper-parameters — a documented property of the case, not a wider tolerance.
    factory: a user's constructor (optconform check / fingerprint) used instead of `native`; it
      receives canonical hyper-parameters by name (hp_map is then the identity on the names it takes).
    documented_rule: the rule the native optimizer's documentation claims it implements, when that
      differs from or adds to `rule` (the rule it really implements); shown in reports, never compared.
    """
    framework: str
    name: str
    native: str
    rule: str
    variant: str = "default"
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    hp_map: Mapping[str, str] = field(default_factory=dict)
    fixed_hp: Mapping[str, Any] = field(default_factory=dict)
    dtypes: tuple[str, ...] = ("float64", "float32")
    devices: tuple[str, ...] = ("cpu", "cuda")
    hp_dtype: str | None = None
    notes: str = ""
    factory: Callable[..., Any] | None = field(default=None, compare=False)
    #: The rule the native optimizer's own documentation promises (e.g. "bert_adamw" for a docstring
    #: saying "exactly matches the original BERT"); "" = no claim. Reported next to the matched rule.
    documented_rule: str = ""

    @property
    def id(self) -> str:
        """Readable id, e.g. ``torch-AdamW[fused]``."""
        return f"{self.framework}-{self.name}[{self.variant}]"

    def native_kwargs(self, hp: Mapping[str, Any]) -> dict[str, Any]:
        """Constructor kwargs: the fixed ones plus every mapped canonical hyper-parameter in `hp`."""
        out: dict[str, Any] = dict(self.kwargs)
        tuples: dict[str, dict[int, Any]] = {}
        for canonical, native in self.hp_map.items():
            if canonical not in hp or canonical in ("lr", "eta"):
                continue
            match = re.fullmatch(r"(\w+)\[(\d+)\]", native)
            if match:
                tuples.setdefault(match.group(1), {})[int(match.group(2))] = hp[canonical]
            else:
                out[native] = hp[canonical]
        for name, items in tuples.items():
            out[name] = tuple(items[i] for i in range(len(items)))
        return out


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


class AdapterUnavailable(RuntimeError):
    """The framework cannot be imported (the message says why)."""


class Adapter:
    """Base class. Subclasses set `name`, implement `_import`, `cases`, `_run`; optional `devices`."""
    name: str = ""
    #: Whether the framework takes the schedule multiplier eta natively (else eta is folded into lr).
    supports_eta: bool = False
    #: Whether `Case.factory` (a user's constructor) is supported, and how it is called:
    #: "params" = factory(params, **hp) (torch), "hp" = factory(**hp) (optax, Keras).
    factory_style: str = ""

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

    def unsupported(self, case: Case, device: str) -> str:
        """Why this release cannot run `case` on `device` ('' when it can): the native API or one of
        the fixed keywords that make the case (`fused=`, `decoupled_weight_decay=`, `amsgrad=`) does
        not exist in the installed release: verdict n/a, not an error. Natives named by a dotted path
        are checked; adapter-private entries (``_chain``) are not keywords."""
        if case.factory is not None or not _DOTTED.fullmatch(case.native):
            return ""
        from optconform import natives
        return natives.unsupported(case.native, [k for k in case.kwargs if _KEYWORD.fullmatch(k)])

    def run(self, case: Case, inp: RunInput, device: str, dtype: str) -> NativeRun:
        """Run one case on one scenario; validates the returned shapes."""
        if dtype not in case.dtypes:
            raise ValueError(f"{case.id} does not support dtype {dtype!r} (supports {case.dtypes})")
        out = self._run(case, inp, device, dtype)
        for name in inp.tensors:
            want = (inp.steps + 1, *np.shape(inp.params0[name]))
            got = np.shape(out.params.get(name))
            if got != want:
                raise ValueError(f"{case.id}: adapter returned shape {got} for tensor {name!r}, expected {want}")
        return out

    def _run(self, case: Case, inp: RunInput, device: str, dtype: str) -> NativeRun:
        raise NotImplementedError
