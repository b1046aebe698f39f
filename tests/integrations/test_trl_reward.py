"""The TRL reward function: plain and conversational inputs, rewards, pickling, inference mode."""

from __future__ import annotations

import pickle

import pytest
import torch

from ebrm.data.types import Conversation
from ebrm.errors import ConfigError, DataFormatError
from ebrm.integrations.trl import EBRMRewardFunction, ebrm_reward
from tests.fakes import FakeScorer, fake_rewards

PROMPTS = ["What is 2+2?", "Name a colour.", "Say hi."]
COMPLETIONS = ["4", "Blue, obviously.", "hi!"]


def expected(convs, kind):
    return fake_rewards(convs).reward_for(kind).tolist()


@pytest.mark.parametrize("reward", ["refined", "mean", "conservative", "base"])
def test_plain_text_rewards_match_the_scorer(reward):
    fn = EBRMRewardFunction(FakeScorer(), reward=reward)
    got = fn(prompts=PROMPTS, completions=COMPLETIONS, trainer_state=None, completion_ids=[[1]])
    convs = [Conversation.from_prompt(p, c) for p, c in zip(PROMPTS, COMPLETIONS, strict=True)]
    assert got == pytest.approx(expected(convs, reward))
    assert fn.__name__ == f"ebrm_{reward}"


def test_conversational_inputs_keep_every_turn():
    prompts = [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Part "}, {"type": "text", "text": "two"}],
            }
        ],
    ]
    completions = [
        [{"role": "assistant", "content": "Hello."}],
        [{"role": "assistant", "content": "ok"}],
    ]
    scorer = FakeScorer()
    got = EBRMRewardFunction(scorer)(prompts, completions)
    convs = [
        Conversation(messages=(("system", "Be brief."), ("user", "Hi?")), response="Hello."),
        Conversation(messages=(("user", "Part two"),), response="ok"),
    ]
    assert scorer.seen == convs
    assert got == pytest.approx(expected(convs, "refined"))


def test_works_under_inference_mode_even_when_the_scorer_needs_autograd():
    fn = EBRMRewardFunction(FakeScorer(needs_grad=True))
    with torch.inference_mode():
        a = fn(PROMPTS, COMPLETIONS)
    with torch.no_grad():
        b = fn(PROMPTS, COMPLETIONS)
    assert a == b and fn.calls == 2


def test_empty_batch_and_length_mismatch():
    fn = EBRMRewardFunction(FakeScorer())
    assert fn([], []) == []
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        fn(["a", "b"], ["c"])


def test_bad_mode_and_bad_message_are_user_errors():
    with pytest.raises(ConfigError, match="Unknown reward 'best'"):
        EBRMRewardFunction(FakeScorer(), reward="best")
    with pytest.raises(DataFormatError, match="completion 0.prompt"):
        EBRMRewardFunction(FakeScorer())([42], ["x"])


def test_pickles_without_the_model_when_built_from_a_path(tmp_path):
    fn = EBRMRewardFunction(tmp_path / "model", reward="conservative", batch_size=4)
    fn._scorer = FakeScorer()  # as if loaded
    clone = pickle.loads(pickle.dumps(fn))
    assert clone._scorer is None and clone.path == str(tmp_path / "model")
    assert clone.reward == "conservative" and clone.__name__ == "ebrm_conservative"
    # built from an in-memory scorer, the scorer travels with it
    clone2 = pickle.loads(pickle.dumps(EBRMRewardFunction(FakeScorer())))
    assert clone2(PROMPTS, COMPLETIONS) == EBRMRewardFunction(FakeScorer())(PROMPTS, COMPLETIONS)


def test_dotted_path_function_loads_from_env(monkeypatch):
    import ebrm.integrations._common as common

    loaded = []

    def fake_load(path, *, device=None):
        loaded.append(path)
        return FakeScorer()

    monkeypatch.setattr(common, "load_scorer", fake_load)
    monkeypatch.setattr(common, "_ENV_SCORERS", {})
    monkeypatch.delenv("EBRM_MODEL", raising=False)
    with pytest.raises(ConfigError, match="EBRM_MODEL is not set"):
        ebrm_reward(PROMPTS, COMPLETIONS)
    monkeypatch.setenv("EBRM_MODEL", "/models/x")
    monkeypatch.setenv("EBRM_REWARD", "base")
    first = ebrm_reward(PROMPTS, COMPLETIONS)
    second = ebrm_reward(PROMPTS, COMPLETIONS)
    convs = [Conversation.from_prompt(p, c) for p, c in zip(PROMPTS, COMPLETIONS, strict=True)]
    assert first == second == pytest.approx(expected(convs, "base"))
    assert loaded == ["/models/x"]  # loaded once per process
    # the way `trl grpo --reward_funcs` resolves it
    import importlib

    module_path, name = ["ebrm.integrations.trl", "ebrm_reward"]
    assert getattr(importlib.import_module(module_path), name) is ebrm_reward


@pytest.mark.parametrize("reward", ["conservative", "mean"])
def test_dotted_path_function_is_logged_under_its_reward(monkeypatch, reward):
    from trl.trainer.utils import get_callable_name  # how GRPOTrainer names reward columns

    monkeypatch.setenv("EBRM_REWARD", reward)
    assert get_callable_name(ebrm_reward) == f"ebrm_{reward}"
    monkeypatch.delenv("EBRM_REWARD")
    assert get_callable_name(ebrm_reward) == "ebrm_refined"
    assert pickle.loads(pickle.dumps(ebrm_reward)).__name__ == "ebrm_refined"
