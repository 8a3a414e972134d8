"""optax adapter: pure `init`/`update` GradientTransformations on pytrees, run eagerly and under jax.jit.

optax is the functional paradigm: an optimizer is a `GradientTransformation` (a chain of small
transforms), its state an explicit pytree, and `optax.apply_updates(params, updates)` adds the final
update. The adapter interface needs no special case for it: a `Case` names the optax alias (or the
chain) in `native`, its fixed arguments in `kwargs`, how canonical hyper-parameters map onto the
alias's arguments in `hp_map`, and its implementation `variant`:

- ``eager``: `opt.update` and `optax.apply_updates` dispatched op by op;
- ``jit``: one ``jax.jit(step, donate_argnums=(0, 1))`` per step, params and state donated (the
  trajectory is copied to host before the buffers are handed back). Compiled executables are cached
  per (case, hyper-parameters, tree structure and shapes, dtype, device) and their trace+compile
  time is counted separately (`OptaxAdapter.compile_seconds`), so matrix timings exclude it.

float64 runs execute inside ``jax.enable_x64(True)``; float32 runs inside ``jax.enable_x64(False)``
(JAX's default configuration, what a float32 user gets). Arrays are always created with an explicit
dtype. Devices: cpu always; ``cuda`` when JAX sees a GPU (auto-detected, never required).

Hyper-parameters are passed the way optax users pass them: Python floats closed over by the
transformation. The learning rate is a float when the golden keeps it constant and otherwise a
schedule ``count -> lr[count]`` (optax evaluates schedules at the 0-based pre-increment count);
case kwargs ``_schedules`` force the schedule path (lr and weight_decay as callables).
Params are a nested dict built from the tensor names split at ``/`` (flax layout:
``{"LayerNorm": {"gamma": ...}}``), so masks see the paths real models have.

Adapter directives in `Case.kwargs` (keys starting with ``_``; never passed to optax):
``_chain`` (transforms put in front of the alias: ``clip`` = `optax.clip(clip_value)` when the golden
clips, ``add_decayed_weights`` = coupled L2 the optax way), ``_mask`` (``pytree`` or ``callable``:
the mask argument built from the spec's `weight_decay_exclude` regexes / `weight_decay_mask`),
``_schedules`` (arguments given as callables of the step count).

Sources: optax 0.2.8 `_src/alias.py`, `_src/transform.py`, `transforms/` (shared/notes/semantics.md
section 3).
"""
from __future__ import annotations

import re
import threading
import time
from typing import Any, Mapping

import numpy as np

from .base import Adapter, Case, NativeRun, RunInput

_ADAM_HP = {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "eps": "eps"}
_WD = {"weight_decay": "weight_decay"}
_CLIP = {"clip_value": "clip"}
_MASK = {"weight_decay_exclude": "mask.exclude", "weight_decay_mask": "mask.include"}
_RMS = {"lr": "learning_rate", "rho": "decay", "eps": "eps", "centered": "centered",
        "initial_accumulator_value": "initial_scale"}
_RMS_UNCENTERED = {k: v for k, v in _RMS.items() if k != "centered"}
_NO_TRUST_BOUNDS = {"trust_lower_bound": 0.0, "trust_upper_bound": float("inf")}
_L2 = ("add_decayed_weights",)
_L2_CLIP = ("clip", "add_decayed_weights")

#: optax state class -> {field: spec state name} (the names the reference's pieces use).
STATE_NAMES: Mapping[str, Mapping[str, str]] = {
    "ScaleByAdamState": {"mu": "m", "nu": "v"},
    "ScaleByAmsgradState": {"mu": "m", "nu": "v", "nu_max": "v_max"},
    "ScaleByRssState": {"sum_of_squares": "sum"},
    "ScaleByRmsState": {"nu": "v"},
    "ScaleByRmsWithCountState": {"nu": "v"},
    "ScaleByRStdDevState": {"mu": "g_avg", "nu": "v"},
    "ScaleByRStdDevWithCountState": {"mu": "g_avg", "nu": "v"},
    "ScaleByLionState": {"mu": "m"},
}


