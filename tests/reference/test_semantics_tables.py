"""Cross-check of the reference against numbers printed by real framework runs (torch 2.13, Keras 3.15.1
on TF 2.21, optax 0.2.8, MXNet 1.9.1, the BERT ports), recorded below.

The literals are those runs' outputs, rounded to 10 decimals, so they are compared
with atol 1e-9. Only float64 runs of implementations that a preset mirrors exactly are used; float32
frameworks (Keras on TF, MXNet kernels, BERT/ALBERT TF1 graphs) are not comparable at this tolerance and
are skipped. Also checks the presets' default hyper-parameters against the framework defaults of §1-§5.
"""
from __future__ import annotations

import numpy as np
import pytest

from optconform.reference import get_rule, trajectory

W0 = np.array([1.0, -2.0, 0.5])
ATOL = 1e-9

# Setup: w0 = [1.0, -2.0, 0.5], zero loss gradient, lr = 0.1, wd = 0.1, 5 steps.
# Each entry: (id, rule, extra hp, {t: printed params after step t})
ZERO_GRAD_TABLE = [
    # torch Adam(weight_decay=0.1) [forloop] (optax chain(add_decayed_weights, adam) identical)
    ("8.1 torch Adam(wd)", "adam_l2", {}, {
        1: [0.90000001, -1.900000005, 0.40000002],
        2: [0.8004122481, -1.8001664957, 0.301187461],
        3: [0.7015863026, -1.7006234066, 0.204871313],
        4: [0.6039391006, -1.6015049149, 0.1129154789],
        5: [0.5079637099, -1.502955806, 0.0278145494]}),
    # torch AdamW(weight_decay=0.1) [forloop]
    ("8.2 torch AdamW", "adamw", {}, {
        1: [0.99, -1.98, 0.495],
        2: [0.9801, -1.9602, 0.49005],
        3: [0.970299, -1.940598, 0.4851495],
        4: [0.96059601, -1.92119202, 0.480298005],
        5: [0.9509900499, -1.9019800998, 0.4754950249]}),
    # optax adamw(0.1, weight_decay=0.1)
    ("8.2 optax adamw", "adamw", {}, {5: [0.9509900499, -1.9019800998, 0.475495025]}),
    # optax lion (identical line)
    ("8.2 optax lion", "lion", {}, {5: [0.9509900499, -1.9019800998, 0.475495025]}),
    # pytorch-pretrained-bert BertAdam(lr=0.1, weight_decay=0.1) [torch float64]
    ("8.2 BertAdam", "bert_adamw", {}, {5: [0.9509900499, -1.9019800998, 0.475495025]}),
    # transformers 4.49.0 AdamW(weight_decay=0.1), correct_bias True and False
    ("8.2 transformers AdamW correct_bias", "transformers_adamw", {}, {5: [0.9509900499, -1.9019800998, 0.475495025]}),
    ("8.2 transformers AdamW no correct_bias", "transformers_adamw[bias_correction=off]", {},
     {5: [0.9509900499, -1.9019800998, 0.475495025]}),
    # torch NAdam/RAdam(decoupled_weight_decay=True): identical to torch AdamW
    ("8.2 torch NAdam(decoupled)", "nadamw", {}, {5: [0.9509900499, -1.9019800998, 0.4754950249]}),
    ("8.2 torch RAdam(decoupled)", "radamw", {}, {5: [0.9509900499, -1.9019800998, 0.4754950249]}),
    ("8.2 torch NAdam(decoupled), derived", "nadam[decay=decoupled]", {}, {5: [0.9509900499, -1.9019800998, 0.4754950249]}),
    ("8.2 torch RAdam(decoupled), derived", "radam[decay=decoupled]", {}, {5: [0.9509900499, -1.9019800998, 0.4754950249]}),
    # re-impl Loshchilov & Hutter Alg. 2, alpha = 0.1, lambda = 0.1, eta_t = 1
    ("8.3 L&H Alg.2 eta=1", "adamw_paper", {"eta": 1.0}, {
        1: [0.9, -1.8, 0.45],
        5: [0.59049, -1.18098, 0.295245]}),
    # re-impl Alg. 2 with eta_t = 0.5
    ("8.3 L&H Alg.2 eta=0.5", "adamw_paper", {"eta": 0.5}, {
        1: [0.95, -1.9, 0.475],
        5: [0.7737809375, -1.547561875, 0.3868904687]}),
    # optax lamb(0.1, weight_decay=0.1) with zero loss gradient
    ("8.3 optax lamb", "lamb", {}, {
        1: [0.9, -1.8, 0.45],
        5: [0.59049, -1.18098, 0.295245]}),
    # re-impl mxnet v0.7.0 Adam(lr=0.1, wd=0.1) (NumPy float64)
    ("8.3 mxnet v0.7 Adam", "mxnet_v07_adam", {}, {
        1: [0.9968377223, -1.9936754447, 0.4984188612],
        5: [0.9889502663, -1.9779005326, 0.4944751331]}),
    # torch SGD(momentum=0.9, weight_decay=0.1)
    ("8.3 torch SGD(momentum)", "sgd_momentum", {"momentum": 0.9}, {
        2: [0.9711, -1.9422, 0.48555],
        5: [0.8716340259, -1.7432680518, 0.4358170129]}),
    # torch NAdam(weight_decay=0.1): see test_torch_nadam_zero_grad_8_3 (float32 mu_product)
    # torch RAdam(weight_decay=0.1) (rho_t <= 5 -> lr*m_hat); t = 2 only the first element printed
    ("8.3 torch RAdam", "radam", {}, {
        5: [0.9505417065, -1.901083413, 0.4752708532]}),
    # torch Adagrad(weight_decay=0.1)
    ("8.3 torch Adagrad", "adagrad", {}, {
        1: [0.9000000001, -1.9, 0.4000000002],
        5: [0.6977148623, -1.6867615982, 0.2226917846]}),
    # torch RMSprop(weight_decay=0.1)
    ("8.3 torch RMSprop", "rmsprop", {}, {
        1: [1e-06, -1.0000005, -0.499998],
        5: [0.0, -0.0983103272, -0.0103457985]}),
    # torch Adamax(weight_decay=0.1)
    ("8.3 torch Adamax", "adamax", {}, {
        1: [0.90000001, -1.900000005, 0.40000002],
        5: [0.5515538409, -1.5257775677, 0.1001837819]}),
]


