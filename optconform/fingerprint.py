"""Fingerprinting: infer the knob vector a black-box optimizer implements from its probe trajectories.

Every knob combination of the family (deduplicated by `relevant_knobs`: combinations with the same
maths count once) is a candidate; each candidate's reference trajectory on the probe scenarios is
compared with the native one in tolerance units. The fingerprint is the best candidate; the margin is
how far the runner-up (the best candidate that differs from it) is from fitting. When no candidate
fits (worst error > 1 tolerance unit) the optimizer implements no rule of the spec and the nearest
vector is shown.

The search is staged: all candidates are scored on the short probes first, the closest few are then
scored on every scenario. A candidate's error is a maximum over scenarios, so the running maximum is a
lower bound: a candidate is no longer compared once that bound ranks it behind the last of the few kept
so far (or, among the presets, behind the nearest so far). The result is the one the full comparison
gives; only the reference trajectories of candidates that cannot win are not computed (the mutation
suite's 134 checks: the same reports, 185 s -> 43 s with the caches of optconform.compare).
"""
from __future__ import annotations

import bisect
import functools
import itertools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from optconform.reference.precision import ScalarPrecision
from optconform.golden.format import Golden
from optconform.reference import families, get_rule, knobs as spec_knobs, rules
from optconform.reference.rules import derive, relevant_knobs

from . import compare

#: Candidates kept after the first (short-probe) stage.
SHORTLIST = 12
#: Probes with at most this many steps form the first stage.
SHORT_STEPS = 10



@dataclass
class Fingerprint:
    family: str
    knobs: dict[str, str]                 # best knob vector (relevant knobs only)
    units: float                          # its worst error, tolerance units
    runner_up: dict[str, str] = field(default_factory=dict)
    runner_up_units: float = float("inf")
    preset: str = ""                      # a preset with exactly these knobs, if any
    nearest_preset: str = ""
    nearest_preset_units: float = float("inf")
    #: knob -> the values of every candidate that fits too (the probes cannot tell them apart)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return self.units <= 1.0

    @property
    def margin(self) -> float:
        """Runner-up error minus best error, in tolerance units (<= 0 when the runner-up fits too:
        the probes cannot tell the two apart, and the best is the one nearer the claimed rule)."""
        return self.runner_up_units - self.units

    def summary_knobs(self) -> dict[str, str]:
        """The headline knobs: weight_decay in {none, coupled, decoupled (x current lr), decoupled_unscaled,
        decoupled_schedule (x eta), decoupled_lr_ratio (x lr/lr0)} — always the decay_scaling the table
        shows — bias_correction, eps_placement, decay_order, + all others."""
        k = self.knobs
        decay = k.get("decay", "none")
        if decay == "decoupled":
            scaling = k.get("decay_scaling")
            decay = "decoupled" if scaling in ("lr", "corrected_lr", None) else f"decoupled_{scaling}"
        out = {"weight_decay": decay,
               "bias_correction": k.get("bias_correction", "n/a"),
               "eps_placement": k.get("eps_placement", "n/a"),
               "decay_order": k.get("decay_order", "n/a")}
        out.update({name: value for name, value in k.items() if name not in out})
        return out

    def compact(self) -> str:
        """A short form for tables, e.g. 'wd=decoupled/lr/before eps=outside bc=on'."""
        return compact(self.knobs) + ("" if self.fits else " (no fit)")

    def to_json(self) -> dict[str, Any]:
        def num(x):
            return x if np.isfinite(x) else None
        return {"family": self.family, "knobs": self.summary_knobs() if self.fits else {}, "fits": self.fits,
                "units": num(self.units), "preset": (self.preset or None) if self.fits else None,
                "not_told_apart": self.ambiguous if self.fits else {},
                "nearest_knobs": {} if self.fits else self.summary_knobs(),
                "runner_up": self.runner_up, "runner_up_units": num(self.runner_up_units),
                "margin": num(self.margin), "nearest_preset": self.nearest_preset,
                "nearest_preset_units": num(self.nearest_preset_units)}

    def describe(self) -> str:
        vec = ", ".join(f"{k}={v}" for k, v in self.knobs.items())
        if self.fits:
            head = f"{vec} (within {self.units:.3g} tolerance units"
            head += f"; = preset {self.preset!r})" if self.preset else "; no named preset has exactly these knobs)"
            if self.ambiguous:
                head += "; not told apart by these probes: " + ", ".join(
                    f"{k} ({' | '.join(v)})" for k, v in self.ambiguous.items())
        elif not np.isfinite(self.units):
            head = (f"no knob combination of the {self.family!r} family fits: the optimizer's output is NaN/Inf "
                    f"where every candidate's is finite")
            return head
        else:      # nothing established: the nearest vector is shown as such, not as the optimizer's knobs
            return (f"no knob combination of the {self.family!r} family fits: the nearest is "
                    f"{self.units:.3g} tolerance units off ({vec}), the nearest preset "
                    f"{self.nearest_preset!r} at {self.nearest_preset_units:.3g}; neither is a finding")
        if self.runner_up:
            diff = ", ".join(f"{k}={v}" for k, v in self.runner_up.items() if self.knobs.get(k) != v)
            head += f"; runner-up ({diff or 'same knobs'}) at {self.runner_up_units:.3g} units"
        return head


