"""`ebrm serve --engine vllm` against the server tests of `tests/integrations/test_server.py`
and the OpenRLHF client of `tests/integrations/test_client.py`: the same requests (auth,
`/score`, `/get_reward`, 413, 422, 503) sent to a real model served on the vLLM engine and
on the transformers engine, configured as `ebrm serve` configures each; the vLLM server's
answers must be the transformers server's (rewards within 1e-4 in fp32, the same statuses
and messages). Those tests run on a fake scorer; these run the real forward. One vLLM load
for the module."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from contextlib import ExitStack

import httpx
import pytest

from tests.engines.conftest import NEEDS_VLLM, free, make_engine_rm, vllm_options

pytest.importorskip("vllm", reason=NEEDS_VLLM)

TOL = 1e-4
# the posterior's mode is an argmax on make_tiny_ebrm's grid (64 points over
# RefineConfig's default [-16, 16]): inputs 1e-5 apart may pick neighbouring points
MODE_TOL = 32 / 63
TOKEN = "t0k"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# what test_server.py's module server uses, plus the token
SETTINGS = {"max_batch_size": 32, "max_wait_ms": 20, "max_body_bytes": 20_000, "token": TOKEN}
ITEMS = [
    {"prompt": "Hi?", "response": "Hello."},
    {"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
     "response": "R"},
    {"prompt": "Say hi " * 20, "response": "hi " * 30},  # truncated at max_length
    {"prompt": "\ud800 lone surrogate", "response": "nul\x00 and emoji \U0001f600"},
]  # fmt: skip
OPENRLHF_PROMPT = (
    "<|im_start|>system\nBe kind.<|im_end|>\n"
    "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
)


def server_config(engine: str, **settings):
    """The ServerConfig `ebrm serve --engine <engine>` builds from these settings."""
    from ebrm.integrations.server import ServerConfig

    if engine == "vllm":  # as serve.py: whole micro-batches to the engine
        settings.update(forward_batch_size=settings.get("max_batch_size", 64),
                        forward_overhead_tokens=1e12)  # fmt: skip
    return ServerConfig(**settings)


class Recording:
    """The vLLM engine, recording each forward's size, with an optional delay (a slow
    engine, for the full-queue test)."""

    def __init__(self, engine) -> None:
        self.engine, self.sizes, self.delay = engine, [], 0.0
        self.name = engine.name

    def embed_token_ids(self, ids, **kwargs):
        self.sizes.append(len(ids))
        time.sleep(self.delay)
        return self.engine.embed_token_ids(ids, **kwargs)

    def provenance(self):
        return self.engine.provenance()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(the refined model on transformers, the same model on vLLM, its Recording engine)."""
    from ebrm.model import EnergyRewardModel
    from ebrm.rm.engine import use_engine
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    root = tmp_path_factory.mktemp("engine-server")
    model = make_tiny_ebrm(root / "model", make_engine_rm(root / "rm", "llama"))
    reference = EnergyRewardModel.from_pretrained(model, device="cpu")
    on_vllm = EnergyRewardModel.from_pretrained(model, device="cpu")
    use_engine(on_vllm.base_rm, vllm_options(root / "cache"))
    assert on_vllm.base_rm.engine.name == "vllm"
    recording = Recording(on_vllm.base_rm.engine)
    on_vllm.base_rm.engine = recording
    yield reference, on_vllm, recording
    recording.engine = None
    free(on_vllm.base_rm)


@pytest.fixture(scope="module")
def servers(models):
    """{engine: URL}, both servers with test_server.py's settings and a token."""
    from ebrm.integrations.server import create_app
    from tests.integrations.serving import running_server

    reference, on_vllm, _ = models
    with ExitStack() as stack:
        urls = {}
        for engine, erm in (("transformers", reference), ("vllm", on_vllm)):
            app = create_app(erm, server_config(engine, **SETTINGS))
            urls[engine] = stack.enter_context(running_server(app))
        yield urls


def both(servers, path: str, **kwargs) -> dict[str, httpx.Response]:
    """The same request to both servers. `json` bodies go through `json.dumps` (as
    test_server.py sends its lone surrogate: httpx's own encoder refuses it)."""
    kwargs.setdefault("headers", AUTH)
    if "json" in kwargs:
        kwargs["content"] = json.dumps(kwargs.pop("json"))
        kwargs["headers"] = {**kwargs["headers"], "content-type": "application/json"}
    return {e: httpx.post(f"{url}{path}", timeout=120, **kwargs) for e, url in servers.items()}


