"""plan: which goldens a hand-made Case runs (mapped or neutral hp, fixed_hp, eta folding) and what
it is fed (run_input), and hyper-parameter rounding."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optconform import plan
from optconform.adapters.base import NEUTRAL_HP, Arg, Case
from optconform.reference.precision import FLOAT32
from optconform.reference import get_rule, rules, trajectory

ADAM_HP = {"lr": "lr", "beta1": Arg("betas", 0), "beta2": Arg("betas", 1), "eps": "eps"}
ADAMW_HP = {**ADAM_HP, "weight_decay": "weight_decay"}
#: ADAMW_HP plus the exclusion list and global clip of the sharded_exclusion probe
ADAMW_FULL = {**ADAMW_HP, "weight_decay_exclude": "exclude", "clip_global_norm": "max_norm"}
SGD_MOM = {"lr": "lr", "momentum": "momentum", "dampening": "dampening", "weight_decay": "weight_decay"}


def case(rule, hp_map, name="C", **kw) -> Case:
    return Case(framework="fake", name=name, native="fake.Opt", rule=rule, hp_map=hp_map, **kw)


def goldens(rule):
    return [g for g in plan.all_goldens() if g.rule == rule]


def golden(name):
    return next(g for g in plan.all_goldens() if g.name == name)


def names(gs):
    return [g.name for g in gs]


def test_all_goldens_is_the_corpus_and_cached():
    assert plan.all_goldens() is plan.all_goldens()
    assert {g.rule for g in plan.all_goldens()} == set(rules())


def test_rule_must_match():
    c = case("adamw", ADAMW_HP)
    assert not plan.runnable(c, golden("adam_l2__first_steps"))
    assert plan.runnable(c, golden("adamw__first_steps"))


def test_fully_mapped_case_runs_every_golden_of_its_rule():
    assert names(plan.goldens_for(case("adamw", ADAMW_FULL))) == names(goldens("adamw"))
    assert names(plan.goldens_for(case("adam", ADAM_HP))) == names(goldens("adam"))
    # without the exclusion list and global clip, every golden but the sharded_exclusion probe
    assert names(plan.goldens_for(case("adamw", ADAMW_HP))) == [n for n in names(goldens("adamw"))
                                                                 if n != "adamw__sharded_exclusion"]


def test_unmapped_non_neutral_hp_excludes_goldens():
    assert plan.goldens_for(case("adamw", ADAM_HP)) == []              # weight_decay not mapped
    assert plan.goldens_for(case("adam", {"lr": "lr"})) == []           # betas, eps not mapped
    # a golden with clip_value set needs clip_value mapped; unset (None) is neutral
    l2 = case("adam_l2", ADAMW_HP)
    assert "adam_l2__clip_with_decay" not in names(plan.goldens_for(l2))
    assert len(plan.goldens_for(l2)) == len(goldens("adam_l2")) - 2    # and sharded_exclusion (no clip mapped)
    l2_clip = case("adam_l2", {**ADAMW_FULL, "clip_value": "clip"})
    assert names(plan.goldens_for(l2_clip)) == names(goldens("adam_l2"))
    # rescale_grad != 1 needs mapping too
    mx = case("mxnet_adam", {**ADAMW_HP, "clip_value": "clip_gradient"})
    assert not any("rescale_clip" in n for n in names(plan.goldens_for(mx)))
    mx_full = case("mxnet_adam", {**ADAMW_HP, "clip_value": "clip_gradient", "rescale_grad": "rescale_grad"})
    assert names(plan.goldens_for(mx_full)) == names(goldens("mxnet_adam"))


def test_fixed_hp_filters():
    nesterov = case("sgd_momentum", {"lr": "lr", "momentum": "momentum", "weight_decay": "weight_decay"},
                    fixed_hp={"nesterov": True, "dampening": 0.0})
    got = names(plan.goldens_for(nesterov))
    assert got and all(n.endswith("__nesterov") for n in got)
    assert got == [g.name for g in goldens("sgd_momentum") if g.hp["nesterov"] and g.hp["dampening"] == 0.0]
    plain = case("sgd_momentum", SGD_MOM, fixed_hp={"nesterov": False})
    got = names(plan.goldens_for(plain))
    assert got and not any(n.endswith("__nesterov") for n in got)
    assert any(n.endswith("__dampening") for n in got)
    # fixed weight decay: only the goldens with exactly that value
    fixed_wd = case("adamw", ADAM_HP, fixed_hp={"weight_decay": 0.01})
    got = plan.goldens_for(fixed_wd)
    assert got and all(g.hp["weight_decay"] == 0.01 for g in got)
    assert len(got) == sum(g.hp["weight_decay"] == 0.01 for g in goldens("adamw"))


def test_goldens_argument_restricts_selection():
    subset = goldens("adamw")[:3] + goldens("adam")[:2]
    assert names(plan.goldens_for(case("adamw", ADAMW_HP), goldens=subset)) == names(subset[:3])


def test_eta_folds_rule():
    assert plan._eta_folds("adamw")                         # decoupled x lr: folding eta into lr is exact
    assert plan._eta_folds("adam")                          # no decay
    assert plan._eta_folds("adam_l2")                       # coupled
    assert plan._eta_folds("mxnet_v07_adam")                # x corrected lr
    assert not plan._eta_folds("adamw_paper")               # decay x eta alone
    assert plan._eta_folds("adamw[decay_scaling=unscaled]")  # unscaled decay ignores lr and eta
    assert not plan._eta_folds("adamw[decay_scaling=schedule]")
    assert plan._eta_folds("adam[decay_scaling=schedule]")  # decay none: the knob does not apply


@pytest.mark.parametrize("rule", sorted(rules()) + ["adamw[decay_scaling=unscaled]", "adamw[decay_scaling=schedule]",
                                  "lamb[decay_scaling=schedule]", "sgd_momentum[decay=decoupled]"])
def test_eta_folding_is_exact_exactly_where_claimed(rule):
    """Folding eta into lr reproduces the trajectory bit for bit iff `_eta_folds` says it does."""
    g = golden("adamw__eta_schedule")
    r = get_rule(rule)
    hp = {k: v for k, v in g.hp.items() if k in r.defaults}
    with_eta = trajectory(r, dict(g.params0), list(g.grads), lr=list(g.lr), eta=list(g.eta), **hp).params["w"]
    folded = trajectory(r, dict(g.params0), list(g.grads), lr=[a * b for a, b in zip(g.lr, g.eta)],
                        eta=[1.0] * g.steps, **hp).params["w"]
    if plan._eta_folds(rule):
        np.testing.assert_array_equal(folded, with_eta)
    else:
        assert np.max(np.abs(folded - with_eta)) > 1e-6


def test_eta_schedule_goldens_need_eta_support_when_it_does_not_fold():
    paper = case("adamw_paper", ADAMW_HP)
    g = golden("adamw_paper__eta_schedule")
    assert any(e != 1.0 for e in g.eta)
    assert not plan.runnable(paper, g)
    assert plan.runnable(paper, g, supports_eta=True)
    assert g.name not in names(plan.goldens_for(paper))
    assert g.name in names(plan.goldens_for(paper, supports_eta=True))
    # adamw folds: runnable without eta support
    assert plan.runnable(case("adamw", ADAMW_HP), golden("adamw__eta_schedule"))


def test_run_input_folds_eta_into_lr():
    g = golden("adamw__eta_schedule")
    c = case("adamw", ADAMW_HP)
    inp = plan.run_input(c, g)
    assert inp.lr == tuple(a * b for a, b in zip(g.lr, g.eta))
    assert inp.eta == (1.0,) * g.steps
    assert inp.lr[-1] == pytest.approx(0.1 * 0.25)
    assert inp.tensors == g.tensors and inp.steps == g.steps
    assert inp.params0 is g.params0 and inp.grads is g.grads
    # a framework that takes eta gets both unchanged
    inp = plan.run_input(c, g, supports_eta=True)
    assert inp.lr == g.lr and inp.eta == g.eta


def test_run_input_hp_drops_unmapped_neutral_values():
    g = golden("adamw__first_steps")
    inp = plan.run_input(case("adamw", ADAMW_HP), g)
    assert inp.hp == {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
    assert not set(inp.hp) & set(NEUTRAL_HP)
    # a mapped neutral value is passed on (the framework may need it explicitly)
    inp = plan.run_input(case("adamw", {**ADAMW_HP, "clip_value": "clip"}), g)
    assert "clip_value" in inp.hp and inp.hp["clip_value"] is None
    # the run input reproduces the golden through the reference
    ref = trajectory("adamw", dict(inp.params0), list(inp.grads), lr=list(inp.lr), eta=list(inp.eta), **inp.hp)
    for name in g.tensors:
        np.testing.assert_array_equal(ref.params[name], g.params[name])


def test_derived_rule_claim_runs_the_preset_goldens():
    assert plan.base_rule("adamw[decay_scaling=unscaled]") == "adamw"
    assert plan.base_rule("adamw") == "adamw"
    c = case("adamw[decay_scaling=unscaled]", ADAMW_FULL)
    assert plan.runnable(c, golden("adamw__first_steps"))
    assert names(plan.goldens_for(c)) == names(goldens("adamw"))
    c = case("adamw[decay_scaling=schedule]", ADAMW_FULL)
    assert not plan.runnable(c, golden("adamw__eta_schedule"))          # decay x eta: eta does not fold
    assert names(plan.goldens_for(c)) == [n for n in names(goldens("adamw")) if n != "adamw__eta_schedule"]
    assert plan.runnable(c, golden("adamw__eta_schedule"), supports_eta=True)


def test_scenario_hp_fills_defaults_and_drops_foreign_names():
    g = golden("adam__first_steps")                                     # adam has no weight_decay
    hp = plan.scenario_hp("adamw", g)
    assert hp["weight_decay"] == get_rule("adamw").defaults["weight_decay"]
    assert "lr" not in hp and "eta" not in hp
    hp = plan.scenario_hp("adam", golden("adamw__first_steps"))
    assert "weight_decay" not in hp


def test_round_hp():
    hp = {"lr": 0.1, "beta1": 0.9, "eps": 1e-8, "nesterov": True, "steps": 3, "clip_value": None,
          "lrs": [0.1, 0.3], "names": ["a"], "mixed": [0.1, 2], "empty": []}
    out = FLOAT32.round_hp(hp)
    assert out["lr"] == float(np.float32(0.1)) != 0.1
    assert out["beta1"] == float(np.float32(0.9)) and out["eps"] == float(np.float32(1e-8))
    assert isinstance(out["lr"], float)
    assert out["nesterov"] is True and out["steps"] == 3 and out["clip_value"] is None
    assert out["lrs"] == [float(np.float32(0.1)), float(np.float32(0.3))]
    assert out["names"] == ["a"] and out["mixed"] == [0.1, 2] and out["empty"] == []
    assert hp["lr"] == 0.1                                              # input untouched
    assert FLOAT32.round_hp({"x": 0.5}) == {"x": 0.5}           # exact values stay


def test_case_native_kwargs_and_id():
    c = case("adamw", ADAMW_HP, name="AdamW", variant="fused", kwargs={"fused": True})
    assert c.id == "fake-AdamW[fused]"
    kw = c.native_kwargs({"beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1, "lr": 0.5, "eta": 0.5})
    assert kw == {"fused": True, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}
    assert c.kwargs == {"fused": True}


def test_golden_replace_with_eta_keeps_runnable_logic():
    # a synthetic golden (dataclasses.replace): an eta schedule on an adamw_paper scenario
    g = dataclasses.replace(golden("adamw_paper__first_steps"), eta=(1.0, 0.5, 0.25))
    assert not plan.runnable(case("adamw_paper", ADAMW_HP), g)
    assert plan.runnable(case("adamw_paper", ADAMW_HP), dataclasses.replace(g, eta=(1.0, 1.0, 1.0)))
