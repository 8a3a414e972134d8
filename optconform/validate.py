"""Validation of user input before any work: hyper-parameter overrides (typed and range-checked
against spec/hyperparameters.toml), output paths (writable), factories (importable, callable with the
canonical names), lists without duplicates.

Every function raises ValueError with a one-line message naming the problem; the CLI prints it and
exits 2 (a usage error, never a nonconformance of the optimizer).
"""
from __future__ import annotations

import functools
import importlib
import inspect
import math
import numbers
import os
import re
import sys
import tempfile
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

from optconform.adapters.base import Arg

#: Hyper-parameters that are per-step schedules of each probe scenario: never overridden.
SCHEDULES = ("lr", "eta")


@functools.cache
def hp_table() -> dict[str, dict[str, Any]]:
    """spec/hyperparameters.toml: canonical name -> {kind, min, max, ..., doc}."""
    text = resources.files("optconform.spec").joinpath("hyperparameters.toml").read_text("utf-8")
    return tomllib.loads(text)


def _range_text(spec: Mapping[str, Any]) -> str:
    low = spec.get("min")
    high = spec.get("max")
    parts = []
    if low is not None:
        parts.append(f"{'>' if spec.get('min_open') else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if spec.get('max_open') else '<='} {high:g}")
    return " and ".join(parts) or "finite"


def _number(name: str, value: Any, spec: Mapping[str, Any]) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"hyper-parameter {name!r} must be a number, got {value!r} ({spec['doc']})")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not (spec.get("inf") and value > 0)):
        raise ValueError(f"hyper-parameter {name!r} must be finite, got {value!r} ({spec['doc']})")
    low, high = spec.get("min"), spec.get("max")
    too_low = low is not None and (value <= low if spec.get("min_open") else value < low)
    too_high = high is not None and (value >= high if spec.get("max_open") else value > high)
    if too_low or too_high:
        raise ValueError(f"hyper-parameter {name!r} = {value!r} is out of range: must be {_range_text(spec)} "
                         f"({spec['doc']})")
    return value


def _regex_list(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"hyper-parameter {name!r} must be a list of regex strings, got {value!r}")
    for pattern in value:
        if not isinstance(pattern, str):
            raise ValueError(f"hyper-parameter {name!r}: {pattern!r} is not a string")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"hyper-parameter {name!r}: {pattern!r} is not a valid regular expression ({exc})") from None
    return tuple(value)


def _mask(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, bool) for k, v in value.items()):
        raise ValueError(f"hyper-parameter {name!r} must be an object tensor name -> true/false, got {value!r}")
    return dict(value)


def hp_value(name: str, value: Any) -> Any:
    """One canonical hyper-parameter, typed and range-checked (np.float32(0.1) is a number)."""
    spec = hp_table().get(name)
    if spec is None:
        raise ValueError(f"unknown hyper-parameter {name!r}; canonical names: {', '.join(sorted(hp_table()))}")
    kind = spec["kind"]
    if value is None and spec.get("optional"):
        return None
    if kind == "bool":
        if type(value).__name__ not in ("bool", "bool_"):
            raise ValueError(f"hyper-parameter {name!r} must be true or false, got {value!r}")
        return bool(value)
    if kind == "regex_list":
        return _regex_list(name, value)
    if kind == "mask":
        return _mask(name, value)
    return _number(name, value, spec)


