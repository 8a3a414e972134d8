"""The spec's commands: `optconform rules` (the rules with knobs and defaults) and `optconform golden`
(regenerate, check or audit the golden corpus)."""
from __future__ import annotations

import json
import sys

from optconform.cli_common import UsageError

RULES_OPTIONS: dict[str, dict] = {
    "--json": {"action": "store_true", "help": "machine-readable output"},
}

GOLDEN_OPTIONS: dict[str, dict] = {
    "--regenerate": {"action": "store_true", "help": "rewrite every golden file (deterministic)"},
    "--check": {"action": "store_true", "help": "verify the manifest and recompute every case"},
    "--audit": {"action": "store_true", "help": "observability and float32-sanity tables"},
}

#: hyper-parameters the text listing leaves out of a rule's defaults
UNLISTED_DEFAULTS = ("eta", "rescale_grad", "clip_value", "clip_norm", "clip_global_norm", "weight_decay_mask")


def cmd_rules(args) -> int:
    from optconform.reference import rules
    if args.json:
        print(json.dumps(_rules_json(), indent=1, default=str))
        return 0
    for name, rule in rules().items():
        _print_rule(name, rule)
    return 0


def _rules_json() -> dict:
    """Knobs, families and rules as `optconform rules --json` prints them."""
    from optconform.reference import families, knobs, rules
    return {"knobs": {k: {"doc": v.doc, "values": dict(v.values), "applies_when": dict(v.applies_when)}
                      for k, v in knobs().items()},
            "families": {k: {"doc": f.doc, "knobs": {n: list(vals) for n, vals in f.knobs.items()}}
                         for k, f in families().items()},
            "rules": {n: {"family": r.family, "doc": r.doc, "knobs": dict(r.knobs),
                          "defaults": {k: (list(v) if isinstance(v, tuple) else v) for k, v in r.defaults.items()},
                          "mirrors": list(r.mirrors), "cite": list(r.cite)} for n, r in rules().items()}}


def _print_rule(name: str, rule) -> None:
    from optconform.reference.rules import applicable_knobs
    print(f"{name}  [{rule.family}]  {rule.doc}")
    print("    knobs: " + ", ".join(f"{k}={v}" for k, v in applicable_knobs(rule.knobs).items()))
    shown = {k: v for k, v in rule.defaults.items() if k not in UNLISTED_DEFAULTS}
    print("    defaults: " + ", ".join(f"{k}={v!r}" for k, v in shown.items()))
    if rule.mirrors:
        print("    mirrors: " + "; ".join(rule.mirrors))


def cmd_golden(args) -> int:
    """Each action given, in the order regenerate, check, audit; exit 1 at the first that fails."""
    actions = [action for flag, action in GOLDEN_ACTIONS.items() if getattr(args, flag)]
    if not actions:
        raise UsageError("golden: give --regenerate, --check and/or --audit")
    return 0 if all(action() for action in actions) else 1


def _regenerate() -> bool:
    from optconform.golden import corpus
    written = corpus.regenerate()
    print(f"wrote {len(written)} golden files and {corpus.MANIFEST} to {corpus.corpus_dir()}")
    return True


def _check_corpus() -> bool:
    from optconform.golden import corpus
    problems, checked = corpus.check()
    for p in problems:
        print(f"golden check: {p}", file=sys.stderr)
    if problems:
        print(f"golden check FAILED: {len(problems)} problem(s) in {corpus.corpus_dir()}", file=sys.stderr)
        return False
    print(f"golden check: {checked} files match the manifest and the reference")
    return True


def _audit() -> bool:
    """Observability (plain and under float32 scalars), float32 sanity and the wild variants: every
    knob flip and wild variant caught, and the reference's float32 maths within tolerance."""
    from optconform.golden import audit, wild
    flips = audit.observability()
    print("Observability (every knob flip must move some golden case by >= "
          f"{audit.MIN_MARGIN:g} float32 tolerance units):")
    print(audit.format_observability(flips))
    print()
    scalar_flips = audit.observability(scalars=True)
    print("Observability under float32 bias-correction scalars (the tolerance of cases that declare "
          "powers=float32 or param; spec/tolerance.md, Scalar precision):")
    print(audit.format_observability(scalar_flips))
    print()
    print("float32 sanity (the reference's own maths in float32 vs the float64 goldens):")
    sanity = audit.float32_sanity()
    print(audit.format_sanity(sanity))
    print()
    print("Wild variants (implementation choices seen in third-party optimizers, golden/wild.py):")
    wilds = wild.wild_observability()
    print(wild.format_wild(wilds))
    return (all(f.caught for f in flips + scalar_flips) and max(r.worst_units for r in sanity) < 1.0
            and all(w.caught for w in wilds))


#: `optconform golden` flag -> its action (True: it succeeded), run in this order
GOLDEN_ACTIONS = {"regenerate": _regenerate, "check": _check_corpus, "audit": _audit}
