"""Conformance tests generated from the adapters' declared cases and the golden corpus.

One test per adapter x case x golden scenario x device x dtype, with readable ids such as
``torch-AdamW[fused]-zero_grad-cpu-float32``. A failure names the step, tensor, element, native vs
expected value, the error in tolerance units, and the spec rule the native run matches instead.
Registered known deviations are xfail(strict=True): an upstream fix shows up as XPASS (a failure).

The trajectories are computed once per lane: with OPTCONFORM_LANE_RESULTS naming the results JSON the
lane's `optconform run` wrote, the tests assert on its rows (a missing, foreign or stale file fails
them); without it each (case, device, dtype) row is computed here, once (optconform.lane_rows).

Which frameworks: OPTCONFORM_FRAMEWORKS (comma-separated; default: every registered adapter).
A framework listed in OPTCONFORM_REQUIRE that does not import makes `test_framework_imports` fail;
one that is merely not installed (and not required) is reported as skipped, never as passed.
"""
from __future__ import annotations


import fnmatch

import pytest

from optconform import baseline, carry, deviations, lane_rows, plan, registry
from optconform.adapters.base import AdapterUnavailable
from optconform.testing import required_frameworks, selected_frameworks

pytestmark = pytest.mark.framework()


FRAMEWORKS = selected_frameworks() or registry.adapter_names()
REQUIRED = required_frameworks()


def _loaded():
    """(name, adapter or None, import error) for every selected framework."""
    out = []
    for name in FRAMEWORKS:
        adapter = registry.load_adapter(name)
        try:
            adapter.load()
            out.append((name, adapter, ""))
        except AdapterUnavailable as exc:
            out.append((name, None, str(exc)))
    return out


LOADED = _loaded()


@pytest.mark.parametrize("name,adapter,error", LOADED, ids=[n for n, _, _ in LOADED])
def test_framework_imports(name, adapter, error):
    if adapter is None and name not in REQUIRED:
        pytest.skip(f"{name} is not installed (not required here): {error}")
    assert adapter is not None, f"required framework {name!r} does not import: {error}"


def _golden_label(golden) -> str:
    return golden.scenario + ("" if golden.variant == "default" else f"-{golden.variant}")


def _registered(name, version, case_id, golden, device, dtype):
    """The deviation registered for this run: for this release, or for an older one when the pinned
    baseline recorded this golden failing under it (optconform.carry); None when it must conform."""
    dev = deviations.lookup(name, version, case_id, golden, device, dtype)
    if dev is None:
        carried = deviations.lookup(name, version, case_id, golden, device, dtype, beyond=True)
        if carried is not None and carry.failed_in_baseline(baseline.pinned_row(name, case_id, device, dtype), golden):
            dev = carried
    return dev


def _params():
    params = []
    for name, adapter, _ in LOADED:
        if adapter is None:
            continue
        version = adapter.version()
        for case in adapter.cases():
            for device in (d for d in adapter.devices() if d in case.devices):
                why = adapter.unsupported(case, device)      # n/a here (a package this environment lacks)
                for dtype in case.dtypes:
                    for golden in plan.goldens_for(case, adapter.supports_eta):
                        dev = _registered(name, version, case.id, golden.name, device, dtype)
                        marks = [pytest.mark.xfail(strict=True, reason=f"{dev.kind}: {dev.reason} {dev.issue}")] if dev else []
                        marks += [pytest.mark.skip(reason=f"n/a: {why}")] if why else []
                        params.append(pytest.param(adapter, case, golden, device, dtype, marks=marks,
                                                   id=f"{case.id}-{_golden_label(golden)}-{device}-{dtype}"))
    return params


def _diagnosis(row) -> str:
    """What the case matches instead, across its goldens (the row's semantics axis)."""
    best, claimed = row["matched_rule"], row["claimed_rule"]
    units = row["matched_units"]
    if best != claimed and isinstance(units, (int, float)) and units <= 1.0:
        return f"the native run matches rule {best!r} ({row['decay_kind']}), not {claimed!r}"
    return f"no preset matches; nearest {best!r} at {units} tolerance units"


def _row(adapter, case, device, dtype) -> dict:
    """The (case, device, dtype) row: the lane's run or computed here; an error row fails every golden."""
    row = lane_rows.lane_rows().row(adapter, case, device, dtype)
    assert row["verdict"] not in ("error", "n/a", "no-goldens"), f"{case.id} ({device}, {dtype}): {row['verdict']} {row['error']}"
    return row


