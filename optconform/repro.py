"""A minimal framework-native repro script for a divergence, ready to paste into an upstream issue."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from optconform.adapters.base import Case
from optconform.golden.format import Golden

from .compare import Divergence


def _literal(arr: np.ndarray) -> str:
    return repr(np.asarray(arr, dtype=np.float64).tolist())


def _value(v: Any) -> str:
    """A Python literal for a hyper-parameter value (inf and nan spelled so that they evaluate)."""
    if isinstance(v, float) and not np.isfinite(v):
        return f"float({str(v)!r})"
    if isinstance(v, (list, tuple)):
        return "(" + "".join(_value(x) + ", " for x in v) + ")"
    return repr(v)


def _import_root(module: str) -> str:
    """The sys.path entry `module` was imported from, so that the script runs from any directory."""
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None)
    if not file:
        return ""
    path = Path(file).resolve()
    depth = module.count(".") + (1 if path.name == "__init__.py" else 0)
    return str(path.parents[depth])


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
        if module in ("", "?", "__main__") or "<" in qualname or not target.isidentifier():
            # a lambda, a local function or a script's own function: nothing to import
            header = (f"# the optimizer under test, {case.name}, cannot be imported (a lambda, a local function or\n"
                      f"# defined in __main__): define `factory(params, **hp)` here\nfactory = None")
            qualname = "factory"
        else:
            root = _import_root(module)
            path = f"import sys\nsys.path.insert(0, {root!r})\n" if root else ""
            header = f"{path}from {module} import {target}  # the optimizer under test"
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
    lines.append("hp = {" + ", ".join(f"{k!r}: {_value(v)}" for k, v in kwargs.items()) + "}")
    lines.append(f"opt = {call}")
    lines.append("for step_grads, lr in zip(grads, lrs):")
    lines.append(f"    for p, g in zip(params, step_grads):\n        p.grad = torch.tensor(g, dtype={dtype})")
    lines.append("    for group in opt.param_groups:\n        group['lr'] = lr\n    opt.step()")
    lines.append(f"print({f'step {steps}, tensor {div.tensor!r}{index}'!r})")
    lines.append(f"print('actual  ', params[{where}].detach(){index}.item())")
    lines.append(f"print('expected', {_value(div.expected)})")
    return "\n".join(lines) + "\n"
