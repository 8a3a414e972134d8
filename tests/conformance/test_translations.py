"""Every cell of the Rosetta table proven in the target's lane (optconform.translate_proof): the
translated native, run on the source's probe scenarios in float32, conforms to the SOURCE's reference
when the translation is exact; when it is the nearest, it conforms to its own rule and its stated
divergence from the source shows in the native run. Also: the native defaults translate assumes are
the installed signatures' (optconform.translate_natives)."""
from __future__ import annotations

import importlib
import inspect

import pytest

from optconform import registry, rosetta
from optconform.adapters.base import AdapterUnavailable
from optconform.testing import required_frameworks, selected_frameworks
from optconform.translate import resolve
from optconform.translate_measure import choose
from optconform.translate_natives import LANES, NATIVES, REQUIRED
from optconform.translate_parse import parse_call
from optconform.translate_proof import lane_case, prove

pytestmark = pytest.mark.framework()

LANE_NAMES = selected_frameworks() or registry.adapter_names()
CELLS = [(lane, row, target) for lane in LANE_NAMES for row in rosetta.ROWS for target, lanes in LANES.items()
         if lane in lanes]


def _adapter(lane: str):
    """The lane's adapter, loaded: a required framework that does not import fails, others skip."""
    adapter = registry.load_adapter(lane)
    try:
        adapter.load()
    except AdapterUnavailable as exc:
        if lane in required_frameworks():
            raise
        pytest.skip(f"{lane} is not installed (not required here): {exc}")
    return adapter


@pytest.mark.parametrize("lane,row,target", CELLS, ids=[f"{lane}-{row}-{target}" for lane, row, target in CELLS])
def test_translation_runs_as_stated(lane, row, target):
    config = resolve(parse_call(rosetta.ROWS[row]))
    choice = choose(config, target)
    if choice is None:
        assert rosetta.table()[row][target]["status"] == "none"
        return
    adapter = _adapter(lane)
    proof = prove(config, adapter, lane_case(adapter, choice.pair.target))
    assert proof.source_units, f"no probe ran (registered: {proof.registered})"
    if choice.exact:
        bad = {g: u for g, u in proof.source_units.items() if u > 1.0}
        assert not bad, f"exact translation to {choice.pair.target.id} leaves the source's rule: {bad}"
    else:
        bad = {g: u for g, u in proof.target_units.items() if u > 1.0}
        assert not bad, f"{choice.pair.target.id} leaves its own rule {choice.pair.target.rule}: {bad}"
        assert max(proof.source_units.values()) > 1.0, "the stated divergence does not show in the native run"


NATIVE_LANES = [(lane, name) for lane in LANE_NAMES for name, native in NATIVES.items()
                if lane in LANES[native.target] and native.signature and "(" not in name]


def _required(default) -> bool:
    """No default, or torch's `required` sentinel (torch.optim.optimizer.required, BertAdam's lr)."""
    return default is inspect.Parameter.empty or type(default).__name__ == "_RequiredParameter"


@pytest.mark.parametrize("lane,name", NATIVE_LANES, ids=[f"{lane}-{name}" for lane, name in NATIVE_LANES])
def test_native_defaults_match_signature(lane, name):
    _adapter(lane)
    module, _, attr = name.rpartition(".")
    try:
        signature = inspect.signature(getattr(importlib.import_module(module), attr))
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"{name} is not importable in this lane's environment: {exc}")
    for keyword, default in NATIVES[name].defaults.items():
        param = signature.parameters.get(keyword)
        if param is None or param.kind is param.VAR_KEYWORD:
            continue
        if default is REQUIRED:
            assert _required(param.default), f"{name}({keyword}=...) has a default, {param.default!r}"
        else:
            assert param.default == default, f"{name}({keyword}=...) defaults to {param.default!r}, not {default!r}"
