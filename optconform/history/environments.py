"""Throwaway environments, one per release: install the release and this checkout, run the matrix.

Each release gets `<env_dir>/<framework>-<release>`: `python -m venv`, `pip install` of the release's
requirements (releases.toml), `pip install --no-deps` of its `no_deps` packages (the ports whose
declared pins would move the pinned torch: the bert lane of tox.ini installs them so), `pip install
--no-deps` of this source checkout, then `optconform run
--framework F --device cpu --dtype float64,float32 --json` inside it. An environment is reused while
its requirements are unchanged (a `requirements.txt` inside records them) and removed after the run
unless kept; pip's own wheel cache makes rebuilding cheap.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from .. import results

#: dtypes of a history run (the issue's "float64 and float32"; CPU only).
DTYPES = "float64,float32"


@dataclass(frozen=True)
class Release:
    framework: str
    label: str
    requirements: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    #: installed with `pip install --no-deps` after `requirements`
    no_deps: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        return f"{self.framework}-{self.label}".replace(" ", "-")


def known(framework: str) -> list[Release]:
    """The releases of `framework` in releases.toml, oldest first; ValueError for a framework without.
    A framework's own `requirements` and `no_deps` lists go before each release's."""
    table = tomllib.loads(resources.files("optconform.history").joinpath("releases.toml").read_text("utf-8"))
    if framework not in table:
        raise ValueError(f"history: no releases listed for {framework!r}; listed: {', '.join(table)}")
    entry = table[framework]
    env = tuple(sorted((k, str(v)) for k, v in entry.get("env", {}).items()))
    return [Release(framework, r["release"], tuple(entry.get("requirements", []) + r["requirements"]), env,
                    tuple(entry.get("no_deps", []) + r.get("no_deps", []))) for r in entry["release"]]


def select(framework: str, labels: list[str] | None) -> list[Release]:
    """The listed releases (by label, in the order given), or every known one."""
    releases = known(framework)
    if not labels:
        return releases
    by_label = {r.label: r for r in releases}
    unknown = [label for label in labels if label not in by_label]
    if unknown:
        raise ValueError(f"history: unknown {framework} release(s) {', '.join(unknown)}; "
                         f"known: {', '.join(by_label)}")
    return [by_label[label] for label in labels]


def source_commit() -> str:
    """The git commit of the source checkout (recorded with each history), or '' outside git."""
    try:
        done = subprocess.run(["git", "-C", str(source_root()), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return ""
    dirty = subprocess.run(["git", "-C", str(source_root()), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return done.stdout.strip() + ("+dirty" if dirty else "") if done.returncode == 0 else ""


def source_root() -> Path:
    """The source checkout this optconform runs from (history installs it into each environment)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise ValueError("history installs this checkout into each release's environment: "
                         "run it from a source checkout (pip install -e .)")
    return root


def _own_requirements() -> list[str]:
    """optconform's own install requirements (numpy), installed with the release's: the checkout
    itself goes in with --no-deps so that it cannot move the release's pins."""
    from importlib import metadata
    return [r for r in metadata.requires("optconform") or [] if "extra ==" not in r]


def _pip(python: Path, args: list[str], log: Callable[[str], None]) -> None:
    log(f"  pip install {' '.join(args)}")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def prepare(release: Release, env_dir: Path, log: Callable[[str], None]) -> Path:
    """The environment of `release` with its requirements and this checkout installed; its python."""
    path = env_dir / release.slug
    python = path / "bin" / "python"
    marker = path / "requirements.txt"
    requirements = list(release.requirements) + _own_requirements()
    no_deps = [f"--no-deps {r}" for r in release.no_deps]
    wanted = "\n".join(requirements + no_deps) + "\n"
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        _pip(python, requirements, log)
        if release.no_deps:
            _pip(python, ["--no-deps", *release.no_deps], log)
        marker.write_text(wanted)
    _pip(python, ["--no-deps", "--force-reinstall", str(source_root())], log)
    return python


def run(release: Release, env_dir: Path, keep: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Run the matrix of `release` in its environment: {release, requirements, started, seconds,
    exit_code, error, doc} with `doc` the results document (None when the run produced none)."""
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    clock = time.perf_counter()
    record: dict[str, Any] = {"release": release.label,
                              "requirements": list(release.requirements) + [f"--no-deps {r}" for r in release.no_deps],
                              "started": started, "seconds": 0.0, "exit_code": None, "error": "", "doc": None}
    out = env_dir / f"{release.slug}.json"              # scratch: the history JSON keeps the document
    try:
        python = prepare(release, env_dir, log)
        log(f"  optconform run --framework {release.framework} (cpu, {DTYPES})")
        env = {**os.environ, **dict(release.env), "OPTCONFORM_REQUIRE": release.framework}
        done = subprocess.run([str(python.parent / "optconform"), "run", "--framework", release.framework,
                               "--device", "cpu", "--dtype", DTYPES, "--quiet", "--json", str(out.resolve())],
                              env=env, cwd=env_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        record["exit_code"] = done.returncode
        if done.returncode in (0, 1) and out.is_file():
            record["doc"] = results.read(out)
        else:
            record["error"] = (done.stderr.strip().splitlines() or ["no output"])[-1]
    except subprocess.CalledProcessError as exc:
        record["error"] = f"environment failed: {(exc.stderr or '').strip().splitlines()[-1:] or exc}"
    finally:
        if not keep:
            shutil.rmtree(env_dir / release.slug, ignore_errors=True)
    record["seconds"] = round(time.perf_counter() - clock, 1)
    return record
