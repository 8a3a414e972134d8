"""Integrity of the golden corpus, verified on every read (not only by `optconform golden --check`).

What is verified each time the corpus is read (spec/golden-format.md, "Integrity"):

* the manifest is well-formed: a JSON object whose fields have the documented types (a malformed
  field is a one-line error naming it), no duplicated file, every file name a plain `*.npz` name
  inside the corpus folder (no `/`, no `..`);
* for the packaged corpus, the manifest's SHA-256 equals the digest pinned in the package source
  (`golden/digest.py`, written by `optconform golden --regenerate`): a golden rewritten together with
  its manifest entry no longer passes;
* every listed file exists and its SHA-256 equals the manifest's; no `*.npz` in the folder is
  unlisted; the file's own config names the rule, scenario, variant and steps of its entry.

Every problem raises GoldenIntegrityError (a GoldenFormatError, hence a ValueError: the CLI prints it on one line, exit 2).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from .format import GoldenFormatError

MANIFEST = "manifest.json"
_TOP_KEYS = {"format_version": int, "generator_version": str, "numpy_version": str, "files": list}
_ENTRY_KEYS = {"file": str, "sha256": str, "rule": str, "scenario": str, "variant": str, "kind": str, "steps": int}
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.,=\[\]+-]*\.npz")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KINDS = ("probe", "realistic")


class GoldenIntegrityError(GoldenFormatError):
    """The corpus is not what its manifest (or the pinned digest) says: tampered, truncated,
    incomplete or malformed."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _type_ok(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def validate_manifest(doc: Any, where: str) -> list[dict[str, Any]]:
    """The manifest's entries, after checking its schema; raises GoldenIntegrityError naming the
    first malformed field ("<where>: manifest is corrupt (...)")."""
    def bad(why: str) -> GoldenIntegrityError:
        return GoldenIntegrityError(f"{where}: manifest is corrupt ({why})")
    if not isinstance(doc, dict):
        raise bad(f"top level is {type(doc).__name__}, expected an object")
    for key, kind in _TOP_KEYS.items():
        if key not in doc:
            raise bad(f"field {key!r} is missing")
        if not _type_ok(doc[key], kind):
            raise bad(f"field {key!r} is {doc[key]!r}, expected {kind.__name__}")
    seen: set[str] = set()
    for i, entry in enumerate(doc["files"]):
        _validate_entry(entry, f"files[{i}]", bad)
        if entry["file"] in seen:
            raise bad(f"files[{i}]: {entry['file']!r} is listed twice")
        seen.add(entry["file"])
    return list(doc["files"])


def _validate_entry(entry: Any, label: str, bad) -> None:
    if not isinstance(entry, dict):
        raise bad(f"{label} is {type(entry).__name__}, expected an object")
    unknown = sorted(set(entry) - set(_ENTRY_KEYS))
    if unknown:
        raise bad(f"{label} has unknown field(s) {', '.join(map(repr, unknown))}")
    for key, kind in _ENTRY_KEYS.items():
        if key not in entry:
            raise bad(f"{label} lacks {key!r}")
        if not _type_ok(entry[key], kind):
            raise bad(f"{label}.{key} is {entry[key]!r}, expected {kind.__name__}")
    if not _FILE_NAME.fullmatch(entry["file"]) or ".." in entry["file"]:
        raise bad(f"{label}.file {entry['file']!r} is not a plain *.npz name inside the corpus folder")
    if not _SHA256.fullmatch(entry["sha256"]):
        raise bad(f"{label}.sha256 {entry['sha256']!r} is not 64 lowercase hex digits")
    if entry["kind"] not in _KINDS:
        raise bad(f"{label}.kind {entry['kind']!r}, expected one of {', '.join(_KINDS)}")
    if entry["steps"] < 1:
        raise bad(f"{label}.steps {entry['steps']!r} must be >= 1")


def confined(directory: Path, name: str) -> Path:
    """`directory / name`, refusing anything that resolves outside `directory`."""
    path = (directory / name).resolve()
    if path.parent != directory.resolve():
        raise GoldenIntegrityError(f"{name}: resolves outside the corpus folder {directory}")
    return path


def check_digest(manifest_bytes: bytes, pinned: str | None, where: str) -> None:
    """The manifest's SHA-256 against the digest pinned in the package (None: not pinned)."""
    if pinned is not None and sha256(manifest_bytes) != pinned:
        raise GoldenIntegrityError(
            f"{where}: SHA-256 {sha256(manifest_bytes)[:12]}... differs from the digest pinned in this optconform "
            f"(golden/digest.py: {pinned[:12]}...): the corpus was modified; reinstall optconform, or run "
            "`optconform golden --regenerate` if you changed the generator deliberately")


def file_problems(directory: Path, entries: list[dict[str, Any]]) -> list[str]:
    """Listed files that are missing, and *.npz files in the folder that are not listed."""
    listed = {e["file"] for e in entries}
    problems = [f"{e['file']}: file is missing" for e in entries if not (directory / e["file"]).is_file()]
    problems += [f"{name}: not listed in the manifest"
                 for name in sorted(p.name for p in directory.glob("*.npz") if p.name not in listed)]
    return problems


def verified_bytes(directory: Path, entry: dict[str, Any]) -> bytes:
    """The bytes of one listed golden file after its SHA-256 matched the manifest's."""
    path = confined(directory, entry["file"])
    if not path.is_file():
        raise GoldenIntegrityError(f"{entry['file']}: file is missing")
    data = path.read_bytes()
    if sha256(data) != entry["sha256"]:
        raise GoldenIntegrityError(f"{entry['file']}: SHA-256 differs from the manifest (modified or truncated)")
    return data


def check_entry_matches(entry: dict[str, Any], config: dict[str, Any]) -> None:
    """The golden's own config agrees with its manifest entry (rule, scenario, variant, steps, kind)."""
    for key in ("rule", "scenario", "variant", "steps", "kind"):
        if config.get(key) != entry[key]:
            raise GoldenIntegrityError(f"{entry['file']}: config {key} {config.get(key)!r} differs from the "
                                       f"manifest's {entry[key]!r}")
