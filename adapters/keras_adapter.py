"""Keras 3 adapters: `keras.optimizers` on the TensorFlow backend ("tensorflow": eager, tf.function
graph, tf.function(jit_compile=True) XLA) and on the JAX backend ("keras-jax": eager `apply`, and
`jax.jit` of `stateless_apply`, which is what Keras' JAX trainer compiles under jit_compile=True).

Sources: keras 3.15.1 `keras/src/optimizers/*.py`, TF overrides `keras/src/backend/tensorflow/optimizer.py`
(shared/notes/semantics.md section 2). What every case claims, and why:

- Every Keras `weight_decay` is the base-class pre-step shrink `w <- w - w*wd*lr_t` (decoupled, x lr,
  before the optimizer's own step, never inside its statistics): so `Adam(weight_decay)` claims
  `adamw_eps_hat`, `SGD(momentum, weight_decay)` claims `sgd_momentum_inside[decay=decoupled]`, ...
  Without `weight_decay` a case claims its rule with `decay=none` (it runs the same goldens, whose
  decay the native optimizer is not given, against the reference without decay).
- Clipping (`clipvalue`) happens before the decay and never sees it: with decoupled decay the
  reference clips the gradient only, so the `clip_with_decay` goldens of the coupled presets run
  honestly under the derived `[decay=decoupled]` rules (clip_value 0.5, wd 0.5). No golden has
  `clip_norm` / `clip_global_norm`; Keras `clipnorm` / `global_clipnorm` are checked against the
  reference in tests/conformance/test_keras_findings.py.
- The learning rate is a `LearningRateSchedule` returning the golden's lr[iterations] (0-based) from a
  float32 table: a float lr is a `floatx` (float32) variable in Keras, a schedule evaluated at the
  0-based `iterations` is Keras' own way to change it per step, and both give float32 lr values.
- Variables are created as `keras.Variable(name=<last path part>)` inside `keras.name_scope(<the
  rest>)`, so `variable.path` is the golden tensor name (`dense/kernel`) and `variable.name` its short
  name (`kernel`), exactly what a user's layer variables look like. `exclude_from_weight_decay(var_names=...)`
  matches `variable.name`: a layer name (`LayerNorm`) never matches (registered by-design deviation).

hp_dtype ("which Python hyper-parameters Keras rounds to float32"):
- TF backend: `ops.cast(python_float, "float64")` goes through a float32 tensor (`tf.cast` of a Python
  float), while Python floats combined with a float64 tensor (`m + (g-m)*(1-beta_1)`, `+ epsilon`) are
  exact. So lr (float32 variable/table), weight_decay (`tf.cast`, TF optimizer.py:97) and whatever an
  optimizer `ops.cast`s are rounded: SGD momentum, Lion betas (used only through the cast), the Adam
  family's betas *in the bias-correction powers only* (the EMA uses the exact `1 - beta`): the
  `powers=float32` clause of hp_dtype (spec/tolerance.md, "Scalar precision").
- JAX backend (float64 needs `jax_enable_x64`, set by this adapter: without it Keras' float64 variables
  are silently float32): `ops.cast` of a Python float is exact; only lr (float32) is rounded, and the
  bias-correction powers use beta in the variable dtype (`powers=param`).
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
from typing import Any

import numpy as np

from .base import Adapter, AdapterUnavailable, Case, NativeRun, RunInput

_ADAM = {"lr": "lr", "beta1": "beta_1", "beta2": "beta_2", "eps": "epsilon"}
_WD = {"weight_decay": "weight_decay"}
_CLIP = {"clip_value": "clipvalue"}
_LAMB_FIXED = {"trust_lower_bound": 0.0, "trust_upper_bound": math.inf}
#: Classes whose bias-correction powers are ops.power(ops.cast(beta, variable.dtype), local_step), in
#: the variable dtype (keras/src/optimizers/adam.py:108-113 at v3.15.1; nadam.py, lamb.py, adamax.py):
#: from a float32-rounded beta on TF, from beta rounded to the variable dtype on JAX (Case.hp_dtype
#: "powers=" clause; spec/tolerance.md, "Scalar precision").
_POWERS = ("Adam", "AdamW", "Nadam", "Lamb", "Adamax")


def _configs() -> list[tuple[str, str, str, dict, dict, dict, tuple[str, ...]]]:
    """(case name, keras class, claimed rule, fixed kwargs, hp_map, fixed_hp, rounded hp on TF)."""
    sgd_r = ("lr", "weight_decay")
    mom_r = ("lr", "weight_decay", "momentum")
    adam_r = ("lr", "weight_decay")                  # + betas in the bias correction only: powers= (_POWERS)
    rms = {"lr": "lr", "rho": "rho", "eps": "epsilon", **_CLIP}
    rms_fixed = {"initial_accumulator_value": 0.0}
    ada = {"lr": "lr", "eps": "epsilon", "initial_accumulator_value": "initial_accumulator_value", **_CLIP}
    mom = {"lr": "lr", "momentum": "momentum", **_CLIP}
    nad = {**_ADAM, "momentum_decay": "-"}          # fixed: Keras' 0.96^t schedule is momentum_decay = 1
    configs = []
    for wd, suffix, decay in ((False, "", "none"), (True, "(weight_decay)", "decoupled")):
        w = _WD if wd else {}
        both = lambda base, extra="": f"{base}[decay={decay}{extra}]"  # noqa: E731
        comma = lambda name: name.replace(")(", ",")  # noqa: E731
        configs += [
            (f"SGD{suffix}", "SGD", both("sgd"), {"momentum": 0.0}, {"lr": "lr", **w, **_CLIP}, {}, sgd_r),
            (comma(f"SGD(momentum){suffix}"), "SGD", both("sgd_momentum_inside"), {"nesterov": False},
             {**mom, **w}, {"nesterov": False, "dampening": 0.0}, mom_r),
            (comma(f"SGD(nesterov){suffix}"), "SGD", both("sgd_momentum_inside"), {"nesterov": True},
             {**mom, **w}, {"nesterov": True, "dampening": 0.0}, mom_r),
            (f"Adagrad{suffix}", "Adagrad", both("adagrad_eps_inside"), {}, {**ada, **w}, {"lr_decay": 0.0},
             ("lr", "weight_decay", "initial_accumulator_value")),   # Constant initializer ops.casts it
            (f"RMSprop{suffix}", "RMSprop", both("rmsprop_eps_inside"), {"centered": False, "momentum": 0.0},
             {**rms, **w}, {"centered": False, **rms_fixed}, ("lr", "weight_decay")),
            (comma(f"RMSprop(centered){suffix}"), "RMSprop", both("rmsprop_eps_inside"),
             {"centered": True, "momentum": 0.0}, {**rms, **w}, {"centered": True, **rms_fixed}, ("lr", "weight_decay")),
            (comma(f"RMSprop(momentum){suffix}"), "RMSprop", both("rmsprop_eps_inside", ",momentum_form=lr_inside"),
             {"centered": False}, {**rms, **w, "momentum": "momentum"}, {"centered": False, **rms_fixed},
             ("lr", "weight_decay")),
            (comma(f"RMSprop(centered,momentum){suffix}"), "RMSprop",
             both("rmsprop_eps_inside", ",momentum_form=lr_inside"), {"centered": True},
             {**rms, **w, "momentum": "momentum"}, {"centered": True, **rms_fixed}, ("lr", "weight_decay")),
            (f"Nadam{suffix}", "Nadam", both("nadam"), {}, {**_ADAM, **w}, {"momentum_decay": 1.0},
             ("lr", "weight_decay", "beta1", "beta2")),    # Nadam uses the cast betas throughout
            (f"Lion{suffix}", "Lion", both("lion"), {}, {"lr": "lr", "beta1": "beta_1", "beta2": "beta_2", **w}, {},
             ("lr", "weight_decay", "beta1", "beta2")),
            (f"Lamb{suffix}", "Lamb", both("lamb_decay_outside"), {}, {**_ADAM, **w}, dict(_LAMB_FIXED), adam_r),
            (f"Adamax{suffix}", "Adamax", both("adamax", ",eps_placement=outside_max"), {}, {**_ADAM, **w, **_CLIP},
             {}, adam_r),
        ]
    configs += [
        ("Adam", "Adam", "adam_eps_hat", {}, dict(_ADAM), {}, adam_r),
        ("Adam(weight_decay)", "Adam", "adamw_eps_hat", {}, {**_ADAM, **_WD}, {}, adam_r),
        ("AdamW", "AdamW", "adamw_eps_hat", {}, {**_ADAM, **_WD}, {}, adam_r),
        ("Adam(amsgrad)", "Adam", "amsgrad[eps_placement=eps_hat]", {"amsgrad": True}, dict(_ADAM), {}, adam_r),
        ("AdamW(amsgrad)", "AdamW", "adamw_amsgrad[eps_placement=eps_hat]", {"amsgrad": True}, {**_ADAM, **_WD}, {},
         adam_r),
        # clipvalue on Adam: the only Adam-family goldens with a clip are MXNet's; with decoupled decay
        # (Keras) the derived rule is adamw_eps_hat's maths on those scenarios.
        ("AdamW(clipvalue)", "AdamW", "mxnet_adam[decay=decoupled]", {}, {**_ADAM, **_WD, **_CLIP}, {}, adam_r),
        # exclude_from_weight_decay(var_names=...): BERT's exclusion goldens; bias-corrected, eps-hat.
        ("AdamW.exclude_from_weight_decay(var_names)", "AdamW", "bert_adamw[bias_correction=on,eps_placement=eps_hat]",
         {}, {**_ADAM, **_WD, "weight_decay_exclude": "exclude_from_weight_decay(var_names)"}, {}, adam_r),
    ]
    out = []
    for name, cls, rule, kwargs, hp_map, fixed, rounded in configs:
        hp_map = {k: v for k, v in hp_map.items() if v != "-"}
        out.append((name, cls, rule, kwargs, hp_map, fixed, rounded))
    return out


def _cases(framework: str, variants: tuple[str, ...], devices: tuple[str, ...]) -> list[Case]:
    cases = []
    for name, cls, rule, kwargs, hp_map, fixed, rounded in _configs():
        hp_dtype = "float32:" + ",".join(rounded) if framework == "tensorflow" else "float32:lr"
        if cls in _POWERS:
            hp_dtype += ";powers=float32" if framework == "tensorflow" else ";powers=param"
        for variant in variants:
            if variant not in ("eager",) and "weight_decay" not in hp_map:
                continue        # compiled variants: every optimizer, in its weight-decay configuration
            cases.append(Case(framework=framework, name=name, native=f"keras.optimizers.{cls}", rule=rule,
                              variant=variant, kwargs=kwargs, hp_map=hp_map, fixed_hp=fixed,
                              dtypes=("float64", "float32"), devices=devices, hp_dtype=hp_dtype))
    return cases


def _import_keras(backend: str):
    """Import keras with KERAS_BACKEND=backend; fail clearly if keras is already in with another one."""
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        have = keras.backend.backend()
        if have != backend:
            raise AdapterUnavailable(
                f"keras is already imported in this process with backend {have!r}; the {backend!r} backend "
                f"must be chosen before keras is imported (run this adapter in its own process, with "
                f"KERAS_BACKEND={backend})")
        return keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")        # TF start-up noise; errors still shown
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)             # else float64 variables are float32
    import keras
    if keras.backend.backend() != backend:
        raise AdapterUnavailable(f"keras imported with backend {keras.backend.backend()!r}, wanted {backend!r}")
    return keras


class _KerasAdapter(Adapter):
    backend = ""
    variants: tuple[str, ...] = ()
    #: A user's factory (optconform check): `factory(**hp)` -> a keras.optimizers.Optimizer, with `lr`
    #: (or `learning_rate`) given as a LearningRateSchedule that returns each probe's lr; run eagerly.
    factory_style = "hp"
    #: Which hyper-parameters Keras rounds to float32 for any optimizer (module docstring).
    factory_hp_dtype = "float32:lr;powers=param"    # bias-correction powers of the casted betas (_POWERS)

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[tuple, NativeRun] = {}
        self._rigs: dict[tuple, _Rig] = {}

    def _import(self):
        return _import_keras(self.backend)

    def version(self) -> str:
        keras = self.load()
        if self.backend == "tensorflow":
            import tensorflow as tf
            return f"{keras.__version__} (tensorflow {tf.__version__})"
        import jax
        return f"{keras.__version__} (jax {jax.__version__})"

    def cases(self) -> list[Case]:
        return _cases(self.name, self.variants, ("cpu", "gpu"))

    # -- one run ---------------------------------------------------------------------------------
    def _run(self, case: Case, inp: RunInput, device: str, dtype: str) -> NativeRun:
        if case.factory is not None:          # a user's factory: never served from another's cache
            return self._run_uncached(case, inp, device, dtype)
        key = (case.id, device, dtype, _fingerprint(inp))
        if key not in self._cache:            # deterministic: the CLI's match and the tests reuse it
            self._cache[key] = self._run_uncached(case, inp, device, dtype)
        return self._cache[key]

    def _rig(self, case: Case, inp: RunInput, device: str, dtype: str) -> "_Rig":
        """Variables, optimizer and (compiled) step for this case and scenario shape, reset to the
        golden's start. Reused across goldens with the same tensors, shapes and hyper-parameters (lr
        excepted: it is read from a table variable), so graph/XLA compile once per such group."""
        shapes = tuple((n, np.shape(inp.params0[n])) for n in inp.tensors)
        key = (case.id, id(case.factory), device, dtype, shapes, tuple(sorted((k, repr(v)) for k, v in inp.hp.items())),
               max(_LR_TABLE, inp.steps))
        rig = self._rigs.get(key)
        if rig is None:
            rig = self._rigs[key] = self._new_rig(case, inp, dtype, key[-1])
        rig.reset(inp)
        return rig

    def _new_rig(self, case: Case, inp: RunInput, dtype: str, table_len: int) -> "_Rig":
        keras = self.load()
        variables = []
        for name in inp.tensors:
            *scopes, short = name.split("/")
            init = np.asarray(inp.params0[name], dtype=dtype)
            with contextlib.ExitStack() as stack:
                for scope in scopes:                       # nested: a scope name cannot contain "/"
                    stack.enter_context(keras.name_scope(scope))
                variables.append(keras.Variable(init, dtype=dtype, name=short))
        kwargs: dict[str, Any] = case.native_kwargs(inp.hp)
        exclude = kwargs.pop("exclude_from_weight_decay(var_names)", None)
        table = keras.Variable(np.zeros(table_len, dtype=np.float32), dtype="float32", name="golden_lr",
                               trainable=False)
        if case.factory is not None:
            if "lr" not in case.hp_map:
                raise ValueError("a Keras factory must take lr (or learning_rate): the probes' lr schedule is "
                                 "passed as a keras LearningRateSchedule")
            kwargs[case.hp_map["lr"]] = _schedule(keras, table)
            optimizer = case.factory(**kwargs)
        else:
            kwargs = {k: v for k, v in kwargs.items() if v is not None}
            optimizer = getattr(keras.optimizers, case.native.rsplit(".", 1)[1])(
                learning_rate=_schedule(keras, table), **kwargs)
        optimizer._track_variable(table)       # an optimizer variable: jit's stateless_apply reads it as state
        if exclude:
            optimizer.exclude_from_weight_decay(var_names=list(exclude))
        optimizer.build(variables)
        rig = _Rig(variables, optimizer, table, [np.asarray(v.numpy()) for v in optimizer.variables])
        rig.step = self._step_fn(case, rig)
        return rig

    def _step_fn(self, case: Case, rig: "_Rig"):
        raise NotImplementedError

    def _run_uncached(self, case, inp, device, dtype) -> NativeRun:
        raise NotImplementedError


#: Length of the lr table variable (the longest golden has 100 steps; longer ones get their own).
_LR_TABLE = 128


class _Rig:
    """One optimizer on one set of variables, resettable to a golden's start."""

    def __init__(self, variables, optimizer, table, opt_init):
        self.variables, self.optimizer, self.table, self.opt_init = variables, optimizer, table, opt_init
        self.step = None

    def reset(self, inp: RunInput) -> None:
        for v, name in zip(self.variables, inp.tensors):
            v.assign(np.asarray(inp.params0[name], dtype=v.dtype))
        for v, init in zip(self.optimizer.variables, self.opt_init):
            v.assign(init)
        lr = np.full(self.table.shape, inp.lr[-1], dtype=np.float32)
        lr[:inp.steps] = np.asarray(inp.lr, dtype=np.float32)
        self.table.assign(lr)


