"""Hostile and careless inputs, without a framework: each row is an input and the exit code and
message it must give — a one-line error naming the problem (exit 2) before any work, never a
traceback, never a silent pass. Rows that need torch are in test_hostile_torch.py (torch lane).
Add a row for every defect found (issue 15)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hostile import Row, _fresh_golden_cache, check_row, corpus_copy, manifest_of, write_manifest  # noqa: F401
from optconform import checking, registry, results
from optconform.adapters.torch import ADAPTER as TORCH
from optconform.golden.format import write_golden
from optconform.reference import trajectory

GOLDEN = "adamw__lr_halved.npz"


# --- setups -----------------------------------------------------------------------------------------

def _scaled_trajectory(update_sha: bool):
    """A golden rewritten as a valid archive with its trajectory x 1.01 (manifest SHA stale or updated)."""
    def setup(tmp, monkeypatch):
        import io
        import zipfile
        copy = corpus_copy(tmp, monkeypatch)
        path = copy / GOLDEN
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
            arrays = {n[:-4]: np.lib.format.read_array(io.BytesIO(zf.read(n))) for n in zf.namelist()
                      if n != "config.json"}
        arrays["trajectory_0"] = arrays["trajectory_0"] * 1.01
        write_golden(path, config, arrays)
        if update_sha:
            manifest = manifest_of(copy)
            for entry in manifest["files"]:
                if entry["file"] == GOLDEN:
                    entry["sha256"] = __import__("hashlib").sha256(path.read_bytes()).hexdigest()
            write_manifest(copy, manifest, monkeypatch, repin=False)
    return setup


def _manifest_edit(edit, repin=True):
    def setup(tmp, monkeypatch):
        copy = corpus_copy(tmp, monkeypatch)
        manifest = manifest_of(copy)
        edit(manifest, copy)
        write_manifest(copy, manifest, monkeypatch, repin)
    return setup


def _drop_entry(m, copy):
    m["files"] = [e for e in m["files"] if e["file"] != GOLDEN]


def _duplicate_entry(m, copy):
    m["files"].append(dict(m["files"][0]))


def _escape_entry(m, copy):
    m["files"][0]["file"] = "../../README.md"


def _bad_steps(m, copy):
    m["files"][0]["steps"] = "six"


def _unknown_field(m, copy):
    m["files"][0]["url"] = "https://example.org"


def _files_not_list(m, copy):
    m["files"] = {"a": 1}


def _corpus_file(action):
    def setup(tmp, monkeypatch):
        copy = corpus_copy(tmp, monkeypatch)
        action(copy)
    return setup


def _raw_manifest(text):
    return _corpus_file(lambda copy: (copy / "manifest.json").write_text(text, encoding="utf-8"))


def _results_file(rows=None, name="r.json", **doc_changes):
    """Write a results JSON at {tmp}/<name> with fake rows (each edited by `rows`)."""
    def setup(tmp, monkeypatch):
        base = [{"framework": "fake", "framework_version": "1", "case": "fake-A[default]", "device": "cpu",
                 "device_name": "cpu", "dtype": "float64", "claimed_rule": "adamw", "verdict": "conforms",
                 "worst_units": 0.5, "goldens_run": 1}]
        doc = results.document(base, [{"framework": "fake"}], 0.1)
        doc["results"] = rows(base) if rows else base
        doc.update(doc_changes)
        (tmp / name).write_text(json.dumps(doc), encoding="utf-8")
        if name == "r.json":
            (tmp / "copy.json").write_text(json.dumps(doc), encoding="utf-8")
    return setup


def _torch_missing(tmp, monkeypatch):
    """The torch adapter as if torch were not installed."""
    def missing():
        raise ImportError("No module named 'torch'")
    monkeypatch.setattr(TORCH, "_import", missing)
    monkeypatch.setattr(TORCH, "_module", None)


def _broken_entry_point(tmp, monkeypatch):
    monkeypatch.setattr(registry, "_entry_points", lambda: {"broken": "optconform_no_such_module:ADAPTER"})


def _a_file(tmp, monkeypatch):
    (tmp / "plain.txt").write_text("x", encoding="utf-8")


def _absent(path) -> None:
    assert not path.exists(), f"{path} was made before the usage error"


def _untouched(path) -> None:
    assert path.read_text(encoding="utf-8") == "x"


FACTORY = ("check", "--factory", "nosuch_mod:make")

# --- the table --------------------------------------------------------------------------------------

ROWS = [
    # golden corpus: verified on every read, so `run` stops before any framework (torch or not)
    Row("golden-scaled-trajectory-run", ("run", "--framework", "torch", "--quiet"), 2,
        f"golden corpus integrity: {GOLDEN}: SHA-256 differs from the manifest", _scaled_trajectory(False)),
    Row("golden-scaled-trajectory-and-sha-run", ("run", "--framework", "torch", "--quiet"), 2,
        "differs from the digest pinned in this optconform", _scaled_trajectory(True)),
    Row("golden-scaled-trajectory-and-sha-check", ("golden", "--check"), 1, "differs from the digest pinned",
        _scaled_trajectory(True)),
    Row("golden-entry-removed", ("run", "--quiet"), 2, "differs from the digest pinned",
        _manifest_edit(_drop_entry, repin=False)),
    Row("golden-entry-removed-repinned", ("run", "--quiet"), 2, f"{GOLDEN}: not listed in the manifest",
        _manifest_edit(_drop_entry)),
    Row("golden-entry-duplicated", ("run", "--quiet"), 2, "is listed twice", _manifest_edit(_duplicate_entry)),
    Row("golden-entry-duplicated-check", ("golden", "--check"), 1, "is listed twice", _manifest_edit(_duplicate_entry)),
    Row("golden-entry-outside-corpus", ("run", "--quiet"), 2, "'../../README.md' is not a plain *.npz name",
        _manifest_edit(_escape_entry)),
    Row("golden-malformed-steps", ("run", "--quiet"), 2, "files[0].steps is 'six', expected int",
        _manifest_edit(_bad_steps)),
    Row("golden-unknown-entry-field", ("run", "--quiet"), 2, "unknown field(s) 'url'", _manifest_edit(_unknown_field)),
    Row("golden-files-not-a-list", ("run", "--quiet"), 2, "field 'files' is {'a': 1}, expected list",
        _manifest_edit(_files_not_list)),
    Row("golden-manifest-not-json", ("run", "--quiet"), 2, "manifest is corrupt", _raw_manifest("{not json")),
    Row("golden-manifest-missing", ("run", "--quiet"), 2, "manifest is missing",
        _corpus_file(lambda c: (c / "manifest.json").unlink())),
    Row("golden-file-deleted", ("run", "--quiet"), 2, f"{GOLDEN}: file is missing",
        _corpus_file(lambda c: (c / GOLDEN).unlink())),
    Row("golden-file-unlisted", ("run", "--quiet"), 2, "extra__thing.npz: not listed in the manifest",
        _corpus_file(lambda c: (c / "extra__thing.npz").write_bytes((c / GOLDEN).read_bytes()))),
    Row("golden-file-truncated", ("run", "--quiet"), 2, f"{GOLDEN}: SHA-256 differs from the manifest",
        _corpus_file(lambda c: (c / GOLDEN).write_bytes((c / GOLDEN).read_bytes()[:500]))),
    Row("golden-tampered-check-command", ("check", "--factory", "m:f"), 2, "golden corpus integrity",
        _corpus_file(lambda c: (c / GOLDEN).write_bytes(b"PK"))),
    # hyper-parameter overrides: typed and range-checked before the framework or factory is touched
    Row("hp-lr-not-a-number", (*FACTORY, "--hp", "lr=abc"), 2, "'lr' cannot be overridden"),
    Row("hp-eta", (*FACTORY, "--hp", "eta=0.5"), 2, "'eta' cannot be overridden"),
    Row("hp-unknown-name", (*FACTORY, "--hp", "learning_rate=0.1"), 2,
        "unknown hyper-parameter 'learning_rate' for rule 'adamw'; canonical names: beta1, beta2"),
    Row("hp-not-for-this-rule", (*FACTORY, "--rule", "adam", "--hp", "weight_decay=0.1"), 2,
        "unknown hyper-parameter 'weight_decay' for rule 'adam'"),
    Row("hp-weight-decay-abc", (*FACTORY, "--hp", "weight_decay=abc"), 2, "'weight_decay' must be a number, got 'abc'"),
    Row("hp-weight-decay-nan", (*FACTORY, "--hp", "weight_decay=NaN"), 2, "'weight_decay' must be finite, got nan"),
    Row("hp-eps-infinity", (*FACTORY, "--hp", "eps=Infinity"), 2, "'eps' must be finite"),
    Row("hp-eps-negative", (*FACTORY, "--hp", "eps=-1e-8"), 2, "'eps' = -1e-08 is out of range: must be >= 0"),
    Row("hp-beta2-one", (*FACTORY, "--hp", "beta2=1"), 2, "'beta2' = 1.0 is out of range: must be >= 0 and < 1"),
    Row("hp-beta1-above-one", (*FACTORY, "--hp", "beta1=1.5"), 2, "'beta1' = 1.5 is out of range"),
    Row("hp-weight-decay-negative", (*FACTORY, "--hp", "weight_decay=-0.1"), 2, "'weight_decay' = -0.1 is out of range"),
    Row("hp-bool-as-number", (*FACTORY, "--hp", "eps=true"), 2, "'eps' must be a number, got True"),
    Row("hp-nesterov-not-bool", (*FACTORY, "--rule", "sgd_momentum", "--hp", "nesterov=1"), 2,
        "'nesterov' must be true or false, got 1"),
    Row("hp-bad-regex", (*FACTORY, "--rule", "bert_adamw", "--hp", 'weight_decay_exclude=["(unclosed"]'), 2,
        "'(unclosed' is not a valid regular expression"),
    Row("hp-regex-not-list", (*FACTORY, "--rule", "bert_adamw", "--hp", "weight_decay_exclude=LayerNorm"), 2,
        "must be a list of regex strings, got 'LayerNorm'"),
    Row("hp-mask-not-bool", (*FACTORY, "--hp", 'weight_decay_mask={"w": 1}'), 2, "tensor name -> true/false"),
    Row("hp-no-equals", (*FACTORY, "--hp", "eps"), 2, "--hp 'eps': write NAME=VALUE"),
    Row("hp-given-twice", (*FACTORY, "--hp", "eps=1e-6", "--hp", "eps=1e-7"), 2, "--hp eps: given more than once"),
    Row("rule-unknown", (*FACTORY, "--rule", "adamw2"), 2, "unknown rule 'adamw2'"),
    Row("rule-unknown-knob", (*FACTORY, "--rule", "adamw[nosuch=1]"), 2, "nosuch"),
    # frameworks: not installed, broken plug-in, duplicates
    Row("check-framework-not-installed", ("check", "--factory", "m:f"), 2,
        "--framework torch: not installed here", _torch_missing),
    Row("fingerprint-framework-not-installed", ("fingerprint", "--factory", "m:f"), 2,
        "--framework torch: not installed here", _torch_missing),
    Row("check-unknown-framework", ("check", "--framework", "nosuch", "--factory", "m:f"), 2, "unknown framework 'nosuch'"),
    Row("run-broken-entry-point", ("run", "--framework", "broken", "--quiet", "--json", "{tmp}/out.json"), 1,
        "adapter 'broken' failed: ModuleNotFoundError", _broken_entry_point,
        lambda tmp: _saved_error_row(tmp)),
    Row("run-framework-twice", ("run", "--framework", "torch,torch"), 2, "--framework: 'torch' is given more than once"),
    Row("run-dtype-twice", ("run", "--dtype", "float32,float32"), 2, "--dtype: 'float32' is given more than once"),
    Row("run-device-tpu", ("run", "--device", "tpu"), 2, "unknown device 'tpu'"),
    # output paths: validated before any work
    Row("run-json-missing-folder", ("run", "--json", "{tmp}/no/such/dir/r.json"), 2,
        "--json '{tmp}/no/such/dir/r.json': folder '{tmp}/no/such/dir' does not exist"),
    Row("run-json-is-folder", ("run", "--json", "{tmp}"), 2, "--json '{tmp}': is a folder"),
    Row("run-html-under-a-file", ("run", "--html", "{tmp}/plain.txt/r.html"), 2, "does not exist", _a_file),
    Row("run-json-equals-html", ("run", "--json", "{tmp}/r", "--html", "{tmp}/r"), 2, "--html and --json name the same file"),
    Row("run-trajectories-in-a-folder-of-other-files", ("run", "--trajectories", "{tmp}"), 2,
        "--trajectories: {tmp} holds other files: give an empty or new directory", _a_file,
        lambda tmp: _untouched(tmp / "plain.txt")),
    Row("run-trajectories-is-the-json", ("run", "--json", "{tmp}/r", "--trajectories", "{tmp}/r"), 2,
        "--trajectories {tmp}/r: the same path as --json or --html", after=lambda tmp: _absent(tmp / "r")),
    Row("run-trajectories-under-a-file", ("run", "--trajectories", "{tmp}/plain.txt/t"), 2,
        "--trajectories {tmp}/plain.txt/t: ", _a_file),
    Row("check-json-unwritable", ("check", "--factory", "m:f", "--json", "{tmp}/no/c.json"), 2, "--json '{tmp}/no/c.json'"),
    Row("check-repro-unwritable", ("check", "--factory", "m:f", "--repro", "{tmp}/no/r.py"), 2, "--repro '{tmp}/no/r.py'"),
    Row("fingerprint-json-unwritable", ("fingerprint", "--factory", "m:f", "--json", "{tmp}"), 2, "is a folder"),
    Row("report-html-unwritable", ("report", "{tmp}/r.json", "--html", "{tmp}/no/r.html"), 2, "--html", _results_file()),
    Row("bench-json-unwritable", ("bench", "--json", "{tmp}/no/b.json"), 2, "--json '{tmp}/no/b.json'"),
    Row("bench-plot-unwritable", ("bench", "--plot", "{tmp}"), 2, "--plot '{tmp}': is a folder"),
    # report: results files
    Row("report-same-file-twice", ("report", "{tmp}/r.json", "{tmp}/r.json"), 2, "is given more than once", _results_file()),
    Row("report-same-rows-twice", ("report", "{tmp}/r.json", "{tmp}/copy.json"), 2,
        "row fake-A[default] cpu float64 is also in", _results_file()),
    Row("report-row-without-verdict", ("report", "{tmp}/r.json"), 2, "results[0] has no 'verdict' string",
        _results_file(lambda rows: [{k: v for k, v in r.items() if k != "verdict"} for r in rows])),
    Row("report-row-not-object", ("report", "{tmp}/r.json"), 2, "results[0] is list, expected an object",
        _results_file(lambda rows: [[1, 2]])),
    Row("report-units-not-number", ("report", "{tmp}/r.json"), 2, "worst_units is [1], expected a number",
        _results_file(lambda rows: [{**r, "worst_units": [1]} for r in rows])),
    Row("report-deviation-not-object", ("report", "{tmp}/r.json"), 2, "deviation must be an object",
        _results_file(lambda rows: [{**r, "deviation": "x"} for r in rows])),
    Row("report-environments-not-list", ("report", "{tmp}/r.json"), 2, "'environments' must be a list",
        _results_file(environments="torch")),
    Row("report-not-json", ("report", "{tmp}/plain.txt"), 2, "cannot read results JSON", _a_file),
    Row("report-html-javascript-issue-link", ("report", "{tmp}/r.json", "--html", "{tmp}/r.html"), 0, "1 xfail",
        _results_file(lambda rows: [{**r, "verdict": "xfail", "deviation": {
            "kind": "precision", "reason": "r", "issue": "javascript:alert(1)"}} for r in rows]),
        lambda tmp: _no_script_link(tmp / "r.html")),
    # bench: numbers
    Row("bench-sizes-inf", ("bench", "--sizes", "inf"), 2, "--sizes: 'inf' must be a finite number >= 1"),
    Row("bench-sizes-nan", ("bench", "--sizes", "nan"), 2, "--sizes: 'nan' must be a finite number >= 1"),
    Row("bench-sizes-zero", ("bench", "--sizes", "0"), 2, "--sizes: '0' must be a finite number >= 1"),
    Row("bench-sizes-text", ("bench", "--sizes", "lots"), 2, "--sizes: 'lots' is not a number"),
    Row("bench-threads-negative", ("bench", "--threads", "-1"), 2, "--threads -1: must be between 1 and"),
    Row("bench-threads-zero", ("bench", "--threads", "0"), 2, "--threads 0: must be between 1 and"),
    Row("bench-threads-too-many", ("bench", "--threads", "100000"), 2, "--threads 100000: must be between 1 and"),
    Row("bench-framework-twice", ("bench", "--framework", "torch,torch"), 2, "'torch' is given more than once"),
    Row("bench-rule-twice", ("bench", "--rule", "adamw,adamw"), 2, "--rule: 'adamw' is given more than once"),
    # translate: the source call is parsed, never evaluated; unknown names are usage errors
    Row("translate-eval-callee", ("translate", "--from", "__import__('os').system('true')"), 2,
        "the callee must be a dotted name"),
    Row("translate-eval-value", ("translate", "--from", "torch.optim.AdamW(lr=__import__('os'))"), 2,
        "keyword 'lr': only numbers, strings"),
    Row("translate-positional", ("translate", "--from", "torch.optim.AdamW(1e-3)"), 2, "positional arguments"),
    Row("translate-unknown-optimizer", ("translate", "--from", "torch.optim.Foo()"), 2, "unknown optimizer"),
    Row("translate-unknown-keyword", ("translate", "--from", "torch.optim.AdamW(wd=0.1)"), 2,
        "unknown keyword 'wd'"),
    Row("translate-unknown-target", ("translate", "--from", "torch.optim.AdamW()", "--to", "tf"), 2,
        "unknown target 'tf'"),
    Row("translate-keyword-twice", ("translate", "--from", "torch.optim.AdamW(lr=1, lr=2)"), 2, "given twice"),
    # help documents exit codes, --hp syntax and derived rules
    Row("help-exit-codes", ("--help",), 0, "2  a usage error, reported on one line before any work"),
    Row("help-hp-syntax", ("check", "--help"), 0, "--hp NAME=VALUE, repeatable, one name per flag; VALUE is JSON"),
    Row("help-derived-rules", ("check", "--help"), 0, "preset[knob=value,...]"),
    Row("help-run-exit-codes", ("run", "--help"), 0, "exit codes:"),
]


def test_rows_have_unique_ids():
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_hostile_cli_input(row, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPTCONFORM_REQUIRE", raising=False)
    check_row(row, tmp_path, monkeypatch, capsys)


def _no_script_link(path) -> None:
    page = path.read_text(encoding="utf-8")
    assert "href='javascript:" not in page and "javascript:alert(1)</code> (not an https link)" in page


def _saved_error_row(tmp) -> None:
    """The broken plug-in's failure is saved as an error row in --json, not lost with the run."""
    doc = results.read(tmp / "out.json")
    assert [(r["framework"], r["verdict"]) for r in doc["results"]] == [("broken", "error")]


