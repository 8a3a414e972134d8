"""`optconform golden --check` behaviour: `corpus.check(directory)` on a copy of the corpus.

Every tampering (modified, truncated, missing, extra, corrupt or missing manifest, a changed
trajectory with a matching SHA) gives a problem that names the file and what is wrong.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from optconform import cli
from optconform.golden import corpus
from optconform.golden.format import write_golden

SOURCE = corpus.corpus_dir()


def _manifest(directory: Path) -> dict:
    return json.loads((directory / corpus.MANIFEST).read_text(encoding="utf-8"))


def _listed(directory: Path) -> list[str]:
    return [e["file"] for e in _manifest(directory)["files"]]


def _members(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, arrays) of a golden file, read raw (no validation)."""
    with zipfile.ZipFile(path) as zf:
        config = json.loads(zf.read("config.json").decode("utf-8"))
        arrays = {name[:-4]: np.lib.format.read_array(io.BytesIO(zf.read(name)), allow_pickle=False)
                  for name in zf.namelist() if name != "config.json"}
    return config, arrays


def _rewrite_with(path: Path, member: str, index: tuple, value_fn) -> None:
    """Rewrite the zip with one value of one array member changed."""
    config, arrays = _members(path)
    arr = arrays[member].copy()
    arr[index] = value_fn(arr[index])
    arrays[member] = arr
    write_golden(path, config, arrays)


