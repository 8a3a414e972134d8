"""The torch-distributed adapter: each world size's cases run as one batch of worker processes (one
launch runs every case of that world size on every golden it can express and every dtype, so the
processes start twice per run, not once per step or golden); `run` then serves each (case, golden,
dtype) from the batch's results.

What a case is fed is what the single-process torch cases are fed (optconform.plan.run_input of the
same golden): the same initial tensors, gradients and lr per step; each rank feeds the golden gradient
and the wrapper's reduction (FSDP2's reduce-scatter average, DDP's all-reduce average) hands the
optimizer g. Per step, parameters and state are gathered whole to rank 0.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from optconform.adapters.base import Adapter, NativeRun, RunInput

from . import cases as _cases
from .cases import ClipGradNorm, DistributedCase, ParamGroups
from .launch import launch

#: hard deadline of one batch (every case of one world size; ~15 s measured on an idle 2-core machine, the
#: deadline leaves room for a machine running other lanes beside it)
BATCH_TIMEOUT_S = 600


def digest(inp: RunInput) -> str:
    """A key of everything a run is fed (tensors, gradients, lr, hyper-parameters)."""
    h = hashlib.sha256(json.dumps([list(inp.tensors), list(inp.lr), list(inp.eta), dict(inp.hp)],
                                  sort_keys=True, default=str).encode())
    for arrays in (inp.params0, *inp.grads):
        for name in inp.tensors:
            a = np.ascontiguousarray(arrays[name], dtype=np.float64)
            h.update(str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def run_spec(case: DistributedCase, inp: RunInput, dtype: str) -> dict[str, Any]:
    """One run of the batch as job.json lists it."""
    hooks = case.hooked(inp.hp)
    return {"case": case.id, "wrapper": case.wrapper, "optimizer": case.optimizer, "dtype": dtype,
            "kwargs": case.native_kwargs(inp.hp), "tensors": list(inp.tensors), "lr": list(inp.lr),
            "exclude": list(hooks.get(ParamGroups()) or []), "clip": hooks.get(ClipGradNorm())}


def locate(layout: Mapping[str, Any], tensor: str, index) -> str:
    """'rank r, shard rows [a, b)' of element `index` of `tensor` (its dim-0 row decides the shard)."""
    row = int(index[0]) if len(index) else 0
    owners = [f"rank {r} (shard rows [{a}, {b}))" for r, a, b in layout.get(tensor, []) if a <= row < b]
    return ", ".join(owners) or "no rank"


class TorchDistributedAdapter(Adapter):
    name = _cases.FRAMEWORK
    rows_in_workers = False        # one launch per world size runs every row: worker processes would repeat it

    def __init__(self) -> None:
        super().__init__()
        self._results: dict[tuple[str, str, str], NativeRun] = {}
        self._errors: dict[tuple[str, str, str], str] = {}
        self.layouts: dict[tuple[str, str, str], dict] = {}
        self._launched: set[int] = set()

    def _import(self):
        import torch
        import torch.distributed as dist
        if not dist.is_available() or not dist.is_gloo_available():
            raise ImportError("torch.distributed with the gloo backend is not available in this torch build")
        from torch.distributed.fsdp import fully_shard  # noqa: F401  (FSDP2: torch >= 2.6)
        from torch.distributed.optim import ZeroRedundancyOptimizer  # noqa: F401
        return torch

    def cases(self) -> list[DistributedCase]:
        return _cases.cases()

    def unsupported(self, case, device: str) -> str:
        """The wrapper's and optimizer's keywords are checked on torch.optim.<optimizer> (the wrappers
        forward them)."""
        from optconform import natives
        return natives.unsupported(f"torch.optim.{case.optimizer}", list(case.kwargs))

    def locate(self, case, inp: RunInput, golden: str, dtype: str, tensor: str, index) -> str:
        """'rank r (shard rows [a, b)), ...; repro: python -m ...repro CASE GOLDEN DTYPE' for an element."""
        layout = self.layouts.get((case.id, dtype, digest(inp)), {})
        return (f"held by {locate(layout, tensor, index)}; repro: python -m optconform.adapters.torch_distributed.repro "
                f"'{case.id}' {golden} {dtype}")

    def trajectory(self, case: DistributedCase, inp: RunInput, device: str, dtype: str) -> NativeRun:
        """The run's result; the first run of a world size launches every row of that world size (one
        launch for the matrix), a run that launch did not make (another golden or hyper-parameters)
        launches alone."""
        key = (case.id, dtype, digest(inp))
        if key not in self._results and key not in self._errors and case.world_size not in self._launched:
            self._launched.add(case.world_size)
            self._batch(case.world_size, self._matrix(case.world_size))
        if key not in self._results and key not in self._errors:
            self._batch(case.world_size, [(case, inp, dtype)])
        if key in self._errors:
            raise RuntimeError(f"{case.id} {dtype}: {self._errors[key]}")
        return self._results[key]

    def prefetch(self, runs: Sequence[tuple[DistributedCase, RunInput, str]]) -> None:
        """Launch just these (case, input, dtype) runs, one launch per world size, for `trajectory` to
        serve (a test that needs a few runs need not launch every row of their world sizes)."""
        by_world: dict[int, list] = {}
        for run in runs:
            by_world.setdefault(run[0].world_size, []).append(run)
        for world_size, batch in by_world.items():
            self._batch(world_size, batch)

    def _matrix(self, world_size: int) -> list[tuple[DistributedCase, RunInput, str]]:
        """Every row of `world_size`: each supported case on each of its goldens and dtypes."""
        from optconform import plan
        return [(c, plan.run_input(c, g, self.supports_eta), dtype) for c in self.cases()
                if c.world_size == world_size and not self.unsupported(c, "cpu")
                for g in plan.goldens_for(c, self.supports_eta) for dtype in c.dtypes]

    def _batch(self, world_size: int, runs: list) -> None:
        """Launch one batch of `world_size` processes computing `runs`; their results (or errors) are kept."""
        with tempfile.TemporaryDirectory(prefix="optconform-dist-") as tmp:
            job = Path(tmp)
            arrays = {}
            for i, (_, inp, _) in enumerate(runs):
                for j, name in enumerate(inp.tensors):
                    arrays[f"r{i}.p{j}"] = np.asarray(inp.params0[name], dtype=np.float64)
                    for t, grads in enumerate(inp.grads):
                        arrays[f"r{i}.g{t}.{j}"] = np.asarray(grads[name], dtype=np.float64)
            np.savez(job / "inputs.npz", **arrays)
            (job / "job.json").write_text(json.dumps({"runs": [run_spec(c, inp, d) for c, inp, d in runs]}), "utf-8")
            keys = [(c.id, d, digest(inp)) for c, inp, d in runs]
            try:
                launch(job, world_size, BATCH_TIMEOUT_S)
            except Exception as exc:
                self._errors.update({k: str(exc) for k in keys})
                return
            self._collect(job, runs, keys)

    def _collect(self, job: Path, runs: list, keys: list) -> None:
        report = json.loads((job / "out.json").read_text("utf-8"))
        with np.load(job / "out.npz", allow_pickle=False) as out:
            for i, ((_, inp, _), key) in enumerate(zip(runs, keys)):
                entry = report.get(f"r{i}", {"error": "no result"})
                if "error" in entry:
                    self._errors[key] = entry["error"]
                    continue
                self.layouts[key] = {n: [tuple(x) for x in v] for n, v in entry["layout"].items()}
                params = {n: out[f"r{i}.p{j}"] for j, n in enumerate(inp.tensors)}
                state: dict[str, dict[str, np.ndarray]] = {}
                for name in out.files:
                    if name.startswith(f"r{i}.s."):
                        spec, j = name[len(f"r{i}.s."):].rsplit(".", 1)
                        after = out[name]
                        state.setdefault(spec, {})[inp.tensors[int(j)]] = np.concatenate(
                            [np.full_like(after[:1], np.nan), after])      # no state before the first step
                self._results[key] = NativeRun(params=params, state=state)
