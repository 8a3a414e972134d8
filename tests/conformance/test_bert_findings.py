"""The BERT-lineage findings as named tests (adapters/bert, adapters/bert_tf).

Which optimizer reproduces google-research/bert's AdamWeightDecayOptimizer exactly, which ports only
claim to, and what their defaults (clipping, warmup schedules, exclusion) really do. The defaults
and schedules cannot run a golden as-is (every golden has clipping off and its own lr sequence), so
they are compared with the reference run on a golden's scenario with the port's documented
hyper-parameters or multiplier sequence, under the same tolerance model.

Each lane requires its framework when OPTCONFORM_REQUIRE names it (a missing import fails, never skips).
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from optconform import plan, runner
from optconform.testing import case_by_id, golden_named, required_frameworks, run_row
from optconform.reference import get_rule, trajectory
from optconform.reference.rules import same_maths
from optconform.reference.tolerance import error_units, tolerance

pytestmark = pytest.mark.framework("bert", "bert-tf")

REQUIRE = required_frameworks()


def _adapter(name: str):
    from optconform.adapters.base import AdapterUnavailable
    from optconform.registry import load_adapter
    adapter = load_adapter(name)
    try:
        adapter.load()
    except AdapterUnavailable as exc:
        if name in REQUIRE:
            raise
        pytest.skip(f"{name} is not installed: {exc}")
    return adapter


@pytest.fixture(scope="module")
def bert():
    return _adapter("bert")


@pytest.fixture(scope="module")
def bert_tf():
    return _adapter("bert-tf")


_case, _golden, _run = case_by_id, golden_named, run_row


def _units(native, expected, dtype: str, rule: str) -> float:
    """Worst error of a native params trajectory vs an expected one, in tolerance units."""
    knobs = get_rule(rule).knobs
    worst = 0.0
    for name, exp in expected.items():
        exp = np.asarray(exp, dtype=np.float64)
        if exp.size:
            worst = max(worst, float(error_units(np.asarray(native[name]), exp, tolerance(exp, dtype, knobs)).max()))
    return worst


def _reference(rule: str, golden, **hp):
    """The reference run of `rule` on `golden`'s scenario with the golden's hyper-parameters, `hp` overriding."""
    r = get_rule(rule)
    base = {k: v for k, v in golden.run_hp.items() if k in r.defaults}
    base.update(lr=list(golden.lr), eta=list(golden.eta))
    base.update(hp)
    return trajectory(r, dict(golden.params0), list(golden.grads), **base).params


# ---------------------------------------------------------------------------------------------- torch


BERTADAM = "bert-BertAdam(max_grad_norm=-1)[param_groups]"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bertadam_with_param_groups_reproduces_bert_exactly(bert, dtype):
    """BertAdam(warmup=-1, t_total=-1, max_grad_norm=-1) with BERT's no-decay param groups is
    google-research/bert's AdamWeightDecayOptimizer: every bert_adamw golden, exclusion probe included."""
    result = _run(bert, BERTADAM, dtype)
    assert result.verdict == "conforms" and result.matched_rule == "bert_adamw"
    assert "bert_adamw__exclusion_names" not in result.goldens_failed and result.goldens_run >= 10
    for other in ("adamw", "adamw_eps_hat", "transformers_adamw"):
        assert result.candidate_units[other] > 100, other
    golden = _golden("bert_adamw__exclusion_names")
    case = _case(bert, BERTADAM)
    native = bert.run(case, plan.run_input(case, golden, bert.supports_eta), "cpu", "float64").params
    for name in ("LayerNorm/gamma", "dense/bias", "encoder/layer_norm/beta"):
        assert np.array_equal(native[name][-1], native[name][0]), f"{name} must be excluded from decay"
    assert not np.array_equal(native["dense/kernel"][-1], native["dense/kernel"][0])


def test_bertadam_without_param_groups_decays_layernorm_and_bias(bert):
    """BertAdam has no exclusion list: without param groups every tensor decays, unlike BERT."""
    golden = _golden("bert_adamw__exclusion_names")
    case = _case(bert, BERTADAM)
    inp = plan.run_input(case, golden, bert.supports_eta)
    inp = dataclasses.replace(inp, hp={**inp.hp, "weight_decay_exclude": []})     # one param group
    native = bert.run(case, inp, "cpu", "float64").params
    assert _units(native, _reference("bert_adamw", golden, weight_decay_exclude=[]), "float64", "bert_adamw") <= 1.0
    assert _units(native, golden.params, "float64", "bert_adamw") > 100


