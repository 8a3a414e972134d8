"""tools/gpu-check (issue 22): its CPU dry run end to end, and the symlink tree it falls back on when
`pip install -e .` cannot run (no setuptools, no package index).

The dry run takes about 40 s on this project's loaded 2-core VM (detection, two small `run`s, a tiny
`bench`, the merge, the HTML report and the diff, each a child process)."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from optconform.testing import require

torch = require('torch', 'torch')

pytestmark = pytest.mark.framework("torch")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "gpu-check"


def _load_script():
    """tools/gpu-check as a module (it has no .py suffix)."""
    loader = importlib.machinery.SourceFileLoader("gpu_check", str(SCRIPT))
    spec = importlib.util.spec_from_loader("gpu_check", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module          # dataclasses look their module up
    loader.exec_module(module)
    return module


def test_dry_run_writes_the_cpu_results(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notices = [line for line in proc.stdout.splitlines() if line.startswith("gpu-check:") and "CPU dry run into" in line]
    assert len(notices) == 1, proc.stdout
    expected = "present but --dry-run" if torch.cuda.is_available() else "no CUDA device here"
    assert expected in notices[0] or "present but --dry-run" in notices[0], notices[0]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8, files
    assert {"torch.json", "bench.json", "summary.md", "diff.md"} <= set(files), files
    rows = json.loads((out / "torch.json").read_text(encoding="utf-8"))["results"]
    assert rows and all(r["device"] == "cpu" and r["verdict"] == "conforms" for r in rows)
    assert {r["dtype"] for r in rows} == {"float32", "float64"}      # two runs, merged
    bench = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert bench["rows"] and all(r["device"] == "cpu" and r["pct_of_limit"] > 0 for r in bench["rows"])
    assert "0 semantic change(s)" in proc.stdout       # the diff against baselines/torch.json ran


def test_symlink_tree_reproduces_the_package_dir_mappings(tmp_path):
    gpu_check = _load_script()
    tree = gpu_check.build_tree(ROOT, tmp_path / "tree")
    mapping = gpu_check.package_dirs(ROOT)
    assert mapping["optconform.reference"] == "reference" and mapping["optconform.adapters"] == "adapters"
    for package, folder in mapping.items():
        init = tree / package.replace(".", "/") / "__init__.py"
        assert init.resolve() == (ROOT / folder / "__init__.py").resolve(), package
    code = ("import optconform, optconform.reference, optconform.adapters.torch as t, optconform.cli; "
            "print(optconform.__file__); print(optconform.reference.__file__); print(t.__file__)")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    top, reference, adapter = proc.stdout.split()
    assert all(Path(p).is_relative_to(tree) for p in (top, reference, adapter)), proc.stdout
    assert Path(reference).resolve() == (ROOT / "reference" / "__init__.py").resolve()
    assert Path(adapter).resolve() == (ROOT / "adapters" / "torch" / "__init__.py").resolve()


def test_budget_shares_what_is_left_by_weight():
    gpu_check = _load_script()
    budget = gpu_check.Budget(100 + gpu_check.RESERVE_S)
    assert 49 < budget.timeout(25, 100) <= 50            # up to twice its share
    assert 99 < budget.timeout(40, 40) <= 100           # the last step: what is left, never more
    assert 99 < budget.timeout(80, 100) <= 100
    assert 39 < budget.timeout(25, 100, floor=10, floors_after=60) <= 40    # later steps keep their floors
    assert budget.timeout(25, 100, floor=10, floors_after=100) == 10