@pytest.mark.parametrize("case_id, rule, hp, table", ZERO_GRAD_TABLE, ids=[c[0] for c in ZERO_GRAD_TABLE])
def test_zero_gradient_table(case_id, rule, hp, table):
    run = trajectory(rule, W0, [np.zeros(3)] * 5, lr=0.1, weight_decay=0.1, **hp)
    for t, want in table.items():
        np.testing.assert_allclose(run.params[t], want, rtol=0, atol=ATOL, err_msg=f"{case_id} t={t}")


def _nadam_zero_grad(mu_product_float32: bool):
    """torch NAdam (nadam.py:339-378, §1) with zero loss gradient, wd = lr = 0.1, defaults, in NumPy.
    With mu_product_float32, the product of the mu_t is kept in float32 as torch does when the default
    dtype is float32 (state['mu_product'] is created with torch's scalar dtype, float32 by default)."""
    w, m, v, prod = W0.copy(), np.zeros(3), np.zeros(3), 1.0
    b1, b2, eps, lr, wd, psi = 0.9, 0.999, 1e-8, 0.1, 0.1, 4e-3
    out = [w]
    f = (lambda x: float(np.float32(x))) if mu_product_float32 else float
    for t in range(1, 6):
        g = wd * w                                                       # g' = 0 + wd*w
        mu, mu_next = b1 * (1 - 0.5 * 0.96 ** (t * psi)), b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        prod = f(f(prod) * f(mu)) if mu_product_float32 else prod * mu  # prod <- prod*mu_t
        prod_next = f(f(prod) * f(mu_next)) if mu_product_float32 else prod * mu_next
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        den = np.sqrt(v / (1 - b2 ** t)) + eps
        w = w - lr * (1 - mu) / (1 - prod) * g / den - lr * mu_next / (1 - prod_next) * m / den
        out.append(w)
    return np.array(out)


