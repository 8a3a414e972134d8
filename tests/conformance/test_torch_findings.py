"""The torch findings the suite exists to state, as named tests: torch.optim.Adam(weight_decay) is
coupled L2, AdamW is decoupled x lr, and each is distinguished from the other by the goldens."""
from __future__ import annotations


import pytest

from optconform.testing import require

require('torch', 'torch')

from optconform.adapters.torch import ADAPTER  # noqa: E402

pytestmark = pytest.mark.framework("torch")


@pytest.mark.parametrize("variant", ["forloop", "foreach", "fused"])
def test_adam_weight_decay_is_coupled_l2(variant, run_of):
    result = run_of(ADAPTER, f"torch-Adam(weight_decay)[{variant}]")
    assert result.verdict == "conforms"
    assert result.matched_rule == "adam_l2" and result.decay_kind == "coupled (L2)"
    assert result.candidate_units["adamw"] > 100, "the goldens must tell coupled from decoupled by a wide margin"


@pytest.mark.parametrize("variant", ["forloop", "foreach", "fused"])
def test_adamw_is_decoupled_times_lr(variant, run_of):
    result = run_of(ADAPTER, f"torch-AdamW[{variant}]")
    assert result.verdict == "conforms"
    assert result.matched_rule == "adamw" and result.decay_kind == "decoupled x lr"
    assert result.candidate_units["adam_l2"] > 100
    assert result.candidate_units["adamw_paper"] > 100, "x lr must be told from x eta (Algorithm 2)"


def test_adam_decoupled_flag_is_adamw(run_of):
    assert run_of(ADAPTER, "torch-Adam(decoupled_weight_decay)[forloop]").matched_rule == "adamw"


def test_radam_puts_eps_on_the_raw_root(run_of):
    result = run_of(ADAPTER, "torch-RAdam[forloop]")
    assert result.matched_rule == "radam"
    assert result.candidate_units["radam_eps_outside"] > 1