def _torch_clip(grads, max_norm: float):
    """torch.nn.utils.clip_grad_norm_ on one tensor, in float64: g * min(1, max_norm/(||g|| + 1e-6))."""
    out = []
    for step in grads:
        clipped = {}
        for name, g in step.items():
            g = np.asarray(g, dtype=np.float64)
            clipped[name] = g * min(1.0, max_norm / (float(np.linalg.norm(g)) + 1e-6))
        out.append(clipped)
    return out


def test_bertadam_defaults_clip_each_tensor_the_torch_way(bert):
    """BertAdam(lr) with its defaults (max_grad_norm=1.0, wd 0.01, no schedule, no param groups) is
    bert_adamw without exclusion after torch's per-tensor clip_grad_norm_(p, 1.0), whose coefficient is
    1/(||g|| + 1e-6): the spec's clip_norm (1/max(||g||, 1)) differs from it by ~1e-6 relative."""
    from pytorch_pretrained_bert.optimization import BertAdam
    import torch
    golden = _golden("bert_adamw__lr_halved")          # gradient norms 0.9 ... 1.5: the clip is active
    params = [torch.tensor(np.asarray(golden.params0[n]), dtype=torch.float64, requires_grad=True)
              for n in golden.tensors]
    opt = BertAdam(params, lr=golden.lr[0])
    native = {n: [np.asarray(golden.params0[n], dtype=np.float64)] for n in golden.tensors}
    for t, grads in enumerate(golden.grads):
        for n, p in zip(golden.tensors, params):
            p.grad = torch.tensor(np.asarray(grads[n]), dtype=torch.float64)
        for group in opt.param_groups:
            group["lr"] = golden.lr[t]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # BertAdam's deprecated add_(Number, Tensor) overloads
            opt.step()
        for n, p in zip(golden.tensors, params):
            native[n].append(p.detach().numpy().copy())
    native = {n: np.stack(v) for n, v in native.items()}
    rule = get_rule("bert_adamw")
    hp = {k: v for k, v in golden.run_hp.items() if k in rule.defaults}
    hp.update(lr=list(golden.lr), weight_decay=0.01, weight_decay_exclude=[])
    torch_clipped = trajectory(rule, dict(golden.params0), _torch_clip(golden.grads, 1.0), **hp).params
    assert _units(native, torch_clipped, "float64", "bert_adamw") <= 1.0
    spec_clip = trajectory(rule, dict(golden.params0), list(golden.grads), **{**hp, "clip_norm": 1.0}).params
    assert _units(native, spec_clip, "float64", "bert_adamw") > 1.0
    unclipped = trajectory(rule, dict(golden.params0), list(golden.grads), **hp).params
    assert _units(native, unclipped, "float64", "bert_adamw") > 1e6


def _bertadam_multipliers(warmup: float, t_total: int, steps: int) -> list[float]:
    """WarmupLinearSchedule as documented: progress = updates so far / t_total; x/warmup while
    x < warmup, then max((x - 1)/(warmup - 1), 0)."""
    out = []
    for step in range(steps):
        x = step / t_total
        out.append(x / warmup if x < warmup else max((x - 1.0) / (warmup - 1.0), 0.0))
    return out


def _bert_tf1_multipliers(num_warmup: int, num_train: int, steps: int) -> list[float]:
    """google-research/bert create_optimizer: global_step/num_warmup while global_step < num_warmup,
    else the polynomial (linear) decay 1 - global_step/num_train, which starts at global step 0."""
    return [g / num_warmup if g < num_warmup else max(1.0 - g / num_train, 0.0) for g in range(steps)]


