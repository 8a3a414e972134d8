"""Wild variants (issue 16): implementation choices seen in third-party optimizers — capped ||w|| in the
trust ratio, the ratio skipped at wd = 0, built-in clipping, decay x lr/lr0, decay of a scalar — each
moves some golden case of every preset it applies to by >= 100x the float32 tolerance."""
from __future__ import annotations

import pytest

from optconform.golden import audit, wild
from optconform.reference import rules


@pytest.fixture(scope="module")
def results():
    return wild.wild_observability()


def test_every_wild_variant_caught_with_margin(results):
    print()
    print(wild.format_wild(results))
    missed = [f"{r.variant} on {r.rule}: {r.margin:.3g}x" for r in results if r.margin < audit.MIN_MARGIN]
    assert missed == []
    assert all(r.caught_by.split("__")[0] == r.rule for r in results)


def test_every_variant_applies_somewhere(results):
    assert {r.variant for r in results} == {v.name for v in wild.VARIANTS}
    trust = {n for n, r in rules().items() if r.knobs.get("trust_ratio") == "on"}
    assert {r.rule for r in results if "capped" in r.variant} == trust
    assert len([r for r in results if "global-norm clip" in r.variant]) == len(rules())


def test_caught_by_the_new_probes(results):
    """The clips, the cap and the skipped ratio are seen by the probes added for them."""
    by = {(r.variant, r.rule): r.caught_by for r in results}
    assert by[("trust ratio with ||w|| capped at 10", "lamb_uncorrected")] == "lamb_uncorrected__large_norm"
    assert by[("trust ratio skipped at weight_decay = 0", "lamb")] == "lamb__no_decay"
    assert by[("global-norm clip at 1.0 built in", "lamb")] == "lamb__large_grad"
