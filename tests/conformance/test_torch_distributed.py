"""torch.distributed findings as named tests: sharded AdamW / Adam(weight_decay) are the rules of their
single-process forms (same name, same decay kind), their gathered state is single-process torch's, the
global-norm clip is taken over the whole sharded gradient, failures name the rank and shard, and the
launcher leaves no worker behind."""
from __future__ import annotations

import dataclasses
import json
import subprocess

import numpy as np
import pytest

from optconform.testing import require

torch = require("torch-distributed", "torch")

from optconform import plan  # noqa: E402
from optconform.adapters.torch import ADAPTER as TORCH  # noqa: E402
from optconform.adapters.torch_distributed import ADAPTER  # noqa: E402
from optconform.adapters.torch_distributed.driver import locate  # noqa: E402
from optconform.adapters.torch_distributed.launch import LaunchError, launch  # noqa: E402
from optconform.adapters.torch_distributed.wrappers import dim0_chunks  # noqa: E402

pytestmark = pytest.mark.framework("torch-distributed")

SHARDED = [c.id for c in ADAPTER.cases()]


@pytest.mark.parametrize("case_id", SHARDED)
def test_sharded_rule_is_the_single_process_rule(case_id, run_of):
    """Every wrapper, implementation and world size names the rule torch.optim's own class has:
    AdamW decoupled x lr, Adam(weight_decay) coupled L2, far from the other (> 100 units)."""
    row = run_of(ADAPTER, case_id)
    single = run_of(TORCH, "torch-AdamW[foreach]" if "AdamW" in case_id else "torch-Adam(weight_decay)[foreach]")
    assert row.verdict == "conforms", row.first_divergence
    assert (row.matched_rule, row.decay_kind) == (single.matched_rule, single.decay_kind)
    other = "adam_l2" if row.matched_rule == "adamw" else "adamw"
    assert row.candidate_units[other] > 100
    assert row.goldens_run == single.goldens_run + 1, "every single-process golden plus sharded_exclusion"


def _single_process(inp, kwargs, dtype="float64", clip=None, exclude=()):
    """torch.optim.<cls> on whole tensors in this process: the param groups and clip the workers use."""
    import re
    params = [torch.tensor(np.asarray(inp.params0[n]), dtype=getattr(torch, dtype), requires_grad=True)
              for n in inp.tensors]
    pats = [re.compile(p) for p in exclude]
    groups = [{"params": [p for n, p in zip(inp.tensors, params) if not any(q.search(n) for q in pats)]},
              {"params": [p for n, p in zip(inp.tensors, params) if any(q.search(n) for q in pats)],
               "weight_decay": 0.0}]
    opt = kwargs.pop("cls")([g for g in groups if g["params"]], lr=inp.lr[0], **kwargs)
    out, m = [], []
    for grads, lr in zip(inp.grads, inp.lr):
        for p, n in zip(params, inp.tensors):
            p.grad = torch.tensor(np.asarray(grads[n]), dtype=p.dtype)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        out.append([p.detach().to(torch.float64).numpy().copy() for p in params])
        m.append([opt.state[p]["exp_avg"].to(torch.float64).numpy().copy() for p in params])
    return out, m


def _input(case_id, golden_name, hp=None):
    case = next(c for c in ADAPTER.cases() if c.id == case_id)
    inp = plan.run_input(case, next(g for g in plan.all_goldens() if g.name == golden_name))
    if hp:
        inp = dataclasses.replace(inp, hp={**inp.hp, **hp})
    return case, inp


GATHERED = ["torch-distributed-FSDP2(AdamW,world=3)[fused]", "torch-distributed-ZeRO(AdamW,world=3)[foreach]",
            "torch-distributed-DDP(AdamW,world=3)[foreach]"]
CLIPPED = ("torch-distributed-FSDP2(AdamW,world=3)[foreach]", "adamw__sharded_exclusion", {"clip_global_norm": 2.0})


@pytest.fixture(scope="module", autouse=True)
def _launched():
    """The native runs these tests read, in one launch (not the world size's whole matrix: the lane's
    `optconform run` made that, and the tests of its rows read its results)."""
    runs = [_input(case_id, "adamw__sharded_exclusion") for case_id in GATHERED] + [_input(*CLIPPED)]
    ADAPTER.prefetch([(case, inp, "float64") for case, inp in runs])


def _native(case_id, golden_name, hp=None):
    case, inp = _input(case_id, golden_name, hp)
    return case, inp, ADAPTER.run(case, inp, "cpu", "float64")


