"""optconform history: release table parsing, the cases x releases table and "what changed" from two
recorded runs (here: the committed torch baseline and an edited copy), usage errors up front."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from optconform import baseline
from optconform.cli import main
from optconform.history import environments, tables


def _record(label, doc):
    return {"release": label, "requirements": [f"torch=={label}"], "started": "2026-11-30T12:00:00+00:00",
            "seconds": 1.0, "exit_code": 0, "error": "", "doc": doc}


def _as_history_run(doc):
    """A baseline as `optconform history` records a release: float64 and float32 rows only."""
    doc["results"] = [r for r in doc["results"] if r["dtype"] in ("float64", "float32")]
    return doc


@pytest.fixture
def history():
    old = _as_history_run(copy.deepcopy(baseline.packaged("torch")))
    for row in old["results"]:
        if row["case"].startswith("torch-Adam(decoupled_weight_decay)"):
            row.update(verdict="n/a", matched_rule="", decay_kind="", fingerprint="",
                       error="torch.optim.Adam has no keyword 'decoupled_weight_decay' in this release")
        if row["case"] == "torch-AdamW[forloop]":
            row.update(matched_rule="adam_l2", decay_kind="coupled (L2)", verdict="deviates")
    old["environments"][0]["version"] = "2.0.1"
    new = _as_history_run(copy.deepcopy(baseline.packaged("torch")))
    return tables.document("torch", [_record("2.0.1", old), _record("2.13.0", new),
                                     {**_record("2.14.1", None), "exit_code": None, "error": "environment failed"}])


def test_every_framework_lists_its_releases_oldest_first():
    for framework, first in (("torch", "2.0.1"), ("jax", "optax 0.1.4"), ("tensorflow", "keras 3.0.5"),
                             ("bert", "transformers 4.1.1")):
        releases = environments.known(framework)
        assert releases[0].label == first and len(releases) >= 6
        assert all(r.requirements for r in releases)
    assert dict(environments.known("tensorflow")[0].env)["KERAS_BACKEND"] == "tensorflow"


def test_bert_releases_install_the_ports_without_deps_next_to_the_pinned_torch():
    """As tox.ini's bert lane: torch pinned in the requirements, the ports --no-deps (the framework's
    shared lists first, then the release's own)."""
    for release in environments.known("bert"):
        version = release.label.split()[1]
        assert "torch==2.13.0" in release.requirements
        assert release.no_deps == ("pytorch-pretrained-bert==0.6.2", f"transformers=={version}")
        assert not any(r.startswith("transformers") for r in release.requirements)


def test_table_cells_and_na(history):
    text = tables.markdown(history)
    assert "| case | 2.0.1 | 2.13.0 | 2.14.1 |" in text
    row = next(line for line in text.splitlines() if line.startswith("| `torch-AdamW[forloop]`"))
    assert row.split(" | ")[1:3] == ["adam_l2 · coupled (L2) · FAIL/FAIL", "adamw · decoupled x lr · ok/ok"]
    na = next(line for line in text.splitlines() if line.startswith("| `torch-Adam(decoupled_weight_decay)[fused]`"))
    assert na.split(" | ")[1] == "n/a"
    assert "2.14.1: no run (environment failed)" in text


def test_what_changed_comes_from_the_diff_of_two_runs(history):
    text = tables.markdown(history)
    section = text.split("## What changed", 1)[1]
    assert "### 2.0.1 → 2.13.0" in section and "**Semantic change.**" in section
    assert "| `torch-AdamW[forloop]` | cpu | float64 | matched rule | adam_l2 | adamw |" in section
    assert "| `torch-Adam(decoupled_weight_decay)[fused]` | cpu | float32 | verdict | n/a | conforms |" in section
    assert "2.13.0 → 2.14.1" not in section           # no run, nothing claimed


def test_from_json_regenerates_the_same_tables(history, tmp_path, capsys):
    json_path, md_path = tables.write(history, tmp_path)
    first = (tmp_path / "torch.md").read_text()
    assert main(["history", "--from-json", json_path, "--out", str(tmp_path / "again")]) == 1   # 2.14.1 did not run
    assert (tmp_path / "again" / "torch.md").read_text() == first
    assert json.loads((tmp_path / "again" / "torch.json").read_text())["releases"][0]["started"] == "2026-11-30T12:00:00+00:00"


