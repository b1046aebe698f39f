"""The reward client against live in-process replicas: spreading, skipping a dead replica,
Retry-After, timeouts, all-down; the TRL, verl and OpenRLHF reward functions on top.

Every reward is checked against `fake_rewards` (the fake scorer's formula) and against
what a single server answers, not only that a call returned."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import socket
import time
from contextlib import ExitStack

import httpx
import pytest

import ebrm.integrations._client as client_module
import ebrm.integrations._common as common
from ebrm.data.types import Conversation
from ebrm.errors import ConfigError
from ebrm.integrations._client import RemoteRewardError, RewardClient, parse_urls
from ebrm.integrations.server import ServerConfig, create_app
from tests.fakes import FakeScorer, fake_rewards
from tests.integrations.serving import running_server

CONVS = [Conversation.from_prompt(f"Question {i}?", f"Answer {i} {'x' * i}.") for i in range(48)]


def expected(convs, reward="conservative"):
    """The fake scorer's rewards, computed here without any server."""
    return getattr(fake_rewards(convs), reward).tolist()


class Scripted:
    """An ASGI wrapper that counts /score and /get_reward requests and, while its script
    lasts, answers them itself: ("status", code, headers) or ("sleep", seconds)."""

    def __init__(self, app, script=()) -> None:
        self.app, self.script, self.hits = app, list(script), 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] in ("/score", "/get_reward"):
            self.hits += 1
            if self.script:
                action = self.script.pop(0)
                if action[0] == "sleep":
                    await asyncio.sleep(action[1])
                else:
                    _, status, headers = action
                    body = json.dumps({"detail": f"scripted {status}"}).encode()
                    raw = [(b"content-type", b"application/json")]
                    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
                    await send({"type": "http.response.start", "status": status, "headers": raw})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


def _replica(token=None, script=()):
    return Scripted(create_app(FakeScorer(), ServerConfig(token=token)), script)


def _dead_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def replicas():
    """Three live replicas (token "t0k") and their wrappers."""
    apps = [_replica(token="t0k") for _ in range(3)]
    with ExitStack() as stack:
        urls = [stack.enter_context(running_server(app)) for app in apps]
        yield urls, apps


def test_load_spreads_and_rewards_equal_a_single_servers(replicas):
    urls, apps = replicas
    single = RewardClient(urls[0], token="t0k")
    several = RewardClient(urls, token="t0k")
    before = [app.hits for app in apps]
    for i in range(6):  # small calls: one request each, in turn
        convs = CONVS[i : i + 2]
        got = several.score(convs, "conservative")
        assert got == pytest.approx(expected(convs), abs=1e-6)
        assert got == single.score(convs, "conservative")
    # single's 6 requests all went to urls[0]; several's went round robin
    assert [app.hits - b for app, b in zip(apps, before, strict=True)] == [6 + 2, 2, 2]
    assert several.answered() == dict.fromkeys(urls, 2)
    # a large batch is cut into one piece per replica, posted at once, answered in order
    before = [app.hits for app in apps]
    got = several.score(CONVS, "mean")
    assert got == pytest.approx(expected(CONVS, "mean"), abs=1e-6)
    assert got == single.score(CONVS, "mean")
    assert [app.hits - b for app, b in zip(apps, before, strict=True)] == [1 + 1, 1, 1]


def test_pieces_split_by_replica_count_and_size():
    client = RewardClient(["http://a:1", "http://b:1", "http://c:1"], max_items_per_request=50)
    assert client.pieces(10) == [(0, 10)]  # under 2 x 16 items: one request
    assert client.pieces(32) == [(0, 16), (16, 32)]
    assert client.pieces(40) == [(0, 20), (20, 40)]  # each piece keeps >= 16 items
    assert client.pieces(100) == [(0, 33), (33, 67), (67, 100)]  # one piece per replica
    sizes = [b - a for a, b in client.pieces(400)]  # 400 / 50: 8 pieces, never above 50
    assert len(sizes) == 8 and max(sizes) <= 50 and sum(sizes) == 400
    for n in (1, 15, 16, 47, 48, 101, 999):
        pieces = client.pieces(n)
        assert pieces[0][0] == 0 and pieces[-1][1] == n
        assert all(
            a < b and b == c for (a, b), (c, _) in zip(pieces, pieces[1:], strict=False)
        )  # contiguous


