"""The known-deviations registry: validation errors, version conditions, pattern matching, and the
shipped registry."""
from __future__ import annotations

import fnmatch

import pytest

from optconform import deviations
from optconform.deviations import Cover, Deviation, parse, version_in

GOOD = """
schema_version = 2
[[deviation]]
id = "torch-nadam-scalars"
framework = "torch"
versions = ">=2.13,<2.14"
kind = "precision"
reason = "float32 scalar state"
issue = "https://github.com/pytorch/pytorch/issues/110940"

[[deviation.covers]]
case = "torch-NAdam*"
dtype = "float64"
except_golden = ["nadamw__zero_grad"]

[[deviation.covers]]
case = "torch-RAdam*"
golden = "radam__*"
"""


def _entry(covers=({"case": "torch-X*"},), **fields) -> str:
    base = {"id": "e", "framework": "torch", "versions": ">=2.13", "kind": "bug", "reason": "r",
            "issue": "https://example.org/1"}
    base.update(fields)
    lines = ["[[deviation]]"]
    for k, v in base.items():
        if v is None:
            continue
        lines.append(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {v}")
    for cover in covers:
        lines.append("[[deviation.covers]]")
        lines += [f"{k} = {v!r}".replace("'", '"') for k, v in cover.items()]
    return "\n".join(lines) + "\n"


def _doc(*entries) -> str:
    return "schema_version = 2\n" + "".join(entries)


def test_parse_good_entry():
    (dev,) = parse(GOOD, "x.toml")
    assert dev.id == "torch-nadam-scalars" and dev.framework == "torch" and dev.kind == "precision"
    first, second = dev.covers
    assert first.case == "torch-NAdam*" and first.golden == ("*",) and first.except_golden == ("nadamw__zero_grad",)
    assert first.device == "*" and first.dtype == "float64"
    assert second.golden == ("radam__*",) and second.dtype == "*"


def test_parse_empty_registry():
    assert parse("schema_version = 2\n", "x.toml") == []


def test_schema_1_is_rejected_with_a_pointer_to_the_new_format():
    old = 'schema_version = 1\n[[deviation]]\nframework = "torch"\ncase = "x"\n'
    with pytest.raises(ValueError, match=r"schema_version 1.*deviation.covers"):
        parse(old, "x.toml")


@pytest.mark.parametrize("field", ["id", "framework", "versions", "kind", "reason", "issue"])
def test_missing_required_field(field):
    with pytest.raises(ValueError, match=rf"x\.toml: deviation #1.* lacks {field}"):
        parse(_doc(_entry(**{field: None})), "x.toml")


def test_several_missing_fields_are_all_named():
    with pytest.raises(ValueError, match=r"lacks reason, issue"):
        parse(_doc(_entry(reason="", issue=None)), "x.toml")


def test_an_entry_must_cover_something():
    with pytest.raises(ValueError, match=r"covers nothing"):
        parse(_doc(_entry(covers=())), "x.toml")


def test_a_cover_needs_a_case_and_known_fields():
    with pytest.raises(ValueError, match=r"cover #1 lacks case"):
        parse(_doc(_entry(covers=({"dtype": "float32"},))), "x.toml")
    with pytest.raises(ValueError, match=r"cover #2 has unknown field\(s\) dtypes"):
        parse(_doc(_entry(covers=({"case": "a"}, {"case": "b", "dtypes": "float32"}))), "x.toml")


def test_place_fields_at_entry_level_are_rejected():
    with pytest.raises(ValueError, match=r"unknown field\(s\) case.*deviation.covers"):
        parse(_doc(_entry(case="torch-X*")), "x.toml")


def test_one_entry_per_root_cause():
    """The same reason and issue twice, or the same id twice, is one root cause registered twice."""
    with pytest.raises(ValueError, match=r"repeats 'a' \(same reason and issue\)"):
        parse(_doc(_entry(id="a"), _entry(id="b")), "x.toml")
    with pytest.raises(ValueError, match=r"repeats 'a' \(same id\)"):
        parse(_doc(_entry(id="a"), _entry(id="a", reason="other")), "x.toml")
    assert len(parse(_doc(_entry(id="a"), _entry(id="b", reason="other")), "x.toml")) == 2


def test_entry_number_in_message():
    text = _doc(_entry(id="a"), _entry(id="b", kind="typo", reason="other"))
    with pytest.raises(ValueError, match=r"deviation #2 \(b\) has kind 'typo'"):
        parse(text, "x.toml")


def test_bad_kind():
    with pytest.raises(ValueError, match=r"x\.toml: deviation #1 \(e\) has kind 'wontfix'.*bug"):
        parse(_doc(_entry(kind="wontfix")), "x.toml")


@pytest.mark.parametrize("issue", ["http://github.com/x/y/issues/1", "github.com/x/y/issues/1", "see chat"])
def test_issue_must_be_https(issue):
    with pytest.raises(ValueError, match=r"x\.toml: deviation #1 \(e\) needs an https link"):
        parse(_doc(_entry(issue=issue)), "x.toml")


@pytest.mark.parametrize("versions", ["~=2.13", "2.13", ">=2.13;<2.14", "=>2.13"])
def test_bad_version_syntax(versions):
    with pytest.raises(ValueError, match="cannot parse version condition"):
        parse(_doc(_entry(versions=versions)), "x.toml")


@pytest.mark.parametrize("versions", [">=2.13,~=2.14", ">=2.13,", ">1.0,2.0"])
def test_bad_version_syntax_after_a_false_condition(versions):
    """Every condition is validated at parse time, not only those before the first one that "0"
    fails: otherwise the typo surfaces as a ValueError in the middle of a run, at lookup."""
    with pytest.raises(ValueError, match="cannot parse version condition"):
        parse(_doc(_entry(versions=versions)), "x.toml")


def test_invalid_toml_is_a_value_error():
    with pytest.raises(ValueError):
        parse("[[deviation]\nframework = ", "x.toml")


@pytest.mark.parametrize("version,spec,expected", [
    ("2.13.0+cpu", ">=2.13,<2.14", True),
    ("2.13.1", ">=2.13,<2.14", True),
    ("2.14.0", ">=2.13,<2.14", False),
    ("2.12.9", ">=2.13,<2.14", False),
    ("2.13.0+cu121", "==2.13", True),
    ("2.13.0", "==2.13.0", True),
    ("2.13.1", "==2.13", False),
    ("2.13.1", "!=2.13.0", True),
    ("1.9.1", ">1.9", True),
    ("1.9.0", ">1.9", False),
    ("1.9.0", "<=1.9", True),
    ("0.4.30", "<0.5", True),
    ("2.13.0rc1", ">=2.13", True),
    ("anything", "*", True),
    ("anything", "", True),
    ("2.13.0", " >= 2.13 , < 2.14 ", True),
])
def test_version_in(version, spec, expected):
    assert version_in(version, spec) is expected


def test_applies_patterns():
    dev = Deviation("d", "torch", ">=2.13,<2.14", "precision", "r", "https://x",
                    (Cover("torch-NAdam*", ("nadam*", "*random*"), ("nadamw__zero_grad",), "*", "float64"),
                     Cover("torch-RAdam*", dtype="float32")))
    ok = ("torch", "2.13.0+cpu", "torch-NAdam[fused]", "nadam__first_steps", "cpu", "float64")
    assert dev.applies(*ok)
    assert dev.applies("torch", "2.13.0", "torch-NAdam(decoupled_weight_decay)[forloop]", "adamw__random_wide",
                       "cuda", "float64")
    assert not dev.applies("torch", "2.13.0", "torch-NAdam[fused]", "nadamw__zero_grad", "cpu", "float64")
    assert not dev.applies("torch", "2.13.0", "torch-NAdam[fused]", "adamw__first_steps", "cpu", "float64")
    assert not dev.applies("jax", *ok[1:])
    assert not dev.applies("torch", "2.14.0", *ok[2:])
    assert not dev.applies("torch", "2.13.0", "torch-Adam[fused]", *ok[3:])
    assert not dev.applies(*ok[:5], "float32")
    assert dev.applies("torch", "2.13.0", "torch-RAdam[fused]", "radam__x", "cpu", "float32")   # the second cover


def test_shipped_registry_parses():
    deviations.registry.cache_clear()
    devs = deviations.registry()
    assert isinstance(devs, tuple) and devs
    for dev in devs:
        assert dev.kind in ("bug", "by-design", "precision") and dev.covers
        assert dev.issue.startswith("https://")
        version_in("0", dev.versions)
    # the NAdam float32-scalar finding is registered for torch 2.13
    assert deviations.lookup("torch", "2.13.0+cpu", "torch-NAdam[forloop]", "nadam__first_steps", "cpu", "float64")
    assert deviations.lookup("torch", "2.13.0+cpu", "torch-NAdam[forloop]", "nadam__first_steps", "cpu",
                             "float32") is None
    assert deviations.lookup("torch", "2.13.0+cpu", "torch-AdamW[fused]", "adamw__first_steps", "cpu",
                             "float64") is None


def test_every_cover_names_existing_goldens_or_a_test():
    """A registry entry that matches nothing is dead weight (or a typo that hides nothing): every
    cover's golden patterns match some golden of the corpus, or it names the test that shows it."""
    from pathlib import Path

    from optconform import plan
    names = [g.name for g in plan.all_goldens()]
    root = Path(__file__).resolve().parents[2]
    deviations.registry.cache_clear()
    for dev in deviations.registry():
        for cover in dev.covers:
            if cover.shown_by:
                path, _, test = cover.shown_by.partition("::")
                assert f"def {test}(" in (root / path).read_text(), f"{dev.id}: {cover.shown_by} does not exist"
                continue
            for pattern in cover.golden:
                assert fnmatch.filter(names, pattern), f"{dev.id}: golden pattern {pattern!r} matches no golden"
            assert cover.case.startswith(dev.framework + "-"), f"{dev.id}: case {cover.case!r} is not a {dev.framework} case"
            assert fnmatch.filter(["float64", "float32", "float16", "bfloat16"], cover.dtype), f"{dev.id}: dtype {cover.dtype!r}"
