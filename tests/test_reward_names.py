"""One name for "which reward": the earlier names and spellings still work for one release,
with a warning, and map to the new ones; every output path writes the same record."""

from __future__ import annotations

import warnings

import httpx
import pytest

from ebrm.data.types import Conversation
from ebrm.errors import ConfigError
from ebrm.integrations import _common as common
from ebrm.integrations.best_of_n import select_best
from ebrm.integrations.server import create_app
from ebrm.integrations.server_config import ServerConfig
from ebrm.integrations.trl import EBRMRewardFunction
from ebrm.refine.kinds import (
    DEPRECATED_KINDS,
    REWARD_KINDS,
    check_reward_kind,
    resolve_reward,
)
from tests.fakes import FakeScorer, fake_rewards
from tests.integrations.serving import running_server

CONVS = [Conversation.from_prompt("Hi?", "Hello."), Conversation.from_prompt("Q", "A longer one")]
ITEMS = [{"prompt": c.messages[0][1], "response": c.response} for c in CONVS]


# ---- the old names warn and map ------------------------------------------------------------


@pytest.mark.parametrize(("old", "new"), sorted(DEPRECATED_KINDS.items()))
def test_old_kind_spellings_warn_and_map(old, new):
    with pytest.warns(DeprecationWarning, match=f"'{old}' is deprecated.*use '{new}'"):
        assert check_reward_kind(old) == new
    assert new in REWARD_KINDS and old not in REWARD_KINDS


def test_the_two_lower_bounds_have_different_names():
    assert "conservative" in REWARD_KINDS  # the energy model's mean - k*spread
    assert {"laplace_lcb", "ensemble_lcb"} <= set(REWARD_KINDS)  # a reference's mean - k*std
    assert not any(k.endswith("conservative") and k != "conservative" for k in REWARD_KINDS)


def test_current_names_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_reward("mean") == "mean" and resolve_reward(None) == "refined"
        assert ServerConfig(reward="base").reward == "base"


def test_renamed_keywords_warn_and_map():
    with pytest.warns(DeprecationWarning, match="'mode' is deprecated.*use 'reward'"):
        assert ServerConfig(mode="mean").reward == "mean"
    with pytest.warns(DeprecationWarning, match="'mode' is deprecated"):
        fn = EBRMRewardFunction(FakeScorer(), mode="base")
    assert fn.reward == "base" and fn.__name__ == "ebrm_base"
    with pytest.warns(DeprecationWarning, match="'mode' is deprecated"):
        rows = select_best(FakeScorer(), [{"prompt": "Q", "candidates": ["a", "b"]}], mode="mean")
    assert rows[0]["reward"] == "mean"
    with pytest.raises(ConfigError, match="disagree"), pytest.warns(DeprecationWarning):
        resolve_reward("mean", "base")


def test_ebrm_mode_is_read_only_when_ebrm_reward_is_unset():
    with pytest.warns(DeprecationWarning, match="'EBRM_MODE' is deprecated.*'EBRM_REWARD'"):
        assert common.reward_from_env({"EBRM_MODE": "mean"}) == "mean"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert common.reward_from_env({"EBRM_REWARD": "base", "EBRM_MODE": "mean"}) == "base"
        assert common.reward_from_env({}) == "refined"


def test_server_takes_the_old_body_and_query_names():
    with running_server(create_app(FakeScorer(), ServerConfig(max_wait_ms=5))) as url:
        new = httpx.post(f"{url}/score", json={"items": ITEMS, "reward": "mean"}).json()
        old = httpx.post(f"{url}/score", json={"items": ITEMS, "mode": "mean"}).json()
        query = httpx.post(f"{url}/score?mode=mean", json=ITEMS).json()
        health = httpx.get(f"{url}/health").json()
    assert new == old == query and new["reward"] == "mean" == new["mode"]
    assert health["reward"] == "refined"


@pytest.mark.parametrize(
    "argv",
    [["bon", "--mode", "mean"], ["serve", "--mode", "mean"], ["bon", "--reward", "mean"]],
)
def test_cli_mode_flag_warns_in_one_line(argv, capsys):
    from ebrm.cli._options import reward_or_mode

    flag, value = argv[1], argv[2]
    got = reward_or_mode("refined", value) if flag == "--mode" else reward_or_mode(value, None)
    assert got == "mean"
    err = capsys.readouterr().err
    if flag == "--mode":
        assert err.count("\n") == 1 and "--mode is deprecated" in err and "--reward" in err
    else:
        assert err == ""


# ---- one record shape on every output path -------------------------------------------------


def _same_records(got: list[dict], expected: list[dict]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert set(a) == set(b)
        for key, value in b.items():
            assert a[key] == (value if isinstance(value, str) else pytest.approx(value)), key


def _record_keys() -> set[str]:
    return set(fake_rewards(CONVS).to_records()[0])


def test_records_hold_every_kind_under_its_name():
    result = fake_rewards(CONVS)
    records = result.to_records()
    for kind in ("refined", "mean", "mode", "median", "conservative", "base"):
        assert [r[kind] for r in records] == pytest.approx(result.reward_for(kind).tolist())
    # independent of the accessor: the fields as fake_rewards built them
    assert [r["median"] for r in records] == pytest.approx(result.q50.tolist())
    assert [r["refined"] for r in records] == pytest.approx(result.reward.tolist())


def test_server_score_results_are_the_records():
    with running_server(create_app(FakeScorer(), ServerConfig(max_wait_ms=5))) as url:
        body = httpx.post(f"{url}/score", json={"items": ITEMS, "reward": "conservative"}).json()
    expected = fake_rewards(CONVS).to_records()
    assert [r["reward"] for r in body["results"]] == pytest.approx(
        [r["conservative"] for r in expected]
    )
    # the record, plus "reward" (the requested kind) and the deprecated "base_reward"
    extra = {"reward", "base_reward"}
    _same_records([{k: v for k, v in r.items() if k not in extra} for r in body["results"]],
                  expected)  # fmt: skip


def test_best_of_n_scores_are_the_records():
    rows = select_best(FakeScorer(), [{"prompt": "Hi?", "candidates": ["Hello.", "Hey"]}])
    convs = [Conversation.from_prompt("Hi?", c) for c in ("Hello.", "Hey")]
    _same_records(rows[0]["scores"], fake_rewards(convs).to_records())


def test_trl_rewards_are_the_records_column():
    fn = EBRMRewardFunction(FakeScorer(), reward="median")
    got = fn(["Hi?", "Q"], ["Hello.", "A longer one"])
    assert got == pytest.approx([r["median"] for r in fake_rewards(CONVS).to_records()])


def test_score_rows_are_the_records():
    import torch

    from ebrm.energy.scoring import score_features
    from ebrm.features.table import PairFeatures
    from tests.test_model import data, make_model

    model = make_model(method="mode")
    emb, raw = data(4)
    rows = score_features(model, PairFeatures(emb, raw, torch.tensor([0, 2]), torch.tensor([1, 3])))
    records = model.refine(emb, raw).to_records()
    assert [r["row"] for r in rows] == [0, 1, 2, 3]
    assert [{k: v for k, v in r.items() if k != "row"} for r in rows] == records
    assert rows[0]["refined"] == rows[0]["mode"] and rows[0]["method"] == "mode"
