"""The golden corpus: which (rule, scenario, variant) cases exist, how they are generated and checked.

One config source: the scenario data and the resolved hyper-parameters that produced a golden
trajectory are stored in the same file, and adapters read exactly those (ONNX #7749 is the failure
this prevents). `regenerate()` is deterministic; `check()` recomputes every case from the reference
and verifies the manifest.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from optconform.reference import get_rule, rules, trajectory
from optconform.reference.tolerance import error_units, tolerance

from optconform.golden.fsio import atomic_write

from . import digest as digest_module
from . import integrity
from .format import FORMAT_VERSION, Golden, GoldenFormatError, read_golden, write_golden
from .integrity import GoldenIntegrityError
from .scenarios import Scenario, all_scenarios, runs

GENERATOR_VERSION = "1"
MANIFEST = integrity.MANIFEST

#: Extra hyper-parameter sets per rule, run on VARIANT_SCENARIOS (the default set runs on every
#: applicable scenario).
VARIANTS: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    "sgd_momentum": {"nesterov": {"nesterov": True}, "dampening": {"dampening": 0.5}},
    "sgd_momentum_inside": {"nesterov": {"nesterov": True}},
    "adagrad": {"lr_decay": {"lr_decay": 0.1, "initial_accumulator_value": 0.1}},
    "rmsprop": {"centered": {"centered": True}},
    "rmsprop_momentum": {"centered": {"centered": True}},
    "rmsprop_eps_inside": {"centered": {"centered": True}},
    "mxnet_adam": {"rescale_clip": {"rescale_grad": 0.5, "clip_value": 0.5}},
    "lamb": {"bounds": {"trust_lower_bound": 0.5, "trust_upper_bound": 2.0}},
    "nadam": {"keras_schedule": {"momentum_decay": 1.0}},
    # Muon: plain momentum, and optax's "dion" coefficients of the first step with 4 steps
    "muon": {"no_nesterov": {"nesterov": False}, "ns_dion": {"ns_a": 4.0848, "ns_b": -6.8946, "ns_c": 2.927, "ns_steps": 4}},
    "keras_muon": {"no_nesterov": {"nesterov": False}, "rms_rate": {"rms_rate": 0.3}},
    "optax_muon": {"no_nesterov": {"nesterov": False}},
    # Adafactor: another decay-rate exponent and clipping threshold; optax factoring small tensors
    "adafactor": {"decay_clip": {"beta2_decay": -0.5, "clip_threshold": 2.0}},
    "keras_adafactor": {"decay_clip": {"beta2_decay": -0.5, "clip_threshold": 2.0}},
    "optax_adafactor": {"factored": {"min_dim_size_to_factor": 1}},
    # schedule-free: other averaging weights (t^r, lr_max^power)
    "schedulefree_adamw": {"weighting": {"r": 1.0, "weight_lr_power": 1.0}},
    "optax_schedule_free_adamw": {"weighting": {"weight_lr_power": 1.0}},
}
VARIANT_SCENARIOS = ("first_steps", "lr_halved", "grad_drop", "random_wide", "muon_varied", "muon_mixed",
                     "adafactor_3d", "sf_warmup")
#: Realistic closed-loop streams, one per rule (rotated), to keep the corpus small.
CLOSED_LOOP = ("quadratic", "rosenbrock", "logistic")


@dataclass(frozen=True)
class CaseSpec:
    rule: str
    scenario: Scenario
    variant: str
    hp: Mapping[str, Any]

    @property
    def name(self) -> str:
        return f"{self.rule}__{self.scenario.name}" + (f"__{self.variant}" if self.variant != "default" else "")


def corpus_dir() -> Path:
    """The corpus folder inside the installed package (golden/corpus in a source checkout)."""
    return Path(str(resources.files("optconform.golden"))) / "corpus"


def case_specs() -> list[CaseSpec]:
    """Every golden case: each preset x each applicable scenario (+ variants on a few)."""
    scenarios = all_scenarios()
    specs = []
    for index, (name, rule) in enumerate(rules().items()):
        closed_loop = CLOSED_LOOP[index % len(CLOSED_LOOP)]
        for scenario in scenarios.values():
            if scenario.name in CLOSED_LOOP and scenario.name != closed_loop:
                continue
            if not runs(scenario, rule.family) or not scenario.applies(rule.knobs):
                continue
            specs.append(CaseSpec(name, scenario, "default", _hp_for(rule, scenario, {})))
            for variant, extra in VARIANTS.get(name, {}).items():
                if scenario.name in VARIANT_SCENARIOS:
                    specs.append(CaseSpec(name, scenario, variant, _hp_for(rule, scenario, extra)))
    return specs


def _hp_for(rule, scenario: Scenario, extra: Mapping[str, Any]) -> dict[str, Any]:
    hp = {k: v for k, v in scenario.hp.items() if k in rule.defaults}
    hp.update(extra)
    return hp


def _run(spec: CaseSpec):
    s = spec.scenario
    eta = s.eta if s.eta is not None else (1.0,) * s.steps
    return trajectory(spec.rule, dict(s.params), list(s.grads), lr=list(s.lr), eta=list(eta), **spec.hp)


def build_case(spec: CaseSpec) -> tuple[dict, dict]:
    """(config, arrays) of one golden file."""
    run = _run(spec)
    s = spec.scenario
    names = list(s.params)
    hp = {k: v for k, v in run.hp.items() if k not in ("lr", "eta")}
    rule = get_rule(spec.rule)
    config = {
        "format_version": FORMAT_VERSION,
        "generator_version": GENERATOR_VERSION,
        "rule": spec.rule,
        "family": rule.family,
        "knobs": dict(rule.knobs),
        "scenario": s.name,
        "variant": spec.variant,
        "kind": s.kind,
        "observes": s.observes,
        "steps": s.steps,
        "tensors": [{"name": n, "shape": list(np.shape(s.params[n]))} for n in names],
        "hp": {k: (list(v) if isinstance(v, tuple) else v) for k, v in hp.items()},
        "state_names": sorted(run.state),
        "per_tensor_state": sorted(k for k, tree in run.state.items()
                                   if any(np.ndim(v) == 1 and np.ndim(s.params[n]) != 0 for n, v in tree.items())),
    }
    arrays = {"lr": np.asarray(run.hp["lr"], dtype=np.float64),
              "eta": np.asarray(run.hp["eta"], dtype=np.float64)}
    for i, n in enumerate(names):
        arrays[f"params0_{i}"] = np.asarray(s.params[n], dtype=np.float32)
        arrays[f"grads_{i}"] = np.stack([np.asarray(g[n], dtype=np.float32) for g in s.grads])
        arrays[f"trajectory_{i}"] = run.params[n]
        for state_name, tree in run.state.items():
            arrays[f"state_{state_name}_{i}"] = tree[n]
    return config, arrays


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_packaged(directory: Path | None) -> bool:
    return directory is None


def regenerate(directory: Path | None = None) -> list[Path]:
    """Write every golden file and the manifest, atomically; deterministic (byte-identical on rerun).
    Regenerating the packaged corpus also rewrites the pinned manifest digest (golden/digest.py)."""
    packaged = _is_packaged(directory)
    directory = Path(directory or corpus_dir())
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.npz"):
        old.unlink()
    written, entries = [], []
    for spec in case_specs():
        config, arrays = build_case(spec)
        path = directory / f"{spec.name}.npz"
        write_golden(path, config, arrays)
        written.append(path)
        entries.append({"file": path.name, "sha256": _sha256(path), "rule": spec.rule,
                        "scenario": spec.scenario.name, "variant": spec.variant, "kind": spec.scenario.kind,
                        "steps": spec.scenario.steps})
    manifest = {"format_version": FORMAT_VERSION, "generator_version": GENERATOR_VERSION,
                "numpy_version": np.__version__, "files": entries}
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    atomic_write(directory / MANIFEST, text)
    if packaged:
        _write_digest(integrity.sha256(text.encode("utf-8")))
    return written


def _write_digest(digest: str) -> None:
    """Pin the packaged manifest's SHA-256 in golden/digest.py (read on every corpus read)."""
    path = Path(str(resources.files("optconform.golden"))) / "digest.py"
    atomic_write(path, f'"""SHA-256 of golden/corpus/{MANIFEST}, written by `optconform golden --regenerate`; every read of the\n'
                       'packaged corpus checks the manifest against it (golden/integrity.py)."""\n'
                       f'MANIFEST_SHA256 = "{digest}"\n')
    digest_module.MANIFEST_SHA256 = digest


