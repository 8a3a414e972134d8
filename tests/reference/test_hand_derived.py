"""Hand-derived trajectories for EVERY preset of the reference.

Each expected trajectory below is re-derived from the published algorithm as written in
the spec pages (spec/*.md, which quote the framework source lines) or the paper, in plain Python floats,
element by element -- never by calling the reference. The reference is only run once per case, to be
compared with the derivation. Where the first step has a tractable closed value it is also written out
as literal numbers (a check on the derivation code itself).

Common tiny input: w0 = [1.0, -2.0] and the gradients GRADS (3 steps; RAdam uses 7 to reach its
rectified branch). Hyper-parameters are chosen to make every knob visible: beta1 = 0.5, beta2 = 0.75,
eps = 1e-3 (large enough that eps placement changes the 3rd digit), wd = 0.1, and an lr sequence where
the scaling of decay / momentum by lr_t matters.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from optconform.reference import rules, trajectory

W0 = [1.0, -2.0]
GRADS = [[0.5, -1.0], [1.0, 0.5], [-0.25, 2.0]]
GRADS7 = GRADS + [[0.75, -0.5], [-1.0, 1.0], [0.25, -0.75], [2.0, 0.5]]
LR = 0.1
LR_SEQ = [0.1, 0.2, 0.05]          # lr_t for t = 1, 2, 3
WD = 0.1
B1, B2, EPS = 0.5, 0.75, 1e-3
ADAM_HP = dict(beta1=B1, beta2=B2, eps=EPS)


def sign(x: float) -> float:
    return (x > 0) - (x < 0)


def norm(xs) -> float:
    return math.sqrt(sum(x * x for x in xs))


# --------------------------------------------------------------------------------------------------
# SGD family (semantics.md §1 torch SGD, §2 Keras SGD, §4 MXNet SGDMomKernel)
# --------------------------------------------------------------------------------------------------

def exp_sgd():
    # torch SGD(momentum=0), sgd.py:346-379: g' = g + wd*w (coupled L2); w <- w - lr*g'
    # step 1 by hand: g' = [0.5 + 0.1*1, -1 + 0.1*(-2)] = [0.6, -1.2]; w1 = [1 - 0.06, -2 + 0.12]
    out, w = [], list(W0)
    for g in GRADS:
        w = [wi - LR * (gi + WD * wi) for wi, gi in zip(w, g)]
        out.append(w)
    assert out[0] == pytest.approx([0.94, -1.88])
    return out


def exp_sgd_momentum(nesterov=False, dampening=0.5, mu=0.9):
    # torch SGD(momentum>0), sgd.py:346-379:
    #   g' = g + wd*w                                    (coupled, enters the buffer)
    #   b_1 = g' (no dampening on the first step);  b_t = mu*b + (1 - dampening)*g'
    #   d = g' + mu*b (nesterov) else b;  w <- w - lr_t*d   (lr OUTSIDE the buffer)
    out, w, b = [], list(W0), None
    for t, (g, lr) in enumerate(zip(GRADS, LR_SEQ), start=1):
        gp = [gi + WD * wi for wi, gi in zip(w, g)]
        b = list(gp) if t == 1 else [mu * bi + (1 - dampening) * gi for bi, gi in zip(b, gp)]
        d = [gi + mu * bi for gi, bi in zip(gp, b)] if nesterov else b
        w = [wi - lr * di for wi, di in zip(w, d)]
        out.append(w)
    # step 1 by hand: g' = [0.6, -1.2]; b1 = g'; w1 = w0 - 0.1*[0.6, -1.2] (or with nesterov
    # d = g' + 0.9*g' = 1.9*g')
    assert out[0] == pytest.approx([1 - 0.1 * 0.6 * (1.9 if nesterov else 1), -2 + 0.1 * 1.2 * (1.9 if nesterov else 1)])
    return out


def exp_sgd_momentum_inside(nesterov=False, mu=0.9):
    # Keras SGD (sgd.py:105-123) / MXNet SGDMomKernel (600-615) / cs231n, with coupled L2 as MXNet:
    #   g' = g + wd*w;  v <- mu*v - lr_t*g'  (v_0 = 0, lr INSIDE the velocity)
    #   w <- w + mu*v - lr_t*g' (nesterov, Keras 113-119)  else  w <- w + v
    out, w, v = [], list(W0), [0.0, 0.0]
    for g, lr in zip(GRADS, LR_SEQ):
        gp = [gi + WD * wi for wi, gi in zip(w, g)]
        v = [mu * vi - lr * gi for vi, gi in zip(v, gp)]
        if nesterov:
            w = [wi + mu * vi - lr * gi for wi, vi, gi in zip(w, v, gp)]
        else:
            w = [wi + vi for wi, vi in zip(w, v)]
        out.append(w)
    return out


# --------------------------------------------------------------------------------------------------
# AdaGrad (§1 torch adagrad.py:395-426; §2 Keras adagrad.py:85-92; §3 optax scale_by_rss)
# --------------------------------------------------------------------------------------------------

def exp_adagrad(lr_decay=0.5, acc0=0.1, eps=EPS):
    # torch: clr = lr/(1 + (t-1)*lr_decay); g' = g + wd*w; sum <- sum + g'^2 (sum_0 = acc0);
    #        w <- w - clr * g'/(sqrt(sum) + eps)           (eps OUTSIDE the root)
    out, w, s = [], list(W0), [acc0, acc0]
    for t, g in enumerate(GRADS, start=1):
        clr = LR / (1 + (t - 1) * lr_decay)
        gp = [gi + WD * wi for wi, gi in zip(w, g)]
        s = [si + gi * gi for si, gi in zip(s, gp)]
        w = [wi - clr * gi / (math.sqrt(si) + eps) for wi, gi, si in zip(w, gp, s)]
        out.append(w)
    # step 1: g' = [0.6, -1.2], sum = [0.1 + 0.36, 0.1 + 1.44] = [0.46, 1.54]
    assert out[0] == pytest.approx([1 - 0.1 * 0.6 / (math.sqrt(0.46) + eps), -2 + 0.1 * 1.2 / (math.sqrt(1.54) + eps)])
    return out


def exp_adagrad_eps_inside(acc0=0.1, eps=EPS):
    # Keras/optax: sum <- sum + g'^2 (sum_0 = acc0); w <- w - lr*g'/sqrt(sum + eps)  (eps INSIDE)
    # (coupled decay as the preset: g' = g + wd*w)
    out, w, s = [], list(W0), [acc0, acc0]
    for g in GRADS:
        gp = [gi + WD * wi for wi, gi in zip(w, g)]
        s = [si + gi * gi for si, gi in zip(s, gp)]
        w = [wi - LR * gi / math.sqrt(si + eps) for wi, gi, si in zip(w, gp, s)]
        out.append(w)
    assert out[0] == pytest.approx([1 - 0.1 * 0.6 / math.sqrt(0.46 + eps), -2 + 0.1 * 1.2 / math.sqrt(1.54 + eps)])
    return out


# --------------------------------------------------------------------------------------------------
# RMSprop (§1 torch rmsprop.py:307-339; §2 Keras rmsprop.py:126-152)
# --------------------------------------------------------------------------------------------------
RHO = 0.5


def exp_rmsprop(centered=False):
    # torch: g' = g + wd*w; v <- rho*v + (1-rho)*g'^2;
    #   centered: gbar <- rho*gbar + (1-rho)*g', avg = sqrt(v - gbar^2); else avg = sqrt(v)
    #   avg <- avg + eps (eps OUTSIDE); w <- w - lr*g'/avg
    out, w, v, gbar = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for g in GRADS:
        gp = [gi + WD * wi for wi, gi in zip(w, g)]
        v = [RHO * vi + (1 - RHO) * gi * gi for vi, gi in zip(v, gp)]
        if centered:
            gbar = [RHO * a + (1 - RHO) * gi for a, gi in zip(gbar, gp)]
            avg = [math.sqrt(vi - a * a) + EPS for vi, a in zip(v, gbar)]
        else:
            avg = [math.sqrt(vi) + EPS for vi in v]
        w = [wi - LR * gi / ai for wi, gi, ai in zip(w, gp, avg)]
        out.append(w)
    if not centered:
        # step 1: v = 0.5*g'^2, sqrt(v) = |g'|/sqrt(2): w1 = w0 - 0.1*g'/(|g'|/sqrt(2) + eps)
        assert out[0] == pytest.approx([1 - 0.1 * 0.6 / (0.6 / math.sqrt(2) + EPS), -2 + 0.1 * 1.2 / (1.2 / math.sqrt(2) + EPS)])
    return out


def exp_rmsprop_momentum(mu=0.9):
    # torch momentum>0 (rmsprop.py:332-337): b <- mu*b + g'/(sqrt(v)+eps) (b_0 = 0); w <- w - lr_t*b
    out, w, v, b = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for g, lr in zip(GRADS, LR_SEQ):
        gp = [gi + WD * wi for wi, gi in zip(w, g)]
        v = [RHO * vi + (1 - RHO) * gi * gi for vi, gi in zip(v, gp)]
        b = [mu * bi + gi / (math.sqrt(vi) + EPS) for bi, gi, vi in zip(b, gp, v)]
        w = [wi - lr * bi for wi, bi in zip(w, b)]
        out.append(w)
    return out


def exp_rmsprop_eps_inside():
    # Keras/optax/MXNet (eps INSIDE the root), coupled decay as the preset:
    #   g' = g + wd*w; v <- rho*v + (1-rho)*g'^2; w <- w - lr*g'/sqrt(v + eps)
    out, w, v = [], list(W0), [0.0, 0.0]
    for g in GRADS:
        gp = [gi + WD * wi for wi, gi in zip(w, g)]
        v = [RHO * vi + (1 - RHO) * gi * gi for vi, gi in zip(v, gp)]
        w = [wi - LR * gi / math.sqrt(vi + EPS) for wi, gi, vi in zip(w, gp, v)]
        out.append(w)
    assert out[0] == pytest.approx([1 - 0.1 * 0.6 / math.sqrt(0.18 + EPS), -2 + 0.1 * 1.2 / math.sqrt(0.72 + EPS)])
    return out


def exp_rmsprop_eps_inside_momentum(mu=0.9):
    # Keras RMSprop(momentum) (rmsprop.py:144-152): inc = lr_t*g/sqrt(v + eps); mom <- mu*mom + inc;
    # w <- w - mom  (lr INSIDE the buffer; here with the preset's coupled decay)
    out, w, v, mom = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for g, lr in zip(GRADS, LR_SEQ):
        gp = [gi + WD * wi for wi, gi in zip(w, g)]
        v = [RHO * vi + (1 - RHO) * gi * gi for vi, gi in zip(v, gp)]
        mom = [mu * mi + lr * gi / math.sqrt(vi + EPS) for mi, gi, vi in zip(mom, gp, v)]
        w = [wi - mi for wi, mi in zip(w, mom)]
        out.append(w)
    return out


# --------------------------------------------------------------------------------------------------
# Adam family (Kingma & Ba Alg. 1; §1 torch adam.py; §2 Keras; §3 optax; §4 MXNet; §5 BERT; §6 L&H)
# --------------------------------------------------------------------------------------------------

def _moments(m, v, g):
    # m <- b1*m + (1-b1)*g ; v <- b2*v + (1-b2)*g^2
    return ([B1 * mi + (1 - B1) * gi for mi, gi in zip(m, g)],
            [B2 * vi + (1 - B2) * gi * gi for vi, gi in zip(v, g)])


def exp_adam():
    # Kingma & Ba Alg. 1 / torch Adam: m_hat = m/bc1, v_hat = v/bc2;
    #   w <- w - lr * m_hat/(sqrt(v_hat) + eps)                 (eps on the corrected root)
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS, start=1):
        m, v = _moments(m, v, g)
        bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
        w = [wi - LR * (mi / bc1) / (math.sqrt(vi / bc2) + EPS) for wi, mi, vi in zip(w, m, v)]
        out.append(w)
    # step 1: m_hat = g, v_hat = g^2: w1 = w0 - lr*g/(|g| + eps)
    assert out[0] == pytest.approx([1 - 0.1 * 0.5 / 0.501, -2 + 0.1 * 1.0 / 1.001])
    return out


def exp_adam_l2():
    # torch Adam(weight_decay) adam.py:416-428: g' = g + wd*w (pre-step w), then Adam on g'
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS, start=1):
        gp = [gi + WD * wi for wi, gi in zip(w, g)]
        m, v = _moments(m, v, gp)
        bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
        w = [wi - LR * (mi / bc1) / (math.sqrt(vi / bc2) + EPS) for wi, mi, vi in zip(w, m, v)]
        out.append(w)
    assert out[0] == pytest.approx([1 - 0.1 * 0.6 / 0.601, -2 + 0.1 * 1.2 / 1.201])
    return out


def exp_adamw():
    # torch AdamW adam.py:416-428: w <- w*(1 - lr_t*wd) on the pre-step weight, then Adam on raw g
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, (g, lr) in enumerate(zip(GRADS, LR_SEQ), start=1):
        w = [wi * (1 - lr * WD) for wi in w]
        m, v = _moments(m, v, g)
        bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
        w = [wi - lr * (mi / bc1) / (math.sqrt(vi / bc2) + EPS) for wi, mi, vi in zip(w, m, v)]
        out.append(w)
    assert out[0] == pytest.approx([0.99 - 0.1 * 0.5 / 0.501, -1.98 + 0.1 * 1.0 / 1.001])
    return out


ETA_SEQ = [1.0, 0.5, 0.25]


def exp_adamw_paper():
    # Loshchilov & Hutter Alg. 2 (§6): theta <- theta - eta_t*(alpha*m_hat/(sqrt(v_hat)+eps) + lambda*theta)
    # alpha = lr never multiplies lambda = wd.
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, (g, eta) in enumerate(zip(GRADS, ETA_SEQ), start=1):
        m, v = _moments(m, v, g)
        bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
        w = [wi - eta * (LR * (mi / bc1) / (math.sqrt(vi / bc2) + EPS) + WD * wi) for wi, mi, vi in zip(w, m, v)]
        out.append(w)
    # step 1 (eta = 1): w1 = w0 - (0.1*g/(|g|+eps) + 0.1*w0) = [0.9 - 0.05/0.501, -1.8 + 0.1/1.001]
    assert out[0] == pytest.approx([0.9 - 0.05 / 0.501, -1.8 + 0.1 / 1.001])
    return out


def _keras_adam_step(w, m, v, t, lr, eps):
    # Keras adam.py:117-137 (eps-hat): alpha = lr*sqrt(1-b2^t)/(1-b1^t); w <- w - alpha*m/(sqrt(v)+eps)
    alpha = lr * math.sqrt(1 - B2 ** t) / (1 - B1 ** t)
    return [wi - alpha * mi / (math.sqrt(vi) + eps) for wi, mi, vi in zip(w, m, v)]


def exp_adam_eps_hat():
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS, start=1):
        m, v = _moments(m, v, g)
        w = _keras_adam_step(w, m, v, t, LR, EPS)
        out.append(w)
    # step 1: alpha = 0.1*sqrt(0.25)/0.5 = 0.1; m = 0.5*g, sqrt(v) = 0.5*|g|:
    #   w1 = w0 - 0.1*0.5*g/(0.5*|g| + eps)
    assert out[0] == pytest.approx([1 - 0.1 * 0.25 / (0.25 + EPS), -2 + 0.1 * 0.5 / (0.5 + EPS)])
    return out


def exp_adamw_eps_hat():
    # Keras AdamW: base-class decay first, w <- w - w*wd*lr_t (TF optimizer.py:89-111), then Keras Adam
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, (g, lr) in enumerate(zip(GRADS, LR_SEQ), start=1):
        w = [wi - wi * WD * lr for wi in w]
        m, v = _moments(m, v, g)
        w = _keras_adam_step(w, m, v, t, lr, EPS)
        out.append(w)
    return out


def exp_bert_adamw():
    # google-research/bert optimization.py:137-151: no bias correction;
    #   u = m/(sqrt(v) + eps); u <- u + wd*w (name not excluded); w <- w - lr_t*u
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for g, lr in zip(GRADS, LR_SEQ):
        m, v = _moments(m, v, g)
        u = [mi / (math.sqrt(vi) + EPS) + WD * wi for wi, mi, vi in zip(w, m, v)]
        w = [wi - lr * ui for wi, ui in zip(w, u)]
        out.append(w)
    # step 1: m = 0.5*g, sqrt(v) = 0.5*|g|: u = 0.25/(0.25+eps) + 0.1*1 for element 0
    assert out[0] == pytest.approx([1 - 0.1 * (0.25 / 0.251 + 0.1), -2 - 0.1 * (-0.5 / 0.501 - 0.2)])
    return out


RESCALE, CLIP = 2.0, 1.5


def exp_mxnet_adam():
    # MXNet Adam (§4, AdamUpdateKernel 1292-1313): g' = clip(rescale*g + wd*w, -c, c) (wd INSIDE clip);
    #   m, v on g'; lr_t = lr*sqrt(1-b2^t)/(1-b1^t); w <- w - lr_t*m/(sqrt(v)+eps)
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS, start=1):
        gp = [min(max(RESCALE * gi + WD * wi, -CLIP), CLIP) for wi, gi in zip(w, g)]
        m, v = _moments(m, v, gp)
        w = _keras_adam_step(w, m, v, t, LR, EPS)
        out.append(w)
    # step 1: 2*g + 0.1*w = [1.1, -2.2] -> clipped [1.1, -1.5]
    assert out[0] == pytest.approx([1 - 0.1 * 0.55 / (0.55 + EPS), -2 + 0.1 * 0.75 / (0.75 + EPS)])
    return out


def exp_mxnet_v07_adam():
    # MXNet v0.7.0 Adam.update (§4 History, optimizer.py:558-600): g *= rescale; clip(g, c); m, v;
    #   lr_t = lr*sqrt(1-b2^t)/(1-b1^t); w <- w - lr_t*m/(sqrt(v)+eps); THEN w <- w - lr_t*wd*w
    #   (post-step weight, bias-corrected lr)
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS, start=1):
        gp = [min(max(RESCALE * gi, -CLIP), CLIP) for gi in g]
        m, v = _moments(m, v, gp)
        lr_t = LR * math.sqrt(1 - B2 ** t) / (1 - B1 ** t)
        w = [wi - lr_t * mi / (math.sqrt(vi) + EPS) for wi, mi, vi in zip(w, m, v)]
        w = [wi - lr_t * WD * wi for wi in w]
        out.append(w)
    # step 1: g' = [1.0, -1.5]; lr_1 = 0.1; w' = [1 - 0.1*0.5/(0.5+eps), -2 + 0.1*0.75/(0.75+eps)]; w1 = 0.99*w'
    assert out[0] == pytest.approx([0.99 * (1 - 0.05 / 0.501), 0.99 * (-2 + 0.075 / 0.751)])
    return out


def exp_transformers_adamw():
    # transformers 4.49 AdamW (§5, optimization.py:697-716): step = lr*sqrt(bc2)/bc1;
    #   w <- w - step*m/(sqrt(v)+eps); THEN w <- w - lr*wd*w on the updated weight (plain lr)
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, (g, lr) in enumerate(zip(GRADS, LR_SEQ), start=1):
        m, v = _moments(m, v, g)
        w = _keras_adam_step(w, m, v, t, lr, EPS)
        w = [wi - lr * WD * wi for wi in w]
        out.append(w)
    return out


def exp_amsgrad(decoupled=False):
    # torch Adam(amsgrad=True) adam.py:539-546: vmax <- max(vmax, v) on RAW v;
    #   denom = sqrt(vmax)/sqrt(bc2) + eps; w <- w - (lr_t/bc1)*m/denom
    # torch AdamW(amsgrad=True) (decoupled): first w <- w*(1 - lr_t*wd) (adam.py:416-428)
    out, w, m, v, vmax = [], list(W0), [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    lrs = LR_SEQ if decoupled else [LR] * len(GRADS)
    for t, (g, lr) in enumerate(zip(GRADS, lrs), start=1):
        if decoupled:
            w = [wi * (1 - lr * WD) for wi in w]
        m, v = _moments(m, v, g)
        vmax = [max(a, b) for a, b in zip(vmax, v)]
        bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
        w = [wi - (lr / bc1) * mi / (math.sqrt(vm) / math.sqrt(bc2) + EPS) for wi, mi, vm in zip(w, m, vmax)]
        out.append(w)
    return out


def exp_amsgrad_corrected():
    # optax amsgrad transform.py:378: v_hat = v/bc2; vmax <- max(vmax, v_hat) (CORRECTED v);
    #   w <- w - lr*m_hat/(sqrt(vmax) + eps)
    # (element 1: raw v = 0.25, 0.25 at t = 1, 2 but v_hat = 1.0, 0.571: the two maxima differ at t = 2)
    out, w, m, v, vmax = [], list(W0), [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS, start=1):
        m, v = _moments(m, v, g)
        bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
        vmax = [max(a, vi / bc2) for a, vi in zip(vmax, v)]
        w = [wi - LR * (mi / bc1) / (math.sqrt(vm) + EPS) for wi, mi, vm in zip(w, m, vmax)]
        out.append(w)
    return out


def exp_lamb(bias_correction=True):
    # You et al. 2020 Alg. 2 / optax lamb / ALBERT (bias_correction False):
    #   r = m_hat/(sqrt(v_hat)+eps) + wd*w; ratio = ||w||/||r|| (1 if a norm is 0); w <- w - lr*ratio*r
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS, start=1):
        m, v = _moments(m, v, g)
        bc1, bc2 = (1 - B1 ** t, 1 - B2 ** t) if bias_correction else (1.0, 1.0)
        r = [(mi / bc1) / (math.sqrt(vi / bc2) + EPS) + WD * wi for wi, mi, vi in zip(w, m, v)]
        nw, nr = norm(w), norm(r)
        ratio = nw / nr if nw > 0 and nr > 0 else 1.0
        w = [wi - LR * ratio * ri for wi, ri in zip(w, r)]
        out.append(w)
    if bias_correction:
        # step 1: r = g/(|g|+eps) + 0.1*w0 = [0.5/0.501 + 0.1, -1/1.001 - 0.2]
        r = [0.5 / 0.501 + 0.1, -1 / 1.001 - 0.2]
        ratio = math.sqrt(5) / math.hypot(*r)
        assert out[0] == pytest.approx([1 - 0.1 * ratio * r[0], -2 - 0.1 * ratio * r[1]])
    return out


def exp_lamb_decay_outside():
    # Keras Lamb (lamb.py:116-132 + base-class decay): w' = w - w*wd*lr first;
    #   r = m_hat/(sqrt(v_hat)+eps) (no wd); ratio = ||w'||/||r||; w <- w' - lr*ratio*r
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS, start=1):
        w = [wi - wi * WD * LR for wi in w]
        m, v = _moments(m, v, g)
        bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
        r = [(mi / bc1) / (math.sqrt(vi / bc2) + EPS) for mi, vi in zip(m, v)]
        nw, nr = norm(w), norm(r)
        ratio = nw / nr if nw > 0 and nr > 0 else 1.0
        w = [wi - LR * ratio * ri for wi, ri in zip(w, r)]
        out.append(w)
    return out


PSI = 1.0   # momentum_decay (Keras Nadam's schedule 0.96^t, §2)


def exp_nadam(decoupled=False):
    # torch NAdam nadam.py:339-378 (coupled; decoupled_weight_decay=True: w <- w*(1 - lr*wd), g' = g):
    #   g' = g + wd*w; mu_t = b1*(1 - 0.5*0.96^(t*psi)); mu_{t+1} likewise; prod <- prod*mu_t
    #   m <- b1*m + (1-b1)*g'; v <- b2*v + (1-b2)*g'^2; denom = sqrt(v/bc2) + eps
    #   w <- w - lr*(1-mu_t)/(1-prod) * g'/denom - lr*mu_{t+1}/(1-prod*mu_{t+1}) * m/denom
    out, w, m, v, prod = [], list(W0), [0.0, 0.0], [0.0, 0.0], 1.0
    for t, g in enumerate(GRADS, start=1):
        mu_t = B1 * (1 - 0.5 * 0.96 ** (t * PSI))
        mu_n = B1 * (1 - 0.5 * 0.96 ** ((t + 1) * PSI))
        prod *= mu_t
        if decoupled:
            w = [wi * (1 - LR * WD) for wi in w]
            gp = list(g)
        else:
            gp = [gi + WD * wi for wi, gi in zip(w, g)]
        m, v = _moments(m, v, gp)
        bc2 = 1 - B2 ** t
        den = [math.sqrt(vi / bc2) + EPS for vi in v]
        w = [wi - LR * (1 - mu_t) / (1 - prod) * gi / di - LR * mu_n / (1 - prod * mu_n) * mi / di
             for wi, gi, mi, di in zip(w, gp, m, den)]
        out.append(w)
    return out


def exp_nadam_no_schedule():
    # optax scale_by_adam(nesterov=True) transform.py:286-300:
    #   mu_hat = b1*m/(1 - b1^(t+1)) + (1-b1)*g/(1 - b1^t); nu_hat = v/bc2; w <- w - lr*mu_hat/(sqrt(nu_hat)+eps)
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS, start=1):
        m, v = _moments(m, v, g)
        mu_hat = [B1 * mi / (1 - B1 ** (t + 1)) + (1 - B1) * gi / (1 - B1 ** t) for mi, gi in zip(m, g)]
        w = [wi - LR * mh / (math.sqrt(vi / (1 - B2 ** t)) + EPS) for wi, mh, vi in zip(w, mu_hat, v)]
        out.append(w)
    # step 1: m = 0.5*g; mu_hat = 0.5*0.5*g/0.75 + 0.5*g/0.5 = (4/3)*g; nu_hat = g^2
    assert out[0] == pytest.approx([1 - 0.1 * (2 / 3) / 0.501, -2 + 0.1 * (4 / 3) / 1.001])
    return out


RADAM_B2 = 0.9   # rho_inf = 19; rho_t > 5 first at t = 6 (rho_5 ~ 4.58, rho_6 ~ 5.39)


def _radam(eps_hat: bool, wd: float, threshold_inclusive: bool, decoupled: bool = False):
    # Liu et al. 2020 / torch radam.py:304-358 / optax transform.py:813-889:
    #   g' = g + wd*w (torch, coupled; decoupled_weight_decay=True: w <- w*(1 - lr*wd), g' = g)
    #   m, v; m_hat = m/bc1
    #   rho_inf = 2/(1-b2) - 1; rho_t = rho_inf - 2*t*b2^t/bc2
    #   rectified (torch rho_t > 5; optax rho_t >= 5):
    #     r_t = sqrt((rho_t-4)(rho_t-2)rho_inf/((rho_inf-4)(rho_inf-2)rho_t))
    #     torch: w <- w - lr*m_hat*r_t*sqrt(bc2)/(sqrt(v)+eps)        (eps on the RAW root)
    #     optax: w <- w - lr*r_t*m_hat/(sqrt(v/bc2)+eps)             (eps on the corrected root)
    #   else: w <- w - lr*m_hat
    b2 = RADAM_B2
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(GRADS7, start=1):
        if decoupled:
            w = [wi * (1 - LR * wd) for wi in w]
            gp = list(g)
        else:
            gp = [gi + wd * wi for wi, gi in zip(w, g)]
        m = [B1 * mi + (1 - B1) * gi for mi, gi in zip(m, gp)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, gp)]
        bc1, bc2 = 1 - B1 ** t, 1 - b2 ** t
        rho_t = rho_inf - 2 * t * b2 ** t / bc2
        rectified = rho_t >= 5 if threshold_inclusive else rho_t > 5
        if rectified:
            r_t = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            if eps_hat:
                w = [wi - LR * (mi / bc1) * r_t * math.sqrt(bc2) / (math.sqrt(vi) + EPS) for wi, mi, vi in zip(w, m, v)]
            else:
                w = [wi - LR * r_t * (mi / bc1) / (math.sqrt(vi / bc2) + EPS) for wi, mi, vi in zip(w, m, v)]
        else:
            w = [wi - LR * mi / bc1 for wi, mi in zip(w, m)]
        out.append(w)
    # t = 1 is never rectified (rho_1 = 1): w1 = w0 - lr*g'  (decoupled: (1 - lr*wd)*w0 - lr*g)
    if decoupled:
        assert out[0] == pytest.approx([(1 - 0.1 * wd) - 0.05, -2 * (1 - 0.1 * wd) + 0.1])
    else:
        assert out[0] == pytest.approx([1 - 0.1 * (0.5 + wd), -2 + 0.1 * (1 + 2 * wd)])
    return out


def exp_radam():
    return _radam(eps_hat=True, wd=WD, threshold_inclusive=False)


def exp_radam_eps_outside():
    return _radam(eps_hat=False, wd=0.0, threshold_inclusive=True)


def exp_adamax():
    # torch Adamax adamax.py:268-303: g' = g + wd*w; m <- b1*m + (1-b1)*g';
    #   u <- max(b2*u, |g'| + eps) (eps inside the max); w <- w - (lr/bc1)*m/u
    out, w, m, u = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS, start=1):
        gp = [gi + WD * wi for wi, gi in zip(w, g)]
        m = [B1 * mi + (1 - B1) * gi for mi, gi in zip(m, gp)]
        u = [max(B2 * ui, abs(gi) + EPS) for ui, gi in zip(u, gp)]
        w = [wi - (LR / (1 - B1 ** t)) * mi / ui for wi, mi, ui in zip(w, m, u)]
        out.append(w)
    # step 1: m/bc1 = g'; u = |g'| + eps
    assert out[0] == pytest.approx([1 - 0.1 * 0.6 / 0.601, -2 + 0.1 * 1.2 / 1.201])
    return out


def exp_adamax_eps_outside():
    # Keras Adamax: m <- m + (g-m)(1-b1); u <- max(b2*u, |g|); w <- w - lr*m/((1-b1^t)*(u + eps))
    out, w, m, u = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS, start=1):
        m = [B1 * mi + (1 - B1) * gi for mi, gi in zip(m, g)]
        u = [max(B2 * ui, abs(gi)) for ui, gi in zip(u, g)]
        w = [wi - LR * mi / ((1 - B1 ** t) * (ui + EPS)) for wi, mi, ui in zip(w, m, u)]
        out.append(w)
    assert out[0] == pytest.approx([1 - 0.1 * 0.5 / 0.501, -2 + 0.1 * 1.0 / 1.001])
    return out


def exp_lion():
    # Chen et al. 2023 Alg. 2 / optax transform.py:471-487 + add_decayed_weights + lr:
    #   c = sign(b1*m + (1-b1)*g); w <- w - lr_t*(c + wd*w); m <- b2*m + (1-b2)*g
    out, w, m = [], list(W0), [0.0, 0.0]
    for g, lr in zip(GRADS, LR_SEQ):
        c = [sign(B1 * mi + (1 - B1) * gi) for mi, gi in zip(m, g)]
        w = [wi - lr * (ci + WD * wi) for wi, ci in zip(w, c)]
        m = [B2 * mi + (1 - B2) * gi for mi, gi in zip(m, g)]
        out.append(w)
    # step 1: c = sign(0.5*g) = [1, -1]; w1 = [1 - 0.1*(1 + 0.1), -2 - 0.1*(-1 - 0.2)] = [0.89, -1.88]
    assert out[0] == pytest.approx([0.89, -1.88])
    return out


def exp_adamw_lr_ratio():
    # composer decoupled_weight_decay.py DecoupledAdamW.adamw: decay_factor = lr_t/initial_lr (initial_lr =
    # the lr the optimizer was built with, lr_1 here); w <- w*(1 - decay_factor*wd), then Adam on raw g
    out, w, m, v = [], list(W0), [0.0, 0.0], [0.0, 0.0]
    for t, (g, lr) in enumerate(zip(GRADS, LR_SEQ), start=1):
        w = [wi * (1 - lr / LR_SEQ[0] * WD) for wi in w]
        m, v = _moments(m, v, g)
        bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
        w = [wi - lr * (mi / bc1) / (math.sqrt(vi / bc2) + EPS) for wi, mi, vi in zip(w, m, v)]
        out.append(w)
    # step 1: the ratio is 1, so the shrink is wd (not lr*wd): w1 = [0.9 - 0.1*0.5/0.501, -1.8 + 0.1*1/1.001]
    assert out[0] == pytest.approx([0.9 - 0.1 * 0.5 / 0.501, -1.8 + 0.1 * 1.0 / 1.001])
    return out


def exp_lion_lr_ratio():
    # llm-foundry lion.py DecoupledLionW.lionw: p *= 1 - (lr/initial_lr)*wd; p -= lr*sign(lerp(m, g, 1-b1))
    out, w, m = [], list(W0), [0.0, 0.0]
    for g, lr in zip(GRADS, LR_SEQ):
        c = [sign(B1 * mi + (1 - B1) * gi) for mi, gi in zip(m, g)]
        w = [wi * (1 - lr / LR_SEQ[0] * WD) - lr * ci for wi, ci in zip(w, c)]
        m = [B2 * mi + (1 - B2) * gi for mi, gi in zip(m, g)]
        out.append(w)
    # step 1: w1 = [1*0.9 - 0.1, -2*0.9 + 0.1] = [0.8, -1.7]
    assert out[0] == pytest.approx([0.8, -1.7])
    return out


# --------------------------------------------------------------------------------------------------
# Muon (spec/muon.md): matrices as lists of rows, pure-Python matrix products
# --------------------------------------------------------------------------------------------------

M_W0 = {"wide": [[1.0, -2.0, 0.5], [0.25, 1.0, -1.5]], "tall": [[0.5, 1.5], [-1.0, 0.75], [2.0, -0.25]],
        "bias": [0.5, -1.0, 2.0]}
M_GRADS = [
    # tiny first: ||look-ahead|| < eps = 1e-3, where max(||X||, eps) and ||X|| + eps differ most
    {"wide": [[1e-4, -2e-4, 5e-5], [-1e-4, 1e-4, 2e-4]], "tall": [[2e-4, -1e-4], [1e-4, 1e-4], [-5e-5, 2e-4]], "bias": [-0.25, 2.0, 1.0]},
    {"wide": [[0.5, -1.0, 0.25], [1.0, 0.5, -0.5]], "tall": [[0.25, 1.0], [-0.5, 0.5], [1.0, -2.0]], "bias": [0.5, -1.0, 0.25]},
    {"wide": [[-0.25, 0.75, 1.0], [0.5, -1.0, 0.25]], "tall": [[1.0, -0.5], [0.25, 0.25], [-0.75, 1.0]], "bias": [1.0, 0.5, -2.0]},
]
M_MU, M_EPS, M_STEPS = 0.5, 1e-3, 3
M_HP = dict(lr=LR_SEQ, weight_decay=WD, momentum=M_MU, eps=M_EPS, ns_steps=M_STEPS)
NS_A, NS_B, NS_C = 3.4445, -4.7750, 2.0315


def mat_t(x):
    return [list(col) for col in zip(*x)]


def mat_mul(x, y):
    return [[sum(a * b for a, b in zip(row, col)) for col in zip(*y)] for row in x]


def mat_lin(p, x, q, y):
    """p*x + q*y elementwise."""
    return [[p * a + q * b for a, b in zip(rx, ry)] for rx, ry in zip(x, y)]


def newton_schulz_by_hand(g, eps, clamp, steps=M_STEPS):
    # torch _muon.py:31-70 / Keras muon.py:260-291 / optax _muon.py:239-363: transpose a tall matrix,
    # X = G/max(||G||, eps) (torch) or G/(||G|| + eps) (Keras, optax), then A = X X^T, B = b*A + c*A@A,
    # X = a*X + B@X, `steps` times; transpose back
    tall = len(g) > len(g[0])
    x = mat_t(g) if tall else [list(r) for r in g]
    norm = math.sqrt(sum(v * v for r in x for v in r))
    scale = max(norm, eps) if clamp else norm + eps
    x = [[v / scale for v in r] for r in x]
    for _ in range(steps):
        a = mat_mul(x, mat_t(x))
        b = mat_lin(NS_B, a, NS_C, mat_mul(a, a))
        x = mat_lin(NS_A, x, 1.0, mat_mul(b, x))
    return mat_t(x) if tall else x


def _muon_by_hand(buffer, bias_corrected, clamp, factor, non_matrix, wd_adam=0.05, rate=0.2):
    """One loop for the three presets; `factor(rows, cols)` is the shape scaling."""
    w = {k: [list(r) for r in v] if k != "bias" else list(v) for k, v in M_W0.items()}
    buf = {k: [[0.0] * len(w[k][0]) for _ in w[k]] for k in ("wide", "tall")}
    m, v = [0.0] * 3, [0.0] * 3
    out = []
    for t, (g, lr) in enumerate(zip(M_GRADS, LR_SEQ), start=1):
        for k in ("wide", "tall"):
            rows, cols = len(w[k]), len(w[k][0])
            keep = 1.0 - M_MU if buffer == "ema" else 1.0
            buf[k] = mat_lin(M_MU, buf[k], keep, g[k])                              # b <- mu*b + keep*g
            if bias_corrected:                                                       # optax _muon.py:486-497
                look = mat_lin(M_MU / (1 - M_MU ** (t + 1)), buf[k], (1 - M_MU) / (1 - M_MU ** t), g[k])
            else:                                                                    # torch lerp / Keras g + mu*m
                look = mat_lin(keep, g[k], M_MU, buf[k])
            o = newton_schulz_by_hand(look, M_EPS, clamp)
            shrunk = [[x * (1 - lr * WD) for x in r] for r in w[k]]                  # decay x lr, before
            w[k] = mat_lin(1.0, shrunk, -lr * factor(rows, cols), o)
        gb = g["bias"]
        if non_matrix == "adamw_eps_hat":                                            # Keras muon.py:208-236
            m = [B1 * mi + (1 - B1) * gi for mi, gi in zip(m, gb)]
            v = [B2 * vi + (1 - B2) * gi * gi for vi, gi in zip(v, gb)]
            alpha = lr * math.sqrt(1 - B2 ** t) / (1 - B1 ** t)
            w["bias"] = [wi * (1 - lr * wd_adam) - alpha * mi / (math.sqrt(vi) + EPS)
                         for wi, mi, vi in zip(w["bias"], m, v)]
        elif non_matrix == "adamw_nesterov":                                         # optax adamw(nesterov=True)
            m = [B1 * mi + (1 - B1) * gi for mi, gi in zip(m, gb)]
            v = [B2 * vi + (1 - B2) * gi * gi for vi, gi in zip(v, gb)]
            m_bar = [B1 * mi / (1 - B1 ** (t + 1)) + (1 - B1) * gi / (1 - B1 ** t) for mi, gi in zip(m, gb)]
            w["bias"] = [wi - lr * (mb / (math.sqrt(vi / (1 - B2 ** t)) + M_EPS) + wd_adam * wi)
                         for wi, mb, vi in zip(w["bias"], m_bar, v)]
        out.append({k: [list(r) for r in val] if k != "bias" else list(val) for k, val in w.items()})
    return out


def exp_muon():
    # torch.optim.Muon: EMA, lerp look-ahead, max(||X||, eps), sqrt(max(1, rows/cols)); non-2-D untouched
    return _muon_by_hand("ema", False, True, lambda r, c: math.sqrt(max(1.0, r / c)), "none")


def exp_keras_muon():
    # keras.optimizers.Muon: m <- mu*m + g, g + mu*m, ||X|| + eps, 0.2*sqrt(max(r, c)); eps-hat AdamW
    return _muon_by_hand("sum", False, False, lambda r, c: 0.2 * math.sqrt(max(r, c)), "adamw_eps_hat")


def exp_optax_muon():
    # optax.contrib.muon: bias-corrected EMA, NAdam look-ahead, ||X|| + eps, sqrt(max(1, c/r)); adamw(nesterov)
    return _muon_by_hand("ema", True, False, lambda r, c: math.sqrt(max(1.0, c / r)), "adamw_nesterov")


# --------------------------------------------------------------------------------------------------
# Adafactor (spec/adafactor.md): a 2 x 3 matrix (factored) and a vector (not), no first moment
# --------------------------------------------------------------------------------------------------

A_W0 = {"m": [[1.0, -2.0, 0.5], [0.25, 1.0, -1.5]], "b": [0.5, -1.0, 2.0]}
A_GRADS = [{"m": [[0.5, -1.0, 0.0], [1.0, 0.5, -0.5]], "b": [0.5, 0.0, 0.25]},
           {"m": [[-0.25, 0.75, 1.0], [0.5, -1.0, 0.25]], "b": [1.0, 0.5, -2.0]},
           {"m": [[2.0, 0.25, -0.5], [0.125, 0.5, 1.0]], "b": [-0.25, 2.0, 1.0]}]
A_LR = [0.8, 0.9, 0.7]          # 1/sqrt(t) = 1, 0.707, 0.577: the cap min(lr, 1/sqrt(t)) bites at t = 2, 3
A_B2D, A_EPS, A_EPS2, A_D = -0.8, 1e-3, 1e-3, 1.0
A_HP = dict(lr=A_LR, weight_decay=WD, beta2_decay=A_B2D, eps=A_EPS, eps2=A_EPS2, clip_threshold=A_D)


def _flat(x):
    return [v for r in x for v in r] if isinstance(x[0], list) else list(x)


def _rms_by_hand(x):
    xs = _flat(x)
    return math.sqrt(sum(v * v for v in xs) / len(xs))


def _scale_by_hand(x, c):
    return [[v * c for v in r] for r in x] if isinstance(x[0], list) else [v * c for v in x]


def _adafactor_by_hand(clamp, capped, scale_at, decay):
    # torch _adafactor.py:366-416 / Keras adafactor.py:144-205 / optax factorized.py:163-220 + alias.py:303-326:
    # beta_t = 1 - t^beta2_decay; R, C the EMA of the row / column means of s = g^2 (+ eps when not clamp);
    # V = R_i/mean(R) * C_j (mean clamped at eps, V at eps^2 when clamp); u = g/sqrt(V); u / max(1, RMS(u)/d);
    # w <- w - rho*max(eps2, RMS(w))*u with rho = min(lr, 1/sqrt(t)) or lr, RMS of the pre- or post-decay w;
    # the shrink s = lr*wd ("lr"), wd ("unscaled") or wd*rho*max(eps2, RMS(w_{t-1})) ("whole_step": transformers
    # optimization.py:948-949 at v4.49.0)
    w = {k: [list(r) for r in v] if k == "m" else list(v) for k, v in A_W0.items()}
    row, col, v = [0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
    out = []
    for t, (g, lr) in enumerate(zip(A_GRADS, A_LR), start=1):
        beta = 1.0 - t ** A_B2D
        pre = {k: max(A_EPS2, _rms_by_hand(x)) for k, x in w.items()}
        rho = min(lr, 1.0 / math.sqrt(t)) if capped else lr
        s = {k: {"lr": lr * WD, "unscaled": WD, "whole_step": WD * rho * pre[k]}[decay] for k in w}
        w = {k: _scale_by_hand(x, 1.0 - s[k]) for k, x in w.items()}
        post = {k: max(A_EPS2, _rms_by_hand(x)) for k, x in w.items()}
        scale = {"pre": pre, "post": post, "none": {k: 1.0 for k in w}}[scale_at]
        sq = [[x * x + (0.0 if clamp else A_EPS) for x in r] for r in g["m"]]
        row = [beta * ri + (1 - beta) * sum(r) / 3 for ri, r in zip(row, sq)]
        col = [beta * cj + (1 - beta) * (sq[0][j] + sq[1][j]) / 2 for j, cj in enumerate(col)]
        mean_r = sum(row) / 2
        if clamp:
            mean_r = max(mean_r, A_EPS)
        vm = [[row[i] / mean_r * col[j] for j in range(3)] for i in range(2)]
        v = [beta * vi + (1 - beta) * (x * x + (0.0 if clamp else A_EPS)) for vi, x in zip(v, g["b"])]
        vb = list(v)
        if clamp:
            vm = [[max(x, A_EPS ** 2) for x in r] for r in vm]
            vb = [max(x, A_EPS ** 2) for x in vb]
        um = [[gx / math.sqrt(vx) for gx, vx in zip(gr, vr)] for gr, vr in zip(g["m"], vm)]
        ub = [gx / math.sqrt(vx) for gx, vx in zip(g["b"], vb)]
        um = _scale_by_hand(um, 1.0 / max(1.0, _rms_by_hand(um) / A_D))
        ub = _scale_by_hand(ub, 1.0 / max(1.0, _rms_by_hand(ub) / A_D))
        w = {"m": [[wx - rho * scale["m"] * ux for wx, ux in zip(wr, ur)] for wr, ur in zip(w["m"], um)],
             "b": [wx - rho * scale["b"] * ux for wx, ux in zip(w["b"], ub)]}
        out.append({"m": [list(r) for r in w["m"]], "b": list(w["b"])})
    return out


def exp_adafactor():
    # torch.optim.Adafactor: clamp form, capped step, RMS of the pre-decay w, decay x lr
    return _adafactor_by_hand(clamp=True, capped=True, scale_at="pre", decay="lr")


def exp_keras_adafactor():
    # keras.optimizers.Adafactor: g^2 + eps, capped step, RMS of the already decayed w, decay x lr
    return _adafactor_by_hand(clamp=False, capped=True, scale_at="post", decay="lr")


def exp_optax_adafactor():
    # optax.adafactor (factoring this 2 x 3 matrix: min_dim_size_to_factor = 1): g^2 + eps, step lr (no cap),
    # RMS of the pre-update w, weight_decay_rate unscaled (w*wd added to the update)
    return _adafactor_by_hand(clamp=False, capped=False, scale_at="pre", decay="unscaled")


def exp_transformers_adafactor():
    # transformers.optimization.Adafactor(relative_step=False): g^2 + eps, step lr (no cap), RMS of the pre-update
    # w, and the decay's alpha the whole step lr*max(eps2, RMS(w_{t-1}))
    return _adafactor_by_hand(clamp=False, capped=False, scale_at="pre", decay="whole_step")


def test_adafactor_hand_case_reaches_the_cap_and_clamps():
    """The cap min(lr, 1/sqrt(t)) is below lr at t = 2, 3; a zero gradient element meets the clamp."""
    assert all(min(lr, 1 / math.sqrt(t)) < lr for t, lr in ((2, A_LR[1]), (3, A_LR[2])))
    assert A_GRADS[0]["m"][0][2] == 0.0 and A_GRADS[0]["b"][1] == 0.0


_ADAM_FALLBACK = dict(adam_beta1=B1, adam_beta2=B2, adam_weight_decay=0.05)
MATRIX_CASES = [
    ("muon", "muon", M_HP, exp_muon),
    ("keras_muon", "keras_muon", dict(M_HP, adam_eps=EPS, **_ADAM_FALLBACK), exp_keras_muon),
    ("optax_muon", "optax_muon", dict(M_HP, adam_eps=M_EPS, **_ADAM_FALLBACK), exp_optax_muon),
]
TENSOR_CASES = [
    ("adafactor", "adafactor", A_HP, exp_adafactor),
    ("keras_adafactor", "keras_adafactor", A_HP, exp_keras_adafactor),
    ("optax_adafactor", "optax_adafactor", dict(A_HP, min_dim_size_to_factor=1), exp_optax_adafactor),
    ("optax_adafactor[param_scale=none]", "optax_adafactor[param_scale=none]",
     {k: v for k, v in dict(A_HP, min_dim_size_to_factor=1).items() if k != "eps2"},
     lambda: _adafactor_by_hand(clamp=False, capped=False, scale_at="none", decay="unscaled")),
    ("transformers_adafactor", "transformers_adafactor", A_HP, exp_transformers_adafactor),
]


@pytest.mark.parametrize("case_id, rule, hp, expected", TENSOR_CASES, ids=[c[0] for c in TENSOR_CASES])
def test_hand_derived_tensors(case_id, rule, hp, expected):
    want = expected()
    run = trajectory(rule, {k: np.array(v) for k, v in A_W0.items()},
                     [{k: np.array(v) for k, v in g.items()} for g in A_GRADS], **hp)
    for t, step in enumerate(want, start=1):
        for name, value in step.items():
            np.testing.assert_allclose(run.params[name][t], np.array(value), rtol=1e-12, atol=1e-14,
                                       err_msg=f"{case_id} step {t} {name}")


@pytest.mark.parametrize("case_id, rule, hp, expected", MATRIX_CASES, ids=[c[0] for c in MATRIX_CASES])
def test_hand_derived_matrices(case_id, rule, hp, expected):
    want = expected()
    run = trajectory(rule, {k: np.array(v) for k, v in M_W0.items()}, [{k: np.array(v) for k, v in g.items()}
                                                                     for g in M_GRADS], **hp)
    for t, step in enumerate(want, start=1):
        for name, value in step.items():
            np.testing.assert_allclose(run.params[name][t], np.array(value), rtol=1e-12, atol=1e-14,
                                       err_msg=f"{case_id} step {t} {name}")


def test_muon_hand_case_reaches_the_eps_branch():
    """The first step's look-ahead (b_1 = (1-mu)*g_1, X = (1-mu)*g_1 + mu*b_1) is below eps, where
    max(||X||, eps) and ||X|| + eps differ, for both tensors."""
    for name in ("wide", "tall"):
        look = [[(1 - M_MU) * g + M_MU * (1 - M_MU) * g for g in r] for r in M_GRADS[0][name]]
        assert math.sqrt(sum(v * v for r in look for v in r)) < M_EPS


# --------------------------------------------------------------------------------------------------
# Schedule-free AdamW (spec/schedule_free.md): y is the parameter, z the SGD sequence, x the average
# --------------------------------------------------------------------------------------------------

SF_W = 2             # warmup_steps: lr_t*min(t/2, 1) (0.05, 0.2, 0.05) or *min((t-1)/2, 1) (0, 0.1, 0.05)
SF_HP = dict(lr=LR_SEQ, beta1=B1, beta2=B2, eps=EPS, weight_decay=WD, warmup_steps=SF_W)


def _schedule_free_by_hand(decay_at, weighting, from_zero, z_next=False, r=0.0, power=2.0):
    # schedulefree adamw_schedulefree.py:121-213 / Keras schedule_free_adamw.py:115-185 / optax
    # _schedule_free.py:156-221 + 298-381: v <- b2*v + (1-b2)*g^2; d = g/(sqrt(v/(1-b2^t)) + eps) (+ wd*y);
    # z <- z - lr*d; x_prev = (y - (1-b1)*z_prev)/b1; x = (1-c)*x_prev + c*z; y = (1-b1)*z + b1*x
    y, z, v = list(W0), list(W0), [0.0, 0.0]
    lr_max, wsum, out = 0.0, 0.0, []
    for t, (g, lr) in enumerate(zip(GRADS, LR_SEQ), start=1):
        warm = min((t - 1 if from_zero else t) / SF_W, 1.0)
        step = lr * warm
        if decay_at == "y_shrink":
            y = [yi - lr * WD * yi for yi in y]                              # Keras: base-class shrink of y, plain lr
        v = [B2 * vi + (1 - B2) * gi * gi for vi, gi in zip(v, g)]
        d = [gi / (math.sqrt(vi / (1 - B2 ** t)) + EPS) for gi, vi in zip(g, v)]
        if decay_at == "step":
            d = [di + WD * yi for di, yi in zip(d, y)]
        z_prev = z
        z = [zi - step * di for zi, di in zip(z, d)]
        if weighting == "uniform":
            c = 1.0 / t
        else:
            lr_max = max(lr_max, lr * min(t / SF_W, 1.0))                    # the weight's lr: warmed from one
            w = t ** r * lr_max ** power
            wsum += w
            c = w / wsum
        zs = z if z_next else z_prev
        x_prev = [(yi - (1 - B1) * zi) / B1 for yi, zi in zip(y, zs)]
        x = [(1 - c) * xi + c * zi for xi, zi in zip(x_prev, z)]
        y = [(1 - B1) * zi + B1 * xi for zi, xi in zip(z, x)]
        out.append(list(y))
    return out


def exp_schedulefree_adamw():
    # schedulefree.AdamWScheduleFree: decay in the z step, c_t from lr_max^2, warmup t/W
    return _schedule_free_by_hand("step", "lr_power", from_zero=False)


def exp_keras_schedule_free_adamw():
    # keras.optimizers.ScheduleFreeAdamW: shrink of y, c_t = 1/t, warmup t/W
    return _schedule_free_by_hand("y_shrink", "uniform", from_zero=False)


def exp_optax_schedule_free_adamw():
    # optax.contrib.schedule_free_adamw: decay in the z step, c_t from lr_max^2, the step's warmup (t-1)/W
    return _schedule_free_by_hand("step", "lr_power", from_zero=True)


# --------------------------------------------------------------------------------------------------
# case table: (id, rule expression, hyper-parameters, gradients, expected-trajectory function)
# --------------------------------------------------------------------------------------------------
CASES = [
    ("sgd", "sgd", dict(lr=LR, weight_decay=WD), GRADS, exp_sgd),
    ("sgd_momentum", "sgd_momentum", dict(lr=LR_SEQ, weight_decay=WD, momentum=0.9, dampening=0.5), GRADS,
     exp_sgd_momentum),
    ("sgd_momentum+nesterov", "sgd_momentum", dict(lr=LR_SEQ, weight_decay=WD, momentum=0.9, nesterov=True),
     GRADS, lambda: exp_sgd_momentum(nesterov=True, dampening=0.0)),
    ("sgd_momentum_inside", "sgd_momentum_inside", dict(lr=LR_SEQ, weight_decay=WD, momentum=0.9), GRADS,
     exp_sgd_momentum_inside),
    ("sgd_momentum_inside+nesterov", "sgd_momentum_inside",
     dict(lr=LR_SEQ, weight_decay=WD, momentum=0.9, nesterov=True), GRADS,
     lambda: exp_sgd_momentum_inside(nesterov=True)),
    ("adagrad", "adagrad", dict(lr=LR, lr_decay=0.5, initial_accumulator_value=0.1, eps=EPS, weight_decay=WD),
     GRADS, exp_adagrad),
    ("adagrad_eps_inside", "adagrad_eps_inside", dict(lr=LR, initial_accumulator_value=0.1, eps=EPS, weight_decay=WD),
     GRADS, exp_adagrad_eps_inside),
    ("rmsprop", "rmsprop", dict(lr=LR, rho=RHO, eps=EPS, weight_decay=WD), GRADS, exp_rmsprop),
    ("rmsprop+centered", "rmsprop", dict(lr=LR, rho=RHO, eps=EPS, weight_decay=WD, centered=True), GRADS,
     lambda: exp_rmsprop(centered=True)),
    ("rmsprop_momentum", "rmsprop_momentum", dict(lr=LR_SEQ, rho=RHO, eps=EPS, weight_decay=WD, momentum=0.9),
     GRADS, exp_rmsprop_momentum),
    ("rmsprop_eps_inside", "rmsprop_eps_inside", dict(lr=LR, rho=RHO, eps=EPS, weight_decay=WD), GRADS,
     exp_rmsprop_eps_inside),
    ("rmsprop_eps_inside[momentum_form=lr_inside]", "rmsprop_eps_inside[momentum_form=lr_inside]",
     dict(lr=LR_SEQ, rho=RHO, eps=EPS, weight_decay=WD, momentum=0.9), GRADS, exp_rmsprop_eps_inside_momentum),
    ("adam", "adam", dict(lr=LR, **ADAM_HP), GRADS, exp_adam),
    ("adam_l2", "adam_l2", dict(lr=LR, weight_decay=WD, **ADAM_HP), GRADS, exp_adam_l2),
    ("adamw", "adamw", dict(lr=LR_SEQ, weight_decay=WD, **ADAM_HP), GRADS, exp_adamw),
    ("adamw_paper", "adamw_paper", dict(lr=LR, eta=ETA_SEQ, weight_decay=WD, **ADAM_HP), GRADS, exp_adamw_paper),
    ("adam_eps_hat", "adam_eps_hat", dict(lr=LR, **ADAM_HP), GRADS, exp_adam_eps_hat),
    ("adamw_eps_hat", "adamw_eps_hat", dict(lr=LR_SEQ, weight_decay=WD, **ADAM_HP), GRADS, exp_adamw_eps_hat),
    ("bert_adamw", "bert_adamw", dict(lr=LR_SEQ, weight_decay=WD, **ADAM_HP), GRADS, exp_bert_adamw),
    ("mxnet_adam", "mxnet_adam", dict(lr=LR, weight_decay=WD, rescale_grad=RESCALE, clip_value=CLIP, **ADAM_HP),
     GRADS, exp_mxnet_adam),
    ("mxnet_v07_adam", "mxnet_v07_adam",
     dict(lr=LR, weight_decay=WD, rescale_grad=RESCALE, clip_value=CLIP, **ADAM_HP), GRADS, exp_mxnet_v07_adam),
    ("transformers_adamw", "transformers_adamw", dict(lr=LR_SEQ, weight_decay=WD, **ADAM_HP), GRADS,
     exp_transformers_adamw),
    ("amsgrad", "amsgrad", dict(lr=LR, **ADAM_HP), GRADS, exp_amsgrad),
    ("amsgrad_corrected", "amsgrad_corrected", dict(lr=LR, **ADAM_HP), GRADS, exp_amsgrad_corrected),
    ("lamb", "lamb", dict(lr=LR, weight_decay=WD, **ADAM_HP), GRADS, exp_lamb),
    ("lamb_decay_outside", "lamb_decay_outside", dict(lr=LR, weight_decay=WD, **ADAM_HP), GRADS,
     exp_lamb_decay_outside),
    ("lamb_uncorrected", "lamb_uncorrected", dict(lr=LR, weight_decay=WD, **ADAM_HP), GRADS,
     lambda: exp_lamb(bias_correction=False)),
    ("nadam", "nadam", dict(lr=LR, weight_decay=WD, momentum_decay=PSI, **ADAM_HP), GRADS, exp_nadam),
    ("nadam_no_schedule", "nadam_no_schedule", dict(lr=LR, **ADAM_HP), GRADS, exp_nadam_no_schedule),
    ("radam", "radam", dict(lr=LR, weight_decay=WD, beta1=B1, beta2=RADAM_B2, eps=EPS), GRADS7, exp_radam),
    ("radam_eps_outside", "radam_eps_outside", dict(lr=LR, beta1=B1, beta2=RADAM_B2, eps=EPS), GRADS7,
     exp_radam_eps_outside),
    ("adamw_amsgrad", "adamw_amsgrad", dict(lr=LR_SEQ, weight_decay=WD, **ADAM_HP), GRADS,
     lambda: exp_amsgrad(decoupled=True)),
    ("nadamw", "nadamw", dict(lr=LR, weight_decay=WD, momentum_decay=PSI, **ADAM_HP), GRADS,
     lambda: exp_nadam(decoupled=True)),
    ("radamw", "radamw", dict(lr=LR, weight_decay=WD, beta1=B1, beta2=RADAM_B2, eps=EPS), GRADS7,
     lambda: _radam(eps_hat=True, wd=WD, threshold_inclusive=False, decoupled=True)),
    ("adamax", "adamax", dict(lr=LR, weight_decay=WD, **ADAM_HP), GRADS, exp_adamax),
    ("adamax_eps_outside", "adamax_eps_outside", dict(lr=LR, **ADAM_HP), GRADS, exp_adamax_eps_outside),
    ("lion", "lion", dict(lr=LR_SEQ, weight_decay=WD, beta1=B1, beta2=B2), GRADS, exp_lion),
    ("adamw_lr_ratio", "adamw_lr_ratio", dict(lr=LR_SEQ, weight_decay=WD, **ADAM_HP), GRADS, exp_adamw_lr_ratio),
    ("lion[decay_scaling=lr_ratio]", "lion[decay_scaling=lr_ratio]", dict(lr=LR_SEQ, weight_decay=WD, beta1=B1, beta2=B2),
     GRADS, exp_lion_lr_ratio),
    ("schedulefree_adamw", "schedulefree_adamw", SF_HP, GRADS, exp_schedulefree_adamw),
    ("schedulefree_adamw+r", "schedulefree_adamw", dict(SF_HP, r=1.0, weight_lr_power=1.0), GRADS,
     lambda: _schedule_free_by_hand("step", "lr_power", from_zero=False, r=1.0, power=1.0)),
    ("keras_schedule_free_adamw", "keras_schedule_free_adamw", SF_HP, GRADS, exp_keras_schedule_free_adamw),
    ("keras_schedule_free_adamw[x_recovery=z_next]", "keras_schedule_free_adamw[x_recovery=z_next]", SF_HP, GRADS,
     lambda: _schedule_free_by_hand("y_shrink", "uniform", from_zero=False, z_next=True)),
    ("optax_schedule_free_adamw", "optax_schedule_free_adamw", SF_HP, GRADS, exp_optax_schedule_free_adamw),
]


def test_every_preset_has_a_hand_derived_case():
    """A new preset in spec/rules.toml without a hand-derived trajectory here fails this test."""
    tested = {rule for _, rule, *_ in CASES + MATRIX_CASES + TENSOR_CASES if "[" not in rule}
    assert tested == set(rules())


def test_case_ids_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case_id, rule, hp, grads, expected", CASES, ids=[c[0] for c in CASES])
def test_hand_derived(case_id, rule, hp, grads, expected):
    want = np.array(expected(), dtype=np.float64)
    run = trajectory(rule, np.array(W0), [np.array(g) for g in grads], **hp)
    assert run.params.shape == (len(grads) + 1, 2)
    np.testing.assert_array_equal(run.params[0], W0)
    np.testing.assert_allclose(run.params[1:], want, rtol=1e-12, atol=1e-14, err_msg=case_id)


def test_radam_case_reaches_both_branches():
    """The RAdam cases only test the rectification if rho_t crosses 5 within the 7 steps."""
    rho_inf = 2 / (1 - RADAM_B2) - 1
    rho = [rho_inf - 2 * t * RADAM_B2 ** t / (1 - RADAM_B2 ** t) for t in range(1, 8)]
    assert rho[4] < 5 < rho[5]


def test_amsgrad_cases_differ():
    """The raw-max and corrected-max derivations must actually differ on this input (else the case
    would not distinguish them)."""
    a, b = np.array(exp_amsgrad()), np.array(exp_amsgrad_corrected())
    assert np.allclose(a[0], b[0], rtol=1e-14) and not np.allclose(a[1:], b[1:], rtol=1e-6)
