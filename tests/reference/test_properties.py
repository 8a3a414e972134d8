"""Property tests of the reference (hypothesis, deterministic): equivalences and invariances that
follow from the published maths, not from the reference's own code."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from optconform.reference import get_rule, rules, trajectory

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True)

T = 4
N = 3
finite = st.floats(-5.0, 5.0, allow_nan=False, allow_infinity=False, width=64)
nonzero = st.floats(0.01, 5.0).flatmap(lambda x: st.sampled_from([x, -x]))


def arrays(n, elements=finite):
    return st.lists(elements, min_size=n, max_size=n).map(lambda xs: np.array(xs, dtype=np.float64))


def grad_seqs(steps=T, n=N, elements=finite):
    return st.lists(arrays(n, elements), min_size=steps, max_size=steps)


params = arrays(N, nonzero)
PRESETS = list(rules())
#: Muon acts on matrices (its own properties at the end); the elementwise properties below are for the
#: other families, on vectors.
MATRIX_FAMILIES = ("muon",)
DECAYING = [name for name, r in rules().items() if r.knobs["decay"] != "none" and r.family not in MATRIX_FAMILIES]


def decay_hp(rule: str, wd: float) -> dict:
    return {"weight_decay": wd} if "weight_decay" in get_rule(rule).defaults else {}


# --- wd = 0: adam == adamw == adam_l2 --------------------------------------------------------------

@SETTINGS
@given(w0=params, grads=grad_seqs(), lr=st.floats(1e-4, 0.5))
def test_zero_wd_adam_adamw_adam_l2_identical(w0, grads, lr):
    # adamw shrinks by lr*0*w = 0 and adam_l2 adds 0*w to g: both are exactly Adam
    a = trajectory("adam", w0, grads, lr=lr)
    w = trajectory("adamw", w0, grads, lr=lr, weight_decay=0.0)
    l2 = trajectory("adam_l2", w0, grads, lr=lr, weight_decay=0.0)
    np.testing.assert_array_equal(a.params, w.params)
    np.testing.assert_array_equal(a.params, l2.params)


# --- scale invariance: g -> c*g with eps -> c*eps -----------------------------------------------------
# m -> c*m, v -> c^2*v, sqrt(v) -> c*sqrt(v), |g| + eps -> c*(|g| + eps): every normalised direction
# is unchanged (for eps inside the root it would need eps -> c^2*eps). RAdam is NOT invariant: its
# un-rectified steps (rho_t <= 5) are lr*m_hat, linear in g.
SCALE_INVARIANT = ["adam", "adam_eps_hat", "amsgrad", "amsgrad_corrected", "nadam", "nadam_no_schedule",
                   "adamax", "adamax_eps_outside"]


@pytest.mark.parametrize("rule", SCALE_INVARIANT)
@SETTINGS
@given(w0=params, grads=grad_seqs(steps=7), c=st.floats(1e-3, 1e3), eps=st.floats(1e-8, 1e-2))
def test_adam_scale_invariance(rule, w0, grads, c, eps):
    a = trajectory(rule, w0, grads, lr=0.05, eps=eps)
    b = trajectory(rule, w0, [c * g for g in grads], lr=0.05, eps=c * eps)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(w0=params, grads=grad_seqs(), c=st.floats(1e-3, 1e3), eps=st.floats(1e-8, 1e-2))
def test_eps_inside_scale_invariance(w0, grads, c, eps):
    # sqrt(v + eps): invariant with eps -> c^2*eps
    a = trajectory("adam[eps_placement=inside]", w0, grads, lr=0.05, eps=eps)
    b = trajectory("adam[eps_placement=inside]", w0, [c * g for g in grads], lr=0.05, eps=c * c * eps)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-12)


# --- splitting tensors: a dict of two tensors == two separate runs ---------------------------------
# Every preset is per tensor (LAMB's trust ratio is per tensor too); only clip_global_norm couples
# tensors, and it is not used here.

@pytest.mark.parametrize("rule", PRESETS)
@SETTINGS
@given(w1=arrays(3, nonzero), w2=arrays(2, nonzero), g1=grad_seqs(n=3), g2=grad_seqs(n=2))
def test_split_tensors(rule, w1, w2, g1, g2):
    hp = dict(lr=0.05, **decay_hp(rule, 0.05))
    both = trajectory(rule, {"w1": w1, "w2": w2}, [{"w1": a, "w2": b} for a, b in zip(g1, g2)], **hp)
    one = trajectory(rule, {"w1": w1}, [{"w1": a} for a in g1], **hp)
    two = trajectory(rule, {"w2": w2}, [{"w2": b} for b in g2], **hp)
    np.testing.assert_array_equal(both.params["w1"], one.params["w1"])
    np.testing.assert_array_equal(both.params["w2"], two.params["w2"])


def test_clip_global_norm_couples_tensors():
    # the counter-example: with a global clip the second tensor changes the first one's update
    g = [{"a": np.array([3.0]), "b": np.array([4.0])}]
    both = trajectory("sgd", {"a": np.zeros(1), "b": np.zeros(1)}, g, lr=1.0, clip_global_norm=1.0)
    alone = trajectory("sgd", {"a": np.zeros(1)}, [{"a": np.array([3.0])}], lr=1.0, clip_global_norm=1.0)
    np.testing.assert_allclose(both.params["a"][1], [-0.6])     # 3 * 1/||(3, 4)||
    np.testing.assert_allclose(alone.params["a"][1], [-1.0])    # 3 * 1/3


# --- BERT == AdamW without bias correction, and == the in-update (u += wd*w) form --------------------

@SETTINGS
@given(w0=params, grads=grad_seqs(), lr=st.floats(1e-4, 0.5), wd=st.floats(0.0, 0.5), eps=st.floats(1e-8, 1e-2))
def test_bert_adamw_is_adamw_without_bias_correction(w0, grads, lr, wd, eps):
    names = {"dense/kernel": w0, "dense/bias": w0[:2], "LayerNorm/gamma": w0[1:]}
    gs = [{"dense/kernel": g, "dense/bias": g[:2], "LayerNorm/gamma": g[1:]} for g in grads]
    exclude = ["LayerNorm", "layer_norm", "bias"]
    bert = trajectory("bert_adamw", names, gs, lr=lr, weight_decay=wd, eps=eps)
    alt = trajectory("adamw[bias_correction=off]", names, gs, lr=lr, weight_decay=wd, eps=eps,
                     weight_decay_exclude=exclude)
    for k in names:
        np.testing.assert_allclose(bert.params[k], alt.params[k], rtol=1e-13, atol=1e-15)
    # BERT optimization.py:137-151 in NumPy: u = m/(sqrt(v)+eps) + wd*w; w <- w - lr*u (kernel only decayed)
    for k, decayed in (("dense/kernel", True), ("dense/bias", False), ("LayerNorm/gamma", False)):
        w, m, v = names[k].copy(), 0.0, 0.0
        for t, g in enumerate(gs, start=1):
            m = 0.9 * m + 0.1 * g[k]
            v = 0.999 * v + (1 - 0.999) * g[k] ** 2
            u = m / (np.sqrt(v) + eps) + (wd * w if decayed else 0.0)
            w = w - lr * u
            np.testing.assert_allclose(bert.params[k][t], w, rtol=1e-11, atol=1e-13)


# --- eps-hat == eps outside with eps/sqrt(bc2) ------------------------------------------------------

@SETTINGS
@given(w0=params, g=arrays(N), eps=st.floats(1e-8, 1e-1), b2=st.floats(0.5, 0.9999))
def test_eps_hat_step1_equals_outside_with_rescaled_eps(w0, g, eps, b2):
    # t = 1: eps-hat denominator sqrt(v_hat) + e/sqrt(bc2), bc2 = 1 - b2; eps outside with
    # e' = e/sqrt(1 - b2) gives the same step; equivalently outside with e == eps-hat with e*sqrt(1-b2)
    hat = trajectory("adam[eps_placement=eps_hat]", w0, [g], lr=0.1, eps=eps * math.sqrt(1 - b2), beta2=b2)
    out = trajectory("adam", w0, [g], lr=0.1, eps=eps, beta2=b2)
    np.testing.assert_allclose(hat.params, out.params, rtol=1e-12, atol=1e-14)


@SETTINGS
@given(w0=params, grads=grad_seqs(steps=6), eps=st.floats(1e-8, 1e-1), lr=st.floats(1e-3, 0.5))
def test_eps_hat_every_step(w0, grads, eps, lr):
    # every step t: Delta_t = lr*sqrt(bc2)/bc1 * m_t/(sqrt(v_t) + e)          (Keras form)
    #                       = lr*m_hat/(sqrt(v_hat) + e/sqrt(bc2))           (eps outside with e/sqrt(bc2))
    # m_t, v_t recomputed independently from the gradients
    b1, b2 = 0.9, 0.999
    run = trajectory("adam_eps_hat", w0, grads, lr=lr, eps=eps)
    m = v = np.zeros(N)
    for t, g in enumerate(grads, start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        np.testing.assert_allclose(run.state["m"][t], m, rtol=1e-13, atol=1e-16)
        np.testing.assert_allclose(run.state["v"][t], v, rtol=1e-13, atol=1e-16)
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        keras = lr * math.sqrt(bc2) / bc1 * m / (np.sqrt(v) + eps)
        outside = lr * (m / bc1) / (np.sqrt(v / bc2) + eps / math.sqrt(bc2))
        delta = run.params[t - 1] - run.params[t]
        np.testing.assert_allclose(delta, keras, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(delta, outside, rtol=1e-9, atol=1e-15)


# --- torch-form momentum == lr-inside form for constant lr, differs after an lr change --------------

@SETTINGS
@given(w0=params, grads=grad_seqs(steps=5), lr=st.floats(1e-3, 0.5), mu=st.floats(0.0, 0.99), wd=st.floats(0.0, 0.5))
def test_momentum_forms_equal_for_constant_lr(w0, grads, lr, mu, wd):
    a = trajectory("sgd_momentum", w0, grads, lr=lr, momentum=mu, weight_decay=wd)
    b = trajectory("sgd_momentum_inside", w0, grads, lr=lr, momentum=mu, weight_decay=wd)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10, atol=1e-12)
    # the buffers differ by the factor -lr: velocity = -lr*buffer
    np.testing.assert_allclose(b.state["velocity"], -lr * a.state["momentum"], rtol=1e-10, atol=1e-12)


@SETTINGS
@given(w0=params, g1=arrays(N, nonzero), g2=arrays(N, nonzero), g3=arrays(N), mu=st.floats(0.1, 0.99),
       lr2=st.floats(0.01, 0.5), lr3=st.floats(0.01, 0.5))
def test_momentum_forms_differ_after_lr_change(w0, g1, g2, g3, mu, lr2, lr3):
    # torch:  w3 = w2 - lr3*(mu*b2 + g3),  b2 = mu*g1 + g2
    # inside: v2 = -lr2*b2 (constant lr until step 2), w3 = w2 + mu*v2 - lr3*g3
    # => w3_inside - w3_torch = mu*b2*(lr3 - lr2)
    assume(abs(lr3 - lr2) > 1e-3)
    b2 = mu * g1 + g2
    assume(np.all(np.abs(b2) > 1e-2))
    lrs = [lr2, lr2, lr3]
    a = trajectory("sgd_momentum", w0, [g1, g2, g3], lr=lrs, momentum=mu)
    b = trajectory("sgd_momentum_inside", w0, [g1, g2, g3], lr=lrs, momentum=mu)
    np.testing.assert_allclose(a.params[:3], b.params[:3], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.params[3] - a.params[3], mu * b2 * (lr3 - lr2), rtol=1e-7, atol=1e-12)
    assert np.all(b.params[3] != a.params[3])


# --- decay is monotone in wd (zero gradient) ---------------------------------------------------------
# Decoupled decay shrinks by a factor (1 - s(wd)) with s increasing in wd; coupled SGD-like rules
# (sgd, momentum, RAdam's un-rectified lr*m_hat steps) shrink linearly in wd. Normalised coupled rules
# (Adam-L2, AdaGrad, RMSprop, NAdam, Adamax): the zero-gradient step lr*g'/(|g'|+eps)-like is
# increasing in g' = wd*w, but from step 2 on the run is (up to eps) scale-invariant in wd, so only the
# first step is monotone. LAMB is independent of wd for wd > 0 ((1-lr)^t), so only non-increasing.
NORMALISED_COUPLED = {"adagrad", "adagrad_eps_inside", "rmsprop", "rmsprop_momentum", "rmsprop_eps_inside",
                      "adam_l2", "mxnet_adam", "nadam", "adamax"}
WD_FREE_FOR_POSITIVE_WD = {"lamb", "lamb_uncorrected"}


def test_decaying_presets_classified():
    """The two classes follow from the knobs, so a new preset lands in the right one: coupled decay under
    a second-moment normalisation (every coupled family but SGD, and RAdam, whose first steps are
    unrectified momentum steps), and a trust ratio over the decayed update (`with_decay`)."""
    knobs = {name: get_rule(name).knobs for name in DECAYING}
    assert NORMALISED_COUPLED == {n for n, k in knobs.items()
                                  if k["decay"] == "coupled" and get_rule(n).family not in ("sgd", "radam")}
    assert WD_FREE_FOR_POSITIVE_WD == {n for n, k in knobs.items()
                                       if k.get("trust_ratio") == "on" and k.get("trust_ratio_scope") == "with_decay"}


@pytest.mark.parametrize("rule", DECAYING)
@SETTINGS
@given(w0=arrays(N, st.floats(0.5, 5.0).flatmap(lambda x: st.sampled_from([x, -x]))),
       wd1=st.one_of(st.just(0.0), st.floats(1e-3, 0.4)), delta=st.floats(0.01, 0.1))
@example(w0=np.array([1.0, -2.0, 0.5]), wd1=0.0, delta=0.1)
def test_decay_monotone_in_wd(rule, w0, wd1, delta):
    steps = 1 if rule in NORMALISED_COUPLED else 5
    zeros = [np.zeros(N)] * steps
    lo = trajectory(rule, w0, zeros, lr=0.01, weight_decay=wd1)
    hi = trajectory(rule, w0, zeros, lr=0.01, weight_decay=wd1 + delta)
    a, b = np.abs(lo.params[-1]), np.abs(hi.params[-1])
    assert np.all(np.sign(hi.params[-1]) == np.sign(w0))       # no overshoot in this range
    if rule in WD_FREE_FOR_POSITIVE_WD and wd1 > 0.0:
        np.testing.assert_allclose(b, a, rtol=1e-13)              # (1 - lr)^t for every wd > 0
    else:
        assert np.all(b < a)


# --- NaN in a gradient propagates to that element only -------------------------------------------------
#: Families whose update mixes a tensor's elements (Muon's Newton-Schulz, Adafactor's RMS clipping, parameter
#: scale and factored means): a NaN spreads over the tensor (tests below).
MIXING_FAMILIES = ("muon", "adafactor")
ELEMENTWISE = [name for name, r in rules().items() if r.knobs.get("trust_ratio", "off") == "off"
               and r.family not in MIXING_FAMILIES]


@pytest.mark.parametrize("rule", ELEMENTWISE)
@SETTINGS
@given(w0=params, grads=grad_seqs(), j=st.integers(0, N - 1), k=st.integers(0, T - 1))
def test_nan_propagates_elementwise(rule, w0, grads, j, k):
    bad = [g.copy() for g in grads]
    bad[k][j] = np.nan
    clean = [g.copy() for g in grads]
    clean[k][j] = 0.0
    hp = dict(lr=0.05, **decay_hp(rule, 0.05))
    nan_run = trajectory(rule, w0, bad, **hp)
    ref_run = trajectory(rule, w0, clean, **hp)
    others = [i for i in range(N) if i != j]
    assert np.all(np.isnan(nan_run.params[k + 1:, j]))          # from step k+1 (1-based) on
    np.testing.assert_array_equal(nan_run.params[:k + 1], ref_run.params[:k + 1])
    np.testing.assert_array_equal(nan_run.params[:, others], ref_run.params[:, others])
    assert np.all(np.isfinite(nan_run.params[:, others]))


def _nan_lamb_run(rule):
    g = [{"a": np.array([1.0, np.nan]), "b": np.array([0.5, -0.5])}]
    run = trajectory(rule, {"a": np.array([1.0, 2.0]), "b": np.array([1.0, 2.0])}, g, lr=0.1, weight_decay=0.1)
    alone = trajectory(rule, {"b": np.array([1.0, 2.0])}, [{"b": np.array([0.5, -0.5])}], lr=0.1, weight_decay=0.1)
    # the other tensor is untouched by the NaN (trust ratios are per tensor)
    np.testing.assert_array_equal(run.params["b"], alone.params["b"])
    return run.params["a"][1]


@pytest.mark.parametrize("rule", ["lamb", "lamb_uncorrected", "lamb_decay_outside"])
def test_nan_in_lamb_makes_the_tensor_nan(rule):
    # lamb mirrors optax.lamb and mxnet LAMB. optax scale_by_trust_ratio: trust_ratio = ||w||/||u||,
    # replaced by 1 only where `param_norm == 0. or update_norm == 0.` -- a NaN norm is not 0, so the ratio
    # is ||w||/NaN = NaN and the whole tensor becomes NaN (IEEE, as the reference's trajectory docstring
    # promises: "nothing is filtered"). MXNet LAMB phase 2 (semantics.md §4): ratio 1 iff r1 == 0 or r2 == 0.
    # spec/knobs.toml trust_ratio: "||w|| / ||u|| (1 when either norm is 0)". The reference applies this to
    # every LAMB preset; ALBERT and Keras test `> 0` (tf.greater) and would give ratio 1 on a NaN norm --
    # a native difference that only non-finite gradients can show (not a knob).
    a = _nan_lamb_run(rule)
    assert np.all(np.isnan(a)), f"expected the whole tensor NaN (ratio = ||w||/NaN), got {a}"


# --- Muon: the update is a matrix function (spec/muon.md) ---------------------------------------------
MUON = [name for name, r in rules().items() if r.family in MATRIX_FAMILIES]
matrices = arrays(6, nonzero).map(lambda x: x.reshape(2, 3))


@pytest.mark.parametrize("rule", MUON)
@SETTINGS
@given(w0=matrices, wd1=st.floats(0.0, 1.0), delta=st.floats(0.01, 1.0))
def test_muon_zero_gradient_is_a_pure_shrink_monotone_in_wd(rule, w0, wd1, delta):
    # NS(0) = 0/(0 + eps) or 0/max(0, eps) = 0: only the decoupled shrink (1 - lr*wd)^t acts
    zeros = [np.zeros((2, 3))] * 4
    lo = trajectory(rule, w0, zeros, lr=0.01, weight_decay=wd1)
    hi = trajectory(rule, w0, zeros, lr=0.01, weight_decay=wd1 + delta)
    np.testing.assert_allclose(lo.params[-1], w0 * (1 - 0.01 * wd1) ** 4, rtol=1e-13)
    assert np.all(np.abs(hi.params[-1]) < np.abs(lo.params[-1]))


@pytest.mark.parametrize("rule", MUON)
@SETTINGS
@given(w0=matrices, grads=st.lists(arrays(6).map(lambda x: x.reshape(2, 3)), min_size=T, max_size=T),
       j=st.integers(0, 5), k=st.integers(0, T - 1))
def test_muon_nan_spreads_to_the_whole_matrix_only(rule, w0, grads, j, k):
    # the Frobenius norm and the products X X^T mix every element: one NaN gradient element makes the whole
    # matrix NaN from that step on; another tensor is untouched
    bad = [g.copy() for g in grads]
    bad[k].flat[j] = np.nan
    other = np.ones((3, 2))
    run = trajectory(rule, {"m": w0, "o": other}, [{"m": g, "o": np.full((3, 2), 0.5)} for g in bad], lr=0.05)
    alone = trajectory(rule, {"o": other}, [{"o": np.full((3, 2), 0.5)} for _ in bad], lr=0.05)
    assert np.all(np.isnan(run.params["m"][k + 1:])) and np.all(np.isfinite(run.params["m"][:k + 1]))
    np.testing.assert_array_equal(run.params["o"], alone.params["o"])


@pytest.mark.parametrize("rule", MUON)
@SETTINGS
@given(w0=matrices, grads=st.lists(arrays(6).map(lambda x: x.reshape(2, 3)), min_size=T, max_size=T),
       scale=st.floats(1e-2, 1e2))
def test_muon_is_invariant_to_the_gradient_scale_away_from_eps(rule, w0, grads, scale):
    # NS sees X/||X||: scaling every gradient by c > 0 leaves the trajectory unchanged when eps is negligible
    assume(all(np.linalg.norm(g) > 1e-2 for g in grads))
    a = trajectory(rule, w0, grads, lr=0.05, eps=0.0)
    b = trajectory(rule, w0, [scale * g for g in grads], lr=0.05, eps=0.0)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-12)


ADAFACTOR = [name for name, r in rules().items() if r.family == "adafactor"]


@pytest.mark.parametrize("rule", ADAFACTOR)
@SETTINGS
@given(w0=params, grads=grad_seqs(), j=st.integers(0, N - 1), k=st.integers(0, T - 1))
def test_adafactor_nan_spreads_to_the_whole_tensor_only(rule, w0, grads, j, k):
    # RMS(u) of the update clipping (and the factored means of a matrix) read every element: one NaN
    # gradient element makes the whole tensor NaN from that step on; another tensor is untouched
    bad = [g.copy() for g in grads]
    bad[k][j] = np.nan
    run = trajectory(rule, {"a": w0, "o": np.ones(2)}, [{"a": g, "o": np.full(2, 0.5)} for g in bad], lr=0.05)
    alone = trajectory(rule, {"o": np.ones(2)}, [{"o": np.full(2, 0.5)} for _ in bad], lr=0.05)
    assert np.all(np.isnan(run.params["a"][k + 1:])) and np.all(np.isfinite(run.params["a"][:k + 1]))
    np.testing.assert_array_equal(run.params["o"], alone.params["o"])
