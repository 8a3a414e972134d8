"""The optax findings the suite exists to state, as named tests (float64, CPU, both implementation
variants): which rule each optax alias really implements, told apart from its neighbours by the goldens.

- `optax.adamw` is decoupled x lr (torch AdamW's rule `adamw`), not coupled L2, not x eta;
- coupled L2 the optax way, `chain(add_decayed_weights(wd), adam(...))`, is `adam_l2`;
- `optax.amsgrad` takes the running max over the bias-corrected v (`amsgrad_corrected`, not torch's);
- `optax.nadam` has no momentum schedule (`nadam_no_schedule`); `nadamw` is `nadamw[nadam_schedule=none]`;
- `optax.radam` puts eps on the bias-corrected root (`radam_eps_outside`, not torch's `radam`);
- `optax.lamb` keeps the decay inside the trust ratio (`lamb`, not Keras' `lamb_decay_outside`);
- `optax.rmsprop` puts eps inside the root by default, outside with eps_in_sqrt=False, and its
  momentum holds lr-scaled steps (momentum_form = lr_inside);
- `optax.sgd(momentum)` is the torch momentum form (lr outside the buffer, buffer starts at g);
- an `adamw` mask (pytree or callable) excludes exactly the tensors the spec's regexes name.
"""
from __future__ import annotations


import numpy as np
import pytest

from optconform.testing import require

require('jax', 'jax', 'optax')

from optconform import compare, plan, runner  # noqa: E402
from optconform.adapters.optax import ADAPTER  # noqa: E402
from optconform.reference import get_rule  # noqa: E402

pytestmark = pytest.mark.framework("jax")

VARIANTS = ["eager", "jit"]


def _case(case_id: str):
    return next(c for c in ADAPTER.cases() if c.id == case_id)


def _run(case_id: str, dtype: str = "float64"):
    return runner.run_case(ADAPTER, _case(case_id), "cpu", dtype, ADAPTER.version())


@pytest.mark.parametrize("variant", VARIANTS)
def test_adamw_is_decoupled_times_lr_like_torch(variant):
    result = _run(f"jax-adamw[{variant}]")
    assert result.verdict == "conforms"
    assert result.matched_rule == "adamw" and result.decay_kind == "decoupled x lr"
    assert result.candidate_units["adam_l2"] > 100, "the goldens must tell coupled from decoupled"
    assert result.candidate_units["adamw_paper"] > 100, "x lr must be told from x eta (Algorithm 2)"


@pytest.mark.parametrize("variant", VARIANTS)
def test_adamw_with_lr_and_weight_decay_schedules_is_adamw(variant):
    result = _run(f"jax-adamw(schedules)[{variant}]")
    assert result.verdict == "conforms" and result.matched_rule == "adamw"


@pytest.mark.parametrize("variant", VARIANTS)
def test_chain_add_decayed_weights_adam_is_coupled_l2(variant):
    result = _run(f"jax-chain(add_decayed_weights,adam)[{variant}]")
    assert result.verdict == "conforms"
    assert result.matched_rule == "adam_l2" and result.decay_kind == "coupled (L2)"
    assert result.candidate_units["adamw"] > 100


@pytest.mark.parametrize("variant", VARIANTS)
def test_amsgrad_takes_the_max_of_the_corrected_v(variant):
    result = _run(f"jax-amsgrad[{variant}]")
    assert result.verdict == "conforms" and result.matched_rule == "amsgrad_corrected"
    assert result.candidate_units["amsgrad"] > 100, "torch/Keras take the max of the raw v"


@pytest.mark.parametrize("variant", VARIANTS)
def test_nadam_has_no_momentum_schedule(variant):
    result = _run(f"jax-nadam[{variant}]")
    assert result.verdict == "conforms" and result.matched_rule == "nadam_no_schedule"
    assert result.candidate_units["nadam"] > 100, "torch's NAdam (Dozat's schedule) must be told apart"
    nadamw = _run(f"jax-nadamw[{variant}]")
    assert nadamw.verdict == "conforms" and nadamw.matched_rule == "nadamw[nadam_schedule=none]"
    assert nadamw.decay_kind == "decoupled x lr"
    assert nadamw.candidate_units["nadamw"] > 100


