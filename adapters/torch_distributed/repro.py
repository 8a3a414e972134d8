"""A self-contained native repro of one distributed case on one golden: a Python script (torch only) that
launches its own gloo processes (torch.multiprocessing.spawn, MASTER_ADDR=127.0.0.1, a free port), builds
the wrapper (ZeRO, FSDP2 or DDP) on the golden's tensors, feeds the golden's gradients and lr per step,
and prints rank 0's gathered parameters after every step, next to the float64 reference.

    python -m optconform.adapters.torch_distributed.repro 'torch-distributed-FSDP2(AdamW,world=3)[fused]' \\
        adamw__sharded_exclusion float64 > repro.py && python repro.py
"""
from __future__ import annotations

import sys

import numpy as np

from optconform import compare, plan

from . import ADAPTER
from .driver import run_spec

_BODY = '''
import os, re, socket
import torch, torch.distributed as dist
import torch.multiprocessing as mp

def groups(params):
    pats = [re.compile(p) for p in SPEC["exclude"]]
    out = [{"params": [p for n, p in zip(SPEC["tensors"], params) if not any(q.search(n) for q in pats)]},
           {"params": [p for n, p in zip(SPEC["tensors"], params) if any(q.search(n) for q in pats)], "weight_decay": 0.0}]
    return [g for g in out if g["params"]]

class Holder(torch.nn.Module):
    def __init__(self, tensors):
        super().__init__()
        self.ps = torch.nn.ParameterList([torch.nn.Parameter(t) for t in tensors])
    def forward(self, consts):
        return sum((p * c).sum() for p, c in zip(self.ps, consts))

def main(rank, world, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    dtype = getattr(torch, SPEC["dtype"])
    cls = getattr(torch.optim, SPEC["optimizer"])
    kwargs = {k: tuple(v) if k == "betas" else v for k, v in SPEC["kwargs"].items()}
    shapes = [torch.tensor(p).shape for p in PARAMS0]
    if SPEC["wrapper"] == "ZeRO":
        from torch.distributed.optim import ZeroRedundancyOptimizer
        params = [torch.tensor(p, dtype=dtype, requires_grad=True) for p in PARAMS0]
        opt = ZeroRedundancyOptimizer(groups(params), optimizer_class=cls, lr=SPEC["lr"][0], **kwargs)
        def feed(grads):
            for p, g in zip(params, grads):
                p.grad = torch.tensor(g, dtype=dtype)
    else:   # FSDP2 (0-d tensors held as (1,); this script does not handle size-0 tensors) or DDP
        module = Holder([torch.tensor(p, dtype=dtype).reshape(s if len(s) or SPEC["wrapper"] == "DDP" else (1,))
                         for p, s in zip(PARAMS0, shapes)])
        if SPEC["wrapper"] == "FSDP2":
            from torch.distributed.fsdp import fully_shard
            fully_shard(module)
            run = module
        else:
            run = torch.nn.parallel.DistributedDataParallel(module)
        params = list(module.ps)
        opt = cls(groups(params), lr=SPEC["lr"][0], **kwargs)
        def feed(grads):
            run([torch.tensor(g, dtype=dtype).reshape(p.shape) for g, p in zip(grads, params)]).backward()
    for t, (grads, lr) in enumerate(zip(GRADS, SPEC["lr"])):
        opt.zero_grad(set_to_none=True)
        feed(grads)
        if SPEC["clip"] is not None:
            torch.nn.utils.clip_grad_norm_(params, SPEC["clip"])
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        full = [(p.full_tensor() if hasattr(p, "full_tensor") else p).detach().reshape(s) for p, s in zip(params, shapes)]
        if rank == 0:
            for n, p, e in zip(SPEC["tensors"], full, EXPECTED[t + 1]):
                print(f"step {t + 1} {n}: native {p.tolist()} expected {e}")
    dist.destroy_process_group()

if __name__ == "__main__":
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(main, args=(SPEC["world_size"], port), nprocs=SPEC["world_size"], join=True)
'''


def script(case_id: str, golden_name: str, dtype: str) -> str:
    """The repro script's text."""
    case = next(c for c in ADAPTER.cases() if c.id == case_id)
    golden = next((g for g in plan.all_goldens() if g.name == golden_name), None)
    if golden is None:
        raise KeyError(f"no golden named {golden_name!r}")
    inp = plan.run_input(case, golden, ADAPTER.supports_eta)
    spec = {**run_spec(case, inp, dtype), "world_size": case.world_size}
    expect = compare.expected(case.rule, golden, None)
    names = list(inp.tensors)
    lines = [f"# optconform repro: {case_id} on golden {golden_name} ({dtype}); expected = the float64 reference "
             f"of rule {case.rule!r}",
             f"SPEC = {spec!r}",
             f"PARAMS0 = {[np.asarray(inp.params0[n], dtype=np.float64).tolist() for n in names]!r}",
             f"GRADS = {[[np.asarray(g[n], dtype=np.float64).tolist() for n in names] for g in inp.grads]!r}",
             f"EXPECTED = {[[np.asarray(expect[n][t]).tolist() for n in names] for t in range(inp.steps + 1)]!r}"]
    return "\n".join(lines) + "\n" + _BODY


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m optconform.adapters.torch_distributed.repro CASE_ID GOLDEN DTYPE", file=sys.stderr)
        return 2
    ids = [c.id for c in ADAPTER.cases()]
    if argv[0] not in ids:
        print(f"unknown case {argv[0]!r}; known: {', '.join(ids)}", file=sys.stderr)
        return 2
    try:
        text = script(*argv)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        print(f"cannot build the repro: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
