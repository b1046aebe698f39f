"""The base RM of a refined model: checked to be the one the head was trained on, and
loaded lazily from the recorded provenance when `score()` first needs it."""

from __future__ import annotations

import logging
from typing import Any

import torch

from ebrm.errors import IncompatibleArtifactError
from ebrm.rm.names import DEFAULT_DTYPE, DEFAULT_MAX_LENGTH, DEFAULT_TRUNCATION_SIDE

logger = logging.getLogger(__name__)


def check_base_rm(info: dict, rm: Any, embedding_dim: int) -> None:
    """`rm` is the base RM recorded in `info` (the refined model's `base_rm_info`).

    Raises:
        IncompatibleArtifactError: weight hash, max length, truncation side or hidden
            size differ (names both).
    """
    recorded = info.get("weights_hash")
    given = getattr(rm, "weights_hash", None)
    if recorded and given and recorded != given:
        raise IncompatibleArtifactError(
            f"The base reward model {getattr(rm, 'name_or_path', '?')!r} has weights hash "
            f"{given} but this refined model was trained on "
            f"{info.get('name_or_path', '?')!r} with weights hash {recorded}; "
            "load the base RM it was trained with, or retrain the energy head"
        )
    if not recorded:
        logger.warning("no base RM weights hash recorded; cannot verify the attached RM")
    for what, key in (("max length", "max_length"), ("truncation side", "truncation_side")):
        recorded, given = info.get(key), getattr(rm, key, None)
        if recorded is not None and given is not None and str(recorded) != str(given):
            raise IncompatibleArtifactError(
                f"The base reward model {getattr(rm, 'name_or_path', '?')!r} embeds with "
                f"{what} {given!r} but this refined model's features were made with "
                f"{recorded!r}; load it with {key}={recorded!r} (embeddings made otherwise "
                "are not what the energy head was trained on), or retrain the energy head"
            )
    hidden = getattr(rm, "hidden_size", None)
    if hidden is not None and int(hidden) != embedding_dim:
        raise IncompatibleArtifactError(
            f"The base reward model has hidden size {hidden} but the energy head expects "
            f"embeddings of dimension {embedding_dim}"
        )


def load_base_rm(info: dict, device: torch.device | str | None, *, path: str | None = None) -> Any:
    """The `BaseRewardModel` that `info` records (name or path, revision and settings).

    `path` loads the same RM from another place (e.g. `--base-rm`) with the recorded
    settings; `EnergyRewardModel.attach_base_rm` then checks its weights hash.

    Raises:
        IncompatibleArtifactError: `info` records no base RM path.
    """
    from ebrm.rm.adapter import BaseRewardModel  # heavy; only when scoring text

    if path is None and not info.get("name_or_path"):
        raise IncompatibleArtifactError(
            "This refined model records no base RM path; attach one with "
            "model.attach_base_rm(BaseRewardModel.from_pretrained(...))"
        )
    return BaseRewardModel.from_pretrained(
        info["name_or_path"] if path is None else path,
        device=device,
        dtype=info.get("dtype", DEFAULT_DTYPE),
        max_length=info.get("max_length", DEFAULT_MAX_LENGTH),
        truncation_side=info.get("truncation_side", DEFAULT_TRUNCATION_SIDE),
        revision=None if path is not None else info.get("revision"),
    )
