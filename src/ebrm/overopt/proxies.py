"""The proxies compared at matched pressure, as plug-ins.

A `ProxyFamily` turns the proxy RM's training data (its noisy-label pairs, the base proxy's
rewards) into one or more rewards, each a differentiable function of embeddings (a
`Scorer`): the pools score their candidates with it, the embedding-space policy ascends
it. The base proxy is always measured; `EBRMFamily` adds the product's refined reward (the
posterior mean) and its conservative reward (mean - k * spread), `ReferenceFamily` the
Laplace and ensemble references (mean, and mean - k * std).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import torch

from ebrm.features import PairFeatures
from ebrm.overopt.scorers import Scorer
from ebrm.refine.differentiable import differentiable_posterior
from ebrm.refine.uncertainty import spread_lower_bound, std_lower_bound


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
    """The product's reward of embeddings, in the base proxy's raw units: what
    `EnergyRewardModel.refine` returns as `mean` (the refined reward), or as
    `conservative` (mean - k * spread, k the model's `refine_config.conservative_k`).

    Without autograd it is `model.posterior` itself; when the input requires grad (the
    embedding-space ascent) the same statistics come from
    `ebrm.refine.differentiable.differentiable_posterior`, which evaluates f again on
    refinement's own grids and mode, so the values agree to float rounding and the
    gradient is theirs.
    """

    def __init__(self, model, *, conservative: bool = False) -> None:
        self.model = model
        self.model.head.eval()
        self.conservative = conservative

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        config = self.model.refine_config
        if torch.is_grad_enabled() and x.requires_grad:
            post = differentiable_posterior(self.model.head, x, **config.grid_kwargs())
        else:
            post = self.model.posterior(x.detach())
        reward = post.mean
        if self.conservative:
            reward = spread_lower_bound(post.mean, post.spread, config.conservative_k)
        return self.model.to_raw(reward.to(device=x.device, dtype=x.dtype))


@dataclass(frozen=True)
class EBRMFamily:
    """EBRM on the base proxy: refined (posterior mean) and conservative (mean - k spread),
    as `EnergyRewardModel.refine` defines them, with k = `conservative_k`."""

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
        model = EnergyRewardModel.from_training(result, base_rm_info=info, references=False)
        model = model.to("cpu")
        model.refine_config = replace(model.refine_config, conservative_k=self.conservative_k)
        # back in the proxy's raw units (the normaliser is affine), one scale per regime
        return {
            "refined": EBRMScorer(model),
            "conservative": EBRMScorer(model, conservative=True),
        }


class ReferenceScorer:
    """A reference's mean, or mean - k * std, of embeddings (its own torch arithmetic)."""

    def __init__(self, reference, conservative_k: float | None = None) -> None:
        self.reference, self.conservative_k = reference, conservative_k

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.reference.predict(x)
        if self.conservative_k is not None:
            mean = std_lower_bound(mean, std, self.conservative_k)
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
            out[f"{name}_lcb"] = ReferenceScorer(reference, self.conservative_k)
        return out