def test_a_killed_replica_is_skipped_and_results_stay_in_order(replicas, caplog):
    urls, _ = replicas
    spare = _replica(token="t0k")
    with ExitStack() as stack:
        doomed = stack.enter_context(running_server(spare))
        client = RewardClient([doomed, *urls], token="t0k", cooldown_s=30.0)
        assert client.score(CONVS[:3], "conservative") == pytest.approx(expected(CONVS[:3]))
        hits = spare.hits
    # `doomed` is stopped: its port refuses connections
    with caplog.at_level(logging.WARNING, logger=client_module.__name__):
        for _ in range(4):
            got = client.score(CONVS, "conservative")  # 3 pieces every time
            assert got == pytest.approx(expected(CONVS), abs=1e-6)
    failed = [r for r in caplog.records if doomed in r.getMessage()]
    assert len(failed) == 1, "after one failure the dead replica is skipped (cool-down)"
    assert spare.hits == hits
    assert client.answered()[doomed] == 1


def test_503_retry_after_is_honoured():
    app = _replica(script=[("status", 503, {"Retry-After": "1"})])
    with running_server(app) as url:
        client = RewardClient(url, backoff_s=0.01, max_retries=2)  # backoff alone: ~10 ms
        start = time.perf_counter()
        got = client.score(CONVS[:4], "mean")
        waited = time.perf_counter() - start
    assert got == pytest.approx(expected(CONVS[:4], "mean"), abs=1e-6)
    assert app.hits == 2 and 0.95 <= waited < 5.0, waited


def test_503_goes_to_another_replica_without_waiting(replicas):
    urls, _ = replicas
    busy = _replica(script=[("status", 503, {"Retry-After": "30"})])
    with running_server(busy) as busy_url:
        client = RewardClient([busy_url, urls[0]], token="t0k")
        start = time.perf_counter()
        assert client.score(CONVS[:2], "mean") == pytest.approx(expected(CONVS[:2], "mean"))
        assert time.perf_counter() - start < 5.0  # not the 30 s the busy one asked for
        assert client.score(CONVS[:2], "mean") == pytest.approx(expected(CONVS[:2], "mean"))
        assert busy.hits == 1  # the busy one rests for its Retry-After


def test_5xx_is_retried():
    app = _replica(script=[("status", 500, {}), ("status", 502, {})])
    with running_server(app) as url:
        client = RewardClient(url, backoff_s=0.01, max_retries=2)
        assert client.score(CONVS[:3], "base") == pytest.approx(expected(CONVS[:3], "base"))
    assert app.hits == 3


def test_timeouts_fire(replicas):
    urls, _ = replicas
    slow = _replica(script=[("sleep", 3.0)] * 3)
    with running_server(slow) as slow_url:
        alone = RewardClient(slow_url, timeout=0.3, max_retries=1, backoff_s=0.01)
        start = time.perf_counter()
        with pytest.raises(RemoteRewardError, match=r"no answer within 0.3 s"):
            alone.score(CONVS[:2], "mean")
        assert time.perf_counter() - start < 3.0
        # beside a healthy replica the slow one costs one timeout, and the answer is right
        mixed = RewardClient([slow_url, urls[1]], token="t0k", timeout=0.3)
        assert mixed.score(CONVS[:2], "mean") == pytest.approx(expected(CONVS[:2], "mean"))


def test_all_down_names_every_url_and_its_last_failure():
    dead = [_dead_url(), _dead_url()]
    client = RewardClient(dead, max_retries=3, backoff_s=0.01)
    start = time.perf_counter()
    with pytest.raises(RemoteRewardError) as info:
        client.score(CONVS[:2], "mean")
    assert time.perf_counter() - start < 5.0
    message = str(info.value)
    assert "no EBRM server answered /score after 4 tries" in message
    for url in dead:
        assert f"{url}: ConnectError" in message
    assert "\n" not in message


def test_wrong_token_is_raised_at_once(replicas):
    urls, apps = replicas
    before = [app.hits for app in apps]
    client = RewardClient(urls, token="wrong")
    with pytest.raises(RemoteRewardError, match=r"HTTP 401: missing or wrong bearer token\. "):
        client.score(CONVS[:2], "mean")
    assert sum(app.hits for app in apps) == sum(before) + 1  # one try: a 401 is not retried