def test_torch_nadam_zero_grad_8_3():
    # torch NAdam(weight_decay=0.1): t=1 [0.8943548314, -1.8943548261, 0.394354842]
    #                                      t=5 [0.6236629265, -1.6084596438, 0.15963913]
    #      mxnet Nadam(wd=0.1):            t=1 [0.8943548327, -1.8943548274, 0.3943548433]
    #                                      t=5 [0.6236629275, -1.608459645, 0.1596391308]
    # The torch line differs from an all-float64 evaluation of the same formula by ~1.3e-9: torch keeps
    # mu_product in float32 (default scalar dtype); redoing the derivation with a float32 product gives
    # torch's digits, in float64 it gives (to 10 decimals) the MXNet digits. The reference is float64.
    torch_printed = {1: [0.8943548314, -1.8943548261, 0.394354842], 5: [0.6236629265, -1.6084596438, 0.15963913]}
    f64_digits = {1: [0.8943548327, -1.8943548274, 0.3943548433], 5: [0.6236629275, -1.608459645, 0.1596391308]}
    as_torch, as_f64 = _nadam_zero_grad(True), _nadam_zero_grad(False)
    run = trajectory("nadam", W0, [np.zeros(3)] * 5, lr=0.1, weight_decay=0.1)
    for t in (1, 5):
        np.testing.assert_allclose(as_torch[t], torch_printed[t], atol=2e-10)   # explains the torch line
        np.testing.assert_allclose(run.params[t], f64_digits[t], atol=ATOL)
        np.testing.assert_allclose(run.params[t], torch_printed[t], atol=3e-9)  # float32 mu_product effect
    np.testing.assert_allclose(run.params, as_f64, rtol=1e-13)


def test_torch_radam_t2_first_element():
    # torch RAdam(weight_decay=0.1): t=2 [0.9800526316, ...]
    run = trajectory("radam", W0, [np.zeros(3)] * 2, lr=0.1, weight_decay=0.1)
    assert abs(run.params[2][0] - 0.9800526316) <= ATOL


def test_bert_layer_bias_excluded_8_2():
    # §8.2: BERT variable named `layer/bias` with the default exclusion list stays [1.0, -2.0, 0.5] for 5 steps
    run = trajectory("bert_adamw", {"layer/bias": W0}, [{"layer/bias": np.zeros(3)}] * 5, lr=0.1, weight_decay=0.1)
    np.testing.assert_array_equal(run.params["layer/bias"], np.tile(W0, (6, 1)))


def test_optax_adamw_linear_schedule_8_3():
    # optax adamw(linear_schedule 0.1 -> 0 over 10 steps, wd=0.1): the schedule sees the 0-based
    # count, lr_1 = 0.1, lr_2 = 0.09: t=1 [0.9899999999, ...] t=2 [0.9810900002, -1.9621800005, 0.4905450001]
    run = trajectory("adamw", W0, [np.zeros(3)] * 2, lr=[0.1, 0.09], weight_decay=0.1)
    np.testing.assert_allclose(run.params[1], [0.9899999999, -1.9799999997, 0.4949999999], atol=ATOL)
    np.testing.assert_allclose(run.params[2], [0.9810900002, -1.9621800005, 0.4905450001], atol=ATOL)


def test_bert_adam_warmup_8_3():
    # BertAdam(lr=0.1, wd=0.1, warmup=0.1, t_total=10): warmup_linear multiplier at the pre-increment
    # progress x = step/t_total: x=0 -> 0 (x < warmup: x/warmup); x=0.1 -> (x-1)/(warmup-1) = 1;
    # x=0.2 -> 0.8/0.9. So lr_t = [0, 0.1, 0.1*8/9]: t=1 [1.0, -2.0, 0.5] t=2 [0.99, ...] t=3 [0.9812, -1.9624, 0.4906]
    run = trajectory("bert_adamw", W0, [np.zeros(3)] * 3, lr=[0.0, 0.1, 0.1 * 8 / 9], weight_decay=0.1)
    np.testing.assert_allclose(run.params[1], [1.0, -2.0, 0.5], atol=ATOL)
    np.testing.assert_allclose(run.params[2], [0.99, -1.98, 0.495], atol=ATOL)
    np.testing.assert_allclose(run.params[3], [0.9812, -1.9624, 0.4906], atol=ATOL)


