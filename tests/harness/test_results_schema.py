"""spec/results.schema.json describes the results JSON: every committed baseline, a fake run's
document, its merge and a `run --json` file validate; documents the schema must refuse do not."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from optconform import results

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "spec" / "results.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", sorted((ROOT / "baselines").glob("*.json")), ids=lambda p: p.name)
def test_committed_baselines_validate(path):
    VALIDATOR.validate(json.loads(path.read_text(encoding="utf-8")))


def test_a_run_and_its_merge_validate(fake_run, tmp_path):
    env = [{"framework": "fake", "version": "1.2.3", "devices": {"cpu": "cpu"}, "gpu_driver": ""}]
    doc = results.document([r.to_json() for r in fake_run.rows], env, 1.5)
    path = tmp_path / "run.json"
    results.write(path, doc)                                   # the bytes `run --json` writes
    VALIDATOR.validate(json.loads(path.read_text(encoding="utf-8")))
    VALIDATOR.validate(results.merge([doc, doc]))


@pytest.mark.parametrize("change", [
    lambda d: d.update(schema="other"),
    lambda d: d.update(schema_version=2),
    lambda d: d["results"][0].update(verdict="fine"),
    lambda d: d["results"][0].update(worst_units="lots"),
    lambda d: d["results"][0].update(dtype="float8"),
    lambda d: d["results"][0].pop("case"),
    lambda d: d.pop("environments"),
], ids=["schema", "version", "verdict", "units", "dtype", "no-case", "no-environments"])
def test_the_schema_refuses_broken_documents(change):
    doc = json.loads((ROOT / "baselines" / "torch.json").read_text(encoding="utf-8"))
    change(doc)
    assert not VALIDATOR.is_valid(doc)
