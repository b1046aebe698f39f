"""Torch threads: `--threads N` (or EBRM_THREADS) on the long-running commands, the count
said in one line, and one warning when they would oversubscribe a busy machine (issue 25
item 3). The decision is tested with injected numbers, never the machine's real load."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from ebrm.cli import _runtime, main

COMMANDS = (["extract"], ["train"], ["eval"], ["score"], ["bon"], ["demo"], ["base-rm", "train"])


# (load average, torch threads, CPUs, the --threads suggested or None), worked by hand:
# oversubscribed when load + threads > CPUs; suggest floor(CPUs - load), at least 1
ADVICE = [
    (0.0, 2, 2, None),  # exactly full: 2 <= 2
    (0.5, 2, 2, 1),  # 2.5 > 2: floor(1.5) = 1
    (1.5, 2, 2, 1),  # a second job: 3.5 > 2, floor(0.5) = 0, at least 1
    (3.0, 1, 2, None),  # already one thread: nothing better to suggest
    (2.0, 8, 16, None),  # 10 <= 16
    (7.5, 8, 16, None),  # 15.5 <= 16
    (9.9, 8, 16, 6),  # 17.9 > 16: floor(6.1) = 6
    (10.0, 8, 16, 6),  # 18 > 16: floor(6) = 6
]


@pytest.mark.parametrize(("load", "threads", "cpus", "suggested"), ADVICE)
def test_thread_advice_from_injected_numbers(load, threads, cpus, suggested):
    advice = _runtime.thread_advice(load=load, threads=threads, cpus=cpus)
    if suggested is None:
        assert advice is None
    else:
        assert advice is not None and f"--threads {suggested}" in advice
        assert f"load average {load:.1f} on {cpus} CPUs" in advice
        assert f"EBRM_THREADS={suggested}" in advice


def test_use_threads_sets_torch_and_warns_once_when_the_machine_is_busy(monkeypatch, caplog):
    monkeypatch.setattr(_runtime.os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    monkeypatch.setattr(_runtime, "_cpus", lambda: 4)
    with caplog.at_level(logging.INFO, logger="ebrm.cli"):
        assert _runtime.use_threads(3) == 3
    assert torch.get_num_threads() == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "--threads 1" in warnings[0]  # 3 + 3 > 4, floor(4 - 3)
    assert any(m.startswith("torch threads: 3 on 4 CPUs") for m in caplog.messages)
    caplog.clear()
    monkeypatch.setattr(_runtime.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    with caplog.at_level(logging.INFO, logger="ebrm.cli"):
        assert _runtime.use_threads(None) == 3  # None keeps what torch has
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_long_running_command_has_threads(command, capsys):
    assert main([*command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--threads" in out and "EBRM_THREADS" in out


@pytest.mark.parametrize(("flag", "env", "expected"), [(["--threads", "2"], None, 2),
                                                      ([], "3", 3)])  # fmt: skip
def test_extract_runs_with_the_threads_asked_for(
    flag, env, expected, tmp_path, tiny_rm_dir, monkeypatch, capsys
):
    if env is not None:
        monkeypatch.setenv("EBRM_THREADS", env)
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(4)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["extract", "--rm", str(tiny_rm_dir), "--data", str(data)]
    argv += ["--out", str(tmp_path / "store"), "--max-length", "32", "--device", "cpu"]
    assert main([*argv, "--no-progress", *flag]) == 0
    assert torch.get_num_threads() == expected  # the conftest fixture restores it
    assert f"torch threads: {expected} on " in capsys.readouterr().err
