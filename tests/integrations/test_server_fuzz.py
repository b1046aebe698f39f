"""Fuzzed request bodies never get a 500: each gets 200, 413 or 422."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebrm.integrations.server import ServerConfig, create_app
from tests.fakes import FakeScorer
from tests.integrations.serving import running_server

text = st.text(max_size=40)  # any code points, lone surrogates included
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4)
)
message = st.fixed_dictionaries({"role": text, "content": text | scalars})
item = st.fixed_dictionaries(
    {},
    optional={"prompt": text | st.lists(message, max_size=3) | scalars, "response": text | scalars},
)
score_bodies = (
    st.fixed_dictionaries({"items": st.lists(item, max_size=4)}, optional={"reward": text})
    | st.lists(item, max_size=4)
    | json_values
)
reward_bodies = (
    st.fixed_dictionaries(
        {"query": st.lists(text, max_size=4)},
        optional={"prompts": st.lists(text, max_size=4) | st.none(), "labels": json_values},
    )
    | json_values
)


def _encode(body) -> bytes:
    return json.dumps(body).encode("utf-8", "surrogatepass")


def test_fuzzed_bodies_never_500():
    app = create_app(FakeScorer(), ServerConfig(max_wait_ms=0, max_body_bytes=4000))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:

        @settings(
            max_examples=80,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        )
        @given(
            path=st.sampled_from(["/score", "/get_reward"]),
            body=score_bodies | reward_bodies,
            raw=st.none() | st.binary(max_size=60),
        )
        def check(path, body, raw):
            content = raw if raw is not None else _encode(body)
            resp = client.post(path, content=content, headers={"content-type": "application/json"})
            assert resp.status_code in (200, 413, 422), (path, content[:200], resp.text)
            if resp.status_code != 200:
                assert resp.json()["detail"]

        check()
