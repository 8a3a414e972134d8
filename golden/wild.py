"""Observability of implementation choices seen in third-party optimizers ("wild variants", issue 16).

A wild variant is not a knob of the spec: it is a preset plus a built-in setting or a slip that real
libraries ship. Each is modelled here in float64 with the reference's own pieces (a hyper-parameter
the preset leaves off, a knob flipped only on some probes, or one piece swapped for a one-line
variant), run on every golden case of each preset it applies to, and must move some case by
>= audit.MIN_MARGIN float32 tolerance units, like a knob flip (golden/audit.py).

| variant | maths | seen in |
|---|---|---|
| trust ratio with ||w|| capped at 10 | r1 = min(||w||, 10) | cybertronai/pytorch-lamb pytorch_lamb/lamb.py @207f672 `clamp(0, 10)` |
| trust ratio skipped at wd = 0 | trust_ratio=off on scenarios with weight_decay = 0 | timm optim/lamb.py `if weight_decay != 0 or always_adapt` |
| global-norm clip 1.0 built in | clip_global_norm = 1 | timm Lamb `max_grad_norm=1.0`; apex FusedLAMB; tf-models AdamWeightDecay `gradient_clip_norm=1.0` |
| per-tensor clip 1.0 built in | clip_norm = 1 | pytorch-pretrained-bert BertAdam `max_grad_norm=1.0` |
| decay x lr/lr0 | decay_scaling = lr_ratio | composer DecoupledAdamW, llm-foundry DecoupledLionW |
| decay of a scalar, not of w | w <- w - s (not s*w); g <- g + wd | `p.add_(-lr*wd)` where `p.add_(p, alpha=-lr*wd)` was meant |

No framework code is used: the variants are the reference's float64 pieces.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Callable
from unittest import mock

import numpy as np

from optconform.reference import pieces as P
from optconform.reference import rules, trajectory

from .audit import MIN_MARGIN, _goldens_by_rule, _worst_units
from .format import Golden


@dataclass(frozen=True)
class WildVariant:
    name: str
    seen_in: str
    applies: Callable[[object], bool]                 # rule -> bool
    run: Callable[[object, Golden], object]           # (rule, golden) -> params trajectory or None


@dataclass(frozen=True)
class WildResult:
    variant: str
    rule: str
    margin: float            # best golden case of the rule, float32 tolerance units
    caught_by: str

    @property
    def caught(self) -> bool:
        return self.margin >= MIN_MARGIN


def _hp(rule, golden: Golden, **extra) -> dict:
    hp = {k: v for k, v in golden.run_hp.items() if k in rule.defaults}
    hp.update({k: v for k, v in extra.items() if k in rule.defaults})
    return hp


def _traj(rule, golden: Golden, **extra):
    return trajectory(rule, dict(golden.params0), list(golden.grads), **_hp(rule, golden, **extra)).params


def _capped(rule, golden):
    """r1 = clamp(||w||, lower, min(upper, 10))."""
    upper = min(float(golden.run_hp.get("trust_upper_bound", float("inf"))), 10.0)
    return _traj(rule, golden, trust_upper_bound=upper)


def _ratio_skipped(rule, golden):
    """The trust ratio is not applied where weight_decay = 0 (the preset's maths elsewhere)."""
    if golden.run_hp.get("weight_decay", 0.0) != 0.0:
        return None
    return _traj(rule.with_knobs(trust_ratio="off"), golden)


def _scalar_shrink(wd, scaling, decayed, beta1=0.0, beta2=0.0):
    """w <- w - s: the decay subtracts the scalar s instead of s*w."""
    def update(c, ctx):
        s = P.decay_factor(scaling, wd, ctx, 1.0 - beta1 ** ctx.t, 1.0 - beta2 ** ctx.t)
        return replace(c, params={k: w - s if decayed[k] else w for k, w in c.params.items()})
    return P._stateless(update)


def _scalar_muon_shrink(wd, scaling, decayed, kind, rate):
    """Muon's w <- w - s with the scalar s instead of s*w."""
    def update(c, ctx):
        def s(w):
            if scaling == "adjusted_lr":
                return ctx.eta * ctx.lr * P.shape_scale(w.shape, kind, rate) * wd
            return P.decay_factor(scaling, wd, ctx, 1.0, 1.0)
        return replace(c, params={k: w - s(w) if decayed[k] else w for k, w in c.params.items()})
    return P._stateless(update)


def _scalar_relative_shrink(wd, kind, decayed):
    """Adafactor's w <- w - wd*rho_t*p with the scalar instead of wd*rho_t*p*w."""
    def update(c, ctx):
        rho, scale = P._rho(kind, ctx), c.param_scale or {}
        return replace(c, params={k: w - wd * rho * scale.get(k, 1.0) if decayed[k] else w
                                  for k, w in c.params.items()})
    return P._stateless(update)


def _scalar_coupled(wd, decayed):
    """g <- g + wd: the scalar wd instead of wd*w."""
    return P._stateless(lambda c, ctx: replace(c, updates={k: g + wd if decayed[k] else g
                                                           for k, g in c.updates.items()}))


def _scalar_in_update(wd, scaling, decayed, beta1=0.0, beta2=0.0):
    """u <- d + wd (LAMB's decay inside the ratio, of a scalar)."""
    return P._stateless(lambda c, ctx: replace(c, updates={k: u + wd if decayed[k] else u
                                                           for k, u in c.updates.items()}))


def _decay_of_scalar(rule, golden):
    """The preset's chain with its decay piece swapped for the scalar form (pieces patched only while
    the chain is built: reference/chains.py looks them up on the module)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(P, "shrink_weights", _scalar_shrink))
        stack.enter_context(mock.patch.object(P, "add_coupled_decay", _scalar_coupled))
        stack.enter_context(mock.patch.object(P, "add_decayed_weights", _scalar_in_update))
        stack.enter_context(mock.patch.object(P, "muon_shrink", _scalar_muon_shrink))
        stack.enter_context(mock.patch.object(P, "shrink_by_relative_step", _scalar_relative_shrink))
        original = P.schedule_free_adamw
        stack.enter_context(mock.patch.object(P, "schedule_free_adamw", lambda *a, **kw: original(
            *a, **kw, decay_of=np.ones_like)))
        return _traj(rule, golden)


def _trust(rule) -> bool:
    return rule.knobs.get("trust_ratio") == "on"


VARIANTS = (
    WildVariant("trust ratio with ||w|| capped at 10", "cybertronai/pytorch-lamb lamb.py @207f672 clamp(0, 10)",
                _trust, _capped),
    WildVariant("trust ratio skipped at weight_decay = 0", "timm optim/lamb.py (always_adapt=False)",
                _trust, _ratio_skipped),
    WildVariant("global-norm clip at 1.0 built in", "timm Lamb max_grad_norm=1.0; apex FusedLAMB; tf-models "
                "AdamWeightDecay", lambda r: True, lambda r, g: _traj(r, g, clip_global_norm=1.0)),
    WildVariant("per-tensor norm clip at 1.0 built in", "pytorch-pretrained-bert BertAdam max_grad_norm=1.0",
                lambda r: True, lambda r, g: _traj(r, g, clip_norm=1.0)),
    WildVariant("decay x lr/lr0 (lr_ratio)", "composer DecoupledAdamW; llm-foundry DecoupledLionW",
                lambda r: r.knobs["decay"] == "decoupled" and r.knobs.get("decay_scaling", "lr_ratio") != "lr_ratio",
                lambda r, g: _traj(r.with_knobs(decay_scaling="lr_ratio"), g)),
    WildVariant("decay of a scalar instead of w", "p.add_(-lr*wd) for p.add_(p, alpha=-lr*wd)",
                lambda r: r.knobs["decay"] != "none", _decay_of_scalar),
)


def wild_observability() -> list[WildResult]:
    """One result per (wild variant, preset it applies to): the golden case it moves most."""
    by_rule = _goldens_by_rule()
    out = []
    for variant in VARIANTS:
        for name, rule in rules().items():
            if not variant.applies(rule):
                continue
            best, best_case = 0.0, ""
            for golden in by_rule[name]:
                params = variant.run(rule, golden)
                if params is None:
                    continue
                units = _worst_units(params, golden)
                if units > best:
                    best, best_case = units, golden.name
            out.append(WildResult(variant.name, name, best, best_case))
    return out


def format_wild(results: list[WildResult]) -> str:
    """Per variant: presets it applies to, smallest margin (and where), whether all are caught."""
    lines = [f"{'wild variant':42} {'presets':>7} {'smallest margin (x f32 tol)':>28}  preset: caught by"]
    for variant in VARIANTS:
        rows = [r for r in results if r.variant == variant.name]
        if not rows:
            continue
        low = min(rows, key=lambda r: r.margin)
        mark = "" if all(r.caught for r in rows) else "   <-- NOT CAUGHT"
        lines.append(f"{variant.name:42} {len(rows):7d} {low.margin:28.3g}  {low.rule}: {low.caught_by}{mark}")
    caught = sum(r.caught for r in results)
    lines.append(f"{caught}/{len(results)} (variant, preset) pairs caught with margin >= {MIN_MARGIN:g}x")
    return "\n".join(lines)
