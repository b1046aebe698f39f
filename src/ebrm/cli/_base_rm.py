"""`--base-rm`: load the base RM a refined model was trained on from another place."""

from __future__ import annotations


def load_base_rm(path: str, erm, device: str | None):
    """The base RM at `path`, with the refined model's recorded extraction settings.

    `EnergyRewardModel.attach_base_rm` then checks it is the same RM (weights hash).
    """
    from ebrm.rm.adapter import BaseRewardModel

    info = erm.base_rm_info
    return BaseRewardModel.from_pretrained(
        str(path),
        device=device,
        dtype=info.get("dtype", "float32"),
        max_length=info.get("max_length", 1024),
        truncation_side=info.get("truncation_side", "left"),
    )
