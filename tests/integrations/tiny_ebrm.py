"""A tiny real `EnergyRewardModel` (random energy head over a tiny random base RM)."""

from __future__ import annotations

from pathlib import Path

import torch


def make_tiny_ebrm(out: Path, base_rm_dir: Path, *, seed: int = 0, method: str = "mean") -> Path:
    """Save a refined-model directory whose base RM is `base_rm_dir`."""
    from ebrm.energy.config import EnergyHeadConfig
    from ebrm.energy.head import EnergyHead
    from ebrm.energy.normalize import RewardNormalizer
    from ebrm.model import EnergyRewardModel
    from ebrm.refine.config import RefineConfig
    from ebrm.rm.adapter import BaseRewardModel

    rm = BaseRewardModel.from_pretrained(str(base_rm_dir), device="cpu", max_length=128)
    torch.manual_seed(seed)
    head = EnergyHead(
        EnergyHeadConfig(embedding_dim=rm.hidden_size, reward_widths=(8, 16), joint_widths=(32, 16))
    )
    texts = [f"sample text number {i}" for i in range(16)]
    _, rewards = rm.embed_texts(texts)
    normalizer = RewardNormalizer(scale=4.0).fit(rewards)
    model = EnergyRewardModel(
        head, normalizer, RefineConfig(method=method, grid_size=64), rm.provenance(), {}
    )
    model.save_pretrained(out)
    return out
