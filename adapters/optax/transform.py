"""The optax GradientTransformation of a case, built for one scenario the way a user builds it.

``optax.<alias>(learning_rate=..., **kwargs)``, where

- the learning rate is a Python float when the golden keeps it constant and otherwise a schedule
  ``count -> lr[count]`` (optax evaluates schedules at the 0-based pre-increment count,
  optax/_src/transform.py `scale_by_learning_rate` at v0.2.8); `OptaxCase.schedules` forces the
  schedule path (``learning_rate``; ``weight_decay`` as `optax.constant_schedule`);
- `OptaxCase.mask` builds the ``mask`` argument from the spec's decay selection (`decayed`);
- `OptaxCase.chain` puts transforms in front of the alias: ``optax.chain(*prefix, alias)``.

A user's factory (optconform check, `Case.factory`) is called instead with the canonical
hyper-parameters under its own names, the learning rate included.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from optconform.adapters.base import Case, RunInput

from .cases import Clip, MaskExclude, MaskForm, MaskInclude, Negated, OptaxCase, SameAs, Transform
from .trees import to_tree


def decayed(name: str, exclude, include) -> bool:
    """The spec's decay selection: not excluded by any regex (re.search), and True in the mask."""
    if include is not None and not include.get(name, True):
        return False
    return not any(re.search(pattern, name) for pattern in (exclude or ()))


def is_schedule(case: Case, inp: RunInput) -> bool:
    """Whether the learning rate is given as a schedule: the golden's lr changes, or the case says so."""
    forced = isinstance(case, OptaxCase) and "learning_rate" in case.schedules
    return forced or len(set(inp.lr)) > 1


def learning_rate(jnp, inp: RunInput, dtype, schedule: bool):
    """A float (the constant lr), or the schedule count -> lr[count] over the run's whole lr sequence."""
    lrs = [float(x) for x in inp.lr]
    if not schedule:
        return lrs[0]
    table = jnp.asarray(np.asarray(lrs), dtype=dtype)
    return lambda count: table[count]       # optax calls schedules with the 0-based step count


def _pytree_mask(jax, names: Sequence[str], nested: bool, exclude, include):
    """A pytree of booleans shaped like the params."""
    return to_tree(names, [decayed(n, exclude, include) for n in names], nested)


def _callable_mask(jax, names: Sequence[str], nested: bool, exclude, include):
    """A callable of the tree, evaluated by optax on params at init and on updates at update."""
    def mask(tree):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: decayed("/".join(str(k.key) for k in path), exclude, include), tree)
    return mask


#: MaskForm -> builder of the alias's ``mask`` argument
MASKS: Mapping[MaskForm, Callable[..., Any]] = {MaskForm.PYTREE: _pytree_mask, MaskForm.CALLABLE: _callable_mask}


def _clip(optax, kwargs: dict[str, Any], hooks: Mapping[type, Any]):
    """`optax.clip(clip_value)` when the golden clips (None: nothing in front)."""
    value = hooks.get(Clip)
    return optax.clip(value) if value is not None else None


def _add_decayed_weights(optax, kwargs: dict[str, Any], hooks: Mapping[type, Any]):
    """Coupled L2 the optax way: the alias's ``weight_decay`` moves to `optax.add_decayed_weights`."""
    return optax.add_decayed_weights(kwargs.pop("weight_decay", 0.0))


#: Transform -> the transform put in front of the alias (None: none for this golden)
PREFIX: Mapping[Transform, Callable[..., Any]] = {Transform.CLIP: _clip,
                                                  Transform.ADD_DECAYED_WEIGHTS: _add_decayed_weights}


def _factory(jnp, case: Case, inp: RunInput, dtype):
    """A user's constructor: canonical names, the lr by the factory's own name for it (lr or learning_rate)."""
    kwargs = case.native_kwargs(inp.hp)
    if "lr" in case.hp_map:
        kwargs[case.hp_map["lr"].name] = learning_rate(jnp, inp, dtype, is_schedule(case, inp))
    return case.factory(**kwargs)


def transformation(jax, optax, case: Case, inp: RunInput, dtype, names: Sequence[str], nested: bool):
    """The optax GradientTransformation of `case` for this scenario (dtype: the jnp parameter dtype)."""
    if case.factory is not None:
        return _factory(jax.numpy, case, inp, dtype)
    kwargs = case.native_kwargs(inp.hp)
    hooks = {type(hook): value for hook, value in case.hooked(inp.hp).items()}
    exclude, include = hooks.get(MaskExclude), hooks.get(MaskInclude)
    if case.mask is not None:
        kwargs["mask"] = MASKS[case.mask](jax, names, nested, exclude, include)
    elif exclude or include is not None:
        raise ValueError(f"{case.id}: the golden excludes tensors from decay but the case has no mask")
    lr = learning_rate(jax.numpy, inp, dtype, is_schedule(case, inp))
    if "weight_decay" in case.schedules and "weight_decay" in kwargs:
        kwargs["weight_decay"] = optax.constant_schedule(kwargs["weight_decay"])
    prefix = [t for t in (PREFIX[transform](optax, kwargs, hooks) for transform in case.chain) if t is not None]
    if hooks.get(Clip) is not None and Transform.CLIP not in case.chain:
        raise ValueError(f"{case.id}: the golden clips gradients but the case has no clip transform")
    for hook, value in case.hooked(inp.hp).items():
        if isinstance(hook, Negated):
            kwargs[hook.name] = -value
        if isinstance(hook, SameAs) and value != inp.hp.get(hook.other):
            raise ValueError(f"{case.id}: optax takes {hook.other}={inp.hp.get(hook.other)!r} for both, the golden "
                             f"asks for {value!r} in the other")
    if kwargs.get("warmup_steps") == 0:
        kwargs["warmup_steps"] = None                  # schedule_free_adamw: None is "no warmup"
    opt = functools.reduce(getattr, case.alias.split("."), optax)(learning_rate=lr, **kwargs)
    return optax.chain(*prefix, opt) if prefix else opt
