"""The schedule-free findings of the torch side, as named tests: the `schedulefree` package (1.4.1) for
torch, which the torch lane does not install (it runs where `pip install schedulefree` was done; elsewhere
the module is a visible skip and the cases are n/a).

- `AdamWScheduleFree` is `schedulefree_adamw`: decay in the z step, c_t from lr_max^2, warmup t/W;
- the parameters are y in train mode and x after `.eval()` (the reference's state `x`), y again after `.train()`.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("schedulefree")

from optconform.adapters.torch import ADAPTER  # noqa: E402
from optconform import compare, plan  # noqa: E402
from optconform.reference import trajectory  # noqa: E402
from optconform.testing import case_by_id, golden_named, run_row  # noqa: E402

pytestmark = pytest.mark.framework("torch")


@pytest.mark.parametrize("variant", ["forloop", "foreach"])
def test_adamw_schedulefree_is_schedulefree_adamw(variant):
    result = run_row(ADAPTER, f"torch-AdamWScheduleFree[{variant}]", "float64")
    assert result.verdict == "conforms" and result.matched_rule == "schedulefree_adamw"
    assert result.candidate_units["keras_schedule_free_adamw"] > 100
    assert result.candidate_units["optax_schedule_free_adamw"] > 100


def test_eval_mode_shows_x_and_train_mode_y():
    """The user sees y while training and x = (y - (1-beta1)*z)/beta1 after .eval() (adamw_schedulefree.py:77-101)."""
    import schedulefree
    import torch
    golden = golden_named("schedulefree_adamw__sf_warmup")
    hp = golden.run_hp
    tensors = [torch.tensor(np.asarray(golden.params0[n]), dtype=torch.float64, requires_grad=True) for n in golden.tensors]
    opt = schedulefree.AdamWScheduleFree(tensors, lr=hp["lr"][0], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                                         weight_decay=hp["weight_decay"], warmup_steps=hp["warmup_steps"])
    opt.train()
    for grads in golden.grads:
        for p, n in zip(tensors, golden.tensors):
            p.grad = torch.tensor(np.asarray(grads[n]), dtype=torch.float64)
        opt.step()
    ref = trajectory("schedulefree_adamw", dict(golden.params0), list(golden.grads), **hp)
    for p, n in zip(tensors, golden.tensors):
        np.testing.assert_allclose(p.detach().numpy(), ref.params[n][-1], rtol=1e-13, atol=1e-15)
    opt.eval()
    for p, n in zip(tensors, golden.tensors):
        np.testing.assert_allclose(p.detach().numpy(), ref.state["x"][n][-1], rtol=1e-13, atol=1e-15)
        assert np.max(np.abs(ref.state["x"][n][-1] - ref.params[n][-1])) > 1e-3, "x and y must differ here"
    opt.train()
    for p, n in zip(tensors, golden.tensors):
        np.testing.assert_allclose(p.detach().numpy(), ref.params[n][-1], rtol=1e-12, atol=1e-14)


def test_the_case_runs_every_golden_of_its_rule():
    case = case_by_id(ADAPTER, "torch-AdamWScheduleFree[forloop]")
    assert ADAPTER.unsupported(case, "cpu") == ""
    assert "schedulefree_adamw__sf_warmup" in [g.name for g in plan.goldens_for(case)]
    assert compare.expected("schedulefree_adamw", golden_named("schedulefree_adamw__sf_warmup")) is not None
