"""Inside one rank: the golden's tensors under ZeRO, FSDP2 or DDP, fed the golden gradient, stepped, and
gathered back whole (every rank takes part in each collective; rank 0 keeps the result).

Each wrapper is a `Sharded` with `feed(grads)` (the golden gradient on every rank, reduced the way the
wrapper reduces it), `optimizer`, `pieces()` (what this rank holds of the parameters and state, for
gather.gather) and `layout` (tensor -> [(rank, start, stop)] of the dim-0 rows each rank updates).
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
import torch
import torch.distributed as dist

from optconform.adapters.torch.driver import STATE_NAMES

from .gather import KINDS

OPTIMIZER_CLASSES = {"AdamW": torch.optim.AdamW, "Adam": torch.optim.Adam}


def param_groups(names: Sequence[str], params: Sequence[Any], exclude: Sequence[str]) -> list[dict[str, Any]]:
    """The decayed tensors in one group, those an `exclude` pattern finds (re.search) in a group with
    weight_decay=0 (a group is left out when empty)."""
    patterns = [re.compile(p) for p in exclude]
    decay = [p for n, p in zip(names, params) if not any(pat.search(n) for pat in patterns)]
    no_decay = [p for n, p in zip(names, params) if any(pat.search(n) for pat in patterns)]
    return [{"params": decay}] * bool(decay) + [{"params": no_decay, "weight_decay": 0.0}] * bool(no_decay)


def dim0_chunks(rows: int, world: int) -> list[tuple[int, int, int]]:
    """FSDP2's Shard(0) layout: torch.chunk into `world` pieces of ceil(rows/world) rows (the last ones
    short or empty, padded to the chunk size in FSDP2's flat buffer): [(rank, start, stop)]."""
    size = -(-rows // world) if rows else 0
    return [(r, min(r * size, rows), min((r + 1) * size, rows)) for r in range(world)]


class _Holder(torch.nn.Module):
    """The golden's tensors as a module whose forward is sum_i sum(p_i * c_i): backward gives grad c_i."""

    def __init__(self, params: Sequence[torch.Tensor]):
        super().__init__()
        self.ps = torch.nn.ParameterList([torch.nn.Parameter(p) for p in params])

    def forward(self, consts: Sequence[torch.Tensor]) -> torch.Tensor:
        return sum((p * c).sum() for p, c in zip(self.ps, consts))


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor, a plain tensor as it is."""
    return t.to_local() if hasattr(t, "to_local") else t


class Sharded:
    """Common part: the torch optimizer over `self.params` with param groups, lr set per step."""

    def __init__(self, names, params0, dtype, optimizer: str, kwargs, lr0: float, exclude):
        self.names, self.shapes = list(names), [np.shape(p) for p in params0]
        self.dtype, self.rank, self.world = dtype, dist.get_rank(), dist.get_world_size()
        self.cls = OPTIMIZER_CLASSES[optimizer]

    def tensor(self, array) -> torch.Tensor:
        return torch.tensor(np.asarray(array), dtype=self.dtype)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def clip(self, max_norm: float) -> None:
        """torch.nn.utils.clip_grad_norm_ over every (non-empty) parameter: under FSDP2 the norm of the
        DTensor gradients, i.e. of the whole sharded gradient."""
        torch.nn.utils.clip_grad_norm_([p for p in self.clipped() if p.numel()], max_norm)

    def clipped(self) -> list[torch.Tensor]:
        return list(self.params)

    def _state_pieces(self, owned, replicated: bool) -> list:
        """The state of the tensors in `owned` ({index: parameter}) under spec names (local shards)."""
        out = []
        for i, p in owned.items():
            for key, value in sorted(self.optimizer_state(p).items()):
                if STATE_NAMES.get(key) in KINDS and torch.is_tensor(value):
                    out.append((STATE_NAMES[key], i, _local(value), replicated))
        return out

    def optimizer_state(self, p) -> dict:
        return self.optimizer.state.get(p, {})


class ZeRO(Sharded):
    """ZeroRedundancyOptimizer(params, optimizer_class=cls): whole tensors partitioned among ranks."""

    def __init__(self, names, params0, dtype, optimizer, kwargs, lr0, exclude):
        super().__init__(names, params0, dtype, optimizer, kwargs, lr0, exclude)
        from torch.distributed.optim import ZeroRedundancyOptimizer
        self.params = [self.tensor(p).requires_grad_(True) for p in params0]
        self.optimizer = ZeroRedundancyOptimizer(param_groups(self.names, self.params, exclude),
                                                 optimizer_class=self.cls, lr=lr0, **kwargs)
        owner = self.optimizer._param_to_rank            # private: the partition ZeRO computed
        self.layout = {n: [(owner[p], 0, p.shape[0] if p.dim() else 1)] for n, p in zip(self.names, self.params)}
        self.owned = {i: p for i, p in enumerate(self.params) if owner[p] == self.rank}

    def feed(self, grads) -> None:
        for p, g in zip(self.params, grads):
            p.grad = self.tensor(g)

    def optimizer_state(self, p) -> dict:
        return self.optimizer.optim.state.get(p, {})     # the local optimizer over this rank's partition

    def pieces(self) -> list:
        """Every rank's copy of the broadcast parameters (they must agree), the owner's state."""
        return [("param", i, p, True) for i, p in enumerate(self.params)] + self._state_pieces(self.owned, False)


class FSDP2(Sharded):
    """fully_shard on a module of the tensors. fully_shard refuses 0-d parameters ("Change ... to a 1D
    tensor with numel equal to 1", torch/distributed/fsdp/_fully_shard/_fsdp_init.py): they are held as
    (1,); it fails on size-0 ones (`_chunk_cat expects non-empty tensor`): they stay plain tensors in
    the optimizer, outside the module (they have no elements to update)."""

    def __init__(self, names, params0, dtype, optimizer, kwargs, lr0, exclude):
        super().__init__(names, params0, dtype, optimizer, kwargs, lr0, exclude)
        from torch.distributed.fsdp import fully_shard
        tensors = [self.tensor(p).reshape(-1) if np.ndim(p) == 0 else self.tensor(p) for p in params0]
        self.sharded = [i for i, t in enumerate(tensors) if t.numel()]
        self.module = _Holder([tensors[i] for i in self.sharded])
        fully_shard(self.module)
        held = dict(zip(self.sharded, self.module.ps))
        self.params = [held.get(i, t.requires_grad_(True)) for i, t in enumerate(tensors)]
        dtensors = {id(p) for p in self.module.ps}
        groups = []
        for group in param_groups(self.names, self.params, exclude):  # DTensors and plain tensors apart
            options = {k: v for k, v in group.items() if k != "params"}
            for sharded in (True, False):
                members = [p for p in group["params"] if (id(p) in dtensors) == sharded]
                groups += [{"params": members, **options}] * bool(members)
        self.optimizer = self.cls(groups, lr=lr0, **kwargs)
        self.layout = {n: dim0_chunks(int(s[0]) if len(s) else 1, self.world) for n, s in zip(self.names, self.shapes)}

    def feed(self, grads) -> None:
        loss = self.module([self.tensor(grads[i]).reshape(self.params[i].shape) for i in self.sharded])
        loss.backward()                                  # reduce-scatter average over ranks: g
        for i, p in enumerate(self.params):
            if i not in self.sharded:
                p.grad = self.tensor(grads[i])

    def clipped(self):
        return [self.params[i] for i in self.sharded]

    def pieces(self) -> list:
        """Each rank's dim-0 shard of the DTensors (parameters and state), the size-0 tensors whole."""
        dtensor = set(self.sharded)
        return ([("param", i, _local(p), i not in dtensor) for i, p in enumerate(self.params)]
                + self._state_pieces(dict(enumerate(self.params)), False))


class DDP(Sharded):
    """DistributedDataParallel: one replicated optimizer per rank; gradients all-reduce averaged."""

    def __init__(self, names, params0, dtype, optimizer, kwargs, lr0, exclude):
        super().__init__(names, params0, dtype, optimizer, kwargs, lr0, exclude)
        from torch.nn.parallel import DistributedDataParallel
        self.module = _Holder([self.tensor(p) for p in params0])
        self.ddp = DistributedDataParallel(self.module)
        self.params = list(self.module.ps)
        self.optimizer = self.cls(param_groups(self.names, self.params, exclude), lr=lr0, **kwargs)
        self.layout = {n: [(r, 0, int(s[0]) if len(s) else 1) for r in range(self.world)]
                       for n, s in zip(self.names, self.shapes)}

    def feed(self, grads) -> None:
        self.ddp([self.tensor(g) for g in grads]).backward()     # all-reduce average over ranks: g

    def pieces(self) -> list:
        """Every rank's replica of the parameters and state (gather.gather raises if one differs)."""
        return ([("param", i, p, True) for i, p in enumerate(self.params)]
                + self._state_pieces(dict(enumerate(self.params)), True))


WRAPPERS = {"ZeRO": ZeRO, "FSDP2": FSDP2, "DDP": DDP}