def _fingerprint(inp: RunInput) -> tuple:
    return (inp.tensors, tuple(sorted((k, repr(v)) for k, v in inp.hp.items())), inp.lr,
            tuple(hash(np.asarray(inp.params0[n]).tobytes()) for n in inp.tensors),
            hash(b"".join(np.asarray(g[n]).tobytes() for g in inp.grads for n in inp.tensors)))


def _schedule(keras, table):
    """A LearningRateSchedule returning lr[iterations] (0-based) from a float32 table variable, like
    Keras' own float32 lr variable."""

    class GoldenSchedule(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            index = keras.ops.minimum(keras.ops.cast(step, "int32"), table.shape[0] - 1)
            return keras.ops.take(table.value, index)

        def get_config(self):
            return {}

    return GoldenSchedule()


class TensorFlowKerasAdapter(_KerasAdapter):
    name = "tensorflow"
    backend = "tensorflow"
    variants = ("eager", "graph", "xla")
    factory_hp_dtype = "float32:lr,weight_decay;powers=float32"   # + tf.cast of weight_decay (TF optimizer.py:97)

    def devices(self) -> list[str]:
        self.load()
        import tensorflow as tf
        return ["cpu"] + (["gpu"] if tf.config.list_physical_devices("GPU") else [])

    def device_name(self, device: str) -> str:
        if device == "gpu":
            import tensorflow as tf
            gpus = tf.config.list_physical_devices("GPU")
            details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
            return str(details.get("device_name", "gpu"))
        return "cpu"

    def _step_fn(self, case: Case, rig: _Rig):
        import tensorflow as tf

        def step(grads):
            rig.optimizer.apply(grads, rig.variables)

        if case.variant == "graph":
            return tf.function(step)
        if case.variant == "xla":
            return tf.function(step, jit_compile=True)
        return step

    def _run_uncached(self, case, inp, device, dtype) -> NativeRun:
        import tensorflow as tf
        with tf.device("/GPU:0" if device == "gpu" else "/CPU:0"):
            rig = self._rig(case, inp, device, dtype)
            history = [[np.asarray(v.numpy(), dtype=np.float64)] for v in rig.variables]
            for g in inp.grads:
                try:
                    rig.step([tf.constant(np.asarray(g[n], dtype=dtype)) for n in inp.tensors])
                except (tf.errors.InvalidArgumentError, ValueError) as exc:
                    # eager: "Biases must be 1D: [0,3]"; graph/XLA (at trace): "Shape must be rank 1 ... BiasAdd"
                    if "Biases must be 1D" not in str(exc) and "BiasAdd" not in str(exc):
                        raise
                    # keras.ops.add on TF takes two (0, n) tensors for an input plus a bias and calls
                    # tf.nn.bias_add, which rejects them (keras PR #20386): the step cannot be taken.
                    # From here on the trajectory is +inf, so the run deviates (registered, never ok).
                    for h, v in zip(history, rig.variables):
                        h.extend([np.full(v.shape, np.inf)] * (inp.steps + 1 - len(h)))
                    self._rigs.clear()                      # optimizer state is now undefined
                    break
                for h, v in zip(history, rig.variables):
                    h.append(np.asarray(v.numpy(), dtype=np.float64))
        return NativeRun(params={n: np.stack(h) for n, h in zip(inp.tensors, history)})


class JaxKerasAdapter(_KerasAdapter):
    name = "keras-jax"
    backend = "jax"
    variants = ("eager", "jit")

    def devices(self) -> list[str]:
        self.load()
        import jax
        try:
            return ["cpu"] + (["gpu"] if jax.devices("gpu") else [])
        except RuntimeError:
            return ["cpu"]

    def device_name(self, device: str) -> str:
        if device == "gpu":
            import jax
            return str(jax.devices("gpu")[0].device_kind)
        return "cpu"

    def _step_fn(self, case: Case, rig: _Rig):
        if case.variant in ("eager", "factory"):
            return None
        import jax
        return jax.jit(rig.optimizer.stateless_apply)   # Keras' JAX trainer jits stateless_apply

    def _run_uncached(self, case, inp, device, dtype) -> NativeRun:
        import jax
        with jax.default_device(jax.devices("gpu" if device == "gpu" else "cpu")[0]):
            rig = self._rig(case, inp, device, dtype)
            grads = [[jax.numpy.asarray(np.asarray(g[n], dtype=dtype)) for n in inp.tensors] for g in inp.grads]
            history = [[np.asarray(v.numpy(), dtype=np.float64)] for v in rig.variables]
            if rig.step is None:
                for gs in grads:
                    rig.optimizer.apply(gs, rig.variables)
                    for h, v in zip(history, rig.variables):
                        h.append(np.asarray(v.numpy(), dtype=np.float64))
            else:
                opt_values = [v.value for v in rig.optimizer.variables]
                values = [v.value for v in rig.variables]
                for gs in grads:
                    values, opt_values = rig.step(opt_values, gs, values)
                    for h, v in zip(history, values):
                        h.append(np.asarray(v, dtype=np.float64))
        return NativeRun(params={n: np.stack(h) for n, h in zip(inp.tensors, history)})


TF_ADAPTER = TensorFlowKerasAdapter()
JAX_ADAPTER = JaxKerasAdapter()
