"""The proxies compared at matched pressure, as plug-ins.

A `ProxyFamily` turns the proxy RM's training data (its noisy-label pairs, the base proxy's
rewards) into one or more rewards of every candidate. The base proxy is always measured;
`EBRMFamily` adds the refined posterior mean and the conservative mean - k * std. Other
uncertainty-aware rewards (e.g. a Laplace or ensemble reference) plug in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import torch

from ebrm.features import PairFeatures


class ProxyFamily(Protocol):
    """Rewards of every candidate derived from the base proxy and its training pairs."""

    name: str

    def fit_score(
        self, train: PairFeatures, candidates: torch.Tensor, base: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """{proxy name: (N,) reward} for the (N, D) `candidates` whose base reward is `base`.

        `train` holds the proxy's training pairs (noisy labels) with the base proxy's
        rewards; its rows may include the candidates.
        """
        ...


@dataclass(frozen=True)
class EBRMFamily:
    """EBRM on the base proxy: refined (posterior mean) and conservative (mean - k std)."""

    conservative_k: float = 1.0
    seed: int = 0
    device: str | None = None
    max_steps: int | None = None  # None: the preset's budget
    progress: bool = False
    name: str = "ebrm"

    def fit_score(self, train, candidates, base):
        from ebrm.energy import TrainConfig, train_energy_head
        from ebrm.model import EnergyRewardModel

        # The whole step budget, no checkpoint selection: the only validation labels here are
        # the proxy's noisy ones, and selecting on ~90 of them picked an untrained early head
        # (best step 50 of 1000, posterior means uncorrelated with the base) in our first run.
        config = TrainConfig.preset(
            "small-data", seed=self.seed, device=self.device, validation_fraction=0.0
        )
        if self.max_steps is not None:
            config = replace(config, max_steps=self.max_steps, min_steps=0)
        info = {"name_or_path": "overopt proxy (BT head on a frozen encoder)"}
        result = train_energy_head(train, config, progress=self.progress)
        model = EnergyRewardModel.from_training(result, base_rm_info=info)
        refined = model.refine(candidates, base, progress=self.progress)
        conservative = refined.mean - self.conservative_k * refined.std  # normalised units
        # back in the proxy's raw units (the normaliser is affine), one scale per regime
        return {
            "refined": model.to_raw(refined.mean),
            "conservative": model.to_raw(conservative),
        }


@dataclass(frozen=True)
class ReferenceFamily:
    """The post-hoc references (`ebrm.references`): last-layer Laplace and a bootstrap
    ensemble of BT heads on the proxy's noisy pairs, as means and as mean - k * std."""

    conservative_k: float = 1.0
    seed: int = 0
    name: str = "references"

    def fit_score(self, train, candidates, base):
        from ebrm.references import fit_references

        refs = fit_references(train.embeddings, train.chosen, train.rejected, seed=self.seed)
        columns = refs.columns(candidates, k=self.conservative_k)
        return {
            f"{name}{suffix}": columns[f"{name}{suffix}"]
            for name in refs.rewards
            for suffix in ("", "_conservative")
        }
