"""Closed forms of the reference: zero-gradient decay, first Adam steps, schedules, decay order,
exclusion / masks. Every expected value is a formula written here (semantics.md §6, §8, §9), not a
run of the reference."""
from __future__ import annotations

import math

import numpy as np
import pytest

from optconform.reference import trajectory

W0 = np.array([1.0, -2.0, 0.5])
T = 5


def zero_run(rule, w0=W0, steps=T, **hp):
    return trajectory(rule, np.array(w0, dtype=float), [np.zeros_like(np.asarray(w0, dtype=float))] * steps, **hp)


def powers(factor: float, steps: int = T) -> np.ndarray:
    """factor^t for t = 0..steps as a column, to multiply w0."""
    return (factor ** np.arange(steps + 1))[:, None]


# --- decoupled, lr-scaled: w_t = w0*(1 - lr*wd)^t ----------------------------------------------------

DECOUPLED_LR = [
    "adamw",                                   # torch AdamW
    "adamw_eps_hat",                           # Keras AdamW
    "bert_adamw",                              # BERT (u += wd*w, x lr)
    "lion",                                    # optax lion
    "sgd_momentum_inside[decay=decoupled]",    # Keras SGD(momentum) with weight_decay
    "lamb_decay_outside",                      # Keras Lamb (decay outside the trust ratio, §8.2)
    "nadamw",                                  # torch NAdam(decoupled_weight_decay=True)
    "radamw",                                  # torch RAdam(decoupled_weight_decay=True)
    "adamw_amsgrad",                           # torch AdamW(amsgrad=True)
    "adam_eps_hat[decay=decoupled]",           # Keras Adam(weight_decay)
    "rmsprop_eps_inside[decay=decoupled]",     # Keras RMSprop(weight_decay)
    "adagrad_eps_inside[decay=decoupled]",     # Keras Adagrad(weight_decay)
]


@pytest.mark.parametrize("rule", DECOUPLED_LR)
@pytest.mark.parametrize("lr, wd", [(0.1, 0.1), (0.01, 0.5), (0.3, 0.02)])
def test_decoupled_lr_scaled_zero_grad(rule, lr, wd):
    # zero gradient: every direction is 0 (m = v = 0, sign(0) = 0, 0/(sqrt(0)+eps) = 0), only the shrink
    # w <- w - lr*wd*w acts: w_t = w0*(1 - lr*wd)^t
    run = zero_run(rule, lr=lr, weight_decay=wd)
    np.testing.assert_allclose(run.params, powers(1 - lr * wd) * W0, rtol=1e-13, atol=0)


def test_decoupled_lr_scaled_matches_table_8_2():
    # semantics.md §8.2 reference pattern: (1 - 0.01)^t*w0, t = 5 printed as [0.9509900499, -1.9019800998, 0.4754950249]
    run = zero_run("adamw", lr=0.1, weight_decay=0.1)
    np.testing.assert_allclose(run.params[5], [0.99 ** 5, -2 * 0.99 ** 5, 0.5 * 0.99 ** 5], rtol=1e-14)
    np.testing.assert_allclose(run.params[5], [0.9509900499, -1.9019800998, 0.4754950249], atol=1e-9)


# --- schedule scaling (Loshchilov & Hutter Alg. 2): w_t = w0*prod(1 - eta_t*wd), lr never enters ------

@pytest.mark.parametrize("lr", [0.1, 1e-3, 1.0])
@pytest.mark.parametrize("eta", [1.0, 0.5])
def test_adamw_paper_zero_grad_constant_eta(lr, eta):
    run = zero_run("adamw_paper", lr=lr, eta=eta, weight_decay=0.1)
    np.testing.assert_allclose(run.params, powers(1 - eta * 0.1) * W0, rtol=1e-13)


def test_adamw_paper_zero_grad_eta_sequence():
    etas = [1.0, 0.8, 0.5, 0.25, 0.1]
    run = zero_run("adamw_paper", lr=0.1, eta=etas, weight_decay=0.1)
    factors = np.concatenate([[1.0], np.cumprod([1 - e * 0.1 for e in etas])])
    np.testing.assert_allclose(run.params, factors[:, None] * W0, rtol=1e-13)


def test_unscaled_decay_zero_grad():
    # decay_scaling = unscaled (TF-Addons): w <- w - wd*w whatever lr and eta
    run = zero_run("adamw[decay_scaling=unscaled]", lr=0.3, eta=0.5, weight_decay=0.1)
    np.testing.assert_allclose(run.params, powers(0.9) * W0, rtol=1e-13)


