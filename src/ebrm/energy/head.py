"""The energy head f(e, y): a score of how compatible reward y is with embedding e.

Sign convention (used everywhere in ebrm): `f` is a compatibility score, higher is
better; the energy is `-f` and the conditional density is p(y | e) ∝ exp f(e, y).

The first joint layer acts on the concatenation [e; h(y)], so it splits as
W [e; h] + b = W_e e + (W_h h + b). `W_e e` depends on the response only and is
computed once, then broadcast over all K reward candidates; only the small reward
part runs per candidate. This is the same function as the plain concat-MLP.
"""

from __future__ import annotations

import torch
from torch import nn

from ebrm.energy.config import EnergyHeadConfig


class EnergyHead(nn.Module):
    """f(e, y) with a factorised first joint layer (DESIGN §1.4)."""

    def __init__(self, config: EnergyHeadConfig) -> None:
        super().__init__()
        self.config = config
        reward_layers: list[nn.Module] = []
        width_in = 1
        for i, width in enumerate(config.reward_widths):
            reward_layers += [nn.Linear(width_in, width), nn.Tanh()]
            if i < len(config.reward_widths) - 1:  # dropout after all but the last layer
                reward_layers.append(nn.Dropout(config.dropout))
            width_in = width
        self.reward_branch = nn.Sequential(*reward_layers)
        first = config.joint_widths[0]
        # the first joint layer, split into its embedding and reward columns
        self.joint_in_embedding = nn.Linear(config.embedding_dim, first, bias=False)
        self.joint_in_reward = nn.Linear(config.reward_widths[-1], first)
        joint_layers: list[nn.Module] = [nn.Tanh(), nn.Dropout(config.dropout)]
        width_in = first
        for width in config.joint_widths[1:]:
            joint_layers += [nn.Linear(width_in, width), nn.Tanh(), nn.Dropout(config.dropout)]
            width_in = width
        joint_layers.append(nn.Linear(width_in, 1))
        self.joint_rest = nn.Sequential(*joint_layers)
        self._init_like_concat_linear()

    def _init_like_concat_linear(self) -> None:
        """Initialise the split layer as nn.Linear would initialise the unsplit one."""
        fan_in = self.config.embedding_dim + self.config.reward_widths[-1]
        bound = fan_in**-0.5
        for module in (self.joint_in_embedding, self.joint_in_reward):
            nn.init.uniform_(module.weight, -bound, bound)
        nn.init.uniform_(self.joint_in_reward.bias, -bound, bound)

    def project_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """W_e e, computed once per response: (B, D) -> (B, H1)."""
        return self.joint_in_embedding(embeddings)

    def project_rewards(self, rewards: torch.Tensor) -> torch.Tensor:
        """W_h h(y) + b for reward candidates of any shape (...,) -> (..., H1)."""
        return self.joint_in_reward(self.reward_branch(rewards.unsqueeze(-1)))

    def forward_projected(
        self, embedding_part: torch.Tensor, reward_part: torch.Tensor
    ) -> torch.Tensor:
        """f from the two halves of the first layer.

        Args:
            embedding_part: (B, H1) from `project_embeddings`.
            reward_part: (B, K, H1) per-response candidates, or (K, H1) shared by all rows.

        Returns:
            (B, K) scores.
        """
        if reward_part.ndim == 2:
            reward_part = reward_part.unsqueeze(0)  # (1, K, H1) broadcast over rows
        hidden = embedding_part.unsqueeze(1) + reward_part  # (B, K, H1)
        return self.joint_rest(hidden).squeeze(-1)  # (B, K)

    def forward(self, embeddings: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
        """f(e, y) for K reward candidates per response.

        Args:
            embeddings: (B, D).
            rewards: (B, K) candidates per row, or (K,) candidates shared by all rows.

        Returns:
            (B, K) scores (higher = more compatible).
        """
        return self.forward_projected(
            self.project_embeddings(embeddings), self.project_rewards(rewards)
        )
