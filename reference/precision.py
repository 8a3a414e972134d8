"""Scalar precision: which Python hyper-parameters a framework rounds before use, and where it takes the
betas of its bias-correction powers beta^t from (spec/tolerance.md, "Scalar precision").

The expected trajectory of a case is the reference run on the hyper-parameters *as the framework sees
them*: a documented property of the case, never a wider tolerance. `ScalarPrecision` is that property
as a value; `str()` renders it the way results JSON records it (``float32:lr,weight_decay;powers=param``).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


class Powers(enum.Enum):
    """Where the betas of the bias-correction powers come from."""
    #: float32-rounded betas, the powers computed in float32
    FLOAT32 = "float32"
    #: the moments' betas, the powers in float64
    FLOAT64 = "float64"
    #: FLOAT32 or FLOAT64 by the run's parameter dtype (`ScalarPrecision.resolved`)
    PARAM = "param"
    #: the unrounded Python betas, in float64, whatever the moments use
    EXACT = "exact"


#: `ScalarPrecision.rounded` value meaning "every float hyper-parameter"
ALL = ("*",)


@dataclass(frozen=True)
class ScalarPrecision:
    """rounded: hyper-parameter names rounded to float32 (`ALL`: every float one; (): none);
    powers: where the bias-correction powers take their betas from (None: the moments' betas)."""
    rounded: tuple[str, ...] = ()
    powers: Powers | None = None
    #: the dtype a Muon Newton-Schulz iteration is computed in whatever the parameters' (torch:
    #: "bfloat16"); None: the parameter dtype (spec/muon.md, "Iteration precision")
    iteration: str | None = None

    def __post_init__(self) -> None:
        if self.rounded != ALL and any(not isinstance(n, str) or not n.isidentifier() for n in self.rounded):
            raise ValueError(f"ScalarPrecision.rounded: hyper-parameter names or ALL, got {self.rounded!r}")
        if self.powers is not None and not isinstance(self.powers, Powers):
            raise ValueError(f"ScalarPrecision.powers: a Powers member, got {self.powers!r}")
        if self.iteration is not None and self.iteration not in ("bfloat16", "float16", "float32"):
            raise ValueError(f"ScalarPrecision.iteration: bfloat16, float16 or float32, got {self.iteration!r}")

    def __str__(self) -> str:
        rounding = "" if not self.rounded else "float32" if self.rounded == ALL else "float32:" + ",".join(self.rounded)
        powers = f"powers={self.powers.value}" if self.powers else ""
        iteration = f"iteration={self.iteration}" if self.iteration else ""
        return ";".join(p for p in (rounding, powers, iteration) if p)

    def resolved(self, dtype: str) -> "ScalarPrecision":
        """`Powers.PARAM` replaced by the run's parameter dtype (float32 or float64)."""
        if self.powers is not Powers.PARAM:
            return self
        if dtype not in ("float32", "float64"):
            raise ValueError(f"powers=param is modelled for float32 and float64 parameters, not {dtype}")
        return ScalarPrecision(self.rounded, Powers(dtype), self.iteration)

    def rounds(self, name: str) -> bool:
        return self.rounded == ALL or name in self.rounded

    def round_hp(self, hp: Mapping[str, Any]) -> dict[str, Any]:
        """Hyper-parameters as the framework sees them: the rounded ones to float32 (lists elementwise)."""
        return {k: round_float32(v) if self.rounds(k) else v for k, v in hp.items()}


#: Every float hyper-parameter rounded to float32 (C++ float kernels: MXNet).
FLOAT32 = ScalarPrecision(ALL)


def round_float32(value: Any) -> Any:
    """A float (or a list of floats) rounded to float32; anything else unchanged."""
    if isinstance(value, float):
        return float(np.float32(value))
    if isinstance(value, (list, tuple)) and value and all(isinstance(x, float) for x in value):
        return [float(np.float32(x)) for x in value]
    return value
