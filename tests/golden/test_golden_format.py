"""Golden file format v1: round trip, and GoldenFormatError (a ValueError) for every bad file."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from optconform.golden import corpus
from optconform.golden.format import FORMAT_VERSION, Golden, GoldenFormatError, read_golden, write_golden

SAMPLE = "adamw__random_wide.npz"


def _raw(path):
    with zipfile.ZipFile(path) as zf:
        config = json.loads(zf.read("config.json").decode("utf-8"))
        arrays = {n[:-4]: np.lib.format.read_array(io.BytesIO(zf.read(n)), allow_pickle=False)
                  for n in zf.namelist() if n != "config.json"}
    return config, arrays


@pytest.fixture
def sample():
    return _raw(corpus.corpus_dir() / SAMPLE)


def test_golden_format_error_is_value_error():
    assert issubclass(GoldenFormatError, ValueError)


def test_read_installed_sample():
    g = read_golden(corpus.corpus_dir() / SAMPLE)
    assert isinstance(g, Golden)
    assert g.name == SAMPLE[:-4] and g.rule == "adamw" and g.scenario == "random_wide" and g.variant == "default"
    assert g.tensors == ("layer/kernel", "layer/bias", "scale")
    assert g.steps == 100 and len(g.grads) == 100 and len(g.eta) == 100
    assert g.params["layer/kernel"].shape == (101, 3, 4)
    assert g.params["scale"].shape == (101,)
    assert g.params["layer/kernel"].dtype == np.float64
    np.testing.assert_array_equal(g.params["layer/kernel"][0], g.params0["layer/kernel"])
    assert set(g.state) >= {"m", "v"}
    assert g.run_hp["lr"] == list(g.lr) and g.run_hp["weight_decay"] == 0.01


def test_round_trip_of_a_built_case(tmp_path):
    spec = next(s for s in corpus.case_specs() if s.name == "lamb__mixed_shapes")
    config, arrays = corpus.build_case(spec)
    path = tmp_path / f"{spec.name}.npz"
    write_golden(path, config, arrays)
    g = read_golden(path)
    assert g.name == spec.name and g.rule == "lamb" and g.scenario == "mixed_shapes"
    assert g.tensors == ("scalar", "matrix", "single", "empty")
    for i, name in enumerate(g.tensors):
        np.testing.assert_array_equal(g.params[name], arrays[f"trajectory_{i}"])
        np.testing.assert_array_equal(g.params0[name], arrays[f"params0_{i}"])
        np.testing.assert_array_equal(np.stack([step[name] for step in g.grads]), arrays[f"grads_{i}"])
        for s in config["state_names"]:
            np.testing.assert_array_equal(g.state[s][name], arrays[f"state_{s}_{i}"])
    assert g.params["scalar"].shape == (5,) and g.params["empty"].shape == (5, 0, 3)
    assert g.lr == tuple(arrays["lr"]) and g.eta == tuple(arrays["eta"])
    assert g.hp == config["hp"]                     # non-finite values (trust_upper_bound = inf) included
    assert g.hp["trust_upper_bound"] == float("inf")
    # rewriting what was read gives the same bytes
    again = tmp_path / "again.npz"
    write_golden(again, config, arrays)
    assert again.read_bytes() == path.read_bytes()


def test_non_finite_hyper_parameters_survive_json(tmp_path, sample):
    config, arrays = sample
    config["hp"]["clip_value"] = float("inf")
    path = tmp_path / "x.npz"
    write_golden(path, config, arrays)
    with zipfile.ZipFile(path) as zf:
        assert json.loads(zf.read("config.json"))["hp"]["clip_value"] == "inf"      # strict JSON
    assert read_golden(path).hp["clip_value"] == float("inf")


def test_missing_file(tmp_path):
    with pytest.raises(GoldenFormatError, match="nothere.npz: file is missing"):
        read_golden(tmp_path / "nothere.npz")


def test_not_a_zip(tmp_path):
    path = tmp_path / "plain.npz"
    path.write_text("just some text, not a zip archive")
    with pytest.raises(GoldenFormatError, match=r"plain\.npz: unreadable or truncated \(BadZipFile"):
        read_golden(path)


def test_truncated_zip(tmp_path):
    path = tmp_path / "cut.npz"
    data = (corpus.corpus_dir() / SAMPLE).read_bytes()
    path.write_bytes(data[: len(data) - 200])
    with pytest.raises(GoldenFormatError, match=r"cut\.npz: unreadable or truncated"):
        read_golden(path)


def test_zip_without_config(tmp_path, sample):
    _, arrays = sample
    path = tmp_path / "noconfig.npz"
    np.savez(path, **arrays)
    with pytest.raises(GoldenFormatError, match=r"noconfig\.npz: no config\.json member"):
        read_golden(path)


def test_wrong_format_version(tmp_path, sample):
    config, arrays = sample
    config["format_version"] = FORMAT_VERSION + 1
    path = tmp_path / "future.npz"
    write_golden(path, config, arrays)
    with pytest.raises(GoldenFormatError, match=r"future\.npz: format_version 2"):
        read_golden(path)


def test_config_not_an_object(tmp_path, sample):
    _, arrays = sample
    path = tmp_path / "listconfig.npz"
    write_golden(path, [1, 2, 3], arrays)
    with pytest.raises(GoldenFormatError, match=r"listconfig\.npz: format_version None"):
        read_golden(path)


def test_config_lacking_a_key(tmp_path, sample):
    config, arrays = sample
    del config["steps"]
    path = tmp_path / "nosteps.npz"
    write_golden(path, config, arrays)
    with pytest.raises(GoldenFormatError, match=r"nosteps\.npz: config\.json lacks 'steps'"):
        read_golden(path)


@pytest.mark.parametrize("member", ["trajectory_1", "grads_0", "params0_2", "lr", "eta", "state_m_0"])
def test_missing_array(tmp_path, sample, member):
    config, arrays = sample
    del arrays[member]
    path = tmp_path / "hole.npz"
    write_golden(path, config, arrays)
    with pytest.raises(GoldenFormatError, match=rf"hole\.npz: array '{member}' is missing"):
        read_golden(path)


def test_array_of_wrong_shape(tmp_path, sample):
    config, arrays = sample
    arrays["trajectory_0"] = arrays["trajectory_0"][:-1]
    path = tmp_path / "short.npz"
    write_golden(path, config, arrays)
    with pytest.raises(GoldenFormatError, match=r"short\.npz: array 'trajectory_0' has shape \(100, 3, 4\), expected \(101, 3, 4\)"):
        read_golden(path)


def test_object_array_member_is_rejected_no_pickle(tmp_path, sample):
    config, arrays = sample
    path = tmp_path / "pickled.npz"
    write_golden(path, config, arrays)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([{"evil": 1}, None], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("extra_obj.npy", buf.getvalue())
    with pytest.raises(GoldenFormatError, match=r"pickled\.npz: unreadable or truncated \(ValueError"):
        read_golden(path)


def test_config_not_json(tmp_path, sample):
    _, arrays = sample
    path = tmp_path / "badjson.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", b"{not json")
        zf.writestr("lr.npy", b"")
    with pytest.raises(GoldenFormatError, match=r"badjson\.npz: unreadable or truncated"):
        read_golden(path)


def test_writing_is_deterministic(tmp_path, sample):
    config, arrays = sample
    write_golden(tmp_path / "a.npz", config, arrays)
    write_golden(tmp_path / "b.npz", config, dict(reversed(list(arrays.items()))))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.npz") as zf:
        infos = zf.infolist()
    assert infos[0].filename == "config.json"
    assert [i.filename for i in infos[1:]] == sorted(i.filename for i in infos[1:])
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
