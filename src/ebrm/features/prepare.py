"""What an extraction finds at its --out, before anything is embedded.

A store is continued only when it was made with the same settings (`check_compatible`);
`prepare_store` (rank 0) then removes the temporary files of a killed run, merges the ranks'
progress files, keeps the shards that verify and writes the pair table and the manifest.
`remove_store` deletes a store for --overwrite, and only its own files.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from ebrm._io import read_json_object, sha256_file
from ebrm._provenance import provenance_differences
from ebrm._version import __version__, version_info
from ebrm.errors import ConfigError, IncompatibleArtifactError
from ebrm.features import layout, partial
from ebrm.features.plan import EmbeddingModel, ExtractionPlan

logger = logging.getLogger(__name__)

_PROGRESS = re.compile(r"progress-rank-\d{5}\.json")
_SHARD = re.compile(r"shard-\d{5}\.safetensors")
_OWN_FILES = {layout.MANIFEST, layout.PAIRS_TENSORS, layout.PAIRS_META, layout.ROWS}


def progress_file(out: Path, rank: int) -> Path:
    """The file where rank `rank` of a multi-process run records the shards it wrote."""
    return out / f"progress-rank-{rank:05d}.json"


def run_settings(
    rm: EmbeddingModel,
    plan: ExtractionPlan,
    shard_size: int,
    storage_dtype: str,
    *,
    batch_size: int | None = None,
):
    """The manifest fields that describe this run (RM provenance, sizes, plan hash)."""
    provenance = dict(rm.provenance())
    # written once, here (max_length, truncation_side: format 4; padding_side: format 5)
    for key in ("max_length", "truncation_side", "padding_side"):
        if key != "padding_side" or getattr(rm, key, None) is not None:
            provenance.setdefault(key, getattr(rm, key, None))
    return {
        "base_rm": provenance,
        # the rows' forward batch size (format 5); not compared when continuing a store:
        # a text's row does not depend on it
        "batch_size": batch_size,
        "embedding_dim": int(rm.hidden_size),
        "storage_dtype": storage_dtype,
        "reward_dtype": "float32",
        "num_rows": plan.num_rows,
        "num_pairs": len(plan.ids),
        "shard_size": shard_size,
        "num_shards": len(layout.shard_ranges(plan.num_rows, shard_size)),
        "plan_hash": plan.plan_hash,
    }


# (label, key in `_compared`): what must agree to continue an existing store.
_COMPATIBILITY = (
    ("base RM weights (weights_hash)", "weights_hash"),
    ("base RM compute dtype", "dtype"),
    ("embedding dim", "embedding_dim"),
    ("max_length", "max_length"),
    ("truncation side", "truncation_side"),
    ("storage dtype", "storage_dtype"),
    ("shard size", "shard_size"),
    ("data (plan hash of the formatted texts and pairs)", "plan_hash"),
)


def _compared(manifest: dict[str, Any]) -> dict[str, Any]:
    """The `_COMPATIBILITY` fields of a manifest (or of this run's settings), one level."""
    base_rm = manifest.get("base_rm", {})
    out = {key: manifest.get(key) for _, key in _COMPATIBILITY}
    return {
        **out,
        "weights_hash": base_rm.get("weights_hash"),
        "dtype": str(base_rm.get("dtype")),
        # written once, in base_rm, since store format 4 (top level before)
        "max_length": layout.extraction_setting(manifest, "max_length"),
        "truncation_side": layout.extraction_setting(manifest, "truncation_side"),
    }


def check_compatible(out: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The existing manifest at `out` (None if there is none), if this run may continue it.

    Raises:
        IncompatibleArtifactError: naming every setting that differs, or when `out` holds
            files that are not a feature store.
    """
    if not out.exists():
        return None
    if not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory; choose a directory.")
    if not (out / layout.MANIFEST).exists():
        foreign = [p.name for p in out.iterdir() if not _is_own_file(p.name)]
        if foreign:
            raise IncompatibleArtifactError(
                f"--out {out} is not empty and is not a feature store (it holds e.g. "
                f"{foreign[0]!r}); choose a new or empty directory."
            )
        return None
    manifest = layout.read_manifest(out)
    differ = provenance_differences(
        _compared(manifest),
        _compared(settings),
        fields=_COMPATIBILITY,
        template="{what}: store has {a!r}, this run has {b!r}",
    )
    if differ:
        raise IncompatibleArtifactError(
            f"The feature store {out} was made with different settings, so its rows cannot be "
            f"mixed with this run's: {'; '.join(differ)}. Use a new --out directory, or pass "
            "--overwrite to discard the store and start over."
        )
    return manifest


def _is_own_file(name: str) -> bool:
    if name in _OWN_FILES or _SHARD.fullmatch(name) or _PROGRESS.fullmatch(name):
        return True
    if partial.PARTIAL.fullmatch(name):
        return True
    # leftovers of ebrm._io.atomic_write killed mid-write: ".<name>.<random>.tmp"
    if name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3:
        return _is_own_file(name[1:].rsplit(".", 2)[0])
    return False


def _verified(out: Path, records: list[dict], ranges: list[tuple[int, int]]) -> list[dict]:
    """The shard records whose file exists, matches its checksum and its planned rows."""
    kept: dict[int, dict] = {}
    for record in records:
        index = record.get("index")
        file = out / str(record.get("file"))
        if not isinstance(index, int) or not 0 <= index < len(ranges) or index in kept:
            continue
        if (record.get("start"), record.get("end")) != ranges[index] or not file.is_file():
            logger.warning("%s is missing or misplaced; it will be re-extracted", file)
            continue
        if sha256_file(file) != record.get("sha256"):
            logger.warning("%s fails its checksum; it will be re-extracted", file)
            continue
        kept[index] = record
    return [kept[i] for i in sorted(kept)]


def prepare_store(
    out: Path,
    plan: ExtractionPlan,
    settings: dict[str, Any],
    existing: dict[str, Any] | None,
    data_spec: str | None,
) -> dict[str, Any]:
    """Rank 0: clean up, merge and verify earlier progress, write pair table and manifest."""
    out.mkdir(parents=True, exist_ok=True)
    for path in out.iterdir():
        if path.name.startswith(".") and _is_own_file(path.name):
            path.unlink(missing_ok=True)  # half-written temporary file of a killed run
    ranges = layout.shard_ranges(plan.num_rows, settings["shard_size"])
    records = list(existing["shards"]) if existing else []
    progress_files = sorted(p for p in out.iterdir() if _PROGRESS.fullmatch(p.name))
    for path in progress_files:
        progress = read_json_object(path)
        if existing and progress.get("plan_hash") == settings["plan_hash"]:
            records.extend(progress.get("shards", []))
    shards = _verified(out, records, ranges)
    for record in shards:  # rows of a shard that has since been completed
        partial.remove_partial(out, record["index"])
    pairs_sha = layout.write_pair_table(
        out, plan.chosen, plan.rejected, plan.ids, plan.subsets, plan.prompt_hashes
    )
    pairs_sha[layout.ROWS] = layout.write_row_keys(out, plan.keys)
    manifest = {
        "format": layout.FORMAT_NAME,
        "format_version": layout.FORMAT_VERSION,
        "ebrm_version": __version__,
        "versions": version_info(),
        **settings,
        "row_order": "unique formatted texts, longest first",
        "data": {
            "spec": data_spec,
            "num_pairs": len(plan.ids),
            "num_texts": 2 * len(plan.ids),
            "num_unique_texts": plan.num_rows,
        },
        "pairs_sha256": pairs_sha,
        "shards": shards,
        "complete": len(shards) == len(ranges),
    }
    layout.write_manifest(out, manifest)
    for path in progress_files:  # merged into the manifest above
        path.unlink(missing_ok=True)
    return manifest


def remove_store(out: Path) -> None:
    """Delete the files of a feature store at `out` (only ours: never a whole directory)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory; choose a directory.")
    own = (_is_own_file(p.name) for p in out.iterdir())
    if not (out / layout.MANIFEST).exists() and not all(own):
        raise IncompatibleArtifactError(
            f"--overwrite refuses to empty {out}: it is not a feature store. "
            "Choose a new or empty directory."
        )
    for path in out.iterdir():
        if _is_own_file(path.name):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