def test_decoupled_lr_scaled_uses_eta_times_lr():
    # decay_scaling = lr: s = eta_t*lr_t*wd
    run = zero_run("adamw", lr=0.1, eta=0.5, weight_decay=0.1)
    np.testing.assert_allclose(run.params, powers(1 - 0.05 * 0.1) * W0, rtol=1e-13)


# --- decay under an lr schedule --------------------------------------------------------------------

def test_adamw_decay_follows_lr_schedule():
    # lr halved after step 2: per-step decay 1 - w_t/w_{t-1} = lr_t*wd halves too
    lrs = [0.1, 0.1, 0.05, 0.05, 0.05]
    run = zero_run("adamw", lr=lrs, weight_decay=0.1)
    ratios = run.params[1:] / run.params[:-1]
    np.testing.assert_allclose(1 - ratios, np.array(lrs)[:, None] * 0.1 * np.ones(3), rtol=1e-12)
    np.testing.assert_allclose((1 - ratios[2]) / (1 - ratios[0]), 0.5, rtol=1e-12)


def test_adamw_paper_decay_ignores_lr_schedule():
    # L&H: with constant eta the decay is (1 - eta*wd) per step, whatever lr does
    lrs = [0.1, 0.1, 0.05, 0.05, 0.05]
    run = zero_run("adamw_paper", lr=lrs, weight_decay=0.1)
    np.testing.assert_allclose(run.params, powers(0.9) * W0, rtol=1e-13)


# --- coupled Adam (adam_l2): ~lr per step whatever |w| ---------------------------------------------

@pytest.mark.parametrize("w0", [[1.0, -2.0, 0.5], [1e-3, -1e3, 7.0], [1e-6, 3e-5, -42.0]])
@pytest.mark.parametrize("eps", [1e-8, 1e-3])
def test_adam_l2_zero_grad_first_step_exact(w0, eps):
    # g' = 0 + wd*w0; m_1 = (1-b1)*g', v_1 = (1-b2)*g'^2; m_hat = g', v_hat = g'^2 (t = 1)
    # w1 = w0 - lr*g'/(|g'| + eps) = w0 - lr*sign(w0)*(1 - eps/(wd*|w0| + eps))
    lr, wd = 0.1, 0.1
    w0 = np.array(w0)
    run = zero_run("adam_l2", w0=w0, steps=1, lr=lr, weight_decay=wd, eps=eps)
    want = w0 - lr * np.sign(w0) * (1 - eps / (wd * np.abs(w0) + eps))
    np.testing.assert_allclose(run.params[1], want, rtol=1e-13, atol=1e-15 * lr)   # atol: cancellation near 0


def test_adam_l2_shrinks_about_lr_per_step():
    # §8.1: coupled L2 inside Adam is ~ a linear shrink by lr per step, independent of |w|
    lr = 0.1
    for w0, low in (([1.0, -2.0, 0.5], 0.8), ([1e3, -2e3, 5e2], 0.999)):
        run = zero_run("adam_l2", w0=w0, lr=lr, weight_decay=0.1)
        shrink = np.abs(run.params[:-1]) - np.abs(run.params[1:])
        assert np.all(shrink <= lr * (1 + 1e-12))
        assert np.all(shrink >= low * lr)


# --- LAMB: zero gradient gives (1 - lr)^t independent of wd -----------------------------------------

@pytest.mark.parametrize("rule", ["lamb", "lamb_uncorrected"])
@pytest.mark.parametrize("wd", [0.1, 0.01, 0.5, 3.0])
def test_lamb_zero_grad_independent_of_wd(rule, wd):
    # u = 0/(0 + eps) + wd*w = wd*w; ratio = ||w||/||wd*w|| = 1/wd; w <- w - lr*(1/wd)*wd*w = (1 - lr)*w
    run = zero_run(rule, lr=0.1, weight_decay=wd)
    np.testing.assert_allclose(run.params, powers(0.9) * W0, rtol=1e-13)


def test_lamb_zero_grad_zero_wd_is_identity():
    # u = 0 -> ratio 1 (a norm is 0) -> no change
    run = zero_run("lamb", lr=0.1, weight_decay=0.0)
    np.testing.assert_array_equal(run.params, np.tile(W0, (T + 1, 1)))


# --- first Adam step -------------------------------------------------------------------------------

