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
