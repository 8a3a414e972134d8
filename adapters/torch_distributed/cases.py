"""torch.distributed cases: AdamW and Adam(weight_decay) of torch.optim under the three ways torch shards
or replicates an optimizer across processes, each on 2 and 3 gloo processes on CPU (3 makes every
even-sized tensor of the corpus an uneven shard, 2 every odd-sized one):

- ``ZeRO``: `torch.distributed.optim.ZeroRedundancyOptimizer(params, optimizer_class=<cls>)`: whole
  parameters partitioned among ranks (each rank steps its partition, then broadcasts it;
  torch/distributed/optim/zero_redundancy_optimizer.py at v2.13.0). Every rank holds the golden
  gradient, as it would after DDP's all-reduce.
- ``FSDP2``: `torch.distributed.fsdp.fully_shard` on a module holding the golden's tensors: parameters
  and optimizer state are DTensors sharded on dim 0 (padded chunks); the gradient reaches the shard
  by backward of sum(p * g) on every rank and FSDP2's reduce-scatter *average*, which is g.
- ``DDP``: `torch.nn.parallel.DistributedDataParallel`, a replicated optimizer per rank; every rank
  feeds g (backward of sum(p * g)) and DDP's all-reduce average hands each rank sum_r(g)/W = g
  (exact in float64 and for W = 2; within one float32 ulp of g for W = 3).

The implementations are the ones torch.optim offers for the class (for-loop, foreach, fused; fused
runs on DTensor shards). Exclusion (`weight_decay_exclude`) is a torch param group with weight_decay=0,
as fine-tuning scripts build it; the global-norm clip (`clip_global_norm`) is
`torch.nn.utils.clip_grad_norm_` over every parameter before the step (on DTensor gradients under FSDP2:
the norm of the whole sharded gradient).
"""
from __future__ import annotations

from dataclasses import dataclass

from optconform.adapters.base import Arg, Case, Hook

FRAMEWORK = "torch-distributed"
WRAPPERS = {"ZeRO": "torch.distributed.optim.ZeroRedundancyOptimizer",
            "FSDP2": "torch.distributed.fsdp.fully_shard",
            "DDP": "torch.nn.parallel.DistributedDataParallel"}
#: (wrapper, optimizer, implementation) -> world sizes: 2 and 3 processes wherever the layout differs
#: (uneven shards: 3 splits every even-sized tensor of the corpus unevenly, 2 every odd-sized one);
#: ZeRO's local optimizer is a plain torch.optim one over whole tensors, FSDP2's runs on DTensor shards
#: (fused included), DDP's is replicated (its all-reduce average at W = 3 is the one that divides by 3).
MATRIX = {
    ("ZeRO", "AdamW", "forloop"): (2, 3), ("ZeRO", "AdamW", "foreach"): (2, 3),
    ("ZeRO", "Adam(weight_decay)", "foreach"): (2, 3),
    ("FSDP2", "AdamW", "foreach"): (2, 3), ("FSDP2", "AdamW", "fused"): (2, 3),
    ("FSDP2", "Adam(weight_decay)", "foreach"): (2, 3), ("FSDP2", "Adam(weight_decay)", "fused"): (2, 3),
    ("DDP", "AdamW", "foreach"): (2, 3), ("DDP", "Adam(weight_decay)", "foreach"): (2,),
}
#: optimizer -> spec rule
OPTIMIZERS = {"AdamW": "adamw", "Adam(weight_decay)": "adam_l2"}
VARIANTS = {"forloop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


@dataclass(frozen=True)
class ParamGroups(Hook):
    """`weight_decay_exclude`: tensors whose name one of the patterns finds (re.search) go into a torch
    param group with weight_decay=0, the way fine-tuning scripts exclude biases."""


@dataclass(frozen=True)
class ClipGradNorm(Hook):
    """`clip_global_norm`: `torch.nn.utils.clip_grad_norm_(params, c)` on every rank before the step."""


_HP = {"lr": "lr", "beta1": Arg("betas", 0), "beta2": Arg("betas", 1), "eps": "eps",
       "weight_decay": "weight_decay", "weight_decay_exclude": ParamGroups(), "clip_global_norm": ClipGradNorm()}


@dataclass(frozen=True)
class DistributedCase(Case):
    """A torch.optim optimizer (`optimizer`, a torch.optim class name) under `wrapper` on `world_size`
    gloo processes."""
    wrapper: str = "ZeRO"
    optimizer: str = "AdamW"
    world_size: int = 2


def _case(wrapper: str, label: str, implementation: str, world_size: int) -> DistributedCase:
    return DistributedCase(
        framework=FRAMEWORK, name=f"{wrapper}({label},world={world_size})", native=WRAPPERS[wrapper], rule=OPTIMIZERS[label],
        variant=implementation, kwargs=dict(VARIANTS[implementation]), hp_map=_HP,
        dtypes=("float64",), devices=("cpu",), wrapper=wrapper, optimizer=label.split("(")[0],
        world_size=world_size)


def cases() -> list[DistributedCase]:
    return [_case(wrapper, label, implementation, world_size)
            for (wrapper, label, implementation), world_sizes in MATRIX.items() for world_size in world_sizes]
