"""The Keras 3 findings, as named tests, on whichever Keras backend this process runs ("tensorflow" or
"keras-jax": a process can hold only one Keras backend, so each tox lane runs this file once).

- Keras `Adam(weight_decay)` is AdamW: decoupled, x lr, before the step, eps-hat; bitwise equal to `AdamW`.
- Keras has no coupled L2: every optimizer's weight_decay is the same decoupled pre-step shrink.
- `exclude_from_weight_decay(var_names=[...])` matches a regex against the variable's *name*.
- eager, tf.function and XLA (TF) / eager and jax.jit (JAX) agree within tolerance.
- The TF and JAX backends match the same rules (one expected table, asserted in both lanes).
- clipnorm / global_clipnorm clip before the decay (checked against the reference: no golden has them).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optconform import compare, deviations, plan
from optconform.golden.format import Golden
from optconform.testing import golden_named, keras_lane_adapter, native_params, run_row
from optconform.reference import get_rule, trajectory
from optconform.reference.precision import FLOAT32
from optconform.reference.tolerance import error_units, tolerance

pytestmark = pytest.mark.framework("tensorflow", "keras-jax")

ADAPTER = keras_lane_adapter()
EAGER = "eager"
COMPILED = ("graph", "xla") if ADAPTER.name == "tensorflow" else ("jit",)


def _case(name: str, variant: str = EAGER):
    return next(c for c in ADAPTER.cases() if c.name == name and c.variant == variant)


def _run(name: str, dtype: str = "float64", variant: str = EAGER):
    return run_row(ADAPTER, _case(name, variant).id, dtype)


def _native(case, golden: Golden, dtype: str):
    return native_params(ADAPTER, case, golden, dtype)


_golden = golden_named


def test_adam_weight_decay_is_adamw_bitwise():
    """Adam(weight_decay=x) and AdamW(weight_decay=x) are the same code path: identical trajectories."""
    adam, adamw = _case("Adam(weight_decay)"), _case("AdamW")
    for golden in plan.goldens_for(adam):
        for dtype in ("float64", "float32"):
            a, b = _native(adam, golden, dtype), _native(adamw, golden, dtype)
            for name in golden.tensors:
                np.testing.assert_array_equal(a[name], b[name], err_msg=f"{golden.name} {name} {dtype}")


def test_adam_weight_decay_is_decoupled_times_lr_eps_hat():
    """Decoupled x lr before the step with eps-hat: adamw_eps_hat is nearer by orders of magnitude than
    coupled L2 (adam_l2), eps on the corrected root (adamw) or decay x eta only (adamw_paper)."""
    result = _run("Adam(weight_decay)", "float32")
    units = result.candidate_units
    assert compare.decay_kind("adamw_eps_hat") == "decoupled x lr"
    assert units["adamw_eps_hat"] < 10
    for other in ("adam_l2", "adamw", "adamw_paper", "transformers_adamw"):
        assert units[other] > 100 * max(units["adamw_eps_hat"], 1.0), (other, units)


@pytest.mark.parametrize("name,coupled", [
    ("SGD(weight_decay)", None),                      # plain SGD: coupled and decoupled are the same maths
    ("SGD(momentum,weight_decay)", "sgd_momentum_inside"),
    ("Adagrad(weight_decay)", "adagrad_eps_inside"),
    ("RMSprop(weight_decay)", "rmsprop_eps_inside"),
    ("Nadam(weight_decay)", "nadam"),
    ("Adamax(weight_decay)", "adamax[eps_placement=outside_max]"),
])
def test_keras_has_no_coupled_l2(name, coupled):
    """Every Keras weight_decay is decoupled x lr, never L2 in the gradient: the coupled form of the
    same optimizer is far off on the goldens."""
    case = _case(name)
    assert get_rule(case.rule).knobs["decay"] == "decoupled"
    if coupled is None:
        return
    runs = [(g, _native(case, g, "float32")) for g in plan.goldens_for(case)]
    runs = [(g, n) for g, n in runs if all(np.all(np.isfinite(n[t])) for t in g.tensors)]  # registered TF bug
    worst = {rule: compare.worst_units(rule, runs, "float32", case.precision) for rule in (case.rule, coupled)}
    assert worst[coupled] > 100 * max(worst[case.rule], 1.0), worst


def test_exclude_from_weight_decay_matches_the_variable_name_not_the_layer():
    """exclude_from_weight_decay(var_names=['LayerNorm', 'layer_norm', 'bias']) (BERT's list, what a user
    writes for layers named like BERT's) on variables whose path is the golden tensor name
    (`keras.Variable(name='gamma')` inside `keras.name_scope('LayerNorm')`, like a layer's weight).
    JAX backend: the regex sees `variable.name` = 'gamma' -> layer names never match, only 'bias' does.
    TF backend: TF's `_apply_weight_decay` override hands the *tf.Variable* to `_use_weight_decay`, whose
    name is the scoped path 'LayerNorm/gamma:0' -> layer names match. The two backends differ."""
    case = _case("AdamW.exclude_from_weight_decay(var_names)")
    golden = _golden("bert_adamw__exclusion_names")
    native = _native(case, golden, "float64")
    rule = get_rule(case.rule)
    precision = case.precision.resolved("float64")
    hp = {**precision.round_hp({**plan.scenario_hp(case.rule, golden), "lr": list(golden.lr)}),
          "weight_decay_exclude": ()}
    with_decay = trajectory(rule, dict(golden.params0), list(golden.grads),                 # nothing excluded
                            power_betas=compare.power_betas(case.rule, golden, precision), **hp).params
    excluded = compare.expected(case.rule, golden, precision)                                # BERT's exclusions
    decayed = {}
    for name in golden.tensors:
        tol = tolerance(np.asarray(excluded[name]), "float64", rule.knobs)
        off_excluded = float(np.max(error_units(native[name], np.asarray(excluded[name]), tol), initial=0.0))
        off_decayed = float(np.max(error_units(native[name], np.asarray(with_decay[name]), tol), initial=0.0))
        assert min(off_excluded, off_decayed) <= 1.0, (name, off_excluded, off_decayed)
        decayed[name] = off_decayed <= off_excluded          # equal (both 0) when the tensor is never excluded
    assert decayed == EXPECTED_DECAYED[ADAPTER.name], decayed


#: Which tensors Keras still decays under var_names=['LayerNorm', 'layer_norm', 'bias'].
EXPECTED_DECAYED = {
    "tensorflow": {"LayerNorm/gamma": False, "dense/bias": False, "dense/kernel": True, "encoder/layer_norm/beta": False},
    "keras-jax": {"LayerNorm/gamma": True, "dense/bias": False, "dense/kernel": True, "encoder/layer_norm/beta": True},
}


@pytest.mark.parametrize("variant", COMPILED)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_variants_agree_with_eager(variant, dtype):
    """tf.function / XLA (TF) and jax.jit (JAX) are not bitwise equal to eager, but agree within one
    tolerance unit (measured with the eager run as the expected trajectory) on every golden -- except
    where a registered precision deviation puts float32 scalars into the run (keras-jax's float32
    reductions in float64 Muon / Adafactor runs: eager and jit round them differently)."""
    worst, version = 0.0, ADAPTER.version()
    for case in (c for c in ADAPTER.cases() if c.variant == variant and dtype in c.dtypes):
        eager = _case(case.name, EAGER)
        knobs = get_rule(case.rule).knobs
        for golden in plan.goldens_for(case):
            dev = deviations.lookup(ADAPTER.name, version, case.id, golden.name, "cpu", dtype)
            if dev is not None and dev.kind == "precision":
                continue
            a, b = _native(eager, golden, dtype), _native(case, golden, dtype)
            if not all(np.all(np.isfinite(a[n])) for n in golden.tensors):
                continue                    # a registered failure of the native run itself
            worst = max(worst, compare.compare(b, a, golden, dtype, knobs).units)
    assert worst <= 1.0, worst


#: Case -> the rule its float64 run matches, the same table for both backends (TF and JAX agree).
#: Cases registered as precision deviations are compared in float32 where they conform.
@pytest.mark.parametrize("name", ["SGD(weight_decay)", "SGD(momentum,weight_decay)", "SGD(nesterov,weight_decay)",
                                  "RMSprop(centered,momentum,weight_decay)", "Lion(weight_decay)",
                                  "Adamax(weight_decay)", "Adagrad(weight_decay)"])
def test_backends_match_the_same_rule(name):
    result = _run(name, "float32")
    assert result.verdict in ("conforms", "xfail"), result.first_divergence
    assert result.matched_rule == _case(name).rule, result.candidate_units


@pytest.mark.parametrize("kwarg,clip_hp", [("clipnorm", "clip_norm"), ("global_clipnorm", "clip_global_norm")])
def test_norm_clipping_before_decay(kwarg, clip_hp):
    """Keras clipnorm (per tensor) / global_clipnorm (all tensors) clip the gradient before the
    decoupled decay: SGD(momentum, weight_decay) with them matches the reference with clip_norm /
    clip_global_norm on the three-tensor random_wide golden (no golden sets them)."""
    base = _case("SGD(momentum,weight_decay)")
    golden = _golden("sgd_momentum_inside__random_wide")
    clip = 0.05
    case = dataclasses.replace(base, name=f"SGD(momentum,weight_decay,{kwarg})", kwargs={**base.kwargs, kwarg: clip})
    dtype = "float32"
    native = _native(case, golden, dtype)
    rule = get_rule(case.rule)
    hp = {**FLOAT32.round_hp({**plan.scenario_hp(case.rule, golden), "lr": list(golden.lr)}), clip_hp: clip}
    expect = trajectory(rule, dict(golden.params0), list(golden.grads), **hp).params
    plain = trajectory(rule, dict(golden.params0), list(golden.grads),
                       **{k: v for k, v in hp.items() if k != clip_hp}).params
    assert compare.compare(native, expect, golden, dtype, rule.knobs).units <= 1.0
    assert compare.compare(native, plain, golden, dtype, rule.knobs).units > 100, "the clip must be observable"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["AdamW", "Adam(weight_decay)", "AdamW(amsgrad)", "AdamW(clipvalue)"])
def test_adamw_rows_read_decoupled_times_lr(name, dtype):
    """Issue 23: every Keras AdamW / Adam(weight_decay) row names its maths, decoupled x lr with eps-hat,
    in both dtypes; the bias-correction powers from float32 betas are modelled (powers=), so the rows
    conform instead of being registered."""
    result = _run(name, dtype)
    assert result.decay_kind == "decoupled x lr", result.semantics
    assert result.semantics["status"] in ("identified", "equivalent") and result.semantics["separation"] >= 100
    assert get_rule(result.matched_rule).knobs["eps_placement"] == "eps_hat"
    assert result.verdict == "conforms", (result.first_divergence, result.deviation)


# --- Muon (spec/muon.md) ------------------------------------------------------------------------------

def test_muon_is_keras_muon_and_no_other_framework_s():
    """keras.optimizers.Muon: heavy-ball sum buffer, X/(||X|| + 1e-7), rms_rate*sqrt(max(r, c)), decay x lr,
    eps-hat AdamW for non-2-D tensors -- neither torch's nor optax's Muon."""
    result = _run("Muon", "float32")
    assert result.verdict == "conforms" and result.matched_rule == "keras_muon"
    assert result.candidate_units["muon"] > 100 and result.candidate_units["optax_muon"] > 100


def test_muon_rms_rate_none_turns_the_shape_scaling_off():
    result = _run("Muon(rms_rate=None)", "float32")
    assert result.verdict == "conforms" and result.matched_rule == "keras_muon[shape_scaling=none]"
    assert result.candidate_units["keras_muon"] > 100


@pytest.mark.parametrize("rival, golden_name, within", [
    # torch's match_rms_adamw with Keras' AdamW step is Keras' maths on ordinary gradients ...
    ("muon[shape_scaling=rms,non_matrix=adamw_eps_hat]", "keras_muon__muon_varied", True),
    # ... and not where ||X|| ~ eps: +1e-7 vs max(., 1e-7), and the sum buffer is 20x the EMA
    ("muon[shape_scaling=rms,non_matrix=adamw_eps_hat]", "keras_muon__muon_tiny_grad", False),
    ("keras_muon[muon_buffer=ema]", "keras_muon__muon_tiny_grad", False),
    ("keras_muon[non_matrix=adamw_nesterov]", "keras_muon__muon_mixed", False),
])
def test_muon_is_torch_s_rms_muon_except_near_eps(rival, golden_name, within):
    case, golden = _case("Muon"), _golden(golden_name)
    runs = [(golden, _native(case, golden, "float32"))]
    assert compare.worst_units("keras_muon", runs, "float32", case.precision) <= 1
    units = compare.worst_units(rival, runs, "float32", case.precision)
    assert units <= 1 if within else units > 100, units


@pytest.mark.skipif(ADAPTER.name != "tensorflow", reason="the TF backend only")
def test_muon_cannot_step_float64_on_tensorflow():
    """Keras Muon multiplies its float32 learning rate into the float64 update (`lr * update`,
    keras/src/optimizers/muon.py:206, no cast): TF refuses the mixed-dtype Mul, so the TF cases run
    float32 only (on JAX the product promotes)."""
    import keras
    import tensorflow as tf
    var = keras.Variable(np.ones((2, 3)), dtype="float64")
    opt = keras.optimizers.Muon(learning_rate=0.1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="double tensor but is a float tensor"):
        opt.apply([tf.constant(np.ones((2, 3)))], [var])


# --- Adafactor (spec/adafactor.md) --------------------------------------------------------------------

def test_adafactor_scales_by_the_decayed_weight():
    """keras.optimizers.Adafactor: g^2 + eps, capped step, and RMS(w) of the weight the base class already
    decayed (post_decay): > 1e5 float32 units from the pre-decay scale of torch and optax on large_decay."""
    result = _run("Adafactor(weight_decay)", "float32")
    assert result.verdict == "conforms" and result.matched_rule == "keras_adafactor"
    assert result.candidate_units["adafactor"] > 100 and result.candidate_units["optax_adafactor"] > 100
    case, golden = _case("Adafactor(weight_decay)"), _golden("keras_adafactor__large_decay")
    runs = [(golden, _native(case, golden, "float32"))]
    assert compare.worst_units("keras_adafactor[param_scale=pre_decay]", runs, "float32", case.precision) > 1e5


def test_adafactor_relative_step_false_changes_nothing():
    """relative_step=False only skips a min(lr, 1/sqrt(t)) that the next line applies anyway
    (keras/src/optimizers/adafactor.py:144-150): bitwise the same trajectories."""
    plain, flag = _case("Adafactor(weight_decay)"), _case("Adafactor(relative_step=False)")
    for golden in plan.goldens_for(plain)[:4]:
        a, b = _native(plain, golden, "float32"), _native(flag, golden, "float32")
        for name in golden.tensors:
            np.testing.assert_array_equal(a[name], b[name])


# --- Schedule-free AdamW (spec/schedule_free.md) ---------------------------------------------------------

def test_schedule_free_adamw_rule_per_backend():
    """keras.optimizers.ScheduleFreeAdamW: c_t = 1/t and weight_decay a shrink of y (the variable). On JAX it
    is keras_schedule_free_adamw; on TF `momentum_old = momentum.value` is the tf.Variable itself, read
    after it was updated, so x_{t-1} is recovered from the new z: keras_schedule_free_adamw[x_recovery=z_next],
    > 100 float32 units from what it documents (every golden but the empty-variable one, registered)."""
    result = _run("ScheduleFreeAdamW(weight_decay)", "float32")
    if ADAPTER.name == "tensorflow":
        assert result.matched_rule == "keras_schedule_free_adamw[x_recovery=z_next]"
        assert result.verdict == "xfail" and result.goldens_failed == ["keras_schedule_free_adamw__mixed_shapes"]
        assert result.candidate_units["keras_schedule_free_adamw"] > 100
        assert _case("ScheduleFreeAdamW(weight_decay)").documented_rule == "keras_schedule_free_adamw"
    else:
        assert result.verdict == "conforms" and result.matched_rule == "keras_schedule_free_adamw"
    assert result.candidate_units["schedulefree_adamw"] > 100 and result.candidate_units["optax_schedule_free_adamw"] > 100


def test_schedule_free_adamw_has_no_evaluation_point():
    """The variable is always y; Keras has no train/eval swap (x is recoverable as (y - (1-beta_1)*momentum)/beta_1):
    on the warmup probe y and x differ by > 1e-3."""
    from optconform.reference import trajectory
    golden = _golden("keras_schedule_free_adamw__sf_warmup")
    case = _case("ScheduleFreeAdamW(weight_decay)")
    native = _native(case, golden, "float64" if "float64" in case.dtypes else "float32")
    ref = trajectory(case.rule, dict(golden.params0), list(golden.grads), **golden.run_hp)
    for n in golden.tensors:
        assert np.max(np.abs(native[n][-1] - ref.state["x"][n][-1])) > 1e-3
    assert not hasattr(ADAPTER.load().optimizers.ScheduleFreeAdamW, "eval")
