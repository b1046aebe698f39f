"""What happens around the commands: interrupts, progress output, the server's port, a
model save recovered at load time, flag names in errors."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ebrm.cli import _checks, main

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_choices_and_cites_no_files_users_lack(capsys):
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    assert "<small-data|paper|large-data>" in text and "<nce+|nce+bt|nce+margin>" in text
    assert "--progress / --no-progress" in text and "<bool>" not in text
    for command in (["demo"], ["extract"], ["eval"], ["score"], ["serve"], ["bon"],
                    ["overopt"], ["base-rm", "train"]):  # fmt: skip
        assert main([*command, "--help"]) == 0
        assert "DESIGN" not in capsys.readouterr().out, command


def test_config_field_names_become_flag_names():
    from ebrm.errors import ConfigError

    flags = {"learning_rate": "--lr", "max_steps": "--steps"}
    lr = pytest.raises(ConfigError, match=r"^--lr must be > 0; got 0\.$")
    with lr, _checks.flag_names(flags):
        raise ConfigError("learning_rate must be > 0; got 0.")
    steps = pytest.raises(ConfigError, match=r"^--steps must be an int >= 1\. Got 0 instead\.$")
    with steps, _checks.flag_names(flags):
        raise ConfigError(
            "The 'max_steps' parameter of TrainConfig must be an int >= 1. Got 0 instead."
        )


def test_progress_off_a_terminal_is_whole_lines(monkeypatch):
    from ebrm._progress import tqdm

    monkeypatch.setenv("EBRM_PROGRESS_SECONDS", "0")
    stream = io.StringIO()  # not a terminal
    for _ in tqdm(range(5), file=stream, desc="work"):
        pass
    first = stream.getvalue().count("\n")
    monkeypatch.setenv("EBRM_PROGRESS_SECONDS", "3600")
    with tqdm(total=100, file=stream, desc="work") as bar:
        for step in range(100):  # a postfix per step must not print a line per step
            bar.update(1)
            bar.set_postfix(loss=1.0 / (step + 1))
    text = stream.getvalue()
    assert text.count("\n") - first == 2  # the first and the last line only
    assert "\r" not in text
    lines = text.splitlines()
    assert lines and all(line.startswith("work:") for line in lines)
    assert "100/100" in lines[-1] and "loss=0.01" in lines[-1]


def test_serve_port_0_prints_the_bound_port(monkeypatch, capsys, tmp_path, tiny_rm_dir):
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    from ebrm.integrations import server

    model = make_tiny_ebrm(tmp_path / "model", tiny_rm_dir)
    bound = []
    monkeypatch.setattr(
        server, "run_server", lambda app, config, sockets: bound.append(sockets[0].getsockname())
    )
    assert main(["serve", "--model", str(model), "--port", "0", "--device", "cpu"]) == 0
    port = bound[0][1]
    assert port != 0
    assert f"on http://127.0.0.1:{port} " in capsys.readouterr().out


def test_a_save_killed_between_its_renames_is_recovered_at_load(tmp_path, tiny_rm_dir, caplog):
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    from ebrm.model import EnergyRewardModel

    model = make_tiny_ebrm(tmp_path / "model", tiny_rm_dir)
    config = (model / "config.json").read_text()
    # what replace_directory leaves when killed after moving the old model aside
    os.replace(model, tmp_path / ".model.old-x1y2")
    (tmp_path / ".model.tmp-a1b2").mkdir()  # the new one, never moved into place
    with caplog.at_level("WARNING"):
        EnergyRewardModel.from_pretrained(model, device="cpu")
    assert (model / "config.json").read_text() == config
    assert "recovered" in caplog.text and not (tmp_path / ".model.old-x1y2").exists()


def test_cli_recovers_the_model_before_checking_it(tmp_path, tiny_rm_dir, capsys):
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    model = make_tiny_ebrm(tmp_path / "model", tiny_rm_dir)
    os.replace(model, tmp_path / ".model.old-abc")
    cands = tmp_path / "c.jsonl"
    cands.write_text(json.dumps({"prompt": "Hi", "candidates": ["a", "b"]}) + "\n")
    argv = ["bon", "--model", str(model), "--candidates", str(cands), "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "best.jsonl")]) == 0


def test_base_rm_train_recovers_its_rm_before_checking_it(tmp_path, tiny_rm_dir, capsys):
    # what `base-rm train --overwrite` leaves when killed after moving the old RM aside
    shutil.copytree(tiny_rm_dir, tmp_path / ".rm.old-abc")
    (tmp_path / ".rm.old-abc" / "ebrm_base_rm.json").write_text("{}\n")
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "Hi?", "chosen": "Hello.", "rejected": "No."}) + "\n")
    out = tmp_path / "rm"
    assert main(["base-rm", "train", "--data", str(data), "--out", str(out)]) == 2
    assert "already holds a result; pass --overwrite" in capsys.readouterr().err
    assert (out / "ebrm_base_rm.json").is_file() and not (tmp_path / ".rm.old-abc").exists()


SIGNAL_RUNNER = """
import os, signal, sys
from ebrm.rm.adapter import BaseRewardModel
original, calls = BaseRewardModel.embed_texts, []
def embed_texts(self, texts, **kwargs):
    calls.append(len(texts))
    if len(calls) == 4:  # shard 0 is 2 calls, the 3rd call is half of shard 1
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    return original(self, texts, **kwargs)
BaseRewardModel.embed_texts = embed_texts
from ebrm.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_during_extract_says_what_was_kept_and_the_rerun_resumes(
    name, tmp_path, tiny_rm_dir
):
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(40)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "store"
    argv = ["extract", "--rm", str(tiny_rm_dir), "--data", str(data), "--out", str(out),
            "--max-length", "32", "--batch-size", "2", "--shard-size", "32"]  # fmt: skip
    argv += ["--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_RUNNER, name, *argv],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 128 + getattr(signal, name), proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    # 80 rows in 32-row shards of 16-text chunks: shard 0 done, 1 chunk of shard 1 saved
    assert last == (
        "interrupted: 1 of 3 shards and 16 rows of shard 2 kept; rerun the same command to resume"
    )
    assert "Traceback" not in proc.stderr
    assert main(argv) == 0
    assert not list(out.glob("partial-*"))
    assert re.fullmatch(r"shard-0000[012]\.safetensors", max(p.name for p in out.glob("shard-*")))
