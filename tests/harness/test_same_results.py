"""tools/same-results: the check that a restructuring changed no finding (issue: one package per
framework, behaviour unchanged) must pass on identical runs and name every changed field."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

from optconform import baseline

TOOL = Path(__file__).resolve().parents[2] / "tools" / "same-results"


def _same(tmp_path, before, after):
    a, b = tmp_path / "before.json", tmp_path / "after.json"
    a.write_text(json.dumps(before), encoding="utf-8")
    b.write_text(json.dumps(after), encoding="utf-8")
    done = subprocess.run([sys.executable, str(TOOL), str(a), str(b)], capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def test_identical_runs_pass_and_timings_do_not_count(tmp_path):
    doc = baseline.packaged("mxnet")
    later = copy.deepcopy(doc)
    for row in later["results"]:
        row["seconds"] = 123.0
    rc, out = _same(tmp_path, doc, later)
    assert rc == 0 and "0 difference(s)" in out


def test_a_changed_verdict_rule_or_unit_is_named(tmp_path):
    doc = baseline.packaged("mxnet")
    later = copy.deepcopy(doc)
    later["results"][0]["verdict"] = "deviates"
    later["results"][1]["matched_rule"] = "adam_l2"
    later["results"][2]["worst_units"] = later["results"][2]["worst_units"] * (1 + 1e-9)
    del later["results"][3]
    rc, out = _same(tmp_path, doc, later)
    assert rc == 1
    assert ".verdict: 'conforms' -> 'deviates'" in out and ".matched_rule:" in out and ".worst_units:" in out
    assert "only before" in out and "4 difference(s)" in out


def test_unreadable_input_is_exit_2(tmp_path):
    (tmp_path / "x.json").write_text("{", encoding="utf-8")
    done = subprocess.run([sys.executable, str(TOOL), str(tmp_path / "x.json"), str(tmp_path / "x.json")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "cannot read" in done.stderr
