"""The HTTP server under bad input, with a real (tiny) model behind it: odd unicode is
scored (200), malformed requests get 4xx with a message, never a 500.

tests/integrations/test_server_fuzz.py fuzzes JSON body shapes against a fake scorer; this
adds the real tokenizer and model (odd text all the way through), raw bytes, content
types, oversized and chunked bodies, random paths, methods and query strings.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebrm.integrations.server import ServerConfig, create_app
from tests.integrations.serving import running_server
from tests.reliability import _report

ODD = [
    "\x00",
    "a\x00b",
    "\u202eevil\u202c",  # RTL override
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",  # Hebrew, Arabic
    "e\u0301\u0302\u0303" * 50,  # stacked combining marks
    "\ud800",  # lone surrogates (valid JSON escapes, invalid UTF-8)
    "x\udfffy",
    "🙂👩‍👩‍👧‍👦" * 20,
    "\ufeff\u200b\u2028\u2029",
    "",
    " ",
    "<|im_end|></s><|eot_id|>[CLS][SEP][PAD]",
    "x" * 100_000,  # far beyond max_length: truncated, not rejected
]
chars = st.characters(blacklist_categories=())  # surrogates included
text = st.one_of(st.text(chars, max_size=30), st.sampled_from(ODD))
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant"]),
                                 "content": text})  # fmt: skip


LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def real_server(tmp_path_factory, tiny_rm_dir):
    from ebrm.model import EnergyRewardModel
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    model_dir = make_tiny_ebrm(tmp_path_factory.mktemp("fuzz-model") / "model", tiny_rm_dir)
    model = EnergyRewardModel.from_pretrained(model_dir, device="cpu")
    config = ServerConfig(max_wait_ms=1, max_body_bytes=LIMIT, max_items_per_request=64)
    with (
        running_server(create_app(model, config)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


def encode(body) -> bytes:
    return json.dumps(body).encode("utf-8", "surrogatepass")


FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def test_well_formed_requests_with_odd_text_are_scored(real_server):
    @FUZZ
    @given(
        items=st.lists(
            st.fixed_dictionaries(
                {"prompt": text | st.lists(message, min_size=1, max_size=3), "response": text}
            ),
            min_size=1,
            max_size=4,
        ),
        mode=st.sampled_from([None, "refined", "mean", "conservative", "base"]),
    )
    def check(items, mode):
        body = {"items": items} if mode is None else {"items": items, "mode": mode}
        content = encode(body)
        resp = real_server.post("/score", content=content)
        if len(content) > LIMIT:
            assert resp.status_code == 413
            _report.count("server: well-formed /score with odd unicode", "413")
            return
        # 422 only when a chat template refuses a turn order (e.g. two system turns)
        assert resp.status_code in (200, 422), resp.text[:300]
        _report.count("server: well-formed /score with odd unicode", str(resp.status_code))
        if resp.status_code == 200:
            results = resp.json()["results"]
            assert len(results) == len(items)
            assert all(r["reward"] is None or math.isfinite(r["reward"]) for r in results)
        else:
            assert resp.json()["detail"]

    check()


def test_openrlhf_queries_with_odd_text_are_scored(real_server):
    @FUZZ
    @given(queries=st.lists(st.tuples(text, text), max_size=4))
    def check(queries):
        body = encode({"query": [p + r for p, r in queries], "prompts": [p for p, _ in queries]})
        resp = real_server.post("/get_reward", content=body)
        if len(body) > LIMIT:
            assert resp.status_code == 413
            _report.count("server: /get_reward with odd unicode", "413")
            return
        assert resp.status_code == 200, resp.text[:300]
        assert len(resp.json()["rewards"]) == len(queries)
        assert all(math.isfinite(r) for r in resp.json()["rewards"])
        _report.count("server: /get_reward with odd unicode", "200")

    check()


def test_malformed_requests_get_4xx_never_500(real_server):
    raw = st.one_of(
        st.binary(max_size=200),
        st.sampled_from([b"", b"null", b"[]", b"{}", b'{"items": null}', b"[" * 5000 + b"]" * 5000,
                         b'{"items": [{"prompt": 1, "response": []}]}', b'{"query": "x"}',
                         b'{"items": "' + b"\xff" * 10 + b'"}', b"\xef\xbb\xbf{}"]),
    )  # fmt: skip
    methods = st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    endpoints = st.sampled_from(["/score", "/get_reward"])
    paths = st.one_of(
        endpoints,
        endpoints,
        endpoints,
        st.sampled_from(["/score", "/get_reward", "/health", "/metrics", "/", "/score/"]),
        st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20).map(
            lambda p: "/" + p.replace("?", "").replace("#", "")
        ),
    )
    queries = st.dictionaries(
        st.sampled_from(["mode", "token", "x", "items"]), st.text(max_size=10), max_size=2
    )
    types = st.sampled_from(
        [
            "application/json",
            "text/plain",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
        ]
    )

    @FUZZ
    @given(method=methods, path=paths, body=raw, params=queries, content_type=types)
    def check(method, path, body, params, content_type):
        resp = real_server.request(
            method, path, content=body, params=params, headers={"content-type": content_type}
        )
        assert resp.status_code < 500, (method, path, body[:100], resp.status_code, resp.text)
        _report.count("server: malformed requests", str(resp.status_code))

    check()


def test_oversized_requests_get_413(real_server):
    big = encode({"items": [{"prompt": "p", "response": "r" * 300_000}]})
    assert real_server.post("/score", content=big).status_code == 413

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"x" * 10_000

    assert real_server.post("/score", content=chunks()).status_code == 413
    many = encode([{"prompt": "p", "response": "r"}] * 65)  # more items than allowed
    assert real_server.post("/score", content=many).status_code == 413
    _report.count("server: oversized requests", "413", 3)
