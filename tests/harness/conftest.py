"""A fake, framework-free adapter for the harness tests: its "native" optimizer is the float64
reference itself, run for whichever rule it is told to implement (so a case can be made to conform,
to implement another rule than it claims, to produce NaN, or to raise)."""
from __future__ import annotations

import types

import numpy as np
import pytest

from optconform.adapters.base import Adapter, Arg, Case, Driver, RunInput
from optconform.reference import get_rule, trajectory

ADAM_HP = {"lr": "lr", "beta1": Arg("betas", 0), "beta2": Arg("betas", 1), "eps": "eps"}
ADAMW_HP = {**ADAM_HP, "weight_decay": "weight_decay"}


class FakeAdapter(Adapter):
    """cases: the Case list; implements: case name -> rule the case really runs (default: its claim);
    broken: case names whose run raises; nan: case names that put a NaN in their output;
    import_error: an exception `_import` raises."""
    name = "fake"

    def __init__(self, cases, implements=None, broken=(), nan=(), import_error=None, version="1.2.3"):
        super().__init__()
        self._cases = list(cases)
        self.implements = dict(implements or {})
        self.broken = set(broken)
        self.nan = set(nan)
        self.import_error = import_error
        self._version = version
        self.calls = 0

    def _import(self):
        if self.import_error is not None:
            raise self.import_error
        return types.SimpleNamespace(__version__=self._version)

    def cases(self):
        return list(self._cases)

    def driver(self, case: Case, inp: RunInput, device: str, dtype: str) -> "FakeDriver":
        self.calls += 1
        if case.name in self.broken:
            raise RuntimeError("fake kernel exploded")
        rule = get_rule(self.implements.get(case.name, case.rule))
        hp = {k: v for k, v in inp.hp.items() if k in rule.defaults}
        run = trajectory(rule, {n: inp.params0[n] for n in inp.tensors}, [dict(g) for g in inp.grads],
                         lr=list(inp.lr), eta=list(inp.eta), **hp)
        params = {n: np.array(v) for n, v in run.params.items()}
        if dtype == "float32":            # a "float32 framework": the reference rounded on output
            params = {n: v.astype(np.float32).astype(np.float64) for n, v in params.items()}
        if case.name in self.nan:
            name = next(n for n in inp.tensors if params[n].size)
            params[name].reshape(params[name].shape[0], -1)[3, 0] = np.nan
        return FakeDriver(params)


class FakeDriver(Driver):
    """Steps through a precomputed trajectory (the fake's "native" optimizer is the reference)."""

    def __init__(self, params):
        self.trajectory, self.t = params, 0

    def native_grads(self, grads):
        return grads

    def step(self, grads, lr_t, eta_t):
        self.t += 1

    def params(self):
        return {n: v[self.t] for n, v in self.trajectory.items()}


def fake_case(name, rule, hp_map, **kw) -> Case:
    return Case(framework="fake", name=name, native=f"fake.{name}", rule=rule, hp_map=hp_map, **kw)


@pytest.fixture(scope="session")
def fake():
    """Factories: (FakeAdapter class, fake_case function, hp maps)."""
    return types.SimpleNamespace(Adapter=FakeAdapter, case=fake_case, ADAM_HP=ADAM_HP, ADAMW_HP=ADAMW_HP)


@pytest.fixture(scope="session")
def fake_run():
    """One run_adapter over four fake cases in float64 and float32: a conforming AdamW, an AdamW that
    really implements L2 (adam_l2), an Adam that raises, and an Adam that can express no golden."""
    from optconform import runner
    cases = [
        fake_case("AdamW", "adamw", ADAMW_HP),
        fake_case("AdamW(l2bug)", "adamw", ADAMW_HP),
        fake_case("Adam(broken)", "adam", ADAM_HP),
        fake_case("Adam(nohp)", "adam", {}),
    ]
    adapter = FakeAdapter(cases, implements={"AdamW(l2bug)": "adam_l2"}, broken={"Adam(broken)"})
    progress = []
    rows = runner.run_adapter(adapter, devices=None, dtypes=["float64", "float32"],
                              progress=lambda i, n, label: progress.append((i, n, label)))
    return types.SimpleNamespace(adapter=adapter, rows=rows, progress=progress,
                                 by_key={(r.name, r.dtype): r for r in rows})