@pytest.mark.parametrize("variant", VARIANTS)
def test_radam_puts_eps_on_the_corrected_root(variant):
    result = _run(f"jax-radam[{variant}]")
    # float64 rows are a registered precision deviation on some goldens (adapters/optax/deviations.toml):
    # the rule is still the nearest by orders of magnitude
    assert result.verdict in ("conforms", "xfail")
    assert result.matched_rule == "radam_eps_outside"
    assert result.candidate_units["radam"] > 100 * max(result.candidate_units["radam_eps_outside"], 1.0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_lamb_decays_inside_the_trust_ratio(variant):
    result = _run(f"jax-lamb[{variant}]")
    assert result.verdict == "conforms" and result.matched_rule == "lamb"
    assert result.decay_kind == "decoupled x lr, in trust ratio"
    assert result.candidate_units["lamb_decay_outside"] > 100


@pytest.mark.parametrize("variant", VARIANTS)
def test_rmsprop_eps_placement_and_momentum_form(variant):
    inside = _run(f"jax-rmsprop[{variant}]")
    assert inside.verdict == "conforms" and inside.matched_rule == "rmsprop_eps_inside[decay=none]"
    outside = _run(f"jax-rmsprop(eps_in_sqrt=False)[{variant}]")
    assert outside.verdict == "conforms" and outside.matched_rule == "rmsprop[decay=none]"
    momentum = _run(f"jax-rmsprop(momentum)[{variant}]")
    assert momentum.verdict == "conforms"
    assert momentum.matched_rule == "rmsprop_eps_inside[decay=none,momentum_form=lr_inside]"
    # the lr-outside (torch) form on the same scenarios differs where lr changes (lr_halved)
    case = _case(f"jax-rmsprop(momentum)[{variant}]")
    golden = next(g for g in plan.goldens_for(case) if g.name == "rmsprop_eps_inside__lr_halved")
    native = ADAPTER.run(case, plan.run_input(case, golden), "cpu", "float64").params
    torch_form = compare.expected("rmsprop_eps_inside[decay=none,momentum_form=lr_outside]", golden)
    knobs = get_rule("rmsprop_eps_inside[decay=none,momentum_form=lr_outside]").knobs
    assert compare.compare(native, torch_form, golden, "float64", knobs).units > 100


@pytest.mark.parametrize("variant", VARIANTS)
def test_sgd_momentum_is_the_torch_form(variant):
    result = _run(f"jax-sgd(momentum)[{variant}]")
    assert result.verdict == "conforms" and result.matched_rule == "sgd_momentum[decay=none]"
    coupled = _run(f"jax-chain(add_decayed_weights,sgd(momentum))[{variant}]")
    assert coupled.verdict == "conforms" and coupled.matched_rule == "sgd_momentum"


@pytest.mark.parametrize("form", ["pytree", "callable"])
def test_adamw_mask_excludes_the_named_tensors(form):
    result = _run(f"jax-adamw(mask={form})[jit]")
    assert result.verdict == "conforms" and result.matched_rule == "bert_adamw[bias_correction=on]"
    assert result.candidate_units["bert_adamw"] > 100, "optax adamw is bias-corrected, BERT's is not"
    # the mask is load-bearing: without it the excluded tensors decay, the others are unchanged
    case = _case(f"jax-adamw(mask={form})[jit]")
    golden = next(g for g in plan.goldens_for(case) if g.name == "bert_adamw__exclusion_names")
    inp = plan.run_input(case, golden)
    masked = ADAPTER.run(case, inp, "cpu", "float64").params
    unmasked_inp = type(inp)(inp.tensors, inp.params0, inp.grads, inp.lr, inp.eta,
                             {**inp.hp, "weight_decay_exclude": []})
    unmasked = ADAPTER.run(case, unmasked_inp, "cpu", "float64").params
    np.testing.assert_array_equal(masked["dense/kernel"], unmasked["dense/kernel"])
    for name in ("LayerNorm/gamma", "dense/bias", "encoder/layer_norm/beta"):
        assert not np.allclose(masked[name][1:], unmasked[name][1:], rtol=1e-6, atol=0), name


def test_jit_compiles_are_cached_per_case_and_scenario():
    case = _case("jax-adam[jit]")
    golden = plan.goldens_for(case)[0]
    ADAPTER.run(case, plan.run_input(case, golden), "cpu", "float64")
    before = ADAPTER.jit_compile_count
    ADAPTER.run(case, plan.run_input(case, golden), "cpu", "float64")
    assert ADAPTER.jit_compile_count == before


# --- Muon (spec/muon.md) ------------------------------------------------------------------------------

def test_contrib_muon_is_optax_muon_and_no_other_framework_s():
    """optax.contrib.muon: bias-corrected EMA with NAdam's look-ahead, X/(||X|| + eps),
    sqrt(max(1, cols/rows)), decay x lr, optax.adamw (Nesterov) for non-2-D tensors -- neither torch's nor
    Keras' Muon (> 100 float64 units on optax's probes)."""
    result = _run("jax-contrib.muon[jit]")
    assert result.verdict == "conforms" and result.matched_rule == "optax_muon"
    assert result.candidate_units["muon"] > 100 and result.candidate_units["keras_muon"] > 100


def test_contrib_muon_consistent_rms_is_the_rms_shape_scaling():
    result = _run("jax-contrib.muon(consistent_rms)[jit]", "float32")
    assert result.verdict == "conforms" and result.matched_rule == "optax_muon[shape_scaling=rms]"


def _muon_native(golden_name: str, dtype: str = "float32"):
    from optconform.testing import golden_named
    case, golden = _case("jax-contrib.muon[jit]"), golden_named(golden_name)
    prec = case.precision
    return case, golden, [(golden, ADAPTER.run(case, plan.run_input(case, golden), "cpu", dtype).params)], prec


@pytest.mark.parametrize("rival, golden, why", [
    ("optax_muon[shape_scaling=rows_cols]", "optax_muon__muon_varied",
     "optax scales by sqrt(max(1, fan_out/fan_in)) = sqrt(max(1, cols/rows)) on (in, out) weights; torch's "
     "'original' is sqrt(max(1, rows/cols)) on (out, in) weights: on the same matrix they differ"),
    ("optax_muon[bias_correction=off]", "optax_muon__muon_varied",
     "optax's Nesterov look-ahead is bias-corrected (NAdam's mu*b/(1-mu^(t+1)) + (1-mu)*g/(1-mu^t)), not "
     "torch's (1-mu)*g + mu*b: a different direction from step 2 on"),
    ("optax_muon[non_matrix=adamw_eps_hat]", "optax_muon__muon_mixed",
     "non-2-D tensors take optax.adamw with Muon's nesterov flag (Nesterov-AdamW), not Keras' eps-hat AdamW"),
    ("optax_muon[non_matrix=none]", "optax_muon__muon_mixed", "non-2-D tensors are optimised (torch refuses them)"),
])
def test_contrib_muon_differs_from_the_others_here(rival, golden, why):
    case, g, runs, prec = _muon_native(golden)
    assert compare.worst_units("optax_muon", runs, "float32", prec) <= 1
    assert compare.worst_units(rival, runs, "float32", prec) > 100, why


def test_contrib_muon_without_nesterov_bias_correction_is_only_a_scale():
    """Without Nesterov the bias correction b/(1 - mu^t) is a common factor the normalisation removes
    (< 1 float32 unit from the uncorrected buffer on ordinary gradients)."""
    case, g, runs, prec = _muon_native("optax_muon__muon_varied__no_nesterov")
    assert compare.worst_units("optax_muon[bias_correction=off]", runs, "float32", prec) <= 1


# --- Adafactor (spec/adafactor.md) --------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_adafactor_is_optax_adafactor(variant):
    """optax.adafactor: g^2 + eps, step lr (no 1/sqrt(t) cap), weight_decay_rate unscaled, factored over the
    two largest axes only when the second has >= min_dim_size_to_factor elements (float32: float64 rows are a
    registered precision deviation, the decay schedule computed in float32)."""
    result = _run(f"jax-adafactor[{variant}]", "float32")
    assert result.verdict == "conforms" and result.matched_rule == "optax_adafactor"
    assert result.decay_kind == "decoupled unscaled"
    assert result.candidate_units["adafactor"] > 100 and result.candidate_units["keras_adafactor"] > 100


@pytest.mark.parametrize("rival, golden, why", [
    ("optax_adafactor[step_size=capped]", "optax_adafactor__large_decay",
     "optax scales by the learning rate alone; torch and Keras by min(lr, 1/sqrt(t))"),
    ("optax_adafactor[decay_scaling=lr]", "optax_adafactor__zero_grad",
     "weight_decay_rate adds wd*w to the update after the lr: w <- w - wd*w, not x lr"),
    ("optax_adafactor[factor_dims=last_two]", "optax_adafactor__adafactor_3d__factored",
     "optax factors the two largest axes (3 x 4 of a 3 x 4 x 2 tensor); torch and Keras the last two"),
    ("optax_adafactor[eps_placement=sq_clamp]", "optax_adafactor__tiny_grad", "eps is added to g^2 (not a clamp)"),
])
def test_adafactor_differs_from_torch_here(rival, golden, why):
    from optconform.testing import golden_named
    case, g = _case("jax-adafactor[jit]"), golden_named(golden)
    runs = [(g, ADAPTER.run(case, plan.run_input(case, g), "cpu", "float32").params)]
    assert compare.worst_units("optax_adafactor", runs, "float32", case.precision) <= 1
    assert compare.worst_units(rival, runs, "float32", case.precision) > 100, why


def test_adafactor_does_not_factor_small_tensors_by_default():
    """min_dim_size_to_factor = 128: random_wide's 3 x 4 kernel keeps a full second moment (the factored
    estimate of the same run is > 1e5 float32 units away)."""
    from optconform.testing import golden_named
    case, g = _case("jax-adafactor[jit]"), golden_named("optax_adafactor__random_wide")
    native = ADAPTER.run(case, plan.run_input(case, g), "cpu", "float32").params
    factored = compare.expected("optax_adafactor", g, overrides={"min_dim_size_to_factor": 0})
    assert compare.compare(native, factored, g, "float32", get_rule("optax_adafactor").knobs).units > 1e5


# --- Schedule-free AdamW (spec/schedule_free.md) ---------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_schedule_free_adamw_is_optax_schedule_free_adamw(variant):
    """optax.contrib.schedule_free_adamw: decay at y in the z step, c_t from lr_max^2, and with warmup the z
    step reads warmup_constant_schedule at the 0-based count: the first step has lr 0 (warmup_form
    from_zero), > 100 float32 units from schedulefree's t/W."""
    result = _run(f"jax-contrib.schedule_free_adamw[{variant}]", "float32")
    assert result.verdict == "conforms" and result.matched_rule == "optax_schedule_free_adamw"
    assert result.candidate_units["schedulefree_adamw"] > 100
    assert result.candidate_units["keras_schedule_free_adamw"] > 100


def test_schedule_free_eval_params_are_x():
    """schedule_free_eval_params(state, params) is x = (y - (1-b1)*z)/b1, the reference's state x."""
    import jax
    import optax
    from optconform.testing import golden_named
    from optconform.reference import trajectory
    golden = golden_named("optax_schedule_free_adamw__lr_halved")
    hp = golden.run_hp
    with jax.enable_x64(True):
        sched = jax.numpy.asarray(np.asarray(hp["lr"]))
        opt = optax.contrib.schedule_free_adamw(lambda c: sched[c], b1=hp["beta1"], b2=hp["beta2"], eps=hp["eps"],
                                                weight_decay=hp["weight_decay"])
        params = {n: jax.numpy.asarray(np.asarray(golden.params0[n], np.float64)) for n in golden.tensors}
        state = opt.init(params)
        for grads in golden.grads:
            updates, state = opt.update({n: jax.numpy.asarray(np.asarray(grads[n], np.float64)) for n in golden.tensors},
                                        state, params)
            params = optax.apply_updates(params, updates)
        x = optax.contrib.schedule_free_eval_params(state, params)
    ref = trajectory("optax_schedule_free_adamw", dict(golden.params0), list(golden.grads), **hp)
    for n in golden.tensors:
        np.testing.assert_allclose(np.asarray(x[n]), ref.state["x"][n][-1], rtol=1e-12, atol=1e-14)
