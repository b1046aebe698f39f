"""The refined-model directory's files (`ebrm.model.files`): one versioned-JSON reader for
config.json and references.json, so each fault raises one error class whichever file it is
in, with a message that names the file, the field and the fix."""

from __future__ import annotations

import json

import pytest

from ebrm._io import read_versioned_json, write_versioned_json
from ebrm.errors import (
    ArtifactChecksumError,
    ArtifactFileMissingError,
    ArtifactFormatError,
    ArtifactJSONError,
    ArtifactVersionError,
    CorruptArtifactError,
    IncompatibleArtifactError,
)
from ebrm.model import EnergyRewardModel
from ebrm.model import files as model_files
from tests.test_model import DIM, make_model_with_references


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A model directory with references; tests copy it before damaging it."""
    model, _, _ = make_model_with_references()
    return model.save_pretrained(tmp_path_factory.mktemp("saved") / "m")


@pytest.fixture
def model_dir(saved, tmp_path):
    import shutil

    return shutil.copytree(saved, tmp_path / "m")


def test_the_directory_holds_exactly_the_contract_files(saved):
    assert sorted(p.name for p in saved.iterdir()) == sorted(model_files.OWN_FILES)
    loaded = EnergyRewardModel.from_pretrained(saved)
    assert set(loaded.references.rewards) == {"laplace", "ensemble"}


def test_write_then_read_gives_the_object_back_and_the_bytes_are_canonical(tmp_path):
    obj = {"format": "demo", "format_version": 2, "b": [1, 2.5], "a": {"z": None, "y": "x"}}
    write_versioned_json(tmp_path / "f.json", obj)
    text = (tmp_path / "f.json").read_text("utf-8")
    assert text == json.dumps(obj, indent=2, sort_keys=True) + "\n"  # sorted, indented
    read = read_versioned_json(tmp_path / "f.json", format_name="demo", max_version=2, fix="x")
    assert read == obj
    with pytest.raises(ValueError):
        write_versioned_json(tmp_path / "nan.json", {"x": float("nan")})
    assert not (tmp_path / "nan.json").exists()


JSON_FILES = [model_files.CONFIG_NAME, model_files.REFERENCES_META]

# fault -> (how to make it, error class, what the message must say); {name} is the file
FAULTS = {
    "corrupt JSON": (lambda d: "{not json", ArtifactJSONError, r"{name} is not valid JSON"),
    "not an object": (lambda d: "[1, 2]", ArtifactJSONError, r"{name} must hold a JSON object"),
    "wrong format": (
        lambda d: json.dumps({**d, "format": "other"}),
        ArtifactFormatError,
        r"{name} is not an ebrm .* file: field 'format' is 'other', expected 'ebrm-",
    ),
    "newer version": (
        lambda d: json.dumps({**d, "format_version": 99}),
        ArtifactVersionError,
        r"{name}: field 'format_version' is 99 .* upgrade ebrm",
    ),
    "version not an int": (
        lambda d: json.dumps({**d, "format_version": "1"}),
        ArtifactJSONError,
        r"{name}: field 'format_version' must be an int",
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("name", JSON_FILES)
def test_each_fault_raises_one_error_class_in_every_json_file(model_dir, name, fault):
    make, error, message = FAULTS[fault]
    path = model_dir / name
    path.write_text(make(json.loads(path.read_text("utf-8"))), encoding="utf-8")
    with pytest.raises(error, match=message.format(name=name)) as info:
        EnergyRewardModel.from_pretrained(model_dir)
    # the base classes callers already catch
    base = IncompatibleArtifactError if fault in ("wrong format", "newer version") else None
    assert isinstance(info.value, base or CorruptArtifactError)
    assert "re-" in str(info.value) or "upgrade" in str(info.value) or "pass" in str(info.value)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (model_files.CONFIG_NAME, ArtifactFileMissingError),
        (model_files.WEIGHTS_NAME, ArtifactFileMissingError),
        (model_files.REFERENCES_TENSORS, ArtifactFileMissingError),
    ],
)
def test_a_missing_file_is_named(model_dir, name, error):
    (model_dir / name).unlink()
    with pytest.raises(error, match=f"{name} is missing; .*(re-save|re-run)"):
        EnergyRewardModel.from_pretrained(model_dir)


def test_without_references_json_the_model_has_no_references(model_dir):
    (model_dir / model_files.REFERENCES_META).unlink()
    (model_dir / model_files.REFERENCES_TENSORS).unlink()
    assert EnergyRewardModel.from_pretrained(model_dir).references is None


@pytest.mark.parametrize(
    ("name", "field"),
    [
        (model_files.WEIGHTS_NAME, "weights_sha256"),
        (model_files.REFERENCES_TENSORS, "tensors_sha256"),
    ],
)
def test_a_damaged_binary_file_fails_its_checksum_naming_the_field(model_dir, name, field):
    data_ = bytearray((model_dir / name).read_bytes())
    data_[-1] ^= 0xFF
    (model_dir / name).write_bytes(bytes(data_))
    with pytest.raises(ArtifactChecksumError, match=f"{name} .*'{field}'"):
        EnergyRewardModel.from_pretrained(model_dir)


def test_an_invalid_config_field_is_named(model_dir):
    config = json.loads((model_dir / "config.json").read_text("utf-8"))
    config["normalizer"] = {"scale": 4.0}  # no mean/std
    (model_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ArtifactJSONError, match="config.json: field 'normalizer' is invalid"):
        EnergyRewardModel.from_pretrained(model_dir)


def test_an_incomplete_reference_is_named(model_dir):
    meta = json.loads((model_dir / "references.json").read_text("utf-8"))
    meta["references"]["laplace"]["kind"] = "gaussian-process"
    (model_dir / "references.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ArtifactJSONError, match="references.json: reference 'laplace'"):
        EnergyRewardModel.from_pretrained(model_dir)


def test_saving_writes_the_json_files_through_the_one_writer(saved):
    for name in JSON_FILES:
        text = (saved / name).read_text("utf-8")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert json.loads((saved / "config.json").read_text())["head"]["embedding_dim"] == DIM