def test_bertadam_warmup_linear_gives_lr_zero_on_the_first_update(bert):
    """BertAdam(warmup=0.25, t_total=8): the first update has lr multiplier 0 (w1 == w0 exactly), as in
    BERT; after the warmup BertAdam decays from 1 while BERT's create_optimizer decays from 1 - 2/8."""
    golden = _golden("bert_adamw__grad_drop")         # 8 steps, constant lr 0.1
    case = dataclasses.replace(_case(bert, BERTADAM), kwargs={"warmup": 0.25, "t_total": 8, "max_grad_norm": -1.0})
    inp = plan.run_input(case, golden, bert.supports_eta)
    native = bert.run(case, inp, "cpu", "float64").params
    for name in golden.tensors:
        assert np.array_equal(native[name][1], native[name][0]), "lr multiplier 0 on the first update"
    mine = _bertadam_multipliers(0.25, 8, golden.steps)
    assert mine[:3] == [0.0, 0.5, 1.0]
    lr = [golden.lr[t] * mine[t] for t in range(golden.steps)]
    assert _units(native, _reference("bert_adamw", golden, lr=lr), "float64", "bert_adamw") <= 1.0
    theirs = _bert_tf1_multipliers(2, 8, golden.steps)
    assert theirs[:3] == [0.0, 0.5, 0.75]
    lr_bert = [golden.lr[t] * theirs[t] for t in range(golden.steps)]
    assert _units(native, _reference("bert_adamw", golden, lr=lr_bert), "float64", "bert_adamw") > 100


def test_bertadam_schedule_multiplier_is_eta_times_lr(bert):
    """The _LRSchedule hook multiplies the step and the decay alike: decay x lr_t*eta_t, never x eta alone."""
    result = _run(bert, "bert-BertAdam(max_grad_norm=-1,schedule)[schedule_hook]", "float64")
    assert result.verdict == "conforms" and result.matched_rule == "bert_adamw"
    assert any(g.name == "bert_adamw__eta_schedule" for g in plan.goldens_for(
        _case(bert, "bert-BertAdam(max_grad_norm=-1,schedule)[schedule_hook]"), bert.supports_eta))


def test_transformers_adamw_correct_bias_false_is_not_bert(bert):
    """transformers.AdamW(correct_bias=False) ('in Bert TF repository they use False') decays the
    post-step weight: BERT's rule with decay_order=after, not BERT's rule, even with BERT's param groups."""
    result = _run(bert, "bert-transformers.AdamW(correct_bias=False)[param_groups]", "float64")
    assert result.verdict == "conforms" and result.matched_rule == "bert_adamw[decay_order=after]"
    assert result.candidate_units["bert_adamw"] > 100
    assert "bert_adamw__large_decay" in [g.name for g in plan.goldens_for(
        _case(bert, "bert-transformers.AdamW(correct_bias=False)[param_groups]"), bert.supports_eta)]


def test_transformers_adamw_is_eps_hat_with_decay_after_the_step(bert):
    result = _run(bert, "bert-transformers.AdamW(correct_bias=True)[param_groups]", "float64")
    assert result.verdict == "conforms" and result.matched_rule == "transformers_adamw"
    assert result.decay_kind == "decoupled x lr, after step"
    for other in ("adamw", "adamw_eps_hat", "adamw_paper", "bert_adamw"):
        assert result.candidate_units[other] > 100, other


TRANSFORMERS_ADAFACTOR = "bert-transformers.Adafactor(scale_parameter=True)[param_groups]"


def test_transformers_adafactor_scales_its_decay_by_the_whole_step(bert):
    """transformers' Adafactor passes its step lr*max(eps2, RMS(w)) as the decay's alpha
    (optimization.py:948-949 at v4.49.0): decay x lr x parameter scale (decay_scaling = relative_step), a
    fourth Adafactor: eps added to g^2 (Keras, optax), no 1/sqrt(t) cap (optax), the pre-decay scale (torch)."""
    result = _run(bert, TRANSFORMERS_ADAFACTOR, "float32")
    assert result.verdict == "conforms" and result.matched_rule == "transformers_adafactor"
    assert result.decay_kind == "decoupled x relative step"
    for other in ("adafactor", "keras_adafactor", "optax_adafactor"):
        assert result.candidate_units[other] > 100, other
    case = _case(bert, TRANSFORMERS_ADAFACTOR)
    golden = _golden("transformers_adafactor__large_decay")
    native = bert.run(case, plan.run_input(case, golden, bert.supports_eta), "cpu", "float64").params
    decay_x_lr = _reference("transformers_adafactor[decay_scaling=lr]", golden)
    assert _units(native, decay_x_lr, "float64", "transformers_adafactor") > 100


