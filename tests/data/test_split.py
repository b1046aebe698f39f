"""split_pairs: deterministic, complete, disjoint, prompt groups kept together."""

from __future__ import annotations

import pytest

from ebrm.data import Conversation, PreferencePair, split_pairs
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
