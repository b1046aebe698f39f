"""`ebrm._config`: one message style and one `from_dict` behaviour for every config."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from ebrm._config import (
    check_choice,
    check_float,
    check_int,
    check_widths,
    default,
    from_dict,
    invalid,
)
from ebrm.energy.config import EnergyHeadConfig, TrainConfig
from ebrm.errors import ConfigError
from ebrm.integrations.server_config import ServerConfig
from ebrm.overopt.config import OveroptConfig
from ebrm.pipeline import PipelineConfig
from ebrm.refine.config import RefineConfig
from ebrm.rm.train_bt import BTTrainConfig

CONFIGS = [
    EnergyHeadConfig(embedding_dim=8, joint_widths=(4,)),
    TrainConfig(objective="nce+bt", reward_widths=(3, 5), max_steps=None, epochs=2.0),
    RefineConfig(method="conservative", grid_min=-3.5, grid_max=9.25),
    BTTrainConfig(freeze_encoder=True, learning_rate=1e-3),
    ServerConfig(port=0, token="t", special_tokens=("<a>",)),
    OveroptConfig(num_candidates=40, label_noise=(0.1, 0.3), references=False),
    PipelineConfig(base_model="m", preset="paper", train_overrides={"max_steps": 5}),
]


@dataclass(frozen=True)
class Toy:
    count: int = 1
    rate: float = 0.5
    kind: str = "a"
    widths: tuple[int, ...] = (2,)

    def __post_init__(self):
        check_int(self, "count", low=1, hint="Use at least one.")
        check_float(self, "rate", low=0.0, high=1.0, high_open=True)
        check_choice(self, "kind", ("a", "b"))
        check_widths(self, "widths")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, "The 'count' parameter of Toy must be an int >= 1. Got 0 instead. Use at "
         "least one."),
        ({"count": True}, "The 'count' parameter of Toy must be an int >= 1. Got True instead."),
        ({"rate": 1.0}, "The 'rate' parameter of Toy must be a finite float in [0, 1). Got 1.0"),
        ({"rate": float("nan")}, "The 'rate' parameter of Toy must be a finite float in [0, 1)."),
        ({"kind": "c"}, "The 'kind' parameter of Toy must be one of a, b. Got 'c' instead."),
        ({"widths": ()}, "The 'widths' parameter of Toy must be a non-empty sequence of ints"),
        ({"widths": (2, 0)}, "must be a non-empty sequence of ints >= 1. Got (2, 0) instead."),
    ],
)  # fmt: skip
def test_one_message_style(kwargs, message):
    with pytest.raises(ConfigError) as info:
        Toy(**kwargs)
    assert message in str(info.value)


def test_bounds_and_optional():
    @dataclass
    class Opt:
        steps: int | None = None
        scale: float | None = None

        def __post_init__(self):
            check_int(self, "steps", low=1, optional=True)
            check_float(self, "scale", low=0.0, low_open=True, optional=True)

    assert Opt().steps is None and Opt(steps=3, scale=0.1).scale == 0.1
    with pytest.raises(ConfigError, match=r"must be None or an int >= 1\. Got 0 instead\."):
        Opt(steps=0)
    with pytest.raises(ConfigError, match=r"must be None or a finite float > 0\. Got 0\.0"):
        Opt(scale=0.0)
    message = str(invalid("Name", "x", "an int", "y", hint="Fix it."))
    assert message == "The 'x' parameter of Name must be an int. Got 'y' instead. Fix it."


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_round_trip_and_unknown_keys_warn_once_naming_them(config, caplog):
    cls = type(config)
    assert cls.from_dict(config.to_dict()) == config
    data = {**config.to_dict(), "from_the_future": 1, "also_new": [2]}
    with caplog.at_level(logging.WARNING):
        again = cls.from_dict(data)
    assert again == config
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert cls.__name__ in text and "'also_new'" in text and "'from_the_future'" in text


@pytest.mark.parametrize("cls", [type(c) for c in CONFIGS], ids=lambda c: c.__name__)
def test_from_dict_rejects_a_non_mapping(cls):
    with pytest.raises(ConfigError, match=f"{cls.__name__} needs a JSON object"):
        cls.from_dict([1, 2])


def test_default_reads_the_dataclass_field():
    assert default(ServerConfig, "port") == ServerConfig().port
    assert default(TrainConfig, "objective") == TrainConfig().objective
    assert default(Toy, "widths") == (2,)
    with pytest.raises(KeyError):
        default(EnergyHeadConfig, "embedding_dim")
    assert from_dict(Toy, {"count": 3}) == Toy(count=3)


def test_default_reads_a_function_keyword():
    def f(a, *, b=3, c=None):
        return a, b, c

    assert (default(f, "b"), default(f, "c")) == (3, None)
    with pytest.raises(KeyError, match="'a' has no default"):
        default(f, "a")
