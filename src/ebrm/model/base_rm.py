"""The base RM of a refined model: checked to be the one the head was trained on, and
loaded lazily from the recorded provenance when `score()` first needs it.

Importing this module does not import torch: the CLI checks that the recorded base RM can
be found (`check_base_rm_found`) before any heavy import.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ebrm._provenance import provenance_differences
from ebrm.errors import IncompatibleArtifactError
from ebrm.rm.names import DEFAULT_DTYPE, DEFAULT_MAX_LENGTH, DEFAULT_TRUNCATION_SIDE

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# how to give a moved base RM's new place, on the command line and in Python
CLI_FIX = "pass --base-rm PATH with its new place (its weights hash is checked)"
PYTHON_FIX = (
    "attach it from its new place with model.attach_base_rm(BaseRewardModel."
    "from_pretrained(PATH)) (on the command line: --base-rm PATH)"
)


def resolve_base_rm_path(info: Mapping[str, Any], directory: Path) -> dict:
    """`info` with `name_or_path` pointing at the base RM beside the model when it is there
    (the recorded absolute path may have moved with the directories)."""
    relative = info.get("relative_path")
    if relative and (Path(directory) / relative / "config.json").is_file():
        return {**info, "name_or_path": str((Path(directory) / relative).resolve())}
    return dict(info)


def is_local_path(name_or_path: str) -> bool:
    """Whether a recorded base RM names a directory rather than a hub id: a local directory
    is recorded by its absolute path (`ebrm.rm.hf.load_reward_model`), and a hub id is never
    absolute nor starts with `.` or `~`."""
    return os.path.isabs(name_or_path) or name_or_path.startswith((".", "~"))


def check_base_rm_found(
    info: Mapping[str, Any], model_name: str, *, hub: bool = True, fix: str = CLI_FIX
) -> None:
    """The base RM a refined model records (`info`, its resolved `base_rm_info`) can be
    loaded from where it was recorded: a local directory still exists, and under
    HF_HUB_OFFLINE=1 a hub id is in the local Hugging Face cache. Cheap, without torch.

    Args:
        info: the base-RM provenance (`name_or_path`, `revision`, ...).
        model_name: how the message names the refined model (e.g. "--model runs/demo/model").
        hub: check a hub id against the offline cache too (the CLI, before any import; the
            loader's own error says the same for a library call).
        fix: how to give the RM's new place (`CLI_FIX` or `PYTHON_FIX`).

    Raises:
        IncompatibleArtifactError: one line naming the missing path (or hub id), what the
            model directory recorded and the fix (`--base-rm PATH`).
    """
    name = info.get("name_or_path")
    if not name:
        return  # load_base_rm says that nothing is recorded
    name = str(name)
    if is_local_path(name):
        path = Path(name).expanduser()
        if (path / "config.json").is_file():
            return
        what = "does not exist" if not path.exists() else "holds no config.json"
        raise IncompatibleArtifactError(
            f"The base RM of {model_name} is not where the model recorded it: {path} {what} "
            f"(config.json base_rm.name_or_path; moved or deleted?); {fix}"
        )
    if hub and missing_offline(name, info.get("revision")):
        raise IncompatibleArtifactError(
            f"The base RM of {model_name} is the hub model {name!r} (config.json "
            "base_rm.name_or_path), which is not in the local Hugging Face cache and "
            "HF_HUB_OFFLINE=1 forbids downloading it; unset HF_HUB_OFFLINE to download it, "
            "or pass --base-rm PATH with a local copy"
        )


def missing_offline(repo_id: str, revision: str | None = None) -> bool:
    """Whether HF_HUB_OFFLINE=1 is set and the hub model `repo_id` is not in the local
    Hugging Face cache, so that loading it must fail. Cheap, without torch."""
    return _hub_offline() and not _in_hub_cache(repo_id, revision)


def _hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _in_hub_cache(repo_id: str, revision: str | None) -> bool:
    """Whether the hub model's config.json is in the local cache (huggingface_hub's own
    lookup: the cache layout is its business, not ours)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except ValueError:  # not a valid repo id: the loader's own message is clearer
        return True
    return isinstance(found, str)


def check_base_rm(info: dict, rm: Any, embedding_dim: int) -> None:
    """`rm` is the base RM recorded in `info` (the refined model's `base_rm_info`).

    Raises:
        IncompatibleArtifactError: weight hash, max length, truncation side or hidden
            size differ (names both).
    """
    name = getattr(rm, "name_or_path", "?")
    recorded = {key: info.get(key) for key in ("max_length", "truncation_side")}
    recorded |= {"weights_hash": info.get("weights_hash") or None, "hidden_size": embedding_dim}
    given = {key: getattr(rm, key, None) for key in recorded}
    given["weights_hash"] = given["weights_hash"] or None

    def differences(fields, template):  # a value missing on either side is not compared
        return provenance_differences(
            recorded, given, fields=fields, missing_differs=False, template=template
        )

    if differ := differences((("weights hash", "weights_hash"),), "{b} (recorded: {a})"):
        raise IncompatibleArtifactError(
            f"The base reward model {name!r} has weights hash {differ[0]}, but this refined "
            f"model was trained on {info.get('name_or_path', '?')!r}; load the base RM it "
            "was trained with, or retrain the energy head"
        )
    if not recorded["weights_hash"]:
        logger.warning("no base RM weights hash recorded; cannot verify the attached RM")
    settings = (("max length", "max_length"), ("truncation side", "truncation_side"))
    template = (
        "{what} {b!r} but this refined model's features were made with {a!r}; "
        "load it with {key}={a!r}"
    )
    if differ := differences(settings, template):
        raise IncompatibleArtifactError(
            f"The base reward model {name!r} embeds with {differ[0]} (embeddings made "
            "otherwise are not what the energy head was trained on), or retrain the energy head"
        )
    template = "hidden size {b} but the energy head expects embeddings of dimension {a}"
    if differ := differences((("hidden size", "hidden_size"),), template):
        raise IncompatibleArtifactError(f"The base reward model has {differ[0]}")


def load_base_rm(
    info: dict,
    device: torch.device | str | None,
    *,
    path: str | None = None,
    placement: dict | None = None,
) -> Any:
    """The `BaseRewardModel` that `info` records (name or path, revision and settings).

    `path` loads the same RM from another place (e.g. `--base-rm`) with the recorded
    settings; `EnergyRewardModel.attach_base_rm` then checks its weights hash.
    `placement` holds `BaseRewardModel.from_pretrained`'s big-model keywords (`device_map`,
    `max_memory`, `offload_folder`) to load an RM larger than one device.

    Raises:
        IncompatibleArtifactError: `info` records no base RM path, or (without `path`)
            the recorded one cannot be found (`check_base_rm_found`).
    """
    from ebrm.rm.adapter import BaseRewardModel  # heavy; only when scoring text

    if path is None and not info.get("name_or_path"):
        raise IncompatibleArtifactError(
            "This refined model records no base RM path; pass --base-rm PATH on the command "
            "line, or attach one with model.attach_base_rm(BaseRewardModel.from_pretrained(...))"
        )
    if path is None:
        check_base_rm_found(info, "this refined model", hub=False, fix=PYTHON_FIX)
    return BaseRewardModel.from_pretrained(
        info["name_or_path"] if path is None else path,
        device=device,
        dtype=info.get("dtype", DEFAULT_DTYPE),
        max_length=info.get("max_length", DEFAULT_MAX_LENGTH),
        truncation_side=info.get("truncation_side", DEFAULT_TRUNCATION_SIDE),
        revision=None if path is not None else info.get("revision"),
        **(placement or {}),
    )
