"""Label noise: which preference labels a seeded run flips.

The one definition for every stage that trains on noisy labels: `ebrm base-rm train
--label-noise` (`flip_labels`) and the over-optimisation harness's proxies
(`ebrm.overopt.regimes.flip`) flip the same pairs for the same fraction and seed.
"""

from __future__ import annotations

import dataclasses

import torch

from ebrm.data.types import PreferencePair


def flip_indices(num_pairs: int, fraction: float, *, seed: int) -> list[int]:
    """Sorted indices of exactly ``round(fraction * num_pairs)`` pairs, seeded.

    The first indices of `torch.randperm(num_pairs)` under a generator seeded with `seed`
    (experiments depend on this draw: keep it).
    """
    generator = torch.Generator().manual_seed(seed)
    return sorted(
        torch.randperm(num_pairs, generator=generator)[: round(fraction * num_pairs)].tolist()
    )


def flip_labels(
    pairs: list[PreferencePair], fraction: float, *, seed: int
) -> tuple[list[PreferencePair], list[int]]:
    """Swap chosen and rejected of exactly `round(fraction * len(pairs))` seeded pairs.

    Returns:
        (the pairs with those labels flipped, sorted indices of the flipped pairs
        (`flip_indices`)).
    """
    flipped = flip_indices(len(pairs), fraction, seed=seed)
    out = list(pairs)
    for i in flipped:
        p = out[i]
        out[i] = dataclasses.replace(p, chosen=p.rejected, rejected=p.chosen)
    return out, flipped
