"""Mutation testing of the suite itself (issue 10): every deliberately wrong optimizer in mutants.py must
be rejected by `optconform.check` with the right diagnosis, every correct one accepted in float32 and
float64 (zero false alarms). Also: assert_conforms, the `check`/`fingerprint` CLI (exit codes, JSON,
usage errors) and the repro script.

    pytest tests/fingerprint -q -s -k mutation_score     # the score table
"""
from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from optconform.testing import require

require('torch', 'torch')

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import mutants  # noqa: E402
from mutants import CORRECT, MUTANTS, NO_FIT  # noqa: E402

from optconform import plan  # noqa: E402
from optconform.checking import check  # noqa: E402
from optconform.reference import get_rule  # noqa: E402
from optconform.cli import main  # noqa: E402
from optconform.testing import assert_conforms  # noqa: E402

pytestmark = pytest.mark.framework("torch")

WRONG = [m for m in MUTANTS if not m.correct]
RIGHT = [m for m in MUTANTS if m.correct]


@functools.cache
def _report(name: str, dtype: str):
    m = mutants.BY_NAME[name]
    return check(m.factory, m.rule, "torch", dtype=dtype, **m.hp)


def _diagnosis_problems(m, report) -> list[str]:
    """What is wrong with the diagnosis of a wrong mutant (empty: right)."""
    fp = report.fingerprint
    if fp is None:
        return ["no fingerprint"]
    if m.expect == NO_FIT:
        problems = [] if not fp.fits else [f"fits {fp.knobs}, expected no fit"]
        if not fp.describe().startswith("no knob combination"):
            problems.append(f"describe() does not say so: {fp.describe()}")
        return problems
    problems = [] if fp.fits else [f"no fit (nearest {fp.knobs} at {fp.units:.3g} units)"]
    summary = fp.summary_knobs()
    for knob, value in m.expect.items():
        if knob == "preset":
            if fp.preset != value:
                problems.append(f"preset {fp.preset!r}, expected {value!r}")
        elif summary.get(knob) != value:
            problems.append(f"{knob}={summary.get(knob)}, expected {value}")
        elif knob != "weight_decay" and f"{knob}={value}" not in fp.describe():
            problems.append(f"describe() lacks {knob}={value}")
    return problems


def _got(report) -> str:
    fp = report.fingerprint
    if fp is None:
        return "no fingerprint"
    if not fp.fits:
        return "no fit"
    s = fp.summary_knobs()
    keys = ("weight_decay", "decay_scaling", "decay_order", "eps_placement", "bias_correction", "amsgrad",
            "trust_ratio", "momentum_form")
    text = ", ".join(f"{k}={s[k]}" for k in keys if k in s and s[k] != "n/a")
    return text + (f" (= {fp.preset})" if fp.preset else "")


# --- the mutants ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [m.name for m in WRONG])
def test_wrong_optimizer_is_rejected_with_the_right_diagnosis(name):
    m = mutants.BY_NAME[name]
    report = _report(name, m.dtype)
    assert not report, f"{name} was accepted as {m.rule!r}:\n{report}"
    assert report.failed and report.first is not None
    assert "DOES NOT CONFORM" in str(report)
    problems = _diagnosis_problems(m, report)
    assert not problems, f"{name}: wrong diagnosis: {problems}\n{report}"
    if isinstance(m.expect, dict):          # a knob vector: the report says which knob differs from the rule
        assert report.differences, str(report)
    else:                                   # no fit: no knob fact is asserted, the JSON has no preset
        assert not any(d.split(":")[0] in ("decay", "decay_scaling", "eps_placement", "trust_ratio")
                       for d in report.differences), str(report)
        fp = report.to_json()["fingerprint"]
        assert fp["preset"] is None and fp["knobs"] == {} and fp["nearest_knobs"]
    if m.hint:
        assert m.hint in "\n".join(report.diagnosis), f"{name}: diagnosis lacks {m.hint!r}:\n{report}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", [m.name for m in RIGHT])
def test_correct_optimizer_conforms(name, dtype):
    m = mutants.BY_NAME[name]
    report = _report(name, dtype)
    assert report, f"false alarm on a correct {m.rule!r}:\n{report}"
    fp = report.fingerprint
    if "[" in m.rule:                       # a derived rule: no preset, its knob vector
        assert fp.fits and fp.knobs == get_rule(m.rule).relevant_knobs(), fp.describe()
    else:
        assert fp.fits and fp.preset == m.rule, fp.describe()
    assert not report.differences and not report.unseen


