"""Options shared by several commands, defined once so their names and help agree.

Options with a fixed set of values are the library's own `Literal`s (imported from its
torch-free `names`/`kinds` modules), so `--help` lists the choices and a wrong value is
refused while parsing, before any heavy import. Defaults come from the library too: no
option spells out a value of its own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from ebrm.errors import ConfigError
from ebrm.refine.kinds import DEFAULT_REWARD, DEPRECATED_KINDS, REWARD_KINDS, RewardKind
from ebrm.rm.names import DTypeName, EngineName, TruncationSide

_DEVICE = re.compile(r"(cpu|cuda|mps|xpu|meta)(:\d+)?")


def _check_device(value: str | None) -> str | None:
    if value is not None and not _DEVICE.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not a torch device; use e.g. cpu, cuda or cuda:1")
    return value


def positive(value: float | None) -> float | None:
    """An option callback: the value, if given, is > 0."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be > 0; got {value}")
    return value


def fraction(value: float | None) -> float | None:
    """An option callback: the value, if given, is in [0, 1)."""
    if value is not None and not 0 <= value < 1:
        raise typer.BadParameter(f"must be in [0, 1); got {value}")
    return value


Seed = Annotated[int, typer.Option("--seed", help="Random seed (training, splits, sampling).")]
Device = Annotated[
    str | None,
    typer.Option(
        "--device",
        callback=_check_device,
        help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available).",
    ),
]
DType = Annotated[DTypeName, typer.Option("--dtype", help="Compute dtype for the base RM.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Texts per forward pass.")]
MaxLength = Annotated[int, typer.Option("--max-length", min=8, help="Maximum tokens per text.")]
OutDir = Annotated[Path, typer.Option("--out", help="Output directory (created if missing).")]
DataSpec = Annotated[
    str,
    typer.Option(
        "--data",
        help="Local file/dir (JSON, JSONL, JSONL.GZ, Parquet) or hf:NAME[:CONFIG][:SPLIT].",
    ),
]
Overwrite = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace an existing result at --out (refused without it)."),
]
Progress = Annotated[
    bool,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bars on a terminal, a line every 30 s otherwise; off with --no-progress.",
    ),
]
Engine = Annotated[
    EngineName,
    typer.Option(
        "--engine",
        help="What runs the base RM's forward: transformers (default), or vllm (continuous "
        'batching, prefix caching; pip install "ebrm[vllm]"; see docs/engines.md).',
    ),
]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        envvar="EBRM_THREADS",
        help="torch CPU threads (default: EBRM_THREADS, else OMP_NUM_THREADS, else one per "
        "core); fewer when other jobs share the machine.",
    ),
]
BaseRM = Annotated[
    str | None,
    typer.Option(
        "--base-rm",
        help="Base RM directory or hub id to use instead of the one recorded in the model.",
    ),
]

# Commands that embed new texts with a refined model's base RM (eval, bon, serve): the
# settings must be the ones the model's features were made with, which it records.
EmbedMaxLength = Annotated[
    int | None,
    typer.Option(
        "--max-length",
        min=8,
        help="Tokens per text when embedding; must equal what the model's features were made "
        "with (default: the value the model records).",
    ),
]
EmbedTruncationSide = Annotated[
    TruncationSide | None,
    typer.Option(
        "--truncation-side",
        help="Which end of long texts is cut when embedding; must equal what the model's "
        "features were made with (default: the value the model records).",
    ),
]
ReuseFeatures = Annotated[
    Path | None,
    typer.Option(
        "--features",
        help="A feature store made by the model's base RM with the same settings (e.g. the "
        "OUT/features of `ebrm base-rm train`, or an `ebrm extract` store): texts it holds "
        "are read from it, not embedded again.",
    ),
]


def _check_reward(value: str | None) -> str | None:
    """--reward / --mode: a `RewardKind`; an earlier release's spelling warns and maps."""
    if value is None or value in REWARD_KINDS:
        return value
    if value in DEPRECATED_KINDS:
        _warn(f"the reward {value!r} is deprecated; use {DEPRECATED_KINDS[value]!r}")
        return DEPRECATED_KINDS[value]
    raise typer.BadParameter(f"{value!r} is not one of {', '.join(REWARD_KINDS)}")


def _warn(message: str) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


# Which reward a command uses: one name everywhere (`--reward`; `reward=` in Python,
# EBRM_REWARD, the server's "reward"). The kinds are the library's `RewardKind`, listed in
# --help; the value is checked by a callback so that an earlier release's spelling still
# works (with a warning) for one release.
def reward_option(help: str):
    """The `--reward` option of a command, with its own help and the kinds listed after it
    (as a `<a|b|...>` metavar, the ten kinds made a 97-column line in `--help`)."""
    return typer.Option(
        "--reward",
        callback=_check_reward,
        metavar="<kind>",
        help=f"{help} One of {', '.join(REWARD_KINDS)}.",
    )


DeprecatedMode = Annotated[
    str | None,
    typer.Option("--mode", hidden=True, callback=_check_reward, help="Deprecated: --reward."),
]


def reward_or_mode(reward: str, mode: str | None) -> RewardKind:
    """--reward, or the deprecated --mode (a one-line warning) when only it was given."""
    if mode is None:
        return reward  # type: ignore[return-value]
    _warn("--mode is deprecated and will be removed in the next release; use --reward")
    if reward != DEFAULT_REWARD and reward != mode:
        raise ConfigError(f"--reward {reward} and --mode {mode} disagree; pass only --reward.")
    return mode  # type: ignore[return-value]