@pytest.mark.parametrize("argv, message", [
    (["--framework", "mxnet"], "no releases listed for 'mxnet'"),
    (["--framework", "torch", "--releases", "1.0"], "unknown torch release(s) 1.0"),
], ids=["framework-without-releases", "unknown-release"])
def test_usage_errors_before_any_work(tmp_path, capsys, argv, message):
    assert main(["history", *argv, "--out", str(tmp_path / "h"), "--env-dir", str(tmp_path / "envs")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "envs").exists()


def test_update_replaces_only_the_rerun_releases(history):
    rerun = {**history["releases"][2], "doc": history["releases"][1]["doc"], "error": "", "commit": "new"}
    merged = tables.updated({**history, "optconform_commit": "old"}, [rerun])
    assert [r["release"] for r in merged] == ["2.0.1", "2.13.0", "2.14.1"]
    assert [r["commit"] for r in merged] == ["old", "old", "new"]
    assert merged[2]["doc"] is not None and merged[:2] == [
        {**r, "commit": "old"} for r in history["releases"][:2]]


#: the checkout these tests run from: history installs it into each release environment, and a lane tests
#: the installed wheel, which is not a checkout
CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture
def from_checkout(monkeypatch):
    monkeypatch.setattr(environments, "source_root", lambda: CHECKOUT)


def test_prepare_installs_no_deps_after_the_requirements_and_caches_on_both(tmp_path, monkeypatch, from_checkout):
    calls = []

    def fake_venv(argv, check):
        (tmp_path / "bert-x" / "bin").mkdir(parents=True)
        (tmp_path / "bert-x" / "bin" / "python").touch()
    monkeypatch.setattr(environments.subprocess, "run", fake_venv)
    monkeypatch.setattr(environments, "_pip", lambda python, args, log: calls.append(args))
    release = environments.Release("bert", "x", ("torch==2.13.0",), (), ("transformers==4.1.1",))
    environments.prepare(release, tmp_path, print)
    assert calls[0][0] == "torch==2.13.0" and "--no-deps" not in calls[0]
    assert calls[1] == ["--no-deps", "transformers==4.1.1"]
    assert calls[2][:2] == ["--no-deps", "--force-reinstall"]                     # this checkout
    assert "--no-deps transformers==4.1.1" in (tmp_path / "bert-x" / "requirements.txt").read_text()
    calls.clear()
    environments.prepare(release, tmp_path, print)                                # cached: only the checkout
    assert len(calls) == 1 and calls[0][:2] == ["--no-deps", "--force-reinstall"]


def test_an_interrupted_history_keeps_the_releases_that_finished(tmp_path, monkeypatch, from_checkout):
    """The tables are rewritten after every release: a run killed during 2.2.2 leaves 2.0.1 recorded."""
    doc = _as_history_run(copy.deepcopy(baseline.packaged("torch")))

    def fake_run(release, env_dir, keep, log):
        if release.label != "2.0.1":
            raise KeyboardInterrupt
        return _record(release.label, doc)
    monkeypatch.setattr(environments, "run", fake_run)
    with pytest.raises(KeyboardInterrupt):
        main(["history", "--framework", "torch", "--releases", "2.0.1,2.2.2", "--out", str(tmp_path),
              "--env-dir", str(tmp_path / "envs")])
    recorded = json.loads((tmp_path / "torch.json").read_text())
    assert [r["release"] for r in recorded["releases"]] == ["2.0.1"]
    assert "| case | 2.0.1 |" in (tmp_path / "torch.md").read_text()


def test_columns_follow_the_release_order_of_releases_toml(tmp_path, monkeypatch, from_checkout):
    doc = _as_history_run(copy.deepcopy(baseline.packaged("torch")))
    monkeypatch.setattr(environments, "run", lambda release, *_: _record(release.label, doc))
    assert main(["history", "--framework", "torch", "--releases", "2.4.1,2.0.1", "--out", str(tmp_path),
                 "--env-dir", str(tmp_path / "envs")]) == 0
    assert "| case | 2.0.1 | 2.4.1 |" in (tmp_path / "torch.md").read_text()