# --- §8.5 cross-framework single-parameter probes (float64 lines only) -----------------------------
# Each: (id, rule, hp, gradients (scalars), printed params after steps 1..T (None = not printed))
PROBES = [
    # A: Adam lr=.1 eps=1e-8, g=1e-7 x3: torch/optax
    ("A torch/optax adam", "adam", dict(lr=0.1, eps=1e-8), [1e-7] * 3, [0.9090909091, 0.8181818182, 0.7272727273]),
    # B: NAdam lr=.01 g=1 x3
    ("B torch NAdam", "nadam", dict(lr=0.01), [1.0] * 3, [0.9894354822, 0.9815986387, 0.9742764675]),
    ("B torch NAdam(momentum_decay=1) = keras", "nadam", dict(lr=0.01, momentum_decay=1.0), [1.0] * 3,
     [0.9893721222, 0.9816362154, 0.9745228628]),
    ("B optax nadam", "nadam_no_schedule", dict(lr=0.01), [1.0] * 3, [0.985263158, 0.9736900372, 0.9629078224]),
    # C: RMSprop lr=.01 decay .9 eps=1e-8 g=1e-4 x3
    ("C torch RMSprop (eps outside)", "rmsprop", dict(lr=0.01, rho=0.9, eps=1e-8), [1e-4] * 3,
     [0.9683872202, 0.9454509088, 0.9262451294]),
    ("C optax rmsprop (eps inside)", "rmsprop_eps_inside", dict(lr=0.01, rho=0.9, eps=1e-8), [1e-4] * 3,
     [0.9904653741, 0.9812983891, 0.9724283155]),
    # D: Adagrad lr=.1 defaults g=1 x3
    ("D torch Adagrad", "adagrad", dict(lr=0.1), [1.0] * 3, [0.9, 0.8292893219, 0.771554295]),
    ("D optax adagrad", "adagrad_eps_inside", dict(lr=0.1), [1.0] * 3, [0.9046537455, 0.8356471912, 0.7788510087]),
    # E: Adam lr=.1 eps=0 g=1 x3: torch/optax exact .9, .8, .7
    ("E torch/optax adam eps=0", "adam", dict(lr=0.1, eps=0.0), [1.0] * 3, [0.9, 0.8, 0.7]),
    # F: RAdam lr=.1 g=1 x7: torch [..., 0.5, 0.4974178891, 0.494144008], optax [..., 0.5, 0.4974178887, 0.4941440073]
    ("F torch RAdam", "radam", dict(lr=0.1), [1.0] * 7, [None] * 4 + [0.5, 0.4974178891, 0.494144008]),
    ("F optax radam", "radam_eps_outside", dict(lr=0.1), [1.0] * 7, [None] * 4 + [0.5, 0.4974178887, 0.4941440073]),
    # AMSGrad lr=.1 grads [1, .1, .1, .1, .1]
    ("AMSGrad torch", "amsgrad", dict(lr=0.1), [1.0, 0.1, 0.1, 0.1, 0.1],
     [0.900000001, 0.8259189378, 0.7626045843, 0.7052599816, 0.6516658028]),
    ("AMSGrad optax", "amsgrad_corrected", dict(lr=0.1), [1.0, 0.1, 0.1, 0.1, 0.1],
     [0.900000001, 0.8473684226, 0.8104680539, 0.7813898338, 0.756970406]),
]


@pytest.mark.parametrize("case_id, rule, hp, grads, want", PROBES, ids=[p[0] for p in PROBES])
def test_probe_8_5(case_id, rule, hp, grads, want):
    run = trajectory(rule, np.array([1.0]), [np.array([g]) for g in grads], **hp)
    for t, value in enumerate(want, start=1):
        if value is not None:
            assert abs(run.params[t][0] - value) <= ATOL, (case_id, t, run.params[t][0], value)


def test_probe_A_rounded_closed_form():
    # A: step = lr*g/(g + eps) = 0.1*1e-7/1.1e-7 = 1/11 per step while m_hat = g, v_hat = g^2 (constant g)
    run = trajectory("adam", np.array([1.0]), [np.array([1e-7])] * 3, lr=0.1, eps=1e-8)
    np.testing.assert_allclose(run.params[:, 0], [1 - t / 11 for t in range(4)], rtol=1e-12)