def _update_sha(directory: Path, filename: str) -> None:
    manifest = _manifest(directory)
    digest = hashlib.sha256((directory / filename).read_bytes()).hexdigest()
    for entry in manifest["files"]:
        if entry["file"] == filename:
            entry["sha256"] = digest
    (directory / corpus.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _copy_corpus(target: Path) -> Path:
    target.mkdir()
    for path in SOURCE.iterdir():
        if path.suffix == ".npz" or path.name == corpus.MANIFEST:
            shutil.copy2(path, target / path.name)
    return target


@pytest.fixture
def copy(tmp_path) -> Path:
    return _copy_corpus(tmp_path / "corpus")


# One copy with every file-level tampering applied to a different file, checked once (a full check
# recomputes all ~400 cases, ~1 s); each test then looks for the problem naming its file.
TAMPERED = "adamw__random_wide.npz"          # one value changed, manifest SHA left alone
BYTE_FLIPPED = "adam__random_wide.npz"       # one raw byte flipped inside an array member
TRUNCATED = "lamb__random_wide.npz"          # cut in half
TRUNCATED_SHA = "radam__random_wide.npz"     # cut in half, manifest SHA updated to match
MISSING = "sgd__random_wide.npz"             # deleted
EXTRA = "stowaway__random_wide.npz"          # present but unlisted
DROPPED = "nadam__random_wide.npz"           # present, removed from the manifest
RECOMPUTED = "adamw__lr_halved.npz"          # trajectory changed, SHA updated: only recomputation sees it
GRAD_CHANGED = "adam_l2__random_wide.npz"    # an input gradient changed, SHA updated


@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    d = _copy_corpus(tmp_path_factory.mktemp("tampered") / "corpus")
    listed_before = _listed(d)
    _rewrite_with(d / TAMPERED, "trajectory_0", (5, 1, 2), lambda v: np.nextafter(v, np.inf))
    # raw byte flip inside the stored (compressed) payload of trajectory_0.npy
    path = d / BYTE_FLIPPED
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("trajectory_0.npy")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0x01
    path.write_bytes(bytes(data))
    for name in (TRUNCATED, TRUNCATED_SHA):
        path = d / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _update_sha(d, TRUNCATED_SHA)
    (d / MISSING).unlink()
    shutil.copy2(d / TAMPERED, d / EXTRA)
    manifest = _manifest(d)
    manifest["files"] = [e for e in manifest["files"] if e["file"] != DROPPED]
    (d / corpus.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    # a relative change of 1e-9 at step 7 of the only tensor 'w'
    _rewrite_with(d / RECOMPUTED, "trajectory_0", (7, 1), lambda v: v * (1 + 1e-9))
    _update_sha(d, RECOMPUTED)
    _rewrite_with(d / GRAD_CHANGED, "grads_1", (10, 0), lambda v: v * 2 + 1)
    _update_sha(d, GRAD_CHANGED)
    problems, checked = corpus.check(d)
    return problems, checked, listed_before


def _problems_for(problems: list[str], filename: str) -> list[str]:
    return [p for p in problems if p.startswith(filename) or p.startswith(filename[:-4] + ".npz")]


def _only_problem(problems: list[str], filename: str) -> str:
    mine = _problems_for(problems, filename)
    assert len(mine) == 1, problems
    return mine[0]


def test_clean_copy_passes(copy):
    problems, checked = corpus.check(copy)
    assert problems == []
    assert checked == len(_listed(copy)) == len(corpus.case_specs())
    assert checked == len(list(copy.glob("*.npz")))


def test_tampered_checks_report_nothing_else(tampered):
    problems, checked, listed = tampered
    culprits = (TAMPERED, BYTE_FLIPPED, TRUNCATED, TRUNCATED_SHA, MISSING, EXTRA, DROPPED, RECOMPUTED, GRAD_CHANGED)
    assert all(any(p.startswith(c) for c in culprits) for p in problems), problems
    assert len(problems) == 10, problems           # DROPPED gives two (unlisted + absent from the manifest)
    # checked: every listed file except the dropped, missing, SHA-mismatched and unreadable ones
    assert checked == len(listed) - 1 - 1 - 3 - 1


def test_tampered_array_value_is_caught_by_sha(tampered):
    msg = _only_problem(tampered[0], TAMPERED)
    assert "SHA-256 differs from the manifest" in msg


def test_flipped_byte_inside_array_member_is_caught(tampered):
    msg = _only_problem(tampered[0], BYTE_FLIPPED)
    assert "SHA-256 differs from the manifest" in msg


def test_truncated_file_is_caught(tampered):
    msg = _only_problem(tampered[0], TRUNCATED)
    assert "SHA-256 differs" in msg and "truncated" in msg


def test_truncated_file_with_matching_sha_is_unreadable(tampered):
    msg = _only_problem(tampered[0], TRUNCATED_SHA)
    assert "unreadable or truncated" in msg


def test_missing_file_is_caught(tampered):
    msg = _only_problem(tampered[0], MISSING)
    assert "file is missing" in msg


def test_extra_unlisted_file_is_caught(tampered):
    msg = _only_problem(tampered[0], EXTRA)
    assert "not listed in the manifest" in msg


def test_file_dropped_from_manifest_is_caught(tampered):
    mine = _problems_for(tampered[0], DROPPED)
    assert len(mine) == 2, tampered[0]
    assert any("not listed in the manifest" in p for p in mine)
    assert any("absent from the manifest" in p for p in mine)


def test_changed_trajectory_with_updated_sha_is_caught_by_recomputation(tampered):
    msg = _only_problem(tampered[0], RECOMPUTED)
    assert "differs from the reference" in msg
    assert "'w'" in msg and "(step 7)" in msg


def test_changed_gradient_with_updated_sha_is_caught_by_recomputation(tampered):
    msg = _only_problem(tampered[0], GRAD_CHANGED)
    assert "differs from the reference" in msg and "'layer/bias'" in msg


def test_corrupt_manifest_is_caught(copy):
    (copy / corpus.MANIFEST).write_text("{ this is not json", encoding="utf-8")
    problems, checked = corpus.check(copy)
    assert checked == 0 and len(problems) == 1
    assert corpus.MANIFEST in problems[0] and "manifest is corrupt" in problems[0]


def test_manifest_without_files_is_corrupt(copy):
    (copy / corpus.MANIFEST).write_text(json.dumps({"format_version": 1}), encoding="utf-8")
    problems, checked = corpus.check(copy)
    assert checked == 0 and len(problems) == 1
    assert corpus.MANIFEST in problems[0] and "manifest is corrupt" in problems[0]


def test_missing_manifest_is_caught(copy):
    (copy / corpus.MANIFEST).unlink()
    problems, checked = corpus.check(copy)
    assert checked == 0 and len(problems) == 1
    assert corpus.MANIFEST in problems[0] and "manifest is missing" in problems[0]


def test_cli_golden_check_on_installed_corpus(capsys):
    assert cli.main(["golden", "--check"]) == 0
    out = capsys.readouterr().out
    assert f"{len(corpus.case_specs())} files match the manifest and the reference" in out
