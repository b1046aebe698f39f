"""verl adapter, without verl: local-model and server backends."""

from __future__ import annotations

import pytest

import ebrm.integrations._common as common
from ebrm.data.types import Conversation
from ebrm.errors import ConfigError
from ebrm.integrations.server import ServerConfig, create_app
from ebrm.integrations.verl import compute_score, compute_score_batch
from tests.fakes import FakeScorer, fake_rewards
from tests.integrations.serving import running_server


@pytest.fixture
def local(monkeypatch):
    scorer = FakeScorer()
    monkeypatch.setattr(common, "load_scorer", lambda path, device=None: scorer)
    monkeypatch.setattr(common, "_ENV_SCORERS", {})
    monkeypatch.delenv("EBRM_SERVER_URL", raising=False)
    monkeypatch.setenv("EBRM_MODEL", "/some/model")
    monkeypatch.delenv("EBRM_REWARD", raising=False)
    monkeypatch.delenv("EBRM_MODE", raising=False)
    return scorer


def test_local_backend_uses_the_prompt_from_extra_info(local):
    got = compute_score("hh", "Sure, here it is.", None, {"question": "Can you help?"})
    conv = Conversation.from_prompt("Can you help?", "Sure, here it is.")
    assert got == pytest.approx(fake_rewards([conv]).reward[0].item())
    assert local.seen == [conv]
    # no prompt known: an empty user turn
    compute_score("hh", "Alone.", "gt")
    assert local.seen[-1] == Conversation.from_prompt("", "Alone.")


def test_batch_and_modes(local, monkeypatch):
    monkeypatch.setenv("EBRM_REWARD", "conservative")
    infos = [{"prompt": [{"role": "user", "content": "Q1"}]}, {"prompt": "Q2"}]
    got = compute_score_batch(["a", "b"], ["R1", "R2"], [None, None], infos)
    convs = [Conversation.from_prompt("Q1", "R1"), Conversation.from_prompt("Q2", "R2")]
    assert got == pytest.approx(fake_rewards(convs).conservative.tolist())
    assert compute_score_batch([], [], [], []) == []
    with pytest.raises(ConfigError, match="2 solutions but 1 extra_infos"):
        compute_score_batch(["a", "b"], ["x", "y"], [None, None], [None])
    monkeypatch.setenv("EBRM_REWARD", "nope")
    with pytest.raises(ConfigError, match="Unknown EBRM_REWARD 'nope'"):
        compute_score("a", "x")


def test_server_backend_with_token(monkeypatch):
    monkeypatch.setattr(common, "load_scorer", lambda *a, **k: pytest.fail("must not load"))
    app = create_app(FakeScorer(), ServerConfig(token="t0k"))
    with running_server(app) as url:
        monkeypatch.setenv("EBRM_SERVER_URL", url)
        monkeypatch.setenv("EBRM_TOKEN", "t0k")
        monkeypatch.setenv("EBRM_REWARD", "mean")
        got = compute_score("d", "R", None, {"prompt": "Q"})
        assert got == pytest.approx(
            fake_rewards([Conversation.from_prompt("Q", "R")]).mean[0].item()
        )
        monkeypatch.setenv("EBRM_TOKEN", "wrong")
        with pytest.raises(Exception, match="401"):
            compute_score("d", "R", None, {"prompt": "Q"})
