"""Schemathesis set-up shared by the in-process and the live schema tests: every check, the
token, and the one rule of the contract that JSON Schema cannot state."""

from __future__ import annotations

import socket
import time

import pytest

TOKEN = "schema-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Schemathesis's default list for invalid requests, plus 413: the server's answer to more
# items than its limit (the schema's maxItems), as documented in the contract.
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]


def config(*, seed: int, max_examples: int):
    """Every check, positive and negative cases, a fixed seed."""
    from schemathesis.config import SchemathesisConfig

    return SchemathesisConfig.from_dict(
        {
            "seed": seed,
            "headers": dict(AUTH),
            "generation": {
                "mode": "all",
                "deterministic": True,
                "database": "none",
                "max-examples": max_examples,
            },
            "checks": {
                "enabled": True,
                "negative_data_rejection": {"expected-statuses": REJECTED},
            },
        }
    )


def one_prompt_per_query(case) -> None:
    """Give a valid /get_reward case as many `prompts` as `query` entries (cut, or padded
    with ""): the one rule of the contract JSON Schema cannot state (the schema's
    description does); a body that breaks it gets a 422, rightly. Invalid cases are sent
    as generated."""
    body = case.body
    if case.meta is None or not case.meta.generation.mode.is_positive or not isinstance(body, dict):
        return
    query, prompts = body.get("query"), body.get("prompts")
    if isinstance(query, list) and isinstance(prompts, list) and len(query) != len(prompts):
        body["prompts"] = (prompts + [""] * len(query))[: len(query)]


def requests_served(app) -> int:
    """Every request the server answered (its own count, `/metrics`)."""
    return sum(app.fastapi.state.metrics.requests.values())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, *, alive, timeout: float = 180.0) -> None:
    """Until `url`/health answers 200 with the token; RuntimeError if the process dies."""
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if not alive():
            raise RuntimeError("the server exited before it was ready")
        try:
            if httpx.get(f"{url}/health", headers=AUTH, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server at {url} did not become healthy in {timeout:.0f} s")


@pytest.fixture(autouse=True)
def schemathesis_node_id(request):
    """schemathesis 4.32's lazy schemas (`from_fixture`) read `node._nodeid`, which pytest
    9.2 no longer has; a test module using them imports this fixture."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
