"""Golden fixtures pin the on-disk contracts (DESIGN §3): every file of the refined-model
directory (config.json, energy_head.safetensors, README.md, references.json,
references.safetensors), the feature store's manifest.json and pairs.json, the schema of
an evaluation's metrics.json, and what `refine()` returns for fixed inputs.

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
from ebrm.model import files as model_files
from ebrm.references.serialize import to_parts
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
    root, version, build, files, constant, view = golden.ARTIFACTS[name]
    fixture = root / f"v{version}"
    assert fixture.is_dir(), (
        f"No golden fixture for {name} format version {version} ({fixture}): run "
        "`PYTHONPATH=src python tests/golden/regenerate.py` and commit it, keeping the older "
        "versions."
    )
    built = build(tmp_path / name)
    golden_files = golden.read_masked(fixture, files, view)
    now_files = golden.read_masked(built, files, view)
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
    if (fixture / model_files.REFERENCES_META).exists():
        meta = json.loads((fixture / model_files.REFERENCES_META).read_text("utf-8"))
        _, fields = to_parts(model.references)
        assert {**meta, **fields} == meta  # every field read back as written
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


def test_the_current_fixture_has_every_file_of_the_model_directory():
    fixture = golden.MODEL_DIR / f"v{golden.MODEL_FORMAT_VERSION}"
    assert sorted(p.name for p in fixture.iterdir()) == sorted(model_files.OWN_FILES)
    assert set(golden.MODEL_FILES) == {
        name for name in model_files.OWN_FILES if name.endswith(".json")
    }


@pytest.mark.parametrize("fixture", _versions(golden.MODEL_DIR), ids=lambda p: p.name)
def test_a_loaded_fixture_saves_back_identically(fixture, tmp_path):
    """Load then save: the JSON files equal up to the volatile fields (library versions),
    the binary files byte for byte."""
    out = EnergyRewardModel.from_pretrained(fixture, device="cpu").save_pretrained(tmp_path / "m")
    names = sorted(p.name for p in fixture.iterdir())
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        if name.endswith(".json"):
            assert golden.read_masked(out, (name,)) == golden.read_masked(fixture, (name,))
            assert (out / name).read_text("utf-8").splitlines()[0] == "{"
        elif name.endswith(".safetensors"):
            assert (out / name).read_bytes() == (fixture / name).read_bytes(), name
    config = json.loads((out / "config.json").read_text("utf-8"))
    fixture_config = json.loads((fixture / "config.json").read_text("utf-8"))
    assert config["weights_sha256"] == fixture_config["weights_sha256"]


def test_refine_of_the_fixture_model_equals_the_pinned_output():
    """The fixture model loaded from disk refines the pinned inputs to the numbers written
    once by regenerate.py (refinement and loading unchanged)."""
    pinned = json.loads(golden.REFINE_PINNED.read_text("utf-8"))
    fixture = golden.MODEL_DIR / f"v{golden.MODEL_FORMAT_VERSION}"
    model = EnergyRewardModel.from_pretrained(fixture, device="cpu")
    emb = torch.tensor(pinned["embeddings"])
    raw = torch.tensor(pinned["base_raw"])
    now = golden.refine_outputs(model, emb, raw)
    assert sorted(now) == sorted(pinned["outputs"])
    for key, expected in pinned["outputs"].items():
        torch.testing.assert_close(
            torch.tensor(now[key]), torch.tensor(expected), atol=1e-5, rtol=1e-5, msg=key
        )
    # and the pinned numbers have the properties refinement promises: conservative is
    # mean - k * spread, the mode is at least as compatible as every grid point, the mean
    # lies on the grid's range and equals the "mean" method's reward
    out = {k: torch.tensor(v) for k, v in pinned["outputs"].items()}
    k = model.refine_config.conservative_k
    torch.testing.assert_close(out["conservative"], out["mean"] - k * out["spread"])
    for method in ("mean", "mode", "conservative"):
        torch.testing.assert_close(out[f"reward:{method}"], out[method])
    grid = model.refine_config.grid()
    with torch.no_grad():
        f_grid = model.head(emb, grid)  # (N, G)
        f_mode = model.head(emb, out["mode"][:, None])[:, 0]  # (N,)
    assert (f_mode >= f_grid.max(dim=1).values - 1e-5).all()
    assert ((out["mean"] >= grid[0]) & (out["mean"] <= grid[-1])).all()
    assert (out["std"] > 0).all()


@pytest.mark.parametrize("benchmark", golden.BENCHMARKS)
def test_metrics_json_keeps_the_design_contract(benchmark):
    """DESIGN §3: {"benchmark", "data", "n", "base", "refined"}; pairwise sides have
    "accuracy"; rm-bench sides one object per domain with easy/normal/hard/avg + "overall"
    (the mean of the domains)."""
    fixture = golden.METRICS_DIR / f"v{golden.METRICS_SCHEMA_VERSION}"
    metrics = json.loads((fixture / benchmark / "metrics.json").read_text("utf-8"))
    assert metrics["benchmark"] == benchmark and isinstance(metrics["data"], str)
    assert isinstance(metrics["n"], int) and not isinstance(metrics["n"], bool)
    for side in (metrics["base"], metrics["refined"]):
        if benchmark == "pairwise":
            assert 0.0 <= side["accuracy"] <= 1.0
            continue
        domains = [d for d in ("chat", "code", "math", "safety") if d in side]
        assert domains == ["chat", "math"]
        for d in domains:
            assert set(side[d]) >= {"easy", "normal", "hard", "avg"}
        overall = sum(side[d]["avg"] for d in domains) / len(domains)
        assert side["overall"] == pytest.approx(overall)
