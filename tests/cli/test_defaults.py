"""Every CLI default equals the default of the library setting it feeds.

The commands spell their defaults out because `ebrm --help` and every user-error path must
not import torch (tests/cli), while the configs and functions they feed live in modules
that do. This test keeps each spelled-out default equal to the one source of truth: the
config dataclass field or the function keyword it is passed to.
"""

from __future__ import annotations

import pytest
import typer

from ebrm._config import default
from ebrm.cli import app
from ebrm.energy.presets import DEFAULT_PRESET, PRESETS
from ebrm.evaluation.runner import evaluate
from ebrm.features.extract import extract_features
from ebrm.integrations.best_of_n import select_best
from ebrm.integrations.server_config import ServerConfig
from ebrm.overopt.config import OveroptConfig
from ebrm.pipeline import PipelineConfig
from ebrm.rm.adapter import BaseRewardModel
from ebrm.rm.train_bt import BTTrainConfig


def _same(source, *names: str) -> dict[str, tuple]:
    return {name: (source, name) for name in names}


# command -> {option's parameter name: (library source, its field or keyword)}
SOURCES = {
    "serve": _same(
        ServerConfig, "host", "port", "token", "mode", "max_batch_size",
        "forward_batch_size", "max_wait_ms", "max_queue", "max_body_bytes",
    ),
    "train": {
        "objective": (PRESETS[DEFAULT_PRESET], "objective"),
        "seed": (PRESETS[DEFAULT_PRESET], "seed"),
    },
    "base-rm train": {
        **_same(
            BTTrainConfig, "freeze_encoder", "label_noise", "seed", "epochs", "batch_size",
            "max_length", "validation_fraction",
        ),
        "lr": (BTTrainConfig, "learning_rate"),
    },
    "extract": {
        **_same(extract_features, "batch_size", "shard_size", "storage_dtype"),
        **_same(BaseRewardModel.from_pretrained, "max_length", "truncation_side", "dtype"),
    },
    "demo": _same(PipelineConfig, "base_model", "seed", "device", "preset"),
    "eval": {**_same(evaluate, "batch_size", "seed", "n_boot"), "reward": (evaluate, "kind")},
    "bon": _same(select_best, "mode", "batch_size"),
    "overopt": {
        # --label-noise is repeatable: unset (None) means OveroptConfig's levels
        **_same(
            OveroptConfig, "proxy_fraction", "conservative_k", "edited", "references",
            "seed", "max_length", "batch_size",
        ),
        "prompts": (OveroptConfig, "num_prompts"),
        "candidates": (OveroptConfig, "num_candidates"),
        "gold_hidden": (OveroptConfig, "gold_hidden"),
        "ascent": (OveroptConfig, "ascent"),
        "max_angle": (OveroptConfig, "ascent_max_angle"),
    },
}  # fmt: skip
ROWS = [(cmd, opt, src) for cmd, opts in SOURCES.items() for opt, src in opts.items()]


def _options(command: str) -> dict:
    node = typer.main.get_command(app)
    for part in command.split():
        node = node.commands[part]
    return {p.name: p.default for p in node.params}


def _library_default(source, name: str):
    if not isinstance(source, type) and hasattr(source, "__dataclass_fields__"):
        return getattr(source, name)  # an instance, e.g. a preset
    return default(source, name)


@pytest.mark.parametrize(
    ("command", "option", "source"), ROWS, ids=[f"{c}:{o}" for c, o, _ in ROWS]
)
def test_cli_default_is_the_library_default(command, option, source):
    options = _options(command)
    assert option in options, f"`ebrm {command}` has no option {option!r}; update SOURCES"
    expected = _library_default(*source)
    assert options[option] == expected, (
        f"`ebrm {command}` defaults {option} to {options[option]!r} but {source[1]} defaults "
        f"to {expected!r}: change the CLI default to match"
    )


def test_the_default_preset_is_the_train_and_demo_default():
    assert _options("train")["preset"] == DEFAULT_PRESET == default(PipelineConfig, "preset")


def test_demo_fine_tunes_only_when_asked():
    assert _options("demo")["full_finetune"] is not default(PipelineConfig, "freeze_encoder")
