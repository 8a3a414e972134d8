"""`check` and `fingerprint` on user-written optimizers of the newer families (issue 24): a torch Muon
written from the paper, in the parameters' dtype, conforms to `muon`; the same code with optax's shape
factor or an additive eps is rejected, and the fingerprint names the knob."""
from __future__ import annotations

import math

import pytest

from optconform.testing import require

torch = require("torch", "torch")

from optconform.checking import check  # noqa: E402

pytestmark = pytest.mark.framework("torch")


class UserMuon(torch.optim.Optimizer):
    """Muon as a user writes it from Jordan et al.: EMA buffer, Nesterov lerp, X/max(||X||, eps), the
    quintic iteration in the parameters' dtype, sqrt(max(1, rows/cols)), decay x lr before the step.
    Tensors that are not 2-D are left to another optimizer (untouched here, the rule's non_matrix=none).
    `shape` and `eps_add` are the two slips the tests plant."""

    def __init__(self, params, lr, weight_decay, momentum, nesterov, eps, ns_a, ns_b, ns_c, ns_steps,
                 shape="rows_cols", eps_add=False):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                                      eps=eps, coeffs=(ns_a, ns_b, ns_c), steps=int(ns_steps)))
        self.shape, self.eps_add = shape, eps_add

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            a, b, c = group["coeffs"]
            mu, lr = group["momentum"], group["lr"]
            for p in group["params"]:
                if p.grad is None or p.ndim != 2:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(mu).add_(p.grad, alpha=1 - mu)
                x = (1 - mu) * p.grad + mu * buf if group["nesterov"] else buf.clone()
                tall = x.shape[0] > x.shape[1]
                x = x.T if tall else x
                norm = x.norm()
                x = x / (norm + group["eps"] if self.eps_add else norm.clamp(min=group["eps"]))
                for _ in range(group["steps"]):
                    gram = x @ x.T
                    x = a * x + (b * gram + c * gram @ gram) @ x
                x = x.T if tall else x
                rows, cols = p.shape
                ratio = rows / cols if self.shape == "rows_cols" else cols / rows
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(x, alpha=-lr * math.sqrt(max(1.0, ratio)))


def make_muon(params, lr, weight_decay, momentum, nesterov, eps, ns_a, ns_b, ns_c, ns_steps):
    return UserMuon(params, lr, weight_decay, momentum, nesterov, eps, ns_a, ns_b, ns_c, ns_steps)


def make_muon_optax_shape(params, lr, weight_decay, momentum, nesterov, eps, ns_a, ns_b, ns_c, ns_steps):
    return UserMuon(params, lr, weight_decay, momentum, nesterov, eps, ns_a, ns_b, ns_c, ns_steps, shape="cols_rows")


def make_muon_eps_add(params, lr, weight_decay, momentum, nesterov, eps, ns_a, ns_b, ns_c, ns_steps):
    return UserMuon(params, lr, weight_decay, momentum, nesterov, eps, ns_a, ns_b, ns_c, ns_steps, eps_add=True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_user_muon_conforms(dtype):
    report = check(make_muon, "muon", "torch", dtype=dtype)
    assert report.conforms, str(report)
    assert "muon__muon_mixed" in report.scenarios and not report.unseen
    assert report.fingerprint.fits and report.fingerprint.preset == "muon"


@pytest.mark.parametrize("factory, knob, value", [
    (make_muon_optax_shape, "shape_scaling", "cols_rows"),
    (make_muon_eps_add, "eps_placement", "norm_add"),
])
def test_user_muon_slips_are_named(factory, knob, value):
    report = check(factory, "muon", "torch", dtype="float64")
    assert not report.conforms
    assert report.fingerprint.fits and report.fingerprint.knobs[knob] == value, report.fingerprint.describe()
    assert any(line.startswith(f"{knob}:") for line in report.differences), report.differences
