"""The command line without a framework: rules, usage errors (exit 2 with a clear message), report."""
from __future__ import annotations

import json

import pytest

from optconform import cli, results
from optconform.reference import rules


def test_rules_lists_every_preset(capsys):
    assert cli.main(["rules"]) == 0
    out = capsys.readouterr().out
    for name, rule in rules().items():
        assert f"{name}  [{rule.family}]" in out
    assert "knobs: " in out and "defaults: " in out


def test_rules_json(capsys):
    assert cli.main(["rules", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"knobs", "families", "rules"}
    assert set(doc["rules"]) == set(rules())
    adamw = doc["rules"]["adamw"]
    assert adamw["family"] == "adam" and adamw["knobs"]["decay"] == "decoupled"
    assert adamw["defaults"]["weight_decay"] == 0.01
    assert "decay" in doc["knobs"] and "adam" in doc["families"]


def _usage(capsys, argv) -> str:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def test_unknown_framework(capsys):
    err = _usage(capsys, ["run", "--framework", "nosuch"])
    assert "optconform run: error: unknown framework 'nosuch'" in err and "torch" in err


def test_unknown_required_framework(capsys, monkeypatch):
    monkeypatch.setenv("OPTCONFORM_REQUIRE", "nosuch")
    err = _usage(capsys, ["run", "--framework", "torch"])
    assert "unknown framework 'nosuch'" in err


def test_unknown_dtype(capsys, monkeypatch):
    monkeypatch.delenv("OPTCONFORM_REQUIRE", raising=False)
    err = _usage(capsys, ["run", "--framework", "torch", "--dtype", "float32,float8"])
    assert "unknown dtype 'float8'" in err and "bfloat16" in err


@pytest.mark.parametrize("workers", ["0", "-1", "two", "1.5"])
def test_bad_workers(capsys, monkeypatch, workers):
    monkeypatch.delenv("OPTCONFORM_REQUIRE", raising=False)
    err = _usage(capsys, ["run", "--framework", "torch", "--workers", workers])
    assert f"--workers {workers!r}" in err and "at least 1" in err


def test_report_missing_file(capsys, tmp_path):
    path = tmp_path / "missing.json"
    err = _usage(capsys, ["report", str(path)])
    assert str(path) in err and "cannot read results JSON" in err


def test_report_non_results_json(capsys, tmp_path):
    path = tmp_path / "package.json"
    path.write_text(json.dumps({"name": "something"}))
    err = _usage(capsys, ["report", str(path)])
    assert str(path) in err and "not an optconform results file" in err


def test_golden_without_flag(capsys):
    err = _usage(capsys, ["golden"])
    assert "golden: give --regenerate, --check and/or --audit" in err


def test_argparse_errors_exit_2(capsys):
    for argv in ([], ["frobnicate"], ["report"], ["run", "--bogus"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
    capsys.readouterr()


def _fake_doc(verdicts, framework="fake"):
    rows = [{"framework": framework, "framework_version": "1", "case": f"{framework}-C{i}[default]", "name": f"C{i}",
             "variant": "default", "device": "cpu", "device_name": "cpu", "dtype": "float64",
             "claimed_rule": "adamw", "matched_rule": "adamw", "matched_units": 0.0, "decay_kind": "decoupled x lr",
             "verdict": v, "worst_units": 0.0, "goldens_run": 3, "trace": {}} for i, v in enumerate(verdicts)]
    return results.document(rows, [{"framework": framework, "version": "1", "devices": {"cpu": "cpu"}}], 0.5)


def test_report_merges_and_exit_codes(capsys, tmp_path):
    ok, ok2, bad = tmp_path / "ok.json", tmp_path / "ok2.json", tmp_path / "bad.json"
    results.write(ok, _fake_doc(["conforms", "xfail"]))
    results.write(ok2, _fake_doc(["conforms", "xfail"], framework="fake2"))
    results.write(bad, _fake_doc(["deviates"], framework="fake3"))
    merged = tmp_path / "merged.json"
    assert cli.main(["report", str(ok), str(ok2), "--json", str(merged)]) == 0
    out = capsys.readouterr().out
    assert "4 rows (12 golden runs): 2 ok, 2 xfail" in out
    doc = results.read(merged)
    assert len(doc["results"]) == 4 and len(doc["merged_from"]) == 2
    assert cli.main(["report", str(ok), str(bad)]) == 1
    assert "1 unexpected" in capsys.readouterr().out
