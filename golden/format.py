"""Golden file format v1: a ZIP archive of `.npy` arrays plus `config.json` (spec/golden-format.md).

Written deterministically (fixed member order and timestamps, NPY format 1.0), read without pickle.
Works with NumPy 1.23 and 2.x. Every reading problem raises GoldenFormatError naming the file and
what is wrong.
"""
from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from optconform.golden.fsio import atomic_write

FORMAT_VERSION = 1
_EPOCH = (1980, 1, 1, 0, 0, 0)


class GoldenFormatError(ValueError):
    """A golden file is missing, truncated, corrupt or inconsistent."""


@dataclass(frozen=True)
class Golden:
    """One golden case: the scenario data, the hyper-parameters, and the float64 reference trajectory."""
    name: str                                  # file stem: rule__scenario[__variant]
    rule: str
    scenario: str
    variant: str
    kind: str                                  # probe | realistic
    observes: str
    tensors: tuple[str, ...]                   # tensor names in storage order
    params0: Mapping[str, np.ndarray]          # float32-exact initial params (as float64)
    grads: tuple[Mapping[str, np.ndarray], ...]
    lr: tuple[float, ...]
    eta: tuple[float, ...]
    hp: Mapping[str, Any]                      # resolved hyper-parameters except lr and eta
    params: Mapping[str, np.ndarray]           # name -> (T+1, *shape) float64
    state: Mapping[str, Mapping[str, np.ndarray]]   # spec state name -> name -> (T+1, *shape)
    config: Mapping[str, Any]

    @property
    def steps(self) -> int:
        return len(self.lr)

    @property
    def run_hp(self) -> dict[str, Any]:
        """Everything `trajectory` needs besides params and grads."""
        return {**self.hp, "lr": list(self.lr), "eta": list(self.eta)}


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return value


def _from_json(value):
    if value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array(arr, order="C", copy=True), version=(1, 0), allow_pickle=False)
    return buf.getvalue()


def write_golden(path: Path, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Write config.json + arrays (member `<key>.npy`) to `path`, byte-for-byte deterministic."""
    members = {"config.json": json.dumps(_json_safe(config), indent=1, sort_keys=True).encode("utf-8")}
    members.update({f"{key}.npy": _npy_bytes(arr) for key, arr in sorted(arrays.items())})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compresslevel=9)
    atomic_write(path, buf.getvalue())          # never a half-written golden


def read_golden(path: Path, data: bytes | None = None) -> Golden:
    """Read and validate one golden file (`data`: its bytes, already read and verified by the caller)."""
    path = Path(path)
    where = path.name
    if data is None and not path.is_file():
        raise GoldenFormatError(f"{where}: file is missing")
    try:
        with zipfile.ZipFile(io.BytesIO(data) if data is not None else path) as zf:
            names = set(zf.namelist())
            if "config.json" not in names:
                raise GoldenFormatError(f"{where}: no config.json member (not a golden file?)")
            config = json.loads(zf.read("config.json").decode("utf-8"))
            if isinstance(config, dict) and isinstance(config.get("hp"), dict):
                config["hp"] = _from_json(config["hp"])     # non-finite floats are encoded only in hp
            arrays = {}
            for member in sorted(names - {"config.json"}):
                with zf.open(member) as fh:
                    arrays[member[:-4]] = np.lib.format.read_array(io.BytesIO(fh.read()), allow_pickle=False)
    except GoldenFormatError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, json.JSONDecodeError,
            UnicodeDecodeError) as exc:
        raise GoldenFormatError(f"{where}: unreadable or truncated ({type(exc).__name__}: {exc})") from exc
    return _assemble(where, path.stem, config, arrays)


def _need(where, arrays, key, shape):
    if key not in arrays:
        raise GoldenFormatError(f"{where}: array {key!r} is missing")
    arr = arrays[key]
    if tuple(arr.shape) != tuple(shape):
        raise GoldenFormatError(f"{where}: array {key!r} has shape {tuple(arr.shape)}, expected {tuple(shape)}")
    return arr.astype(np.float64)


def _assemble(where, stem, config, arrays) -> Golden:
    if not isinstance(config, dict) or config.get("format_version") != FORMAT_VERSION:
        version = config.get("format_version") if isinstance(config, dict) else None
        raise GoldenFormatError(f"{where}: format_version {version!r}, this reader understands {FORMAT_VERSION}")
    if config.get("format_version") != FORMAT_VERSION:
        raise GoldenFormatError(f"{where}: format_version {config.get('format_version')!r}, this reader "
                                f"understands {FORMAT_VERSION}")
    for key in ("rule", "scenario", "variant", "steps", "tensors", "hp", "state_names"):
        if key not in config:
            raise GoldenFormatError(f"{where}: config.json lacks {key!r}")
    steps = int(config["steps"])
    tensors = tuple(t["name"] for t in config["tensors"])
    shapes = [tuple(t["shape"]) for t in config["tensors"]]
    params0, grads_stacked, params, state = {}, {}, {}, {}
    for i, (name, shape) in enumerate(zip(tensors, shapes)):
        params0[name] = _need(where, arrays, f"params0_{i}", shape)
        grads_stacked[name] = _need(where, arrays, f"grads_{i}", (steps, *shape))
        params[name] = _need(where, arrays, f"trajectory_{i}", (steps + 1, *shape))
    per_tensor = set(config.get("per_tensor_state", ()))
    for s in config["state_names"]:
        state[s] = {name: _need(where, arrays, f"state_{s}_{i}", (steps + 1,) if s in per_tensor else (steps + 1, *shape))
                    for i, (name, shape) in enumerate(zip(tensors, shapes))}
    lr = _need(where, arrays, "lr", (steps,))
    eta = _need(where, arrays, "eta", (steps,))
    grads = tuple({name: grads_stacked[name][t] for name in tensors} for t in range(steps))
    return Golden(name=stem, rule=config["rule"], scenario=config["scenario"], variant=config["variant"],
                  kind=config.get("kind", ""), observes=config.get("observes", ""), tensors=tensors,
                  params0=params0, grads=grads, lr=tuple(map(float, lr)), eta=tuple(map(float, eta)),
                  hp=dict(config["hp"]), params=params, state=state, config=config)
