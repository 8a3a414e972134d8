"""Driver of the torch BERT ports: the torch driver (optconform.adapters.torch.driver.TorchDriver) on
param groups built from `weight_decay_exclude`, with BertAdam's schedule hook where the case maps eta.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import re
import warnings
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from optconform.adapters.base import Adapter, Case, RunInput
from optconform.adapters.torch.driver import TorchDriver

from . import cases as _cases
from .cases import EtaSchedule, ParamGroups


def param_groups(names: Sequence[str], params: Sequence[Any], exclude: Sequence[str]) -> list[dict[str, Any]]:
    """torch param groups as BERT fine-tuning scripts build them: tensors whose name one of the
    `exclude` patterns finds (re.search, the spec's semantics; the scripts' substring test is the same
    for the literal patterns BERT uses) get weight_decay=0, the rest the case's weight_decay."""
    patterns = [re.compile(p) for p in exclude]
    decay, no_decay = [], []
    for name, p in zip(names, params):
        (no_decay if any(pat.search(name) for pat in patterns) else decay).append(p)
    groups = [{"params": decay}] if decay else []
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def _eta_schedule(eta: Sequence[float]):
    """BertAdam's `_LRSchedule` hook returning the scenario's eta_t (step = updates so far)."""
    from pytorch_pretrained_bert.optimization import _LRSchedule

    class ScenarioEta(_LRSchedule):
        """The scenario's eta_t as BertAdam's schedule multiplier (step = updates so far)."""
        def get_lr(self, step, nowarn=False):
            return float(eta[step])

        def get_lr_(self, progress):      # abstract in _LRSchedule; never used
            raise NotImplementedError
    return ScenarioEta(warmup=0.0, t_total=len(eta))


def _bertadam(groups: list, lr: float, kwargs: dict[str, Any]):
    from pytorch_pretrained_bert.optimization import BertAdam
    return BertAdam(groups, lr=lr, **kwargs)


def _transformers_adamw(groups: list, lr: float, kwargs: dict[str, Any]):
    from transformers import AdamW
    return AdamW(groups, lr=lr, **kwargs)


def _transformers_adafactor(groups: list, lr: float, kwargs: dict[str, Any]):
    from transformers.optimization import Adafactor
    return Adafactor(groups, lr=lr, **kwargs)


#: Case.native -> constructor(param groups, lr_0, native keyword arguments)
OPTIMIZERS: Mapping[str, Callable[[list, float, dict[str, Any]], Any]] = {
    "pytorch_pretrained_bert.optimization.BertAdam": _bertadam, "transformers.AdamW": _transformers_adamw,
    "transformers.optimization.Adafactor": _transformers_adafactor}


class BertDriver(TorchDriver):
    """`<native>(param_groups, lr=lr_0, **kwargs)`; lr set per step through `param_groups` as the torch
    driver does, with eta folded in unless the case feeds it through BertAdam's schedule hook."""

    def __init__(self, torch, case: Case, inp: RunInput, device: str, dtype: str):
        self.torch, self.device, self.dtype = torch, device, getattr(torch, dtype)
        self.names = inp.tensors
        self.tensors = [torch.tensor(np.asarray(inp.params0[n]), dtype=self.dtype, device=device).requires_grad_(True)
                        for n in inp.tensors]
        groups = param_groups(self.names, self.tensors, case.hooked(inp.hp).get(ParamGroups()) or ())
        kwargs = case.native_kwargs(inp.hp)
        self.native_eta = isinstance(case.hp_map.get("eta"), EtaSchedule)
        if self.native_eta:
            kwargs["schedule"] = _eta_schedule(inp.eta)
        self.optimizer = OPTIMIZERS[case.native](groups, inp.lr[0], kwargs)

    def step(self, grads: list, lr_t: float, eta_t: float) -> None:
        super().step(grads, lr_t if self.native_eta else float(lr_t * eta_t), eta_t)


class BertTorchAdapter(Adapter):
    name = "bert"
    supports_eta = True            # BertAdam's schedule multiplier is eta; the other cases fold it into lr

    def _import(self):
        import torch
        import transformers
        # BertAdam logs "t_total value of -1 results in schedule not being applied" for every optimizer
        logging.getLogger("pytorch_pretrained_bert.optimization").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pytorch_pretrained_bert
            importlib.import_module("pytorch_pretrained_bert.optimization")
        if not hasattr(transformers, "AdamW"):
            raise ImportError(f"transformers {transformers.__version__} has no AdamW (removed in 4.50)")
        self._versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                          "pytorch-pretrained-bert": pytorch_pretrained_bert.__version__}
        return torch

    def version(self) -> str:
        self.load()
        v = self._versions
        return f"{v['pytorch-pretrained-bert']} (pytorch-pretrained-bert; transformers {v['transformers']}, torch {v['torch']})"

    def cases(self) -> list[Case]:
        return _cases.cases()

    @contextlib.contextmanager
    def context(self, device: str, dtype: str) -> Iterator[None]:
        """BertAdam's add_(Number, Tensor) overloads are deprecated, and so is transformers.AdamW (a
        FutureWarning at construction; its `no_deprecation_warning=` keyword is younger: 4.20.1 has it,
        4.10.3 not, so the cases leave it out and run on every 4.x release): their warnings silenced."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield

    def driver(self, case: Case, inp: RunInput, device: str, dtype: str) -> BertDriver:
        return BertDriver(self.load(), case, inp, device, dtype)
