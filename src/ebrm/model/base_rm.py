"""The base RM of a refined model: checked to be the one the head was trained on, and
loaded lazily from the recorded provenance when `score()` first needs it."""

from __future__ import annotations

import logging
from typing import Any

import torch

from ebrm._provenance import provenance_differences
from ebrm.errors import IncompatibleArtifactError
from ebrm.rm.names import DEFAULT_DTYPE, DEFAULT_MAX_LENGTH, DEFAULT_TRUNCATION_SIDE

logger = logging.getLogger(__name__)


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
        IncompatibleArtifactError: `info` records no base RM path.
    """
    from ebrm.rm.adapter import BaseRewardModel  # heavy; only when scoring text

    if path is None and not info.get("name_or_path"):
        raise IncompatibleArtifactError(
            "This refined model records no base RM path; pass --base-rm PATH on the command "
            "line, or attach one with model.attach_base_rm(BaseRewardModel.from_pretrained(...))"
        )
    return BaseRewardModel.from_pretrained(
        info["name_or_path"] if path is None else path,
        device=device,
        dtype=info.get("dtype", DEFAULT_DTYPE),
        max_length=info.get("max_length", DEFAULT_MAX_LENGTH),
        truncation_side=info.get("truncation_side", DEFAULT_TRUNCATION_SIDE),
        revision=None if path is not None else info.get("revision"),
        **(placement or {}),
    )
