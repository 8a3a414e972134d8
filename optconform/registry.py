"""Adapter discovery: the built-in adapters plus any registered under the entry-point group
``optconform.adapters`` (a third-party package adds ``[project.entry-points."optconform.adapters"]
myfw = "mypkg.optconform_adapter:ADAPTER"``). Nothing here imports a framework."""
from __future__ import annotations

import importlib
from importlib import metadata

from optconform.adapters.base import Adapter

BUILTIN = {
    "torch": "optconform.adapters.torch:ADAPTER",
    "torch-distributed": "optconform.adapters.torch_distributed:ADAPTER",
    "tensorflow": "optconform.adapters.keras:TF_ADAPTER",
    "keras-jax": "optconform.adapters.keras:JAX_ADAPTER",
    "bert": "optconform.adapters.bert:ADAPTER",
    "bert-tf": "optconform.adapters.bert_tf:ADAPTER",
    "mxnet": "optconform.adapters.mxnet:ADAPTER",
    "jax": "optconform.adapters.optax:ADAPTER",
}
GROUP = "optconform.adapters"


def _entry_points() -> dict[str, str]:
    try:
        eps = metadata.entry_points(group=GROUP)
    except Exception:  # a broken distribution's metadata must not break discovery
        return {}
    return {ep.name: ep.value for ep in eps}


def adapter_names() -> list[str]:
    """Every known adapter name: built-ins first, then third-party entry points."""
    names = dict(BUILTIN)
    names.update({k: v for k, v in _entry_points().items() if k not in names})
    return list(names)


def load_adapter(name: str) -> Adapter:
    """The adapter object for `name` (its framework is imported only when it runs)."""
    targets = {**_entry_points(), **BUILTIN}
    if name not in targets:
        raise ValueError(f"unknown framework {name!r}; known: {', '.join(adapter_names())}")
    module_name, _, attr = targets[name].partition(":")
    adapter = getattr(importlib.import_module(module_name), attr)
    if not isinstance(adapter, Adapter):
        raise TypeError(f"entry point {name!r} ({targets[name]}) is not an optconform Adapter")
    return adapter
