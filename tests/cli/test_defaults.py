"""Every CLI default is the library's: no command spells out a value of its own.

The commands take their defaults from the library's configs (`default(Config, "field")`),
presets and torch-free name modules (`ebrm.*.names`, `ebrm.refine.kinds`), and their
choices are the library's `Literal`s. This test reads the commands' source and fails on
any option default written as a number or string literal, so a default cannot again be a
separate copy that drifts from the library.
"""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest
import typer

import ebrm.cli
from ebrm._config import default
from ebrm.cli import app

CLI = Path(ebrm.cli.__file__).parent
COMMAND_FILES = sorted(p for p in CLI.glob("*.py") if not p.name.startswith("_"))

# (file, parameter): defaults the CLI owns because no library setting has one (the library
# function takes the value as a required keyword); each with why
CLI_OWNED = {
    ("split.py", "test_fraction"): "split_pairs has no default fractions",
    ("split.py", "validation_fraction"): "split_pairs has no default fractions",
    ("split.py", "seed"): "split_pairs has no default seed",
}


def _literal(node: ast.expr) -> bool:
    """A number or string written in the source (bools and None are flags' 'not given')."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float, str)) and not isinstance(node.value, bool)
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Tuple, ast.List)):
        return all(
            _literal(child) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)
        )
    return False


def _command_defaults(path: Path):
    """(function, parameter, default node) of every function with typer options in `path`."""
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef):
            continue
        args = node.args.args + node.args.kwonlyargs
        defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
        defaults += node.args.kw_defaults
        for arg, value in zip(args, defaults, strict=True):
            if value is not None and arg.annotation is not None:
                yield node.name, arg.arg, value


ROWS = [(p.name, fn, arg, value) for p in COMMAND_FILES for fn, arg, value in _command_defaults(p)]


def test_the_scan_sees_the_commands():
    names = {(f, a) for f, _, a, _ in ROWS}
    assert {("serve.py", "port"), ("train.py", "preset"), ("extract.py", "shard_size")} <= names


@pytest.mark.parametrize(("file", "function", "param", "node"), ROWS,
                         ids=[f"{r[0]}:{r[2]}" for r in ROWS])  # fmt: skip
def test_no_cli_default_is_a_literal(file, function, param, node):
    if (file, param) in CLI_OWNED:
        return
    assert not _literal(node), (
        f"cli/{file} {function}({param}=...) defaults to the literal {ast.unparse(node)}; take "
        "it from the library (e.g. default(Config, 'field') or an ebrm.*.names constant)"
    )


def test_a_literal_default_would_be_caught():
    source = "def f(x: int = 16, y: int = 8 * 1024, z: str = DEFAULT, w: bool = False): ..."
    fn = ast.parse(source).body[0]
    assert [_literal(d) for d in fn.args.defaults] == [True, True, False, False]


def _params(command: str) -> dict:
    node = typer.main.get_command(app)
    for part in command.split():
        node = node.commands[part]
    return {p.name: p for p in node.params}


def test_choices_are_the_librarys_literals():
    from ebrm.energy.names import OBJECTIVES, PRESET_NAMES
    from ebrm.evaluation.names import BENCHMARKS
    from ebrm.refine.kinds import REWARD_KINDS
    from ebrm.rm.names import DTYPE_NAMES

    def choices(command, name):
        annotation = _params(command)[name].type_descriptor.annotation
        if typing.get_origin(annotation) is typing.Union:  # an optional choice
            (annotation,) = (a for a in typing.get_args(annotation) if a is not type(None))
        return typing.get_args(annotation)

    assert choices("train", "preset") == choices("demo", "preset") == PRESET_NAMES
    assert choices("train", "objective") == OBJECTIVES
    assert choices("eval", "benchmark") == BENCHMARKS
    assert choices("extract", "dtype") == choices("extract", "storage_dtype") == DTYPE_NAMES
    for command in ("eval", "serve", "bon"):
        option = _params(command)["reward"]
        assert option.help.endswith(f" One of {', '.join(REWARD_KINDS)}."), command
        for kind in REWARD_KINDS:
            assert option.callback(None, option, kind) == kind
        with pytest.raises(typer.BadParameter, match="'best' is not one of refined, mean"):
            option.callback(None, option, "best")


def test_the_librarys_names_are_its_implementations():
    from ebrm.energy.names import OBJECTIVES, PRESET_NAMES
    from ebrm.energy.objectives import make_objective
    from ebrm.energy.presets import PRESETS
    from ebrm.evaluation.names import BENCHMARKS
    from ebrm.evaluation.registry import get_benchmark

    assert set(PRESETS) == set(PRESET_NAMES)
    assert [get_benchmark(name).name for name in BENCHMARKS] == list(BENCHMARKS)
    for name in OBJECTIVES:
        objective = make_objective(
            name, noise_std=1.0, positive_noise_ratio=0.1, num_negatives=2, reg_weight=0.0
        )
        assert objective.name == name


def test_train_and_demo_defaults_are_the_default_preset():
    from ebrm.energy.presets import DEFAULT_PRESET, PRESETS
    from ebrm.pipeline import PipelineConfig

    train = _params("train")
    assert train["preset"].default == DEFAULT_PRESET == default(PipelineConfig, "preset")
    assert train["objective"].default == PRESETS[DEFAULT_PRESET].objective
    assert _params("demo")["full_finetune"].default is not default(PipelineConfig, "freeze_encoder")


def test_library_defaults_agree():
    """The same setting has one default wherever the library takes it."""
    from ebrm.energy.config import EnergyHeadConfig, TrainConfig
    from ebrm.energy.objectives import NCEPlusBT, NCEPlusMargin, make_objective
    from ebrm.energy.presets import PRESETS
    from ebrm.features.extract import extract_features
    from ebrm.integrations.best_of_n import select_best
    from ebrm.rm.adapter import BaseRewardModel

    for name in ("margin", "bt_weight"):
        assert default(make_objective, name) == default(TrainConfig, name)
    assert default(NCEPlusMargin, "margin") == default(TrainConfig, "margin")
    assert default(NCEPlusBT, "bt_weight") == default(TrainConfig, "bt_weight")
    paper = PRESETS["paper"]
    for name in ("reward_widths", "joint_widths", "dropout"):
        assert getattr(paper, name) == default(EnergyHeadConfig, name), name
    assert default(extract_features, "batch_size") == default(select_best, "batch_size")
    load = BaseRewardModel.from_pretrained
    assert _params("extract")["max_length"].default == default(load, "max_length")
    assert _params("extract")["truncation_side"].default == default(load, "truncation_side")


@pytest.mark.parametrize(
    "command",
    ["", "version", "demo", "split", "extract", "train", "eval", "score", "serve", "bon",
     "overopt", "base-rm", "base-rm train"],
)  # fmt: skip
def test_help_fits_80_columns(command):
    """`ebrm ... --help` in an 80-column terminal: no line wider (a wider one wraps mid-word)."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    wide = [line for line in result.output.splitlines() if len(line) > 80]
    assert not wide, wide
