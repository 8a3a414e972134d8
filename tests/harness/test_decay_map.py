"""The weight-decay map (optconform/decay_map.py): built from results rows, and README.md's table is
the one the committed baselines give (regenerate with tools/update-decay-map)."""
from __future__ import annotations

from pathlib import Path

import pytest

from optconform import cli, decay_map, results

ROOT = Path(__file__).resolve().parents[2]
BASELINES = sorted((ROOT / "baselines").glob("*.json"))


@pytest.fixture(scope="module")
def found():
    return decay_map.build([row for p in BASELINES for row in results.read(p)["results"]])


def test_readme_table_is_current(capsys):
    """CI's check that nobody hand-edited the README's map and that it follows the baselines."""
    rc = cli.main(["decay-map", *map(str, BASELINES), "--readme", str(ROOT / "README.md"), "--check"])
    assert rc == 0, capsys.readouterr().out


def _row(found, native, config):
    (row,) = [r for r in found.rows if r.native == native and r.config == config]
    return row


def test_map_names_each_decay_from_the_runs(found):
    """Known cross-framework findings (README 'What the matrix says'), read off the generated map."""
    adam = _row(found, "torch.optim.Adam", "Adam(weight_decay)")
    assert (adam.decay_kind, adam.preset, adam.scaling) == ("coupled (L2)", "adam_l2", "—")
    adamw = _row(found, "torch.optim.AdamW", "AdamW")
    assert (adamw.decay_kind, adamw.scaling, adamw.order, adamw.bias_correction) == ("decoupled x lr", "lr", "before", "on")
    mx = _row(found, "mxnet.nd.contrib.adamw_update", "adamw_update")
    assert (mx.decay_kind, mx.scaling, mx.bias_correction) == ("decoupled x eta", "schedule", "off")
    keras = _row(found, "keras.optimizers.Adam", "Adam(weight_decay)")
    assert keras.lanes == "keras-jax, tensorflow" and keras.eps_placement == "eps_hat"    # lanes that agree: one row
    assert _row(found, "optax.adafactor", "adafactor").scaling == "unscaled"
    assert not [r for r in found.rows if r.native == "torch.optim.Adam" and r.config == "Adam"]   # no decay: counted
    assert found.without_decay > 0


def test_unresolved_configuration_is_said_so():
    row = {"framework": "x", "case": "x-A[v]", "name": "A", "native": "x.A", "verdict": "conforms",
           "matched_rule": "adamw", "decay_kind": "unknown", "semantics": {"status": "ambiguous"}}
    (only,) = decay_map.build([row]).rows
    assert only.preset == "unresolved (nearest adamw)" and only.scaling == "?"


def test_embed_needs_its_markers():
    with pytest.raises(ValueError, match="decay-map:begin"):
        decay_map.embed("# no markers\n", "| table |\n")
    begin, end = decay_map.MARKERS
    assert decay_map.embed(f"a\n{begin}\nold\n{end}\nb\n", "new\n") == f"a\n{begin}\nnew\n{end}\nb\n"


def test_check_reports_a_stale_readme(tmp_path, capsys):
    begin, end = decay_map.MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{begin}\n| hand-written |\n{end}\n", encoding="utf-8")
    assert cli.main(["decay-map", str(BASELINES[0]), "--readme", str(readme), "--check"]) == 1
    assert "stale" in capsys.readouterr().out
    assert cli.main(["decay-map", str(BASELINES[0]), "--readme", str(readme)]) == 0
    assert cli.main(["decay-map", str(BASELINES[0]), "--readme", str(readme), "--check"]) == 0


def test_usage_errors(tmp_path, capsys):
    assert cli.main(["decay-map", str(BASELINES[0]), "--check"]) == 2
    assert "--check needs --readme" in capsys.readouterr().err
    (tmp_path / "plain.md").write_text("no markers\n")
    assert cli.main(["decay-map", str(BASELINES[0]), "--readme", str(tmp_path / "plain.md")]) == 2
    assert "decay-map:begin" in capsys.readouterr().err
