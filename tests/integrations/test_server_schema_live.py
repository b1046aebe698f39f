"""`ebrm serve` (a real process, a tiny model, a token) against its own published schema:
schemathesis with every check, >= 10,000 generated requests, zero failures.

Slow (2 minutes on 2 quiet cores, 15 under heavy load); run it with
`python -m pytest -m slow -s tests/integrations/test_server_schema_live.py`.
EBRM_SCHEMA_EXAMPLES sets the examples per operation (default 800); the request count,
as the server's own /metrics counts it, is printed and must reach 10,000.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402

from tests.integrations import contract  # noqa: E402
from tests.integrations.contract import schemathesis_node_id  # noqa: E402, F401

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("EBRM_SCHEMA_EXAMPLES", "800"))
MIN_REQUESTS = 10_000


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, tiny_rm_dir):
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    model = make_tiny_ebrm(tmp_path_factory.mktemp("schema-live") / "model", tiny_rm_dir)
    port = contract.free_port()
    argv = [
        "serve", "--model", str(model), "--port", str(port), "--token", contract.TOKEN,
        "--device", "cpu", "--max-wait-ms", "1",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    log = tmp_path_factory.mktemp("schema-live-log") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ebrm", *argv], env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        contract.wait_healthy(url, alive=lambda: proc.poll() is None)
        yield url, proc, log
    finally:
        proc.terminate()
        proc.wait(timeout=120)


@pytest.fixture(scope="module")
def live_schema(live_server):
    url, _, _ = live_server
    return schemathesis.openapi.from_url(
        f"{url}/openapi.json",
        config=contract.config(seed=2024, max_examples=EXAMPLES),
        headers=contract.AUTH,
    )


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_live_server_keeps_its_published_contract(case):
    contract.one_prompt_per_query(case)
    case.call_and_validate(timeout=120)


def test_live_run_reached_ten_thousand_requests(live_server):
    """Runs after the generated cases (file order): the server counted what it answered."""
    url, proc, log = live_server
    metrics = httpx.get(f"{url}/metrics", headers=contract.AUTH, timeout=60).json()
    served = sum(metrics["requests"].values())
    print(f"\nschemathesis live against `ebrm serve`: {served} requests "
          f"({EXAMPLES} examples per operation): {metrics['requests']}")  # fmt: skip
    assert proc.poll() is None and "Traceback" not in log.read_text(errors="replace")
    assert not any(key.endswith(" 500") for key in metrics["requests"]), metrics["requests"]
    assert served >= MIN_REQUESTS, served
