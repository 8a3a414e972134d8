"""The Keras rig's learning rate (adapters/keras/rig.py, driver.py), on whichever Keras backend this
process runs: the optimizer's LearningRateSchedule returns a float32 lr variable that the driver sets
to the golden's lr_t before step t, only when the value changes, and a run asking for another lr than
the golden's is refused."""
from __future__ import annotations

import numpy as np
import pytest

from optconform import plan
from optconform.testing import golden_named, keras_lane_adapter

pytestmark = pytest.mark.framework("tensorflow", "keras-jax")

ADAPTER = keras_lane_adapter()
#: the case that has every variant of the lane (eager, graph, xla / eager, jit)
DECAYED_SGD = "SGD(weight_decay)"
VARIANTS = sorted(c.variant for c in ADAPTER.cases() if c.name == DECAYED_SGD)


def _case(name: str, variant: str = "eager"):
    return next(c for c in ADAPTER.cases() if c.name == name and c.variant == variant)


def _steps(case, golden_name: str, dtype: str, hold=None):
    """Drive the case through the golden step by step; `hold(lr)` is called on each lr-variable set."""
    inp = plan.run_input(case, golden_named(golden_name), ADAPTER.supports_eta)
    with ADAPTER.context("cpu", dtype):
        driver = ADAPTER.driver(case, inp, "cpu", dtype)
        if hold is not None:
            original = driver._hold
            driver._hold = lambda lr: (hold(lr), original(lr))
        params = [driver.params()]
        for t, grads in enumerate(inp.grads):
            driver.step(driver.native_grads(grads), inp.lr[t], inp.eta[t])
            params.append(driver.params())
    return inp, params


@pytest.mark.parametrize("golden_name", ["sgd__lr_halved", "sgd__random_wide"])
def test_each_step_reads_the_golden_lr(golden_name):
    """Plain SGD in float64, eager (one op at a time, no fusion): p_{t+1} = p_t - g_t * lr_t with lr_t
    the golden's lr rounded to float32 (Keras' lr variable), bitwise, at every step of a changing lr."""
    inp, params = _steps(_case("SGD"), golden_name, "float64")
    for t, grads in enumerate(inp.grads):
        lr = np.float64(np.float32(inp.lr[t]))
        for name in inp.tensors:
            want = params[t][name] - np.asarray(grads[name], dtype=np.float64) * lr
            np.testing.assert_array_equal(params[t + 1][name], want, err_msg=f"step {t} {name}")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("golden_name", ["sgd__lr_halved", "sgd__random_wide", "sgd__quadratic"])
def test_the_lr_variable_is_set_only_when_the_lr_changes(variant, golden_name):
    """One set per change of the float32 lr after the first step (the rig starts at lr_0): a constant
    lr sets nothing, so a steady golden and the benchmark pay no assign per step."""
    held: list[np.float32] = []
    inp, _ = _steps(_case(DECAYED_SGD, variant), golden_name, "float32", held.append)
    lr = np.asarray(inp.lr, dtype=np.float32)
    changed = [lr[t] for t in range(1, len(lr)) if lr[t].tobytes() != lr[t - 1].tobytes()]
    assert held == changed


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_run_asking_for_another_lr_is_refused(variant):
    """The driver checks lr_t against the golden's lr (float32) before it sets the variable."""
    case = _case(DECAYED_SGD, variant)
    inp = plan.run_input(case, golden_named("sgd__lr_halved"), ADAPTER.supports_eta)
    with ADAPTER.context("cpu", "float32"):
        driver = ADAPTER.driver(case, inp, "cpu", "float32")
        with pytest.raises(ValueError, match="yields the golden's lr"):
            driver.step(driver.native_grads(inp.grads[0]), 2 * inp.lr[0], inp.eta[0])
