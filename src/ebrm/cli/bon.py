"""`ebrm bon`: best-of-n selection over candidate sets with any reward mode."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm.cli._options import BatchSize, Device


def register(app: typer.Typer) -> None:
    @app.command()
    def bon(
        model: Annotated[Path, typer.Option("--model", help="Refined-model directory.")],
        candidates: Annotated[
            Path,
            typer.Option("--candidates", help='JSONL rows {"prompt": ..., "candidates": [...]}.'),
        ],
        out: Annotated[
            Path, typer.Option("--out", help="Output JSONL: rows + best_index, best, rewards.")
        ],
        mode: Annotated[
            str, typer.Option("--mode", help="Rank by: refined|mean|mode|median|conservative|base.")
        ] = "refined",
        batch_size: BatchSize = 16,
        device: Device = None,
    ) -> None:
        """Pick the best candidate response per prompt."""
        from ebrm.integrations._common import check_mode
        from ebrm.integrations.best_of_n import read_candidates, select_best, write_rows
        from ebrm.model import EnergyRewardModel

        check_mode(mode)
        rows = read_candidates(candidates)
        erm = EnergyRewardModel.from_pretrained(model, device=device)
        chosen = select_best(erm, rows, mode=mode, batch_size=batch_size)
        write_rows(out, chosen)
        total = sum(len(r["candidates"]) for r in rows)
        typer.echo(f"scored {total} candidates of {len(rows)} prompts ({mode}); wrote {out}")
