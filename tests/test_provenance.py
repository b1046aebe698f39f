"""provenance_differences: the one comparison of recorded settings, and its users' messages."""

from __future__ import annotations

import pytest

from ebrm._provenance import provenance_differences
from ebrm.errors import IncompatibleArtifactError
from ebrm.features.prepare import check_compatible
from ebrm.model.base_rm import check_base_rm

FIELDS = (("max length", "max_length"), ("dtype", "dtype"), ("hash", "weights_hash"))


def test_differences_in_field_order_compared_as_text():
    a = {"max_length": 256, "dtype": "float32", "weights_hash": "w0"}
    b = {"max_length": "256", "dtype": "bfloat16", "weights_hash": None}
    # 256 and "256" agree as text; a value missing on one side differs unless told otherwise
    assert provenance_differences(a, b, fields=FIELDS) == [
        "dtype 'float32' vs 'bfloat16'",
        "hash 'w0' vs None",
    ]
    assert provenance_differences(a, b, fields=FIELDS, missing_differs=False) == [
        "dtype 'float32' vs 'bfloat16'"
    ]
    template = "{key}: {a} -> {b} ({what})"
    assert provenance_differences(a, b, fields=FIELDS[1:2], template=template) == [
        "dtype: float32 -> bfloat16 (dtype)"
    ]


def _manifest(**changes):
    manifest = {
        "base_rm": {"weights_hash": "w0", "dtype": "float32"},
        "embedding_dim": 8,
        "max_length": 64,
        "truncation_side": "left",
        "storage_dtype": "float32",
        "shard_size": 100,
        "plan_hash": "p0",
    }
    return {**manifest, **changes}


def test_a_store_is_continued_only_with_its_settings(tmp_path, monkeypatch):
    (tmp_path / "manifest.json").write_text("{}")
    monkeypatch.setattr("ebrm.features.layout.read_manifest", lambda out: _manifest())
    assert check_compatible(tmp_path, _manifest()) == _manifest()
    other = _manifest(base_rm={"weights_hash": "w1", "dtype": "float32"}, shard_size=50)
    with pytest.raises(IncompatibleArtifactError) as error:
        check_compatible(tmp_path, other)
    assert (
        "base RM weights (weights_hash): store has 'w0', this run has 'w1'; "
        "shard size: store has 100, this run has 50." in str(error.value)
    )


class _RM:
    name_or_path = "rm"

    def __init__(self, **settings):
        self.__dict__.update(settings)


def test_check_base_rm_names_both_values_and_skips_what_is_not_recorded():
    info = {"name_or_path": "rm", "weights_hash": "w0", "max_length": 64}
    check_base_rm(info, _RM(weights_hash="w0", max_length=64, hidden_size=8), 8)
    check_base_rm(info, _RM(truncation_side="right"), 8)  # nothing on the other side: passes
    with pytest.raises(IncompatibleArtifactError, match="weights hash w1 .*recorded: w0"):
        check_base_rm(info, _RM(weights_hash="w1"), 8)
    with pytest.raises(IncompatibleArtifactError, match="max length 32 .* made with 64; .*=64"):
        check_base_rm(info, _RM(max_length=32), 8)
    with pytest.raises(IncompatibleArtifactError, match="hidden size 4 .* dimension 8"):
        check_base_rm(info, _RM(hidden_size=4), 8)
