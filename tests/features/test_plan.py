"""The extraction plan: the lazy, key-deduplicated plan of `build_plan` is exactly the plan
of the formatted texts deduplicated in memory (rows, order, pair table, keys, hash)."""

from __future__ import annotations

import hashlib

import torch

from ebrm.data.types import Conversation, PreferencePair
from ebrm.features.plan import PlanTexts, build_plan, plan_rows
from tests.fakes import FakeRM, make_pairs


def reference_plan(chosen_texts, rejected_texts):
    """The plan written straight from its definition, holding every text: unique texts,
    longest first, ties in order of first appearance; the hash of the texts in row order
    (each length-prefixed) and the pair table."""
    first_seen: dict[str, int] = {}
    for text in (t for pair in zip(chosen_texts, rejected_texts, strict=True) for t in pair):
        first_seen.setdefault(text, len(first_seen))
    texts = sorted(first_seen, key=lambda t: (-len(t), first_seen[t]))
    row = {text: i for i, text in enumerate(texts)}
    chosen = torch.tensor([row[t] for t in chosen_texts], dtype=torch.int64)
    rejected = torch.tensor([row[t] for t in rejected_texts], dtype=torch.int64)
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little") + encoded)
    digest.update(chosen.numpy().tobytes() + rejected.numpy().tobytes())
    keys = torch.tensor([list(hashlib.sha256(t.encode()).digest()) for t in texts])
    return texts, chosen, rejected, digest.hexdigest(), keys.to(torch.uint8)


def _pairs_with_ties_and_repeats() -> list[PreferencePair]:
    pairs = make_pairs(40)  # repeated chosen texts across pairs
    same = Conversation.from_prompt("p", "equal length A")
    other = Conversation.from_prompt("p", "equal length B")  # a tie in length with `same`
    pairs += [
        PreferencePair(other, same, id="tie"),
        PreferencePair(same, other, id="swapped"),
        PreferencePair(Conversation.from_prompt("p", "é ü ß ✓"), same),  # utf-8 > chars
        PreferencePair(same, same, id="self"),  # one text on both sides
    ]
    return pairs


def test_build_plan_equals_the_in_memory_plan():
    rm = FakeRM()
    pairs = _pairs_with_ties_and_repeats()
    chosen = [rm.format(p.chosen) for p in pairs]
    rejected = [rm.format(p.rejected) for p in pairs]
    texts, c, r, digest, keys = reference_plan(chosen, rejected)
    for plan in (build_plan(rm, pairs), plan_rows(chosen, rejected)):
        assert list(plan.texts) == texts
        assert plan.num_rows == len(texts) < 2 * len(pairs)  # duplicates were merged
        assert torch.equal(plan.chosen, c) and torch.equal(plan.rejected, r)
        assert plan.plan_hash == digest
        assert torch.equal(plan.keys, keys)
    plan = build_plan(rm, pairs)
    assert plan.ids[-4:-1] == ["tie", "swapped", str(len(pairs) - 2)]


def test_plan_texts_are_formatted_when_read():
    calls = []

    class CountingRM(FakeRM):
        def format(self, conv):
            calls.append(conv)
            return super().format(conv)

    pairs = make_pairs(30, duplicates=False)
    plan = build_plan(CountingRM(), pairs)
    assert isinstance(plan.texts, PlanTexts)
    calls.clear()
    assert plan.texts[3:7] == [plan.texts[i] for i in range(3, 7)]
    assert len(calls) == 8  # the range, then each row once: nothing was kept
    assert len(plan.texts) == plan.num_rows == 60
