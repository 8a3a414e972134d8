"""Known deviations on releases newer than their registered range: carried forward only when they
reproduce as the pinned baseline recorded them (same failing goldens, fingerprint, order of
magnitude); gone or changed ones fail and say what changed. Pinned releases stay strict."""
from __future__ import annotations

import pytest

from optconform import baseline, carry, deviations, plan, runner
from optconform.deviations import Cover, Deviation, version_beyond, version_in

SMALL = ("adamw__zero_grad", "adamw__large_decay", "adamw__random_wide")


@pytest.mark.parametrize("version, spec, inside, beyond", [
    ("2.13.0", ">=2.13,<2.14", True, False),
    ("2.14.1", ">=2.13,<2.14", False, True),
    ("2.12.9", ">=2.13,<2.14", False, False),
    ("2.14.0", "<=2.13", False, True),
    ("2.13.0+cu128", "<=2.13", True, False),
    ("2.13.1", "==2.13", False, True),
    ("9.0", ">=2.13", True, False),
    ("9.0", "*", True, False),
])
def test_version_beyond(version, spec, inside, beyond):
    assert version_in(version, spec) is inside
    assert version_beyond(version, spec) is beyond


def _dev():
    return Deviation(id="fake-couples", framework="fake", versions=">=1.2,<1.3", kind="bug",
                     reason="couples its decay", issue="https://example.org/fake/issues/1",
                     covers=(Cover(case="fake-AdamW*"),))


def _run(fake, monkeypatch, version, base_row=None, implements="adam_l2"):
    monkeypatch.setattr(deviations, "registry", lambda: (_dev(),))
    monkeypatch.setattr(baseline, "pinned_row", lambda lane, case, device, dtype: base_row)
    case = fake.case("AdamW(x)", "adamw", fake.ADAMW_HP)
    adapter = fake.Adapter([case], implements={"AdamW(x)": implements} if implements else {})
    goldens = [g for g in plan.all_goldens() if g.name in SMALL]
    return runner.run_case(adapter, case, "cpu", "float64", version, goldens)


@pytest.fixture
def pinned(fake, monkeypatch):
    """The row as the pinned release 1.2.3 records it (registered deviation: xfail)."""
    row = _run(fake, monkeypatch, "1.2.3")
    assert row.verdict == "xfail" and "carried" not in row.deviation
    return row.to_json()


def test_reproducing_deviation_is_still_present(fake, monkeypatch, pinned):
    row = _run(fake, monkeypatch, "1.4.0", pinned)
    assert row.verdict == "xfail" and row.ok
    assert row.deviation["carried"] == "still present in fake 1.4.0 (registered for >=1.2,<1.3)"
    assert row.deviation["issue"] == "https://example.org/fake/issues/1"


def test_gone_deviation_is_xpass(fake, monkeypatch, pinned):
    row = _run(fake, monkeypatch, "1.4.0", pinned, implements=None)
    assert row.verdict == "xpass" and not row.ok
    assert row.deviation["carried"].startswith("gone in fake 1.4.0 (registered for >=1.2,<1.3)")


def test_deviation_with_another_fingerprint_is_a_change(fake, monkeypatch, pinned):
    row = _run(fake, monkeypatch, "1.4.0", dict(pinned, fingerprint="wd=none"))
    assert row.verdict == "deviates"
    assert row.deviation["carried"].startswith("changed in fake 1.4.0") and "fingerprint changed" in row.deviation["carried"]


def test_deviation_on_other_goldens_or_magnitude_is_a_change(fake, monkeypatch, pinned):
    fewer = dict(pinned, goldens_failed=pinned["goldens_failed"][:1])
    assert "failing goldens changed" in _run(fake, monkeypatch, "1.4.0", fewer).deviation["carried"]
    smaller = dict(pinned, worst_units=pinned["worst_units"] / 50)
    assert "more than 10x" in _run(fake, monkeypatch, "1.4.0", smaller).deviation["carried"]


def test_a_run_that_raises_on_both_releases_is_still_present():
    """+inf units (the adapter's record of a native run that raised) on the pinned release and the new one:
    the same failure, not a change of magnitude (inf/inf is no ratio)."""
    from types import SimpleNamespace
    base = {"verdict": "xfail", "goldens_failed": ["g"], "fingerprint": "wd=decoupled", "worst_units": float("inf")}
    raised = SimpleNamespace(goldens_failed=["g"], fingerprint="wd=decoupled", worst_units=float("inf"))
    assert carry.difference(raised, base) == ""
    finite = SimpleNamespace(goldens_failed=["g"], fingerprint="wd=decoupled", worst_units=3.0)
    assert "more than 10x" in carry.difference(finite, base)


def test_no_baseline_row_is_a_change_not_a_pass(fake, monkeypatch):
    row = _run(fake, monkeypatch, "1.4.0", None)
    assert row.verdict == "deviates" and "no such row" in row.deviation["carried"]


def test_older_release_is_not_covered(fake, monkeypatch, pinned):
    assert _run(fake, monkeypatch, "1.1.0", pinned).verdict == "deviates"


def test_failed_in_baseline_per_golden(pinned):
    failing = pinned["goldens_failed"][0]
    assert carry.failed_in_baseline(pinned, failing)
    assert not carry.failed_in_baseline(pinned, "adamw__nonexistent")
    assert not carry.failed_in_baseline(dict(pinned, verdict="conforms"), failing)
    assert not carry.failed_in_baseline(None, failing)


def test_missing_native_keyword_is_na_not_error(fake):
    """A release whose native lacks a keyword the case passes gives verdict n/a (not failing)."""
    from dataclasses import replace

    from optconform import natives
    case = fake.case("AdamW(x)", "adamw", {"lr": "lr", "weight_decay": "dotted"}, kwargs={"decoupled": True})
    adapter = fake.Adapter([case])
    present = replace(case, native="optconform.natives.keyword_options")  # takes `dotted`, not `decoupled`
    assert natives.unsupported(present.native, ["dotted"]) == ""
    row = runner.run_case(adapter, present, "cpu", "float64", "1.2.3")
    assert row.verdict == "n/a" and row.ok
    assert row.error == "optconform.natives.keyword_options has no keyword 'decoupled' in this release"
    gone = replace(case, native="optconform.natives.NoSuchOptimizer")
    row = runner.run_case(adapter, gone, "cpu", "float64", "1.2.3")
    assert row.verdict == "n/a" and "does not exist in this release" in row.error


def test_native_that_is_no_import_path_is_not_judged():
    from optconform import natives
    assert natives.unsupported("fake.AdamW", ["anything"]) == ""
