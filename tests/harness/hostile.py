"""Shared machinery of the hostile-input tables (test_hostile_inputs.py, test_hostile_torch.py).

A row is an input (argv, with `{tmp}` standing for a fresh temporary folder, plus an optional setup
that prepares files or tampers with a copy of the golden corpus) and what must come out: the exit
code and a fragment of the message. Every row also asserts that no traceback is printed and that a
usage error (exit 2) is exactly one line on stderr.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from optconform import cli, plan
from optconform.golden import corpus, digest, integrity


@dataclass(frozen=True)
class Row:
    id: str
    argv: tuple[str, ...]
    code: int
    fragment: str
    setup: Callable | None = None     # setup(tmp: Path, monkeypatch) before the command runs
    after: Callable | None = None     # after(tmp: Path): further assertions on what the command wrote


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """cli.main in-process: (exit code, stdout, stderr). Any exception other than SystemExit escapes
    and fails the test (that is a crash)."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:          # argparse's own usage errors and --help
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_row(row: Row, tmp_path: Path, monkeypatch, capsys) -> None:
    """Run one row and assert exit code, message fragment, no traceback, one-line usage errors."""
    if row.setup is not None:
        row.setup(tmp_path, monkeypatch)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in row.argv]
    code, out, err = run_cli(argv, capsys)
    text = out + err
    assert "Traceback" not in text, text
    assert code == row.code, f"exit {code}, expected {row.code}; output:\n{text[-3000:]}"
    assert row.fragment.replace("{tmp}", str(tmp_path)) in text, f"{row.fragment!r} not in:\n{text[-3000:]}"
    if row.code == 2 and "usage:" not in err:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"optconform {argv[0]}: error: "), err
    if row.after is not None:
        row.after(tmp_path)


# --- golden corpus tampering (on a copy; the packaged corpus is never touched) ----------------------

def corpus_copy(tmp: Path, monkeypatch) -> Path:
    """A copy of the packaged corpus that `corpus_dir()` now points to (caches cleared)."""
    copy = tmp / "corpus"
    shutil.copytree(corpus.corpus_dir(), copy)
    monkeypatch.setattr(corpus, "corpus_dir", lambda: copy)
    plan.all_goldens.cache_clear()
    return copy


@pytest.fixture(autouse=True)
def _fresh_golden_cache():
    plan.all_goldens.cache_clear()
    yield
    plan.all_goldens.cache_clear()


def manifest_of(copy: Path) -> dict:
    return json.loads((copy / corpus.MANIFEST).read_text(encoding="utf-8"))


def write_manifest(copy: Path, manifest: dict, monkeypatch, repin: bool) -> None:
    """Rewrite the copy's manifest; `repin`: also update the pinned digest (a tamperer who edits the
    package source too), so the deeper checks are what must catch it."""
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    (copy / corpus.MANIFEST).write_text(text, encoding="utf-8")
    if repin:
        monkeypatch.setattr(digest, "MANIFEST_SHA256", integrity.sha256(text.encode("utf-8")))
