"""Mutation testing of the suite itself (issue 10): from-scratch torch optimizers, written the way a user
would write them, some correct and some deliberately wrong.

Each optimizer is exposed as a factory ``make_<name>(params, lr, beta1, beta2, eps, weight_decay)``
(some take ``**hp`` or only a subset of the names, to exercise the signature handling of
`optconform.check`). `MUTANTS` lists every factory with the rule it claims and the diagnosis the
fingerprint must give:

- ``CORRECT``: must conform (float32 and float64);
- a dict of knob values: must not conform, and the fingerprint must fit with these knobs (the
  `summary_knobs()` names: ``weight_decay`` in {none, coupled, decoupled, decoupled_unscaled}, plus the
  spec's knob names) and, where given, ``preset``;
- ``NO_FIT``: must not conform, and no knob vector of the family may fit (a bug outside the spec's axes).

None of these wraps torch.optim.AdamW: every update is written out with tensor operations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

CORRECT = "correct"
NO_FIT = "no fit"


# ---------------------------------------------------------------------------------------------------
# Correct implementations
# ---------------------------------------------------------------------------------------------------

class PlainAdamW(torch.optim.Optimizer):
    """The textbook AdamW (Loshchilov & Hutter with torch's lr-scaled decay), one tensor at a time."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v, g = state["exp_avg"], state["exp_avg_sq"], p.grad
                p.mul_(1 - lr * wd)
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                m_hat = m / (1 - beta1 ** t)
                v_hat = v / (1 - beta2 ** t)
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))


def make_plain_adamw(params, lr, beta1, beta2, eps, weight_decay):
    return PlainAdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


class ReorderedAdamW(torch.optim.Optimizer):
    """Same maths, other operations: decay as p.add_(p, alpha=-lr*wd), moments with lerp_, the
    denominator as sqrt(v/bc2) + eps, the step as an addcdiv_."""

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["t"] = 0
                    state["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["v"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["t"] += 1
                bc1 = 1.0 - group["beta1"] ** state["t"]
                bc2 = 1.0 - group["beta2"] ** state["t"]
                p.add_(p, alpha=-group["lr"] * group["weight_decay"])
                state["m"].lerp_(p.grad, 1 - group["beta1"])
                state["v"].mul_(group["beta2"]).add_(p.grad.square(), alpha=1 - group["beta2"])
                denom = (state["v"] / bc2).sqrt().add_(group["eps"])
                p.addcdiv_(state["m"], denom, value=-group["lr"] / bc1)


def make_reordered_adamw(params, lr, beta1, beta2, eps, weight_decay):
    return ReorderedAdamW(params, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)


class TorchFormAdamW(torch.optim.Optimizer):
    """torch's own algebra: denominator sqrt(v)/sqrt(bc2) + eps, step size lr/bc1; the decay folded
    into the update (w <- w - lr*(d + wd*w), which is the pre-step shrink)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["step"] += 1
                st["m"].mul_(beta1).add_(p.grad * (1 - beta1))
                st["v"].mul_(beta2).add_(p.grad * p.grad * (1 - beta2))
                denom = st["v"].sqrt() / math.sqrt(1 - beta2 ** st["step"]) + group["eps"]
                update = st["m"] / (1 - beta1 ** st["step"]) / denom + group["weight_decay"] * p
                p.sub_(group["lr"] * update)


def make_torch_form_adamw(params, lr, beta1, beta2, eps, weight_decay):
    return TorchFormAdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


class ForeachAdamW(torch.optim.Optimizer):
    """A multi-tensor AdamW with torch._foreach_* ops; the step counter is one Python int per group."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, step=0))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            for p in params:
                if not self.state[p]:
                    self.state[p]["exp_avg"] = torch.zeros_like(p)
                    self.state[p]["exp_avg_sq"] = torch.zeros_like(p)
            ms = [self.state[p]["exp_avg"] for p in params]
            vs = [self.state[p]["exp_avg_sq"] for p in params]
            group["step"] += 1
            t = group["step"]
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            torch._foreach_mul_(params, 1 - lr * wd)
            torch._foreach_lerp_(ms, grads, 1 - beta1)
            torch._foreach_mul_(vs, beta2)
            torch._foreach_addcmul_(vs, grads, grads, 1 - beta2)
            bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
            denom = torch._foreach_sqrt(vs)
            torch._foreach_div_(denom, math.sqrt(bc2))
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(params, ms, denom, -lr / bc1)


def make_foreach_adamw(params, lr, beta1, beta2, eps, weight_decay):
    return ForeachAdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


class Float64StateAdamW(torch.optim.Optimizer):
    """Keeps a float64 master copy and float64 moments whatever the parameter dtype; computes in float64
    and stores the result back (one rounding per step)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p]
                if not s:
                    s["step"] = 0
                    s["master"] = p.detach().to(torch.float64).clone()
                    s["m"] = torch.zeros_like(p, dtype=torch.float64)
                    s["v"] = torch.zeros_like(p, dtype=torch.float64)
                s["step"] += 1
                g = p.grad.to(torch.float64)
                w = s["master"]
                w.mul_(1 - lr * wd)
                s["m"].mul_(b1).add_(g, alpha=1 - b1)
                s["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = s["m"] / (1 - b1 ** s["step"])
                v_hat = s["v"] / (1 - b2 ** s["step"])
                w.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)
                p.copy_(w)


def make_float64_state_adamw(params, lr, beta1, beta2, eps, weight_decay):
    return Float64StateAdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


def make_kwargs_adamw(params, **hp):
    """A factory that takes **hp: it receives every hyper-parameter of the rule (the neutral
    universal ones included) and picks the ones it needs."""
    return PlainAdamW(params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                      weight_decay=hp["weight_decay"])


def make_subset_adamw(params, lr, weight_decay):
    """Only lr and weight_decay: betas and eps stay at the class defaults (= the rule's), so the probes
    that need another eps cannot run and are reported as not run."""
    return ForeachAdamW(params, lr=lr, weight_decay=weight_decay)


class StepTensorAdamW(PlainAdamW):
    """Step counter kept as a float64 tensor (as torch does for capturable optimizers)."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"].item()
                m, v, g = state["exp_avg"], state["exp_avg_sq"], p.grad
                p.mul_(1 - lr * wd)
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                step_size = lr / (1 - beta1 ** t)
                denom = (v.sqrt() / math.sqrt(1 - beta2 ** t)).add_(eps)
                p.addcdiv_(m, denom, value=-step_size)


def make_step_tensor_adamw(params, lr, beta1, beta2, eps, weight_decay):
    return StepTensorAdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


def make_plain_adam(params, lr, beta1, beta2, eps):
    """Rule `adam` (no weight_decay argument at all)."""
    return PlainAdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=0.0)


