"""Gather every rank's pieces of the parameters and optimizer state to rank 0 in one collective per
step (a few ms on gloo where a gather per tensor and state costs tens).

A piece is (kind, tensor index, local values, replicated): kind "param" or a spec state name; a
replicated piece is the whole tensor, held by every rank that sends it (DDP replicas, ZeRO's broadcast
parameters; every copy must be equal, else the gather raises naming the rank); a sharded piece is the
rank's dim-0 rows (FSDP2 shards, in rank order; ZeRO's state, from the owning rank alone).

Wire format: each rank's float64 buffer is [n, (kind id, tensor, replicated, length) * n, values...],
all-gathered after padding to the longest.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist

KINDS = ("param", "m", "v", "v_max")


def _pack(pieces) -> torch.Tensor:
    header = [float(len(pieces))]
    values = []
    for kind, index, value, replicated in pieces:
        flat = value.detach().reshape(-1).to(torch.float64)
        header += [float(KINDS.index(kind)), float(index), float(replicated), float(flat.numel())]
        values.append(flat)
    return torch.cat([torch.tensor(header, dtype=torch.float64), *values])


def _unpack(buffer: np.ndarray):
    n = int(buffer[0])
    offset = 1 + 4 * n
    for k in range(n):
        kind, index, replicated, length = (int(x) for x in buffer[1 + 4 * k: 5 + 4 * k])
        yield KINDS[kind], index, bool(replicated), buffer[offset: offset + length]
        offset += length


def gather(pieces, names: Sequence[str], shapes: Sequence[tuple]) -> tuple[list, dict] | None:
    """On rank 0: (parameters in tensor order, {state: {tensor name: value}}); None on the other ranks."""
    rank, world = dist.get_rank(), dist.get_world_size()
    local = _pack(pieces)
    length = torch.tensor([local.numel()], dtype=torch.int64)
    lengths = [torch.zeros_like(length) for _ in range(world)]
    dist.all_gather(lengths, length)
    longest = max(int(x) for x in lengths)
    buffers = [torch.zeros(longest, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(buffers, torch.nn.functional.pad(local, (0, longest - local.numel())))
    if rank != 0:
        return None
    whole: dict[tuple[str, int], np.ndarray] = {}
    rows: dict[tuple[str, int], list] = {}
    for r, buffer in enumerate(buffers):
        for kind, index, replicated, values in _unpack(buffer[: int(lengths[r])].numpy()):
            key = (kind, index)
            if not replicated:
                rows.setdefault(key, []).append(values)
            elif key not in whole:
                whole[key] = values
            elif not np.array_equal(values, whole[key], equal_nan=True):
                raise RuntimeError(f"replicas differ: rank {r} holds another {kind} of {names[index]!r} than the "
                                   f"first rank that sent it")
    whole.update({key: np.concatenate(parts) for key, parts in rows.items()})
    params = [whole[("param", i)].reshape(shape) for i, shape in enumerate(shapes)]
    state: dict[str, dict[str, np.ndarray]] = {}
    for (kind, index), values in sorted(whole.items()):
        if kind != "param":
            state.setdefault(kind, {})[names[index]] = values.reshape(shapes[index])
    return params, state
