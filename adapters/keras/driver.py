"""Keras drivers: one step of `keras.optimizers` on a rig (rig.py), on the TensorFlow backend (eager
`optimizer.apply(grads, variables)`, `tf.function` of it, `tf.function(jit_compile=True)`) and on the
JAX backend (eager `apply`, and `jax.jit` of `stateless_apply`, which is what Keras' JAX trainer
compiles under jit_compile=True).

The optimizer's schedule returns the rig's float32 lr variable (rig.py): `step` checks that lr_t is
the golden's lr at this step (as float32), raises if not, and sets the variable to it when it changes
(a Python assign, like Keras' LearningRateScheduler callback; under jit the variable's value among
the carried optimizer values). Keras exposes no state under spec names here: `state` is {}.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from optconform.adapters.base import Driver, RunInput

from .rig import Rig

#: Messages of the failed BiasAdd: eager "Biases must be 1D: [0,3]"; graph/XLA (at trace)
#: "Shape must be rank 1 ... BiasAdd".
_BIAS_ADD = ("Biases must be 1D", "BiasAdd")


class KerasDriver(Driver):
    """What both backends share: the rig, the step count, the lr check and update, parameters read
    back from the Keras variables.

    held: the value the lr variable holds (the golden's first lr: the rig was just reset)."""

    def __init__(self, rig: Rig, inp: RunInput, dtype: str):
        self.rig, self.names, self.dtype, self.t = rig, inp.tensors, dtype, 0
        self.held = rig.lr_at(0)

    def _set_lr(self, lr_t: float) -> None:
        """lr_t must be the golden's lr at this step as float32 (what the schedule yields); the lr
        variable is set to it when it holds another value (compared bit for bit: -0.0 is not 0.0)."""
        want = self.rig.lr_at(self.t)
        if np.float32(lr_t) != want:
            raise ValueError(f"Keras lr schedule: step {self.t} yields the golden's lr {float(want)!r}, "
                             f"the run asks for {lr_t!r}")
        self.t += 1
        if want.tobytes() != self.held.tobytes():
            self._hold(want)
            self.held = want

    def _hold(self, lr: np.float32) -> None:
        """Set the lr variable the step reads (LearningRateScheduler's `optimizer.learning_rate = lr`)."""
        self.rig.lr_variable.assign(lr)

    def params(self) -> dict[str, np.ndarray]:
        return {n: np.asarray(v.numpy(), dtype=np.float64) for n, v in zip(self.names, self.rig.variables)}


class TFDriver(KerasDriver):
    """TF backend: the rig's step (eager, graph or XLA) on `tf.constant` gradients, in the device scope.

    keras.ops.add on TF takes two (0, n) tensors for an input plus a bias and calls tf.nn.bias_add,
    which rejects them (keras PR #20386): the step cannot be taken. From there on the trajectory is
    +inf, so the run deviates (registered, never ok); the rigs are discarded (optimizer state is now
    undefined)."""

    def __init__(self, tf, rig: Rig, inp: RunInput, device: str, dtype: str, discard: Callable[[], None]):
        super().__init__(rig, inp, dtype)
        self.tf, self.scope, self.discard, self.failed = tf, _TF_DEVICES[device], discard, False

    @staticmethod
    def compile(tf, rig: Rig, variant: str) -> Callable[[list], None]:
        """`optimizer.apply(grads, variables)`, wrapped for the variant (COMPILERS)."""
        def step(grads):
            rig.optimizer.apply(grads, rig.variables)
        return COMPILERS.get(variant, lambda tf, fn: fn)(tf, step)

    def native_grads(self, grads: Mapping[str, np.ndarray]) -> list:
        return [self.tf.constant(np.asarray(grads[n], dtype=self.dtype)) for n in self.names]

    def step(self, grads: list, lr_t: float, eta_t: float) -> None:
        if self.failed:
            return
        self._set_lr(lr_t)
        try:
            with self.tf.device(self.scope):
                self.rig.step(grads)
        except (self.tf.errors.InvalidArgumentError, ValueError) as exc:
            if not any(text in str(exc) for text in _BIAS_ADD):
                raise
            self.failed = True
            self.discard()

    def params(self) -> dict[str, np.ndarray]:
        if self.failed:
            return {n: np.full(v.shape, np.inf) for n, v in zip(self.names, self.rig.variables)}
        return super().params()


#: TF variant -> how the eager step function is compiled (eager and a user's factory: as it is).
COMPILERS: Mapping[str, Callable[[Any, Callable], Callable]] = {
    "graph": lambda tf, fn: tf.function(fn),
    "xla": lambda tf, fn: tf.function(fn, jit_compile=True),
}
#: Adapter device -> TF device scope.
_TF_DEVICES = {"cpu": "/CPU:0", "gpu": "/GPU:0"}


class JaxDriver(KerasDriver):
    """JAX backend, eager (and a user's factory): `optimizer.apply(grads, variables)`."""

    def __init__(self, jax, rig: Rig, inp: RunInput, dtype: str):
        super().__init__(rig, inp, dtype)
        self.jax = jax

    @staticmethod
    def compile(jax, rig: Rig) -> Callable | None:
        return None

    def native_grads(self, grads: Mapping[str, np.ndarray]) -> list:
        return [self.jax.numpy.asarray(np.asarray(grads[n], dtype=self.dtype)) for n in self.names]

    def step(self, grads: list, lr_t: float, eta_t: float) -> None:
        self._set_lr(lr_t)
        self.rig.optimizer.apply(grads, self.rig.variables)


class JaxJitDriver(JaxDriver):
    """JAX backend, `jax.jit(optimizer.stateless_apply)` (Keras' JAX trainer jits stateless_apply): the
    optimizer variables' values (the lr variable's among them, set there) and the parameter values are
    carried as arrays from step to step; the Keras variables keep the golden's start."""

    def __init__(self, jax, rig: Rig, inp: RunInput, dtype: str):
        super().__init__(jax, rig, inp, dtype)
        variables = rig.optimizer.variables
        self.opt_values = [v.value for v in variables]
        self.lr_index = next(i for i, v in enumerate(variables) if v is rig.lr_variable)
        self.values = [v.value for v in rig.variables]

    @staticmethod
    def compile(jax, rig: Rig) -> Callable:
        return jax.jit(rig.optimizer.stateless_apply)

    def _hold(self, lr: np.float32) -> None:
        """The lr variable's value among the carried optimizer values (a float32 array: same jit trace)."""
        self.opt_values[self.lr_index] = self.jax.numpy.asarray(lr)

    def step(self, grads: list, lr_t: float, eta_t: float) -> None:
        self._set_lr(lr_t)
        self.values, self.opt_values = self.rig.step(self.opt_values, grads, self.values)

    def params(self) -> dict[str, np.ndarray]:
        return {n: np.asarray(v, dtype=np.float64) for n, v in zip(self.names, self.values)}


#: keras-jax variant -> driver (eager and a user's factory: JaxDriver).
JAX_DRIVERS: Mapping[str, type[JaxDriver]] = {"jit": JaxJitDriver}
