"""The proxies compared at matched pressure, as plug-ins.

A `ProxyFamily` turns the proxy RM's training data (its noisy-label pairs, the base proxy's
rewards) into one or more rewards, each a differentiable function of embeddings (a
`Scorer`): the pools score their candidates with it, the embedding-space policy ascends
it. The base proxy is always measured; `EBRMFamily` adds the refined posterior mean and
the conservative mean - k * std, `ReferenceFamily` the Laplace and ensemble references.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import torch

from ebrm.energy.posterior import trapezoid_log_weights
from ebrm.features import PairFeatures
from ebrm.overopt.scorers import Scorer


class ProxyFamily(Protocol):
    """Rewards derived from the base proxy and its training pairs, as `Scorer`s."""

    name: str

    def fit_scorers(self, train: PairFeatures, base: Scorer) -> dict[str, Scorer]:
        """{proxy name: differentiable reward of (M, D) embeddings}.

        `train` holds the proxy's training pairs (noisy labels) with the base proxy's
        rewards (`base` of `train.embeddings`).
        """
        ...


class EBRMScorer:
    """EBRM's reward of embeddings through the grid posterior p(y | e) ∝ exp f(e, y), in the
    base proxy's raw units: the posterior mean, or mean - k * std (`conservative_k`).

    The moments are the trapezoid rule on the model's shared grid (`ebrm.energy.posterior`,
    as in training), without `ebrm.refine`'s zoomed local grids and polished modes, so they
    are differentiable in the embeddings. The std is that of the grid mass, as this
    harness's conservative reward has been from the start.
    """

    def __init__(self, model, conservative_k: float | None = None) -> None:
        self.head = model.head.eval()
        self.grid = model.refine_config.grid().to(torch.float64)
        self.to_raw = model.to_raw
        self.conservative_k = conservative_k

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and std (M,) in normalised units."""
        param = next(self.head.parameters())
        grid = self.grid.to(device=param.device, dtype=param.dtype)
        emb_part = self.head.project_embeddings(x.to(device=param.device, dtype=param.dtype))
        scores = self.head.forward_projected(emb_part, self.head.project_rewards(grid))
        log_w = trapezoid_log_weights(grid).to(scores.dtype)
        weights = torch.softmax(scores.double() + log_w.double(), dim=-1)  # (M, G)
        y = grid.double()
        mean = weights @ y
        var = (weights @ y.square() - mean.square()).clamp_min(1e-12)
        return mean.to(x.dtype), var.sqrt().to(x.dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.moments(x)
        if self.conservative_k is not None:
            mean = mean - self.conservative_k * std
        return self.to_raw(mean)


@dataclass(frozen=True)
class EBRMFamily:
    """EBRM on the base proxy: refined (posterior mean) and conservative (mean - k std)."""

    conservative_k: float = 1.0
    seed: int = 0
    device: str | None = None
    max_steps: int | None = None  # None: the preset's budget
    progress: bool = False
    name: str = "ebrm"

    def fit_scorers(self, train, base):
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
        model = EnergyRewardModel.from_training(result, base_rm_info=info).to("cpu")
        # back in the proxy's raw units (the normaliser is affine), one scale per regime
        return {
            "refined": EBRMScorer(model),
            "conservative": EBRMScorer(model, self.conservative_k),
        }


class ReferenceScorer:
    """A reference's mean, or mean - k * std, of embeddings (its own torch arithmetic)."""

    def __init__(self, reference, conservative_k: float | None = None) -> None:
        self.reference, self.conservative_k = reference, conservative_k

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.reference.predict(x)
        if self.conservative_k is not None:
            mean = mean - self.conservative_k * std
        return mean.to(x.dtype)


@dataclass(frozen=True)
class ReferenceFamily:
    """The post-hoc references (`ebrm.references`): last-layer Laplace and a bootstrap
    ensemble of BT heads on the proxy's noisy pairs, as means and as mean - k * std."""

    conservative_k: float = 1.0
    seed: int = 0
    name: str = "references"

    def fit_scorers(self, train, base):
        from ebrm.references import fit_references

        refs = fit_references(train.embeddings, train.chosen, train.rejected, seed=self.seed)
        out: dict[str, Scorer] = {}
        for name, reference in refs.rewards.items():
            out[name] = ReferenceScorer(reference)
            out[f"{name}_conservative"] = ReferenceScorer(reference, self.conservative_k)
        return out
