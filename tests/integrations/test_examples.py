"""The serve-and-query example runs end to end on a tiny real refined model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scripts import load_script

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    return load_script(EXAMPLES / f"{name}.py", name)


def test_serve_and_query_example(tiny_ebrm_dir, capsys):
    out = _load("serve_and_query").main(["--model", str(tiny_ebrm_dir), "--device", "cpu"])
    config = json.loads((Path(tiny_ebrm_dir) / "config.json").read_text("utf-8"))
    k = config["refine"]["conservative_k"]
    assert len(out["score"]["results"]) == 2 and len(out["get_reward"]["rewards"]) == 1
    # the bare list and {"items", "reward"} bodies score the same items: the conservative
    # reward is mean - k*spread of the same records
    for row, cons in zip(out["score"]["results"], out["conservative"]["results"], strict=True):
        assert cons["reward"] == cons["conservative"] == row["conservative"]
        assert row["conservative"] == pytest.approx(row["mean"] - k * row["spread"], abs=1e-5)
        assert row["spread"] > 0 and row["conservative"] <= row["mean"]
    assert "OpenRLHF rewards" in capsys.readouterr().out


def test_grpo_example_parses_its_arguments():
    module = _load("grpo_with_ebrm")
    assert callable(module.main)


def test_serve_and_query_example_queries_a_running_server(tiny_ebrm_dir, capsys):
    """`--url` (and `--token`) query a server started on its own, as `ebrm serve` runs:
    the same records as the model's own scores; a wrong token is the server's 401."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from ebrm import Conversation
    from ebrm.integrations.server import ServerConfig, create_app
    from ebrm.model import EnergyRewardModel

    model = EnergyRewardModel.from_pretrained(tiny_ebrm_dir, device="cpu")
    app = create_app(model, ServerConfig(max_wait_ms=5, token="s3cret"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    example = _load("serve_and_query")
    try:
        out = example.main(["--url", url + "/", "--token", "s3cret"])
        with pytest.raises(httpx.HTTPStatusError, match="401"):
            example.main(["--url", url, "--token", "wrong"])
    finally:
        server.should_exit = True
    prompt = "How do I boil an egg?"
    answers = ["Simmer it for 9 minutes, then cool it.", "Eggs are oval."]
    expected = model.score([Conversation.from_prompt(prompt, a) for a in answers]).to_records()
    for row, record in zip(out["score"]["results"], expected, strict=True):
        assert row["refined"] == pytest.approx(record["refined"], abs=1e-5)
        assert row["spread"] == pytest.approx(record["spread"], abs=1e-5)
    assert "OpenRLHF rewards" in capsys.readouterr().out
