"""runner with a fake adapter: conforms, deviates (matched to the rule it really implements), error,
unavailable, no-goldens, and registered deviations (xfail / xpass)."""
from __future__ import annotations

import json
import math

import pytest

from optconform import deviations, plan, runner
from optconform.adapters.base import AdapterUnavailable
from optconform.deviations import Cover, Deviation


def test_run_adapter_rows(fake_run):
    rows = fake_run.rows
    # every case x dtype; cases default to devices (cpu, cuda) but the fake has only cpu
    assert sorted(fake_run.by_key) == sorted((n, d) for n in ("AdamW", "AdamW(l2bug)", "Adam(broken)", "Adam(nohp)")
                                             for d in ("float64", "float32"))
    assert all(r.device == "cpu" and r.framework == "fake" and r.framework_version == "1.2.3" for r in rows)
    assert [p[0] for p in fake_run.progress] == list(range(len(rows) + 1))
    assert fake_run.progress[-1] == (len(rows), len(rows), "done")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conforming_case(fake_run, dtype):
    r = fake_run.by_key[("AdamW", dtype)]
    assert r.verdict == "conforms" and r.ok
    assert r.case == "fake-AdamW[default]" and r.claimed_rule == "adamw"
    assert r.matched_rule == "adamw" and r.matched_units <= 1.0
    assert r.decay_kind == "decoupled x lr"
    assert r.goldens_failed == [] and r.first_divergence == "" and r.error == ""
    # every adamw golden but the one with a global-norm clip (the fake maps no clip_global_norm)
    n_adamw = len([g for g in plan.all_goldens() if g.rule == "adamw" and g.hp.get("clip_global_norm") is None])
    assert r.goldens_run == n_adamw > 5
    assert r.worst_units <= 1.0
    if dtype == "float64":
        assert r.worst_units == 0.0
    assert r.candidate_units["adam_l2"] > 1.0 and r.candidate_units["adamw"] == r.matched_units


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_buggy_case_matches_the_rule_it_implements(fake_run, dtype):
    r = fake_run.by_key[("AdamW(l2bug)", dtype)]
    assert r.verdict == "deviates" and not r.ok
    assert r.claimed_rule == "adamw"
    assert r.matched_rule == "adam_l2" and r.matched_units <= 1.0
    assert r.decay_kind == "coupled (L2)"
    assert r.worst_units > 1.0 and r.goldens_failed
    assert r.first_divergence.startswith(r.goldens_failed[0] + ": step ")
    assert "tolerance units" in r.first_divergence
    assert r.worst_at["golden"] in r.goldens_failed
    assert set(r.worst_at) == {"golden", "step", "tensor", "index", "native", "expected"}
    assert r.trace["golden"] == r.worst_at["golden"] and len(r.trace["native"]) == len(r.trace["expected"])
    assert r.candidate_units["adamw"] == r.worst_units


def test_raising_adapter_gives_error_row_and_others_still_run(fake_run):
    for dtype in ("float64", "float32"):
        r = fake_run.by_key[("Adam(broken)", dtype)]
        assert r.verdict == "error" and not r.ok
        assert r.error == "RuntimeError: fake kernel exploded"
        assert "fake kernel exploded" in r.trace["traceback"]
    # the rows after the broken case ran normally
    assert fake_run.by_key[("Adam(nohp)", "float32")].verdict == "no-goldens"


def test_case_that_expresses_no_golden(fake_run):
    r = fake_run.by_key[("Adam(nohp)", "float64")]
    assert r.verdict == "no-goldens" and not r.ok
    assert r.goldens_run == 0 and "none of its rule's golden" in r.error


def test_unavailable_adapter_gives_single_row(fake):
    adapter = fake.Adapter([fake.case("AdamW", "adamw", fake.ADAMW_HP)],
                           import_error=ImportError("No module named 'fakeflow'"))
    rows = runner.run_adapter(adapter)
    assert len(rows) == 1
    r = rows[0]
    assert r.verdict == "unavailable" and not r.ok
    assert r.case == "fake-*" and r.framework == "fake"
    assert "cannot import the framework" in r.error and "fakeflow" in r.error
    assert adapter.calls == 0
    with pytest.raises(AdapterUnavailable):
        adapter.load()


def test_rows_serialize_to_json(fake_run):
    for r in fake_run.rows:
        data = r.to_json()
        text = json.dumps(data, allow_nan=False)          # strict JSON: no NaN / Infinity tokens
        assert json.loads(text)["verdict"] == r.verdict
    err = fake_run.by_key[("Adam(broken)", "float64")].to_json()
    assert err["worst_units"] is None and err["matched_units"] is None


def test_nan_output_gives_strict_json_row(fake):
    """A native run that produces NaN deviates; its row must still be strict JSON (the results file is
    read by other tools), like the other non-finite fields that `_num` converts."""
    case = fake.case("AdamW(nan)", "adamw", fake.ADAMW_HP)
    adapter = fake.Adapter([case], nan={"AdamW(nan)"})
    goldens = [g for g in plan.all_goldens() if g.name == "adamw__random_wide"]
    r = runner.run_case(adapter, case, "cpu", "float64", "1.2.3", goldens)
    assert r.verdict == "deviates" and math.isinf(r.worst_units)
    bad = _non_finite(r.to_json())
    assert bad == [], f"non-finite floats in the results row (invalid strict JSON): {bad}"
    json.dumps(r.to_json(), allow_nan=False)


def _non_finite(value, path="row"):
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path} = {value}"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{path}[{k!r}]")]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{path}[{i}]")]
    return []