@pytest.mark.parametrize("g", [1e-20, 1e-7, 0.3, 1.0, 1e5, 1e20, -1e-15, -7.0])
@pytest.mark.parametrize("rule", ["adam", "adamw", "adam_eps_hat", "amsgrad", "amsgrad_corrected", "adam_l2"])
def test_first_adam_step_eps_zero_is_sign(g, rule):
    # t = 1: m_hat = g, v_hat = g^2 -> d = g/(|g| + eps) -> sign(g) as eps -> 0 (here eps = 0), any |g|
    hp = dict(lr=0.1, eps=0.0)
    if rule in ("adamw", "adam_l2"):
        hp["weight_decay"] = 0.0
    run = trajectory(rule, np.array([1.0]), [np.array([g])], **hp)
    np.testing.assert_allclose(run.params[1], [1.0 - 0.1 * math.copysign(1.0, g)], rtol=1e-14)


def test_bias_correction_at_t1():
    # m_1 = (1-b1)*g, v_1 = (1-b2)*g^2 (state), m_hat = g, v_hat = g^2 -> w1 = w0 - lr*g/(|g| + eps)
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    g = np.array([0.3, -4.0, 1e-6])
    w0 = np.array([1.0, 2.0, 3.0])
    run = trajectory("adam", w0, [g], lr=lr, beta1=b1, beta2=b2, eps=eps)
    np.testing.assert_allclose(run.state["m"][1], (1 - b1) * g, rtol=1e-15)
    np.testing.assert_allclose(run.state["v"][1], (1 - b2) * g * g, rtol=1e-15)
    np.testing.assert_array_equal(run.state["m"][0], 0.0)
    np.testing.assert_array_equal(run.state["v"][0], 0.0)
    np.testing.assert_allclose(run.params[1], w0 - lr * g / (np.abs(g) + eps), rtol=1e-14)


def test_bias_correction_off_first_step():
    # bias_correction = off (BERT): d = (1-b1)*g/(sqrt(1-b2)*|g| + eps) -- not sign(g)
    b1, b2, eps, lr = 0.9, 0.999, 1e-6, 0.1
    g = np.array([1.0, -2.0])
    run = trajectory("bert_adamw", np.zeros(2), [g], lr=lr, weight_decay=0.0)
    np.testing.assert_allclose(run.params[1], -lr * (1 - b1) * g / (math.sqrt(1 - b2) * np.abs(g) + eps), rtol=1e-13)


# --- decay order: after (transformers <= 4.49) vs before --------------------------------------------

def _eps_hat_directions(grads, b1, b2, eps):
    """d_t = sqrt(bc2)/bc1 * m_t/(sqrt(v_t) + eps) (Keras / transformers eps-hat form), independent NumPy."""
    m = np.zeros_like(grads[0])
    v = np.zeros_like(grads[0])
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        out.append(math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps))
    return out


def test_decay_order_after_minus_before():
    # before: w_t = (1-s)*w_{t-1} - lr*d_t;  after: w'_t = (1-s)*(w'_{t-1} - lr*d_t), s = lr*wd
    # so e_t = w'_t - w_t = (1-s)*e_{t-1} + s*lr*d_t, e_0 = 0; at t = 1, e_1 = lr^2*wd*d_1 (O(lr^2*wd)).
    lr, wd, b1, b2, eps = 0.1, 0.3, 0.9, 0.999, 1e-6
    grads = [np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.5, -0.1]), np.array([-0.25, 2.0, 0.3]),
             np.array([0.1, 0.1, 0.1])]
    after = trajectory("transformers_adamw", W0, grads, lr=lr, weight_decay=wd)
    before = trajectory("transformers_adamw[decay_order=before]", W0, grads, lr=lr, weight_decay=wd)
    d = _eps_hat_directions(grads, b1, b2, eps)
    s = lr * wd
    e = np.zeros(3)
    for t in range(1, len(grads) + 1):
        e = (1 - s) * e + s * lr * d[t - 1]
        np.testing.assert_allclose(after.params[t] - before.params[t], e, rtol=1e-8, atol=1e-15)
    np.testing.assert_allclose(after.params[1] - before.params[1], lr ** 2 * wd * d[0], rtol=1e-8)
    # and the 'before' run itself is the closed form w_t = (1-s)*w_{t-1} - lr*d_t
    w = W0.copy()
    for t in range(1, len(grads) + 1):
        w = (1 - s) * w - lr * d[t - 1]
        np.testing.assert_allclose(before.params[t], w, rtol=1e-13)


