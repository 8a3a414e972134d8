"""`corpus.regenerate` is deterministic: byte-identical on rerun and identical to the committed corpus."""
from __future__ import annotations

import json

import numpy as np

from optconform.golden import corpus


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_regenerate_twice_is_byte_identical_and_matches_committed(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    written_a = corpus.regenerate(a)
    b.mkdir()
    (b / "stale__thing.npz").write_bytes(b"old")          # regenerate removes stale golden files
    written_b = corpus.regenerate(b)
    assert not (b / "stale__thing.npz").exists()
    assert [p.name for p in written_a] == [p.name for p in written_b]
    files_a, files_b = _files(a), _files(b)
    assert sorted(files_a) == sorted(files_b)
    differing = [name for name in files_a if files_a[name] != files_b[name]]
    assert differing == []
    assert len(written_a) == len(corpus.case_specs())
    assert set(files_a) == {p.name for p in written_a} | {corpus.MANIFEST}

    # identical to the committed corpus: same file list, same order, same SHA-256 per file. Bytes are
    # promised for the NumPy that wrote it (numpy 1.23 and 2.x differ in the last float64 bit of a few
    # reductions), which the reference lane pins (tox.ini); every other NumPy is held to `golden --check`.
    committed = json.loads((corpus.corpus_dir() / corpus.MANIFEST).read_text(encoding="utf-8"))
    fresh = json.loads(files_a[corpus.MANIFEST])
    assert [e["file"] for e in fresh["files"]] == [e["file"] for e in committed["files"]]
    assert np.__version__ == committed["numpy_version"], (
        f"byte identity is checked with the NumPy that wrote the corpus ({committed['numpy_version']}, pinned in "
        f"tox -e reference); this is {np.__version__}")
    changed = [e["file"] for e, c in zip(fresh["files"], committed["files"]) if e["sha256"] != c["sha256"]]
    assert changed == [], f"regenerated files differ from the committed corpus: {changed[:10]}"
    assert fresh["files"] == committed["files"]
    assert fresh["format_version"] == committed["format_version"]
    assert fresh["generator_version"] == committed["generator_version"]
    # and the committed bytes themselves
    for name in files_a:
        if name != corpus.MANIFEST:
            assert (corpus.corpus_dir() / name).read_bytes() == files_a[name], name