def _pinned(packaged: bool) -> str | None:
    return digest_module.MANIFEST_SHA256 if packaged else None


def load_manifest(directory: Path | None = None) -> dict:
    """The manifest, schema-validated (and, for the packaged corpus, checked against the pinned digest);
    raises GoldenFormatError / GoldenIntegrityError naming the problem."""
    packaged = _is_packaged(directory)
    directory = Path(directory or corpus_dir())
    path = directory / MANIFEST
    if not path.is_file():
        raise GoldenFormatError(f"{path}: manifest is missing; run `optconform golden --regenerate`")
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise GoldenFormatError(f"{path}: manifest is corrupt ({exc})") from exc
    integrity.validate_manifest(manifest, str(path))
    integrity.check_digest(raw, _pinned(packaged), str(path))
    return manifest


def iter_goldens(directory: Path | None = None) -> Iterator[Golden]:
    """Every golden case listed in the manifest, each verified on read (golden/integrity.py): manifest
    schema and pinned digest, no missing or unlisted file, every SHA-256, entry vs config. Raises
    GoldenIntegrityError / GoldenFormatError on the first problem."""
    packaged = _is_packaged(directory)
    directory = Path(directory or corpus_dir())
    manifest = load_manifest(None if packaged else directory)
    if manifest["format_version"] != FORMAT_VERSION:
        raise GoldenIntegrityError(f"{MANIFEST}: format_version {manifest['format_version']!r}, this reader "
                                   f"understands {FORMAT_VERSION}")
    problems = integrity.file_problems(directory, manifest["files"])
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise GoldenIntegrityError(f"{problems[0]}{more}; run `optconform golden --check`")
    for entry in manifest["files"]:
        data = integrity.verified_bytes(directory, entry)
        golden = read_golden(directory / entry["file"], data)
        integrity.check_entry_matches(entry, golden.config)
        yield golden