# --- defaults of the presets against the framework defaults (§1-§5) --------------------------------
DEFAULTS = [
    # torch Adam (§1): lr=1e-3, betas=(0.9, 0.999), eps=1e-8
    ("adam", dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)),
    ("adam_l2", dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)),
    ("amsgrad", dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)),
    # torch AdamW: weight_decay=1e-2 (also with amsgrad=True)
    ("adamw", dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2)),
    ("adamw_amsgrad", dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2)),
    # Keras Adam / AdamW (§2): eps 1e-7, AdamW wd 0.004
    ("adam_eps_hat", dict(lr=1e-3, eps=1e-7)),
    ("adamw_eps_hat", dict(lr=1e-3, eps=1e-7, weight_decay=0.004)),
    # BERT create_optimizer (§5): wd 0.01, eps 1e-6, exclude LayerNorm/layer_norm/bias
    ("bert_adamw", dict(eps=1e-6, weight_decay=0.01, weight_decay_exclude=("LayerNorm", "layer_norm", "bias"))),
    # transformers AdamW (§5): eps 1e-6, weight_decay 0.0, lr 1e-3
    ("transformers_adamw", dict(lr=1e-3, eps=1e-6, weight_decay=0.0)),
    # MXNet Adam (§4): lr 0.001, eps 1e-8
    ("mxnet_adam", dict(lr=1e-3, eps=1e-8, beta1=0.9, beta2=0.999)),
    # optax lamb (§3): eps 1e-6; Keras Lamb (§2): eps 1e-7
    ("lamb", dict(eps=1e-6, beta1=0.9, beta2=0.999)),
    ("lamb_decay_outside", dict(eps=1e-7)),
    ("lamb_uncorrected", dict(eps=1e-6)),
    # torch SGD (§1): lr 1e-3, dampening 0, nesterov False; Keras/MXNet SGD lr 0.01 (velocity form)
    ("sgd", dict(lr=1e-3, weight_decay=0.0)),
    ("sgd_momentum", dict(lr=1e-3, dampening=0.0, nesterov=False)),
    ("sgd_momentum_inside", dict(lr=1e-2)),
    # torch Adagrad (§1): lr 1e-2, lr_decay 0, acc0 0, eps 1e-10; Keras Adagrad: lr 1e-3, acc0 0.1, eps 1e-7
    ("adagrad", dict(lr=1e-2, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, weight_decay=0.0)),
    ("adagrad_eps_inside", dict(lr=1e-3, initial_accumulator_value=0.1, eps=1e-7)),
    # torch RMSprop (§1): lr 1e-2, alpha 0.99, eps 1e-8, centered False; Keras RMSprop: lr 1e-3, rho 0.9, eps 1e-7
    ("rmsprop", dict(lr=1e-2, rho=0.99, eps=1e-8, centered=False)),
    ("rmsprop_momentum", dict(lr=1e-2, rho=0.99, eps=1e-8)),
    ("rmsprop_eps_inside", dict(lr=1e-3, rho=0.9, eps=1e-7)),
    # torch NAdam (§1): lr 2e-3, eps 1e-8, momentum_decay 4e-3
    ("nadam", dict(lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8, momentum_decay=4e-3)),
    # torch RAdam (§1): lr 1e-3, eps 1e-8
    ("radam", dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)),
    # torch Adamax (§1): lr 2e-3, eps 1e-8; Keras Adamax eps 1e-7
    ("adamax", dict(lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8)),
    ("adamax_eps_outside", dict(eps=1e-7)),
    # Lion (§2, §3): betas 0.9 / 0.99
    ("lion", dict(beta1=0.9, beta2=0.99)),
]


@pytest.mark.parametrize("rule, want", DEFAULTS, ids=[d[0] for d in DEFAULTS])
def test_preset_defaults(rule, want):
    defaults = get_rule(rule).defaults
    for name, value in want.items():
        got = defaults[name]
        assert (tuple(got) if isinstance(value, tuple) else got) == value, (rule, name, got, value)
