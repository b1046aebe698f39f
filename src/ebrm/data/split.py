"""Deterministic train / validation / test splits of preference pairs, grouped by prompt.

Pairs that share a prompt (the chosen side's turns before the response, e.g. the 9 pairs of
one RM-Bench prompt or repeated HH-RLHF prompts) always land in the same split, so a test
score never rewards memorising a training prompt.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Hashable, Sequence

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


Shuffle = Callable[[int], Sequence[int]]  # n -> a permutation of range(n)


def split_indices(
    keys: Sequence[Hashable], fractions: Sequence[float], *, seed: int | Shuffle
) -> list[list[int]]:
    """Indices of `keys` split into ``len(fractions) + 1`` parts, equal keys in one part.

    The one prompt-grouped split of every stage. Items with equal keys (e.g. prompt hashes)
    form a group; groups, in order of first appearance, are permuted by `seed`; walking that
    order, part k takes whole groups until it holds at least ``round(fractions[k] * n)``
    items, and the last part takes the rest. Each part lists its indices in the order the
    walk took them (shuffled groups, a group's items in input order): sort them for input
    order.

    Args:
        keys: (n,) one grouping key per item; distinct keys split item by item.
        fractions: target share of the items in each part but the last, each in [0, 1],
            summing to at most 1.
        seed: an int seeds the standard library's `random.Random(seed).shuffle` of the
            groups; or a function n -> a permutation of range(n) to order them with (the
            feature table and the over-optimisation harness pass `torch.randperm` with a
            seeded generator, as their splits always did).

    Returns:
        ``len(fractions) + 1`` lists of indices; together they hold every index once.

    Raises:
        ConfigError: a fraction outside [0, 1], or fractions summing to more than 1.

    Example:
        >>> split_indices(["a", "b", "a", "c"], [0.5], seed=lambda n: range(n))
        [[0, 2], [1, 3]]
    """
    for k, value in enumerate(fractions):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"fractions[{k}] must be a number in [0, 1]. Got {value!r} instead.")
    if sum(fractions) > 1:
        raise ConfigError(f"fractions must sum to at most 1. Got {list(fractions)} instead.")
    groups: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    firsts = list(groups.values())
    if callable(seed):
        order = [firsts[g] for g in seed(len(firsts))]
    else:
        order = list(firsts)
        random.Random(seed).shuffle(order)

    n = len(keys)
    targets = [round(fraction * n) for fraction in fractions]
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    part = 0
    for group in order:
        while part < len(targets) and len(parts[part]) >= targets[part]:
            part += 1
        parts[part].extend(group)
    return parts


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

    `split_indices` by `prompt_hash` with ``[test_fraction, validation_fraction]``: prompt
    groups are shuffled with `seed`; test takes groups until it holds at least
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
    keys = [prompt_hash(pair) if group_by_prompt else index for index, pair in enumerate(pairs)]
    assigned = split_indices(keys, [test_fraction, validation_fraction], seed=seed)
    n = len(pairs)
    if pairs and not assigned[2]:
        raise ConfigError(
            f"{n} pairs in {len(set(keys))} prompt groups leave no training pairs with "
            f"test_fraction={test_fraction} and validation_fraction={validation_fraction}; "
            "use smaller fractions, more data, or group_by_prompt=False."
        )
    test, validation, train = ([pairs[i] for i in sorted(idx)] for idx in assigned)
    return train, validation, test
