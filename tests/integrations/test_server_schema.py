"""The server against its own published OpenAPI schema: schemathesis in-process on the ASGI
app, every check (server errors, status codes, content types, response bodies and headers,
acceptance of valid and rejection of invalid bodies, ignored auth, methods), with a token.

The live run with >= 10,000 requests against `ebrm serve` is test_server_schema_live.py.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402

from ebrm.integrations.server import ServerConfig, create_app  # noqa: E402
from tests.fakes import FakeScorer  # noqa: E402
from tests.integrations import contract  # noqa: E402
from tests.integrations.contract import schemathesis_node_id  # noqa: E402, F401

ITEM_LIMIT = 8  # small, so that the schema's maxItems (and the 413 beyond it) is exercised


@pytest.fixture(scope="module")
def app():
    config = ServerConfig(
        token=contract.TOKEN, max_items_per_request=ITEM_LIMIT, max_body_bytes=256_000
    )
    return create_app(FakeScorer(), config)


@pytest.fixture(scope="module")
def app_schema(app):
    config = contract.config(seed=24, max_examples=40)
    return schemathesis.openapi.from_asgi(
        "/openapi.json", app, config=config, headers=contract.AUTH
    )


schema = schemathesis.pytest.from_fixture("app_schema")  # loaded when the test runs


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_server_keeps_its_published_contract(case):
    contract.one_prompt_per_query(case)
    case.call_and_validate()


def test_contract_declares_every_response_and_the_token(app):
    spec = app.fastapi.openapi()
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for path in ("/score", "/get_reward"):
        operation = spec["paths"][path]["post"]
        assert operation["requestBody"]["required"] is True  # an empty body is a 422
        assert sorted(operation["responses"]) == ["200", "401", "408", "413", "422", "503"]
        assert operation["responses"]["503"]["headers"]["Retry-After"]["required"] is True
        for status in ("401", "408", "413", "422", "503"):
            ref = operation["responses"][status]["content"]["application/json"]["schema"]
            assert ref == {"$ref": "#/components/schemas/ErrorResponse"}
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert error["properties"]["detail"]["type"] == "string" and error["required"] == ["detail"]
    # a model without references does not offer their rewards
    rewards = spec["paths"]["/score"]["post"]["parameters"][0]["schema"]["enum"]
    assert "refined" in rewards and "laplace" not in rewards


def test_schema_run_sent_hundreds_of_requests(app):
    """Runs after the generated cases (file order): they must have added up to hundreds."""
    served = contract.requests_served(app)
    print(f"schemathesis in-process: {served} requests")
    assert served >= 300, served


def test_the_schema_offers_only_the_references_the_model_stores():
    from types import SimpleNamespace

    from ebrm.integrations.server_api import served_rewards

    energy = ["refined", "mean", "mode", "median", "conservative", "base"]
    assert served_rewards(FakeScorer()) == energy
    laplace_only = SimpleNamespace(references=SimpleNamespace(rewards={"laplace": object()}))
    assert served_rewards(laplace_only) == [*energy, "laplace", "laplace_lcb"]
