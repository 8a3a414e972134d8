"""Adapter discovery, and that importing optconform imports no framework."""
from __future__ import annotations

import subprocess
import tempfile
import sys

import pytest

from optconform import registry
from optconform.adapters.base import Adapter


def test_builtin_adapter_names():
    names = registry.adapter_names()
    assert names[0] == "torch" and len(names) == len(set(names))


def test_load_unknown_adapter():
    with pytest.raises(ValueError, match=r"unknown framework 'nosuch'; known: .*torch"):
        registry.load_adapter("nosuch")


def _python(code: str) -> subprocess.CompletedProcess:
    # run outside the checkout: `python -c` puts the current directory first on sys.path, and the
    # source folder optconform/ there is not the installed package (its subpackages are mapped)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=tempfile.gettempdir())


def test_imports_do_not_import_torch():
    code = ("import sys\n"
            "import optconform, optconform.cli, optconform.runner, optconform.golden.corpus, optconform.plan\n"
            "import optconform.compare, optconform.report, optconform.results, optconform.html, optconform.registry\n"
            "import optconform.golden.audit, optconform.adapters.torch\n"
            "from optconform import registry\n"
            "adapter = registry.load_adapter('torch')\n"
            "names = registry.adapter_names()\n"
            "cases = adapter.cases()\n"
            "bad = sorted(m for m in ('torch', 'jax', 'tensorflow', 'mxnet', 'matplotlib') if m in sys.modules)\n"
            "assert not bad, bad\n"
            "print(len(cases))\n")
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 0


def test_loaded_adapter_is_an_adapter():
    adapter = registry.load_adapter("torch")
    assert isinstance(adapter, Adapter) and adapter.name == "torch"
    assert all(c.framework == "torch" and c.id.startswith("torch-") for c in adapter.cases())
