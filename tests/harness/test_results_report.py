"""results JSON (document / write / read / merge), the terminal report, and the HTML page."""
from __future__ import annotations

import base64
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from optconform import html, matrix, report, results

BASELINES = Path(__file__).resolve().parents[2] / "baselines"


@pytest.fixture(scope="module")
def rows(fake_run):
    return [r.to_json() for r in fake_run.rows]


@pytest.fixture
def doc(rows):
    env = [{"framework": "fake", "version": "1.2.3", "devices": {"cpu": "cpu"}, "gpu_driver": ""}]
    return results.document(rows, env, 1.23456)


def test_document_fields(doc, rows):
    assert doc["schema"] == results.SCHEMA == "optconform-results"
    assert doc["schema_version"] == results.SCHEMA_VERSION == 1
    for key in ("optconform_version", "created", "python", "os", "numpy", "environments", "results"):
        assert key in doc
    assert doc["seconds"] == 1.235
    assert doc["summary"] == {"conforms": 2, "deviates": 2, "error": 2, "no-goldens": 2}
    assert len(doc["results"]) == len(rows) == 8


def test_write_read_round_trip(tmp_path, doc):
    path = tmp_path / "r.json"
    results.write(path, doc)
    back = results.read(path)
    assert back == json.loads(json.dumps(doc))
    assert back["results"][0]["case"] == doc["results"][0]["case"]


def test_read_missing_file_names_it(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": cannot read results JSON"):
        results.read(path)


def test_read_not_json_names_file(tmp_path):
    path = tmp_path / "garbage.json"
    path.write_text("this is { not json")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": cannot read results JSON"):
        results.read(path)


@pytest.mark.parametrize("content", [{"schema": "something-else", "results": []}, [1, 2, 3], {"results": []}])
def test_read_wrong_schema_names_file(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": not an optconform results file"):
        results.read(path)


def test_read_wrong_version_names_file(tmp_path, doc):
    path = tmp_path / "future.json"
    results.write(path, {**doc, "schema_version": 99})
    with pytest.raises(ValueError, match=re.escape(str(path)) + r": schema_version 99; this optconform reads 1"):
        results.read(path)


def test_read_results_not_a_list(tmp_path, doc):
    path = tmp_path / "bad.json"
    results.write(path, {**doc, "results": {"a": 1}})
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": 'results' is not a list"):
        results.read(path)


def test_merge(doc, rows):
    other_rows = [{**r, "framework": "other", "case": r["case"].replace("fake-", "other-")} for r in rows[:2]]
    other = results.document(other_rows, [{"framework": "other", "version": "9", "devices": {}}], 2.0)
    merged = results.merge([doc, other])
    assert merged["schema"] == results.SCHEMA
    assert len(merged["results"]) == len(rows) + 2
    assert [e["framework"] for e in merged["environments"]] == ["fake", "other"]
    assert merged["seconds"] == pytest.approx(1.235 + 2.0)
    assert merged["summary"] == {"conforms": 4, "deviates": 2, "error": 2, "no-goldens": 2}
    assert len(merged["merged_from"]) == 2
    assert merged["merged_from"][0]["python"] == doc["python"]


def test_matrix(rows):
    text = report.matrix(rows)
    lines = text.splitlines()
    assert lines[0] == "fake 1.2.3 · cpu"                       # one table per framework and device
    header = lines[1]
    for col in ("case", "rule", "decay", "float64", "float32"):
        assert col in header
    assert header.index("float64") < header.index("float32")
    by_case = {line.split()[0]: line for line in lines[3:]}
    assert set(by_case) == {"AdamW[default]", "AdamW(l2bug)[default]", "Adam(broken)[default]", "Adam(nohp)[default]"}
    assert by_case["AdamW[default]"].count(" ok") == 2
    assert "decoupled x lr" in by_case["AdamW[default]"]
    l2bug = text[text.index("AdamW(l2bug)[default]"):text.index("Adam(broken)")]
    assert "adam_l2" in l2bug and "(claims" in l2bug and "adamw)" in l2bug     # named, and not the claimed rule
    assert "coupled (L2)" in l2bug and l2bug.count(" FAIL") == 2
    assert by_case["Adam(broken)[default]"].count("ERROR") == 2
    assert by_case["Adam(nohp)[default]"].count("NO-GOLDENS") == 2


def test_matrix_fits_100_columns_without_padding_or_colour():
    """Every lane's committed run: at most 100 columns, no trailing spaces, no ANSI codes when not a TTY."""
    for path in sorted(BASELINES.glob("*.json")):
        text = report.matrix(results.read(path)["results"])
        assert max(len(line) for line in text.splitlines()) <= 100, path.name
        assert not any(line.endswith(" ") for line in text.splitlines()) and "\x1b[" not in text, path.name
    wide = report.matrix(results.read(BASELINES / "torch.json")["results"], wide=True)
    assert "fingerprint" in wide and "separation" in wide and max(map(len, wide.splitlines())) > 100


