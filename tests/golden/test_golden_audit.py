"""Corpus audits: size budget, coverage of every preset, observability of every knob flip, and the
float32 sanity of the tolerance model. Run with `pytest -s` to see the tables."""
from __future__ import annotations

from collections import Counter

import pytest

from optconform.golden import audit, corpus
from optconform.reference import families, rules

SIZE_BUDGET = 5 * 1024 * 1024


def test_corpus_size_budget():
    total = sum(p.stat().st_size for p in corpus.corpus_dir().iterdir() if p.is_file())
    print(f"\ngolden corpus: {total / 1e6:.2f} MB")
    assert total <= SIZE_BUDGET


def test_every_preset_has_goldens():
    manifest = corpus.load_manifest()
    per_rule = Counter(e["rule"] for e in manifest["files"])
    missing = [name for name in rules() if per_rule[name] == 0]
    assert missing == []
    assert set(per_rule) <= set(rules())


@pytest.fixture(scope="module")
def flips():
    return audit.observability()


def test_observability_every_flip_caught(flips):
    print()
    print(audit.format_observability(flips))
    real = [f for f in flips if not f.equivalent]
    assert real, "no non-equivalent flip at all"
    missed = [f"{f.rule}: {f.knob} {f.original} -> {f.flipped} ({f.margin:.3g}x)" for f in real
              if f.margin < audit.MIN_MARGIN]
    assert missed == []
    assert all(f.caught for f in flips)
    assert all(f.caught_by.split("__")[0] == f.rule for f in real)
    assert all(f.margin == 0.0 and f.caught_by == "" for f in flips if f.equivalent)


def test_observability_with_float32_scalars():
    """The conditioning term of float32 bias-correction scalars (spec/tolerance.md, "Scalar
    precision") widens the tolerance of the cases that declare it, never enough to hide a knob flip."""
    flips = audit.observability(scalars=True)
    print()
    print(audit.format_observability(flips))
    missed = [f"{f.rule}: {f.knob} {f.original} -> {f.flipped} ({f.margin:.3g}x)" for f in flips
              if not f.equivalent and f.margin < audit.MIN_MARGIN]
    assert missed == []


def test_every_knob_flipped_for_some_preset(flips):
    fams = families()
    all_rules = rules()
    flipped = {(all_rules[f.rule].family, f.knob) for f in flips}
    should = {(fam, knob) for fam, family in fams.items() for knob, values in family.knobs.items() if len(values) > 1}
    assert should - flipped == set()
    # every (preset, knob, other allowed value) appears exactly once
    keys = Counter((f.rule, f.knob, f.flipped) for f in flips)
    assert max(keys.values()) == 1
    expected = sum(len(fams[r.family].knobs[k]) - 1 for r in all_rules.values() for k in fams[r.family].knobs)
    assert len(flips) == expected
    # no knob is only ever an equivalent mutant: each is observed for real for some preset
    knob_names = {knob for _, knob in should}
    really = {f.knob for f in flips if not f.equivalent}
    assert knob_names - really == set()


def test_float32_sanity():
    rows = audit.float32_sanity()
    print()
    print(audit.format_sanity(rows))
    assert len(rows) == len(corpus.load_manifest()["files"])
    worst = max(rows, key=lambda r: r.worst_units)
    assert worst.worst_units < 1.0, worst