def test_transformers_adafactor_without_parameter_scale_decays_x_lr(bert):
    """scale_parameter=False: p = 1, so the whole-step decay is the plain x lr decay."""
    result = _run(bert, "bert-transformers.Adafactor(scale_parameter=False)[param_groups]", "float64")
    assert result.verdict == "conforms" and result.matched_rule == "transformers_adafactor[param_scale=none]"
    golden = _golden("transformers_adafactor__large_decay")
    whole_step = _reference("transformers_adafactor[param_scale=none]", golden)
    decay_x_lr = _reference("transformers_adafactor[param_scale=none,decay_scaling=lr]", golden)
    assert _units(whole_step, decay_x_lr, "float64", "transformers_adafactor") < 0.01


def _adafactor_natively(golden, **kwargs):
    """transformers.optimization.Adafactor(**kwargs) with the golden's eps, eps2, clip threshold, decay rate
    and weight decay, stepped in float64 on its gradients (its own step size: no lr is set per step); the
    params trajectory."""
    import torch
    from transformers.optimization import Adafactor
    hp = golden.run_hp
    params = [torch.tensor(np.asarray(golden.params0[n]), dtype=torch.float64, requires_grad=True)
              for n in golden.tensors]
    opt = Adafactor(params, eps=(hp["eps"], hp["eps2"]), clip_threshold=hp["clip_threshold"],
                    decay_rate=hp["beta2_decay"], weight_decay=hp["weight_decay"], **kwargs)
    native = {n: [np.asarray(golden.params0[n], dtype=np.float64)] for n in golden.tensors}
    for grads in golden.grads:
        for n, p in zip(golden.tensors, params):
            p.grad = torch.tensor(np.asarray(grads[n]), dtype=torch.float64)
        opt.step()
        for n, p in zip(golden.tensors, params):
            native[n].append(p.detach().numpy().copy())
    return {n: np.stack(v) for n, v in native.items()}


def test_transformers_adafactor_relative_step_is_a_constant_lr_for_ten_thousand_steps(bert):
    """The defaults (relative_step=True, lr=None) step min(1e-2, 1/sqrt(t)): lr 1e-2 until t = 10^4, the
    uncapped rule at lr = 1e-2 on every golden; warmup_init=True steps min(1e-6*t, 1/sqrt(t)) = 1e-6*t."""
    golden = _golden("transformers_adafactor__random_wide")
    steps = range(1, golden.steps + 1)
    native = _adafactor_natively(golden)
    constant = _reference("transformers_adafactor", golden, lr=[1e-2] * golden.steps, eta=[1.0] * golden.steps)
    assert _units(native, constant, "float64", "transformers_adafactor") <= 1.0
    capped = _reference("transformers_adafactor[step_size=capped]", golden, lr=[1e-2] * golden.steps,
                        eta=[1.0] * golden.steps)
    assert _units(native, capped, "float64", "transformers_adafactor") <= 1.0
    warm = _adafactor_natively(golden, warmup_init=True)
    linear = _reference("transformers_adafactor", golden, lr=[1e-6 * t for t in steps], eta=[1.0] * golden.steps)
    assert _units(warm, linear, "float64", "transformers_adafactor") <= 1.0
    assert _units(warm, constant, "float64", "transformers_adafactor") > 100


# ---------------------------------------------------------------------------------------------- TF


TFM_BERT_HP = "bert-tf-tfm.AdamWeightDecay(gradient_clip_norm=0)[bert_hp]"


def test_tf_models_adamweightdecay_is_not_bert_adamw(bert_tf):
    """tf-models AdamWeightDecay (docstring lineage: BERT's optimizer) is bias-corrected and eps-hat:
    on BERT's own goldens it is far from bert_adamw and is adamw_eps_hat's maths; its float32 bias
    correction is modelled (powers=param, spec/tolerance.md "Scalar precision"), so it conforms."""
    case = _case(bert_tf, TFM_BERT_HP)
    result = runner.run_case(bert_tf, case, "cpu", "float32", bert_tf.version())
    assert case.documented_rule == "bert_adamw"
    assert result.candidate_units["bert_adamw"] > 1e4, "must not match bert_adamw"
    assert same_maths(get_rule(result.matched_rule), get_rule("adamw_eps_hat"))
    assert result.verdict == "conforms", result.first_divergence
    assert result.matched_units < result.candidate_units["bert_adamw"] / 1e4
    assert result.decay_kind == "decoupled x lr" and result.semantics["separation"] >= 100


