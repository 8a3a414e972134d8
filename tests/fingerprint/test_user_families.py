"""`check` and `fingerprint` on user-written optimizers of the newer families (issue 24): a torch Muon
and a torch Adafactor written from the papers, in the parameters' dtype, conform to `muon` and
`adafactor`; the same code with another framework's choice (optax's shape factor, an additive eps, the
post-decay parameter scale) is rejected, and the fingerprint names the knob."""
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


class UserAdafactor(torch.optim.Optimizer):
    """Adafactor as torch states it: no first moment, beta2_t = 1 - t^beta2_decay, row/column means of g^2
    (vectors: a full v), V = R*C/max(mean(R), eps) and max(V, eps^2), update clipping, step
    min(lr, 1/sqrt(t))*max(eps2, RMS(w)) of the weight before the decay, decay x lr. `post_decay` is the
    planted slip (Keras' order)."""

    def __init__(self, params, lr, beta2_decay, eps, eps2, clip_threshold, weight_decay, post_decay=False):
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=eps, eps2=eps2, d=clip_threshold,
                                      weight_decay=weight_decay))
        self.post_decay = post_decay

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            eps, lr = group["eps"], group["lr"]
            for p in group["params"]:
                if p.grad is None or p.numel() == 0:
                    continue
                g, state = p.grad, self.state[p]
                state["t"] = t = state.get("t", 0) + 1
                beta = 1.0 - t ** group["beta2_decay"]
                rms = lambda x: float(x.square().mean().sqrt())  # noqa: E731
                scale = max(group["eps2"], rms(p))
                p.mul_(1 - lr * group["weight_decay"])
                if self.post_decay:
                    scale = max(group["eps2"], rms(p))
                if g.dim() >= 2:
                    row = state.setdefault("row", torch.zeros_like(g.mean(dim=-1, keepdim=True)))
                    col = state.setdefault("col", torch.zeros_like(g.mean(dim=-2, keepdim=True)))
                    row.mul_(beta).add_((g * g).mean(dim=-1, keepdim=True), alpha=1 - beta)
                    col.mul_(beta).add_((g * g).mean(dim=-2, keepdim=True), alpha=1 - beta)
                    v = row / row.mean(dim=-2, keepdim=True).clamp(min=eps) * col
                else:
                    v = state.setdefault("v", torch.zeros_like(g))
                    v.mul_(beta).add_(g * g, alpha=1 - beta)
                u = g / v.clamp(min=eps * eps).sqrt()
                u = u / max(1.0, rms(u) / group["d"])
                p.add_(u, alpha=-min(lr, 1.0 / math.sqrt(t)) * scale)


def make_adafactor(params, lr, beta2_decay, eps, eps2, clip_threshold, weight_decay):
    return UserAdafactor(params, lr, beta2_decay, eps, eps2, clip_threshold, weight_decay)


def make_adafactor_post_decay(params, lr, beta2_decay, eps, eps2, clip_threshold, weight_decay):
    return UserAdafactor(params, lr, beta2_decay, eps, eps2, clip_threshold, weight_decay, post_decay=True)


def test_user_adafactor_conforms():
    report = check(make_adafactor, "adafactor", "torch", dtype="float64")
    assert report.conforms, str(report)
    assert report.fingerprint.fits and report.fingerprint.preset == "adafactor"


def test_user_adafactor_post_decay_scale_is_named():
    report = check(make_adafactor_post_decay, "adafactor", "torch", dtype="float64")
    assert not report.conforms
    assert report.fingerprint.fits and report.fingerprint.knobs["param_scale"] == "post_decay", report.fingerprint.describe()
