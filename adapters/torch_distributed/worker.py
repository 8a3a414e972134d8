"""One rank of a distributed batch: `python -m optconform.adapters.torch_distributed.worker JOB_DIR`,
started by launch.py with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set.

JOB_DIR/job.json lists the runs (wrapper, optimizer, keywords, dtype, tensor names, lr per step, the
exclusion patterns and the clip threshold); JOB_DIR/inputs.npz holds their arrays ("r{run}.p{i}" initial
tensor i, "r{run}.g{t}.{i}" its gradient at step t). Per step every rank joins the gathers; rank 0 writes
JOB_DIR/out.npz ("r{run}.p{i}": (T+1, *shape) parameters, "r{run}.s.{state}.{i}": (T, *shape) state
after each step) and JOB_DIR/out.json (per run: the layout, and the error of a run that raised, with the
rank(s) it raised on). A run that raises on one rank is failed on all (the ranks agree through an
all-reduce of a flag after each run), so the batch goes on with the next run.
"""
from __future__ import annotations

import datetime
import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np

#: a collective that waits longer than this raises (a rank that diverged; a rank that died is seen by the
#: launcher at once). Generous: a 2-core machine may run another lane beside the batch.
COLLECTIVE_TIMEOUT_S = 120


def _run(spec: dict, arrays, key: str, out: dict) -> dict:
    import torch
    from .gather import gather
    from .wrappers import WRAPPERS
    n, steps = len(spec["tensors"]), len(spec["lr"])
    kwargs = {k: tuple(v) if k == "betas" else v for k, v in spec["kwargs"].items()}
    params0 = [arrays[f"{key}.p{i}"] for i in range(n)]
    shapes = [np.shape(p) for p in params0]
    sharded = WRAPPERS[spec["wrapper"]](spec["tensors"], params0, getattr(torch, spec["dtype"]), spec["optimizer"],
                                        kwargs, spec["lr"][0], spec["exclude"])
    first = gather(sharded.pieces(), spec["tensors"], shapes)
    params = [[p] for p in first[0]] if first else []
    states: list[dict] = []
    for t in range(steps):
        sharded.optimizer.zero_grad(set_to_none=True)
        sharded.feed([arrays[f"{key}.g{t}.{i}"] for i in range(n)])
        if spec["clip"] is not None:
            sharded.clip(spec["clip"])
        sharded.set_lr(spec["lr"][t])
        sharded.optimizer.step()
        gathered = gather(sharded.pieces(), spec["tensors"], shapes)
        if gathered is not None:                         # rank 0
            for i, p in enumerate(gathered[0]):
                params[i].append(p)
            states.append(gathered[1])
    for i in range(len(params)):
        out[f"{key}.p{i}"] = np.stack(params[i])
    for state in states[0] if states else {}:
        for i, name in enumerate(spec["tensors"]):
            if all(state in s and name in s[state] for s in states):
                out[f"{key}.s.{state}.{i}"] = np.stack([s[state][name] for s in states])
    return {"layout": sharded.layout}


def main(job_dir: str) -> int:
    import torch.distributed as dist
    import torch
    torch.set_num_threads(1)
    job = Path(job_dir)
    spec = json.loads((job / "job.json").read_text("utf-8"))
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    rank, world = dist.get_rank(), dist.get_world_size()
    out: dict[str, np.ndarray] = {}
    report: dict[str, dict] = {}
    with np.load(job / "inputs.npz", allow_pickle=False) as arrays:
        for index, run in enumerate(spec["runs"]):
            key = f"r{index}"
            try:
                report[key] = _run(run, arrays, key, out)
                error = ""
            except Exception as exc:     # this run fails, the batch goes on
                error = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            failed = torch.tensor([1 << rank if error else 0], dtype=torch.int64)
            dist.all_reduce(failed)
            if failed.item():
                ranks = [r for r in range(world) if failed.item() >> r & 1]
                report[key] = {"error": f"raised on rank(s) {ranks}" + (f" (rank {rank}: {error})" if error else "")}
                for name in [k for k in out if k.startswith(key + ".")]:
                    del out[name]
    if rank == 0:
        np.savez(job / "out.npz", **out)
        (job / "out.json").write_text(json.dumps(report), "utf-8")
    elif any("error" in r for r in report.values()):
        (job / f"errors{rank}.json").write_text(json.dumps({k: r["error"] for k, r in report.items()
                                                            if "error" in r}), "utf-8")
    dist.destroy_process_group()
    return 0


def _exit_now(status: int) -> None:
    """Leave without the interpreter's teardown: on a loaded machine a rank sometimes aborted *after* its
    batch was done and the process group destroyed ("terminate called without an active exception",
    SIGABRT, no Python frame: torch's C++ teardown at exit met a thread still joinable), 1 launch in 12
    beside a busy lane (README "Speed"). Every output is a closed file by now."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    _exit_now(main(sys.argv[1]))