def test_system_exit_in_a_case_is_an_error_row(fake):
    """SystemExit (any BaseException but KeyboardInterrupt) inside a case: an error row, the run goes on."""
    from optconform import runner

    class Exiting(fake.Adapter):
        def driver(self, case, inp, device, dtype):
            if case.name == "AdamW(exits)":
                raise SystemExit(3)
            return super().driver(case, inp, device, dtype)
    cases = [fake.case("AdamW(exits)", "adamw", fake.ADAMW_HP), fake.case("AdamW", "adamw", fake.ADAMW_HP)]
    rows = runner.run_adapter(Exiting(cases), dtypes=["float64"])
    assert [(r.name, r.verdict) for r in rows] == [("AdamW(exits)", "error"), ("AdamW", "conforms")]
    assert rows[0].error == "SystemExit: 3"


# --- the Python API: optconform.check and the reference -----------------------------------------------

def _factory(params, lr, beta1, beta2, eps, weight_decay):  # never called: validation comes first
    raise AssertionError("the factory must not run when an input is invalid")


API_ROWS = [
    ("check-eta", dict(eta=0.5), "'eta' cannot be overridden"),
    ("check-lr", dict(lr="abc"), "'lr' cannot be overridden"),
    ("check-unknown", dict(alpha=0.1), "unknown hyper-parameter 'alpha' for rule 'adamw'; canonical names"),
    ("check-weight-decay-nan", dict(weight_decay=math.nan), "'weight_decay' must be finite"),
    ("check-weight-decay-string", dict(weight_decay="0.1"), "'weight_decay' must be a number"),
    ("check-beta2-one", dict(beta2=1.0), "'beta2' = 1.0 is out of range"),
    ("check-eps-negative", dict(eps=np.float32(-1e-8)), "'eps' = "),
    ("check-bad-dtype", dict(dtype="float8"), "unknown dtype 'float8'"),
    ("check-repro-unwritable", dict(repro="/nonexistent-optconform/r.py"), "folder '/nonexistent-optconform' does not exist"),
]


