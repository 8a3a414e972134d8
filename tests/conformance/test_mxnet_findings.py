"""The MXNet 1.9.1 findings, as named tests: MXNet Adam is coupled L2 with the decay inside the clip,
`adamw_update` decays by eta*wd (never lr), and each registered deviation
(adapters/mxnet/deviations.toml) is shown directly."""
from __future__ import annotations


import numpy as np
import pytest

from optconform.testing import case_by_id, golden_named, require, run_row

require('mxnet', 'mxnet')

from optconform import compare, deviations, plan  # noqa: E402
from optconform.adapters.base import RunInput  # noqa: E402
from optconform.adapters.mxnet import ADAPTER  # noqa: E402
from optconform.reference import get_rule, trajectory  # noqa: E402
from optconform.reference.precision import FLOAT32  # noqa: E402

pytestmark = pytest.mark.framework("mxnet")

mx = ADAPTER.load()
VERSION = ADAPTER.version()


def _case(case_id: str):
    return case_by_id(ADAPTER, case_id)


def _run(case_id: str, dtype: str = "float32"):
    return run_row(ADAPTER, case_id, dtype)


_golden = golden_named


def _units(rule: str, golden, native, dtype: str, **hp) -> float:
    """Worst error of `native` against the reference run of `rule` on `golden` with `hp`."""
    expect = trajectory(rule, dict(golden.params0), list(golden.grads), **hp).params
    return compare.compare(native, expect, golden, dtype, get_rule(rule).knobs).units


# --- what MXNet Adam and adamw_update are ---------------------------------------------------------

def test_adam_op_is_coupled_l2_clipped_with_g():
    result = _run("mxnet-adam_update[op]", "float64")
    assert result.verdict == "conforms"
    assert result.matched_rule == "mxnet_adam[bias_correction=off]"
    assert result.decay_kind == "coupled (L2), clipped with g"


def test_mxnet_adam_conforms_with_float32_exact_betas():
    """mx.optimizer.Adam is mxnet_adam (coupled, wd inside the clip, eps-hat) exactly, once the betas
    are float32-exact: the registered deviation is the Python-float64 bias correction alone."""
    golden = _golden("mxnet_adam__clip_with_decay")          # clip 0.5 with wd 0.5: the clip sees wd*w
    hp = {**plan.scenario_hp("mxnet_adam", golden), "beta1": 0.875, "beta2": 0.998046875}
    inp = RunInput(golden.tensors, golden.params0, golden.grads, golden.lr, golden.eta, hp)
    native = ADAPTER.run(_case("mxnet-Adam[optimizer]"), inp, "cpu", "float32").params
    ref = {**FLOAT32.round_hp(hp), "lr": list(golden.lr)}
    assert _units("mxnet_adam", golden, native, "float32", **ref) <= 1.0
    assert _units("mxnet_adam[clip_scope=gradient]", golden, native, "float32", **ref) > 100, "wd*w is clipped with g"
    assert _units("adam_l2", golden, native, "float32", **ref) > 1.0
    assert _units("adamw_eps_hat", golden, native, "float32", **ref) > 100, "coupled, not decoupled"
    # with the default betas the Python-side correction uses the exact betas, the kernel float32 ones:
    # modelled (precision powers=exact), so the float32 rows conform and name their maths
    assert deviations.lookup("mxnet", VERSION, "mxnet-Adam[optimizer]", "mxnet_adam__zero_grad", "cpu", "float32") is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mxnet_adam_reads_coupled_l2_in_every_dtype(dtype):
    """Issue 23: the semantics axis names mxnet_adam's coupled L2 whether or not the row is within
    tolerance (float64: the per-step float lr is a registered precision deviation)."""
    result = _run("mxnet-Adam[optimizer]", dtype)
    assert result.matched_rule == "mxnet_adam" and result.decay_kind == "coupled (L2), clipped with g"
    assert result.semantics["status"] == "identified" and result.semantics["separation"] >= 100
    assert result.verdict == ("conforms" if dtype == "float32" else "xfail")
    if dtype == "float64":
        assert result.deviation["id"] == "mxnet-float-lr-per-step"


def _adamw_zero_grad(lr, eta, wd, steps=5):
    w = mx.nd.array([1.0, -2.0, 0.5], dtype="float64")
    m, v = mx.nd.zeros(3, dtype="float64"), mx.nd.zeros(3, dtype="float64")
    rescale = mx.nd.array([1.0])
    out = []
    for _ in range(steps):
        mx.nd.contrib.adamw_update(w, mx.nd.zeros(3, dtype="float64"), m, v, rescale, out=w, lr=lr, eta=eta, wd=wd)
        out.append(w.asnumpy().copy())
    return np.array(out)


