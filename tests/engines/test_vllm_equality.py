"""The vLLM engine gives the transformers path's embeddings and rewards (fp32, 1e-4)."""

from __future__ import annotations

import pytest
import torch

from ebrm.data.types import Conversation
from ebrm.rm.pooling import last_non_pad_index
from tests.engines.conftest import NEEDS_VLLM

pytest.importorskip("vllm", reason=NEEDS_VLLM)

TOL = 1e-4
TEXTS = [
    "hi",
    "The capital of France is Paris.",
    "a much longer answer that goes on and on about reward models, energy heads and the "
    "many ways a response can be refined, well past the maximum length of the tiny model",
    "x y z",
    "Paris.",
]


def _assert_equal(reference, on_vllm, texts):
    want_emb, want_rew = reference.embed_texts(texts, batch_size=3)
    got_emb, got_rew = on_vllm.embed_texts(texts, batch_size=3)
    assert got_emb.shape == want_emb.shape
    torch.testing.assert_close(got_emb, want_emb, atol=TOL, rtol=TOL)
    torch.testing.assert_close(got_rew, want_rew, atol=TOL, rtol=TOL)
    # the rewards are the RM's own head on the embeddings (not another activation)
    torch.testing.assert_close(got_rew, reference.head_reward(got_emb), atol=TOL, rtol=TOL)


def test_embeddings_and_rewards_equal_transformers(engines):
    reference, on_vllm, _ = engines
    assert on_vllm.provenance()["engine"] == "vllm"
    assert reference.provenance()["engine"] == "transformers"
    _assert_equal(reference, on_vllm, TEXTS)


def test_truncation_on_either_side(engines):
    reference, on_vllm, _ = engines
    lengths = [len(row) for row in reference.tokenize(TEXTS)]
    assert max(lengths) == reference.max_length  # the long text is cut
    for side in ("left", "right"):
        reference.truncation_side = on_vllm.truncation_side = side
        _assert_equal(reference, on_vllm, TEXTS)
    reference.truncation_side = on_vllm.truncation_side = "left"


def test_chat_templated_conversations(engines):
    reference, on_vllm, _ = engines
    convs = [
        Conversation(messages=(("user", "What is 2+2?"),), response="4"),
        Conversation(messages=(("system", "Be brief."), ("user", "Capital of France?")),
                     response="Paris, a city on the Seine with a long history of art"),
    ]  # fmt: skip
    texts = [reference.format(conv) for conv in convs]
    assert all(text.startswith(reference.tokenizer.bos_token) for text in texts)
    want = reference.embed_conversations(convs)
    got = on_vllm.embed_conversations(convs)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=TOL, rtol=TOL)


def test_pad_is_eos_pools_the_last_non_pad_token(engines):
    reference, on_vllm, arch = engines
    rows = reference.tokenize(TEXTS)
    ids = torch.tensor([rows[1]])
    pad = reference.pad_token_id
    if arch.endswith("pad-eos"):
        # every row ends with [SEP] == pad: the RM pools the token before it, not the
        # literal last token (what vLLM's LAST pooling would read if sent the whole row)
        assert rows[1][-1] == pad
        assert int(last_non_pad_index(ids, pad)) == len(rows[1]) - 2
    # rows with extra trailing pad tokens pool where the RM pools
    padded = [[*row, pad, pad] for row in rows]
    want = reference.embed_token_ids(padded)
    got = on_vllm.embed_token_ids(padded)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=TOL, rtol=TOL)
