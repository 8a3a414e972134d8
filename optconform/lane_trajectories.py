"""The native parameter trajectories a lane's run computed, kept for the tests that compare two native
runs with each other (eager vs tf.function / XLA / jax.jit; Keras ``Adam(weight_decay)`` vs ``AdamW``).

``optconform run --trajectories DIR`` writes one ``.npz`` per row it ran (case x device x dtype): every
golden's ``NativeRun.params`` (steps + 1 values of each tensor), exactly the arrays the row was judged on.
Under ``OPTCONFORM_LANE_TRAJECTORIES=DIR`` those tests read them (`load`, through
``optconform.testing.native_params``) instead of running each trajectory a second time; without it they
run the case here. Plain ``np.savez`` arrays and a JSON header
(no pickle: ``allow_pickle=False`` on read). A file that cannot vouch for this environment fails the test,
never skips it: missing, unreadable, or written by another optconform or framework version, or for other
goldens than the corpus gives the case now.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

ENV = "OPTCONFORM_LANE_TRAJECTORIES"
#: the npz entry holding the header (JSON text): whose row, and which (golden, tensor) each array is
HEADER = "header"
#: the row fields the header names its row by (``CaseResult`` fields)
_KEY = ("framework", "framework_version", "case", "device", "dtype")
#: the file that marks a directory as one `prepare` made (only such a directory is ever emptied)
MARKER = ".optconform-trajectories"

#: golden name -> tensor name -> params over steps (steps + 1, *shape)
Trajectories = dict[str, dict[str, np.ndarray]]


def prepare(directory: str) -> None:
    """Create `directory`, or empty one an earlier run made of its row files (a stale row is then missing,
    not old); ValueError for a directory of other files (never deleted), OSError when it cannot be written."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    marker = path / MARKER
    if not marker.is_file() and any(path.iterdir()):
        raise ValueError(f"{directory} holds other files: give an empty or new directory")
    marker.write_text("optconform run --trajectories: one .npz per row\n", encoding="utf-8")
    for old in path.glob("*.npz"):
        old.unlink()


def row_file(directory: str, case_id: str, device: str, dtype: str) -> Path:
    """The row's file: a readable stem (case id with unsafe characters folded) and a hash of the exact key."""
    key = f"{case_id}\0{device}\0{dtype}"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{case_id}-{device}-{dtype}")[:120]
    return Path(directory) / f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz"


def save(directory: str, row: Mapping[str, str], runs: Sequence[tuple]) -> None:
    """Write the `runs` ((golden, params) pairs) of one row (`framework`, `framework_version`, `case`,
    `device`, `dtype` of ``CaseResult``) to its file in `directory`."""
    import optconform
    from optconform.golden.fsio import atomic_write
    names, arrays = [], {}
    for golden, params in runs:
        for tensor in golden.tensors:
            arrays[f"a{len(names)}"] = np.asarray(params[tensor])
            names.append([golden.name, tensor])
    header = {"optconform_version": optconform.__version__, **{k: row[k] for k in _KEY}, "arrays": names}
    buffer = io.BytesIO()
    np.savez(buffer, **{HEADER: np.array(json.dumps(header))}, **arrays)
    atomic_write(row_file(directory, row["case"], row["device"], row["dtype"]), buffer.getvalue())


def load(directory: str, framework: str, version: str, case_id: str, device: str, dtype: str,
         goldens: Sequence[str]) -> Trajectories:
    """The row's trajectories, asserting the file vouches for them (module docstring)."""
    import optconform
    path = row_file(directory, case_id, device, dtype)
    where = f"{ENV}={directory}: row {case_id} {device} {dtype}"
    assert path.is_file(), f"{where} has no file ({path.name}): run `optconform run --trajectories` again"
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data[HEADER]))
        want = {"optconform_version": optconform.__version__, "framework": framework,
                "framework_version": version, "case": case_id, "device": device, "dtype": dtype}
        got = {k: header.get(k) for k in want}
        assert got == want, f"{where} was written for {got}, this is {want}: it is stale"
        out: Trajectories = {}
        for index, (golden, tensor) in enumerate(header["arrays"]):
            out.setdefault(golden, {})[tensor] = data[f"a{index}"]
    assert sorted(out) == sorted(goldens), (f"{where} holds goldens {sorted(out)}, the corpus gives the case "
                                            f"{sorted(goldens)}: it is stale")
    return out
