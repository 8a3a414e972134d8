"""The TensorFlow BERT optimizers: tf-models-official 2.20 `AdamWeightDecay` and `LAMB` (legacy
tf_keras optimizers), and the original google-research/bert `AdamWeightDecayOptimizer` as Google
packaged it on PyPI (bert-tensorflow 1.0.4, `bert/optimization.py`, TF1 code on `tensorflow.compat.v1`,
run here in a TF1 graph and session; not vendored).

Sources (shared/notes/semantics.md section 5):
- tf-models `official/modeling/optimization/legacy_adamw.py:23-139`: decay `w -= lr_t*wd*w` before
  the legacy Keras Adam step (bias-corrected, eps on the raw root: `ResourceApplyAdam`), exclusion by
  `re.search` on `var.name` (with its ":0"), `tf.clip_by_global_norm(grads, 1.0)` inside
  `apply_gradients` unless gradient_clip_norm=0. Its docstring's lineage is BERT's optimizer; the
  tf-models BERT `create_optimizer` hands it BERT's hyper-parameters. Float64 variables fail (its wd
  is a float32 constant), so it runs in float32 only.
- tf-models `official/modeling/optimization/lamb.py`: bias-corrected LAMB, `u += wd*w` inside the
  trust ratio, exclusion by `re.search` on the variable name without ":0".
- bert-tensorflow 1.0.4 `bert/optimization.py:87-174` = google-research/bert `optimization.py`
  (no bias correction, eps outside sqrt(v), `u += wd*w`, `w -= lr*u`; m, v slots float32, so float32
  only). Its schedule and global clip live in `create_optimizer`, outside the optimizer.

Legacy Keras optimizers keep learning_rate/beta_1/beta_2 (and LAMB's weight_decay_rate) as float32
hyper-parameter variables cast to the variable dtype, so float64 runs see them float32-rounded
(`Case.hp_dtype`); epsilon is converted to the variable dtype directly.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .base import Adapter, Case, NativeRun, RunInput

_KERAS_HP = {"lr": "learning_rate", "beta1": "beta_1", "beta2": "beta_2", "eps": "epsilon",
             "weight_decay": "weight_decay_rate", "weight_decay_exclude": "exclude_from_weight_decay"}
_TFM = "official.modeling.optimization"
_DOC_TFM_ADAMW = ("tf-models AdamWeightDecay (legacy_adamw.py) is the TF2 port of BERT's AdamWeightDecayOptimizer "
                  "(its docstring repeats BERT's; the TF2 BERT create_optimizer uses it with BERT's hyper-parameters), "
                  "but it subclasses legacy Keras Adam: bias-corrected, eps-hat")


def _cases() -> list[Case]:
    return [
        Case(framework="bert-tf", name="tfm.AdamWeightDecay(gradient_clip_norm=0)", native=f"{_TFM}.legacy_adamw.AdamWeightDecay",
             rule="adamw_eps_hat", variant="eager", kwargs={"gradient_clip_norm": 0.0, "amsgrad": False},
             hp_map=_KERAS_HP, dtypes=("float32",), devices=("cpu",), hp_dtype="float32;powers=param",
             documented_rule="bert_adamw", notes=_DOC_TFM_ADAMW),
        Case(framework="bert-tf", name="tfm.AdamWeightDecay(gradient_clip_norm=0)", native=f"{_TFM}.legacy_adamw.AdamWeightDecay",
             rule="bert_adamw[bias_correction=on,eps_placement=eps_hat]", variant="bert_hp",
             kwargs={"gradient_clip_norm": 0.0, "amsgrad": False}, hp_map=_KERAS_HP, dtypes=("float32",),
             devices=("cpu",), hp_dtype="float32;powers=param", documented_rule="bert_adamw",
             notes="on BERT's goldens (BERT's eps, wd and regex exclusion list): " + _DOC_TFM_ADAMW),
        Case(framework="bert-tf", name="tfm.LAMB", native=f"{_TFM}.lamb.LAMB", rule="lamb", variant="eager",
             hp_map=_KERAS_HP, fixed_hp={"trust_lower_bound": 0.0, "trust_upper_bound": math.inf},
             dtypes=("float64", "float32"), devices=("cpu",), hp_dtype="float32:lr,beta1,beta2,weight_decay;powers=param",
             documented_rule="lamb", notes="docstring: Layer-wise Adaptive Moments, You et al. (arXiv 1904.00962)"),
        Case(framework="bert-tf", name="bert.AdamWeightDecayOptimizer", native="bert.optimization.AdamWeightDecayOptimizer",
             rule="bert_adamw", variant="tf1_graph", hp_map=_KERAS_HP, dtypes=("float32",), devices=("cpu",),
             documented_rule="bert_adamw",
             notes="google-research/bert optimization.py as packaged by Google (bert-tensorflow 1.0.4); m, v slots "
                   "are float32, so float32 only"),
    ]


class BertTFAdapter(Adapter):
    name = "bert-tf"

    def _import(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        import tf_keras
        from official.modeling.optimization import lamb, legacy_adamw  # noqa: F401
        import bert.optimization  # noqa: F401  (bert-tensorflow: google-research/bert as a package)
        from importlib import metadata
        self._versions = {"tensorflow": tf.__version__, "tf-keras": tf_keras.__version__,
                          "tf-models-official": metadata.version("tf-models-official"),
                          "bert-tensorflow": metadata.version("bert-tensorflow")}
        return tf

    def version(self) -> str:
        self.load()
        v = self._versions
        return (f"{v['tf-models-official']} (tf-models-official; tensorflow {v['tensorflow']}, tf-keras {v['tf-keras']}, "
                f"bert-tensorflow {v['bert-tensorflow']})")

    def cases(self) -> list[Case]:
        return _cases()

    def _run(self, case: Case, inp: RunInput, device: str, dtype: str) -> NativeRun:
        if case.variant == "tf1_graph":
            return self._run_tf1(case, inp, dtype)
        tf = self.load()
        from official.modeling.optimization import lamb, legacy_adamw
        kwargs: dict[str, Any] = case.native_kwargs(inp.hp)
        cls = legacy_adamw.AdamWeightDecay if case.native.endswith("AdamWeightDecay") else lamb.LAMB
        optimizer = cls(learning_rate=inp.lr[0], **kwargs)
        variables = [tf.Variable(np.asarray(inp.params0[n]), dtype=getattr(tf, dtype), name=n) for n in inp.tensors]
        history = {n: [np.asarray(inp.params0[n], dtype=np.float64)] for n in inp.tensors}
        for t, grads in enumerate(inp.grads):
            optimizer.learning_rate = float(inp.lr[t] * inp.eta[t])
            optimizer.apply_gradients([(tf.constant(np.asarray(grads[n]), dtype=getattr(tf, dtype)), v)
                                       for n, v in zip(inp.tensors, variables)])
            for n, v in zip(inp.tensors, variables):
                history[n].append(v.numpy().astype(np.float64))
        return NativeRun(params={n: np.stack(h) for n, h in history.items()})

    def _run_tf1(self, case: Case, inp: RunInput, dtype: str) -> NativeRun:
        tf = self.load()
        tf1 = tf.compat.v1
        from bert import optimization
        kwargs: dict[str, Any] = case.native_kwargs(inp.hp)
        graph = tf.Graph()
        with graph.as_default():
            variables = [tf1.Variable(np.asarray(inp.params0[n], dtype=dtype), name=n) for n in inp.tensors]
            grads = [tf1.placeholder(dtype, shape=np.shape(inp.params0[n])) for n in inp.tensors]
            lr = tf1.placeholder(dtype, shape=())
            optimizer = optimization.AdamWeightDecayOptimizer(learning_rate=lr, **kwargs)
            train_op = optimizer.apply_gradients(list(zip(grads, variables)))
            init = tf1.global_variables_initializer()
        history = {n: [np.asarray(inp.params0[n], dtype=np.float64)] for n in inp.tensors}
        with tf1.Session(graph=graph) as sess:
            sess.run(init)
            for t, step_grads in enumerate(inp.grads):
                feed = {g: np.asarray(step_grads[n], dtype=dtype) for n, g in zip(inp.tensors, grads)}
                feed[lr] = np.asarray(inp.lr[t] * inp.eta[t], dtype=dtype)
                sess.run(train_op, feed_dict=feed)
                for n, value in zip(inp.tensors, sess.run(variables)):
                    history[n].append(np.asarray(value, dtype=np.float64))
        return NativeRun(params={n: np.stack(h) for n, h in history.items()})


ADAPTER = BertTFAdapter()