def test_run_case_respects_given_goldens(fake):
    case = fake.case("AdamW", "adamw", fake.ADAMW_HP)
    adapter = fake.Adapter([case])
    goldens = [g for g in plan.all_goldens() if g.rule in ("adamw", "adam")][:40]
    r = runner.run_case(adapter, case, "cpu", "float64", "1.2.3", goldens)
    runnable = [g for g in goldens if g.rule == "adamw" and g.hp.get("clip_global_norm") is None]  # no clip mapped
    assert r.goldens_run == len(runnable) == adapter.calls


def test_select_cases(fake):
    cases = [fake.case(n, "adamw", fake.ADAMW_HP) for n in ("AdamW", "AdamW(amsgrad)", "Adam")]
    assert runner.select_cases(cases, None) == cases
    assert [c.name for c in runner.select_cases(cases, "AdamW")] == ["AdamW", "AdamW(amsgrad)"]
    assert [c.name for c in runner.select_cases(cases, "AdamW[default]")] == ["AdamW"]
    assert [c.name for c in runner.select_cases(cases, "fake-Adam[*")] == ["Adam"]
    assert runner.select_cases(cases, "nothing") == []


def test_dtype_and_device_filters(fake):
    case = fake.case("AdamW", "adamw", fake.ADAMW_HP, dtypes=("float64",), devices=("cuda",))
    adapter = fake.Adapter([case])
    assert runner.run_adapter(adapter) == []                       # only cpu here, the case wants cuda
    case = fake.case("AdamW", "adamw", fake.ADAMW_HP, dtypes=("float64",))
    assert runner.run_adapter(fake.Adapter([case]), dtypes=["float32"]) == []


# --- registered deviations ------------------------------------------------------------------------

SMALL = ("adamw__first_steps", "adamw__large_decay", "adamw__tiny_grad")


def _small_goldens():
    return [g for g in plan.all_goldens() if g.name in SMALL]


def _dev(case="fake-AdamW*", golden=("*",), versions=">=1.2,<1.3", dtype="*", except_golden=()):
    return Deviation(id="fake-l2", framework="fake", versions=versions, kind="bug", reason="couples its decay",
                     issue="https://example.org/fake/issues/1",
                     covers=(Cover(case=case, golden=tuple(golden), except_golden=tuple(except_golden), dtype=dtype),))


def _run(fake, name, implements=None, version="1.2.3"):
    case = fake.case(name, "adamw", fake.ADAMW_HP)
    adapter = fake.Adapter([case], implements=implements or {})
    return runner.run_case(adapter, case, "cpu", "float64", version, _small_goldens())


def test_registered_deviation_makes_buggy_case_xfail(fake, monkeypatch):
    monkeypatch.setattr(deviations, "registry", lambda: (_dev(),))
    r = _run(fake, "AdamW(l2bug)", {"AdamW(l2bug)": "adam_l2"})
    assert r.verdict == "xfail" and r.ok
    assert r.deviation == {"id": "fake-l2", "kind": "bug", "reason": "couples its decay",
                           "issue": "https://example.org/fake/issues/1"}
    assert r.matched_rule == "adam_l2"
    # semantics and precision are separate axes: the rule is named although the row is xfail
    assert r.semantics["status"] in ("identified", "equivalent") and r.semantics["rule"] == "adam_l2"
    assert r.semantics["separation"] == "inf" or r.semantics["separation"] >= 100
    assert r.precision["status"] == "registered bug deviation" and r.precision["deviation"] == "fake-l2"


def test_registered_deviation_on_conforming_case_is_xpass(fake, monkeypatch):
    monkeypatch.setattr(deviations, "registry", lambda: (_dev(),))
    r = _run(fake, "AdamW")
    assert r.verdict == "xpass" and not r.ok
    assert r.deviation["issue"].startswith("https://")


def test_deviation_for_other_version_or_dtype_does_not_apply(fake, monkeypatch):
    monkeypatch.setattr(deviations, "registry", lambda: (_dev(versions=">=2.0"), _dev(dtype="float32"),
                                                         _dev(case="fake-Other*")))
    assert _run(fake, "AdamW(l2bug)", {"AdamW(l2bug)": "adam_l2"}).verdict == "deviates"
    assert _run(fake, "AdamW").verdict == "conforms"


def test_deviation_excluding_every_failing_golden_does_not_apply(fake, monkeypatch):
    r0 = _run(fake, "AdamW(l2bug)", {"AdamW(l2bug)": "adam_l2"})
    monkeypatch.setattr(deviations, "registry", lambda: (_dev(except_golden=r0.goldens_failed),))
    assert _run(fake, "AdamW(l2bug)", {"AdamW(l2bug)": "adam_l2"}).verdict == "deviates"


def test_golden_specific_deviation_does_not_hide_other_failures(fake, monkeypatch):
    """A deviation registered for one golden covers only that golden's run: a failure on a golden it
    does not cover is an unexpected deviation, so the row must not be xfail."""
    r0 = _run(fake, "AdamW(l2bug)", {"AdamW(l2bug)": "adam_l2"})
    assert len(r0.goldens_failed) >= 2, r0.goldens_failed
    covered = r0.goldens_failed[0]
    monkeypatch.setattr(deviations, "registry", lambda: (_dev(golden=[covered]),))
    r = _run(fake, "AdamW(l2bug)", {"AdamW(l2bug)": "adam_l2"})
    assert r.goldens_failed == r0.goldens_failed
    assert r.verdict == "deviates", (
        f"registered deviation for {covered} only, but {r.goldens_failed[1:]} also fail: got {r.verdict!r}")