@pytest.mark.parametrize("kwargs, fragment", [r[1:] for r in API_ROWS], ids=[r[0] for r in API_ROWS])
def test_hostile_check_api_input(kwargs, fragment):
    with pytest.raises(ValueError) as exc:
        checking.check(_factory, "adamw", "torch", **kwargs)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)


REFERENCE_ROWS = [
    ("np-float32-lr", dict(lr=np.float32(0.1)), None),
    ("np-float32-weight-decay", dict(weight_decay=np.float32(0.01), eps=np.float64(1e-8)), None),
    ("np-int-steps-lr", dict(lr=np.int64(1)), None),
    ("nan-weight-decay", dict(weight_decay=math.nan), "'weight_decay' must be a finite number"),
    ("bool-lr", dict(lr=True), "'lr' at step 1 must be a finite number"),
    ("np-bool-eps", dict(eps=np.True_), "'eps' must be a finite number"),
    ("string-eps", dict(eps="1e-8"), "'eps' must be a finite number"),
]


@pytest.mark.parametrize("hp, fragment", [r[1:] for r in REFERENCE_ROWS], ids=[r[0] for r in REFERENCE_ROWS])
def test_hostile_reference_input(hp, fragment):
    """np.float32 scalars are numbers (their float32 value, exactly); bools and strings are not."""
    args = ("adamw", {"w": [1.0, -2.0]}, [{"w": [0.5, 0.5]}] * 2)
    if fragment is None:
        run = trajectory(*args, **hp)
        plain = trajectory(*args, **{k: float(v) for k, v in hp.items()})
        assert np.array_equal(run.params["w"], plain.params["w"])
        return
    with pytest.raises(ValueError) as exc:
        trajectory(*args, **hp)
    assert fragment in str(exc.value)


def test_every_golden_hyper_parameter_is_in_range():
    """The range table (spec/hyperparameters.toml) admits every value the corpus itself uses."""
    from optconform import plan, validate
    from optconform.reference import get_rule
    for golden in plan.all_goldens():
        validate.hp_overrides(get_rule(golden.rule), golden.hp)
