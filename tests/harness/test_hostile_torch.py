"""Hostile inputs that need torch (torch lane): user factories that do not import, cannot be called
or raise SystemExit, a GPU asked for where none is visible, a broken plug-in next to torch's run.
Same table form as test_hostile_inputs.py: input -> exit code and message, never a traceback."""
from __future__ import annotations

import numpy as np
import pytest

from optconform.testing import require

torch = require("torch", "torch")

from hostile import Row, _fresh_golden_cache, check_row  # noqa: E402,F401
from optconform import checking, registry, results  # noqa: E402

pytestmark = pytest.mark.framework("torch")

GOOD = '''
import torch

def make(params, lr, beta1, beta2, eps, weight_decay):
    return torch.optim.AdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
'''
SOURCES = {
    "syntax": "def make(params, lr:\n    pass\n",
    "raises": "raise RuntimeError('configuration file not found')\n",
    "notcallable": "make = 3\n",
    "noparams": "def make():\n    pass\n",
    "badname": "def make(params, learning_rate):\n    pass\n",
    "exits": GOOD.replace("    return torch", "    raise SystemExit(3)\n    return torch"),
    "good": GOOD,
}


def _module(kind: str):
    """Write a factory module (a unique name per test) into {tmp} and make {tmp} the current folder."""
    def setup(tmp, monkeypatch):
        (tmp / f"hostile_{kind}_{tmp.name}.py").write_text(SOURCES[kind], encoding="utf-8")
        monkeypatch.chdir(tmp)
        monkeypatch.syspath_prepend(str(tmp))
    return setup


def _factory(kind: str, attr: str = "make") -> tuple[str, ...]:
    return ("check", "--factory", f"hostile_{kind}_{{name}}:{attr}")


def _broken_entry_point(tmp, monkeypatch):
    monkeypatch.setattr(registry, "_entry_points", lambda: {"broken": "optconform_no_such_module:ADAPTER"})


ROWS = [
    Row("factory-syntax-error", _factory("syntax"), 2, "has a syntax error", _module("syntax")),
    Row("factory-import-time-error", _factory("raises"), 2, "RuntimeError: configuration file not found", _module("raises")),
    Row("factory-missing-attribute", _factory("good", "nosuch"), 2, "has no attribute 'nosuch'", _module("good")),
    Row("factory-not-callable", _factory("notcallable"), 2, "'make' is not callable", _module("notcallable")),
    Row("factory-takes-no-params", _factory("noparams"), 2, "takes no positional argument for the parameters",
        _module("noparams")),
    Row("factory-non-canonical-argument", _factory("badname"), 2,
        "required argument 'learning_rate' is not a canonical hyper-parameter", _module("badname")),
    Row("factory-raises-system-exit", _factory("exits"), 1, "error: adamw__", _module("exits")),
    Row("run-broken-plugin-next-to-torch", ("run", "--framework", "torch,broken", "-k", "AdamW[fused]", "--dtype",
                                             "float32", "--quiet", "--json", "{tmp}/out.json"), 1,
        "adapter 'broken' failed", _broken_entry_point, lambda tmp: _saved(tmp)),
]


def _saved(tmp) -> None:
    """torch's rows and the broken plug-in's error row are both in the saved JSON."""
    doc = results.read(tmp / "out.json")
    assert [(r["framework"], r["case"], r["verdict"]) for r in doc["results"]] == [
        ("torch", "torch-AdamW[fused]", "conforms"), ("broken", "broken-*", "error")]
NO_GPU_ROWS = [
    Row("run-cuda-without-gpu", ("run", "--framework", "torch", "--device", "cuda"), 2,
        "--device cuda: torch sees no CUDA device here (devices: cpu)"),
    Row("run-cuda-without-gpu-default-frameworks", ("run", "--device", "cuda"), 2,
        "--device cuda: no installed framework sees a CUDA device here"),
    Row("check-cuda-without-gpu", ("check", "--factory", "m:f", "--device", "cuda"), 2,
        "device 'cuda' is not available to torch here"),
]


def _named(row: Row, tmp) -> Row:
    return Row(row.id, tuple(a.replace("{name}", tmp.name) for a in row.argv), row.code, row.fragment, row.setup,
               row.after)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_hostile_torch_input(row, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPTCONFORM_REQUIRE", raising=False)
    check_row(_named(row, tmp_path), tmp_path, monkeypatch, capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: these inputs are valid here")
@pytest.mark.parametrize("row", NO_GPU_ROWS, ids=[r.id for r in NO_GPU_ROWS])
def test_hostile_device_input(row, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPTCONFORM_REQUIRE", raising=False)
    check_row(row, tmp_path, monkeypatch, capsys)


def test_system_exit_in_the_optimizer_is_a_finding():
    """check() reports an optimizer that raises SystemExit as not conforming, with the error."""
    def make(params, lr, beta1, beta2, eps, weight_decay):
        raise SystemExit(3)
    report = checking.check(make, "adamw", "torch")
    assert not report and "SystemExit: 3" in report.error


def test_numpy_scalar_override_is_accepted():
    """np.float32 / np.float64 values are numbers for optconform.check (issue 15)."""
    def make(params, lr, beta1, beta2, eps, weight_decay):
        return torch.optim.AdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    report = checking.check(make, "adamw", "torch", eps=np.float32(1e-6), weight_decay=np.float64(0.01))
    assert report, str(report)