def assert_same_numbers(got, want, path: str = "") -> None:
    """Equal structure; numbers within TOL (the mode within a grid cell); the rest equal."""
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            assert_same_numbers(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same_numbers(a, b, f"{path}[{i}]")
    elif isinstance(want, float):
        tol = MODE_TOL if path.endswith(".mode") else TOL
        assert got == pytest.approx(want, abs=tol, rel=TOL), path
    else:
        assert got == want, path


def test_score_on_vllm_equals_transformers(servers, models):
    recording = models[2]
    before = len(recording.sizes)
    for path, body in [
        ("/score", {"items": ITEMS}),
        ("/score?reward=conservative", ITEMS[:1]),  # a bare list, a reward per request
        ("/score", {"items": []}),
    ]:
        answers = both(servers, path, json=body)
        assert answers["vllm"].status_code == 200, answers["vllm"].text
        assert answers["transformers"].status_code == 200
        assert_same_numbers(answers["vllm"].json(), answers["transformers"].json())
    assert sum(recording.sizes[before:]) == len(ITEMS) + 1  # the engine did the forwards


def test_get_reward_openrlhf_format_on_vllm(servers):
    query = "<|endoftext|><|endoftext|>" + OPENRLHF_PROMPT + "Hello there.<|im_end|><|endoftext|>"
    for body in [
        {"query": [query], "prompts": [OPENRLHF_PROMPT], "labels": [None]},
        {"query": [], "prompts": [], "labels": []},
    ]:
        answers = both(servers, "/get_reward", json=body)
        assert answers["vllm"].status_code == 200, answers["vllm"].text
        assert_same_numbers(answers["vllm"].json(), answers["transformers"].json())
    assert answers["vllm"].json()["rewards"] == []


def test_concurrent_single_requests_share_engine_batches(servers, models):
    recording = models[2]
    n = 24
    before = len(recording.sizes)

    async def run(url):
        async with httpx.AsyncClient(base_url=url, timeout=120, headers=AUTH) as client:
            bodies = [{"query": [f"q{i} answer {i}"], "prompts": [f"q{i}"]} for i in range(n)]
            return await asyncio.gather(*[client.post("/get_reward", json=b) for b in bodies])

    got = asyncio.run(run(servers["vllm"]))
    sizes = recording.sizes[before:]
    assert sum(sizes) == n and len(sizes) < n  # some requests shared a forward
    want = asyncio.run(run(servers["transformers"]))
    for a, b in zip(got, want, strict=True):  # and each got its own reward back
        assert a.status_code == 200, a.text
        assert_same_numbers(a.json(), b.json())


def test_validation_errors_are_the_same_422s(servers):
    from tests.integrations.test_server import INVALID_BODIES

    headers = {**AUTH, "content-type": "application/json"}
    for body, message in INVALID_BODIES:
        answers = both(servers, "/score", content=body, headers=headers)
        assert answers["vllm"].status_code == 422, (body[:40], answers["vllm"].text)
        assert message in answers["vllm"].json()["detail"]
        assert answers["vllm"].json() == answers["transformers"].json()
    answers = both(servers, "/get_reward", json={"query": ["a", "b"], "prompts": ["a"]})
    assert answers["vllm"].status_code == 422
    assert "'prompts' has 1 entries" in answers["vllm"].json()["detail"]


def test_oversized_bodies_get_413(servers):
    url = servers["vllm"]
    big = {"items": [{"prompt": "x" * 30_000, "response": "y"}]}
    assert httpx.post(f"{url}/score", json=big, headers=AUTH).status_code == 413

    def chunks():  # no content-length: the streamed body is counted
        for _ in range(30):
            yield b"x" * 1000

    resp = httpx.post(f"{url}/score", content=chunks(), headers=AUTH)
    assert resp.status_code == 413 and "exceeds 20000 bytes" in resp.json()["detail"]


def test_bearer_token_is_required(servers):
    url = servers["vllm"]
    for path in ("/health", "/metrics"):
        assert httpx.get(f"{url}{path}").status_code == 401
    assert httpx.post(f"{url}/score", json={"items": ITEMS[:1]}).status_code == 401
    wrong = httpx.get(f"{url}/health", headers={"Authorization": "Bearer t0", "x": "y"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{url}/health?token={TOKEN}").status_code == 200
    assert httpx.get(f"{url}/health?token=%ff%fe").status_code == 401
    body = {"query": ["q a"], "prompts": ["q"]}
    got = httpx.post(f"{url}/get_reward?token={TOKEN}", json=body, timeout=120)
    want = httpx.post(f"{servers['transformers']}/get_reward?token={TOKEN}", json=body)
    assert got.status_code == 200
    assert_same_numbers(got.json(), want.json())
    metrics = httpx.get(f"{url}/metrics", headers=AUTH).json()
    assert metrics["batching"]["items"] >= 1


def test_full_queue_gets_503_and_the_rest_are_scored(servers, models):
    from ebrm.integrations.server import create_app
    from tests.integrations.serving import running_server

    _, on_vllm, recording = models
    config = server_config("vllm", max_batch_size=1, max_queue=2, max_wait_ms=0, token=TOKEN)
    recording.delay = 0.3  # a slow engine: the queue fills while it works
    try:
        with running_server(create_app(on_vllm, config)) as url:

            async def run():
                async with httpx.AsyncClient(base_url=url, timeout=120, headers=AUTH) as client:
                    return await asyncio.gather(*[
                        client.post("/score", json=[{"prompt": "p", "response": str(i)}])
                        for i in range(8)
                    ])  # fmt: skip

            items = [{"prompt": "p", "response": "r"}] * 3
            too_many = httpx.post(f"{url}/score", json=items, headers=AUTH)
            assert too_many.status_code == 413 and "the limit is 2" in too_many.json()["detail"]
            answers = asyncio.run(run())
            codes = sorted(r.status_code for r in answers)
            assert 503 in codes and 200 in codes and set(codes) <= {200, 503}
            busy = httpx.get(f"{url}/metrics", headers=AUTH).json()["batching"]
            assert busy["rejected_queue_full"] == codes.count(503)
    finally:
        recording.delay = 0.0
    for i, resp in enumerate(answers):
        if resp.status_code == 200:
            want = both(servers, "/score", json=[{"prompt": "p", "response": str(i)}])
            assert_same_numbers(resp.json(), want["transformers"].json())


def test_scoring_failure_of_one_request_does_not_fail_the_others(servers, models):
    """An engine error on one request's rows is that request's 500, not the others'."""
    _, on_vllm, recording = models
    real = recording.embed_token_ids
    decode = on_vllm.base_rm.tokenizer.decode

    def picky(ids, **kwargs):
        if any("boom" in decode(row) for row in ids):
            raise RuntimeError("boom")
        return real(ids, **kwargs)

    recording.embed_token_ids = picky
    results = {}

    def post(text):
        results[text] = httpx.post(f"{servers['vllm']}/score", headers=AUTH, timeout=120,
                                   json=[{"prompt": "p", "response": text}])  # fmt: skip

    try:
        threads = [threading.Thread(target=post, args=(t,)) for t in ("ok1", "boom", "ok2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        del recording.embed_token_ids
    assert {t: r.status_code for t, r in results.items()} == {"ok1": 200, "boom": 500, "ok2": 200}
    for text in ("ok1", "ok2"):
        want = both(servers, "/score", json=[{"prompt": "p", "response": text}])["transformers"]
        assert_same_numbers(results[text].json(), want.json())


def test_openrlhf_reward_func_on_vllm_equals_transformers_get_reward(servers, monkeypatch):
    import torch

    import ebrm.integrations._client as client_module
    from ebrm.integrations.openrlhf_reward import reward_func

    monkeypatch.setattr(client_module, "_ENV_CLIENTS", {})
    monkeypatch.setenv("EBRM_SERVER_URL", servers["vllm"])
    monkeypatch.setenv("EBRM_TOKEN", TOKEN)
    monkeypatch.setenv("EBRM_REWARD", "conservative")
    monkeypatch.delenv("EBRM_MODE", raising=False)
    prompts = [f"<|im_start|>user\nQuestion {i}?<|im_end|>\n<|im_start|>assistant\n"
               for i in range(20)]  # fmt: skip
    queries = [p + f"Answer {i} {'x' * i}.<|im_end|>" for i, p in enumerate(prompts)]
    got = reward_func(queries, prompts, [None] * len(queries))
    want = httpx.post(
        f"{servers['transformers']}/get_reward?reward=conservative",
        json={"query": queries, "prompts": prompts}, headers=AUTH, timeout=120,
    ).json()  # fmt: skip
    assert isinstance(got["rewards"], torch.Tensor)
    assert_same_numbers(
        {"rewards": got["rewards"].tolist(), "scores": got["scores"].tolist(),
         "extra_logs": {k: v.tolist() for k, v in got["extra_logs"].items()}},
        want,
    )  # fmt: skip
