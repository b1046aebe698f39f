"""`ebrm score`: refined rewards of stored features with a trained energy head (JSONL)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm.cli import _checks, _runtime
from ebrm.cli._lock import lock_output
from ebrm.cli._options import Device, Overwrite, Progress, Threads
from ebrm.cli._provenance import check_same_base_rm, recorded_base_rm, store_base_rm
from ebrm.refine.kinds import RECORD_FIELDS, RECORD_USE


def _help() -> str:
    """The command's help: what it writes, which field to use for what, every field."""
    fields = "\n\n".join(f"{name}: {text}." for name, text in RECORD_FIELDS.items())
    return (
        "Score every row of a feature store: one JSON line per row (`row`, then the "
        "row's record: every reward and its uncertainty, in normalised units unless a field "
        f"says otherwise).\n\n{RECORD_USE}\n\n{fields}"
    )


def register(app: typer.Typer) -> None:
    @app.command(help=_help())
    def score(
        model: Annotated[Path, typer.Option("--model", help="Refined-model directory.")],
        features: Annotated[Path, typer.Option("--features", help="Feature store directory.")],
        out: Annotated[Path, typer.Option("--out", help="Output JSONL file (one line per row).")],
        device: Device = None,
        progress: Progress = True,
        overwrite: Overwrite = False,
        threads: Threads = None,
    ) -> None:
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

        _runtime.use_threads(threads)
        erm = EnergyRewardModel.from_pretrained(model, device=device)
        # shard by shard, the JSONL written as it goes and moved into place at the end
        written = score_store(erm, FeatureStore.open(features), out, progress=progress)
        typer.echo(f"wrote {_checks.plural(written, 'row')} to {out}")
