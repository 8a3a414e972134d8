"""The natives `optconform translate` covers: each one's keyword defaults, the target it belongs to,
and how its keywords are spelled when they differ from the adapter's hp_map.

A source call names only some keywords; the others take the native's default, so translation needs
each default. They are read from the native signatures at the releases the lanes pin (torch/optim/
{sgd,adam,adamw}.py at v2.13.0, keras/src/optimizers/{sgd,adam,adamw,lamb}.py at v3.15.1, optax/_src/
alias.py at v0.2.8, mxnet python/mxnet/optimizer/optimizer.py and src/operator/contrib/adamw.cc at
1.9.1, pytorch_pretrained_bert/optimization.py:183-220 at 0.6.2, transformers/optimization.py:607-640
at v4.49.0, official/modeling/optimization/{legacy_adamw,lamb}.py at v2.20.0, bert/optimization.py:87-98
of bert-tensorflow 1.0.4); each framework lane checks them against the installed signature
(tests/conformance/test_translations.py::test_native_defaults_match_signature).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

#: A keyword without a default: the source call must give it.
REQUIRED = object()
#: Target name (--to) -> the adapter whose cases it draws on (Keras: one set of cases, two lanes).
TARGETS: Mapping[str, str] = {"torch": "torch", "keras": "tensorflow", "optax": "jax", "mxnet": "mxnet",
                              "bert": "bert", "bert-tf": "bert-tf"}
#: Target name -> the test lanes that prove its side.
LANES: Mapping[str, tuple[str, ...]] = {"torch": ("torch",), "keras": ("tensorflow", "keras-jax"), "optax": ("jax",),
                                        "mxnet": ("mxnet",), "bert": ("bert",), "bert-tf": ("bert-tf",)}


@dataclass(frozen=True)
class Native:
    """One native API: its keyword defaults (REQUIRED where it has none), keywords that only pick an
    implementation (never part of the maths), and the real spelling of keywords the adapter's hp_map
    names otherwise (the MXNet ops take ``lr``, the drivers ``learning_rate``)."""
    target: str
    defaults: Mapping[str, Any]
    implementation: tuple[str, ...] = ()
    spelled: Mapping[str, str] = field(default_factory=dict)
    usage: str = ""
    #: False for generated operators (MXNet ops), whose Python signature does not carry their defaults
    signature: bool = True


_BETAS = (0.9, 0.999)
_KERAS_ADAM = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "clipvalue": None}
_KERAS = {"lr": "learning_rate"}
_MX_BASE = {"learning_rate": 0.01, "wd": 0.0, "rescale_grad": 1.0, "clip_gradient": None}
_MX_ADAM = {**_MX_BASE, "learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "lazy_update": True}
_TORCH_IMPL = ("foreach", "fused")

NATIVES: Mapping[str, Native] = {
    "torch.optim.SGD": Native("torch", {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0,
                                        "nesterov": False}, _TORCH_IMPL),
    "torch.optim.Adam": Native("torch", {"lr": 1e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 0.0,
                                         "amsgrad": False, "decoupled_weight_decay": False}, _TORCH_IMPL),
    "torch.optim.AdamW": Native("torch", {"lr": 1e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 1e-2,
                                          "amsgrad": False}, _TORCH_IMPL),
    "keras.optimizers.SGD": Native("keras", {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False,
                                             "weight_decay": None, "clipvalue": None}, spelled=_KERAS),
    "keras.optimizers.Adam": Native("keras", {**_KERAS_ADAM, "amsgrad": False, "weight_decay": None}, spelled=_KERAS),
    "keras.optimizers.AdamW": Native("keras", {**_KERAS_ADAM, "amsgrad": False, "weight_decay": 0.004},
                                     spelled=_KERAS),
    "keras.optimizers.Lamb": Native("keras", {**_KERAS_ADAM, "weight_decay": None}, spelled=_KERAS),
    "optax.sgd": Native("optax", {"learning_rate": REQUIRED, "momentum": None, "nesterov": False}),
    "optax.adam": Native("optax", {"learning_rate": REQUIRED, "b1": 0.9, "b2": 0.999, "eps": 1e-8}),
    "optax.adamw": Native("optax", {"learning_rate": REQUIRED, "b1": 0.9, "b2": 0.999, "eps": 1e-8,
                                    "weight_decay": 1e-4}),
    "optax.lamb": Native("optax", {"learning_rate": REQUIRED, "b1": 0.9, "b2": 0.999, "eps": 1e-6,
                                   "weight_decay": 0.0}),
    "optax.chain(optax.clip, optax.add_decayed_weights, optax.sgd)": Native(
        "optax", {"learning_rate": REQUIRED, "weight_decay": 0.0},
        usage="optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate, momentum, nesterov))"),
    "optax.chain(optax.clip, optax.add_decayed_weights, optax.adam)": Native(
        "optax", {"learning_rate": REQUIRED, "b1": 0.9, "b2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
        usage="optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate, b1, b2, eps))"),
    "mxnet.optimizer.SGD": Native("mxnet", {**_MX_BASE, "momentum": 0.0, "lazy_update": True}),
    "mxnet.optimizer.Adam": Native("mxnet", dict(_MX_ADAM)),
    "mxnet.optimizer.LAMB": Native("mxnet", {**_MX_ADAM, "epsilon": 1e-6, "lower_bound": None, "upper_bound": None,
                                             "bias_correction": True}),
    "mxnet.nd.contrib.adamw_update": Native(
        "mxnet", {"lr": REQUIRED, "eta": REQUIRED, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
                  "wd": 0.0, "rescale_grad": REQUIRED, "clip_gradient": -1.0}, spelled={"learning_rate": "lr"},
        usage="an update op, called once per tensor and step: w -= eta*(lr*m/(sqrt(v)+epsilon) + wd*w)",
        signature=False),
    "pytorch_pretrained_bert.optimization.BertAdam": Native(
        "bert", {"lr": REQUIRED, "warmup": -1, "t_total": -1, "b1": 0.9, "b2": 0.999, "e": 1e-6,
                 "weight_decay": 0.01, "max_grad_norm": 1.0}),
    "transformers.AdamW": Native("bert", {"lr": 1e-3, "betas": _BETAS, "eps": 1e-6, "weight_decay": 0.0,
                                          "correct_bias": True}, ("no_deprecation_warning",)),
    "official.modeling.optimization.legacy_adamw.AdamWeightDecay": Native(
        "bert-tf", {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False,
                    "weight_decay_rate": 0.0, "exclude_from_weight_decay": None, "gradient_clip_norm": 1.0}),
    "official.modeling.optimization.lamb.LAMB": Native(
        "bert-tf", {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-6,
                    "weight_decay_rate": 0.0, "exclude_from_weight_decay": None}),
    "bert.optimization.AdamWeightDecayOptimizer": Native(
        "bert-tf", {"learning_rate": REQUIRED, "weight_decay_rate": 0.0, "beta_1": 0.9, "beta_2": 0.999,
                    "epsilon": 1e-6, "exclude_from_weight_decay": None}),
}

