"""`ebrm split`: held-out train / validation / test files, split by prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm.cli import _checks
from ebrm.cli._options import DataSpec, OutDir, Overwrite, Seed, fraction
from ebrm.errors import ConfigError

SPLITS = ("train", "validation", "test")


def register(app: typer.Typer) -> None:
    @app.command()
    def split(
        data: DataSpec,
        out: OutDir,
        test_fraction: Annotated[
            float,
            typer.Option("--test-fraction", callback=fraction, help="Pairs held out to test."),
        ] = 0.2,
        validation_fraction: Annotated[
            float,
            typer.Option(
                "--validation-fraction",
                callback=fraction,
                help="Pairs held out to choose checkpoints and settings on.",
            ),
        ] = 0.1,
        seed: Seed = 0,
        overwrite: Overwrite = False,
    ) -> None:
        """Split preference data by prompt into train.jsonl, validation.jsonl, test.jsonl.

        Every pair of a prompt lands in the same file, so no stage that trains on
        train.jsonl (or validates on validation.jsonl) has seen a test prompt. The files
        are in the `messages` layout and keep each pair's id and subset.
        """
        _checks.data_spec(data)
        _checks.output_dir(out, "--out", overwrite=overwrite, result_file="train.jsonl")
        if test_fraction + validation_fraction >= 1:
            raise ConfigError(
                f"--test-fraction {test_fraction} + --validation-fraction "
                f"{validation_fraction} must leave pairs to train on (sum < 1)."
            )

        from ebrm._io import atomic_write_json
        from ebrm.data import load_pairs, prompt_hash, split_pairs
        from ebrm.data.write import write_pairs

        pairs = load_pairs(data)
        parts = split_pairs(
            pairs, test_fraction=test_fraction, validation_fraction=validation_fraction, seed=seed
        )
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for name, part in zip(SPLITS, parts, strict=True):
            write_pairs(out / f"{name}.jsonl", part)
        named = dict(zip(SPLITS, parts, strict=True))
        sizes = {name: len(part) for name, part in named.items()}
        prompts = {name: len({prompt_hash(p) for p in part}) for name, part in named.items()}
        atomic_write_json(out / "split.json", {
            "data": data, "seed": seed, "test_fraction": test_fraction,
            "validation_fraction": validation_fraction, "pairs": sizes, "prompts": prompts,
            "grouped_by": "prompt (ebrm.data.prompt_hash)",
        })  # fmt: skip
        typer.echo(
            ", ".join(
                f"{name} {_checks.plural(sizes[name], 'pair')} "
                f"({_checks.plural(prompts[name], 'prompt')})"
                for name in SPLITS
            )
            + f" in {out}; no prompt is in two files"
        )
