"""A stand-in for `EnergyRewardModel` with known rewards, for testing the runner.

A response "r=<raw> b=<bonus> ..." gets base reward 4 * raw (normalised units; raw units
are `raw`) and refined reward 4 * (raw + bonus), posterior std 1, and
P(a > b) = sigmoid(refined_a - refined_b).
"""

from __future__ import annotations

import re

import torch

from ebrm.refine.results import RefinedRewards

SCALE = 4.0


def parse(text: str) -> tuple[float, float]:
    raw = float(re.search(r"r=(-?[\d.]+)", text).group(1))
    bonus = re.search(r"b=(-?[\d.]+)", text)
    return raw, float(bonus.group(1)) if bonus else 0.0


class FakeBaseRM:
    def __init__(self) -> None:
        self.calls = 0
        self.texts_seen: list[str] = []

    def embed_conversations(self, convs, *, batch_size=16, progress=False):
        self.calls += 1
        self.texts_seen += [c.response for c in convs]
        rows = [parse(c.response) for c in convs]
        emb = torch.tensor(rows, dtype=torch.float32).reshape(len(rows), 2)
        return emb, emb[:, 0].clone()


class FakeModel:
    def __init__(self) -> None:
        self.base_rm = FakeBaseRM()
        self.base_rm_info = {"name_or_path": "fake-rm"}

    def refine(self, embeddings, base_rewards, *, method=None, progress=False):
        base = SCALE * base_rewards
        refined = SCALE * (embeddings[:, 0] + embeddings[:, 1])
        ones = torch.ones_like(refined)
        return RefinedRewards(
            reward=refined,
            base=base,
            base_raw=base_rewards,
            mean=refined,
            std=ones,
            q05=refined - 1.645,
            q50=refined,
            q95=refined + 1.645,
            mode=refined,
            log_z=torch.zeros_like(refined),
            conservative=refined - ones,
            method="mean",
        )

    def p_better(self, emb_a, emb_b):
        fa = SCALE * (emb_a[:, 0] + emb_a[:, 1])
        fb = SCALE * (emb_b[:, 0] + emb_b[:, 1])
        return torch.sigmoid(fa - fb)
