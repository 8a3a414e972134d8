"""The reference keeps bounded memory: its outputs (T+1 entries per tensor and state) and nothing per
step besides them (issue 15: it used to retain ~1.8 KB per step, 1.84 GB for 10^6 steps on one
element; now 10^6 steps on one element peak at 76 MB RSS for the whole process)."""
from __future__ import annotations

import tracemalloc

import numpy as np

from optconform.reference import trajectory

STEPS = 3000
#: Bytes a step may cost: the float64 outputs (params, m, v = 24 B) plus slack; the old per-step
#: history of dicts cost ~1800 B.
BYTES_PER_STEP = 200


def test_memory_per_step_is_the_output_only():
    grads = [np.array([0.1])] * STEPS
    tracemalloc.start()
    try:
        run = trajectory("adamw", np.array([1.0]), grads, lr=1e-3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.params.shape == (STEPS + 1, 1)
    assert peak < STEPS * BYTES_PER_STEP, f"peak {peak} B for {STEPS} steps ({peak / STEPS:.0f} B/step)"
