"""Results JSON (versioned schema): environment, per-(case, device, dtype) verdicts; read and merge.

Schema `optconform-results` v1: {schema, schema_version, optconform_version, created, python, os,
numpy, environments: [{framework, version, devices: {device: model}, gpu_driver}], results:
[CaseResult...], summary: {verdict: count}, seconds[, merged_from]}. See spec/results-format.md.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np

import optconform
from optconform.golden.fsio import atomic_write

SCHEMA = "optconform-results"
SCHEMA_VERSION = 1


def gpu_driver() -> str:
    """The NVIDIA driver version where nvidia-smi exists, else ''."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ""
    try:
        out = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def document(results: Iterable[dict[str, Any]], environments: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    results = list(results)
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "optconform_version": optconform.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(), "os": platform.platform(), "numpy": np.__version__,
        "environments": environments, "results": results,
        "summary": dict(Counter(r["verdict"] for r in results)), "seconds": round(seconds, 3),
    }


def write(path: str | Path, doc: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(doc, indent=1, sort_keys=False) + "\n")


def read(path: str | Path) -> dict[str, Any]:
    """Read a results file; ValueError names the file and what is wrong."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read results JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not an optconform results file (schema {doc.get('schema') if isinstance(doc, dict) else None!r})")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version {doc.get('schema_version')!r}; this optconform reads {SCHEMA_VERSION}")
    if not isinstance(doc.get("results"), list):
        raise ValueError(f"{path}: 'results' is not a list")
    from optconform.validate import results_rows
    results_rows(str(path), doc["results"], doc.get("environments", []))
    return doc


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One document from several environments' runs (rows keep their framework and version)."""
    environments, results, seconds = [], [], 0.0
    for doc in docs:
        environments.extend(doc.get("environments", []))
        results.extend(doc["results"])
        seconds += float(doc.get("seconds") or 0.0)
    merged = document(results, environments, seconds)
    merged["merged_from"] = [{"created": d.get("created"), "python": d.get("python"), "os": d.get("os"),
                              "numpy": d.get("numpy")} for d in docs]
    return merged