def _configs() -> list[tuple[str, str, str, dict, dict, dict]]:
    """(case name, native, claimed rule, fixed kwargs, hp_map, fixed_hp) per configuration.

    Rules were chosen by reading optax 0.2.8 and confirmed by running (see the module docstring of
    tests/conformance/test_jax_findings.py for the findings they state)."""
    sgd_m = {"lr": "learning_rate", "momentum": "momentum"}
    return [
        # --- SGD: optax.sgd has no weight decay; trace (tr <- g + mu*tr) sits before the lr scaling
        ("sgd", "optax.sgd", "sgd[decay=none]", {}, {"lr": "learning_rate"}, {}),
        ("chain(add_decayed_weights,sgd)", "optax.sgd", "sgd", {"_chain": _L2_CLIP},
         {"lr": "learning_rate", **_WD, **_CLIP}, {}),
        ("sgd(momentum)", "optax.sgd", "sgd_momentum[decay=none]", {"nesterov": False}, sgd_m,
         {"dampening": 0.0, "nesterov": False}),
        ("sgd(momentum,nesterov)", "optax.sgd", "sgd_momentum[decay=none]", {"nesterov": True}, sgd_m,
         {"dampening": 0.0, "nesterov": True}),
        ("chain(add_decayed_weights,sgd(momentum))", "optax.sgd", "sgd_momentum", {"_chain": _L2_CLIP},
         {**sgd_m, "nesterov": "nesterov", **_WD, **_CLIP}, {"dampening": 0.0}),
        # --- Adam family
        ("adam", "optax.adam", "adam", {}, dict(_ADAM_HP), {}),
        ("chain(add_decayed_weights,adam)", "optax.adam", "adam_l2", {"_chain": _L2_CLIP},
         {**_ADAM_HP, **_WD, **_CLIP}, {}),
        ("adamw", "optax.adamw", "adamw", {}, {**_ADAM_HP, **_WD}, {}),
        ("adamw(schedules)", "optax.adamw", "adamw", {"_schedules": ("learning_rate", "weight_decay")},
         {**_ADAM_HP, **_WD}, {}),
        # masks: BERT's goldens carry weight_decay_exclude = [LayerNorm, layer_norm, bias]; optax adamw
        # with that mask is AdamW (bias-corrected) over BERT's exclusions
        ("adamw(mask=pytree)", "optax.adamw", "bert_adamw[bias_correction=on]", {"_mask": "pytree"},
         {**_ADAM_HP, **_WD, **_MASK}, {}),
        ("adamw(mask=callable)", "optax.adamw", "bert_adamw[bias_correction=on]", {"_mask": "callable"},
         {**_ADAM_HP, **_WD, **_MASK}, {}),
        ("amsgrad", "optax.amsgrad", "amsgrad_corrected", {}, dict(_ADAM_HP), {}),
        ("lamb", "optax.lamb", "lamb", {}, {**_ADAM_HP, **_WD}, dict(_NO_TRUST_BOUNDS)),
        # --- AdaGrad: scale_by_rss, eps inside the root, 0 where the accumulator is 0
        ("adagrad", "optax.adagrad", "adagrad_eps_inside[decay=none]", {},
         {"lr": "learning_rate", "eps": "eps", "initial_accumulator_value": "initial_accumulator_value"},
         {"lr_decay": 0.0}),
        ("chain(add_decayed_weights,adagrad)", "optax.adagrad", "adagrad_eps_inside", {"_chain": _L2_CLIP},
         {"lr": "learning_rate", "eps": "eps", "initial_accumulator_value": "initial_accumulator_value",
          **_WD, **_CLIP}, {"lr_decay": 0.0}),
        # --- RMSprop: momentum is a trace *after* the lr scaling (lr inside the buffer)
        ("rmsprop", "optax.rmsprop", "rmsprop_eps_inside[decay=none]", {"eps_in_sqrt": True}, dict(_RMS), {}),
        ("rmsprop(eps_in_sqrt=False)", "optax.rmsprop", "rmsprop[decay=none]", {"eps_in_sqrt": False},
         dict(_RMS), {}),
        ("rmsprop(momentum)", "optax.rmsprop", "rmsprop_eps_inside[decay=none,momentum_form=lr_inside]",
         {"eps_in_sqrt": True}, {**_RMS, "momentum": "momentum"}, {}),
        ("rmsprop(momentum,eps_in_sqrt=False)", "optax.rmsprop",
         "rmsprop_momentum[decay=none,momentum_form=lr_inside]", {"eps_in_sqrt": False},
         {**_RMS, "momentum": "momentum"}, {}),
        # bias_correction with centered=True also corrects the gradient average (v_hat - g_avg_hat^2),
        # which no knob of the spec expresses: those cases run the non-centered goldens only
        ("rmsprop(bias_correction)", "optax.rmsprop", "rmsprop_eps_inside[decay=none,bias_correction=on]",
         {"eps_in_sqrt": True, "bias_correction": True, "centered": False}, _RMS_UNCENTERED, {"centered": False}),
        ("rmsprop(bias_correction,eps_in_sqrt=False)", "optax.rmsprop", "rmsprop[decay=none,bias_correction=on]",
         {"eps_in_sqrt": False, "bias_correction": True, "centered": False}, _RMS_UNCENTERED, {"centered": False}),
        ("chain(add_decayed_weights,rmsprop)", "optax.rmsprop", "rmsprop_eps_inside",
         {"eps_in_sqrt": True, "_chain": _L2_CLIP}, {**_RMS, **_WD, **_CLIP}, {}),
        # --- NAdam (Nesterov-Adam without a momentum schedule), RAdam, Adamax, Lion
        ("nadam", "optax.nadam", "nadam_no_schedule", {}, dict(_ADAM_HP), {}),
        ("nadamw", "optax.nadamw", "nadamw[nadam_schedule=none]", {}, {**_ADAM_HP, **_WD}, {}),
        ("radam", "optax.radam", "radam_eps_outside", {}, dict(_ADAM_HP), {}),
        ("adamax", "optax.adamax", "adamax[decay=none]", {}, dict(_ADAM_HP), {}),
        ("chain(add_decayed_weights,adamax)", "optax.adamax", "adamax", {"_chain": _L2_CLIP},
         {**_ADAM_HP, **_WD, **_CLIP}, {}),
        ("lion", "optax.lion", "lion", {}, {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", **_WD}, {}),
    ]


VARIANTS = ("eager", "jit")
#: Aliases whose bias corrections are `1 - decay**count` (optax tree_utils/_tree_math.py:442-452 at
#: v0.2.8): a Python-float beta with the int32 count, i.e. beta rounded to float32 and the power in
#: float32 without x64, exact and float64 with it (Case.hp_dtype "powers=param"; spec/tolerance.md,
#: "Scalar precision").
_POWERS = ("optax.adam", "optax.adamw", "optax.amsgrad", "optax.lamb", "optax.nadam", "optax.nadamw",
           "optax.radam", "optax.adamax")


def _cases() -> list[Case]:
    cases = []
    for name, native, rule, kwargs, hp_map, fixed in _configs():
        hp_dtype = "powers=param" if native in _POWERS else None
        if kwargs.get("_chain"):
            native = "optax.chain(" + ", ".join(f"optax.{t}" for t in kwargs["_chain"]) + f", {native})"
        for variant in VARIANTS:
            cases.append(Case(framework="jax", name=name, native=native, rule=rule, variant=variant,
                              kwargs=kwargs, hp_map=hp_map, fixed_hp=fixed, dtypes=("float64", "float32"),
                              devices=("cpu", "cuda"), hp_dtype=hp_dtype))
    return cases


# --- pytrees --------------------------------------------------------------------------------------

def _nestable(names) -> bool:
    """Whether the '/'-separated names form a tree (no name is a prefix path of another)."""
    paths = [tuple(n.split("/")) for n in names]
    if any("" in p for p in paths) or len(set(paths)) != len(paths):
        return False
    full = set(paths)
    return not any(p[:i] in full for p in paths for i in range(1, len(p)))


def _to_tree(names, values, nested: bool) -> dict:
    if not nested:
        return dict(zip(names, values))
    tree: dict = {}
    for name, value in zip(names, values):
        node = tree
        *head, leaf = name.split("/")
        for key in head:
            node = node.setdefault(key, {})
        node[leaf] = value
    return tree


def _from_tree(tree: Mapping, names, nested: bool) -> dict:
    if not nested:
        return {n: tree[n] for n in names}
    out = {}
    for name in names:
        node = tree
        for key in name.split("/"):
            node = node[key]
        out[name] = node
    return out


def _alias(case: Case) -> str:
    """The optax alias a case calls: the last ``optax.NAME`` of its native expression."""
    return re.findall(r"optax\.(\w+)", case.native)[-1]


def _state_names(case: Case) -> dict[str, dict[str, str]]:
    """STATE_NAMES with the per-alias meanings: adamax's nu is the infinity norm u; a trace before
    the lr scaling (sgd) is the torch-form momentum buffer, after it (rmsprop) the velocity."""
    names = {k: dict(v) for k, v in STATE_NAMES.items()}
    alias = _alias(case)
    if alias == "adamax":
        names["ScaleByAdamState"] = {"mu": "m", "nu": "u"}
    names["TraceState"] = {"trace": "velocity" if alias == "rmsprop" else "momentum"}
    return names


def _decayed(name: str, exclude, include) -> bool:
    """The spec's decay selection: not excluded by any regex (re.search), and True in the mask."""
    if include is not None and not include.get(name, True):
        return False
    return not any(re.search(pattern, name) for pattern in (exclude or ()))


def _host(x) -> np.ndarray:
    """A float64 host copy (never a view of a device buffer that may be donated later)."""
    return np.array(np.asarray(x), dtype=np.float64, copy=True)


class OptaxAdapter(Adapter):
    name = "jax"
    factory_style = "hp"           # factory(**canonical hp) -> optax.GradientTransformation (run eagerly)

    def __init__(self) -> None:
        super().__init__()
        self._compiled: dict[Any, Any] = {}
        self._lock = threading.Lock()
        #: trace+lower+compile seconds of the jit variant's step functions, and how many were compiled
        self.jit_compile_seconds = 0.0
        self.jit_compile_count = 0
        #: every JAX trace/lowering/XLA-compile second in this process (jax.monitoring events), which
        #: includes the per-primitive compilations of eager dispatch (new shape or dtype)
        self.compile_seconds = 0.0

    def _import(self):
        import jax
        import optax
        events = {"/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration"}

        def listen(event: str, duration: float, **_kw) -> None:
            if event in events:
                self.compile_seconds += duration
        jax.monitoring.register_event_duration_secs_listener(listen)
        return jax, optax

    def version(self) -> str:
        jax, optax = self.load()
        return f"{jax.__version__} (optax {optax.__version__})"

    def _gpus(self):
        jax, _ = self.load()
        try:
            return jax.devices("gpu")
        except RuntimeError:          # no GPU backend: never required
            return []

    def devices(self) -> list[str]:
        return ["cpu"] + (["cuda"] if self._gpus() else [])

    def device_name(self, device: str) -> str:
        if device == "cuda":
            gpus = self._gpus()
            return getattr(gpus[0], "device_kind", "gpu") if gpus else "cuda (absent)"
        return "cpu"

    def cases(self) -> list[Case]:
        return _cases()

    # --- building the transformation ------------------------------------------------------------

    def _transformation(self, case: Case, inp: RunInput, dtype, names, nested: bool):
        """The optax GradientTransformation of `case` for this scenario, built as a user would."""
        jax, optax = self.load()
        kwargs = case.native_kwargs(inp.hp)
        if case.factory is not None:           # a user's constructor (optconform check): canonical names
            if "lr" in case.hp_map:              # by the factory's own name for it (lr or learning_rate)
                kwargs[case.hp_map["lr"]] = self._learning_rate(inp, dtype, force_schedule=False)
            return case.factory(**kwargs)
        chain = kwargs.pop("_chain", ())
        mask_form = kwargs.pop("_mask", None)
        schedules = set(kwargs.pop("_schedules", ()))
        exclude, include = kwargs.pop("mask.exclude", None), kwargs.pop("mask.include", None)
        clip = kwargs.pop("clip", None)
        if mask_form is not None:
            flags = {n: _decayed(n, exclude, include) for n in names}
            if mask_form == "pytree":
                kwargs["mask"] = _to_tree(names, [flags[n] for n in names], nested)
            else:
                def mask(tree):     # evaluated by optax on params at init and on updates at update
                    return jax.tree_util.tree_map_with_path(
                        lambda path, _: _decayed("/".join(str(k.key) for k in path), exclude, include), tree)
                kwargs["mask"] = mask
        elif exclude or include is not None:
            raise ValueError(f"{case.id}: the golden excludes tensors from decay but the case has no mask")
        learning_rate = self._learning_rate(inp, dtype, force_schedule="learning_rate" in schedules)
        if "weight_decay" in schedules and "weight_decay" in kwargs:
            kwargs["weight_decay"] = optax.constant_schedule(kwargs["weight_decay"])
        fn = getattr(optax, _alias(case))
        pre = []
        for transform in chain:
            if transform == "clip":
                if clip is not None:
                    pre.append(optax.clip(clip))
            elif transform == "add_decayed_weights":
                pre.append(optax.add_decayed_weights(kwargs.pop("weight_decay", 0.0)))
        if clip is not None and "clip" not in chain:
            raise ValueError(f"{case.id}: the golden clips gradients but the case has no clip transform")
        opt = fn(learning_rate=learning_rate, **kwargs)
        return optax.chain(*pre, opt) if pre else opt

    def _learning_rate(self, inp: RunInput, dtype, force_schedule: bool):
        """A float when the golden's lr is constant, else the schedule count -> lr[count]."""
        jax, _ = self.load()
        lrs = [float(x) for x in inp.lr]
        if not force_schedule and len(set(lrs)) <= 1:
            return lrs[0]
        table = jax.numpy.asarray(np.asarray(lrs), dtype=dtype)
        return lambda count: table[count]       # optax calls schedules with the 0-based step count

    # --- running ---------------------------------------------------------------------------------

    def _run(self, case: Case, inp: RunInput, device: str, dtype: str) -> NativeRun:
        jax, optax = self.load()
        with jax.enable_x64(dtype == "float64"):
            dev = self._gpus()[0] if device == "cuda" else jax.devices("cpu")[0]
            with jax.default_device(dev):
                return self._run_on(case, inp, dev, dtype)

    def _run_on(self, case: Case, inp: RunInput, dev, dtype_name: str) -> NativeRun:
        jax, optax = self.load()
        jnp = jax.numpy
        dtype = getattr(jnp, dtype_name)
        names = list(inp.tensors)
        nested = _nestable(names)

        np_dtype = np.dtype(dtype_name)

        def tree(values: Mapping[str, np.ndarray]):
            arrays = [jax.device_put(np.asarray(values[n], dtype=np_dtype), dev) for n in names]
            return _to_tree(names, arrays, nested)

        opt = self._transformation(case, inp, dtype, names, nested)
        params = tree(inp.params0)
        state = opt.init(params)
        history = {n: [_host(v)] for n, v in _from_tree(params, names, nested).items()}
        states: dict[str, dict[str, list]] = {}
        state_names = _state_names(case)
        self._record_state(state, state_names, names, nested, states)

        def step(params, state, grads):
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        if case.variant == "jit":
            grads0 = tree(inp.grads[0]) if inp.steps else params
            step = self._compiled_step(case, inp, dtype_name, dev, step, params, state, grads0)
        for t in range(inp.steps):
            params, state = step(params, state, tree(inp.grads[t]))
            # copy out before the next step donates these buffers
            for n, v in _from_tree(params, names, nested).items():
                history[n].append(_host(v))
            self._record_state(state, state_names, names, nested, states)
        out_state = {k: {n: np.stack(v) for n, v in per.items()} for k, per in states.items()
                     if len(per) == len(names) and all(len(v) == inp.steps + 1 for v in per.values())}
        return NativeRun(params={n: np.stack(v) for n, v in history.items()}, state=out_state)

    def _compiled_step(self, case, inp, dtype_name, dev, step, params, state, grads):
        """jax.jit(step, donate_argnums=(0, 1)), compiled ahead of time once per key (timed)."""
        jax, _ = self.load()
        leaves, treedef = jax.tree_util.tree_flatten((params, state, grads))
        key = (case.id, dtype_name, bool(jax.config.jax_enable_x64), str(dev), repr(sorted(case.native_kwargs(inp.hp).items())),
               tuple(inp.lr) if len(set(inp.lr)) > 1 or "_schedules" in case.kwargs else inp.lr[:1],
               tuple(inp.tensors), str(treedef), tuple((x.shape, str(x.dtype)) for x in leaves))
        with self._lock:
            compiled = self._compiled.get(key)
        if compiled is None:
            started = time.perf_counter()
            compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
            with self._lock:
                self.jit_compile_seconds += time.perf_counter() - started
                self.jit_compile_count += 1
                self._compiled[key] = compiled
        return compiled

    def _record_state(self, state, state_names, names, nested, states) -> None:
        """Append the spec-named state tensors found in the optax state pytree."""
        def visit(node):
            kind = type(node).__name__
            if kind in state_names:
                for fld, spec in state_names[kind].items():
                    self._append(states, spec, getattr(node, fld), names, nested)
                return
            if hasattr(node, "inner_state"):
                visit(node.inner_state)
            elif isinstance(node, tuple):
                for child in node:
                    visit(child)
        visit(state)

    @staticmethod
    def _append(states, spec, subtree, names, nested) -> None:
        try:
            values = _from_tree(subtree, names, nested)
        except (KeyError, TypeError):    # masked or partial trees: not exposed
            return
        per = states.setdefault(spec, {})
        for n, v in values.items():
            per.setdefault(n, []).append(_host(v))


ADAPTER = OptaxAdapter()
