"""The outcome of `optconform.check`: what ran, what diverged first and worst, the fingerprint and the
diagnosis; readable as text (`str()`) and as JSON."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import compare
from .fingerprint import Fingerprint


@dataclass
class CheckReport:
    """The outcome of `check`: truthy when the optimizer conforms; `str()` is the readable report."""
    factory: str
    rule: str
    framework: str
    version: str
    device: str
    dtype: str
    conforms: bool = False
    scenarios: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)      # golden -> why it could not run
    worst: compare.Divergence | None = None
    first: compare.Divergence | None = None
    fingerprint: Fingerprint | None = None
    differences: list[str] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)          # measured patterns (optconform.diagnose)
    unseen: list[str] = field(default_factory=list)             # knob=value flips no probe that ran can see
    error: str = ""
    repro_path: str = ""

    def __bool__(self) -> bool:
        return self.conforms

    @property
    def verdict(self) -> str:
        if self.conforms:
            return "CONFORMS"
        return "UNDECIDED" if self.unseen and not self.failed else "DOES NOT CONFORM"

    def __str__(self) -> str:
        head = (f"{self.factory} vs rule {self.rule!r} ({self.framework} {self.version}, {self.device}, {self.dtype}): "
                + self.verdict)
        lines = [head, f"  probe scenarios run: {len(self.scenarios)}, diverging: {len(self.failed)}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.first is not None:
            lines.append(f"  first divergence: {self.first.golden}: {self.first.describe()}")
        elif self.worst is not None:
            lines.append(f"  worst: {self.worst.golden}: {self.worst.describe()}")
        if self.unseen:
            lines.append(f"  the probes that ran cannot see {', '.join(self.unseen)}: an optimizer with that knob value "
                         f"would pass them too (make the factory take the hyper-parameters of the probes not run)")
        if self.fingerprint is not None:
            lines.append(f"  fingerprint: {self.fingerprint.describe()}")
        for diff in self.differences:
            lines.append("  " + diff)
        if self.diagnosis:
            lines.append("  diagnosis:")
            lines += [f"    - {line}" for line in self.diagnosis]
        if self.skipped:
            lines.append(f"  not run ({len(self.skipped)}): " + "; ".join(f"{g}: {why}" for g, why in self.skipped.items()))
        if self.repro_path:
            lines.append(f"  repro script: {self.repro_path}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        def div(d):
            return None if d is None else {"golden": d.golden, "step": d.step, "tensor": d.tensor, "index": list(d.index),
                                           "native": d.native, "expected": d.expected, "units": d.units}
        return {"factory": self.factory, "rule": self.rule, "framework": self.framework, "version": self.version,
                "device": self.device, "dtype": self.dtype, "conforms": self.conforms, "verdict": self.verdict,
                "scenarios": self.scenarios, "failed": self.failed, "skipped": self.skipped,
                "first_divergence": div(self.first), "worst": div(self.worst), "differences": self.differences,
                "diagnosis": self.diagnosis, "unseen_knobs": self.unseen, "error": self.error,
                "fingerprint": self.fingerprint.to_json() if self.fingerprint else None, "repro": self.repro_path}