class AdamL2(torch.optim.Optimizer):
    """Adam with L2 regularisation: the decay term is added to the gradient (rule `adam_l2`)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["step"] += 1
                g = p.grad + wd * p
                state["m"].mul_(beta1).add_(g, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                m_hat = state["m"] / (1 - beta1 ** state["step"])
                v_hat = state["v"] / (1 - beta2 ** state["step"])
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))


def make_adam_l2(params, lr, beta1, beta2, eps, weight_decay):
    return AdamL2(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


class SGDMomentum(torch.optim.Optimizer):
    """Heavy-ball SGD as torch writes it: b_1 = g, b_t = mu*b + (1-dampening)*g, w <- w - lr*b (or the
    Nesterov look-ahead g + mu*b); L2 decay added to the gradient."""

    def __init__(self, params, lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            mu, damp = group["momentum"], group["dampening"]
            for p in group["params"]:
                d = p.grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if "buf" not in state:
                    state["buf"] = d.clone()
                else:
                    state["buf"].mul_(mu).add_(d, alpha=1 - damp)
                step = d.add(state["buf"], alpha=mu) if group["nesterov"] else state["buf"]
                p.add_(step, alpha=-group["lr"])


def make_sgd_momentum(params, lr, momentum, dampening, nesterov, weight_decay):
    return SGDMomentum(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                       nesterov=nesterov)


class Lamb(torch.optim.Optimizer):
    """LAMB (You et al. 2019): Adam direction plus decoupled decay, scaled per tensor by
    clamp(||w||, lo, hi) / ||d + wd*w|| (1 when either norm is 0)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01,
                 trust_lower_bound=0.0, trust_upper_bound=math.inf):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      lo=trust_lower_bound, hi=trust_upper_bound))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            (beta1, beta2), eps, wd = group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["step"] += 1
                t = state["step"]
                state["m"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                update = (state["m"] / (1 - beta1 ** t)) / ((state["v"] / (1 - beta2 ** t)).sqrt() + eps)
                update.add_(p, alpha=wd)
                w_norm = min(max(p.norm().item(), group["lo"]), group["hi"])
                u_norm = update.norm().item()
                ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
                p.add_(update, alpha=-group["lr"] * ratio)


def make_lamb(params, **hp):
    return Lamb(params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                weight_decay=hp["weight_decay"], trust_lower_bound=hp["trust_lower_bound"],
                trust_upper_bound=hp["trust_upper_bound"])


# ---------------------------------------------------------------------------------------------------
# A template for the wrong ones: a plain AdamW whose steps are small methods; each mutant overrides
# the one a real bug would live in.
# ---------------------------------------------------------------------------------------------------

class TemplateAdamW(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.initial_lr = lr

    def init_state(self, p, state):
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(p)
        state["exp_avg_sq"] = torch.zeros_like(p)

    def count(self, state, group) -> int:
        state["step"] += 1
        return state["step"]

    def grad(self, p, group):
        return p.grad

    def decay_before(self, p, group):
        p.mul_(1 - group["lr"] * group["weight_decay"])

    def decay_after(self, p, group):
        pass

    def moments(self, state, g, beta1, beta2):
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).add_(g, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        return m, v

    def direction(self, m, v, t, beta1, beta2, eps, state):
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        return m_hat / (v_hat.sqrt() + eps)

    def apply(self, p, d, group):
        p.add_(d, alpha=-group["lr"])

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    self.init_state(p, state)
                t = self.count(state, group)
                g = self.grad(p, group)
                self.decay_before(p, group)
                m, v = self.moments(state, g, beta1, beta2)
                d = self.direction(m, v, t, beta1, beta2, group["eps"], state)
                self.apply(p, d, group)
                self.decay_after(p, group)


def _factory(cls, name: str):
    def make(params, lr, beta1, beta2, eps, weight_decay):
        return cls(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    make.__name__ = make.__qualname__ = name          # importable as mutants:<name> (repro scripts)
    make.__doc__ = cls.__doc__
    return make


# --- decay ------------------------------------------------------------------------------------------

class CoupledDecay(TemplateAdamW):
    """torch.optim.Adam(weight_decay) sold as AdamW: L2 added to the gradient (pytorch#38767)."""
    def grad(self, p, group):
        return p.grad + group["weight_decay"] * p

    def decay_before(self, p, group):
        pass


class DecayNotTimesLr(TemplateAdamW):
    """w <- w - wd*w: the decay is not multiplied by the learning rate (TF-Addons style)."""
    def decay_before(self, p, group):
        p.mul_(1 - group["weight_decay"])


class DecayTimesInitialLr(TemplateAdamW):
    """The decay uses the lr given at construction, so an lr schedule never reaches it."""
    def decay_before(self, p, group):
        p.mul_(1 - self.initial_lr * group["weight_decay"])


class DecayTimesLrRatio(TemplateAdamW):
    """MosaicML-DecoupledAdamW-style: shrink wd * lr_t / lr_0 (the schedule multiplier, not lr)."""
    def decay_before(self, p, group):
        p.mul_(1 - group["lr"] / self.initial_lr * group["weight_decay"])


class DecayAfterStep(TemplateAdamW):
    """bitsandbytes#2010: p = (p + step*u) * (1 - lr*wd): the shrink also hits the update."""
    def decay_before(self, p, group):
        pass

    def decay_after(self, p, group):
        p.mul_(1 - group["lr"] * group["weight_decay"])


class DecayTwice(TemplateAdamW):
    """The shrink is applied before and after the step (a refactoring left both)."""
    def decay_after(self, p, group):
        p.mul_(1 - group["lr"] * group["weight_decay"])


class DecayWrongSign(TemplateAdamW):
    """chainer#261: the weights grow instead of shrinking."""
    def decay_before(self, p, group):
        p.add_(p, alpha=group["lr"] * group["weight_decay"])


class DecayIgnored(TemplateAdamW):
    """kozistr/pytorch_optimizer#517: weight_decay accepted and validated, never applied."""
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        if weight_decay < 0:
            raise ValueError("weight_decay must be >= 0")
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def decay_before(self, p, group):
        pass


class DecayLrSquared(TemplateAdamW):
    """The shrink is lr * (lr * wd): wd was pre-multiplied by lr in the config and again here."""
    def decay_before(self, p, group):
        p.mul_(1 - group["lr"] * group["lr"] * group["weight_decay"])


class DecayCorrectedLr(TemplateAdamW):
    """MXNet-0.7-style: the decay uses the bias-corrected step size lr*sqrt(bc2)/bc1."""
    def count(self, state, group):
        t = super().count(state, group)
        beta1, beta2 = group["betas"]
        self._alpha = group["lr"] * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        return t

    def decay_before(self, p, group):
        pass

    def grad(self, p, group):
        p.mul_(1 - self._alpha * group["weight_decay"])     # (runs before decay_before: same point)
        return p.grad


class DecaySkips1d(TemplateAdamW):
    """Hard-codes the 'no decay on biases and norms' convention: 0- and 1-dim tensors are never decayed."""
    def decay_before(self, p, group):
        if p.dim() >= 2:
            p.mul_(1 - group["lr"] * group["weight_decay"])


# --- eps, sqrt, bias correction ----------------------------------------------------------------------

class EpsInsideSqrt(TemplateAdamW):
    """d = m_hat / sqrt(v_hat + eps)."""
    def direction(self, m, v, t, beta1, beta2, eps, state):
        return (m / (1 - beta1 ** t)) / (v / (1 - beta2 ** t) + eps).sqrt()


class EpsHat(TemplateAdamW):
    """Keras/Kingma-Ba 'efficient' form: eps on the raw sqrt(v), the corrections folded into the step."""
    def direction(self, m, v, t, beta1, beta2, eps, state):
        return math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m / (v.sqrt() + eps)


class HFLegacyAdamW(torch.optim.Optimizer):
    """transformers.AdamW <= 4.49 (transformers#35504): eps added to sqrt(v) before the bias correction
    (folded into the step size), and the decay applied after the gradient step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      correct_bias=correct_bias))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=(1.0 - beta1))
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    bias_correction1 = 1.0 - beta1 ** state["step"]
                    bias_correction2 = 1.0 - beta2 ** state["step"]
                    step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
                p.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=(-group["lr"] * group["weight_decay"]))


class NoBiasCorrection(TemplateAdamW):
    """MLX#1640 / BERT: m and v used without bias correction."""
    def direction(self, m, v, t, beta1, beta2, eps, state):
        return m / (v.sqrt() + eps)


class BiasCorrectionOnlyM(TemplateAdamW):
    """Only the first moment is bias-corrected."""
    def direction(self, m, v, t, beta1, beta2, eps, state):
        return (m / (1 - beta1 ** t)) / (v.sqrt() + eps)


class BiasCorrectionOnlyV(TemplateAdamW):
    """Only the second moment is bias-corrected."""
    def direction(self, m, v, t, beta1, beta2, eps, state):
        return m / ((v / (1 - beta2 ** t)).sqrt() + eps)


class SqrtMissing(TemplateAdamW):
    """d = m_hat / (v_hat + eps): the square root was forgotten."""
    def direction(self, m, v, t, beta1, beta2, eps, state):
        return (m / (1 - beta1 ** t)) / (v / (1 - beta2 ** t) + eps)


class EpsAsFloor(TemplateAdamW):
    """d = m_hat / max(sqrt(v_hat), eps): eps clamps the root instead of being added to it."""
    def direction(self, m, v, t, beta1, beta2, eps, state):
        return (m / (1 - beta1 ** t)) / (v / (1 - beta2 ** t)).sqrt().clamp_min(eps)


class EpsIgnored(TemplateAdamW):
    """pytorch#92551-style: eps never used; 0/0 on zero gradients patched with nan_to_num."""
    def direction(self, m, v, t, beta1, beta2, eps, state):
        return torch.nan_to_num((m / (1 - beta1 ** t)) / (v / (1 - beta2 ** t)).sqrt(), nan=0.0)


class NaNOnZeroGrad(TemplateAdamW):
    """Normalises by sqrt(v_hat) and adds eps to the *ratio*, so a zero gradient gives 0/0 = NaN."""
    def direction(self, m, v, t, beta1, beta2, eps, state):
        return (m / (1 - beta1 ** t)) / (v / (1 - beta2 ** t)).sqrt() + eps


# --- step counting -----------------------------------------------------------------------------------

class StepFromZero(TemplateAdamW):
    """The bias correction reads the counter before it is incremented (t-1): 1 - beta^0 = 0 at step 1."""
    def count(self, state, group):
        t = state["step"]
        state["step"] += 1
        return t


class StepPlusOne(TemplateAdamW):
    """The counter starts at 1 and is incremented before use: the correction sees t+1."""
    def init_state(self, p, state):
        super().init_state(p, state)
        state["step"] = 1


class SharedStepCounter(TemplateAdamW):
    """One counter for the whole optimizer, incremented once per *parameter* instead of once per step."""
    def count(self, state, group):
        self._t = getattr(self, "_t", 0) + 1
        return self._t


class StepFloat32Tensor(TemplateAdamW):
    """The counter and the bias corrections are float32 tensors even for float64 parameters."""
    def init_state(self, p, state):
        super().init_state(p, state)
        state["step"] = torch.zeros((), dtype=torch.float32)

    def direction(self, m, v, t, beta1, beta2, eps, state):
        bc1 = 1 - torch.tensor(beta1, dtype=torch.float32) ** t
        bc2 = 1 - torch.tensor(beta2, dtype=torch.float32) ** t
        return (m / bc1.to(m.dtype)) / ((v / bc2.to(v.dtype)).sqrt() + eps)


class SkipZeroGrad(TemplateAdamW):
    """Treats an all-zero gradient as 'no gradient' (a sparse-update shortcut): no decay, no moment
    decay for that tensor on that step."""
    @torch.no_grad()
    def step(self, closure=None):
        saved = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and not p.grad.any():
                    saved[p] = p.grad
                    p.grad = None
        try:
            return super().step(closure)
        finally:
            for p, g in saved.items():
                p.grad = g


# --- moments, amsgrad, trust ratio, lr ---------------------------------------------------------------

class AmsgradRaw(TemplateAdamW):
    """AMSGrad on the raw v (torch, Keras): v_max = max(v_max, v), then bias-corrected."""
    def direction(self, m, v, t, beta1, beta2, eps, state):
        vmax = state.setdefault("max_exp_avg_sq", torch.zeros_like(v))
        torch.maximum(vmax, v, out=vmax)
        return (m / (1 - beta1 ** t)) / ((vmax / (1 - beta2 ** t)).sqrt() + eps)


class AmsgradCorrected(TemplateAdamW):
    """AMSGrad on the bias-corrected v (optax): v_max = max(v_max, v_hat)."""
    def direction(self, m, v, t, beta1, beta2, eps, state):
        vmax = state.setdefault("max_v_hat", torch.zeros_like(v))
        torch.maximum(vmax, v / (1 - beta2 ** t), out=vmax)
        return (m / (1 - beta1 ** t)) / (vmax.sqrt() + eps)


class BetasSwapped(TemplateAdamW):
    """m averaged with beta2 and v with beta1."""
    def moments(self, state, g, beta1, beta2):
        return super().moments(state, g, beta2, beta1)

    def direction(self, m, v, t, beta1, beta2, eps, state):
        return super().direction(m, v, t, beta2, beta1, eps, state)


class BetasHardcoded(TemplateAdamW):
    """beta1/beta2 accepted but the moments always use 0.9/0.999."""
    def moments(self, state, g, beta1, beta2):
        return super().moments(state, g, 0.9, 0.999)

    def direction(self, m, v, t, beta1, beta2, eps, state):
        return super().direction(m, v, t, 0.9, 0.999, eps, state)


class MomentsSwapped(TemplateAdamW):
    """m tracks g^2 and v tracks g."""
    def moments(self, state, g, beta1, beta2):
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).addcmul_(g, g, value=1 - beta1)
        v.mul_(beta2).add_(g, alpha=1 - beta2)
        return m, v


class Float16State(TemplateAdamW):
    """Moments stored in float16 to save memory (v underflows for small gradients)."""
    def init_state(self, p, state):
        super().init_state(p, state)
        state["exp_avg"] = torch.zeros_like(p, dtype=torch.float16)
        state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float16)

    def moments(self, state, g, beta1, beta2):
        m, v = super().moments(state, g.to(torch.float16), beta1, beta2)
        return m.to(g.dtype), v.to(g.dtype)


class LrScheduleIgnored(TemplateAdamW):
    """Uses the lr given at construction for everything: a scheduler's updates to param_groups are lost."""
    def decay_before(self, p, group):
        p.mul_(1 - self.initial_lr * group["weight_decay"])

    def apply(self, p, d, group):
        p.add_(d, alpha=-self.initial_lr)


class TrustRatioAdded(TemplateAdamW):
    """An 'AdamW' that is really LAMB: the update d + wd*w is rescaled by ||w|| / ||d + wd*w||."""
    def decay_before(self, p, group):
        pass

    def apply(self, p, d, group):
        u = d + group["weight_decay"] * p
        w_norm, u_norm = p.norm(), u.norm()
        ratio = (w_norm / u_norm).item() if w_norm > 0 and u_norm > 0 else 1.0
        p.add_(u, alpha=-group["lr"] * ratio)


class MomentsInitFromGrad(TemplateAdamW):
    """m and v start at the first gradient (m_1 = g, v_1 = g^2) *and* are bias-corrected."""
    def moments(self, state, g, beta1, beta2):
        if state["step"] == 1:
            state["exp_avg"].copy_(g)
            state["exp_avg_sq"].copy_(g * g)
            return state["exp_avg"], state["exp_avg_sq"]
        return super().moments(state, g, beta1, beta2)


class DecoupledAdamClaimedL2(TemplateAdamW):
    """FlagGems#4988: a fused 'Adam' kernel that implements the AdamW rule (checked against adam_l2)."""


class SGDLrInsideMomentum(torch.optim.Optimizer):
    """Keras/MXNet-style velocity b <- mu*b - lr*g; w <- w + b, sold as torch-SGD-compatible: differs
    as soon as the lr changes."""

    def __init__(self, params, lr=1e-3, momentum=0.9, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                d = p.grad + group["weight_decay"] * p
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = -group["lr"] * d
                else:
                    state["velocity"].mul_(group["momentum"]).add_(d, alpha=-group["lr"])
                p.add_(state["velocity"])


def make_sgd_lr_inside(params, lr, momentum, weight_decay):
    return SGDLrInsideMomentum(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def make_hf_legacy_adamw(params, lr, beta1, beta2, eps, weight_decay):
    return HFLegacyAdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


make_coupled_decay = _factory(CoupledDecay, "make_coupled_decay")
make_decay_not_times_lr = _factory(DecayNotTimesLr, "make_decay_not_times_lr")
make_decay_times_initial_lr = _factory(DecayTimesInitialLr, "make_decay_times_initial_lr")
make_decay_times_lr_ratio = _factory(DecayTimesLrRatio, "make_decay_times_lr_ratio")
make_decay_after_step = _factory(DecayAfterStep, "make_decay_after_step")
make_decay_twice = _factory(DecayTwice, "make_decay_twice")
make_decay_wrong_sign = _factory(DecayWrongSign, "make_decay_wrong_sign")
make_decay_ignored = _factory(DecayIgnored, "make_decay_ignored")
make_decay_lr_squared = _factory(DecayLrSquared, "make_decay_lr_squared")
make_decay_corrected_lr = _factory(DecayCorrectedLr, "make_decay_corrected_lr")
make_decay_skips_1d = _factory(DecaySkips1d, "make_decay_skips_1d")
make_eps_inside_sqrt = _factory(EpsInsideSqrt, "make_eps_inside_sqrt")
make_eps_hat = _factory(EpsHat, "make_eps_hat")
make_no_bias_correction = _factory(NoBiasCorrection, "make_no_bias_correction")
make_bias_correction_only_m = _factory(BiasCorrectionOnlyM, "make_bias_correction_only_m")
make_bias_correction_only_v = _factory(BiasCorrectionOnlyV, "make_bias_correction_only_v")
make_sqrt_missing = _factory(SqrtMissing, "make_sqrt_missing")
make_eps_as_floor = _factory(EpsAsFloor, "make_eps_as_floor")
make_eps_ignored = _factory(EpsIgnored, "make_eps_ignored")
make_nan_on_zero_grad = _factory(NaNOnZeroGrad, "make_nan_on_zero_grad")
make_step_from_zero = _factory(StepFromZero, "make_step_from_zero")
make_step_plus_one = _factory(StepPlusOne, "make_step_plus_one")
make_shared_step_counter = _factory(SharedStepCounter, "make_shared_step_counter")
make_step_float32_tensor = _factory(StepFloat32Tensor, "make_step_float32_tensor")
make_skip_zero_grad = _factory(SkipZeroGrad, "make_skip_zero_grad")
make_amsgrad_raw = _factory(AmsgradRaw, "make_amsgrad_raw")
make_amsgrad_corrected = _factory(AmsgradCorrected, "make_amsgrad_corrected")
make_betas_swapped = _factory(BetasSwapped, "make_betas_swapped")
make_betas_hardcoded = _factory(BetasHardcoded, "make_betas_hardcoded")
make_moments_swapped = _factory(MomentsSwapped, "make_moments_swapped")
make_float16_state = _factory(Float16State, "make_float16_state")
make_lr_schedule_ignored = _factory(LrScheduleIgnored, "make_lr_schedule_ignored")
make_trust_ratio_added = _factory(TrustRatioAdded, "make_trust_ratio_added")
make_moments_init_from_grad = _factory(MomentsInitFromGrad, "make_moments_init_from_grad")
make_decoupled_adam_claimed_l2 = _factory(DecoupledAdamClaimedL2, "make_decoupled_adam_claimed_l2")


# ---------------------------------------------------------------------------------------------------
# Wild variants (issue 16): implementation choices of widely used third-party optimizers, written from
# scratch after reading their sources (cited per class); none imports or copies those libraries.
# ---------------------------------------------------------------------------------------------------

class WildLamb(torch.optim.Optimizer):
    """LAMB structured as timm writes it (huggingface/pytorch-image-models timm/optim/lamb.py @1e19b29):
    an optional global-norm clip of the gradients first (g / max(||G||/c, 1)), the Adam direction with
    eps on the corrected root, + wd*w, then the trust ratio ||w||/||u|| (1 when either is 0) — applied
    only where weight_decay != 0 unless always_adapt; `w_cap` clamps ||w|| from above as
    cybertronai/pytorch-lamb lamb.py @207f672 does with clamp(0, 10); `bias_correction=False` as
    pytorch-lamb ("Paper v3 does not use debiasing")."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, max_grad_norm=None,
                 always_adapt=True, w_cap=None, bias_correction=True):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, always_adapt=always_adapt,
                                      w_cap=w_cap, bias_correction=bias_correction))
        self.max_grad_norm = max_grad_norm

    def _clip_divisor(self):
        if self.max_grad_norm is None:
            return 1.0
        norms = [p.grad.norm() for g in self.param_groups for p in g["params"] if p.grad is not None]
        total = torch.linalg.vector_norm(torch.stack(norms)).item()
        return max(total / self.max_grad_norm, 1.0)

    @torch.no_grad()
    def step(self, closure=None):
        divisor = self._clip_divisor()
        for group in self.param_groups:
            (beta1, beta2), eps, wd = group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["step"] += 1
                t, g = state["step"], p.grad / divisor
                state["m"].lerp_(g, 1 - beta1)
                state["v"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                bc1, bc2 = (1 - beta1 ** t, 1 - beta2 ** t) if group["bias_correction"] else (1.0, 1.0)
                update = (state["m"] / bc1) / ((state["v"].sqrt() / math.sqrt(bc2)).add_(eps))
                if wd != 0:
                    update.add_(p, alpha=wd)
                if wd != 0 or group["always_adapt"]:
                    w_norm = p.norm().item()
                    if group["w_cap"] is not None:
                        w_norm = min(w_norm, group["w_cap"])
                    u_norm = update.norm().item()
                    update.mul_(w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0)
                p.add_(update, alpha=-group["lr"])


def make_timm_lamb(params, lr, beta1, beta2, eps, weight_decay):
    """timm Lamb configured to the rule: always_adapt=True, max_grad_norm=None."""
    return WildLamb(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


def make_timm_lamb_defaults(params, lr, beta1, beta2, eps, weight_decay):
    """timm Lamb with its defaults: max_grad_norm=1.0 (global clip), always_adapt=False."""
    return WildLamb(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, max_grad_norm=1.0,
                    always_adapt=False)


def make_lamb_default_clip(params, lr, beta1, beta2, eps, weight_decay):
    """timm's max_grad_norm=1.0 default alone (always_adapt=True)."""
    return WildLamb(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, max_grad_norm=1.0)


def make_lamb_skip_ratio_wd0(params, lr, beta1, beta2, eps, weight_decay):
    """timm's always_adapt=False default alone: no trust ratio where weight_decay = 0."""
    return WildLamb(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, always_adapt=False)


def make_lamb_norm_capped(params, lr, beta1, beta2, eps, weight_decay):
    """pytorch-lamb: ||w|| clamped to 10 in the trust ratio, no bias correction."""
    return WildLamb(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, w_cap=10.0,
                    bias_correction=False)


class DecoupledAdamWLrRatio(torch.optim.Optimizer):
    """AdamW whose decay follows the lr *schedule*, not the lr: decay_factor = lr_t / initial_lr,
    w <- w*(1 - decay_factor*wd), then the Adam step (mosaicml/composer composer/optim/
    decoupled_weight_decay.py DecoupledAdamW.adamw; initial_lr = the lr at construction)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-5):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        for group in self.param_groups:
            group["initial_lr"] = group["lr"]

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            factor = lr / group["initial_lr"] if group["initial_lr"] else 1.0
            for p in group["params"]:
                st = self.state[p]
                if not st:
                    st.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                st["step"] += 1
                p.mul_(1 - factor * wd)
                st["m"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                st["v"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denom = (st["v"].sqrt() / math.sqrt(1 - beta2 ** st["step"])).add_(eps)
                p.addcdiv_(st["m"], denom, value=-lr / (1 - beta1 ** st["step"]))


def make_decoupled_adamw(params, lr, beta1, beta2, eps, weight_decay):
    return DecoupledAdamWLrRatio(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


class WildLion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023) as lucidrains/lion-pytorch lion_pytorch.py writes it: p *= 1 - lr*wd;
    p -= lr*sign(lerp(m, g, 1-beta1)); m <- lerp(m, g, 1-beta2). With `lr_ratio` the decay is
    wd*lr_t/initial_lr instead (mosaicml/llm-foundry llmfoundry/optim/lion.py DecoupledLionW.lionw)."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, lr_ratio=False):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))
        self.lr_ratio = lr_ratio
        for group in self.param_groups:
            group["initial_lr"] = group["lr"]

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
            shrink = (lr / group["initial_lr"] if group["initial_lr"] else 1.0) if self.lr_ratio else lr
            for p in group["params"]:
                st = self.state[p]
                if not st:
                    st["exp_avg"] = torch.zeros_like(p)
                p.mul_(1 - shrink * wd)
                update = st["exp_avg"].lerp(p.grad, 1 - beta1).sign_()
                p.add_(update, alpha=-lr)
                st["exp_avg"].lerp_(p.grad, 1 - beta2)


def make_lion(params, lr, beta1, beta2, weight_decay):
    return WildLion(params, lr=lr, betas=(beta1, beta2), weight_decay=weight_decay)


def make_decoupled_lion(params, lr, beta1, beta2, weight_decay):
    return WildLion(params, lr=lr, betas=(beta1, beta2), weight_decay=weight_decay, lr_ratio=True)


class PlainSGD(torch.optim.Optimizer):
    """SGD without momentum and without decay: w <- w - lr*g."""

    def __init__(self, params, lr=1e-3):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["lr"])


def make_plain_sgd(params, lr):
    return PlainSGD(params, lr=lr)


class Float32InternalAdamW(TemplateAdamW):
    """Computes every step in float32 whatever the parameter dtype (a float32 master copy, as fused
    kernels and 8-bit optimizers do), then writes back: wrong only in float64."""
    @torch.no_grad()
    def step(self, closure=None):
        saved = {}
        for group in self.param_groups:
            for p in group["params"]:
                saved[p] = p.data
                p.data = p.data.to(torch.float32)
                p.grad = p.grad.to(torch.float32)
                st = self.state[p]
                for key in ("exp_avg", "exp_avg_sq"):
                    if key in st:
                        st[key] = st[key].to(torch.float32)
        try:
            return super().step(closure)
        finally:
            for p, data in saved.items():
                p.data = p.data.to(data.dtype)
                p.grad = p.grad.to(data.dtype)


class NoOp(TemplateAdamW):
    """step() does nothing (a wrapper that forgot to call the inner optimizer)."""
    @torch.no_grad()
    def step(self, closure=None):
        return None


class DecayOfScalar(TemplateAdamW):
    """`p.add_(-lr*wd)` where `p.add_(p, alpha=-lr*wd)` was meant: every element loses lr*wd."""
    def decay_before(self, p, group):
        p.add_(-group["lr"] * group["weight_decay"])


make_float32_internal = _factory(Float32InternalAdamW, "make_float32_internal")
make_noop = _factory(NoOp, "make_noop")
make_decay_of_scalar = _factory(DecayOfScalar, "make_decay_of_scalar")


# ---------------------------------------------------------------------------------------------------
# The table the tests run
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mutant:
    name: str
    factory: Callable
    rule: str                                  # the rule it claims
    expect: Any                                # CORRECT, NO_FIT or {knob: value} (+ "preset")
    dtype: str = "float32"                     # where a wrong one is checked (a precision bug: float64)
    note: str = ""
    hp: dict = field(default_factory=dict)     # check(..., **hp) overrides
    hint: str = ""                             # must appear in the report's diagnosis lines

    @property
    def correct(self) -> bool:
        return self.expect == CORRECT


def _knobs(**kw) -> dict:
    return kw


MUTANTS: list[Mutant] = [
    # correct
    Mutant("plain_adamw", make_plain_adamw, "adamw", CORRECT),
    Mutant("reordered_adamw", make_reordered_adamw, "adamw", CORRECT),
    Mutant("torch_form_adamw", make_torch_form_adamw, "adamw", CORRECT, note="decay folded into the update"),
    Mutant("foreach_adamw", make_foreach_adamw, "adamw", CORRECT),
    Mutant("float64_state_adamw", make_float64_state_adamw, "adamw", CORRECT),
    Mutant("step_tensor_adamw", make_step_tensor_adamw, "adamw", CORRECT),
    Mutant("kwargs_adamw", make_kwargs_adamw, "adamw", CORRECT, note="factory(params, **hp)"),
    Mutant("subset_adamw", make_subset_adamw, "adamw", CORRECT, note="factory(params, lr, weight_decay)"),
    Mutant("plain_adam", make_plain_adam, "adam", CORRECT),
    Mutant("adam_l2", make_adam_l2, "adam_l2", CORRECT),
    Mutant("sgd_momentum", make_sgd_momentum, "sgd_momentum", CORRECT),
    Mutant("lamb", make_lamb, "lamb", CORRECT),
    # wrong: a different knob vector of the spec
    Mutant("coupled_decay", make_coupled_decay, "adamw",
           _knobs(weight_decay="coupled", decay="coupled", preset="adam_l2"), note="pytorch#38767"),
    Mutant("decay_not_times_lr", make_decay_not_times_lr, "adamw",
           _knobs(weight_decay="decoupled_unscaled", decay_scaling="unscaled"), note="tensorflow/addons#2282"),
    Mutant("decay_corrected_lr", make_decay_corrected_lr, "adamw",
           _knobs(weight_decay="decoupled", decay_scaling="corrected_lr"), note="MXNet 0.7 Adam"),
    Mutant("decay_after_step", make_decay_after_step, "adamw",
           _knobs(weight_decay="decoupled", decay_scaling="lr", decay_order="after"), note="bitsandbytes#2010"),
    Mutant("decay_ignored", make_decay_ignored, "adamw",
           _knobs(weight_decay="none", decay="none", preset="adam"), note="kozistr/pytorch_optimizer#517"),
    Mutant("decoupled_adam_claimed_l2", make_decoupled_adam_claimed_l2, "adam_l2",
           _knobs(weight_decay="decoupled", decay_scaling="lr", preset="adamw"), note="FlagGems#4988"),
    Mutant("eps_inside_sqrt", make_eps_inside_sqrt, "adamw", _knobs(eps_placement="inside")),
    Mutant("eps_hat", make_eps_hat, "adamw", _knobs(eps_placement="eps_hat", preset="adamw_eps_hat")),
    Mutant("hf_legacy_adamw", make_hf_legacy_adamw, "adamw",
           _knobs(eps_placement="eps_hat", decay_order="after", preset="transformers_adamw"),
           note="transformers#35504"),
    Mutant("no_bias_correction", make_no_bias_correction, "adamw",
           _knobs(bias_correction="off", weight_decay="decoupled", preset="bert_adamw"), note="mlx#1640"),
    Mutant("amsgrad_raw", make_amsgrad_raw, "adamw", _knobs(amsgrad="raw", preset="adamw_amsgrad")),
    Mutant("amsgrad_corrected", make_amsgrad_corrected, "adamw", _knobs(amsgrad="corrected")),
    Mutant("trust_ratio_added", make_trust_ratio_added, "adamw",
           _knobs(trust_ratio="on", trust_ratio_scope="with_decay", preset="lamb")),
    Mutant("sgd_lr_inside_momentum", make_sgd_lr_inside, "sgd_momentum",
           _knobs(momentum_form="lr_inside", preset="sgd_momentum_inside")),
    # wrong: outside the spec's axes
    Mutant("decay_times_initial_lr", make_decay_times_initial_lr, "adamw", NO_FIT,
           hint="only where the lr changes during the probe"),
    Mutant("decay_times_lr_ratio", make_decay_times_lr_ratio, "adamw",
           _knobs(weight_decay="decoupled_lr_ratio", decay_scaling="lr_ratio", preset="adamw_lr_ratio"),
           note="shrink wd*lr_t/lr_0: the paper's eta_t read off the lr schedule"),
    Mutant("decay_twice", make_decay_twice, "adamw", NO_FIT),
    Mutant("decay_wrong_sign", make_decay_wrong_sign, "adamw", NO_FIT, note="chainer#261"),
    Mutant("decay_lr_squared", make_decay_lr_squared, "adamw", NO_FIT),
    Mutant("decay_skips_1d", make_decay_skips_1d, "adamw", NO_FIT),
    Mutant("bias_correction_only_m", make_bias_correction_only_m, "adamw", NO_FIT),
    Mutant("bias_correction_only_v", make_bias_correction_only_v, "adamw", NO_FIT),
    Mutant("sqrt_missing", make_sqrt_missing, "adamw", NO_FIT),
    Mutant("eps_as_floor", make_eps_as_floor, "adamw", NO_FIT),
    Mutant("eps_ignored", make_eps_ignored, "adamw", NO_FIT, note="pytorch PR#92551"),
    Mutant("nan_on_zero_grad", make_nan_on_zero_grad, "adamw", NO_FIT),
    Mutant("step_from_zero", make_step_from_zero, "adamw", NO_FIT, note="onnx#3803 (t from 0 or 1)"),
    Mutant("step_plus_one", make_step_plus_one, "adamw", NO_FIT),
    Mutant("shared_step_counter", make_shared_step_counter, "adamw", NO_FIT),
    Mutant("step_float32_tensor", make_step_float32_tensor, "adamw", NO_FIT, dtype="float64",
           note="precision: visible in float64 only"),
    Mutant("skip_zero_grad", make_skip_zero_grad, "adamw", NO_FIT),
    Mutant("betas_swapped", make_betas_swapped, "adamw", NO_FIT),
    Mutant("betas_hardcoded", make_betas_hardcoded, "adamw", NO_FIT),
    Mutant("moments_swapped", make_moments_swapped, "adamw", NO_FIT),
    Mutant("moments_init_from_grad", make_moments_init_from_grad, "adamw", NO_FIT),
    Mutant("float16_state", make_float16_state, "adamw", NO_FIT),
    Mutant("lr_schedule_ignored", make_lr_schedule_ignored, "adamw", NO_FIT,
           hint="only where the lr changes during the probe"),
    # wild variants (issue 16): correct ones ...
    Mutant("timm_lamb", make_timm_lamb, "lamb", CORRECT, note="timm Lamb(always_adapt=True, max_grad_norm=None)"),
    Mutant("decoupled_adamw", make_decoupled_adamw, "adamw_lr_ratio", CORRECT, note="composer DecoupledAdamW"),
    Mutant("lion", make_lion, "lion", CORRECT, note="lion-pytorch"),
    Mutant("decoupled_lion", make_decoupled_lion, "lion[decay_scaling=lr_ratio]", CORRECT,
           note="llm-foundry DecoupledLionW"),
    Mutant("class_as_factory", PlainAdamW, "adamw", CORRECT, note="the class itself, betas=(beta1, beta2)"),
    # ... and wrong ones, each with the diagnosis the wild source implies
    Mutant("lamb_norm_capped", make_lamb_norm_capped, "lamb_uncorrected", NO_FIT,
           note="pytorch-lamb clamp(0, 10)", hint="with --hp trust_upper_bound=10 it conforms"),
    Mutant("lamb_skip_ratio_wd0", make_lamb_skip_ratio_wd0, "lamb", NO_FIT, note="timm always_adapt=False",
           hint="only probes with weight_decay=0.0 diverge"),
    Mutant("lamb_default_clip", make_lamb_default_clip, "lamb", NO_FIT, note="timm max_grad_norm=1.0",
           hint="with --hp clip_global_norm=1 it conforms"),
    Mutant("timm_lamb_defaults", make_timm_lamb_defaults, "lamb", NO_FIT, note="timm Lamb() defaults",
           hint="looks like gradient clipping"),
    Mutant("decoupled_adamw_as_adamw", make_decoupled_adamw, "adamw",
           _knobs(weight_decay="decoupled_lr_ratio", decay_scaling="lr_ratio", preset="adamw_lr_ratio"),
           note="composer DecoupledAdamW sold as AdamW"),
    Mutant("decoupled_lion_as_lion", make_decoupled_lion, "lion",
           _knobs(weight_decay="decoupled_lr_ratio", decay_scaling="lr_ratio"), note="llm-foundry DecoupledLionW"),
    Mutant("plain_sgd_as_momentum", make_plain_sgd, "sgd_momentum", _knobs(momentum_form="none"),
           note="factory(params, lr): no momentum"),
    Mutant("float32_internal", make_float32_internal, "adamw", NO_FIT, dtype="float64",
           hint="errors at float32 rounding level"),
    Mutant("noop", make_noop, "adamw", NO_FIT, hint="the weights never change"),
    Mutant("decay_of_scalar", make_decay_of_scalar, "adamw", NO_FIT, note="p.add_(-lr*wd)"),
]

BY_NAME = {m.name: m for m in MUTANTS}