def hp_overrides(rule, hp: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides for a check of `rule`: names the rule accepts (not lr/eta, which are the scenarios'
    schedules), each typed and range-checked; returns them normalised (numbers as float)."""
    valid = sorted(n for n in rule.defaults if n not in SCHEDULES)
    out = {}
    for name, value in hp.items():
        if name in SCHEDULES:
            raise ValueError(f"hyper-parameter {name!r} cannot be overridden: it is the per-step schedule of each "
                             f"probe scenario; overridable for rule {rule.name!r}: {', '.join(valid)}")
        if name not in rule.defaults:
            raise ValueError(f"unknown hyper-parameter {name!r} for rule {rule.name!r}; canonical names: "
                             f"{', '.join(valid)}")
        out[name] = hp_value(name, value)
    return out


def output_path(path: str | os.PathLike, flag: str) -> None:
    """`path` can be written: not a folder, its folder exists and a file can be created in it."""
    target = Path(path)
    if str(path) == "" or target.is_dir():
        raise ValueError(f"{flag} {str(path)!r}: is a folder, not a file path")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{flag} {str(path)!r}: folder {str(parent)!r} does not exist")
    if target.exists() and not os.access(target, os.W_OK):
        raise ValueError(f"{flag} {str(path)!r}: file is not writable")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".optconform-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"{flag} {str(path)!r}: folder {str(parent)!r} is not writable ({exc.strerror})") from None


def distinct_outputs(paths: Mapping[str, Any]) -> None:
    """No two output flags name the same file (one would silently overwrite the other)."""
    seen: dict[Path, str] = {}
    for flag, path in paths.items():
        if not path:
            continue
        key = Path(path).resolve()
        if key in seen:
            raise ValueError(f"{flag} and {seen[key]} name the same file {str(path)!r}")
        seen[key] = flag


def unique(values: list[str] | None, flag: str) -> list[str] | None:
    """`values` unchanged, or a ValueError naming the first repeated one."""
    seen = set()
    for v in values or []:
        if v in seen:
            raise ValueError(f"{flag}: {v!r} is given more than once")
        seen.add(v)
    return values


def load_factory(spec: str) -> Callable:
    """MODULE:FUNC -> the callable. Import errors of any kind (SyntaxError, an exception raised at
    import time) are reported on one line; the current directory is importable, as for `python -m`."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--factory {spec!r}: write MODULE:FUNC, e.g. my_optim:make_adamw")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise ValueError(f"--factory {spec!r}: module {module_name!r} has a syntax error: {exc.msg} "
                         f"({exc.filename}, line {exc.lineno})") from None
    except Exception as exc:  # noqa: BLE001 - any import-time failure of user code is a usage error
        raise ValueError(f"--factory {spec!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"--factory {spec!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"--factory {spec!r}: {attr!r} is not callable")
    return obj


def factory_signature(factory: Callable, style: str, rule, aliases: Mapping[str, tuple[Arg, ...]] | None = None) -> None:
    """The factory can be called as the adapter calls it: torch `factory(params, **hp)`, optax/Keras
    `factory(**hp)`, every required argument besides params being a canonical name of the rule or one
    of its native `aliases` (canonical -> argument names, e.g. beta1 -> Arg("betas", 0)). A class works as
    well as a function (its __init__ signature)."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"factory {factory!r}: cannot read its signature ({exc})") from None
    params = list(sig.parameters.values())
    if style == "params":
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
        if not positional:
            raise ValueError(f"factory {_name(factory)}: takes no positional argument for the parameters; "
                             "write FUNC(params, lr, ...)")
        params = params[1:] if params[0].kind is not params[0].VAR_POSITIONAL else params
    canonical = set(rule.defaults)
    native = {a.name: c for c, names in (aliases or {}).items() if c in canonical for a in names}
    for p in params:
        required = p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)
        if required and ((p.name not in canonical and p.name not in native) or p.kind is p.POSITIONAL_ONLY):
            also = f"; native names also taken: {', '.join(sorted(native))}" if native else ""
            raise ValueError(f"factory {_name(factory)}: required argument {p.name!r} is not a canonical "
                             f"hyper-parameter of rule {rule.name!r}; canonical names: "
                             f"{', '.join(sorted(n for n in canonical if n != 'eta'))}{also}")


def _name(factory: Callable) -> str:
    return f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', repr(factory))}"


_ROW_STR = ("framework", "case", "verdict")
_ROW_NUM = ("worst_units", "worst_ulps", "matched_units", "seconds")


def results_rows(where: str, rows: list[Any], environments: Any = None) -> None:
    """Every row of a results file has what the reports read: framework, case and verdict strings,
    numeric (or null / "inf") error fields, a deviation object of strings, a trace object; every
    environment is an object naming its framework."""
    envs = [] if environments is None else environments
    if not isinstance(envs, list) or not all(isinstance(e, dict) and isinstance(e.get("framework"), str) for e in envs):
        raise ValueError(f"{where}: 'environments' must be a list of objects with a 'framework' string")
    for i, row in enumerate(rows):
        label = f"{where}: results[{i}]"
        if not isinstance(row, dict):
            raise ValueError(f"{label} is {type(row).__name__}, expected an object")
        for key in _ROW_STR:
            if not isinstance(row.get(key), str) or not row.get(key):
                raise ValueError(f"{label} has no {key!r} string" + (f" (case {row.get('case')!r})" if key != "case" else ""))
        for key in _ROW_NUM:
            value = row.get(key)
            if value is not None and not isinstance(value, str) and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{label}.{key} is {value!r}, expected a number")
        deviation = row.get("deviation") or {}
        if not isinstance(deviation, dict) or not all(isinstance(deviation.get(k, ""), str) for k in ("kind", "reason", "issue")):
            raise ValueError(f"{label}.deviation must be an object with string kind, reason and issue")
        if not isinstance(row.get("trace") or {}, dict):
            raise ValueError(f"{label}.trace must be an object")


def row_key(row: Mapping[str, Any]) -> tuple:
    """What identifies a result row across merged files."""
    return (row.get("framework"), row.get("framework_version"), row.get("case"), row.get("device"),
            row.get("device_name"), row.get("dtype"))
