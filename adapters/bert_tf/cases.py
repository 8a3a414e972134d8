"""The TensorFlow BERT optimizers: tf-models-official 2.20 `AdamWeightDecay` and `LAMB` (legacy
tf_keras optimizers), and the original google-research/bert `AdamWeightDecayOptimizer` as Google
packaged it on PyPI (bert-tensorflow 1.0.4, `bert/optimization.py`, TF1 code on `tensorflow.compat.v1`,
run in a TF1 graph and session; not vendored).

Sources:
- tf-models `official/modeling/optimization/legacy_adamw.py:23-139` at v2.20.0: decay `w -= lr_t*wd*w`
  before the legacy Keras Adam step (bias-corrected, eps on the raw root: `ResourceApplyAdam`),
  exclusion by `re.search` on `var.name` (with its ":0"), `tf.clip_by_global_norm(grads, 1.0)` inside
  `apply_gradients` unless gradient_clip_norm=0. Its docstring's lineage is BERT's optimizer; the
  tf-models BERT `create_optimizer` hands it BERT's hyper-parameters. Float64 variables fail (its wd
  is a float32 constant), so it runs in float32 only.
- tf-models `official/modeling/optimization/lamb.py` at v2.20.0: bias-corrected LAMB, `u += wd*w`
  inside the trust ratio, exclusion by `re.search` on the variable name without ":0".
- bert-tensorflow 1.0.4 `bert/optimization.py:87-174` = google-research/bert `optimization.py`
  (no bias correction, eps outside sqrt(v), `u += wd*w`, `w -= lr*u`; m, v slots float32, so float32
  only). Its schedule and global clip live in `create_optimizer`, outside the optimizer.

Legacy Keras optimizers keep learning_rate/beta_1/beta_2 (and LAMB's weight_decay_rate) as float32
hyper-parameter variables cast to the variable dtype, so float64 runs see them float32-rounded
(`Case.precision`); epsilon is converted to the variable dtype directly. Both compute the bias
correction's powers beta^t in the variable dtype from those betas (tf_keras
`src/optimizers/legacy/adam.py:140-146` at v2.21.0, tf-models `lamb.py:111-118` at v2.20.0): powers=param.
"""
from __future__ import annotations

import math

from optconform.adapters.base import Case
from optconform.reference.precision import ALL, Powers, ScalarPrecision

_KERAS_HP = {"lr": "learning_rate", "beta1": "beta_1", "beta2": "beta_2", "eps": "epsilon",
             "weight_decay": "weight_decay_rate", "weight_decay_exclude": "exclude_from_weight_decay"}
_TFM = "official.modeling.optimization"
_ADAMW = f"{_TFM}.legacy_adamw.AdamWeightDecay"
_ADAMW_KWARGS = {"gradient_clip_norm": 0.0, "amsgrad": False}
#: every float hyper-parameter float32, the bias-correction powers in the variable dtype
_ADAMW_PRECISION = ScalarPrecision(ALL, Powers.PARAM)
#: LAMB's float32 hyper-parameter variables (epsilon is converted to the variable dtype directly)
_LAMB_PRECISION = ScalarPrecision(("lr", "beta1", "beta2", "weight_decay"), Powers.PARAM)
_DOC_TFM_ADAMW = ("tf-models AdamWeightDecay (legacy_adamw.py) is the TF2 port of BERT's AdamWeightDecayOptimizer "
                  "(its docstring repeats BERT's; the TF2 BERT create_optimizer uses it with BERT's hyper-parameters), "
                  "but it subclasses legacy Keras Adam: bias-corrected, eps-hat")


def cases() -> list[Case]:
    common = dict(framework="bert-tf", hp_map=_KERAS_HP, devices=("cpu",))
    return [
        Case(name="tfm.AdamWeightDecay(gradient_clip_norm=0)", native=_ADAMW, rule="adamw_eps_hat", variant="eager",
             kwargs=_ADAMW_KWARGS, dtypes=("float32",), precision=_ADAMW_PRECISION, documented_rule="bert_adamw",
             notes=_DOC_TFM_ADAMW, **common),
        Case(name="tfm.AdamWeightDecay(gradient_clip_norm=0)", native=_ADAMW,
             rule="bert_adamw[bias_correction=on,eps_placement=eps_hat]", variant="bert_hp", kwargs=_ADAMW_KWARGS,
             dtypes=("float32",), precision=_ADAMW_PRECISION, documented_rule="bert_adamw",
             notes="on BERT's goldens (BERT's eps, wd and regex exclusion list): " + _DOC_TFM_ADAMW, **common),
        Case(name="tfm.LAMB", native=f"{_TFM}.lamb.LAMB", rule="lamb", variant="eager",
             fixed_hp={"trust_lower_bound": 0.0, "trust_upper_bound": math.inf}, dtypes=("float64", "float32"),
             precision=_LAMB_PRECISION, documented_rule="lamb",
             notes="docstring: Layer-wise Adaptive Moments, You et al. (arXiv 1904.00962)", **common),
        Case(name="bert.AdamWeightDecayOptimizer", native="bert.optimization.AdamWeightDecayOptimizer",
             rule="bert_adamw", variant="tf1_graph", dtypes=("float32",), documented_rule="bert_adamw",
             notes="google-research/bert optimization.py as packaged by Google (bert-tensorflow 1.0.4); m, v slots "
                   "are float32, so float32 only", **common),
    ]
