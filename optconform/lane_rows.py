"""The rows the generated conformance tests assert on, computed once per lane.

A framework lane first runs ``optconform run --framework X --json F`` (the matrix, the baseline diff,
the HTML report) and then pytest. With ``OPTCONFORM_LANE_RESULTS=F`` the tests of
tests/conformance/test_conformance.py (one per case x golden x device x dtype, same ids and xfail
marks as ever) assert on F's rows instead of running every trajectory a second time: a golden fails
its test exactly when the run found it out of tolerance (``goldens_failed``: the same
`compare.compare(...).units > 1` the test computed itself before).

A results file that cannot vouch for this environment fails the tests, never skips them: unreadable
or of another schema, written by another optconform version, for another framework release, missing
a row of a device it ran, or a row that ran another number of goldens than the corpus now gives its
case. Without the variable (``pytest tests/conformance`` on its own) each row is computed here, once,
by `runner.run_case`, the function `optconform run` uses.
"""
from __future__ import annotations

import functools
import os
from typing import Any

ENV = "OPTCONFORM_LANE_RESULTS"
#: verdicts of rows that ran no golden comparison (their goldens_run is not checked)
NOT_COMPARED = ("n/a", "error", "no-goldens", "unavailable")


class LaneRows:
    """The rows of one results file (`path`), or rows computed on demand (`path` None)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.problem = ""
        self._rows: dict[tuple, dict[str, Any]] = {}
        self._devices: dict[str, set[str]] = {}
        self._versions: dict[str, str] = {}
        if path:
            self._read(path)

    def _read(self, path: str) -> None:
        import optconform
        from optconform import results
        try:
            doc = results.read(path)
        except ValueError as exc:
            self.problem = f"{ENV}: {exc}"
            return
        if doc.get("optconform_version") != optconform.__version__:
            self.problem = (f"{ENV}={path} was written by optconform {doc.get('optconform_version')!r}, "
                            f"this is {optconform.__version__!r}: run `optconform run --json` again")
        for env in doc.get("environments", []):
            self._devices[env["framework"]] = set(env.get("devices", {}))
            self._versions[env["framework"]] = env.get("version", "")
        for row in doc["results"]:
            self._rows[(row["framework"], row["case"], row["device"], row["dtype"])] = row

    def devices(self, framework: str) -> set[str]:
        """The devices the file holds `framework`'s rows of (AssertionError: none at all, a wrong file)."""
        assert not self.problem, self.problem
        assert framework in self._devices, f"{ENV}={self.path} holds no rows of {framework}: it is the wrong file"
        return self._devices[framework]

    def holds(self, framework: str, case_id: str, device: str, dtype: str) -> bool:
        """Whether the file, readable and current, holds this row."""
        return not self.problem and (framework, case_id, device, dtype) in self._rows

    def keys(self, framework: str) -> set[tuple[str, str, str]]:
        """(case, device, dtype) of every row of `framework` in the file."""
        return {key[1:] for key in self._rows if key[0] == framework}

    def row(self, adapter, case, device: str, dtype: str) -> dict[str, Any]:
        """The row of (case, device, dtype): from the file (AssertionError when it is stale), else run here."""
        if self.path is None or device not in self.devices(adapter.name):
            return computed(adapter, case.id, device, dtype)     # no file, or a device its run left out
        found = self._rows.get((adapter.name, case.id, device, dtype))
        assert found is not None, (f"{ENV}={self.path} has no row {case.id} {device} {dtype}: it is stale or was "
                                   "written for another selection (-k, --dtype); run `optconform run --json` again")
        version = adapter.version()
        assert self._versions.get(adapter.name) == version, (
            f"{ENV}={self.path} ran {adapter.name} {self._versions.get(adapter.name)!r}, this environment has {version!r}")
        _check_goldens(found, adapter, case)
        return found


def _check_goldens(row: dict[str, Any], adapter, case) -> None:
    """The row ran as many goldens as the installed corpus gives the case (else the corpus changed)."""
    from optconform import plan
    if row["verdict"] in NOT_COMPARED:
        return
    expected = len(plan.goldens_for(case, adapter.supports_eta))
    assert row["goldens_run"] == expected, (
        f"{ENV}: row {case.id} {row['device']} {row['dtype']} ran {row['goldens_run']} goldens, the installed "
        f"corpus gives it {expected}: the results are stale")


@functools.cache
def computed(adapter, case_id: str, device: str, dtype: str) -> dict[str, Any]:
    """The row run here, once per process."""
    from optconform import runner, testing
    case = testing.case_by_id(adapter, case_id)
    return runner.run_case(adapter, case, device, dtype, adapter.version()).to_json()


@functools.cache
def lane_rows() -> LaneRows:
    """The rows of this test process: OPTCONFORM_LANE_RESULTS's file, or computed on demand."""
    return LaneRows(os.environ.get(ENV) or None)
