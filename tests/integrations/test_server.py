"""The reward server over real HTTP on loopback: endpoints, batching, limits, auth."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from ebrm.data.types import Conversation
from ebrm.errors import ConfigError
from ebrm.integrations.server import ServerConfig, create_app
from tests.fakes import FakeScorer, fake_rewards
from tests.integrations.serving import running_server


@pytest.fixture(scope="module")
def server():
    scorer = FakeScorer()
    app = create_app(scorer, ServerConfig(max_batch_size=32, max_wait_ms=20, max_body_bytes=20_000))
    with running_server(app) as url:
        yield url, scorer, app


def test_score_returns_every_field_in_order(server):
    url, _, _ = server
    items = [
        {"prompt": "Hi?", "response": "Hello."},
        {
            "prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
            "response": "R",
        },
    ]
    resp = httpx.post(f"{url}/score", json={"items": items})
    assert resp.status_code == 200, resp.text
    convs = [
        Conversation.from_prompt("Hi?", "Hello."),
        Conversation(messages=(("system", "S"), ("user", "U")), response="R"),
    ]
    ref = fake_rewards(convs)
    body = resp.json()
    assert body["reward"] == "refined"
    for i, row in enumerate(body["results"]):
        assert row["reward"] == pytest.approx(ref.reward[i].item())
        assert row["refined"] == row["reward"] and row["method"] == ref.method
        assert row["base"] == pytest.approx(ref.base[i].item())
        assert row["median"] == pytest.approx(ref.q50[i].item())
        for key in ("mean", "std", "q05", "q95", "conservative", "base_raw", "mode", "spread"):
            assert row[key] == pytest.approx(getattr(ref, key)[i].item())
    # a bare list works too, and the reward can be chosen per request
    resp = httpx.post(f"{url}/score?reward=conservative", json=items[:1])
    assert resp.json()["results"][0]["reward"] == pytest.approx(ref.conservative[0].item())
    assert httpx.post(f"{url}/score", json={"items": []}).json()["results"] == []


def test_get_reward_openrlhf_format(server):
    url, _, _ = server
    prompt = (
        "<|im_start|>system\nBe kind.<|im_end|>\n"
        "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
    )
    query = "<|endoftext|><|endoftext|>" + prompt + "Hello there.<|im_end|><|endoftext|>"
    resp = httpx.post(
        f"{url}/get_reward", json={"query": [query], "prompts": [prompt], "labels": [None]}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    conv = Conversation(messages=(("system", "Be kind."), ("user", "Hi?")), response="Hello there.")
    ref = fake_rewards([conv])
    assert body["rewards"] == pytest.approx([ref.reward[0].item()])
    assert body["scores"] == body["rewards"]
    assert body["extra_logs"]["ebrm_base_reward"] == pytest.approx([ref.base[0].item()])
    assert body["extra_logs"]["ebrm_prompt_not_found"] == [0.0]
    empty = httpx.post(f"{url}/get_reward", json={"query": [], "prompts": [], "labels": []})
    assert empty.status_code == 200
    assert empty.json() == {
        "rewards": [],
        "scores": [],
        "extra_logs": {"ebrm_base_reward": [], "ebrm_std": [], "ebrm_prompt_not_found": []},
    }


def test_concurrent_single_requests_share_batches(server):
    url, scorer, _ = server
    n = 24
    before = len(scorer.batch_sizes)

    async def run():
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await asyncio.gather(
                *[
                    client.post(
                        "/get_reward", json={"query": [f"q{i} answer {i}"], "prompts": [f"q{i}"]}
                    )
                    for i in range(n)
                ]
            )

    responses = asyncio.run(run())
    sizes = scorer.batch_sizes[before:]
    assert sum(sizes) == n and len(sizes) < n  # some requests were scored together
    for i, resp in enumerate(responses):  # and each got its own reward back
        conv = Conversation(messages=(("user", f"q{i}"),), response=f"answer {i}")
        assert resp.json()["rewards"] == pytest.approx([fake_rewards([conv]).reward[0].item()])


# (/score body, what its 422's detail says); tests/engines reuses them on the vLLM engine
INVALID_BODIES = [
    (b"{not json", "not valid JSON"),
    (b'{"items": [{"prompt": "a"}]}', "items.0.response: Field required"),
    (b'{"items": [{"prompt": 1, "response": "b"}]}', "items.0.prompt"),
    (b'{"items": "x"}', "items: Input should be a valid list"),
    (b'{"items": [], "reward": "best"}', "Unknown reward 'best'"),
    (b'"\\ud800"', "invalid request"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[" * 5000 + b"]" * 5000, "request"),
]


def test_validation_errors_are_422_with_a_clear_message(server):
    url, _, _ = server
    for body, message in INVALID_BODIES:
        resp = httpx.post(
            f"{url}/score", content=body, headers={"content-type": "application/json"}
        )
        assert resp.status_code == 422, (body[:40], resp.status_code, resp.text)
        assert message in resp.json()["detail"], resp.text
    resp = httpx.post(f"{url}/get_reward", json={"query": ["a", "b"], "prompts": ["a"]})
    assert resp.status_code == 422 and "'prompts' has 1 entries" in resp.json()["detail"]
    resp = httpx.post(f"{url}/get_reward?reward=nope", json={"query": []})
    assert resp.status_code == 422 and "Unknown reward 'nope'" in resp.json()["detail"]


def test_odd_unicode_is_scored_not_crashed(server):
    url, _, _ = server
    items = [{"prompt": "\ud800 lone surrogate", "response": "nul\x00 and emoji \U0001f600"}]
    resp = httpx.post(
        f"{url}/score", content=json.dumps(items), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 200, resp.text


def test_oversized_bodies_get_413(server):
    url, _, _ = server
    big = {"items": [{"prompt": "x" * 30_000, "response": "y"}]}
    assert httpx.post(f"{url}/score", json=big).status_code == 413

    def chunks():  # no content-length: the streamed body is counted
        for _ in range(30):
            yield b"x" * 1000

    resp = httpx.post(f"{url}/score", content=chunks())
    assert resp.status_code == 413 and "exceeds 20000 bytes" in resp.json()["detail"]


def test_health_and_metrics(server):
    url, _, _ = server
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    httpx.get(f"{url}/no-such-path-{'z' * 50}")
    metrics = httpx.get(f"{url}/metrics").json()
    assert metrics["batching"]["items"] >= 1 and metrics["batching"]["batches"] >= 1
    assert metrics["latency"]["/score"]["count"] >= 1
    assert all(
        key.split()[0] in {"/score", "/get_reward", "/health", "/metrics", "other"}
        for key in metrics["requests"]
    )


def test_bearer_token_is_required_when_set():
    app = create_app(FakeScorer(), ServerConfig(token="s3cret"))
    with running_server(app) as url:
        for path in ("/health", "/metrics"):
            assert httpx.get(f"{url}{path}").status_code == 401
        assert httpx.post(f"{url}/score", json={"items": []}).status_code == 401
        wrong = httpx.get(f"{url}/health", headers={"Authorization": "Bearer s3cre"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        ok = httpx.post(
            f"{url}/score", json={"items": []}, headers={"Authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200
        # OpenRLHF cannot set headers: the token may ride in the reward URL
        assert httpx.get(f"{url}/health?token=s3cret").status_code == 200
        assert httpx.get(f"{url}/health?token=s3cre").status_code == 401
        assert httpx.get(f"{url}/health?token=%ff%fe").status_code == 401
        body = {"query": ["q a"], "prompts": ["q"]}
        assert httpx.post(f"{url}/get_reward?token=s3cret", json=body).status_code == 200


def test_full_queue_gets_503():
    scorer = FakeScorer(delay=0.3)
    app = create_app(scorer, ServerConfig(max_batch_size=1, max_queue=2, max_wait_ms=0))
    with running_server(app) as url:

        async def run():
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                return await asyncio.gather(
                    *[
                        client.post("/score", json=[{"prompt": "p", "response": str(i)}])
                        for i in range(8)
                    ]
                )

        too_many = httpx.post(f"{url}/score", json=[{"prompt": "p", "response": "r"}] * 3)
        assert too_many.status_code == 413 and "the limit is 2" in too_many.json()["detail"]
        codes = sorted(r.status_code for r in asyncio.run(run()))
        assert 503 in codes and 200 in codes and set(codes) <= {200, 503}
        busy = httpx.get(f"{url}/metrics").json()["batching"]["rejected_queue_full"]
        assert busy == codes.count(503)


def test_config_validation_and_default_bind():
    assert ServerConfig().host == "127.0.0.1"
    with pytest.raises(
        ConfigError,
        match=r"The 'max_batch_size' parameter of ServerConfig must be an int >= 1\. Got 0",
    ):
        ServerConfig(max_batch_size=0)
    with pytest.raises(ConfigError, match="Unknown reward 'x'; choose one of refined, mean"):
        ServerConfig(reward="x")
    with pytest.raises(ConfigError, match="'token' parameter .* Give a non-empty token"):
        ServerConfig(token="")
    with pytest.raises(ConfigError, match=r"'port' parameter .* int in \[0, 65535\]"):
        ServerConfig(port=70000)


def test_scoring_failure_of_one_request_does_not_fail_the_others():
    class Picky(FakeScorer):
        def score(self, convs, *, batch_size=16):
            if any(c.response == "boom" for c in convs):
                raise RuntimeError("boom")
            return super().score(convs, batch_size=batch_size)

    app = create_app(Picky(), ServerConfig(max_wait_ms=50))
    with running_server(app) as url:
        results = {}

        def post(text):
            results[text] = httpx.post(
                f"{url}/score", json=[{"prompt": "p", "response": text}]
            ).status_code

        threads = [threading.Thread(target=post, args=(t,)) for t in ("ok1", "boom", "ok2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == {"ok1": 200, "boom": 500, "ok2": 200}


def test_conversation_the_rm_template_rejects_is_422():
    from jinja2.exceptions import TemplateError

    class Strict(FakeScorer):
        def score(self, convs, *, batch_size=16):
            if any(
                role not in ("system", "user", "assistant") for c in convs for role, _ in c.messages
            ):
                raise TemplateError("Conversation roles must be user/assistant")
            return super().score(convs, batch_size=batch_size)

    with running_server(create_app(Strict(), ServerConfig())) as url:
        bad = [{"prompt": [{"role": "wizard", "content": "x"}], "response": "y"}]
        resp = httpx.post(f"{url}/score", json=bad)
        assert resp.status_code == 422 and "roles must be" in resp.json()["detail"]
        good = httpx.post(f"{url}/score", json=[{"prompt": "x", "response": "y"}])
        assert good.status_code == 200


def test_micro_batches_are_split_by_length_and_results_keep_input_order():
    from ebrm.integrations.server import batch_scorer

    scorer = FakeScorer()
    short = [Conversation.from_prompt(f"q{i}", "ok") for i in range(5)]
    long = [Conversation.from_prompt("p" * 400, f"a long answer {i} " * 40) for i in range(3)]
    convs = [short[0], long[0], short[1], short[2], long[1], short[3], long[2], short[4]]
    ref = fake_rewards(convs)
    # a forward costs 32 tokens (128 characters): padding five short texts to ~1,000
    # characters costs far more than one more forward, so short and long go apart
    records = batch_scorer(scorer, ServerConfig(forward_overhead_tokens=32))(convs)
    assert sorted(scorer.batch_sizes) == [3, 5]
    assert [r["base"] for r in records] == pytest.approx(ref.base.tolist())
    # with a huge per-forward cost everything shares one forward, up to forward_batch_size
    scorer = FakeScorer()
    config = ServerConfig(forward_overhead_tokens=1e9, forward_batch_size=4)
    records = batch_scorer(scorer, config)(convs)
    assert scorer.batch_sizes == [4, 4]  # the fewest forwards: one short text pads to long
    assert [r["refined"] for r in records] == pytest.approx(ref.reward.tolist())
    with pytest.raises(ConfigError, match="forward_overhead_tokens"):
        ServerConfig(forward_overhead_tokens=-1)
