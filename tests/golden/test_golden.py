"""Golden fixtures pin the on-disk contracts: the refined model's config.json and the
feature store's manifest.json and pairs.json (DESIGN §3).

* What this code writes today must equal the fixture of the current format version, up to
  the volatile fields `regenerate.mask` documents (library versions, checksums, timings,
  absolute paths, float noise). A difference means the format changed: bump the format
  version, keep reading the previous one, and run `tests/golden/regenerate.py`.
* Every fixture version kept in tests/golden/ must still load: the previous formats stay
  readable after a bump.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ebrm.features import FeatureStore
from ebrm.model import EnergyRewardModel
from tests.golden import regenerate as golden

HOW_TO = (
    "The on-disk format changed. Bump {constant} (now {version}), keep the loader reading "
    "version {version}, then run `PYTHONPATH=src python tests/golden/regenerate.py` and commit "
    "the new v{next} directory next to v{version} (it tests that old files still load)."
)


def _versions(root: Path) -> list[Path]:
    return sorted(root.glob("v*"), key=lambda p: int(p.name[1:]))


@pytest.mark.parametrize("name", sorted(golden.ARTIFACTS))
def test_what_we_write_matches_the_golden_fixture(name, tmp_path):
    root, version, build, files, constant = golden.ARTIFACTS[name]
    fixture = root / f"v{version}"
    assert fixture.is_dir(), (
        f"No golden fixture for {name} format version {version} ({fixture}): run "
        "`PYTHONPATH=src python tests/golden/regenerate.py` and commit it, keeping the older "
        "versions."
    )
    built = build(tmp_path / name)
    golden_files = golden.read_masked(fixture, files)
    now_files = golden.read_masked(built, files)
    changed = golden.differences(golden_files, now_files)
    hint = HOW_TO.format(constant=constant, version=version, next=version + 1)
    assert not changed, f"{name} differs from {fixture}:\n  " + "\n  ".join(changed) + f"\n{hint}"
    # same files in the directory, too (a new or renamed file is a format change)
    assert sorted(p.name for p in built.iterdir()) == sorted(p.name for p in fixture.iterdir())


def test_the_mask_hides_only_volatile_fields():
    written = {
        "format_version": 1,
        "versions": {"torch": "2.13.0", "ebrm": "0.1.0"},
        "weights_sha256": "ab" * 32,
        "base_rm": {"name_or_path": "/home/me/rm", "weights_hash": "sha256:12"},
        "normalizer": {"std": 1.0825317547305484},
        "seconds": 3.2,
        "ids": ["pair-0"],
    }
    assert golden.mask(written) == {
        "format_version": 1,
        "versions": {"ebrm": "<versions>", "torch": "<versions>"},  # keys stay pinned
        "weights_sha256": "<sha256>",
        "base_rm": {"name_or_path": "<path>", "weights_hash": "sha256:12"},
        "normalizer": {"std": 1.082532},
        "seconds": "<seconds>",
        "ids": ["pair-0"],
    }
    assert golden.differences({"a": 1, "b": [1.0]}, {"a": 1.0, "c": 2}) == [
        ".b: removed",
        ".c: added (2)",
        ".a: golden 1, now 1.0",
    ]


@pytest.mark.parametrize("fixture", _versions(golden.MODEL_DIR), ids=lambda p: p.name)
def test_every_refined_model_version_still_loads(fixture):
    config = json.loads((fixture / "config.json").read_text("utf-8"))
    model = EnergyRewardModel.from_pretrained(fixture, device="cpu")
    assert model.head.config.to_dict() == config["head"]
    assert model.refine_config.to_dict() == config["refine"]
    assert model.normalizer.to_dict() == config["normalizer"]
    assert model.base_rm_info == config["base_rm"]
    emb = torch.randn(
        3, config["head"]["embedding_dim"], generator=torch.Generator().manual_seed(0)
    )
    refined = model.refine(emb, torch.tensor([0.0, 1.0, -1.0]))
    assert torch.isfinite(refined.reward).all() and refined.reward.shape == (3,)


@pytest.mark.parametrize("fixture", _versions(golden.STORE_DIR), ids=lambda p: p.name)
def test_every_feature_store_version_still_loads(fixture):
    manifest = json.loads((fixture / "manifest.json").read_text("utf-8"))
    meta = json.loads((fixture / "pairs.json").read_text("utf-8"))
    store = FeatureStore.open(fixture)
    store.verify()  # every checksum recorded in the manifest holds
    features = store.load()
    assert features.embeddings.shape == (manifest["num_rows"], manifest["embedding_dim"])
    assert features.num_pairs == manifest["num_pairs"] == len(meta["ids"])
    ids, subsets = store.pair_info()
    assert (ids, subsets) == (meta["ids"], meta["subsets"])
    assert store.provenance == manifest["base_rm"]
    # version 2 added a prompt hash per pair; version 1 stores load without them
    expected = tuple(meta["prompt_hashes"]) if manifest["format_version"] >= 2 else None
    assert features.prompt_hashes == expected