@pytest.mark.parametrize("adapter,case,golden,device,dtype", _params())
def test_conforms(adapter, case, golden, device, dtype):
    row = _row(adapter, case, device, dtype)
    if golden.name in row["goldens_failed"]:
        first, worst = row["first_divergence"], row["worst_at"]
        pytest.fail(f"{case.id} on {golden.name} ({device}, {dtype}) does not conform to {case.rule!r}:\n"
                    f"  first divergence: {first if first.startswith(golden.name + ':') else '(on ' + first + ')'}\n"
                    f"  worst of the case: {worst}\n  {_diagnosis(row)}", pytrace=False)


def _case_params():
    params = []
    for name, adapter, _ in LOADED:
        if adapter is None:
            continue
        for case in adapter.cases():
            dtype = "float64" if "float64" in case.dtypes else case.dtypes[0]
            why = adapter.unsupported(case, "cpu")
            params.append(pytest.param(adapter, case, dtype, id=f"{case.id}-cpu-{dtype}",
                                       marks=[pytest.mark.skip(reason=f"n/a: {why}")] if why else []))
    return params


@pytest.mark.parametrize("adapter,case,dtype", _case_params())
def test_matches_claimed_rule(adapter, case, dtype):
    """Across all of its goldens, the case's nearest preset is the one it claims (coupled vs decoupled
    decay, eps placement, ... are named, not just pass/fail). A registered *precision* deviation still
    names its rule (semantics first: the maths is the claimed one, only the rounding is off); a registered
    bug or by-design deviation implements something else, and its row names what it matched instead."""
    result = _row(adapter, case, "cpu", dtype)
    assert result["verdict"] in ("conforms", "xfail"), f"{case.id}: {result['verdict']} {result['error']} {result['first_divergence']}"
    if result["verdict"] == "conforms":
        assert result["matched_rule"] == case.rule, (
            f"{case.id} claims {case.rule!r} but matches {result['matched_rule']!r}: {result['candidate_units']}")
    elif result["deviation"].get("kind") == "precision":
        assert result["semantics"]["rule"] == case.rule and result["semantics"]["status"] != "unknown", (
            f"{case.id}: a precision deviation must still name its rule {case.rule!r}: {result['semantics']}")
    else:
        assert result["semantics"]["status"] and result["matched_rule"], f"{case.id}: the xfail row names no rule"


def _registered_frameworks():
    return [(name, adapter) for name, adapter, _ in LOADED if adapter is not None]


@pytest.mark.parametrize("name,adapter", _registered_frameworks(), ids=[n for n, _ in _registered_frameworks()])
def test_every_registry_cover_matches_a_run(name, adapter):
    """Each place a registry entry of this framework lists (a [[deviation.covers]]) matches at least
    one (case, golden, device, dtype) run of the installed adapter, or names the test that shows it:
    an entry that matches nothing fails here (adapters/<framework>/deviations.toml)."""
    version = adapter.version()
    runs = [(case.id, golden.name, device, dtype) for case in adapter.cases()
            for device in adapter.devices() if device in case.devices for dtype in case.dtypes
            for golden in plan.goldens_for(case, adapter.supports_eta)]
    for dev in deviations.registry():
        if dev.framework != name or not deviations.version_in(version, dev.versions):
            continue
        for cover in dev.covers:
            if cover.shown_by or not any(fnmatch.fnmatchcase(d, cover.device) for d in adapter.devices()):
                continue        # shown by a named test (checked in tests/harness), or a device not here
            assert any(cover.matches(*run) for run in runs), (
                f"registry entry {dev.id!r}: cover case={cover.case!r} dtype={cover.dtype!r} golden={cover.golden} "
                f"matches no run of {name} {version}: remove it or fix the pattern")


@pytest.mark.parametrize("name,adapter", _registered_frameworks(), ids=[n for n, _ in _registered_frameworks()])
def test_lane_results_hold_the_whole_matrix(name, adapter):
    """OPTCONFORM_LANE_RESULTS holds exactly this framework's matrix on each device its run covered:
    no row missing (a -k or --dtype run), none the adapter no longer declares (stale cases)."""
    rows = lane_rows.lane_rows()
    if rows.path is None:
        pytest.skip(f"no {lane_rows.ENV}: the rows are computed here, by the tests above")
    devices = rows.devices(name)
    matrix = {(case.id, device, dtype) for case in adapter.cases() for device in adapter.devices()
              if device in case.devices and device in devices for dtype in case.dtypes}
    held = rows.keys(name)
    assert held == matrix, (f"{lane_rows.ENV}={rows.path}: rows missing {sorted(matrix - held)[:5]}, "
                            f"rows of no case {sorted(held - matrix)[:5]}")
