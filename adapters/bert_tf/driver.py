"""Drivers of the TensorFlow BERT optimizers: the legacy tf_keras ones (tf-models AdamWeightDecay, LAMB)
eagerly on `tf.Variable`s, google-research/bert's AdamWeightDecayOptimizer in a TF1 graph and session.

The adapter takes no eta: the plan folds it into lr, and each step sets lr_t*eta_t (= lr_t) the way
each optimizer's users change it (the `learning_rate` attribute; a fed placeholder in the graph).
"""
from __future__ import annotations

import importlib
import os
from typing import Mapping

import numpy as np

from optconform.adapters.base import Adapter, Case, Driver, RunInput

from . import cases as _cases


class KerasDriver(Driver):
    """`<native>(learning_rate=lr_0, **kwargs)` (a legacy tf_keras optimizer) on one `tf.Variable` per
    tensor, named as the tensor (the exclusion patterns match the name); one `apply_gradients` per step."""

    def __init__(self, tf, case: Case, inp: RunInput, device: str, dtype: str):
        self.tf, self.dtype, self.names = tf, getattr(tf, dtype), inp.tensors
        module, _, cls = case.native.rpartition(".")
        self.optimizer = getattr(importlib.import_module(module), cls)(learning_rate=inp.lr[0],
                                                                         **case.native_kwargs(inp.hp))
        self.variables = [tf.Variable(np.asarray(inp.params0[n]), dtype=self.dtype, name=n) for n in inp.tensors]

    def native_grads(self, grads: Mapping[str, np.ndarray]) -> list:
        return [self.tf.constant(np.asarray(grads[n]), dtype=self.dtype) for n in self.names]

    def step(self, grads: list, lr_t: float, eta_t: float) -> None:
        self.optimizer.learning_rate = float(lr_t * eta_t)
        self.optimizer.apply_gradients(list(zip(grads, self.variables)))

    def params(self) -> dict[str, np.ndarray]:
        return {n: v.numpy().astype(np.float64) for n, v in zip(self.names, self.variables)}


class GraphDriver(Driver):
    """bert.optimization.AdamWeightDecayOptimizer(learning_rate=<placeholder>, **kwargs) in its own
    `tf.Graph`: `apply_gradients` on gradient placeholders builds the train op once; each step runs it
    in the driver's session with the gradients and lr_t fed."""

    def __init__(self, tf, case: Case, inp: RunInput, device: str, dtype: str):
        from bert import optimization
        tf1 = tf.compat.v1
        self.names, self.dtype = inp.tensors, dtype
        graph = tf.Graph()
        with graph.as_default():
            self.variables = [tf1.Variable(np.asarray(inp.params0[n], dtype=dtype), name=n) for n in inp.tensors]
            self.grads = [tf1.placeholder(dtype, shape=np.shape(inp.params0[n])) for n in inp.tensors]
            self.lr = tf1.placeholder(dtype, shape=())
            optimizer = optimization.AdamWeightDecayOptimizer(learning_rate=self.lr, **case.native_kwargs(inp.hp))
            self.train_op = optimizer.apply_gradients(list(zip(self.grads, self.variables)))
            init = tf1.global_variables_initializer()
        self.session = tf1.Session(graph=graph)
        self.session.run(init)

    def native_grads(self, grads: Mapping[str, np.ndarray]) -> dict:
        return {g: np.asarray(grads[n], dtype=self.dtype) for n, g in zip(self.names, self.grads)}

    def step(self, grads: dict, lr_t: float, eta_t: float) -> None:
        self.session.run(self.train_op, feed_dict={**grads, self.lr: np.asarray(lr_t * eta_t, dtype=self.dtype)})

    def params(self) -> dict[str, np.ndarray]:
        return {n: np.asarray(v, dtype=np.float64) for n, v in zip(self.names, self.session.run(self.variables))}


#: Case.native -> its driver
DRIVERS: Mapping[str, type[Driver]] = {
    "official.modeling.optimization.legacy_adamw.AdamWeightDecay": KerasDriver,
    "official.modeling.optimization.lamb.LAMB": KerasDriver,
    "bert.optimization.AdamWeightDecayOptimizer": GraphDriver}


class BertTFAdapter(Adapter):
    name = "bert-tf"

    def _import(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        import tf_keras
        from importlib import metadata
        for module in ("official.modeling.optimization.lamb", "official.modeling.optimization.legacy_adamw",
                       "bert.optimization"):     # bert-tensorflow: google-research/bert as a package
            importlib.import_module(module)
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
        return _cases.cases()

    def driver(self, case: Case, inp: RunInput, device: str, dtype: str) -> Driver:
        return DRIVERS[case.native](self.load(), case, inp, device, dtype)
