"""Heads for refinement tests: a closed-form Gaussian head and a briefly trained EnergyHead."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.head import EnergyHead


class GaussianHead(nn.Module):
    """f(e, y) = c(e) - (y - mu(e))^2 / (2 s(e)^2) with mu = e[0], s = exp(e[1]), c = e[2].

    Same interface as EnergyHead, so p(y | e) = N(mu, s^2) and Z = exp(c) s sqrt(2 pi).
    """

    def __init__(self, embedding_dim: int = 3) -> None:
        super().__init__()
        self.config = SimpleNamespace(embedding_dim=embedding_dim)
        self.anchor = nn.Parameter(torch.zeros((), dtype=torch.float64))  # sets device/dtype

    def project_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        return embeddings[:, :3]  # (B, 3): mu, log s, c

    def project_rewards(self, rewards: torch.Tensor) -> torch.Tensor:
        return rewards.unsqueeze(-1)  # (..., 1)

    def forward_projected(self, emb_part: torch.Tensor, rew_part: torch.Tensor) -> torch.Tensor:
        if rew_part.ndim == 2:
            rew_part = rew_part.unsqueeze(0)
        y = rew_part[..., 0]  # (B or 1, K)
        mu, log_s, c = (emb_part[:, i : i + 1] for i in range(3))
        return c - (y - mu) ** 2 / (2 * torch.exp(2 * log_s)) + 0 * self.anchor

    def forward(self, embeddings: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
        return self.forward_projected(
            self.project_embeddings(embeddings), self.project_rewards(rewards)
        )


def gaussian_embeddings(n: int, *, seed: int = 0) -> torch.Tensor:
    """Rows (mu, log s, c) with mu in [-5, 5], s in [0.5, 2], c in [-3, 3] (float64)."""
    g = torch.Generator().manual_seed(seed)
    mu = -5 + 10 * torch.rand(n, generator=g, dtype=torch.float64)
    log_s = math.log(0.5) + math.log(4.0) * torch.rand(n, generator=g, dtype=torch.float64)
    c = -3 + 6 * torch.rand(n, generator=g, dtype=torch.float64)
    return torch.stack([mu, log_s, c], dim=1)


def synthetic_features(n: int, dim: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings and normalised-scale rewards with a nonlinear, noisy dependence."""
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g)
    y = 4 * torch.tanh(emb[:, 0]) + 2 * emb[:, 1] + 0.3 * torch.randn(n, generator=g)
    return emb, y


def train_tiny_head(
    *, dim: int = 16, steps: int = 200, seed: int = 0, noise_std: float = 2.0
) -> EnergyHead:
    """A small EnergyHead trained briefly with an inline NCE+ loss, so its density is peaked."""
    torch.manual_seed(seed)
    head = EnergyHead(
        EnergyHeadConfig(
            embedding_dim=dim, reward_widths=(8, 16), joint_widths=(64, 32), dropout=0.0
        )
    )
    emb, y = synthetic_features(2048, dim, seed=seed)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed + 1)
    sigma, m = noise_std, 32
    for _ in range(steps):
        idx = torch.randint(0, emb.shape[0], (64,), generator=g)
        target = y[idx].unsqueeze(1)
        cand = torch.cat(
            [
                target + 0.1 * sigma * torch.randn(64, 1, generator=g),
                target + sigma * torch.randn(64, m, generator=g),
            ],
            dim=1,
        )
        log_q = -((cand - target) ** 2) / (2 * sigma**2)
        f = head(emb[idx], cand)
        loss = (-(f[:, 0] - log_q[:, 0]) + torch.logsumexp(f - log_q, dim=1)).mean()
        loss = loss + 0.05 * f.square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval()


@pytest.fixture(scope="session")
def trained_head() -> EnergyHead:
    before = torch.get_num_threads()  # session fixtures start before the per-test one
    torch.set_num_threads(1)
    try:
        return train_tiny_head()
    finally:
        torch.set_num_threads(before)


@pytest.fixture()
def gaussian_head() -> GaussianHead:
    return GaussianHead()