def test_matrix_collapses_variants_that_agree(rows):
    """Three variants with the same verdicts, rule and decay are one row, showing the worst cell; a
    variant that disagrees keeps its own row."""
    base = [r for r in rows if r["case"] == "fake-AdamW[default]"]
    variants = [{**r, "case": f"fake-AdamW[{v}]", "variant": v, "worst_units": units}
                for v, units in (("forloop", 0.1), ("foreach", 0.5), ("fused", 0.2)) for r in base]
    odd = [{**r, "case": "fake-AdamW[odd]", "variant": "odd", "verdict": "deviates"} for r in base]
    found = matrix.rows(variants + odd)
    assert [r.case for r in found] == ["fake-AdamW[forloop, foreach, fused]", "fake-AdamW[odd]"]
    assert {c.units for c in found[0].cells.values()} == {0.5}
    assert len(matrix.rows(variants, collapse=False)) == 3


def test_run_output_is_plain_when_piped_and_coloured_on_a_terminal(tmp_path, doc):
    """`report` through a pipe: no ANSI codes; on a pseudo-terminal: colours, unless NO_COLOR."""
    path = tmp_path / "r.json"
    results.write(path, doc)
    command = [sys.executable, "-I", "-m", "optconform.cli", "report", str(path)]   # -I: the installed package
    piped = subprocess.run(command, capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert piped.returncode == 1 and "AdamW(l2bug)" in piped.stdout and "\x1b[" not in piped.stdout
    assert max(len(line) for line in piped.stdout.splitlines()) <= 100
    assert "\x1b[32m" in _on_a_terminal(command, _env())                  # green 'ok'
    assert "\x1b[32m" not in _on_a_terminal(command, _env(NO_COLOR="1"))


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    return {**env, "TERM": "xterm-256color", **extra}


def _on_a_terminal(command, env) -> str:
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, stdout=slave, stderr=slave, env=env, cwd=Path(command[-1]).parent)
    os.close(slave)
    data = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    proc.wait(timeout=60)
    os.close(master)
    return data.decode("utf-8", "replace")


def test_matrix_without_dtypes_and_empty():
    row = {"framework": "fake", "case": "fake-*", "device": "", "dtype": "", "verdict": "unavailable",
           "claimed_rule": "", "matched_rule": "", "framework_version": ""}
    text = report.matrix([row])
    assert "verdict" in text.splitlines()[1] and "UNAVAILABLE" in text
    assert report.matrix([]) == "(no rows)"


def test_details(rows):
    folded = report.details(rows)
    assert max(len(line) for line in folded.splitlines()) <= report.DETAILS_WIDTH
    text = " ".join(folded.split())                               # the words, unfolded
    assert "fake-AdamW[default]" not in text                      # conforming rows are not detailed
    assert "FAIL: fake-AdamW(l2bug)[default] cpu float64" in text
    assert "first divergence: adamw__" in text
    assert "semantics: 'adam_l2' (coupled (L2))" in text and "not the claimed 'adamw'" in text
    assert "precision: out of tolerance" in text
    assert "ERROR: fake-Adam(broken)[default] cpu float32" in text
    assert "RuntimeError: fake kernel exploded" in text
    assert "NO-GOLDENS: fake-Adam(nohp)[default]" in text


def test_details_registered_deviation():
    row = {"case": "fake-X[default]", "device": "cpu", "dtype": "float64", "verdict": "xpass",
           "claimed_rule": "adamw", "matched_rule": "adamw", "matched_units": 0.1,
           "deviation": {"kind": "bug", "reason": "r", "issue": "https://example.org/1"}}
    text = report.details([row])
    assert "XPASS: fake-X[default] cpu float64" in text
    assert "registered bug deviation: https://example.org/1" in text
    assert "it now conforms: remove the entry" in text


def test_summary(rows):
    text = report.summary(rows, 12.34)
    assert text.startswith("8 rows (")
    assert "2 ok" in text and "2 FAIL" in text and "2 ERROR" in text and "2 NO-GOLDENS" in text
    assert "in 12.3 s" in text
    assert text.endswith("-- 6 unexpected")
    ok_only = [r for r in rows if r["verdict"] == "conforms"]
    assert report.summary(ok_only).endswith("2 ok")
    runs = sum(r["goldens_run"] for r in ok_only)
    assert f"({runs} golden runs)" in report.summary(ok_only)


def test_html_is_self_contained_with_png_for_deviating_row(doc):
    page = html.render(doc)
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert page.count("<script") == 1 and "<link" not in page          # the inline sort/filter script only
    assert not re.search(r"src=['\"](?!data:)", page), "every src must be an embedded data: URI"
    images = re.findall(r"<img alt='trajectory plot' src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    # one plot per deviating row (float64, float32); error and no-goldens rows have no trajectory
    assert len(images) == 2
    assert "<table class='grid' id='matrix'>" in page and "<table class='grid' id='decay-map'>" in page
    assert "class='v-deviates'" in page and "class='badge d-decoupled-lr'" in page
    for b64 in images:
        assert base64.b64decode(b64).startswith(b"\x89PNG\r\n\x1a\n")
    assert "Failing and deviating rows (6)" in page
    assert "fake-AdamW(l2bug)[default]" in page and "adam_l2" in page
    assert "RuntimeError: fake kernel exploded" in page
    assert "fake 1.2.3" in page


def test_html_escapes_text(doc):
    row = dict(doc["results"][2])
    row["error"] = "<script>alert(1)</script>"
    page = html.render({**doc, "results": [row]})
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
