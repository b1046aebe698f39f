"""SIGTERM lets in-flight requests finish; the real model served over HTTP matches `score()`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from ebrm.data.types import Conversation
from ebrm.integrations.server import ServerConfig, create_app
from tests.integrations.serving import running_server

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import socket, sys
from tests.fakes import FakeScorer
from ebrm.integrations.server import ServerConfig, create_app, run_server
sock = socket.socket(fileno=int(sys.argv[1]))
config = ServerConfig(max_wait_ms=0, graceful_timeout_s=20)
run_server(create_app(FakeScorer(delay=1.5), config), config, sockets=[sock])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_finishes_in_flight_requests():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(sock.fileno())],
        pass_fds=[sock.fileno()],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    sock.close()
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.time() < deadline, "server did not start"
            time.sleep(0.1)
        result = {}

        def post():
            resp = httpx.post(f"{url}/score", json=[{"prompt": "p", "response": "r"}], timeout=30)
            result["status"], result["body"] = resp.status_code, resp.json()

        client = threading.Thread(target=post)
        client.start()
        time.sleep(0.5)  # the request is now being scored (1.5 s)
        proc.send_signal(signal.SIGTERM)
        client.join(timeout=30)
        assert result["status"] == 200 and len(result["body"]["results"]) == 1
        # uvicorn re-raises SIGTERM once shut down, so "killed by SIGTERM" is the clean exit
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert b"Traceback" not in proc.stdout.read()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_real_model_over_http_matches_direct_scoring(tiny_ebrm_dir):
    from ebrm.model import EnergyRewardModel

    model = EnergyRewardModel.from_pretrained(tiny_ebrm_dir, device="cpu")
    items = [{"prompt": f"question {i}?", "response": "answer " * (i + 1)} for i in range(5)]
    direct = model.score([Conversation.from_prompt(it["prompt"], it["response"]) for it in items])
    with running_server(create_app(model, ServerConfig(max_wait_ms=20))) as url:
        body = httpx.post(f"{url}/score", json=items, timeout=60).json()
        query = [it["prompt"] + " " + it["response"] for it in items]
        prompts = [it["prompt"] + " " for it in items]
        openrlhf = httpx.post(
            f"{url}/get_reward?reward=conservative",
            json={"query": query, "prompts": prompts},
            timeout=60,
        ).json()
    got = [row["reward"] for row in body["results"]]
    assert got == pytest.approx(direct.reward.tolist(), rel=1e-4, abs=1e-4)
    assert [r["std"] for r in body["results"]] == pytest.approx(direct.std.tolist(), abs=1e-4)
    assert openrlhf["rewards"] == pytest.approx(direct.conservative.tolist(), rel=1e-4, abs=1e-4)
