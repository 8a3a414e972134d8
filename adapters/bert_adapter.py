"""The torch ports people fine-tuned BERT with: pytorch-pretrained-bert 0.6.2 `BertAdam` and
transformers 4.49.0 `AdamW(correct_bias=True/False)` (the last transformers release that ships it).

Sources (shared/notes/semantics.md section 5): `pytorch_pretrained_bert/optimization.py:183-302`
(no bias correction, eps 1e-6 outside sqrt(v), `u += wd*w` then `x lr*schedule(step)`, per-tensor
`clip_grad_norm_(p, max_grad_norm=1.0)` by default, schedule multiplier 1 when t_total < 0) and
`transformers/optimization.py:607-718` (eps on the raw root, bias correction folded into the step
size when correct_bias, decay `w -= lr*wd*w` *after* the step with the plain lr).

Neither port has an exclusion list: their users pass torch param groups (the BERT example scripts
build them with `no_decay = ['bias', 'LayerNorm.bias', 'LayerNorm.weight']`). The cases whose
`hp_map` maps `weight_decay_exclude` to "param_groups" do what those scripts do: tensors whose name
a pattern finds (re.search, the spec's semantics; the scripts' substring test is the same for the
literal patterns BERT uses) go into a group with weight_decay=0.

Schedules: BertAdam multiplies `group['lr']` by `schedule.get_lr(step)`, a multiplier the spec calls
eta. This adapter takes eta natively (`supports_eta`): the "schedule" case feeds the scenario's eta
through BertAdam's own `_LRSchedule` hook, the other cases fold eta into lr. BertAdam's built-in
warmup schedules (lr multiplier 0 on the first update) are not a golden's lr sequence; they are
checked against the reference with their documented multiplier sequence in
tests/conformance/test_bert_findings.py. The defaults with clipping on (max_grad_norm=1.0) run no
golden (every golden has clip_norm off) and are checked there too.
"""
from __future__ import annotations

import logging
import re
import warnings
from typing import Any

import numpy as np

from .base import Adapter, Case, NativeRun, RunInput

_BERTADAM_HP = {"lr": "lr", "beta1": "b1", "beta2": "b2", "eps": "e", "weight_decay": "weight_decay",
                "weight_decay_exclude": "param_groups"}
_HF_HP = {"lr": "lr", "beta1": "betas[0]", "beta2": "betas[1]", "eps": "eps", "weight_decay": "weight_decay",
          "weight_decay_exclude": "param_groups"}
#: BertAdam with neither clipping nor a schedule: t_total=-1 makes the multiplier 1, max_grad_norm=-1
#: turns the per-tensor clip off.
_BERTADAM_PLAIN = {"warmup": -1, "t_total": -1, "max_grad_norm": -1.0}
_HF_NOTE = ("transformers.AdamW was deprecated in 4.47 and removed in 4.50; docstring: 'Adam algorithm with weight "
            "decay fix as introduced in Decoupled Weight Decay Regularization' (arXiv 1711.05101, Algorithm 2)")


def _cases() -> list[Case]:
    common = dict(framework="bert", dtypes=("float64", "float32"))
    return [
        Case(name="BertAdam(max_grad_norm=-1)", native="pytorch_pretrained_bert.optimization.BertAdam",
             rule="bert_adamw", variant="param_groups", kwargs=dict(_BERTADAM_PLAIN), hp_map=_BERTADAM_HP,
             documented_rule="bert_adamw",
             notes="no warmup (warmup=-1, t_total=-1), no clipping; exclusion = the user's param groups. Docstring: "
                   "'BERT version of Adam algorithm with weight decay fix'", **common),
        Case(name="BertAdam(max_grad_norm=-1,schedule)", native="pytorch_pretrained_bert.optimization.BertAdam",
             rule="bert_adamw", variant="schedule_hook", kwargs=dict(_BERTADAM_PLAIN), hp_map=_BERTADAM_HP,
             documented_rule="bert_adamw",
             notes="the scenario's eta fed through BertAdam's _LRSchedule hook (lr_scheduled = lr*get_lr(step)): "
                   "the multiplier scales the step and the decay alike (decay x lr_t*eta_t)", **common),
        Case(name="transformers.AdamW(correct_bias=True)", native="transformers.AdamW", rule="transformers_adamw",
             variant="param_groups", kwargs={"correct_bias": True, "no_deprecation_warning": True}, hp_map=_HF_HP,
             documented_rule="adamw_paper", notes=_HF_NOTE, **common),
        Case(name="transformers.AdamW(correct_bias=False)", native="transformers.AdamW",
             rule="transformers_adamw[bias_correction=off]", variant="default",
             kwargs={"correct_bias": False, "no_deprecation_warning": True}, hp_map=_HF_HP,
             documented_rule="bert_adamw",
             notes="docstring: 'correct_bias ... (for instance, in Bert TF repository they use False)'", **common),
        Case(name="transformers.AdamW(correct_bias=False)", native="transformers.AdamW",
             rule="bert_adamw[decay_order=after]", variant="param_groups",
             kwargs={"correct_bias": False, "no_deprecation_warning": True}, hp_map=_HF_HP,
             documented_rule="bert_adamw",
             notes="with BERT's no_decay param groups, on BERT's goldens: BERT's rule except that the decay shrinks "
                   "the post-step weight", **common),
    ]


