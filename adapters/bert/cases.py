"""The torch ports people fine-tuned BERT with: pytorch-pretrained-bert 0.6.2 `BertAdam` and
transformers 4.49.0 `AdamW(correct_bias=True/False)` (the last transformers release that ships it), and
transformers' `Adafactor` (the T5 fine-tuning optimizer, spec/adafactor.md).

Sources: `pytorch_pretrained_bert/optimization.py:183-302` at 0.6.2 (no bias correction, eps 1e-6
outside sqrt(v), `u += wd*w` then `x lr*schedule(step)`, per-tensor
`clip_grad_norm_(p, max_grad_norm=1.0)` by default, schedule multiplier 1 when t_total < 0) and
`transformers/optimization.py:607-718` at v4.49.0 (eps on the raw root, bias correction folded into
the step size when correct_bias, decay `w -= lr*wd*w` *after* the step with the plain lr).

Neither port has an exclusion list: their users pass torch param groups (the BERT example scripts
build them with `no_decay = ['bias', 'LayerNorm.bias', 'LayerNorm.weight']`). Every case maps
`weight_decay_exclude` to the `ParamGroups` hook and does what those scripts do (driver.param_groups).

Schedules: BertAdam multiplies `group['lr']` by `schedule.get_lr(step)`, a multiplier the spec calls
eta. The adapter takes eta natively (`supports_eta`): the ``schedule_hook`` case maps eta to the
`EtaSchedule` hook, which feeds the scenario's eta through BertAdam's own `_LRSchedule`; the other
cases fold eta into lr. BertAdam's built-in warmup schedules (lr multiplier 0 on the first update) are
not a golden's lr sequence; they are checked against the reference with their documented multiplier
sequence in tests/conformance/test_bert_findings.py. The defaults with clipping on (max_grad_norm=1.0)
run no golden (every golden has clip_norm off) and are checked there too.
"""
from __future__ import annotations

from dataclasses import dataclass

from optconform.adapters.base import Arg, Case, Hook


@dataclass(frozen=True)
class ParamGroups(Hook):
    """`weight_decay_exclude` as BERT fine-tuning scripts apply it: tensors whose name one of the
    patterns finds go into a torch param group with weight_decay=0."""


@dataclass(frozen=True)
class EtaSchedule(Hook):
    """eta_t as BertAdam's schedule multiplier: an `_LRSchedule` whose get_lr(step) is eta of the
    step (lr_scheduled = lr*get_lr(step), optimization.py:289-292 at 0.6.2)."""


_BERTADAM = "pytorch_pretrained_bert.optimization.BertAdam"
_BERTADAM_HP = {"lr": "lr", "beta1": "b1", "beta2": "b2", "eps": "e", "weight_decay": "weight_decay",
                "weight_decay_exclude": ParamGroups()}
_HF_HP = {"lr": "lr", "beta1": Arg("betas", 0), "beta2": Arg("betas", 1), "eps": "eps",
          "weight_decay": "weight_decay", "weight_decay_exclude": ParamGroups()}
#: BertAdam with neither clipping nor a schedule: t_total=-1 makes the multiplier 1, max_grad_norm=-1
#: turns the per-tensor clip off.
_BERTADAM_PLAIN = {"warmup": -1, "t_total": -1, "max_grad_norm": -1.0}
_HF_NOTE = ("transformers.AdamW was deprecated in 4.47 and removed in 4.50; docstring: 'Adam algorithm with weight "
            "decay fix as introduced in Decoupled Weight Decay Regularization' (arXiv 1711.05101, Algorithm 2)")


def _transformers_adamw(rule: str, *, correct_bias: bool, variant: str, documented_rule: str, notes: str) -> Case:
    return Case(framework="bert", name=f"transformers.AdamW(correct_bias={correct_bias})", native="transformers.AdamW",
                rule=rule, variant=variant, kwargs={"correct_bias": correct_bias},
                hp_map=_HF_HP, documented_rule=documented_rule, notes=notes)


_ADAFACTOR = "transformers.optimization.Adafactor"
_ADAFACTOR_HP = {"lr": "lr", "beta2_decay": "decay_rate", "eps": Arg("eps", 0), "eps2": Arg("eps", 1),
                 "clip_threshold": "clip_threshold", "weight_decay": "weight_decay",
                 "weight_decay_exclude": ParamGroups()}
#: An explicit lr (relative_step=False, which lr requires) and no first moment (beta1=None, the default).
_ADAFACTOR_LR = {"relative_step": False, "warmup_init": False, "beta1": None}


def _transformers_adafactor(rule: str, *, scale_parameter: bool) -> Case:
    """transformers' Adafactor (transformers/optimization.py:806-955 at v4.49.0): every tensor with two or more
    axes factored over its last two (min_dim_size_to_factor = 0); bfloat16 parameters are stepped in float32."""
    return Case(framework="bert", name=f"transformers.Adafactor(scale_parameter={scale_parameter})", native=_ADAFACTOR,
                rule=rule, variant="param_groups", kwargs={**_ADAFACTOR_LR, "scale_parameter": scale_parameter},
                hp_map=_ADAFACTOR_HP, fixed_hp={"min_dim_size_to_factor": 0},
                dtypes=("float64", "float32", "bfloat16"),
                notes="docstring: 'AdaFactor pytorch implementation ... Paper: Adafactor: Adaptive Learning Rates with "
                      "Sublinear Memory Cost' (arXiv 1804.04235)")


def cases() -> list[Case]:
    return [
        Case(framework="bert", name="BertAdam(max_grad_norm=-1)", native=_BERTADAM, rule="bert_adamw",
             variant="param_groups", kwargs=_BERTADAM_PLAIN, hp_map=_BERTADAM_HP, documented_rule="bert_adamw",
             notes="no warmup (warmup=-1, t_total=-1), no clipping; exclusion = the user's param groups. Docstring: "
                   "'BERT version of Adam algorithm with weight decay fix'"),
        Case(framework="bert", name="BertAdam(max_grad_norm=-1,schedule)", native=_BERTADAM, rule="bert_adamw",
             variant="schedule_hook", kwargs=_BERTADAM_PLAIN, hp_map={**_BERTADAM_HP, "eta": EtaSchedule()},
             documented_rule="bert_adamw",
             notes="the scenario's eta fed through BertAdam's _LRSchedule hook (lr_scheduled = lr*get_lr(step)): "
                   "the multiplier scales the step and the decay alike (decay x lr_t*eta_t)"),
        _transformers_adamw("transformers_adamw", correct_bias=True, variant="param_groups",
                            documented_rule="adamw_paper", notes=_HF_NOTE),
        _transformers_adamw("transformers_adamw[bias_correction=off]", correct_bias=False, variant="default",
                            documented_rule="bert_adamw",
                            notes="docstring: 'correct_bias ... (for instance, in Bert TF repository they use False)'"),
        _transformers_adamw("bert_adamw[decay_order=after]", correct_bias=False, variant="param_groups",
                            documented_rule="bert_adamw",
                            notes="with BERT's no_decay param groups, on BERT's goldens: BERT's rule except that the "
                                  "decay shrinks the post-step weight"),
        _transformers_adafactor("transformers_adafactor", scale_parameter=True),
        _transformers_adafactor("transformers_adafactor[param_scale=none]", scale_parameter=False),
    ]
