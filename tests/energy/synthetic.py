"""Synthetic features with a known true reward and a structurally wrong base RM."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebrm.features.table import PairFeatures


@dataclass
class Synthetic:
    features: PairFeatures
    truth: torch.Tensor  # (N,) true reward of each row
    in_region: torch.Tensor  # (N,) bool, the base RM is wrong (flipped) here


def make_synthetic(
    num_pairs: int, *, region: str = "ball", dim: int = 16, seed: int = 0
) -> Synthetic:
    """Pairs of nearby responses in a 2-D latent space embedded linearly in `dim` dims.

    The truth is t(z) = sin(1.5 z1) + 0.5 z2^2 + z1; labels follow the truth. The base RM
    reports -t inside a region ("ball": a disc inside the data, "edge": the half-plane
    z1 > 0.5) and t elsewhere, so inside the region it orders every pair backwards.
    """
    g = torch.Generator().manual_seed(seed)
    z_a = torch.randn(num_pairs, 2, generator=g)
    z_b = z_a + 0.35 * torch.randn(num_pairs, 2, generator=g)
    z = torch.cat([z_a, z_b])  # (2P, 2)
    # the embedding map is fixed (same space for every seed); only the samples vary
    mixing = torch.randn(2, dim, generator=torch.Generator().manual_seed(1234)) / 2**0.5
    emb = z @ mixing + 0.02 * torch.randn(2 * num_pairs, dim, generator=g)
    truth = torch.sin(1.5 * z[:, 0]) + 0.5 * z[:, 1] ** 2 + z[:, 0]
    if region == "ball":
        in_region = ((z - torch.tensor([0.3, 0.0])) ** 2).sum(1) < 0.8**2
    else:
        in_region = z[:, 0] > 0.5
    base = torch.where(in_region, -truth, truth)
    a, b = torch.arange(num_pairs), torch.arange(num_pairs, 2 * num_pairs)
    a_wins = truth[a] > truth[b]
    chosen, rejected = torch.where(a_wins, a, b), torch.where(a_wins, b, a)
    return Synthetic(PairFeatures(emb, base, chosen, rejected), truth, in_region)
