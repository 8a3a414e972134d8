"""optconform diff and committed baselines: semantic changes named and exit 1, deviations tracked per
upstream link, news and drift informational, usage errors exit 2."""
from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import pytest

from optconform import baseline, diff, results
from optconform.cli import main

BASELINES = Path(str(resources.files("optconform.baselines")))
PINNED = sorted(p.stem for p in BASELINES.glob("*.json"))


@pytest.fixture
def torch_base():
    return baseline.packaged("torch")


def _write(tmp_path, name, doc) -> str:
    path = tmp_path / name
    results.write(path, doc)
    return str(path)


def _rows(doc, case):
    return [r for r in doc["results"] if r["case"] == case]


def test_every_lane_has_a_baseline():
    assert set(PINNED) >= {"torch", "jax", "tensorflow", "keras-jax", "mxnet", "bert", "bert-tf"}


@pytest.mark.parametrize("lane", PINNED)
def test_baseline_is_small_valid_and_traceless(lane):
    path = BASELINES / f"{lane}.json"
    assert path.stat().st_size < 200_000, f"{path}: {path.stat().st_size} bytes"
    doc = results.read(path)
    assert doc["results"], lane
    assert {r["framework"] for r in doc["results"]} == {lane}
    assert not any("trace" in r or "seconds" in r for r in doc["results"])
    assert all(env.get("native_options") for env in doc["environments"]), "native options recorded"


def test_identical_runs_have_no_change(torch_base, capsys):
    found = diff.compare(torch_base, copy.deepcopy(torch_base))
    assert not found.changed and not found.news and not found.drift
    assert found.compared == len(torch_base["results"])
    assert found.deviations and all(d.status == "still present" for d in found.deviations)
    text = diff.markdown(found)
    assert "**No semantic change.**" in text and "pytorch#110940" in text and "still present" in text


def test_adamw_edited_to_match_adam_l2_is_named_and_exits_1(torch_base, tmp_path, capsys):
    """The issue's check: torch AdamW hand-edited to match adam_l2 (coupled) is a semantic change."""
    new = copy.deepcopy(torch_base)
    for row in _rows(new, "torch-AdamW[fused]"):
        row.update(matched_rule="adam_l2", decay_kind="coupled (L2)", fingerprint="wd=coupled eps=outside bc=on")
    code = main(["diff", _write(tmp_path, "base.json", torch_base), _write(tmp_path, "new.json", new),
                 "--markdown", str(tmp_path / "d.md"), "--json", str(tmp_path / "d.json")])
    out = capsys.readouterr().out
    assert code == 1
    assert "**Semantic change.**" in out
    assert "| `torch-AdamW[fused]` | cpu | float32 | matched rule | adamw | adam_l2 |" in out
    assert "| decay kind | decoupled x lr | coupled (L2) |" in out
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["semantic_change"] is True
    assert {c["case"] for c in doc["semantic"]} == {"torch-AdamW[fused]"}
    assert (tmp_path / "d.md").read_text() == out
    args = ["diff", str(tmp_path / "base.json"), str(tmp_path / "new.json")]
    assert main(args + ["--report-only"]) == 0               # tools/update-baselines: report, do not fail


def test_fixed_and_changed_deviations(torch_base):
    new = copy.deepcopy(torch_base)
    nadam = [r for r in new["results"] if r["verdict"] == "xfail" and r["case"].startswith("torch-NAdam")]
    assert len(nadam) == 4
    nadam[0].update(verdict="conforms", deviation={})
    nadam[1].update(verdict="deviates", deviation={})
    found = diff.compare(torch_base, new)
    assert found.changed
    (status,) = [d for d in found.deviations if d.issue.endswith("110940")]
    assert status.status == "mixed"
    assert {k: len(v) for k, v in status.rows.items()} == {"fixed": 1, "changed": 1, "still present": 2}
    whats = sorted(c.what for c in found.semantic)
    assert whats == ["registered deviation changed", "registered deviation fixed"]


def test_new_failure_is_semantic_and_other_verdict_changes_are_news(torch_base):
    new = copy.deepcopy(torch_base)
    sgd = _rows(new, "torch-SGD[forloop]")
    sgd[0]["verdict"] = "deviates"
    base = copy.deepcopy(torch_base)
    _rows(base, "torch-SGD[foreach]")[0]["verdict"] = "deviates"
    found = diff.compare(base, new)
    assert [(c.case, c.what, c.after) for c in found.semantic] == [("torch-SGD[forloop]", "verdict", "deviates")]
    assert [(c.case, c.what, c.after) for c in found.news] == [("torch-SGD[foreach]", "verdict", "conforms")]


def test_cases_and_native_options_appearing_and_disappearing(torch_base):
    new = copy.deepcopy(torch_base)
    gone = new["results"].pop(0)
    extra = dict(gone, case="torch-SGD[compiled]")
    new["results"].append(extra)
    options = new["environments"][0]["native_options"]
    options["torch.optim.AdamW"] = [o for o in options["torch.optim.AdamW"] if o != "amsgrad"] + ["cautious"]
    found = diff.compare(torch_base, new)
    semantic = {(c.case, c.what) for c in found.semantic}
    assert (gone["case"], "case disappeared") in semantic
    assert ("torch.optim.AdamW", "native option removed") in semantic
    news = {(c.case, c.what, c.after) for c in found.news}
    assert ("torch-SGD[compiled]", "case appeared", gone["verdict"]) in news
    assert ("torch.optim.AdamW", "native option added", "cautious") in news


def test_drift_is_informational_and_thresholded(torch_base):
    new = copy.deepcopy(torch_base)
    rows = [r for r in new["results"] if r["verdict"] == "conforms"]
    rows[0]["worst_units"] = rows[0]["worst_units"] * 3            # reported
    rows[1]["worst_units"] = rows[1]["worst_units"] * 1.5          # below the factor
    rows[2]["worst_units"] = "inf"                                  # not a number of units: no drift
    found = diff.compare(torch_base, new)
    assert not found.changed
    assert [(c.case, c.device, c.dtype) for c in found.drift] == [(rows[0]["case"], rows[0]["device"], rows[0]["dtype"])]


@pytest.mark.parametrize("make, message", [
    (lambda tmp: (str(tmp / "missing.json"), str(tmp / "missing.json")), "cannot read results JSON"),
    (lambda tmp: (_text(tmp, "x.json", "{}"), _text(tmp, "x.json", "{}")), "not an optconform results file"),
    (lambda tmp: (str(BASELINES / "torch.json"), str(BASELINES / "mxnet.json")), "share no (framework, case"),
], ids=["missing-file", "not-results", "different-lanes"])
def test_usage_errors_exit_2(tmp_path, capsys, make, message):
    assert main(["diff", *make(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _text(tmp, name, text) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def test_baseline_command_strips_and_rounds(torch_base, tmp_path, capsys):
    full = copy.deepcopy(torch_base)
    for row in full["results"]:
        row.update(trace={"golden": "x", "native": [1.0] * 50}, seconds=0.123456, worst_units=0.123456789)
    src = _write(tmp_path, "run.json", full)
    assert main(["baseline", src, str(tmp_path / "b.json")]) == 0
    back = results.read(tmp_path / "b.json")
    assert all("trace" not in r and "seconds" not in r for r in back["results"])
    assert {r["worst_units"] for r in back["results"]} == {0.1235}
    assert [r["verdict"] for r in back["results"]] == [r["verdict"] for r in torch_base["results"]]
    lines = (tmp_path / "b.json").read_text().splitlines()
    assert sum(line.startswith('{"framework"') for line in lines) == len(back["results"])  # one row per line
