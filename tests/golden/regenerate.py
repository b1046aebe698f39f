"""Rebuild the golden on-disk fixtures in tests/golden/ with the current code.

    PYTHONPATH=src python tests/golden/regenerate.py

writes `refined_model/v<N>/` (what `EnergyRewardModel.save_pretrained` writes: every file
of the model directory, references included), `feature_store/v<N>/` (what
`extract_features` writes) and `metrics/v<N>/` (the metrics.json of a pairwise and an
rm-bench evaluation) for the current format versions N, from a tiny seeded head, fixed
references and a fake base RM, and leaves older `v<M>` directories alone: they are the
previous formats that `test_golden.py` keeps loading. It also writes `refine_pinned.json`:
fixed inputs and what `refine()` of the fixture model returns for them, which the test
recomputes (written once; rewritten only with `--pin-refine`).

When to run it: `test_golden.py` says the format changed. Then, in this order:
1. bump the format version (`ebrm.model.files.FORMAT_VERSION` or `REFERENCES_VERSION`,
   or `ebrm.features.layout.FORMAT_VERSION`) and keep the loader reading the previous version;
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
from ebrm.evaluation.runner import refine_and_evaluate  # noqa: E402
from ebrm.evaluation.units import Units  # noqa: E402
from ebrm.features import extract_features  # noqa: E402
from ebrm.features import store as feature_store  # noqa: E402
from ebrm.model import FORMAT_VERSION as MODEL_FORMAT_VERSION  # noqa: E402
from ebrm.model import EnergyRewardModel  # noqa: E402
from ebrm.model import files as model_files  # noqa: E402
from ebrm.references import EnsembleReference, LaplaceReference, ReferenceSet  # noqa: E402
from ebrm.refine.config import RefineConfig  # noqa: E402
from tests.fakes import FakeRM, make_pairs  # noqa: E402

MODEL_DIR = HERE / "refined_model"
STORE_DIR = HERE / "feature_store"
METRICS_DIR = HERE / "metrics"
REFINE_PINNED = HERE / "refine_pinned.json"
DIM = 4  # embedding width of the fixtures (tiny: the files stay a few KB)
# metrics.json has no format field: its schema is the DESIGN §3 contract, pinned as v1
METRICS_SCHEMA_VERSION = 1
BENCHMARKS = ("pairwise", "rm-bench")

# The JSON files whose content is the contract, per artifact (other files are only loaded).
MODEL_FILES = (model_files.CONFIG_NAME, model_files.REFERENCES_META)
STORE_FILES = (feature_store.MANIFEST, feature_store.PAIRS_META)
METRICS_FILES = tuple(f"{name}/metrics.json" for name in BENCHMARKS)


def golden_references() -> ReferenceSet:
    """Fixed references (hand-set numbers, not a fit: the fixture pins the format, and a
    change to the fitting must not look like a format change)."""
    g = torch.Generator().manual_seed(1)
    center = torch.linspace(-0.5, 0.5, DIM, dtype=torch.float64)
    laplace = LaplaceReference(
        weight=torch.randn(DIM, generator=g, dtype=torch.float64),
        center=center,
        covariance=torch.eye(DIM, dtype=torch.float64) * 0.25,
        prior_precision=2.0,
        temperature=0.8,
    )
    ensemble = EnsembleReference(
        weights=torch.randn(2, DIM, generator=g, dtype=torch.float64),
        center=center.clone(),  # safetensors refuses tensors that share memory
        prior_precision=1.0,
        seed=3,
        temperature=1.1,
    )
    report = {
        "base": {"temperature": 1.25},
        "laplace": {"prior_precision": 2.0, "temperature": 0.8},
        "ensemble": {"prior_precision": 1.0, "size": 2, "temperature": 1.1},
    }
    return ReferenceSet({"laplace": laplace, "ensemble": ensemble}, 1.25, report)


def golden_model() -> EnergyRewardModel:
    """The fixture model: a seeded tiny head (no training: fully deterministic)."""
    torch.manual_seed(0)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=DIM, reward_widths=(3,), joint_widths=(5,)))
    normalizer = RewardNormalizer(scale=4.0).fit(torch.tensor([-1.0, 0.0, 0.5, 2.0]))
    refine = RefineConfig(method="mean", grid_min=-8.0, grid_max=8.0, grid_size=16)
    train_info = {"objective": "nce+", "steps": 0, "note": "golden fixture, not trained"}
    model = EnergyRewardModel(head.eval(), normalizer, refine, FakeRM(DIM).provenance(), train_info)
    model.references = golden_references()
    return model


def golden_inputs(n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings (n, DIM), raw base rewards (n,)): fixed inputs for refine and evaluation."""
    g = torch.Generator().manual_seed(2)
    return torch.randn(n, DIM, generator=g), torch.randn(n, generator=g) * 2


def build_refined_model(out: Path) -> Path:
    """The fixture model's directory: every file `save_pretrained` writes."""
    return golden_model().save_pretrained(out)