def test_original_bert_adamweightdecayoptimizer_is_bert_adamw(bert_tf):
    result = _run(bert_tf, "bert-tf-bert.AdamWeightDecayOptimizer[tf1_graph]", "float32")
    assert result.verdict == "conforms" and result.matched_rule == "bert_adamw"
    assert result.candidate_units["adamw_eps_hat"] > 100


def test_tf_models_lamb_is_lamb_with_bias_correction(bert_tf):
    result = _run(bert_tf, "bert-tf-tfm.LAMB[eager]", "float64")
    assert result.verdict == "conforms" and result.matched_rule == "lamb"
    assert result.candidate_units["lamb_uncorrected"] > 100


def test_tf_models_adamweightdecay_rejects_float64(bert_tf):
    """Its weight_decay_rate is a float32 constant, so float64 variables fail (why the case is float32 only)."""
    tf = bert_tf.load()
    from official.modeling.optimization.legacy_adamw import AdamWeightDecay
    opt = AdamWeightDecay(learning_rate=0.1, weight_decay_rate=0.01, gradient_clip_norm=0.0)
    var = tf.Variable(np.ones(3), dtype=tf.float64, name="dense/kernel")
    with pytest.raises(Exception):
        opt.apply_gradients([(tf.constant(np.ones(3), dtype=tf.float64), var)])


def test_tf_models_adamweightdecay_defaults_clip_the_global_norm(bert_tf):
    """AdamWeightDecay(learning_rate) with its defaults (gradient_clip_norm=1.0, eps 1e-7, wd 0) is
    adamw_eps_hat with clip_global_norm=1.0, the clip applied inside apply_gradients."""
    tf = bert_tf.load()
    from official.modeling.optimization.legacy_adamw import AdamWeightDecay
    golden = _golden("adamw_eps_hat__lr_halved")      # gradient norm 0.9 ... 1.5: the clip is active
    opt = AdamWeightDecay(learning_rate=golden.lr[0])
    variables = [tf.Variable(np.asarray(golden.params0[n]), dtype=tf.float32, name=n) for n in golden.tensors]
    native = {n: [np.asarray(golden.params0[n], dtype=np.float64)] for n in golden.tensors}
    for t, grads in enumerate(golden.grads):
        opt.learning_rate = golden.lr[t]
        opt.apply_gradients([(tf.constant(np.asarray(grads[n]), dtype=tf.float32), v)
                             for n, v in zip(golden.tensors, variables)])
        for n, v in zip(golden.tensors, variables):
            native[n].append(v.numpy().astype(np.float64))
    native = {n: np.stack(v) for n, v in native.items()}
    f32 = lambda x: float(np.float32(x))     # noqa: E731  (legacy Keras hyper-parameters are float32)
    expected = _reference("adamw_eps_hat", golden, lr=[f32(x) for x in golden.lr], beta1=f32(0.9), beta2=f32(0.999),
                          eps=f32(1e-7), weight_decay=0.0, clip_global_norm=1.0)
    assert _units(native, expected, "float32", "adamw_eps_hat") <= 1.0
    unclipped = _reference("adamw_eps_hat", golden, lr=[f32(x) for x in golden.lr], beta1=f32(0.9),
                           beta2=f32(0.999), eps=f32(1e-7), weight_decay=0.0)
    assert _units(native, unclipped, "float32", "adamw_eps_hat") > 100


def test_tf_models_exclusion_sees_the_tensor_suffix(bert_tf):
    """tf-models AdamWeightDecay matches its regexes against var.name with ':0'; BERT strips the suffix
    first. A pattern anchored at the end ('bias$') excludes dense/bias in BERT but not in tf-models."""
    golden = _golden("bert_adamw__exclusion_names")
    out = {}
    for case_id in (TFM_BERT_HP, "bert-tf-bert.AdamWeightDecayOptimizer[tf1_graph]"):
        case = _case(bert_tf, case_id)
        inp = plan.run_input(case, golden, bert_tf.supports_eta)
        inp = dataclasses.replace(inp, hp={**inp.hp, "weight_decay_exclude": ["bias$"]})
        out[case_id] = bert_tf.run(case, inp, "cpu", "float32").params["dense/bias"]
    assert np.array_equal(out["bert-tf-bert.AdamWeightDecayOptimizer[tf1_graph]"][-1], golden.params0["dense/bias"])
    assert not np.array_equal(out[TFM_BERT_HP][-1], golden.params0["dense/bias"])
