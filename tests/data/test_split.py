"""split_pairs / split_indices: deterministic, complete, disjoint, prompt groups kept together."""

from __future__ import annotations

import random

import pytest

from ebrm.data import Conversation, PreferencePair, split_indices, split_pairs
from ebrm.errors import ConfigError


def _pairs(n_prompts: int, per_prompt: int) -> list[PreferencePair]:
    return [
        PreferencePair(
            Conversation.from_prompt(f"p{i}", f"good {k}"),
            Conversation.from_prompt(f"p{i}", f"bad {k}"),
            id=f"{i}-{k}",
        )
        for i in range(n_prompts)
        for k in range(per_prompt)
    ]


def test_split_is_a_partition_grouped_by_prompt_and_sized():
    pairs = _pairs(100, 3)
    train, val, test = split_pairs(pairs, test_fraction=0.2, validation_fraction=0.1, seed=0)
    ids = [p.id for p in train + val + test]
    assert sorted(ids) == sorted(p.id for p in pairs)
    prompts = [{p.chosen.prompt_text for p in part} for part in (train, val, test)]
    assert not (prompts[0] & prompts[1] or prompts[0] & prompts[2] or prompts[1] & prompts[2])
    # groups of 3: each split reaches its target and overshoots by less than one group
    assert 60 <= len(test) < 63 and 30 <= len(val) < 33
    for part in (train, val, test):  # input order kept
        assert [p.id for p in part] == [p.id for p in pairs if p in part]


def test_split_is_deterministic_given_seed():
    pairs = _pairs(50, 1)
    a = split_pairs(pairs, test_fraction=0.3, validation_fraction=0.2, seed=1)
    b = split_pairs(pairs, test_fraction=0.3, validation_fraction=0.2, seed=1)
    c = split_pairs(pairs, test_fraction=0.3, validation_fraction=0.2, seed=2)
    assert a == b
    assert a != c


def test_zero_fractions_keep_everything_in_train():
    pairs = _pairs(5, 1)
    assert split_pairs(pairs, test_fraction=0, validation_fraction=0, seed=0) == (pairs, [], [])


@pytest.mark.parametrize(("test", "val"), [(1.0, 0.0), (-0.1, 0.1), (0.6, 0.5)])
def test_bad_fractions(test, val):
    with pytest.raises(ConfigError, match="fraction"):
        split_pairs(_pairs(5, 1), test_fraction=test, validation_fraction=val, seed=0)


def test_too_few_prompts_for_a_training_split():
    with pytest.raises(ConfigError, match="no training pairs"):
        split_pairs(_pairs(1, 4), test_fraction=0.2, validation_fraction=0.0, seed=0)


def test_without_grouping_pairs_of_one_prompt_are_split_one_by_one():
    pairs = _pairs(1, 10)
    train, val, test = split_pairs(
        pairs, test_fraction=0.2, validation_fraction=0.1, seed=0, group_by_prompt=False
    )
    assert (len(train), len(val), len(test)) == (7, 1, 2)
    assert sorted(p.id for p in train + val + test) == sorted(p.id for p in pairs)


def _split_by_hand(pairs, test_fraction, validation_fraction, seed):
    """The split as specified, written plainly: distinct prompts in order of first appearance,
    shuffled by `random.Random(seed)`; a prompt's pairs go to test while it is short of its
    target, else to validation while that is short, else to train; input order kept."""
    prompts = []
    for pair in pairs:
        if pair.chosen.messages not in prompts:
            prompts.append(pair.chosen.messages)
    random.Random(seed).shuffle(prompts)
    n = len(pairs)
    test, val = [], []
    for prompt in prompts:
        members = [p for p in pairs if p.chosen.messages == prompt]
        if len(test) < round(test_fraction * n):
            test += members
        elif len(val) < round(validation_fraction * n):
            val += members
    train = [p for p in pairs if p not in test and p not in val]
    return train, [p for p in pairs if p in val], [p for p in pairs if p in test]


@pytest.mark.parametrize("seed", range(4))
def test_split_pairs_is_the_specified_split(seed):
    # 13 prompts with 1 to 4 pairs each, interleaved; the demo and `ebrm split` use this split
    pairs = [
        PreferencePair(
            Conversation.from_prompt(f"p{(i * 5) % 13 if i % 4 else i % 3}", f"good {i}"),
            Conversation.from_prompt(f"p{(i * 5) % 13 if i % 4 else i % 3}", f"bad {i}"),
            id=str(i),
        )
        for i in range(31)
    ]
    by_hand = _split_by_hand(pairs, 0.3, 0.2, seed)
    assert split_pairs(pairs, test_fraction=0.3, validation_fraction=0.2, seed=seed) == by_hand


def test_split_indices_worked_example():
    # groups a: [0, 2, 5], b: [1], c: [3, 4], d: [6]; identity order a, b, c, d; n = 7;
    # targets round(0.3 * 7) = 2 and round(0.2 * 7) = 1: a (3 >= 2), then b (1 >= 1), rest
    keys = ["a", "b", "a", "c", "c", "a", "d"]
    assert split_indices(keys, [0.3, 0.2], seed=range) == [[0, 2, 5], [1], [3, 4, 6]]
    # reversed order d, c, b, a: d (1 < 2), c (3 >= 2); b (1 >= 1); a the rest
    reverse = lambda n: range(n - 1, -1, -1)  # noqa: E731
    assert split_indices(keys, [0.3, 0.2], seed=reverse) == [[6, 3, 4], [1], [0, 2, 5]]
    # an int seed shuffles the groups with the standard library, as split_pairs always did
    groups = [[0, 2, 5], [1], [3, 4], [6]]
    random.Random(3).shuffle(groups)
    assert split_indices(keys, [0.0], seed=3) == [[], [i for g in groups for i in g]]


@pytest.mark.parametrize("fractions", [[1.5], [-0.1], [0.6, 0.5], [True]])
def test_split_indices_rejects_bad_fractions(fractions):
    with pytest.raises(ConfigError, match="fractions"):
        split_indices(["a", "b"], fractions, seed=0)


def test_split_indices_whole_share_leaves_the_last_part_empty():
    assert split_indices([1, 2, 3], [1.0], seed=range) == [[0, 1, 2], []]
