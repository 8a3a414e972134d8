"""The Keras rig: variables, optimizer, lr variable and (compiled) step of one case on one scenario shape,
resettable to a golden's start, so that graph/XLA/jit compile once per group of goldens.

- Variables are created as `keras.Variable(name=<last path part>)` inside `keras.name_scope(<the
  rest>)`, so `variable.path` is the golden tensor name (`dense/kernel`) and `variable.name` its short
  name (`kernel`), exactly what a user's layer variables look like. `exclude_from_weight_decay(var_names=...)`
  matches `variable.name`: a layer name (`LayerNorm`) never matches (registered by-design deviation).
- The learning rate is a `LearningRateSchedule` (what a user's factory receives) whose `__call__`
  returns a float32 lr variable, and the driver sets that variable to the golden's lr_t before step t
  (only when the value changes). That is Keras' own per-step lr: a float lr becomes a `floatx` (float32)
  variable that `_get_current_learning_rate` returns as it is, and `optimizer.learning_rate = value`
  assigns it (keras v3.15.1 keras/src/optimizers/base_optimizer.py:184-193, 729, 782-783), which is
  what the `LearningRateScheduler` callback does (keras/src/callbacks/learning_rate_scheduler.py:70).
  A schedule is called with `iterations` each time the optimizer reads its lr (base_optimizer.py:781;
  about twice a step), so it returns the variable rather than gathering lr[iterations] from a table:
  the same float32 values, without a gather per read (0.64 ms each in eager TF). The variable is an
  optimizer variable (`_track_variable`), so jit's `stateless_apply` carries it as state.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable

import numpy as np

from optconform.adapters.base import Case, RunInput

#: Optimizers whose build() initialises a slot from the variable's value (ScheduleFreeAdamW: z = y_0,
#: keras/src/optimizers/schedule_free_adamw.py:109-111): `Rig.reset` gives those slots the golden's start
#: too (else a rig reused for another golden would start z at the first golden's weights).
COPIED_SLOTS = {"ScheduleFreeAdamW": "_momentums"}


class Rig:
    """One optimizer on one set of variables, resettable to a golden's start.

    step: the variant's step function, compiled once per rig (None: eager `apply`).
    lr: the golden's lr as float32 (what the lr variable holds at each step)."""

    def __init__(self, variables, optimizer, lr_variable, opt_init):
        self.variables, self.optimizer, self.lr_variable, self.opt_init = variables, optimizer, lr_variable, opt_init
        self.step: Callable[..., Any] | None = None
        self.lr = np.zeros(1, dtype=np.float32)

    def reset(self, inp: RunInput) -> None:
        """Parameters at the golden's start, optimizer variables as built, the lr variable at the
        golden's first lr."""
        for v, name in zip(self.variables, inp.tensors):
            v.assign(np.asarray(inp.params0[name], dtype=v.dtype))
        for v, init in zip(self.optimizer.variables, self.opt_init):
            v.assign(init)
        self.lr = np.asarray(inp.lr, dtype=np.float32)
        self.lr_variable.assign(self.lr[0])
        slots = getattr(self.optimizer, COPIED_SLOTS.get(type(self.optimizer).__name__, ""), None) or ()
        for slot, v in zip(slots, self.variables):
            if slot is not None:
                slot.assign(v.value)

    def lr_at(self, step: int) -> np.float32:
        """The golden's lr at 0-based `step` as float32 (its last lr past its end)."""
        return self.lr[min(step, len(self.lr) - 1)]


def rig_key(case: Case, inp: RunInput, device: str, dtype: str) -> tuple:
    """What a rig is reused across: case (and factory), device, dtype, tensor names and shapes, the
    hyper-parameters (lr excepted: the driver sets the lr variable)."""
    shapes = tuple((n, np.shape(inp.params0[n])) for n in inp.tensors)
    return (case.id, id(case.factory), device, dtype, shapes, tuple(sorted((k, repr(v)) for k, v in inp.hp.items())))


def build_rig(keras, case: Case, inp: RunInput, dtype: str) -> Rig:
    """Variables named like a layer's, the case's optimizer on them (its hooks applied, built), and
    the lr variable (module docstring)."""
    variables = []
    for name in inp.tensors:
        *scopes, short = name.split("/")
        init = np.asarray(inp.params0[name], dtype=dtype)
        with contextlib.ExitStack() as stack:
            for scope in scopes:                       # nested: a scope name cannot contain "/"
                stack.enter_context(keras.name_scope(scope))
            variables.append(keras.Variable(init, dtype=dtype, name=short))
    lr_variable = keras.Variable(np.float32(inp.lr[0]), dtype="float32", name="golden_lr", trainable=False)
    optimizer = _optimizer(keras, case, inp, _schedule(keras, lr_variable))
    optimizer._track_variable(lr_variable)   # an optimizer variable: jit's stateless_apply carries it as state
    for hook, value in case.hooked(inp.hp).items():
        hook.apply(optimizer, value)
    optimizer.build(variables)
    return Rig(variables, optimizer, lr_variable, [np.asarray(v.numpy()) for v in optimizer.variables])


def _optimizer(keras, case: Case, inp: RunInput, schedule):
    """``keras.optimizers.<cls>(learning_rate=schedule, **kwargs)`` (None-valued kwargs left out), or a
    user's factory(**hp) with the schedule as its lr argument (`learning_rate` or `lr`)."""
    kwargs: dict[str, Any] = case.native_kwargs(inp.hp)
    if case.factory is None:
        kwargs = {k: v for k, v in kwargs.items() if v is not None or k in case.kwargs}   # a fixed None is meant
        return getattr(keras.optimizers, case.native.rsplit(".", 1)[1])(learning_rate=schedule, **kwargs)
    if "lr" not in case.hp_map:
        raise ValueError("a Keras factory must take lr (or learning_rate): the probes' lr schedule is "
                         "passed as a keras LearningRateSchedule")
    kwargs[case.hp_map["lr"].name] = schedule
    return case.factory(**kwargs)


def _schedule(keras, lr_variable):
    """A LearningRateSchedule returning the float32 lr variable at every step, as the optimizer's
    `_get_current_learning_rate` returns its own lr variable (module docstring)."""

    class GoldenSchedule(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return lr_variable

        def get_config(self):
            return {}

    return GoldenSchedule()


def fingerprint(inp: RunInput) -> tuple:
    """What makes a finished run reusable: tensors, hyper-parameters, lr, initial values and gradients."""
    return (inp.tensors, tuple(sorted((k, repr(v)) for k, v in inp.hp.items())), inp.lr,
            tuple(hash(np.asarray(inp.params0[n]).tobytes()) for n in inp.tensors),
            hash(b"".join(np.asarray(g[n]).tobytes() for g in inp.grads for n in inp.tensors)))
