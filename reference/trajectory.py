"""`trajectory(rule, params, grads, **hp)`: run a rule in float64 over a recorded gradient sequence.

Inputs of any float dtype are converted to float64; results are float64. NaN and Inf in gradients
propagate as IEEE 754 says (a NaN gradient makes the touched elements NaN from that step on; nothing
is filtered); non-finite *hyper-parameters* are rejected.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .chains import build_chain
from .pieces import ITERATION_BITS, Carry, Ctx
from .rules import PER_STEP_HP, Rule, get_rule, is_finite_number

_BOOL_HP = ("nesterov", "centered")
_INT_HP = ("ns_steps", "warmup_steps")
_OPTIONAL_HP = ("clip_value", "clip_norm", "clip_global_norm")
_UNBOUNDED_HP = ("trust_upper_bound",)


@dataclass(frozen=True)
class Trajectory:
    """A reference run. `params` has T+1 entries along axis 0 (index 0 = the initial params, index t =
    after step t); `state[name]` likewise (index 0 = the initial state). When `params` was given as a
    dict, every entry is a dict tensor name -> array of shape (T+1, *tensor shape)."""
    rule: Rule
    hp: Mapping[str, Any]              # resolved: lr and eta as tuples of length T
    params: Any
    state: Mapping[str, Any]
    steps: int

    def final(self):
        """The params after the last step."""
        return _index(self.params, -1)

    def at(self, t: int):
        """The params after step t (t = 0: initial)."""
        return _index(self.params, t)


def _index(tree, t):
    return {k: v[t] for k, v in tree.items()} if isinstance(tree, dict) else tree[t]


def _as_tree(value, what: str) -> tuple[dict[str, np.ndarray], bool]:
    if isinstance(value, Mapping):
        if not value:
            raise ValueError(f"{what} is an empty dict; give at least one tensor")
        return {str(k): _as_float64(v, f"{what}[{k!r}]") for k, v in value.items()}, True
    return {"": _as_float64(value, what)}, False


def _as_float64(value, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - numpy's own message is kept
        raise ValueError(f"{what} is not an array: {exc}") from exc
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{what} has dtype {arr.dtype}; a real (float or int) array is required")
    return arr.astype(np.float64)


def resolve_hp(rule: Rule, steps: int, hp: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `hp` over the rule's defaults and validate names, types and finiteness.

    lr and eta become tuples of length `steps`. Raises ValueError naming the problem.
    """
    unknown = sorted(set(hp) - set(rule.defaults))
    if unknown:
        raise ValueError(f"unknown hyper-parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                         f"for rule {rule.name!r}; valid: {', '.join(sorted(rule.defaults))}")
    out = dict(rule.defaults)
    out.update(hp)
    for name in PER_STEP_HP:
        out[name] = _per_step(name, out[name], steps)
    for name, value in out.items():
        if name in PER_STEP_HP:
            continue
        if name in _BOOL_HP:
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"hyper-parameter {name!r} must be a bool, got {value!r}")
            out[name] = bool(value)
        elif name == "weight_decay_exclude":
            if isinstance(value, str) or not all(isinstance(p, str) for p in value):
                raise ValueError(f"weight_decay_exclude must be a list of regex strings, got {value!r}")
            out[name] = tuple(value)
        elif name == "weight_decay_mask":
            if value is not None and not isinstance(value, Mapping):
                raise ValueError(f"weight_decay_mask must be a dict tensor name -> bool, got {value!r}")
        elif name in _OPTIONAL_HP and value is None:
            continue
        elif name in _UNBOUNDED_HP and isinstance(value, (int, float)) and value == math.inf:
            continue
        elif not is_finite_number(value):
            raise ValueError(f"hyper-parameter {name!r} must be a finite number, got {value!r}")
        elif name in _INT_HP:
            if value != int(value) or value < 0:
                raise ValueError(f"hyper-parameter {name!r} must be a whole number >= 0, got {value!r}")
            out[name] = int(value)
        else:
            out[name] = float(value)
    return out


def _per_step(name: str, value, steps: int) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)):
        raise ValueError(f"hyper-parameter {name!r} must be a number or a sequence of {steps} numbers, got {value!r}")
    values = tuple(np.ravel(np.asarray(value, dtype=object))) if np.ndim(value) else (value,) * steps
    if len(values) != steps:
        raise ValueError(f"hyper-parameter {name!r} has {len(values)} values; the gradient sequence has {steps} steps")
    for t, v in enumerate(values, start=1):
        if not is_finite_number(v) and not isinstance(v, np.floating):
            raise ValueError(f"hyper-parameter {name!r} at step {t} must be a finite number, got {v!r}")
        if not math.isfinite(float(v)):
            raise ValueError(f"hyper-parameter {name!r} at step {t} is not finite: {v!r}")
    return tuple(float(v) for v in values)


