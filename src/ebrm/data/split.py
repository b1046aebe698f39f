"""Deterministic train / validation / test splits of preference pairs, grouped by prompt.

Pairs that share a prompt (the chosen side's turns before the response, e.g. the 9 pairs of
one RM-Bench prompt or repeated HH-RLHF prompts) always land in the same split, so a test
score never rewards memorising a training prompt.
"""

from __future__ import annotations

import hashlib
import json
import random

from ebrm.data.types import PreferencePair
from ebrm.errors import ConfigError

PROMPT_HASH_CHARS = 16  # hex characters kept of the sha256 (64 bits: no collision in practice)


def prompt_hash(pair: PreferencePair) -> str:
    """The prompt's identity: sha256 of the chosen side's turns before the response, short hex.

    The one definition of "same prompt" for every stage: `split_pairs` groups by it, feature
    extraction stores it per pair, and a trained model records the hashes of the prompts it
    trained and validated on, so evaluation can count overlap.
    """
    text = json.dumps(pair.chosen.messages, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:PROMPT_HASH_CHARS]


def _check_fraction(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"{name} must be a number in [0, 1). Got {value!r} instead.")


def split_pairs(
    pairs: list[PreferencePair],
    *,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
    group_by_prompt: bool = True,
) -> tuple[list[PreferencePair], list[PreferencePair], list[PreferencePair]]:
    """Split pairs into (train, validation, test), deterministic given `seed`.

    Prompt groups are shuffled with `seed`; test takes groups until it holds at least
    ``round(test_fraction * n)`` pairs, then validation likewise, the rest is train. Each split
    keeps the input order of its pairs.

    Args:
        pairs: the pairs to split.
        test_fraction: target fraction of pairs in the test split, in [0, 1).
        validation_fraction: target fraction in the validation split, in [0, 1).
        seed: random seed of the shuffle.
        group_by_prompt: keep pairs with the same prompt in one split (False: split pairs
            one by one).

    Returns:
        (train, validation, test) lists; together they hold every pair exactly once.

    Raises:
        ConfigError: bad fractions, or too few prompts to leave a training split.
    """
    _check_fraction("test_fraction", test_fraction)
    _check_fraction("validation_fraction", validation_fraction)
    if test_fraction + validation_fraction >= 1:
        raise ConfigError(
            f"test_fraction + validation_fraction must be < 1 to leave training data. "
            f"Got {test_fraction} + {validation_fraction}."
        )
    groups: dict[str, list[int]] = {}
    for index, pair in enumerate(pairs):
        groups.setdefault(prompt_hash(pair) if group_by_prompt else str(index), []).append(index)
    order = list(groups.values())
    random.Random(seed).shuffle(order)

    n = len(pairs)
    targets = [round(test_fraction * n), round(validation_fraction * n)]
    assigned: list[list[int]] = [[], [], []]  # test, validation, train
    part = 0
    for group in order:
        while part < 2 and len(assigned[part]) >= targets[part]:
            part += 1
        assigned[part].extend(group)
    if pairs and not assigned[2]:
        raise ConfigError(
            f"{n} pairs in {len(groups)} prompt groups leave no training pairs with "
            f"test_fraction={test_fraction} and validation_fraction={validation_fraction}; "
            "use smaller fractions, more data, or group_by_prompt=False."
        )
    test, validation, train = ([pairs[i] for i in sorted(idx)] for idx in assigned)
    return train, validation, test
