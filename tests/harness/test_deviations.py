"""The known-deviations registry: validation errors, version conditions, pattern matching, and the
shipped registry."""
from __future__ import annotations

import pytest

from optconform import deviations
from optconform.deviations import Deviation, parse, version_in

GOOD = """
schema_version = 1
[[deviation]]
framework = "torch"
versions = ">=2.13,<2.14"
case = "torch-NAdam*"
dtype = "float64"
except_golden = ["nadamw__zero_grad"]
kind = "precision"
reason = "float32 scalar state"
issue = "https://github.com/pytorch/pytorch/issues/110940"
"""


def _entry(**fields) -> str:
    base = {"framework": "torch", "versions": ">=2.13", "case": "torch-X*", "kind": "bug", "reason": "r",
            "issue": "https://example.org/1"}
    base.update(fields)
    lines = ["[[deviation]]"]
    for k, v in base.items():
        if v is None:
            continue
        lines.append(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {v}")
    return "\n".join(lines) + "\n"


def test_parse_good_entry():
    (dev,) = parse(GOOD, "x.toml")
    assert dev.framework == "torch" and dev.case == "torch-NAdam*" and dev.kind == "precision"
    assert dev.golden == ("*",) and dev.except_golden == ("nadamw__zero_grad",)
    assert dev.device == "*" and dev.dtype == "float64"


def test_parse_empty_registry():
    assert parse("schema_version = 1\n", "x.toml") == []


@pytest.mark.parametrize("field", ["framework", "versions", "case", "kind", "reason", "issue"])
def test_missing_required_field(field):
    with pytest.raises(ValueError, match=rf"x\.toml: deviation #1 lacks {field}"):
        parse(_entry(**{field: None}), "x.toml")


def test_several_missing_fields_are_all_named():
    with pytest.raises(ValueError, match=r"lacks case, reason"):
        parse(_entry(case=None, reason=""), "x.toml")


def test_entry_number_in_message():
    text = _entry() + _entry(kind="typo")
    with pytest.raises(ValueError, match=r"deviation #2 has kind 'typo'"):
        parse(text, "x.toml")


def test_bad_kind():
    with pytest.raises(ValueError, match=r"x\.toml: deviation #1 has kind 'wontfix'.*bug"):
        parse(_entry(kind="wontfix"), "x.toml")


@pytest.mark.parametrize("issue", ["http://github.com/x/y/issues/1", "github.com/x/y/issues/1", "see chat"])
def test_issue_must_be_https(issue):
    with pytest.raises(ValueError, match=r"x\.toml: deviation #1 needs an https link"):
        parse(_entry(issue=issue), "x.toml")


@pytest.mark.parametrize("versions", ["~=2.13", "2.13", ">=2.13;<2.14", "=>2.13"])
def test_bad_version_syntax(versions):
    with pytest.raises(ValueError, match="cannot parse version condition"):
        parse(_entry(versions=versions), "x.toml")


@pytest.mark.parametrize("versions", [">=2.13,~=2.14", ">=2.13,", ">1.0,2.0"])
def test_bad_version_syntax_after_a_false_condition(versions):
    """Every condition is validated at parse time, not only those before the first one that "0"
    fails: otherwise the typo surfaces as a ValueError in the middle of a run, at lookup."""
    with pytest.raises(ValueError, match="cannot parse version condition"):
        parse(_entry(versions=versions), "x.toml")


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
    dev = Deviation("torch", ">=2.13,<2.14", "torch-NAdam*", ("nadam*", "*random*"), ("nadamw__zero_grad",), "*",
                    "float64", "precision", "r", "https://x")
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


def test_shipped_registry_parses():
    deviations.registry.cache_clear()
    devs = deviations.registry()
    assert isinstance(devs, tuple) and devs
    for dev in devs:
        assert dev.kind in ("bug", "by-design", "precision")
        assert dev.issue.startswith("https://")
        version_in("0", dev.versions)
    # the NAdam float32-scalar finding is registered for torch 2.13
    assert deviations.lookup("torch", "2.13.0+cpu", "torch-NAdam[forloop]", "nadam__first_steps", "cpu", "float64")
    assert deviations.lookup("torch", "2.13.0+cpu", "torch-NAdam[forloop]", "nadam__first_steps", "cpu",
                             "float32") is None
    assert deviations.lookup("torch", "2.13.0+cpu", "torch-AdamW[fused]", "adamw__first_steps", "cpu",
                             "float64") is None
