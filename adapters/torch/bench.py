"""torch stepper for the step-time benchmark (optconform.bench), built on the conformance driver.

Variants: the adapter's own cases -- for-loop (``foreach=False``), ``foreach=True``, ``fused=True`` and,
for AdamW, ``compiled``: the conformance matrix's case whose foreach optimizer has its ``step`` wrapped
in ``torch.compile`` (adapters/torch/cases.py `compiled_cases`; float32 bias corrections modelled).
Every optimizer instance compiles afresh, so the first step's time is the compile time. Its
correctness gate runs the two constant-lr goldens with the most steps (a cheaper subset: each golden
compiles once; the whole matrix row runs in the torch lane).

Devices: "cpu" and "cuda" (tensors, grads, state and the stream probe all live on the device; the
timed region ends with torch.cuda.synchronize(); peak memory from torch.cuda.max_memory_allocated on
CUDA, the process RSS high-water mark on CPU: optconform.bench_memory).
"""
from __future__ import annotations

import time
from typing import Any

from optconform.adapters.base import Case
from optconform.bench_memory import MemoryProbe
from optconform.bench_stepper import Built, Stepper


def _single_pass(torch, passes):
    """(kernel, description): `passes` compiled into one loop, or itself (eager) when inductor fails."""
    compiled = torch.compile(passes, dynamic=False)
    try:
        compiled()
    except Exception as exc:       # inductor's C++ toolchain missing or broken: measure the eager passes
        return passes, f"eager add_ passes (torch.compile failed: {type(exc).__name__})"
    return compiled, "single pass over the rule's arrays (torch.compile)"


class TorchStepper(Stepper):
    framework = "torch"
    overhead_variants = ("fused",)

    def gate_goldens(self, case: Case):
        if case.variant != "compiled":
            return None
        from optconform import plan
        chosen = [g for g in plan.goldens_for(case, self.adapter.supports_eta)
                  if len(set(plan.run_input(case, g, self.adapter.supports_eta).lr)) == 1]
        chosen.sort(key=lambda g: -len(g.grads))
        return chosen[:2]

    def pin_threads(self, threads: int):
        torch = self.module
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        return lambda: torch.set_num_threads(before)

    def environment(self, device: str) -> dict[str, Any]:
        torch = self.module
        env = {"framework_version": torch.__version__, "device_name": self.adapter.device_name(device),
               "torch_num_threads": torch.get_num_threads(), "openmp": torch.backends.openmp.is_available()}
        if device == "cuda":
            env["cuda"] = torch.version.cuda
        return env

    def sync(self, device: str, driver=None):
        if device == "cuda":
            return self.module.cuda.synchronize
        return lambda: None

    def memory_probe(self, device: str):
        """CUDA: the caching allocator's tensor bytes (torch.cuda.max_memory_allocated since
        reset_peak_memory_stats); CPU: the base stepper's RSS high-water mark."""
        torch = self.module
        if device != "cuda":
            return super().memory_probe(device)

        def reset():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        return MemoryProbe("torch.cuda.max_memory_allocated - memory_allocated", reset,
                           torch.cuda.max_memory_allocated, torch.cuda.memory_allocated)

    def build(self, case: Case, shapes, device: str, dtype: str, hp: dict[str, Any], seed: int = 0) -> Built:
        built = super().build(case, shapes, device, dtype, hp, seed)
        driver = built.native

        def close():
            driver.optimizer.state.clear()
            driver.tensors.clear()
            if device == "cuda":
                self.module.cuda.empty_cache()
        built.close = close
        return built

    def stream(self, n: int, arrays: int, written: int, device: str, dtype: str) -> Built:
        """The limit kernel shaped like the rule's traffic: one pass that reads every array once and
        writes the written ones in place (`w += r` for each written w, fused by torch.compile into a
        single loop: e.g. AdamW reads p, g, m, v and writes p, m, v, 28 B/param like the rule). Eager
        `add_`s would make one pass per written array (3 x 12 B/param for AdamW): at 1e7 on the
        project's VM that probe read 45-55 GB/s where the single pass reads 57-61, and a fused AdamW
        step beat its "limit" (105-107 %). Falls back to the eager passes where inductor cannot
        compile (no C++ compiler), which the row records (`limit_probe`)."""
        torch = self.module
        tdtype = getattr(torch, dtype)
        bufs = [torch.full((n,), 1.0 if i < written else 1e-3, device=device, dtype=tdtype) for i in range(arrays)]
        read_only = bufs[written:] or bufs[:1]
        pairs = [(bufs[i], read_only[i % len(read_only)]) for i in range(written)]

        def passes() -> None:
            for w, r in pairs:
                w.add_(r)                      # read w, read r, write w in place
        itemsize = torch.empty((), dtype=tdtype).element_size()
        fused, kind = _single_pass(torch, passes)
        nbytes = itemsize * n * (arrays + written) if fused is not passes else 3.0 * itemsize * n * written
        return Built(step=fused, sync=self.sync(device), n_params=n, n_tensors=arrays, bytes_per_call=nbytes,
                     close=bufs.clear, kind=kind)

    def bare_step(self, built: Built):
        """`optimizer.step()` alone: the gradients and the lr are assigned once, by one harness step
        (`TorchDriver.step` assigns them every step: `p.grad = g` per tensor and the group's lr)."""
        built.step()
        built.sync()
        return built.native.optimizer.step
