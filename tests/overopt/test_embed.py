"""Candidates are embedded through a real feature store, in their own order, once."""

from __future__ import annotations

import torch

from ebrm.data.types import Conversation
from ebrm.features import FeatureStore
from ebrm.overopt.embed import conversation_features


def test_conversation_features_match_the_rm_and_reuse_the_store(tmp_path, tiny_bert_rm_dir):
    from ebrm.rm import BaseRewardModel

    rm = BaseRewardModel.from_pretrained(str(tiny_bert_rm_dir), max_length=64)
    convs = [Conversation.from_prompt(f"q{i % 2}", f"answer {i % 3}") for i in range(7)]
    emb, rew = conversation_features(rm, convs, tmp_path / "s", progress=False)
    direct_emb, direct_rew = rm.embed_conversations(convs)
    assert torch.allclose(emb, direct_emb, atol=1e-5) and torch.allclose(rew, direct_rew, atol=1e-5)
    store = FeatureStore.open(tmp_path / "s")
    assert store.complete and store.num_rows == len({(c.prompt_text, c.response) for c in convs})
    before = (tmp_path / "s" / "shard-00000.safetensors").stat().st_mtime_ns
    again, _ = conversation_features(rm, convs, tmp_path / "s", progress=False)
    assert torch.equal(again, emb)
    assert (tmp_path / "s" / "shard-00000.safetensors").stat().st_mtime_ns == before  # reused
    # other texts: the store is rebuilt, not refused
    other, _ = conversation_features(rm, convs[:3], tmp_path / "s", progress=False)
    assert torch.allclose(other, direct_emb[:3], atol=1e-5)