def _visible(vector: Mapping[str, str], family: str, clipped: bool) -> dict[str, str]:
    """The relevant knobs, without clip_scope when no probe clips (it cannot change anything then)."""
    kept = relevant_knobs(vector, family)
    if not clipped:
        kept.pop("clip_scope", None)
    return kept


_SHORT = {"bias_correction": "bc", "eps_placement": "eps", "amsgrad": "ams", "trust_ratio": "trust",
          "trust_ratio_scope": "scope", "momentum_form": "mom", "nadam_schedule": "sched", "clip_scope": "clip"}


def compact(knobs: Mapping[str, str]) -> str:
    """Relevant knobs in a short form: decay first (coupling/scaling/order), then the others."""
    decay = knobs.get("decay", "none")
    if decay == "decoupled" and "decay_at" in knobs:       # schedule-free: where, not how scaled
        decay += f"/{knobs['decay_at']}"
    elif decay == "decoupled":
        decay += f"/{knobs.get('decay_scaling', '?')}/{knobs.get('decay_order', '?')}"
    parts = [f"wd={decay}"]
    parts += [f"{_SHORT.get(k, k)}={v}" for k, v in knobs.items()
              if k not in ("decay", "decay_scaling", "decay_order", "decay_at") and not (k == "amsgrad" and v == "off")
              and not (k == "trust_ratio" and v == "off") and not (k == "clip_scope" and v == "gradient")]
    return " ".join(parts)


def candidate_vectors(family: str, clipped: bool = True) -> list[dict[str, str]]:
    """Every distinct (relevant) knob vector of a family."""
    fam = families()[family]
    names = list(fam.knobs)
    seen, out = set(), []
    for combo in itertools.product(*(fam.knobs[k] for k in names)):
        full = dict(zip(names, combo))
        key = tuple(sorted(_visible(full, family, clipped).items()))
        if key not in seen:
            seen.add(key)
            out.append(full)
    return out


def _rule_name(base: str, vector: Mapping[str, str]) -> str:
    preset = get_rule(base)
    overrides = {k: v for k, v in vector.items() if preset.knobs.get(k) != v}
    return derive(base, overrides).name


def _preset_with(family: str, vector: Mapping[str, str]) -> str:
    want = relevant_knobs(vector, family)
    for name, rule in rules().items():
        if rule.family == family and rule.relevant_knobs() == want:
            return name
    return ""


@functools.cache
def _search_space(base: str, clipped: bool) -> tuple[tuple[Mapping[str, str], Mapping[str, str], str], ...]:
    """(knob vector, its visible knobs, its rule name) of every candidate of the family of preset `base`
    (candidate_vectors), built once per process."""
    family = get_rule(base).family
    return tuple((MappingProxyType(v), MappingProxyType(_visible(v, family, clipped)), _rule_name(base, v))
                 for v in candidate_vectors(family, clipped))


