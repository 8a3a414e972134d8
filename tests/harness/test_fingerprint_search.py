"""The pruned fingerprint search keeps what the full one keeps (optconform/fingerprint.py `_best_few`,
`_nearest`): a candidate's score is a maximum over runs, so stopping it once its running maximum ranks
it out can drop only candidates the full sort would drop too. Checked against the full sort on random
scores with many ties (the rank's tie-breaks: index order, then name)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from optconform.fingerprint import _best_few, _nearest

# per candidate, its per-run errors; few distinct values so that ties are common
RUNS = st.lists(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 7.0, float("inf")]), min_size=1, max_size=4),
                min_size=1, max_size=30)


def _scorer(errors: list[list[float]], computed: list[int]):
    """score(i, stop): the running maximum of candidate i's errors, ended by `stop` like
    compare.worst_units; `computed` counts the errors actually looked at."""
    def score(i, stop):
        worst = 0.0
        for error in errors[i]:
            if stop is not None and stop(worst):
                return worst
            computed.append(i)
            worst = max(worst, error)
        return worst
    return score


@settings(max_examples=300, deadline=None)
@given(errors=RUNS, keep=st.integers(1, 12), distance=st.lists(st.integers(0, 3), min_size=30, max_size=30))
def test_best_few_is_the_full_sort(errors, keep, distance):
    def rank(units, i):                      # fingerprint.fingerprint's rank
        return (max(units, 1.0), distance[i], units)
    computed: list[int] = []
    pruned = _best_few(len(errors), keep, _scorer(errors, computed), rank)
    full = sorted(range(len(errors)), key=lambda i: rank(max(errors[i]), i))[:keep]
    assert pruned == full
    assert len(computed) <= sum(map(len, errors))


@settings(max_examples=300, deadline=None)
@given(errors=RUNS)
def test_nearest_is_the_full_minimum(errors):
    names = [f"preset{i:02d}" for i in range(len(errors))][::-1]     # not in name order
    by_name = dict(zip(names, errors))
    computed: list[int] = []
    score = _scorer([by_name[n] for n in names], computed)
    nearest = _nearest(names, lambda name, stop: score(names.index(name), stop))
    assert nearest == min((max(by_name[n]), n) for n in names)


def test_pruning_skips_work():
    """A candidate already behind the kept ones after its first run is not compared further; one that
    cannot get ahead of them even with no error (a later index at the same rank) is not compared at all."""
    errors = [[1.0, 1.0, 1.0], [9.0, 0.0, 0.0], [9.0, 0.0, 0.0]]
    computed: list[int] = []
    assert _best_few(3, 1, _scorer(errors, computed), lambda units, i: (units,)) == [0]
    assert computed == [0, 0, 0, 1, 2]
    computed.clear()
    assert _best_few(2, 1, _scorer([[0.0, 0.0], [0.0, 0.0]], computed), lambda units, i: (units,)) == [0]
    assert computed == [0, 0]