def build_metrics(out: Path) -> Path:
    """`<benchmark>/metrics.json` of the fixture model on the fixed inputs (12 responses:
    6 pairs for pairwise, 2 prompts x 3 styles a side for rm-bench)."""
    model = golden_model()
    emb, raw = golden_inputs()
    rows = torch.arange(12).numpy()
    units = {
        "pairwise": Units.of(rows[0::2], rows[1::2]),
        "rm-bench": Units.of(rows[:6].reshape(2, 3), rows[6:].reshape(2, 3),
                             labels=["chat", "math"]),
    }  # fmt: skip
    for name in BENCHMARKS:
        with tempfile.TemporaryDirectory() as tmp:
            refine_and_evaluate(
                model, name, units[name], emb, raw, data="golden-inputs", out_dir=tmp,
                n_boot=20, seed=0, make_figures=False,
            )  # fmt: skip
            (out / name).mkdir(parents=True)
            shutil.copy(Path(tmp) / "metrics.json", out / name / "metrics.json")
    return out


# what `refine_pinned.json` records of `refine()`, per method
PINNED_METHODS = ("mean", "mode", "conservative", "ascent", "paper")
PINNED_FIELDS = ("base", "mean", "std", "spread", "mode", "log_z", "conservative")


def refine_outputs(model: EnergyRewardModel, emb: torch.Tensor, raw: torch.Tensor) -> dict:
    """What `refine_pinned.json` pins: each method's reward and the posterior summaries."""
    out = {f"reward:{m}": model.refine(emb, raw, method=m).reward.tolist() for m in PINNED_METHODS}
    refined = model.refine(emb, raw)
    out.update({f: getattr(refined, f).tolist() for f in PINNED_FIELDS})
    out.update({k: v.tolist() for k, v in sorted(refined.references.items())})
    return out


def pin_refine(path: Path = REFINE_PINNED) -> Path:
    """Write the fixed inputs and `refine()`'s outputs for them (the expected numbers)."""
    emb, raw = golden_inputs()
    model = golden_model()
    record = {
        "what": "EnergyRewardModel.refine of tests/golden/regenerate.py:golden_model()",
        "embeddings": emb.tolist(),
        "base_raw": raw.tolist(),
        "outputs": refine_outputs(model, emb, raw),
    }
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return path


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
    "tensors_sha256": "<sha256>",
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


def schema(value: Any) -> Any:
    """`value` with each leaf replaced by its JSON type name: the shape of a file whose
    numbers are other tests' business (metrics.json)."""
    if isinstance(value, dict):
        return {k: schema(v) for k, v in value.items()}
    if isinstance(value, list):
        return [schema(v) for v in value]
    if isinstance(value, bool) or value is None:
        return "bool" if isinstance(value, bool) else "null"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def read_masked(directory: Path, names: tuple[str, ...], view=mask) -> dict[str, Any]:
    return {name: view(json.loads((directory / name).read_text("utf-8"))) for name in names}


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
    # name: (fixture root, current format version, builder, contract files, version
    # constant, how the files are compared)
    "refined_model": (
        MODEL_DIR, MODEL_FORMAT_VERSION, build_refined_model, MODEL_FILES,
        "ebrm.model.files.FORMAT_VERSION (config.json) or REFERENCES_VERSION", mask,
    ),
    "feature_store": (
        STORE_DIR, feature_store.FORMAT_VERSION, build_feature_store, STORE_FILES,
        "ebrm.features.layout.FORMAT_VERSION", mask,
    ),
    "metrics": (
        METRICS_DIR, METRICS_SCHEMA_VERSION, build_metrics, METRICS_FILES,
        "tests/golden/regenerate.py METRICS_SCHEMA_VERSION (and DESIGN §3)", schema,
    ),
}  # fmt: skip


def regenerate(name: str, *, force: bool = False) -> Path:
    """Write the current version's fixture of artifact `name`; returns its directory."""
    root, version, build, files, _, view = ARTIFACTS[name]
    target = root / f"v{version}"
    with tempfile.TemporaryDirectory() as tmp:
        built = build(Path(tmp) / "artifact")
        if target.exists() and not force:
            changed = differences(read_masked(target, files, view), read_masked(built, files, view))
            same_files = sorted(p.name for p in built.iterdir()) == sorted(
                p.name for p in target.iterdir()
            )
            if not changed and same_files:
                return target  # unchanged: keep the committed bytes (no version churn)
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
    parser.add_argument(
        "--pin-refine", action="store_true", help="rewrite refine_pinned.json (refine changed)"
    )
    args = parser.parse_args(argv)
    for name in ARTIFACTS:
        print(f"wrote {regenerate(name, force=args.force).relative_to(HERE.parents[1])}")
    if args.pin_refine or not REFINE_PINNED.exists():
        print(f"wrote {pin_refine().relative_to(HERE.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
