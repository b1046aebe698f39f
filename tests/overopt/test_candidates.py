"""Candidates, edits, pools and the prompt split."""

from __future__ import annotations

import pytest
import torch

from ebrm.data.types import Conversation, PreferencePair
from ebrm.errors import ConfigError
from ebrm.overopt.candidates import build_candidates, build_pools, response_pairs
from ebrm.overopt.edits import EDITS
from ebrm.overopt.regimes import flip, split_prompts


def test_every_edit_is_deterministic_and_changes_the_text():
    text = "Paris is the capital. It is in France!"
    for name, edit in EDITS.items():
        assert edit(text) == edit(text) and edit(text) != text, name
    assert EDITS["repeat"](text) == f"{text} {text}"
    assert EDITS["markdown"](text).splitlines()[2:] == ["- **Paris is the capital.**",
                                                        "- It is in France!"]  # fmt: skip


def test_candidates_dedupe_and_edit_the_chosen_positions():
    edits = {"upper": str.upper, "same": lambda t: t}
    c = build_candidates(["a", "b", "a", "c"], [1, 2], edits)
    assert c.texts == ("a", "b", "c", "B", "A")
    assert c.kinds == ("real", "real", "real", "upper", "upper")  # "same" adds nothing new
    assert c.origin == (0, 1, 2, 1, 0)
    assert c.edits_of() == {1: [3], 0: [4]}


def _pairs(n):
    return [
        PreferencePair(
            chosen=Conversation(messages=(("user", f"q{i // 2}"),), response=f"good {i}"),
            rejected=Conversation(messages=(("user", f"q{i // 2}"),), response=f"bad {i}"),
        )
        for i in range(n)
    ]


def test_pools_put_own_responses_and_edits_first_then_distinct_others():
    c = build_candidates([f"r{i}" for i in range(30)], [0, 1], {"x": lambda t: t + "!"})
    pools = build_pools(c, [[0, 1], [5]], num_candidates=10, seed=0)
    assert pools.shape == (2, 10)
    assert pools[0, :4].tolist() == [0, 1, 30, 31] and pools[1, 0] == 5
    for row in pools:
        assert len(set(row.tolist())) == 10  # no candidate twice
    assert torch.equal(pools, build_pools(c, [[0, 1], [5]], num_candidates=10, seed=0))
    with pytest.raises(ConfigError, match="--candidates 40 is more than the 32"):
        build_pools(c, [[0]], num_candidates=40, seed=0)


def test_response_pairs_index_the_candidates():
    pairs = _pairs(3)
    c = build_candidates([t for p in pairs for t in (p.chosen.response, p.rejected.response)],
                         [], EDITS)  # fmt: skip
    chosen, rejected = response_pairs(c, pairs)
    assert [c.texts[i] for i in chosen] == ["good 0", "good 1", "good 2"]
    assert [c.texts[i] for i in rejected] == ["bad 0", "bad 1", "bad 2"]


@pytest.mark.parametrize("seed", range(3))
def test_split_prompts_is_the_specified_split(seed):
    # written plainly: one torch generator permutes the distinct prompts (first appearance
    # order); the first 4 give the pools; it then permutes the other prompts' pairs (listed
    # prompt by prompt in that order) and the first round(0.4 * len) train the proxies
    pairs = _pairs(40)
    prompts = list(dict.fromkeys(p.chosen.messages for p in pairs))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(prompts), generator=generator).tolist()
    members = [[i for i, p in enumerate(pairs) if p.chosen.messages == prompts[g]] for g in order]
    rest = [i for group in members[4:] for i in group]
    take = torch.randperm(len(rest), generator=generator)[: round(0.4 * len(rest))]
    s = split_prompts(pairs, num_prompts=4, proxy_fraction=0.4, seed=seed)
    assert s.pool_groups == members[:4]
    assert s.proxy_pairs == sorted(rest[i] for i in take.tolist())


def test_split_keeps_prompts_apart_and_flip_swaps_exactly():
    pairs = _pairs(40)  # 20 prompts of 2 pairs
    s = split_prompts(pairs, num_prompts=5, proxy_fraction=0.5, seed=0)
    pool = {i for g in s.pool_groups for i in g}
    assert len(s.pool_groups) == 5 and all(len(g) == 2 for g in s.pool_groups)
    assert not pool & set(s.proxy_pairs) and len(s.proxy_pairs) == 15
    pool_prompts = {pairs[i].chosen.messages for i in pool}
    assert not pool_prompts & {pairs[i].chosen.messages for i in s.proxy_pairs}
    with pytest.raises(ConfigError, match="lower --prompts"):
        split_prompts(pairs, num_prompts=20, proxy_fraction=0.5, seed=0)
    c, r = torch.arange(10), torch.arange(10, 20)
    fc, fr = flip(c, r, 0.3, seed=0)
    swapped = (fc != c).nonzero().flatten()
    assert len(swapped) == 3 and torch.equal(fc[swapped], r[swapped])
    assert torch.equal(fr[swapped], c[swapped])