def test_urls_are_checked():
    assert parse_urls("http://a:1/, http://b:2") == ("http://a:1", "http://b:2")
    with pytest.raises(ConfigError, match="'10.0.0.5:5000' is not an http"):
        parse_urls(["10.0.0.5:5000"])
    with pytest.raises(ConfigError, match="must be the server's base URL"):
        parse_urls("http://h:5000/get_reward?token=x")
    with pytest.raises(ConfigError, match="no server URL given"):
        parse_urls(" , ")
    with pytest.raises(ConfigError, match="'max_retries' parameter of ClientConfig"):
        RewardClient("http://a:1", max_retries=-1)
    with pytest.raises(ConfigError, match="EBRM_TIMEOUT='soon' must be a number of seconds"):
        client_module.client_from_env({"EBRM_SERVER_URL": "http://a:1", "EBRM_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="EBRM_SERVER_URL: 'a:1' is not an http"):
        client_module.client_from_env({"EBRM_SERVER_URL": "http://b:1,a:1"})
    assert client_module.client_from_env({}) is None


# ---- the reward functions over several replicas ---------------------------------------


@pytest.fixture
def env(monkeypatch, replicas):
    urls, _ = replicas
    monkeypatch.setattr(common, "load_scorer", lambda *a, **k: pytest.fail("must not load"))
    monkeypatch.setattr(client_module, "_ENV_CLIENTS", {})
    monkeypatch.setenv("EBRM_SERVER_URL", ",".join([_dead_url(), *urls]))
    monkeypatch.setenv("EBRM_TOKEN", "t0k")
    monkeypatch.setenv("EBRM_REWARD", "conservative")
    monkeypatch.delenv("EBRM_MODE", raising=False)
    return urls


def test_trl_reward_function_with_urls(replicas):
    from ebrm.integrations.trl import EBRMRewardFunction

    urls, _ = replicas
    prompts = [c.messages[0][1] for c in CONVS]
    completions = [c.response for c in CONVS]
    fn = EBRMRewardFunction(urls=[_dead_url(), *urls], token="t0k", reward="conservative")
    assert fn.__name__ == "ebrm_conservative"
    got = fn(prompts, completions)
    assert got == pytest.approx(expected(CONVS), abs=1e-6)
    assert got == EBRMRewardFunction(FakeScorer(), reward="conservative")(prompts, completions)
    clone = pickle.loads(pickle.dumps(fn))  # TRL may ship it to worker processes
    assert clone(prompts[:3], completions[:3]) == got[:3]
    with pytest.raises(ConfigError, match="not both and not neither"):
        EBRMRewardFunction()
    with pytest.raises(ConfigError, match="not both and not neither"):
        EBRMRewardFunction(FakeScorer(), urls=urls)


def test_trl_env_reward_uses_the_servers(env):
    from ebrm.integrations.trl import ebrm_reward

    got = ebrm_reward(["Question 1?", "Question 2?"], [c.response for c in CONVS[1:3]])
    assert got == pytest.approx(expected(CONVS[1:3]), abs=1e-6)


def test_verl_with_a_url_list(env):
    from ebrm.integrations.verl import compute_score, compute_score_batch

    infos = [{"prompt": c.messages[0][1]} for c in CONVS]
    got = compute_score_batch(
        ["d"] * len(CONVS), [c.response for c in CONVS], [None] * len(CONVS), infos
    )
    assert got == pytest.approx(expected(CONVS), abs=1e-6)
    one = compute_score("d", CONVS[5].response, None, {"prompt": "Question 5?"})
    assert one == pytest.approx(expected(CONVS[5:6])[0], abs=1e-6)


def test_openrlhf_reward_func_equals_one_servers_get_reward(env):
    import torch

    from ebrm.integrations.openrlhf_reward import reward_func

    prompts = [f"<|im_start|>user\nQuestion {i}?<|im_end|>\n<|im_start|>assistant\n"
               for i in range(len(CONVS))]  # fmt: skip
    queries = [p + c.response + "<|im_end|>" for p, c in zip(prompts, CONVS, strict=True)]
    got = reward_func(queries, prompts, [None] * len(queries))
    assert torch.allclose(got["rewards"], torch.tensor(expected(CONVS)), atol=1e-6)
    direct = httpx.post(
        f"{env[0]}/get_reward?reward=conservative",
        json={"query": queries, "prompts": prompts},
        headers={"Authorization": "Bearer t0k"},
    ).json()
    assert got["rewards"].tolist() == pytest.approx(direct["rewards"])
    assert got["scores"].tolist() == pytest.approx(direct["scores"])
    assert set(got["extra_logs"]) == set(direct["extra_logs"])
    for key, values in direct["extra_logs"].items():
        assert got["extra_logs"][key].tolist() == pytest.approx(values)


def test_openrlhf_reward_func_needs_the_url(monkeypatch):
    from ebrm.integrations.openrlhf_reward import reward_func

    monkeypatch.delenv("EBRM_SERVER_URL", raising=False)
    with pytest.raises(ConfigError, match="EBRM_SERVER_URL is not set"):
        reward_func(["q"], ["p"], [None])
