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
        torch = self.module
        tdtype = getattr(torch, dtype)
        bufs = [torch.full((n,), 1.0 if i < written else 1e-3, device=device, dtype=tdtype) for i in range(arrays)]
        read_only = bufs[written:] or bufs[:1]
        pairs = [(bufs[i], read_only[i % len(read_only)]) for i in range(written)]

        def step():
            for w, r in pairs:
                w.add_(r)                      # one pass: read w, read r, write w in place
        itemsize = torch.empty((), dtype=tdtype).element_size()
        return Built(step=step, sync=self.sync(device), n_params=n, n_tensors=arrays,
                     bytes_per_call=3.0 * itemsize * n * written, close=bufs.clear)

    def bare_loop(self, built: Built, n: int) -> list[float]:
        """`optimizer.step()` alone, the gradients assigned once before the loop."""
        driver, pc, out = built.native, time.perf_counter, []
        built.step()                              # assigns the gradients and the lr
        opt = driver.optimizer
        sync = self.module.cuda.synchronize if built.sync is self.module.cuda.synchronize else None
        for _ in range(n):
            t0 = pc()
            opt.step()
            if sync is not None:
                sync()
            out.append(pc() - t0)
        return out
