"""Rebuild the golden on-disk fixtures in tests/golden/ with the current code.

    PYTHONPATH=src python tests/golden/regenerate.py

writes `refined_model/v<N>/` (what `EnergyRewardModel.save_pretrained` writes) and
`feature_store/v<N>/` (what `extract_features` writes) for the current format versions N,
from a tiny seeded head and a fake base RM, and leaves older `v<M>` directories alone:
they are the previous formats that `test_golden.py` keeps loading.

When to run it: `test_golden.py` says the format changed. Then, in this order:
1. bump the format version (`ebrm.model.io.FORMAT_VERSION` or
   `ebrm.features.layout.FORMAT_VERSION`) and keep the loader reading the previous version;
2. run this script and commit the new `v<N>` directory, keeping the old ones.
The script refuses to overwrite an existing `v<N>` whose content differs (that would hide
a format change without a version bump); `--force` overrides it, e.g. to fix a fixture.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script: make `tests` and `ebrm` importable
    sys.path[:0] = [str(HERE.parents[1]), str(HERE.parents[1] / "src")]

import torch  # noqa: E402

from ebrm.energy.config import EnergyHeadConfig  # noqa: E402
from ebrm.energy.head import EnergyHead  # noqa: E402
from ebrm.energy.normalize import RewardNormalizer  # noqa: E402
from ebrm.features import extract_features  # noqa: E402
from ebrm.features import store as feature_store  # noqa: E402
from ebrm.model import FORMAT_VERSION as MODEL_FORMAT_VERSION  # noqa: E402
from ebrm.model import EnergyRewardModel  # noqa: E402
from ebrm.refine.config import RefineConfig  # noqa: E402
from tests.fakes import FakeRM, make_pairs  # noqa: E402

MODEL_DIR = HERE / "refined_model"
STORE_DIR = HERE / "feature_store"
DIM = 4  # embedding width of the fixtures (tiny: the files stay a few KB)

# The JSON files whose content is the contract, per artifact (other files are only loaded).
MODEL_FILES = ("config.json",)
STORE_FILES = (feature_store.MANIFEST, feature_store.PAIRS_META)


def build_refined_model(out: Path) -> Path:
    """A refined-model directory from a seeded tiny head (no training: fully deterministic)."""
    torch.manual_seed(0)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=DIM, reward_widths=(3,), joint_widths=(5,)))
    normalizer = RewardNormalizer(scale=4.0).fit(torch.tensor([-1.0, 0.0, 0.5, 2.0]))
    refine = RefineConfig(method="mean", grid_min=-8.0, grid_max=8.0, grid_size=16)
    train_info = {"objective": "nce+", "steps": 0, "note": "golden fixture, not trained"}
    model = EnergyRewardModel(head.eval(), normalizer, refine, FakeRM(DIM).provenance(), train_info)
    return model.save_pretrained(out)


def build_feature_store(out: Path) -> Path:
    """A complete feature store of 6 pairs (some texts shared) in 2 shards, from a fake RM."""
    extract_features(
        FakeRM(DIM), make_pairs(6), out, shard_size=6, progress=False, data_spec="golden-pairs"
    )
    return out


# ---- masking: what may differ between two runs of the same format -----------------------

VOLATILE_KEYS = {
    # library versions of the machine that wrote the file
    "versions": "<versions>",
    "ebrm_version": "<version>",
    # checksums of binary files: they follow torch's RNG stream and safetensors' header
    # layout, not our format (the loaders verify them, which the load tests exercise)
    "weights_sha256": "<sha256>",
    "sha256": "<sha256>",
    "pairs_sha256": "<sha256>",
    # the extraction plan's fingerprint (for resuming): follows the planner's hashing
    "plan_hash": "<hash>",
    # timings
    "seconds": "<seconds>",
}
_ABSOLUTE_PATH = re.compile(r"^(/|[A-Za-z]:[\\/])")


def mask(value: Any, key: str | None = None) -> Any:
    """`value` with volatile fields replaced by placeholders that keep their shape.

    Masked: library versions (values only; their keys stay), checksums and hashes,
    timings, absolute paths (they name the machine), and float noise below 1e-6 relative
    (floats are rounded to 7 significant digits). Everything else — keys, types, the
    format name and version, settings, counts, ids — must match exactly.
    """
    if key in VOLATILE_KEYS:
        placeholder = VOLATILE_KEYS[key]
        if isinstance(value, dict):
            return {k: placeholder for k in sorted(value)}
        return placeholder
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.7g}")
    if isinstance(value, str) and _ABSOLUTE_PATH.match(value):
        return "<path>"
    return value


def read_masked(directory: Path, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: mask(json.loads((directory / name).read_text("utf-8"))) for name in names}


def differences(golden: Any, now: Any, where: str = "") -> list[str]:
    """Human-readable differences between two masked JSON values (empty if equal)."""
    if isinstance(golden, dict) and isinstance(now, dict):
        out = [f"{where}.{k}: removed" for k in sorted(set(golden) - set(now))]
        out += [f"{where}.{k}: added ({now[k]!r})" for k in sorted(set(now) - set(golden))]
        for k in sorted(set(golden) & set(now)):
            out += differences(golden[k], now[k], f"{where}.{k}")
        return out
    if isinstance(golden, list) and isinstance(now, list) and len(golden) == len(now):
        return [
            d
            for i, (g, n) in enumerate(zip(golden, now, strict=True))
            for d in differences(g, n, f"{where}[{i}]")
        ]
    if type(golden) is not type(now) or golden != now:
        return [f"{where}: golden {golden!r}, now {now!r}"]
    return []


ARTIFACTS = {
    # name: (fixture root, current format version, builder, contract files, version constant)
    "refined_model": (
        MODEL_DIR, MODEL_FORMAT_VERSION, build_refined_model, MODEL_FILES,
        "ebrm.model.io.FORMAT_VERSION",
    ),
    "feature_store": (
        STORE_DIR, feature_store.FORMAT_VERSION, build_feature_store, STORE_FILES,
        "ebrm.features.layout.FORMAT_VERSION",
    ),
}  # fmt: skip


def regenerate(name: str, *, force: bool = False) -> Path:
    """Write the current version's fixture of artifact `name`; returns its directory."""
    root, version, build, files, _ = ARTIFACTS[name]
    target = root / f"v{version}"
    with tempfile.TemporaryDirectory() as tmp:
        built = build(Path(tmp) / "artifact")
        if target.exists() and not force:
            changed = differences(read_masked(target, files), read_masked(built, files))
            if changed:
                raise SystemExit(
                    f"{target} exists and the format changed ({'; '.join(changed[:5])}): bump "
                    f"the format version first (keep {target.name} for the load test), or pass "
                    "--force to overwrite it."
                )
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(built, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="overwrite a changed v<N>")
    args = parser.parse_args(argv)
    for name in ARTIFACTS:
        print(f"wrote {regenerate(name, force=args.force).relative_to(HERE.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
