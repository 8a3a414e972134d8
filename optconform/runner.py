"""Run native cases against the golden corpus and classify each (case, device, dtype) row.

Verdicts: `conforms` (every golden within tolerance), `deviates` (an unexpected nonconformance),
`n/a` (the installed release lacks the native API or a keyword the case passes: not an error),
`xfail` (a registered known deviation that still deviates), `xpass` (a registered deviation that now
conforms: remove the entry), `error` (the adapter raised), `unavailable` (the framework does not
import), `no-goldens` (the case cannot express any golden scenario — a gap, reported, never a pass).
"""
from __future__ import annotations

import fnmatch
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from optconform.reference.precision import ScalarPrecision
from optconform.adapters.base import Adapter, AdapterUnavailable, Case
from optconform.golden.format import Golden
from optconform.reference import get_rule

from . import baseline, carry, compare, deviations, fingerprint, lane_trajectories, plan, semantics

FAILING = ("deviates", "xpass", "error", "unavailable", "no-goldens")


@dataclass
class CaseResult:
    framework: str
    framework_version: str
    case: str                   # case id, e.g. torch-AdamW[fused]
    name: str
    variant: str
    native: str
    device: str
    device_name: str
    dtype: str
    claimed_rule: str
    matched_rule: str = ""
    matched_units: float = float("nan")
    decay_kind: str = ""
    fingerprint: str = ""       # the knob vector the native runs implement (optconform.fingerprint)
    verdict: str = "error"
    worst_units: float = float("nan")
    worst_ulps: float = float("nan")
    worst_at: dict[str, Any] = field(default_factory=dict)
    first_divergence: str = ""
    goldens_run: int = 0
    goldens_failed: list[str] = field(default_factory=list)
    candidate_units: dict[str, float] = field(default_factory=dict)
    deviation: dict[str, str] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0
    trace: dict[str, Any] = field(default_factory=dict)   # worst element over steps, for the HTML plot
    documented_rule: str = ""   # the rule the native optimizer's documentation claims (Case.documented_rule)
    #: the two axes of the verdict (spec/results-format.md): which maths the case implements
    #: (optconform.semantics.Semantics.to_json) and how precisely (within tolerance or how far off, why)
    semantics: dict[str, Any] = field(default_factory=dict)
    precision: dict[str, Any] = field(default_factory=dict)
    equivalent_rules: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict not in FAILING

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("matched_units", "worst_units", "worst_ulps"):
            data[key] = _num(data[key])
        data["candidate_units"] = {k: _num(v) for k, v in data["candidate_units"].items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CaseResult":
        """The row `to_json` wrote (a worker process's row: optconform.workers); to_json(from_json(d)) == d."""
        row = dict(data)
        for key in ("matched_units", "worst_units", "worst_ulps"):
            row[key] = _float(row[key])
        row["candidate_units"] = {k: _float(v) for k, v in row["candidate_units"].items()}
        return cls(**row)


def _num(v):
    if isinstance(v, float) and not np.isfinite(v):
        return None if np.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _float(v):
    """The inverse of _num: None -> nan, "inf" / "-inf" -> +-inf."""
    return float("nan") if v is None else float(v) if isinstance(v, str) else v


def _trace(native, expect, golden: Golden, dtype: str, knobs, worst: compare.Divergence, cond=None) -> dict[str, Any]:
    from optconform.reference.tolerance import error_units, tolerance
    sel = (slice(None),) + worst.index
    exp = np.asarray(expect[worst.tensor], dtype=np.float64)
    nat = np.asarray(native[worst.tensor], dtype=np.float64)
    units = error_units(nat, exp, tolerance(exp, dtype, knobs, cond, golden.run_hp))[sel]
    return {"golden": golden.name, "tensor": worst.tensor, "index": list(worst.index),
            "native": [_num(float(x)) for x in nat[sel]], "expected": [_num(float(x)) for x in exp[sel]],
            "units": [_num(float(x)) for x in units]}


def run_case(adapter: Adapter, case: Case, device: str, dtype: str, version: str,
             goldens: Iterable[Golden] | None = None, trajectories: str | None = None) -> CaseResult:
    """Run one native case on every golden it can express, on one device and dtype (`trajectories`: a
    directory that keeps the native runs, optconform.lane_trajectories)."""
    started = time.perf_counter()
    result = CaseResult(framework=adapter.name, framework_version=version, case=case.id, name=case.name,
                        variant=case.variant, native=case.native, device=device,
                        device_name=adapter.device_name(device), dtype=dtype, claimed_rule=case.rule,
                        documented_rule=getattr(case, "documented_rule", ""))
    unsupported = adapter.unsupported(case, device)
    if unsupported:
        result.verdict, result.error = "n/a", unsupported
        return result
    selected = plan.goldens_for(case, adapter.supports_eta, goldens)
    if not selected:
        result.verdict, result.error = "no-goldens", "the case can express none of its rule's golden scenarios"
        return result
    ran = _run_goldens(result, adapter, case, selected)
    if ran is not None:
        if trajectories:
            lane_trajectories.save(trajectories, asdict(result), ran.runs)
        _record(result, ran, case, selected)
        _classify(result, version, case.id, [g.name for g in selected])
        result.precision = _precision(result, case.precision)
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class _Ran:
    """The native runs of one case against the reference: each (golden, params), the worst and the
    first divergence, the goldens out of tolerance."""
    runs: list = field(default_factory=list)
    worst: compare.Divergence | None = None
    first: compare.Divergence | None = None
    failed: list[str] = field(default_factory=list)
    where: str = ""


def _run_goldens(result: CaseResult, adapter: Adapter, case: Case, selected: list[Golden]) -> _Ran | None:
    """Run the case on each golden and compare with the reference (the worst element's trace into
    `result`); None when it raised: `result` is then an error row."""
    knobs = get_rule(case.rule).knobs
    dtype = result.dtype
    precision = case.precision.resolved(dtype) if case.precision is not None else None
    ran = _Ran()
    try:
        for golden in selected:
            inp = plan.run_input(case, golden, adapter.supports_eta)
            native = adapter.run(case, inp, result.device, dtype).params
            expect = compare.expected(case.rule, golden, precision)
            cond = compare.conditioning(case.rule, golden, precision)
            div = compare.compare(native, expect, golden, dtype, knobs, cond)
            ran.runs.append((golden, native))
            if div.units > 1.0:
                ran.failed.append(golden.name)
                if ran.first is None:
                    ran.first = compare.first_divergence(native, expect, golden, dtype, knobs, cond)
                    ran.where = adapter.locate(case, inp, golden.name, dtype, ran.first.tensor, ran.first.index)
            if (ran.worst is None or div.units > ran.worst.units) and np.size(expect[div.tensor]):
                ran.worst = div
                result.trace = _trace(native, expect, golden, dtype, knobs, div, cond)
    except BaseException as exc:  # one broken case (even SystemExit) is an error row, never a crash of the run
        if isinstance(exc, KeyboardInterrupt):
            raise
        result.verdict = "error"
        result.error = f"{type(exc).__name__}: {exc}"
        result.trace = {"traceback": traceback.format_exc(limit=4)}
        return None
    return ran


def _record(result: CaseResult, ran: _Ran, case: Case, selected: list[Golden]) -> None:
    """The goldens run and failed, the worst element and the first divergence, the semantics axis."""
    worst, first = ran.worst, ran.first
    result.goldens_run = len(selected)
    result.goldens_failed = ran.failed
    result.worst_units, result.worst_ulps = worst.units, worst.ulps
    result.worst_at = {"golden": worst.golden, "step": worst.step, "tensor": worst.tensor,
                       "index": list(worst.index), "native": _num(worst.native), "expected": _num(worst.expected)}
    result.first_divergence = f"{first.golden}: {first.describe()}" + (f" ({ran.where})" if ran.where else "") if first else ""
    _semantics(result, ran.runs, case, result.dtype)


def _classify(result: CaseResult, version: str, case_id: str, selected: list[str]) -> None:
    """The verdict: conforms / deviates, or xfail / xpass under a registered deviation; a carried
    deviation (beyond its versions) applies the pinned baseline row."""
    failed = result.goldens_failed
    conforms = not failed
    names = failed or selected
    where = (result.framework, version, case_id, names, result.device, result.dtype)
    dev = _covering(*where, all_of=bool(failed))
    if dev is not None:
        result.deviation = {"id": dev.id, "kind": dev.kind, "reason": dev.reason, "issue": dev.issue}
        result.verdict = "xpass" if conforms else "xfail"
        return
    result.verdict = "conforms" if conforms else "deviates"
    carried = _covering(*where, all_of=bool(failed), beyond=True)
    if carried is not None:
        carry.apply(result, carried, baseline.pinned_row(result.framework, case_id, result.device, result.dtype),
                    conforms)


def _semantics(result: CaseResult, runs, case: Case, dtype: str) -> None:
    """The semantics axis (optconform.semantics): matched rule, decay kind, candidates, fingerprint."""
    units = compare.per_golden(runs, case.rule, dtype, case.precision)
    scores = {name: max(u, default=0.0) for name, u in units.items()}
    sem, _ = semantics.identify_runs(units, case.rule, runs)
    best = sem.rule if sem.status != "unknown" else compare.best_of(scores, case.rule)
    result.matched_rule, result.matched_units, result.candidate_units = best, scores[best], scores
    result.semantics, result.equivalent_rules = sem.to_json(), list(sem.equivalent_rules)
    result.decay_kind = sem.decay_kind
    result.fingerprint = _fingerprint(runs, case, dtype, best, scores[best], sem) + _precision_tag(case.precision)


def _precision(result: CaseResult, precision: ScalarPrecision | None) -> dict[str, Any]:
    """The precision axis: the worst error against the claimed rule, whether it is within tolerance,
    the precision model the expected trajectory used (Case.precision) and the registered reason."""
    out: dict[str, Any] = {"units": _num(result.worst_units), "model": str(precision or ""),
                           "status": "within tolerance" if not result.goldens_failed else "out of tolerance"}
    if result.goldens_failed and result.deviation:
        out["status"] = f"registered {result.deviation['kind']} deviation"
        out["deviation"] = result.deviation.get("id", "")
    return out


def _precision_tag(precision: ScalarPrecision | None) -> str:
    """The reference's precision knob as the fingerprint reports it, e.g. ' [powers=float32]'."""
    return f" [powers={precision.powers.value}]" if precision is not None and precision.powers else ""


def _fingerprint(runs, case: Case, dtype: str, best: str, best_units: float, sem=None) -> str:
    """The knob vector: the matched preset's when one fits or is identified (semantics), else a full
    fingerprint search."""
    if best_units <= 1.0 or (sem is not None and sem.status != "unknown"):
        return fingerprint.compact(get_rule(best).relevant_knobs())

    return fingerprint.fingerprint(runs, plan.base_rule(case.rule), dtype, case.precision).compact()


def _covering(framework, version, case_id, goldens, device, dtype, all_of: bool, beyond: bool = False):
    """The registered deviation for these goldens: covering every one of them (`all_of`: a deviation
    must explain each failing golden, or the row deviates) or any one (a conforming row: xpass)."""
    found = [deviations.lookup(framework, version, case_id, name, device, dtype, beyond) for name in goldens]
    if all_of:
        return found[0] if found and all(found) else None
    return next((dev for dev in found if dev is not None), None)


def select_cases(cases: list[Case], pattern: str | None) -> list[Case]:
    """Cases whose id contains `pattern` (or matches it as a glob)."""
    if not pattern:
        return cases
    return [c for c in cases if pattern in c.id or fnmatch.fnmatchcase(c.id, pattern)]


def _pooled(adapter: Adapter, jobs: list, workers: int, progress, trajectories: str | None) -> list[CaseResult]:
    """The rows of `jobs` from worker processes, compiling variants started first (the longest rows
    first, so that the workers finish together), returned in job order."""
    from optconform import workers as pool
    order = sorted(range(len(jobs)), key=lambda i: jobs[i][0].variant not in adapter.compiling_variants)
    rows = pool.run_jobs(adapter.name, [(jobs[i][0].id, jobs[i][1], jobs[i][2]) for i in order], workers,
                         progress, trajectories)
    in_job_order: list = [None] * len(jobs)
    for position, index in enumerate(order):
        in_job_order[index] = rows[position]
    return [CaseResult.from_json(row) for row in in_job_order]


def run_adapter(adapter: Adapter, devices: Iterable[str] | None = None, dtypes: Iterable[str] | None = None,
                pattern: str | None = None, progress: Callable[[int, int, str], None] | None = None,
                workers: int = 1, trajectories: str | None = None) -> list[CaseResult]:
    """Every selected case of one adapter on every requested device and dtype it supports; with
    `workers` > 1 the rows are computed by that many processes (optconform.workers; the adapter must
    be the registry's adapter of its name), in the same order, unless the adapter runs its rows in
    processes of its own (`Adapter.rows_in_workers` False). `trajectories`: see `run_case`."""
    try:
        adapter.load()
        version = adapter.version()
        available = adapter.devices()
    except AdapterUnavailable as exc:
        return [CaseResult(framework=adapter.name, framework_version="", case=f"{adapter.name}-*", name="*",
                           variant="", native="", device="", device_name="", dtype="", claimed_rule="",
                           verdict="unavailable", error=str(exc))]
    wanted_devices = [d for d in available if devices is None or d in devices]
    jobs = []
    for case in select_cases(adapter.cases(), pattern):
        for device in wanted_devices:
            if device not in case.devices:
                continue
            for dtype in case.dtypes:
                if dtypes is None or dtype in dtypes:
                    jobs.append((case, device, dtype))
    if workers > 1 and len(jobs) > 1 and adapter.rows_in_workers:
        return _pooled(adapter, jobs, workers, progress, trajectories)
    results = []
    for i, (case, device, dtype) in enumerate(jobs):
        if progress:
            progress(i, len(jobs), f"{case.id} {device} {dtype}")
        results.append(run_case(adapter, case, device, dtype, version, trajectories=trajectories))
    if progress:
        progress(len(jobs), len(jobs), "done")
    return results