def test_adamw_update_decays_by_eta_times_wd_never_lr():
    w0 = np.array([1.0, -2.0, 0.5])
    t = np.arange(1, 6)[:, None]
    # lr = 0.1 does not scale the decay: 10 %/step (torch AdamW would give (1 - 0.01)^t)
    np.testing.assert_allclose(_adamw_zero_grad(0.1, 1.0, 0.1), w0 * (1 - np.float32(0.1)) ** t, rtol=1e-12)
    np.testing.assert_allclose(_adamw_zero_grad(1e-6, 0.5, 0.1), w0 * (1 - 0.5 * np.float32(0.1)) ** t, rtol=1e-12)
    result = _run("mxnet-adamw_update[op]", "float64")
    assert result.verdict == "conforms" and result.decay_kind == "decoupled x eta"
    assert result.goldens_run and "adamw_paper__eta_schedule" not in result.goldens_failed


def test_adamw_update_with_corrected_lr_is_paper_algorithm_2():
    result = _run("mxnet-adamw_update(bias-corrected lr)[op]", "float32")
    assert result.verdict == "conforms" and result.matched_rule == "adamw_paper[eps_placement=eps_hat]"


# --- registered deviations, each shown ------------------------------------------------------------

def _nadam(n_params: int, steps: int = 3):
    opt = mx.optimizer.Nadam(learning_rate=0.01)
    ws = [mx.nd.ones(3, dtype="float64") for _ in range(n_params)]
    states = [opt.create_state(i, w) for i, w in enumerate(ws)]
    for _ in range(steps):
        for i, w in enumerate(ws):
            opt.update(i, w, mx.nd.ones(3, dtype="float64"), states[i])
    return ws[0].asnumpy(), opt.m_schedule


def test_nadam_m_schedule_is_shared_across_parameters():
    one, sched_one = _nadam(1)
    two, sched_two = _nadam(2)
    mu = [0.9 * (1 - 0.5 * 0.96 ** (t * 0.004)) for t in (1, 2, 3)]
    assert sched_one == pytest.approx(np.prod(mu), rel=1e-12)
    assert sched_two == pytest.approx(np.prod(mu) ** 2, rel=1e-12), "multiplied once per parameter per step"
    assert not np.allclose(one, two, rtol=1e-6), "the same tensor updates differently next to a second one"
    # single-tensor goldens conform, multi-tensor goldens are the registered deviation
    result = _run("mxnet-Nadam[optimizer]", "float64")
    assert result.verdict == "xfail"
    assert "nadam__first_steps" not in result.goldens_failed and "nadam__random_wide" in result.goldens_failed


def test_adamax_has_no_eps_nan_on_zero_gradient():
    opt = mx.optimizer.Adamax(learning_rate=0.1)
    w = mx.nd.array([1.0, -2.0], dtype="float64")
    state = opt.create_state(0, w)
    opt.update(0, w, mx.nd.zeros(2, dtype="float64"), state)
    assert np.isnan(w.asnumpy()).all()
    assert "epsilon" not in mx.optimizer.Adamax.__init__.__code__.co_varnames
    assert deviations.lookup("mxnet", VERSION, "mxnet-Adamax[optimizer]", "adamax__tiny_grad", "cpu", "float32")


def _lazy(cls, lazy: bool, **kwargs):
    opt = cls(learning_rate=0.1, wd=0.1, lazy_update=lazy, **kwargs)
    w = mx.nd.array([[1.0, -2.0], [0.5, 4.0]], dtype="float32")
    grad = mx.nd.sparse.row_sparse_array((np.zeros((1, 2), dtype="float32"), [0]), shape=(2, 2))
    state = opt.create_state(0, w)
    opt.update(0, w, grad, state)
    return w.asnumpy()


@pytest.mark.parametrize("cls,kwargs", [(mx.optimizer.SGD, {"momentum": 0.9}), (mx.optimizer.Adam, {})],
                         ids=["SGD(momentum)", "Adam"])
def test_lazy_update_skips_decay_of_absent_rows(cls, kwargs):
    lazy, dense = _lazy(cls, True, **kwargs), _lazy(cls, False, **kwargs)
    np.testing.assert_array_equal(lazy[1], [0.5, 4.0])                  # row 1 absent from the gradient: untouched
    assert not np.allclose(dense[1], [0.5, 4.0])                        # lazy_update=False decays it
    np.testing.assert_allclose(lazy[0], dense[0], rtol=1e-6)            # present rows agree
    case_id = "mxnet-SGD(momentum,lazy_update=True)[optimizer]"
    assert deviations.lookup("mxnet", VERSION, case_id, "row_sparse__lazy_update", "cpu", "float32")
    assert deviations.lookup("mxnet", VERSION, case_id, "sgd_momentum_inside__zero_grad", "cpu", "float32") is None


def test_sgd_lazy_update_is_exact_on_dense_gradients():
    for lazy in (True, False):
        assert _run(f"mxnet-SGD(momentum,lazy_update={lazy})[optimizer]").verdict == "conforms"


def test_aggregated_lamb_is_float32_inside():
    assert _run("mxnet-LAMB[optimizer]", "float64").verdict == "conforms"
    assert _run("mxnet-LAMB[optimizer-aggregated]", "float64").verdict == "xfail"
    assert _run("mxnet-LAMB[optimizer-aggregated]", "float32").verdict == "conforms"


def test_adagrad_decay_is_decoupled_times_lr():
    result = _run("mxnet-AdaGrad(history0)[optimizer]")
    assert result.verdict == "conforms" and result.decay_kind == "decoupled x lr"