def param_groups(names, params, hp) -> list[dict[str, Any]]:
    """torch param groups as BERT fine-tuning scripts build them: tensors whose name one of the
    `weight_decay_exclude` patterns finds get weight_decay=0, the rest the case's weight_decay."""
    patterns = [re.compile(p) for p in (hp.get("weight_decay_exclude") or ())]
    decay, no_decay = [], []
    for name, p in zip(names, params):
        (no_decay if any(pat.search(name) for pat in patterns) else decay).append(p)
    groups = [{"params": decay}] if decay else []
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


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
            from pytorch_pretrained_bert import optimization  # noqa: F401
        from transformers import AdamW  # noqa: F401  (gone in transformers >= 4.50)
        self._versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                          "pytorch-pretrained-bert": pytorch_pretrained_bert.__version__}
        return torch

    def version(self) -> str:
        self.load()
        v = self._versions
        return f"{v['pytorch-pretrained-bert']} (pytorch-pretrained-bert; transformers {v['transformers']}, torch {v['torch']})"

    def cases(self) -> list[Case]:
        return _cases()

    def _optimizer(self, case: Case, groups, inp: RunInput, kwargs: dict[str, Any]):
        kwargs = {k: v for k, v in kwargs.items() if k != "param_groups"}
        if case.native.endswith("BertAdam"):
            from pytorch_pretrained_bert.optimization import BertAdam, _LRSchedule
            if case.variant == "schedule_hook":
                eta = inp.eta

                class ScenarioEta(_LRSchedule):
                    """The scenario's eta_t as BertAdam's schedule multiplier (step = updates so far)."""
                    def get_lr(self, step, nowarn=False):
                        return float(eta[step])

                    def get_lr_(self, progress):      # abstract in _LRSchedule; never used
                        raise NotImplementedError
                kwargs["schedule"] = ScenarioEta(warmup=0.0, t_total=len(eta))
            return BertAdam(groups, lr=inp.lr[0], **kwargs)
        from transformers import AdamW
        return AdamW(groups, lr=inp.lr[0], **kwargs)

    def _run(self, case: Case, inp: RunInput, device: str, dtype: str) -> NativeRun:
        torch = self.load()
        tdtype = getattr(torch, dtype)
        params = [torch.tensor(np.asarray(inp.params0[n]), dtype=tdtype, device=device).requires_grad_(True)
                  for n in inp.tensors]
        groups = param_groups(inp.tensors, params, inp.hp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # BertAdam's add_(Number, Tensor) overloads are deprecated
            optimizer = self._optimizer(case, groups, inp, case.native_kwargs(inp.hp))
            native_eta = case.variant == "schedule_hook"
            history = {n: [p.detach().to(torch.float64).cpu().numpy().copy()] for n, p in zip(inp.tensors, params)}
            for t, grads in enumerate(inp.grads):
                for n, p in zip(inp.tensors, params):
                    p.grad = torch.tensor(np.asarray(grads[n]), dtype=tdtype, device=device)
                lr = inp.lr[t] if native_eta else float(inp.lr[t] * inp.eta[t])
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.step()
                for n, p in zip(inp.tensors, params):
                    history[n].append(p.detach().to(torch.float64).cpu().numpy().copy())
        return NativeRun(params={n: np.stack(v) for n, v in history.items()})


ADAPTER = BertTorchAdapter()
