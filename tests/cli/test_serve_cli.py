"""`ebrm serve`: --help, option wiring (without binding a port), user errors."""

from __future__ import annotations

import pytest

from ebrm.cli import main


def test_help(capsys):
    assert main(["serve", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--model", "--host", "--port", "--token", "--max-batch-size", "--max-queue"):
        assert option in text


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiny_rm_dir):
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    return make_tiny_ebrm(tmp_path_factory.mktemp("serve-cli") / "model", tiny_rm_dir)


def test_options_reach_the_server_config(monkeypatch, tiny_model):
    from ebrm.integrations import server

    calls = []
    monkeypatch.setattr(
        server, "run_server", lambda app, config, sockets: calls.append((app, config))
    )
    monkeypatch.delenv("EBRM_SERVER_TOKEN", raising=False)
    argv = [
        "serve",
        "--model",
        str(tiny_model),
        "--port",
        "0",
        "--max-batch-size",
        "8",
        "--forward-batch-size",
        "4",
        "--max-wait-ms",
        "2",
        "--max-queue",
        "100",
        "--max-body-bytes",
        "5000",
        "--special-tokens",
        "<END>,<PAD>",
        "--reward",
        "conservative",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    ((app, config),) = calls
    assert config.host == "127.0.0.1" and config.token is None
    assert (config.max_batch_size, config.max_wait_ms, config.max_queue) == (8, 2.0, 100)
    assert config.forward_batch_size == 4
    assert config.max_body_bytes == 5000 and config.special_tokens == ("<END>", "<PAD>")
    assert config.reward == "conservative" and app.fastapi.state.config is config
    assert (config.tensor_parallel_size, config.data_parallel_size) == (1, 1)  # the defaults
    monkeypatch.setenv("EBRM_SERVER_TOKEN", "from-env")
    assert main(["serve", "--model", str(tiny_model), "--device", "cpu", "--port", "0"]) == 0
    assert calls[-1][1].token == "from-env"


def test_user_errors_exit_2(tmp_path, capsys, monkeypatch, tiny_model):
    from ebrm.integrations import server

    monkeypatch.setattr(server, "run_server", lambda *a, **k: pytest.fail("must not run"))
    assert main(["serve", "--model", str(tmp_path / "nope")]) == 2
    assert "nope does not exist; expected a refined-model directory" in capsys.readouterr().err
    assert main(["serve", "--model", str(tiny_model), "--reward", "best"]) == 2
    assert "--reward: 'best' is not one of refined, mean" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--tensor-parallel-size", "--data-parallel-size"])
def test_parallelism_needs_an_inference_engine(flag, tmp_path, tiny_model):
    import json
    import os
    import subprocess
    import sys

    from tests.cli.test_user_errors import ROOT, RUNNER

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    for value, expected in (("2", f"{flag} 2 needs --engine vllm"), ("0", flag)):
        argv = ["serve", "--model", str(tiny_model), "--port", "0", flag, value]
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, str(tmp_path / "result.json"), *argv],
            capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        result = json.loads((tmp_path / "result.json").read_text())
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert result["code"] == 2 and len(lines) == 1 and expected in lines[0], proc.stderr
        assert not result["torch"]  # refused before any model could load


def test_parallelism_fields_are_validated():
    from ebrm.errors import ConfigError
    from ebrm.integrations.server_config import ServerConfig

    config = ServerConfig(tensor_parallel_size=2, data_parallel_size=4)
    assert ServerConfig.from_dict(config.to_dict()) == config
    for name in ("tensor_parallel_size", "data_parallel_size"):
        with pytest.raises(
            ConfigError, match=f"'{name}' parameter of ServerConfig must be an int >= 1"
        ):
            ServerConfig(**{name: 0})
