"""The serve-and-query example runs end to end on a tiny real refined model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