@pytest.mark.parametrize("case_id", GATHERED)
def test_gathered_state_is_single_process_state(case_id):
    """Parameters and exp_avg gathered to rank 0 equal torch.optim.AdamW on whole tensors, to the bit
    (elementwise maths on shards): uneven shards, padding and the excluded bias change nothing."""
    case, inp, run = _native(case_id, "adamw__sharded_exclusion")
    params, m = _single_process(inp, {"cls": torch.optim.AdamW, **case.native_kwargs(inp.hp)}, exclude=["bias"])
    for j, name in enumerate(inp.tensors):
        np.testing.assert_array_equal(run.params[name][1:], np.stack([p[j] for p in params]), err_msg=name)
        np.testing.assert_array_equal(run.state["m"][name][1:], np.stack([x[j] for x in m]), err_msg=name)
    assert np.isnan(run.state["m"]["scale"][0]).all(), "no state before the first step"


def test_clip_grad_norm_is_global_across_shards():
    """clip_grad_norm_(2.0) on FSDP2's DTensor gradients over 3 ranks (5- and 7-row tensors: uneven
    shards) clips by the norm of the whole gradient: the trajectory is single-process torch's with the
    clip on whole tensors, and the clip is active (steps 1, 3, 5 have norms 6.5, 4.9, 3.3)."""
    case, inp, run = _native(*CLIPPED)
    kwargs = {"cls": torch.optim.AdamW, **case.native_kwargs(inp.hp)}
    clipped, _ = _single_process(inp, dict(kwargs), clip=2.0, exclude=["bias"])
    unclipped, _ = _single_process(inp, dict(kwargs), clip=None, exclude=["bias"])
    for j, name in enumerate(inp.tensors):
        np.testing.assert_allclose(run.params[name][1:], np.stack([p[j] for p in clipped]), rtol=0, atol=1e-15)
        assert not np.allclose(run.params[name][-1], unclipped[-1][j], rtol=0, atol=1e-9), "the clip must act"


def test_shards_are_chunks_of_ceil_rows():
    assert dim0_chunks(5, 3) == [(0, 0, 2), (1, 2, 4), (2, 4, 5)]
    assert dim0_chunks(1, 3) == [(0, 0, 1), (1, 1, 1), (2, 1, 1)]
    assert dim0_chunks(4, 3) == [(0, 0, 2), (1, 2, 4), (2, 4, 4)]


def test_failure_names_rank_shard_and_repro():
    case, inp, _ = _native("torch-distributed-FSDP2(AdamW,world=3)[fused]", "adamw__sharded_exclusion")
    where = ADAPTER.locate(case, inp, "adamw__sharded_exclusion", "float64", "dense/kernel", (4, 1))
    assert where.startswith("held by rank 2 (shard rows [4, 5))")
    assert "optconform.adapters.torch_distributed.repro" in where
    assert locate({"w": [(0, 0, 2), (1, 2, 3)]}, "w", (2,)) == "rank 1 (shard rows [2, 3))"


def _write_job(job, runs):
    arrays = {f"r{i}.p0": np.ones(3) for i in range(len(runs))}
    arrays.update({f"r{i}.g0.0": np.ones(3) for i in range(len(runs))})
    np.savez(job / "inputs.npz", **arrays)
    (job / "job.json").write_text(json.dumps({"runs": runs}))


_RUN = {"wrapper": "FSDP2", "optimizer": "AdamW", "dtype": "float64", "kwargs": {"foreach": True},
        "tensors": ["w"], "lr": [0.1], "exclude": [], "clip": None}


def test_a_run_that_raises_names_its_ranks_and_the_batch_goes_on(tmp_path):
    _write_job(tmp_path, [{**_RUN, "kwargs": {"no_such_keyword": 1}}, _RUN])
    launch(tmp_path, 2, 120)
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["r0"]["error"].startswith("raised on rank(s) [0, 1]") and "no_such_keyword" in report["r0"]["error"]
    assert "layout" in report["r1"]


def _workers_of(job) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in ps.splitlines() if str(job) in line and "torch_distributed.worker" in line]


def test_timeout_kills_every_worker(tmp_path):
    _write_job(tmp_path, [_RUN])
    with pytest.raises(LaunchError, match="did not finish within"):
        launch(tmp_path, 3, 0.5)
    assert _workers_of(tmp_path) == []
