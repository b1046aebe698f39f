"""`ebrm bon`: best-of-n selection over candidate sets with any reward mode."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm.cli import _checks
from ebrm.cli._base_rm import load_base_rm
from ebrm.cli._options import BaseRM, BatchSize, Device, Overwrite, RewardKind


def register(app: typer.Typer) -> None:
    @app.command()
    def bon(
        model: Annotated[Path, typer.Option("--model", help="Refined-model directory.")],
        candidates: Annotated[
            Path,
            typer.Option(
                "--candidates",
                help='A JSONL file, one line per prompt: {"prompt": "...", "candidates": '
                '["response 1", "response 2", ...]} (prompt may also be a list of chat '
                "messages).",
            ),
        ],
        out: Annotated[
            Path, typer.Option("--out", help="Output JSONL: rows + best_index, best, rewards.")
        ],
        mode: Annotated[RewardKind, typer.Option("--mode", help="Reward to rank by.")] = "refined",
        batch_size: BatchSize = 16,
        device: Device = None,
        base_rm: BaseRM = None,
        overwrite: Overwrite = False,
    ) -> None:
        """Pick the best candidate response per prompt."""
        _checks.need(model, "--model", _checks.EBRM_MODEL)
        _checks.input_file(candidates, "--candidates", "a JSONL file of prompts and candidates")
        if base_rm is not None:
            _checks.need(base_rm, "--base-rm", _checks.HF_MODEL)
        _checks.output_file(out, "--out", overwrite=overwrite)

        from ebrm.integrations.best_of_n import read_candidates, select_best, write_rows
        from ebrm.model import EnergyRewardModel

        rows = read_candidates(candidates)
        erm = EnergyRewardModel.from_pretrained(model, device=device)
        if base_rm is not None:
            erm.attach_base_rm(load_base_rm(base_rm, erm, device))
        chosen = select_best(erm, rows, mode=mode, batch_size=batch_size)
        write_rows(out, chosen)
        total = sum(len(r["candidates"]) for r in rows)
        typer.echo(
            f"scored {_checks.plural(total, 'candidate')} of {_checks.plural(len(rows), 'prompt')} "
            f"({mode}); wrote {out}"
        )