def test_mutation_score():
    """The table: every wrong mutant killed (with the right diagnosis), zero false alarms."""
    rows, killed, diagnosed, false_alarms = [], 0, 0, []
    for m in WRONG:
        report = _report(m.name, m.dtype)
        is_killed = not report
        ok = is_killed and not _diagnosis_problems(m, report)
        killed += is_killed
        diagnosed += ok
        expect = m.expect if m.expect == NO_FIT else ", ".join(f"{k}={v}" for k, v in m.expect.items())
        rows.append((m.name, m.rule, m.dtype, expect, _got(report), "yes" if is_killed else "NO",
                     "yes" if ok else "NO"))
    for m in RIGHT:
        for dtype in ("float32", "float64"):
            report = _report(m.name, dtype)
            if not report:
                false_alarms.append(f"{m.name} {dtype}")
            rows.append((m.name, m.rule, dtype, CORRECT, "conforms" if report else "REJECTED", "-",
                         "yes" if report else "NO"))
    widths = [max(len(str(r[i])) for r in rows + [("mutant", "claims", "dtype", "expected", "got", "killed",
                                                    "diagnosis ok")]) for i in range(7)]
    header = ("mutant", "claims", "dtype", "expected", "got", "killed", "diagnosis ok")
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print(f"mutation score: {killed}/{len(WRONG)} killed; diagnosis accuracy: {diagnosed}/{len(WRONG)}; "
          f"false alarms: {len(false_alarms)}/{2 * len(RIGHT)} correct runs")
    assert killed == len(WRONG)
    assert diagnosed == len(WRONG)
    assert not false_alarms, false_alarms


# --- specific diagnoses -------------------------------------------------------------------------------

def test_ignored_hyper_parameter_is_named():
    """The corpus keeps beta1/beta2 at 0.9/0.999: the sensitivity variants catch an optimizer that
    ignores them and say so."""
    report = _report("betas_hardcoded", "float32")
    assert not report
    assert any(g.endswith("[beta1=0.8]") for g in report.failed)
    text = str(report)
    assert "beta1: the optimizer ignores it: with beta1=0.8 it follows the beta1=0.9 trajectory" in text
    assert "beta2: the optimizer ignores it" in text


def test_sensitivity_variants_do_not_flag_a_used_hyper_parameter():
    report = _report("plain_adamw", "float32")
    variants = [g for g in report.scenarios if "[" in g]
    assert {v.split("[")[1] for v in variants} == {"beta1=0.8]", "beta2=0.998]"}
    assert not report.failed


def test_nan_output_is_reported_as_such():
    report = _report("nan_on_zero_grad", "float32")
    assert "non-finite: the optimizer produced NaN/Inf in adamw__zero_grad at step 1" in str(report)
    assert "output is NaN/Inf" in report.fingerprint.describe()


def test_unobservable_decay_goes_to_the_claimed_rule():
    """Rule adam's probes have wd = 0, so every decay variant fits a plain Adam: the fingerprint must
    name the claimed preset, not whichever decay variant the tolerance happens to favour."""
    fp = _report("plain_adam", "float32").fingerprint
    assert fp.preset == "adam" and fp.knobs["decay"] == "none"
    assert fp.margin <= 0          # the runner-up (some decay variant) fits too: not told apart


def test_subset_factory_reports_what_it_could_not_run():
    report = _report("subset_adamw", "float32")
    assert report and "adamw__tiny_grad" in report.skipped
    assert "needs eps=1e-07" in report.skipped["adamw__tiny_grad"]


def test_explain_difference_names_the_knob():
    report = _report("decay_after_step", "float32")
    assert any(d.startswith("decay_order: the optimizer has after") for d in report.differences)
    report = _report("coupled_decay", "float32")
    assert any(d.startswith("decay: the optimizer has coupled") for d in report.differences)


# --- assert_conforms -------------------------------------------------------------------------------------

def test_assert_conforms_passes_a_correct_optimizer():
    report = assert_conforms(mutants.make_foreach_adamw, rule="adamw", framework="torch")
    assert report.conforms


def test_assert_conforms_raises_with_the_readable_report():
    with pytest.raises(AssertionError) as info:
        assert_conforms(mutants.make_decay_not_times_lr, rule="adamw", framework="torch")
    text = str(info.value)
    assert "DOES NOT CONFORM" in text and "first divergence:" in text
    assert "decay_scaling=unscaled" in text
    assert "decay_scaling: the optimizer has unscaled" in text