def trajectory(rule: "str | Rule", params, grads: Sequence, *, power_betas: Mapping[str, float] | None = None,
               iteration: str | None = None, **hp) -> Trajectory:
    """Run `rule` (a name, `name[knob=value,...]`, or a Rule) from `params` over `grads`.

    params: array or dict name -> array (any shape, 0-dim and size 0 included).
    grads: sequence of length T, each of the same structure and shapes as params.
    hp: canonical hyper-parameters overriding the rule's defaults; lr and eta may have one value per step.
    power_betas: precision knob, {"beta1": b, "beta2": b} for the bias-correction powers beta^t when a
    framework computes them from other betas than its moments (e.g. float32-rounded; spec/tolerance.md,
    "Scalar precision"). None: the moments' betas (the maths of the spec).
    iteration: precision knob, the dtype ("bfloat16", "float16", "float32") a framework computes Muon's
    Newton-Schulz iteration in: every value of the iteration is rounded to its significand
    (spec/muon.md, "Iteration precision"). None: exact (float64).
    Returns a Trajectory with T+1 params entries and the optimizer state under spec names.
    Raises ValueError for an unknown rule or hyper-parameter, a shape or name mismatch, or a
    non-finite hyper-parameter.
    """
    if iteration is not None and iteration not in ITERATION_BITS:
        raise ValueError(f"unknown iteration dtype {iteration!r}; known: {', '.join(ITERATION_BITS)}")
    return _run(rule, params, grads, hp, np.float64, power_betas, iteration)


def simulate(rule: "str | Rule", params, grads: Sequence, dtype, **hp) -> Trajectory:
    """The same chain computed in `dtype` arithmetic (e.g. np.float32): arrays are cast to `dtype` and
    every piece keeps them there (scalars stay Python floats, which NumPy does not let upcast arrays).
    This is *not* the oracle; it validates the tolerance model (what a correct float32 implementation
    may drift). Results are returned as float64 arrays of the dtype-rounded values."""
    return _run(rule, params, grads, hp, np.dtype(dtype).type)


def _run(rule, params, grads, hp, dtype, powers=None, iteration=None) -> Trajectory:
    resolved_rule = get_rule(rule)
    tree, is_dict = _as_tree(params, "params")
    steps = _check_grads(grads, tree, is_dict)
    resolved_hp = resolve_hp(resolved_rule, steps, hp)
    chain = build_chain(resolved_rule, resolved_hp, list(tree), powers, iteration)
    tree = {k: v.astype(dtype) for k, v in tree.items()}

    # Bounded memory: the outputs are preallocated (T+1, *shape) float64 arrays written step by step;
    # no per-step history of dicts is kept, and each gradient is converted only when it is used.
    states = [piece.init(tree) for piece in chain]
    merged = _merge(states)
    stacked = {k: np.empty((steps + 1, *v.shape), dtype=np.float64) for k, v in tree.items()}
    state = {s: {k: np.empty((steps + 1, *np.shape(v)), dtype=np.float64) for k, v in per.items()}
             for s, per in merged.items()}
    _record(stacked, state, 0, tree, merged)
    current = tree
    for t in range(1, steps + 1):
        ctx = Ctx(t=t, lr=resolved_hp["lr"][t - 1], eta=resolved_hp["eta"][t - 1],
                  lr0=resolved_hp["eta"][0] * resolved_hp["lr"][0])
        grad = {k: v.astype(dtype) for k, v in _as_tree(grads[t - 1], f"grads[{t - 1}]")[0].items()}
        carry = Carry(params=current, updates=grad)
        with np.errstate(all="ignore"):     # IEEE propagation of NaN/Inf is the documented behaviour
            for i, piece in enumerate(chain):
                carry, states[i] = piece.update(carry, states[i], ctx)
        current = carry.params
        _record(stacked, state, t, current, _merge(states))

    if not is_dict:
        stacked = stacked[""]
        state = {s: v[""] for s, v in state.items()}
    return Trajectory(rule=resolved_rule, hp=resolved_hp, params=stacked, state=state, steps=steps)


def _check_grads(grads, tree: dict[str, np.ndarray], is_dict: bool) -> int:
    """Validate the gradient sequence against the params (structure, names, shapes, dtypes) without
    keeping converted copies; returns the number of steps."""
    if isinstance(grads, (np.ndarray, Mapping)) or not isinstance(grads, Sequence):
        raise ValueError("grads must be a sequence (list/tuple) with one gradient per step")
    for t, g in enumerate(grads, start=1):
        if isinstance(g, Mapping):
            if not g:
                raise ValueError(f"grads[{t - 1}] is an empty dict; give at least one tensor")
            shapes, g_is_dict = {str(k): _shape_of(v, f"grads[{t - 1}][{k!r}]") for k, v in g.items()}, True
        else:
            shapes, g_is_dict = {"": _shape_of(g, f"grads[{t - 1}]")}, False
        if g_is_dict != is_dict or set(shapes) != set(tree):
            raise ValueError(f"grads[{t - 1}] has tensors {sorted(shapes)}; params have {sorted(tree)}")
        for name, shape in shapes.items():
            if shape != tree[name].shape:
                label = f"tensor {name!r}" if is_dict else "the tensor"
                raise ValueError(f"grads[{t - 1}]: {label} has shape {shape}; params have {tree[name].shape}")
    return len(grads)


def _shape_of(value, what: str) -> tuple[int, ...]:
    """The shape of a real array-like (the dtype check of `_as_float64`, without the float64 copy)."""
    try:
        arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    except Exception as exc:  # ragged lists and the like: numpy's own message is kept
        raise ValueError(f"{what} is not an array: {exc}") from exc
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{what} has dtype {arr.dtype}; a real (float or int) array is required")
    return arr.shape


def _record(stacked, state, t: int, params, merged) -> None:
    """Write step t's params and state into the preallocated float64 outputs."""
    for k, v in params.items():
        stacked[k][t] = v
    for s, per in merged.items():
        for k, v in per.items():
            state[s][k][t] = v


def _merge(states) -> dict:
    merged: dict = {}
    for s in states:
        for name, tree in s.items():
            if name in merged:
                raise AssertionError(f"two pieces both keep state {name!r}")
            merged[name] = tree
    return merged
