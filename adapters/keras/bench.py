"""Keras 3 stepper (TensorFlow backend) for the step-time benchmark (optconform.bench).

Variants: the adapter's ``eager`` (`optimizer.apply(grads, variables)` op by op), ``graph``
(`tf.function` of it) and ``xla`` (`tf.function(jit_compile=True)`). Each row times the conformance
run's own driver (driver.TFDriver on a rig.py rig: the case's native kwargs at the benchmark's
hyper-parameters, `optimizer.build(variables)` before the first step, the constant lr in the rig's
float32 lr variable (returned by its LearningRateSchedule; set once, at reset), every step in the
device's `tf.device` scope);
the first (traced/compiled) step's time is reported apart. Closing a row discards the adapter's rigs.

Rules: no Keras case claims ``adamw`` or ``sgd_momentum`` exactly (Keras AdamW is ``adamw_eps_hat``,
SGD(momentum) the velocity form ``sgd_momentum_inside``), so those requested rules are answered by
the Keras counterparts in `COUNTERPARTS`; the rows are filed under the counterpart's own rule (the
table never puts them beside torch's AdamW) and the gate checks that rule.

Sync: ``tf.experimental.sync_devices()`` where TF has it, else ``.numpy()`` of one element of the
first variable (on CPU eager ops are synchronous already; for tf.function this waits for the graph).
Threads: `tf.config.threading` can only be set before TF's runtime starts; the harness' affinity
pinning applies.
"""
from __future__ import annotations

from typing import Any

from optconform.adapters.base import Case
from optconform.bench_stepper import Built, Stepper

#: requested rule -> [(counterpart rule, preferred case name)]
COUNTERPARTS = {
    "adamw": [("adamw_eps_hat", "AdamW")],
    "sgd_momentum": [("sgd_momentum_inside[decay=decoupled]", "SGD(momentum,weight_decay)")],
}


class KerasTFStepper(Stepper):
    framework = "tensorflow"
    overhead_variants = ("xla",)

    @property
    def tf(self):
        return self.adapter.tf

    def native_device(self, device: str) -> str:
        return "gpu" if device == "cuda" else device

    def _tf_device(self, device: str) -> str:
        return "/GPU:0" if device == "cuda" else "/CPU:0"

    def bench_cases(self, rule: str, device: str) -> list[Case]:
        own = super().bench_cases(rule, device)
        if own:
            return own
        dev = self.native_device(device)
        out = []
        for target, preferred in COUNTERPARTS.get(rule, ()):
            cases = [c for c in self.adapter.cases() if c.rule == target and dev in c.devices and "float32" in c.dtypes]
            named = [c for c in cases if c.name == preferred]
            out += named or super().bench_cases(target, device)
        return out

    def environment(self, device: str) -> dict[str, Any]:
        tf = self.tf
        return {"framework_version": self.adapter.version(), "device_name": self.adapter.device_name(self.native_device(device)),
                "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
                "sync": "tf.experimental.sync_devices" if hasattr(tf.experimental, "sync_devices") else ".numpy() of one element"}

    def sync(self, device: str, driver):
        return self._sync(driver.rig.variables[0])

    def _sync(self, variable):
        tf = self.tf
        if hasattr(tf.experimental, "sync_devices"):
            return tf.experimental.sync_devices
        tf_var = getattr(variable, "value", variable)            # keras.Variable wraps a tf.Variable
        tf_var = tf_var if isinstance(tf_var, tf.Variable) else variable

        def sync():
            tf.reshape(tf_var, [-1])[:1].numpy()
        return sync

    def build(self, case: Case, shapes, device: str, dtype: str, hp: dict[str, Any], seed: int = 0) -> Built:
        built = super().build(case, shapes, self.native_device(device), dtype, hp, seed)
        built.close = self.adapter.discard_rigs
        return built

    def stream(self, n: int, arrays: int, written: int, device: str, dtype: str) -> Built:
        tf = self.tf
        with tf.device(self._tf_device(device)):
            bufs = [tf.Variable(tf.fill([n], tf.constant(1.0 if i < written else 1e-3, dtype=dtype)))
                    for i in range(arrays)]
        read_only = bufs[written:] or bufs[:1]
        pairs = [(bufs[i], read_only[i % len(read_only)]) for i in range(written)]

        def step():
            for w, r in pairs:
                w.assign_add(r)                  # one pass: read w, read r, write w in place
        itemsize = tf.as_dtype(dtype).size
        return Built(step=step, sync=self._sync(bufs[0]), n_params=n, n_tensors=arrays,
                     bytes_per_call=3.0 * itemsize * n * written, close=bufs.clear)
