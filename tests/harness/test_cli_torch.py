"""The command line end to end on torch: `run` writes the results JSON and the HTML page, `report`
reads and merges them. Skipped where torch is absent unless OPTCONFORM_REQUIRE names torch (then a
missing torch is a failure)."""
from __future__ import annotations


import pytest

from optconform.testing import require  # noqa: E402

torch = require("torch", "torch")

from optconform import cli, results  # noqa: E402

pytestmark = pytest.mark.framework("torch")


@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    json_path, html_path = d / "torch.json", d / "torch.html"
    rc = cli.main(["run", "--framework", "torch", "-k", "AdamW[fused]", "--dtype", "float32",
                   "--json", str(json_path), "--html", str(html_path), "--quiet"])
    return rc, json_path, html_path


def test_run_writes_json_and_html(run_files):
    rc, json_path, html_path = run_files
    assert rc == 0
    doc = results.read(json_path)
    assert [r["case"] for r in doc["results"]] == ["torch-AdamW[fused]"]
    row = doc["results"][0]
    assert row["verdict"] == "conforms" and row["dtype"] == "float32" and row["device"] == "cpu"
    assert row["matched_rule"] == "adamw" and row["goldens_run"] > 0
    assert doc["environments"][0]["framework"] == "torch"
    assert doc["environments"][0]["version"] == torch.__version__
    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "torch-AdamW[fused]" in page


def test_report_reads_and_merges(run_files, tmp_path, capsys):
    _, json_path, _ = run_files
    assert cli.main(["report", str(json_path)]) == 0
    out = capsys.readouterr().out
    assert f"torch {torch.__version__} · cpu" in out and "AdamW[fused]" in out and "1 rows" in out
    assert max(len(line) for line in out.splitlines()) <= 100 and "\x1b[" not in out
    merged, page = tmp_path / "merged.json", tmp_path / "merged.html"
    other = results.read(json_path)                # another environment's run: same rows, another framework name
    for item in other["results"] + other["environments"]:
        item["framework"] = "torch-other"
    results.write(tmp_path / "other.json", other)
    assert cli.main(["report", str(json_path), str(tmp_path / "other.json"), "--json", str(merged), "--html", str(page)]) == 0
    assert "2 rows" in capsys.readouterr().out
    doc = results.read(merged)
    assert len(doc["results"]) == 2 and len(doc["environments"]) == 2
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_run_selecting_no_case_is_not_a_pass(capsys):
    """A filter that selects nothing runs nothing: that must not exit 0 ("everything conforms")."""
    rc = cli.main(["run", "--framework", "torch", "-k", "NoSuchOptimizer", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "nothing to run" in err and "NoSuchOptimizer" in err


def test_run_on_unknown_device_is_a_usage_error(capsys):
    """`--device tpu` (or cuda where none is visible) would otherwise run zero rows and exit 0."""
    rc = cli.main(["run", "--framework", "torch", "--device", "tpu", "-k", "AdamW[fused]", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "tpu" in err
