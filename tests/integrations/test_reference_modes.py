"""The server scores a model's reference rewards by name, and refuses them when it has none."""

from __future__ import annotations

import httpx
import pytest

from ebrm.integrations.server import ServerConfig, create_app
from tests.integrations.serving import running_server
from tests.references.test_model_references import model_and_data  # noqa: F401 (fixture)


class _Scorer:
    """Scores conversations with a real model on fake embeddings (length-derived)."""

    def __init__(self, model):
        self.model = model

    def score(self, convs, *, batch_size=16):
        import torch

        dim = self.model.embedding_dim
        gens = [torch.Generator().manual_seed(len(c.response)) for c in convs]
        emb = torch.stack([torch.randn(dim, generator=g) for g in gens])  # one per text
        return self.model.refine(emb, torch.zeros(len(convs)))


def test_reference_modes_over_http(model_and_data):  # noqa: F811
    model = model_and_data[0]
    items = [{"prompt": "Hi?", "response": "Hello."}, {"prompt": "Q", "response": "A longer one"}]
    with running_server(create_app(_Scorer(model), ServerConfig(max_wait_ms=5))) as url:
        body = httpx.post(f"{url}/score?reward=laplace", json=items).json()
        expected = _Scorer(model).score([_conv(i) for i in items]).reward_for("laplace")
        assert [r["reward"] for r in body["results"]] == pytest.approx(expected.tolist(), abs=1e-5)
    bare = model.__class__(model.head, model.normalizer, model.refine_config)  # no references
    with running_server(create_app(_Scorer(bare), ServerConfig(max_wait_ms=5))) as url:
        resp = httpx.post(f"{url}/score", json={"items": items, "reward": "ensemble_lcb"})
        assert resp.status_code == 422 and "reference heads" in resp.text


def _conv(item):
    from ebrm.data.types import Conversation

    return Conversation.from_prompt(item["prompt"], item["response"])