# --- MXNet v0.7 Adam: shrink by the bias-corrected lr, after the step --------------------------------

def test_mxnet_v07_adam_zero_grad():
    # zero grad: step 0, then w <- w - lr*sqrt(bc2)/bc1*wd*w: factor (1 - lr*sqrt(1-b2^t)/(1-b1^t)*wd)
    lr, wd, b1, b2 = 0.1, 0.1, 0.9, 0.999
    run = zero_run("mxnet_v07_adam", lr=lr, weight_decay=wd)
    factors = [1.0]
    for t in range(1, T + 1):
        factors.append(factors[-1] * (1 - lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * wd))
    np.testing.assert_allclose(run.params, np.array(factors)[:, None] * W0, rtol=1e-13)
    # t = 1: 1 - 0.1*sqrt(0.001)/0.1*0.1 = 1 - 0.1*sqrt(0.001)
    np.testing.assert_allclose(run.params[1], (1 - 0.1 * math.sqrt(0.001)) * W0, rtol=1e-14)


# --- exclusion and masks ---------------------------------------------------------------------------

def test_bert_weight_decay_exclude_default_regexes():
    # BERT exclude ["LayerNorm", "layer_norm", "bias"], re.search on the name (§5): "layer/bias" and
    # "LayerNorm/gamma" are untouched with zero grad; "dense/kernel" decays (1 - lr*wd)^t
    names = ["layer/bias", "LayerNorm/gamma", "dense/kernel", "attention/layer_norm/beta"]
    params = {n: W0.copy() for n in names}
    run = trajectory("bert_adamw", params, [{n: np.zeros(3) for n in names}] * T, lr=0.1, weight_decay=0.1)
    for n in ("layer/bias", "LayerNorm/gamma", "attention/layer_norm/beta"):
        np.testing.assert_array_equal(run.params[n], np.tile(W0, (T + 1, 1)), err_msg=n)
    np.testing.assert_allclose(run.params["dense/kernel"], powers(0.99) * W0, rtol=1e-13)


def test_weight_decay_exclude_is_search_not_match():
    # re.search: "^emb" excludes "emb/table" but not "token_emb"; "kernel$" excludes "dense/kernel"
    names = ["emb/table", "token_emb", "dense/kernel", "dense/kernel_2"]
    params = {n: W0.copy() for n in names}
    run = trajectory("adamw", params, [{n: np.zeros(3) for n in names}] * 2, lr=0.1, weight_decay=0.1,
                     weight_decay_exclude=["^emb", "kernel$"])
    for n, decayed in (("emb/table", False), ("token_emb", True), ("dense/kernel", False), ("dense/kernel_2", True)):
        np.testing.assert_allclose(run.params[n][-1], W0 * (0.99 ** 2 if decayed else 1.0), rtol=1e-14, err_msg=n)


@pytest.mark.parametrize("rule", ["adamw", "lion", "adam_l2", "sgd", "lamb", "adamw_paper"])
def test_weight_decay_mask(rule):
    # optax mask: False leaves are not decayed; a name missing from the mask is decayed
    params = {"w": W0.copy(), "b": W0.copy(), "c": W0.copy()}
    zero = {k: np.zeros(3) for k in params}
    masked = trajectory(rule, params, [zero] * 3, lr=0.1, weight_decay=0.1, weight_decay_mask={"w": True, "b": False})
    plain = trajectory(rule, {"w": W0.copy()}, [{"w": np.zeros(3)}] * 3, lr=0.1, weight_decay=0.1)
    np.testing.assert_array_equal(masked.params["b"], np.tile(W0, (4, 1)))
    np.testing.assert_array_equal(masked.params["w"], plain.params["w"])
    np.testing.assert_array_equal(masked.params["c"], plain.params["w"])
    assert not np.allclose(masked.params["w"][-1], W0)


def test_mask_and_semantics_8_2():
    # §8.2: optax adamw(mask={'w': True, 'b': False}) after one step: b [1.0, -2.0, 0.5], w [0.99, -1.98, 0.495]
    run = trajectory("adamw", {"w": W0, "b": W0}, [{"w": np.zeros(3), "b": np.zeros(3)}], lr=0.1, weight_decay=0.1,
                     weight_decay_mask={"w": True, "b": False})
    np.testing.assert_allclose(run.params["w"][1], [0.99, -1.98, 0.495], rtol=1e-14)
    np.testing.assert_array_equal(run.params["b"][1], [1.0, -2.0, 0.5])
