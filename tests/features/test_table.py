"""PairFeatures: subsets, compaction and the prompt-grouped validation split."""

from __future__ import annotations

import pytest
import torch

from ebrm.errors import DataFormatError
from ebrm.features.table import PairFeatures


def _features(prompts: list[str] | None, dim: int = 3) -> PairFeatures:
    n = len(prompts) if prompts is not None else 30
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(2 * n, dim, generator=g)
    return PairFeatures(emb, emb[:, 0].clone(), torch.arange(n), torch.arange(n, 2 * n), prompts)


# 40 pairs over 12 prompts, with groups of 1 to 7 pairs, interleaved
PROMPTS = [f"p{(i * 7) % 12 if i % 3 else i % 5}" for i in range(40)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_split_keeps_each_prompt_on_one_side(seed, fraction):
    features = _features(PROMPTS)
    train, val = features.split(validation_fraction=fraction, seed=seed)
    assert not set(train.prompt_hashes) & set(val.prompt_hashes)
    # every pair exactly once: (chosen, rejected) rows identify a pair here
    pairs = lambda f: list(zip(f.chosen.tolist(), f.rejected.tolist(), strict=True))  # noqa: E731
    assert sorted(pairs(train) + pairs(val)) == sorted(pairs(features))
    # validation reaches its target and overshoots by less than its last group
    target = round(40 * fraction)
    sizes = {p: PROMPTS.count(p) for p in PROMPTS}
    assert target <= val.num_pairs < target + max(sizes[p] for p in val.prompt_hashes)


def test_split_is_deterministic_given_the_seed():
    features = _features(PROMPTS)
    a = features.split(validation_fraction=0.3, seed=4)
    b = features.split(validation_fraction=0.3, seed=4)
    c = features.split(validation_fraction=0.3, seed=5)
    assert all(torch.equal(x.chosen, y.chosen) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[1].chosen, c[1].chosen) or a[1].num_pairs != c[1].num_pairs


def test_without_prompt_hashes_the_split_is_the_random_split_by_pair():
    features = _features(None)
    train, val = features.split(validation_fraction=0.2, seed=3)
    order = torch.randperm(30, generator=torch.Generator().manual_seed(3))
    assert torch.equal(val.chosen, order[:6]) and torch.equal(train.chosen, order[6:])
    assert train.prompt_hashes is None and val.prompt_hashes is None


@pytest.mark.parametrize("seed", range(4))
def test_split_is_the_specified_split(seed):
    # written plainly: distinct prompts in order of first appearance, permuted by
    # torch.randperm(seed); validation takes whole prompts while short of round(0.3 * 40)
    # pairs; both sides list pairs prompt by prompt in that order (what `ebrm train` trains on)
    prompts = list(dict.fromkeys(PROMPTS))
    order = torch.randperm(len(prompts), generator=torch.Generator().manual_seed(seed))
    val, train = [], []
    for g in order.tolist():
        members = [i for i, p in enumerate(PROMPTS) if p == prompts[g]]
        (val if len(val) < round(0.3 * 40) else train).extend(members)
    got_train, got_val = _features(PROMPTS).split(validation_fraction=0.3, seed=seed)
    assert got_val.chosen.tolist() == val and got_train.chosen.tolist() == train


def test_subset_and_compact_keep_the_pairs_and_their_prompts():
    features = _features(PROMPTS)
    part = features.subset(torch.tensor([5, 2, 9]))
    assert part.prompt_hashes == (PROMPTS[5], PROMPTS[2], PROMPTS[9])
    small = part.compact()
    assert small.embeddings.shape[0] == 6  # only the rows the three pairs use
    for name in ("chosen", "rejected"):
        rows_small, rows_full = getattr(small, name), getattr(part, name)
        assert torch.equal(small.embeddings[rows_small], part.embeddings[rows_full])
        assert torch.equal(small.rewards[rows_small], part.rewards[rows_full])
    assert small.prompt_hashes == part.prompt_hashes


def test_prompt_hashes_must_match_the_pairs():
    with pytest.raises(DataFormatError, match="one entry per pair"):
        _features(PROMPTS).__class__(
            torch.zeros(4, 2), torch.zeros(4), torch.arange(2), torch.arange(2, 4), ("a",)
        )
