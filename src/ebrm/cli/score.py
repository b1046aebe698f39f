"""`ebrm score`: refined rewards of stored features with a trained energy head (JSONL)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm.cli import _checks
from ebrm.cli._lock import lock_output
from ebrm.cli._options import Device, Overwrite, Progress
from ebrm.cli._provenance import check_same_base_rm, recorded_base_rm, store_base_rm


def register(app: typer.Typer) -> None:
    @app.command()
    def score(
        model: Annotated[Path, typer.Option("--model", help="Refined-model directory.")],
        features: Annotated[Path, typer.Option("--features", help="Feature store directory.")],
        out: Annotated[Path, typer.Option("--out", help="Output JSONL file (one line per row).")],
        device: Device = None,
        progress: Progress = True,
        overwrite: Overwrite = False,
    ) -> None:
        """Score every row of a feature store: base, refined, mean, std, q05, q95."""
        _checks.need(model, "--model", _checks.EBRM_MODEL)
        _checks.need(features, "--features", _checks.FEATURE_STORE)
        lock_output(out)
        _checks.output_file(out, "--out", overwrite=overwrite)
        check_same_base_rm(
            recorded_base_rm(model), f"--model {model}", store_base_rm(features),
            f"--features {features}",
            fix="score features extracted with the RM the model was trained on",
        )  # fmt: skip

        from ebrm.energy.scoring import score_store
        from ebrm.features.store import FeatureStore
        from ebrm.model import EnergyRewardModel

        erm = EnergyRewardModel.from_pretrained(model, device=device)
        # shard by shard, the JSONL written as it goes and moved into place at the end
        written = score_store(erm, FeatureStore.open(features), out, progress=progress)
        typer.echo(f"wrote {_checks.plural(written, 'row')} to {out}")