def check(directory: Path | None = None) -> tuple[list[str], int]:
    """Verify the manifest and recompute every case from the reference.

    Returns (problems, number of files checked); each problem names the file and what is wrong.
    Recomputed trajectories must agree within the float64 tolerance model (not bit-exactly, so a
    check on another NumPy build or CPU passes when the maths is the same).
    """
    packaged = _is_packaged(directory)
    directory = Path(directory or corpus_dir())
    try:
        manifest = load_manifest(None if packaged else directory)
    except GoldenFormatError as exc:
        return [str(exc)], 0
    problems: list[str] = []
    for key, want in (("format_version", FORMAT_VERSION), ("generator_version", GENERATOR_VERSION)):
        if manifest.get(key) != want:
            problems.append(f"{MANIFEST}: {key} {manifest.get(key)!r}, this optconform writes {want!r} (regenerate)")
    listed = {e["file"] for e in manifest["files"]}
    for extra in sorted(p.name for p in directory.glob("*.npz") if p.name not in listed):
        problems.append(f"{extra}: not listed in the manifest")
    expected = {spec.name + ".npz": spec for spec in case_specs()}
    for missing in sorted(set(expected) - listed):
        problems.append(f"{missing}: generated by this version but absent from the manifest (regenerate)")
    for stale in sorted(listed - set(expected)):
        problems.append(f"{stale}: listed in the manifest but no longer generated by this version (regenerate)")
    checked = 0
    for entry in manifest["files"]:
        try:
            golden = read_golden(directory / entry["file"], integrity.verified_bytes(directory, entry))
            integrity.check_entry_matches(entry, golden.config)
        except GoldenFormatError as exc:
            problems.append(str(exc))
            continue
        problems.extend(_recompute(golden))
        checked += 1
    return problems, checked


def _recompute(golden: Golden) -> list[str]:
    try:
        run = trajectory(golden.rule, dict(golden.params0), list(golden.grads), **golden.run_hp)
    except ValueError as exc:
        return [f"{golden.name}.npz: the reference rejects its config: {exc}"]
    problems = []
    if sorted(run.state) != sorted(golden.state):
        problems.append(f"{golden.name}.npz: state names {sorted(golden.state)} differ from the reference's "
                        f"{sorted(run.state)}")
    pairs = [(f"tensor {name!r}", golden.params[name], run.params[name]) for name in golden.tensors]
    pairs += [(f"state {s!r} of tensor {name!r}", golden.state[s][name], run.state[s][name])
              for s in golden.state if s in run.state for name in golden.tensors]
    for label, stored, fresh in pairs:
        units = error_units(stored, fresh, tolerance(fresh, "float64", golden.config["knobs"], hp=golden.run_hp))
        worst = float(np.max(units)) if units.size else 0.0
        if worst > 1.0:
            t = int(np.unravel_index(np.argmax(units), units.shape)[0])
            problems.append(f"{golden.name}.npz: {label} differs from the reference by {worst:.3g} "
                            f"float64 tolerance units (step {t})")
    return problems
