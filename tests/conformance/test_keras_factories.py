"""`optconform check` / fingerprint on Keras optimizers (issue 16), on whichever Keras backend this process
runs (the tensorflow and keras-jax lanes each run this file): a factory `factory(**hp)` returning a
keras.optimizers.Optimizer, with Keras' own argument names (learning_rate, beta_1, beta_2, epsilon) or
the canonical ones; the lr is a LearningRateSchedule returning each probe's lr (float32, as Keras keeps
it: the reference is run on the float32-rounded lr, and on TF on the float32-rounded weight_decay)."""
from __future__ import annotations

import pytest

from optconform.checking import check
from optconform.testing import keras_lane_adapter

pytestmark = pytest.mark.framework("tensorflow", "keras-jax")

ADAPTER = keras_lane_adapter()
keras = ADAPTER.load()


def keras_adamw(learning_rate, beta_1, beta_2, epsilon, weight_decay):
    """Keras' own argument names: mapped from the canonical lr, beta1, beta2, eps."""
    return keras.optimizers.AdamW(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                                  weight_decay=weight_decay)


def keras_lion(lr, beta1, beta2, weight_decay):
    return keras.optimizers.Lion(learning_rate=lr, beta_1=beta1, beta_2=beta2, weight_decay=weight_decay)


def keras_adam_sold_as_l2(lr, beta1, beta2, eps, weight_decay):
    return keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2, epsilon=eps, weight_decay=weight_decay)


def test_keras_adamw_factory_conforms_to_adamw_eps_hat():
    report = check(keras_adamw, "adamw_eps_hat", ADAPTER.name)
    assert report, str(report)
    assert any(g.endswith("[beta1=0.8]") for g in report.scenarios)       # aliases reach the optimizer
    assert report.fingerprint.preset == "adamw_eps_hat"


def test_keras_lion_factory_conforms_to_lion():
    report = check(keras_lion, "lion", ADAPTER.name)
    if ADAPTER.name == "tensorflow":
        # keras PR #20386 (registered for the native Lion cases): on TF, bias_add rejects the size-0
        # tensor of mixed_shapes, so that probe alone diverges (inf), and check says so
        assert report.failed == ["lion__mixed_shapes"], str(report)
        assert "non-finite: the optimizer produced NaN/Inf in lion__mixed_shapes" in str(report)
    else:
        assert report, str(report)


def test_keras_adam_weight_decay_is_not_l2():
    """Keras Adam(weight_decay) checked against adam_l2: rejected, fingerprinted as decoupled eps-hat."""
    report = check(keras_adam_sold_as_l2, "adam_l2", ADAPTER.name)
    assert not report and report.fingerprint.fits
    knobs = report.fingerprint.knobs
    assert knobs["decay"] == "decoupled" and knobs["eps_placement"] == "eps_hat"
    assert any(d.startswith("decay: the optimizer has decoupled") for d in report.differences)


def test_keras_factory_without_lr_is_an_error():
    report = check(lambda beta1, beta2, eps, weight_decay: keras.optimizers.AdamW(), "adamw_eps_hat", ADAPTER.name)
    assert not report and "must take lr" in report.error
