"""optconform translate without a framework: the safe parser, source resolution, the wd conversion,
the references behind every Rosetta cell, the command line, and the README's copy of the table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from optconform import cli, rosetta
from optconform.adapters.base import Arg, Case
from optconform.translate import Pair, resolve
from optconform.translate_measure import choose, measure, source_goldens
from optconform.translate_parse import TranslateError, parse_call

README = Path(__file__).resolve().parents[2] / "README.md"


def test_parser_reads_keywords_numbers_tuples_and_negatives():
    call = parse_call("torch.optim.SGD(lr=1e-2, momentum=0.9, nesterov=True, betas=(0.9, 0.99), x=-1, s='a', n=None)")
    assert call.native == "torch.optim.SGD"
    assert call.kwargs == {"lr": 0.01, "momentum": 0.9, "nesterov": True, "betas": (0.9, 0.99), "x": -1, "s": "a",
                           "n": None}


@pytest.mark.parametrize("text,message", [
    ("torch.optim.AdamW(1e-3)", "positional"),
    ("torch.optim.AdamW(**cfg)", "**kwargs"),
    ("torch.optim.AdamW(lr=LR)", "Name expression"),
    ("torch.optim.AdamW(lr=1e-3 * 2)", "BinOp expression"),
    ("torch.optim.AdamW(lr=float('1e-3'))", "Call expression"),
    ("__import__('os').system('true')", "dotted name"),
    ("torch.optim.AdamW", "not a call"),
    ("torch.optim.AdamW(lr=", "cannot parse"),
    ("torch.optim.AdamW(lr=1, lr=2)", "given twice"),
    ("torch.optim.AdamW(lr=-'a')", "UnaryOp expression"),
])
def test_parser_rejects_everything_else(text, message):
    with pytest.raises(TranslateError, match=message.replace("*", r"\*")):
        parse_call(text)


@pytest.mark.parametrize("text,case,rule", [
    ("torch.optim.Adam(lr=1e-3)", "torch-Adam[forloop]", "adam"),
    ("torch.optim.Adam(lr=1e-3, weight_decay=0.1)", "torch-Adam(weight_decay)[forloop]", "adam_l2"),
    ("torch.optim.Adam(decoupled_weight_decay=True, foreach=True)", "torch-Adam(decoupled_weight_decay)[forloop]",
     "adamw"),
    ("keras.optimizers.Adam(weight_decay=0.01)", "tensorflow-Adam(weight_decay)[eager]", "adamw_eps_hat"),
    ("mxnet.optimizer.LAMB(bias_correction=False)", "mxnet-LAMB(bias_correction=False)[optimizer]", "lamb_uncorrected"),
])
def test_source_call_resolves_to_its_case(text, case, rule):
    config = resolve(parse_call(text))
    assert (config.case.id, config.case.rule) == (case, rule)


def test_source_hyper_parameters_take_the_native_defaults():
    config = resolve(parse_call("torch.optim.AdamW(betas=(0.8, 0.99))"))
    assert dict(config.hp) == {"lr": 1e-3, "beta1": 0.8, "beta2": 0.99, "eps": 1e-8, "weight_decay": 1e-2}


@pytest.mark.parametrize("text,message", [
    ("torch.optim.Foo(lr=1)", "unknown optimizer 'torch.optim.Foo'"),
    ("torch.optim.AdamW(lrr=1)", "unknown keyword 'lrr'"),
    ("optax.adamw(weight_decay=0.1)", "keyword 'learning_rate' has no default"),
    ("torch.optim.SGD(lr=0.1, dampening=0.5, nesterov=True)", "no configuration the suite checks"),
])
def test_untranslatable_sources_are_named(text, message):
    with pytest.raises(TranslateError, match=message):
        resolve(parse_call(text))


def _paper_adamw() -> Case:
    """A native with the paper's decay x eta (L&H Algorithm 2) and torch's eps placement."""
    return Case(framework="test", name="paper", native="test.paper", rule="adamw_paper",
                hp_map={"lr": "lr", "eta": "eta", "beta1": "beta1", "beta2": "beta2", "eps": "eps", "weight_decay": "wd"})


def test_decay_x_lr_converts_exactly_to_decay_x_eta():
    """wd' = lr*wd with the lr schedule moved into eta: the references agree on every AdamW probe,
    lr schedules included; the same wd unconverted does not."""
    config = resolve(parse_call("torch.optim.AdamW(lr=1e-3, weight_decay=0.01)"))
    pair = Pair(config.case, _paper_adamw())
    assert pair.moves_schedule and pair.same_maths(decays=True)
    assert pair.target_hp(config.hp, 1e-3)[0]["weight_decay"] == pytest.approx(1e-5)
    goldens = source_goldens(config)
    assert any(len(set(g.lr)) > 1 for g in goldens)
    assert measure(pair, config, goldens).units <= 1.0
    unconverted = Pair(config.case, Case(framework="test", name="paper", native="test.paper",
                                         rule="adamw_paper[decay_scaling=lr]", hp_map=_paper_adamw().hp_map))
    assert not unconverted.moves_schedule


# every row has a cell for every target (rosetta.table); the table itself is computed when a test reads
# it, not while collecting (a lane that deselects these tests never computes it)
CELLS = [(row, target) for row in rosetta.ROWS for target in rosetta.TARGETS]


@pytest.mark.parametrize("row,target", CELLS, ids=[f"{r}-{t}" for r, t in CELLS])
def test_every_cell_is_what_its_references_say(row, target):
    """An exact cell's two references agree within 1 float32 unit on every probe; a nearest cell's
    stated divergence is over 1 unit and names where it first shows."""
    data = rosetta.table()[row][target]
    if data["status"] == "none":
        return
    assert data["probes"] > 0
    if data["status"] == "exact":
        assert data["divergence_units"] <= 1.0
    else:
        assert data["divergence_units"] > 1.0 and data["first_divergence"]


def test_rosetta_covers_the_issue():
    table = rosetta.table()
    assert set(table) == {"AdamW", "Adam + L2", "SGD momentum", "SGD Nesterov", "LAMB", "BERT"}
    assert all(list(cells) == list(rosetta.TARGETS) for cells in table.values()), "CELLS misses a cell"
    for row in ("AdamW", "LAMB", "BERT"):
        assert all(cell["status"] != "none" for cell in table[row].values())
    assert table["BERT"]["bert"]["status"] == table["BERT"]["bert-tf"]["status"] == "exact"
    assert table["AdamW"]["optax"]["status"] == "exact" and table["AdamW"]["keras"]["status"] == "nearest"


def test_readme_copy_of_the_rosetta_table_is_current():
    text = README.read_text("utf-8")
    assert rosetta.readme_with_table(text) == text, "regenerate: optconform translate --rosetta --readme README.md"


def test_cli_translates(capsys):
    assert cli.main(["translate", "--from", "torch.optim.AdamW(lr=1e-3, weight_decay=0.01)", "--to", "optax"]) == 0
    out = capsys.readouterr().out
    assert "optax: optax.adamw(learning_rate=0.001, weight_decay=0.01)" in out and "exact" in out


def test_cli_json(capsys):
    assert cli.main(["translate", "--from", "torch.optim.Adam(lr=1e-3, weight_decay=0.01)", "--to", "mxnet",
                     "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"]["rule"] == "adam_l2"
    assert doc["targets"][0]["status"] == "nearest" and doc["targets"][0]["rule"] == "mxnet_adam"


@pytest.mark.parametrize("argv,message", [
    (["translate"], "give --from"),
    (["translate", "--from", "torch.optim.AdamW(1e-3)"], "positional"),
    (["translate", "--from", "torch.optim.AdamW()", "--to", "jax"], "unknown target 'jax'"),
    (["translate", "--from", "torch.optim.AdamW()", "--to", "optax,optax"], "optax"),
    (["translate", "--rosetta", "--to", "optax"], "--rosetta takes no"),
    (["translate", "--readme", "README.md"], "--readme needs --rosetta"),
])
def test_cli_usage_errors_are_one_line(capsys, argv, message):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err
