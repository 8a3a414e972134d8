"""The native options each release offers: the keyword parameters of every native optimizer API a
lane's cases use, read with `inspect.signature` from the installed framework.

A keyword that appears or disappears between two releases is news for `optconform diff` (a new
`decoupled_weight_decay=` changes what users can ask for; a removed one breaks their code). APIs
whose signature cannot be read (C-extension ops taking ``*args, **kwargs``) record ``None``.
"""
from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, Iterable


def _resolve(dotted: str) -> Any:
    """The object at a dotted path (longest importable module prefix, then attributes)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"cannot import any prefix of {dotted!r}")


def keyword_options(dotted: str) -> list[str] | None:
    """Sorted names of the parameters the callable at `dotted` takes by keyword (a class: its
    constructor's); None when the API cannot be resolved or names none (``*args, **kwargs``)."""
    found = _signature(dotted)
    return None if isinstance(found, str) or not found[0] else sorted(found[0])


@functools.cache
def _signature(dotted: str) -> tuple[frozenset[str], bool] | str:
    """(keyword parameter names, takes **kwargs) of the native at `dotted`, or why it cannot be used
    (its package imports but lacks the API: not in this release). Natives that are not import paths
    (nothing of them imports) and signature-less ones accept anything."""
    try:
        target = _resolve(dotted)
    except ImportError:
        return frozenset(), True
    except AttributeError as exc:
        return f"{dotted} does not exist in this release ({exc})"
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return frozenset(), True
    names = frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def unsupported(dotted: str, keywords: Iterable[str]) -> str:
    """Why the native at `dotted` cannot take `keywords` in the installed release ('' when it can, or
    when its signature cannot tell: **kwargs or no signature)."""
    found = _signature(dotted)
    if isinstance(found, str):
        return found
    names, open_ended = found
    missing = sorted(set(keywords) - names) if not open_ended else []
    return f"{dotted} has no keyword {', '.join(map(repr, missing))} in this release" if missing else ""


def options(natives: Iterable[str]) -> dict[str, list[str] | None]:
    """native API -> its keyword options, for every distinct native (sorted by name)."""
    return {native: keyword_options(native) for native in sorted(set(natives))}