# --- CLI ---------------------------------------------------------------------------------------------

def test_cli_check_conforming_exit_0_and_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report.json"
    code = main(["check", "--framework", "torch", "--factory", "mutants:make_plain_adamw", "--rule", "adamw",
                 "--json", str(out)])
    assert code == 0
    assert "CONFORMS" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["conforms"] is True and doc["failed"] == [] and doc["repro"] == ""
    assert doc["fingerprint"]["knobs"]["weight_decay"] == "decoupled"
    assert not (tmp_path / "optconform_repro.py").exists()


def test_cli_check_nonconforming_exit_1_json_and_repro(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out, repro = tmp_path / "report.json", tmp_path / "sub" / "repro.py"
    repro.parent.mkdir()
    code = main(["check", "--factory", "mutants:make_decay_after_step", "--rule", "adamw", "--json", str(out),
                 "--repro", str(repro)])
    assert code == 1
    text = capsys.readouterr().out
    assert "DOES NOT CONFORM" in text and "decay_order: the optimizer has after" in text
    doc = json.loads(out.read_text())
    assert doc["conforms"] is False and doc["failed"]
    assert doc["fingerprint"]["knobs"]["decay_order"] == "after" and doc["fingerprint"]["fits"] is True
    assert doc["first_divergence"]["golden"] in doc["failed"]
    assert doc["repro"] == str(repro)
    # the repro script runs from anywhere with the same python and prints actual vs expected
    run = subprocess.run([sys.executable, str(repro)], capture_output=True, text=True, cwd="/", timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    actual = float(next(line for line in lines if line.startswith("actual")).split()[-1])
    expected = float(next(line for line in lines if line.startswith("expected")).split()[-1])
    assert actual == pytest.approx(doc["first_divergence"]["native"], rel=1e-6)
    assert expected == doc["first_divergence"]["expected"]
    assert actual != pytest.approx(expected, rel=1e-6)


def test_cli_check_writes_no_repro_unless_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--factory", "mutants:make_eps_hat"]) == 1
    assert list(tmp_path.iterdir()) == []
    assert "repro script" not in capsys.readouterr().out


def test_cli_fingerprint_json_knobs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "fp.json"
    code = main(["fingerprint", "--factory", "mutants:make_hf_legacy_adamw", "--rule", "adamw", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "eps_placement" in text and "eps_hat" in text
    doc = json.loads(out.read_text())
    knobs = doc["knobs"]
    assert {"weight_decay", "bias_correction", "eps_placement", "decay_order"} <= set(knobs)
    assert knobs["weight_decay"] == "decoupled" and knobs["eps_placement"] == "eps_hat"
    assert knobs["decay_order"] == "after" and knobs["bias_correction"] == "on"
    assert doc["fits"] is True and doc["preset"] == "transformers_adamw" and doc["dtype"] == "float64"


def test_cli_fingerprint_unscaled_decay(tmp_path, monkeypatch, capsys):
    """The table and the summary name the same decay scaling (issue 16: "decoupled_unscaled" beside
    "decay_scaling schedule"); knobs the probes cannot tell apart are marked as such."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "fp.json"
    assert main(["fingerprint", "--factory", "mutants:make_decay_not_times_lr", "--rule", "adamw",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    knobs = doc["knobs"]
    assert knobs["weight_decay"] == "decoupled_unscaled" and knobs["decay_scaling"] == "unscaled"
    text = capsys.readouterr().out
    table = {line.split()[0]: line.split()[1] for line in text.splitlines()[1:] if line.startswith("  ") and
             len(line.split()) >= 2 and not line.strip().startswith(("decay=", "no "))}
    assert table["weight_decay"] == "decoupled_unscaled" and table["decay_scaling"] == "unscaled"
    assert "decay_scaling=unscaled" in text
    assert all(k in knobs for k in doc["not_told_apart"])


def test_cli_fingerprint_no_fit_exit_3_preset_null(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "fp.json"
    assert main(["fingerprint", "--factory", "mutants:make_decay_twice", "--rule", "adamw", "--json", str(out)]) == 3
    doc = json.loads(out.read_text())
    assert doc["fits"] is False and doc["preset"] is None and doc["knobs"] == {} and doc["nearest_knobs"]
    text = capsys.readouterr().out
    assert "no fit" in text and "not a finding" in text


def test_cli_fingerprint_without_rule_tries_every_family(tmp_path, monkeypatch, capsys):
    """A Lion optimizer fingerprinted without --rule: every family's probes are tried and Lion's win
    (issue 16: Adam probes and a LAMB preset before)."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "fp.json"
    assert main(["fingerprint", "--factory", "mutants:make_lion", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["probes_of"] == "lion" and doc["preset"] == "lion" and doc["family"] == "lion"
    text = capsys.readouterr().out
    assert "families tried" in text and "adam (adamw): no fit" in text and "lion (lion): fits" in text
    assert "sgd (sgd_momentum): skipped" in text      # the factory requires beta1: not an SGD factory


def test_cli_hp_override(tmp_path, monkeypatch):
    """--hp fixes a hyper-parameter for the optimizer and the reference alike."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r.json"
    assert main(["check", "--factory", "mutants:make_plain_adamw", "--hp", "weight_decay=0.05",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["conforms"] is True


@pytest.mark.parametrize("argv, message", [
    (["check", "--factory", "no_such_module_xyz:make"], "cannot import module 'no_such_module_xyz'"),
    (["check", "--factory", "mutants:no_such_factory"], "has no attribute 'no_such_factory'"),
    (["check", "--factory", "mutants"], "write MODULE:FUNC"),
    (["check", "--factory", "mutants:make_plain_adamw", "--rule", "no_such_rule"], "no_such_rule"),
    (["check", "--factory", "mutants:make_plain_adamw", "--hp", "no_such_hp=1"], "no_such_hp"),
    (["check", "--factory", "mutants:make_plain_adamw", "--hp", "novalue"], "NAME=VALUE"),
    (["check", "--factory", "mutants:make_plain_adamw", "--framework", "no_such_fw"], "unknown framework"),
    (["fingerprint", "--factory", "mutants:make_plain_adamw", "--dtype", "float7"], "float7"),
])
def test_cli_usage_errors_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# --- issue 16: classes as factories, signature errors, knobs the probes cannot see -----------------------

def test_class_as_factory_runs_every_probe():
    """A class is a factory as it is: torch.optim.AdamW receives betas=(beta1, beta2) and runs every probe
    a canonical factory runs, the beta sensitivity variants included (issue 16: 4 probes dropped)."""
    import torch
    report = check(torch.optim.AdamW, "adamw", "torch")
    assert report, str(report)
    assert report.scenarios == _report("plain_adamw", "float32").scenarios
    assert any(g.endswith("[beta1=0.8]") for g in report.scenarios)


@pytest.mark.parametrize("framework_style", ["torch"])
def test_non_canonical_required_argument_is_a_usage_error(tmp_path, monkeypatch, capsys, framework_style):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd_factory.py").write_text(
        "import torch\n"
        "def make(params, lr, momentum_coefficient, weight_decay):\n"
        "    return torch.optim.SGD(params, lr=lr, momentum=momentum_coefficient, weight_decay=weight_decay)\n")
    assert main(["check", "--factory", "odd_factory:make", "--rule", "sgd_momentum"]) == 2
    err = capsys.readouterr().err
    assert "required argument 'momentum_coefficient' is not a canonical hyper-parameter" in err
    assert "canonical names: clip_global_norm, clip_norm, clip_value, dampening, lr, momentum, nesterov" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_check_refuses_to_pass_when_the_probes_cannot_see_a_knob(monkeypatch):
    """With only the probes a minimal factory could run before issue 16 (tiny_grad for sgd_momentum), a
    correct momentum SGD cannot be told from lr-inside momentum: UNDECIDED, exit-1 truthiness."""
    only = tuple(g for g in plan.all_goldens() if g.name == "sgd_momentum__tiny_grad")
    monkeypatch.setattr(plan, "all_goldens", lambda: only)
    report = check(mutants.make_sgd_momentum, "sgd_momentum", "torch")
    assert not report and not report.failed
    assert report.verdict == "UNDECIDED" and "momentum_form=lr_inside" in report.unseen
    line = next(line for line in str(report).splitlines() if "the probes that ran cannot see" in line)
    assert "momentum_form=lr_inside" in line
    assert report.to_json()["verdict"] == "UNDECIDED"


def test_plain_sgd_claimed_as_momentum_is_caught_by_the_default_probe():
    report = _report("plain_sgd_as_momentum", "float32")
    assert "sgd_momentum__large_grad" in report.failed
    assert report.fingerprint.knobs["momentum_form"] == "none"
