"""The serve-and-query example runs end to end on a tiny real refined model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_serve_and_query_example(tiny_ebrm_dir, capsys):
    out = _load("serve_and_query").main(["--model", str(tiny_ebrm_dir), "--device", "cpu"])
    assert len(out["score"]["results"]) == 2 and len(out["get_reward"]["rewards"]) == 1
    assert "OpenRLHF rewards" in capsys.readouterr().out


def test_grpo_example_parses_its_arguments():
    module = _load("grpo_with_ebrm")
    assert callable(module.main)
