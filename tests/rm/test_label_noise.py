"""Label noise: one seeded choice of flipped pairs for base-RM training and the harness."""

from __future__ import annotations

import pytest
import torch

from ebrm.data import Conversation, PreferencePair
from ebrm.overopt.regimes import flip
from ebrm.rm.label_noise import flip_indices, flip_labels


@pytest.mark.parametrize(("n", "fraction"), [(0, 0.3), (1, 0.4), (10, 0.3), (57, 0.25), (40, 1.0)])
def test_flip_indices_are_the_first_of_a_seeded_permutation(n, fraction):
    # the draw experiments depend on: round(fraction * n) pairs, the head of randperm(seed)
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(7)).tolist()
    expected = sorted(permutation[: round(fraction * n)])
    assert flip_indices(n, fraction, seed=7) == expected
    assert len(set(expected)) == len(expected) and all(0 <= i < n for i in expected)


@pytest.mark.parametrize("seed", range(3))
def test_base_rm_training_and_the_harness_flip_the_same_pairs(seed):
    pairs = [
        PreferencePair(
            Conversation.from_prompt("q", f"good {i}"), Conversation.from_prompt("q", f"bad {i}")
        )
        for i in range(23)
    ]
    noisy, flipped = flip_labels(pairs, 0.4, seed=seed)
    swapped = [i for i, (a, b) in enumerate(zip(pairs, noisy, strict=True)) if a != b]
    assert swapped == flipped == flip_indices(23, 0.4, seed=seed)
    assert all(noisy[i].chosen == pairs[i].rejected for i in flipped)
    chosen, rejected = torch.arange(23), torch.arange(100, 123)
    c, r = flip(chosen, rejected, 0.4, seed=seed)
    assert (c != chosen).nonzero().flatten().tolist() == flipped
    assert torch.equal(c[flipped], rejected[flipped]) and torch.equal(r[flipped], chosen[flipped])