def fingerprint(runs: Sequence[tuple[Golden, Mapping[str, np.ndarray]]], base: str, dtype: str,
                precision: ScalarPrecision | None = None, overrides: Mapping[str, Any] | None = None) -> Fingerprint:
    """Fingerprint the native `runs` (golden scenario, native params trajectory, in `dtype`) of an
    optimizer whose probes come from preset `base`; candidates are scored with
    optconform.compare.worst_units (precision / overrides as for the native run)."""
    family = get_rule(base).family
    clipped = any(golden.hp.get(k) is not None for golden, _ in runs
                  for k in ("clip_value", "clip_norm", "clip_global_norm"))
    vectors, visible, names = zip(*_search_space(base, clipped))

    def worst(i: int, subset, stop=None) -> float:
        return compare.worst_units(names[i], subset, dtype, precision, overrides, stop)

    claimed = relevant_knobs(get_rule(base).knobs, family)
    # knobs in which each candidate differs from the preset whose probes ran
    distance = [sum(vec.get(k) != claimed.get(k) for k in set(vec) | set(claimed) if k != "clip_scope")
                for vec in visible]

    def rank(units: float, i: int) -> tuple:
        """Every candidate that fits (<= 1 unit) is as good as any other: the probes cannot tell them
        apart (e.g. every decay variant when the probes' wd is 0; the tolerance, which depends on the
        candidate's knobs, would otherwise pick one by noise). Among those, the one nearest the claimed
        preset wins; candidates that do not fit rank by their error."""
        return (max(units, 1.0), distance[i], units)

    short = [r for r in runs if r[0].steps <= SHORT_STEPS] or list(runs)
    first = _best_few(len(vectors), SHORTLIST, lambda i, stop: worst(i, short, stop), rank)
    scored = sorted(((worst(i, runs), i) for i in first), key=lambda x: rank(*x))
    best_units, best = scored[0]
    best_vec = dict(visible[best])
    fp = Fingerprint(family=family, knobs=best_vec, units=best_units, preset=_preset_with(family, vectors[best]))
    fp.ambiguous = _not_told_apart([visible[i] for units, i in scored if units <= 1.0])
    others = sorted((units, i) for units, i in scored[1:] if visible[i] != best_vec)
    if others:                 # the closest different vector by error alone (margin <= 0: not told apart)
        fp.runner_up_units, i = others[0]
        fp.runner_up = dict(visible[i])
    presets = [name for name, rule in rules().items() if rule.family == family]
    fp.nearest_preset_units, fp.nearest_preset = _nearest(
        presets, lambda name, stop: compare.worst_units(name, runs, dtype, precision, overrides, stop))
    return fp


def _best_few(count: int, keep: int, score, rank) -> list[int]:
    """The `keep` indices of range(count) with the lowest rank(score(i), i), ties in index order: what
    ``sorted(range(count), key=lambda i: rank(score(i), i))[:keep]`` gives. ``score(i, stop)`` is a
    maximum over runs (compare.worst_units): once the running value ranks i behind the last index kept
    so far (rank is nondecreasing in it), `stop` ends it, and i, which can only rank further behind,
    is not kept."""
    kept: list[tuple[tuple, int]] = []
    for i in range(count):
        last = kept[-1][0] if len(kept) == keep else None
        ranked = rank(score(i, None if last is None else (lambda value, i=i, last=last: rank(value, i) >= last)), i)
        if last is None or ranked < last:
            bisect.insort(kept, (ranked, i))
            del kept[keep:]
    return [i for _, i in kept]


def _nearest(names: Sequence[str], score) -> tuple[float, str]:
    """min((score(name), name) for name in names), each ``score(name, stop)`` (a maximum over runs:
    compare.worst_units) ended by `stop` once its running value puts it behind the nearest so far."""
    best = (score(names[0], None), names[0])
    for name in names[1:]:
        units = score(name, lambda value, name=name, best=best: (value, name) > best)
        best = min(best, (units, name))
    return best


def _not_told_apart(fitting: list[Mapping[str, str]]) -> dict[str, list[str]]:
    """The knobs in which vectors that all fit differ: knob -> their values (the probes cannot tell)."""
    if len(fitting) < 2:
        return {}
    out = {}
    for knob in sorted({k for v in fitting for k in v}):
        values = sorted({v.get(knob, "n/a") for v in fitting})
        if len(values) > 1:
            out[knob] = values
    return out


def explain_difference(found: Mapping[str, str], rule_name: str) -> list[str]:
    """One line per knob where the fingerprint differs from a rule, with the maths of both values."""
    rule = get_rule(rule_name)
    want = rule.relevant_knobs()
    docs = spec_knobs()
    lines = []
    for knob in sorted(set(found) | set(want)):
        a, b = found.get(knob), want.get(knob)
        if a == b or (knob == "clip_scope" and (a is None or b is None)):
            continue
        if (a is None or b is None) and docs[knob].applies_when:
            continue            # follows from a parent knob that differs (e.g. decay), listed itself
        have = f"{a} — {docs[knob].values[a]}" if a else "does not apply"
        need = f"{b} — {docs[knob].values[b]}" if b else "does not apply"
        lines.append(f"{knob}: the optimizer has {have}\n    {rule.name} has {need}")
    return lines
