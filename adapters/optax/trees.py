"""Params as flax lays them out: a nested dict built from the tensor names split at ``/``
(``{"LayerNorm": {"gamma": ...}}``), so masks see the paths real models have; a flat dict keyed by
the names when they do not form a tree.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


def nestable(names: Sequence[str]) -> bool:
    """Whether the '/'-separated names form a tree (no name is a prefix path of another)."""
    paths = [tuple(n.split("/")) for n in names]
    if any("" in p for p in paths) or len(set(paths)) != len(paths):
        return False
    full = set(paths)
    return not any(p[:i] in full for p in paths for i in range(1, len(p)))


def to_tree(names: Sequence[str], values: Sequence[Any], nested: bool) -> dict:
    """The pytree holding `values` under `names` (nested at '/' when `nested`)."""
    if not nested:
        return dict(zip(names, values))
    tree: dict = {}
    for name, value in zip(names, values):
        node = tree
        *head, leaf = name.split("/")
        for key in head:
            node = node.setdefault(key, {})
        node[leaf] = value
    return tree


def from_tree(tree: Mapping, names: Sequence[str], nested: bool) -> dict:
    """name -> leaf of a pytree laid out by `to_tree` (KeyError/TypeError when it is not)."""
    if not nested:
        return {n: tree[n] for n in names}
    out = {}
    for name in names:
        node = tree
        for key in name.split("/"):
            node = node[key]
        out[name] = node
    return out


def host(x) -> np.ndarray:
    """A float64 host copy (never a view of a device buffer that may be donated later)."""
    return np.array(np.asarray(x), dtype=np.float64, copy=True)
