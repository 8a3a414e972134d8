"""A minimal framework-native repro script for a divergence, ready to paste into an upstream issue."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from optconform.adapters.base import Case
from optconform.golden.format import Golden

from .compare import Divergence


def _literal(arr: np.ndarray) -> str:
    return repr(np.asarray(arr, dtype=np.float64).tolist())


def repro_script(case: Case, golden: Golden, div: Divergence, hp: Mapping[str, Any], rule: str) -> str:
    """A torch script (params, grads and lr up to the diverging step, the hyper-parameters, expected vs
    actual at that step) for `case` on `golden`."""
    steps = max(div.step, 1)
    names = list(golden.tensors)
    dtype = f"torch.{case.dtypes[0]}"
    kwargs = {k: hp[k] for k in case.hp_map if k in hp and k not in ("lr", "eta")}
    if case.factory is not None:
        module, _, qualname = case.native.partition(":")
        target = qualname.split(".")[0]
        header = f"from {module} import {target}  # the optimizer under test"
        call = f"{qualname}(params, lr=lrs[0], **hp)" if "lr" in case.hp_map else f"{qualname}(params, **hp)"
    else:
        header = ""
        call = f"{case.native}(params, lr=lrs[0], **hp)"
        kwargs = case.native_kwargs(hp)
    where = names.index(div.tensor)
    index = "[" + ", ".join(map(str, div.index)) + "]" if div.index else ""
    lrs = [float(a * b) for a, b in zip(golden.lr[:steps], golden.eta[:steps])]
    lines = [
        f"# optconform repro: {case.name} does not follow rule {rule!r}",
        f"# scenario {golden.scenario!r} ({golden.observes[:80]}...)",
        f"# expected = optconform.reference.trajectory({rule!r}, ...) in float64; the error is "
        f"{div.units:.3g} tolerance units",
        "import torch",
        header,
    ]
    lines = [line for line in lines if line]
    lines.append("params = [" + ", ".join(f"torch.tensor({_literal(golden.params0[n])}, dtype={dtype}, requires_grad=True)"
                                         for n in names) + f"]  # {names}")
    lines.append("grads = [" + ", ".join("[" + ", ".join(_literal(golden.grads[t][n]) for n in names) + "]"
                                        for t in range(steps)) + "]")
    lines.append(f"lrs = {lrs!r}")
    lines.append(f"hp = {dict((k, (tuple(v) if isinstance(v, list) else v)) for k, v in kwargs.items())!r}")
    lines.append(f"opt = {call}")
    lines.append("for step_grads, lr in zip(grads, lrs):")
    lines.append(f"    for p, g in zip(params, step_grads):\n        p.grad = torch.tensor(g, dtype={dtype})")
    lines.append("    for group in opt.param_groups:\n        group['lr'] = lr\n    opt.step()")
    lines.append(f"print({f'step {steps}, tensor {div.tensor!r}{index}'!r})")
    lines.append(f"print('actual  ', params[{where}].detach(){index}.item())")
    lines.append(f"print('expected', {div.expected!r})")
    return "\n".join(lines) + "\n"
