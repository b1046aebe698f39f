"""`ebrm train`: fit an energy head on a feature store; DIR becomes a refined-model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm.cli import _checks
from ebrm.cli._options import (
    Device,
    ObjectiveName,
    OutDir,
    Overwrite,
    PresetName,
    Progress,
    Seed,
)
from ebrm.errors import Interrupted

_FLAGS = {"max_steps": "--steps", "bt_weight": "--bt-weight", "margin": "--margin",
          "seed": "--seed", "device": "--device", "objective": "--objective"}  # fmt: skip

Features = Annotated[
    Path, typer.Option("--features", help="Feature store directory (from `ebrm extract`).")
]


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        features: Features,
        out: OutDir,
        preset: Annotated[
            PresetName,
            typer.Option(
                "--preset", help="Training budget and sizes: small-data, or the paper's values."
            ),
        ] = "small-data",
        objective: Annotated[
            ObjectiveName,
            typer.Option(
                "--objective", help="nce+ (the paper), nce+bt (+ Bradley-Terry), nce+margin."
            ),
        ] = "nce+",
        no_filter: Annotated[
            bool, typer.Option("--no-filter", help="Train on all pairs, not just agreeing ones.")
        ] = False,
        steps: Annotated[
            int | None, typer.Option("--steps", min=1, help="Optimiser-step budget override.")
        ] = None,
        bt_weight: Annotated[
            float | None, typer.Option("--bt-weight", min=0, help="Weight of the BT term (nce+bt).")
        ] = None,
        margin: Annotated[
            float | None,
            typer.Option("--margin", min=0, help="Target margin, normalised units (nce+margin)."),
        ] = None,
        seed: Seed = 0,
        device: Device = None,
        progress: Progress = True,
        overwrite: Overwrite = False,
    ) -> None:
        """Train the energy head with NCE+; prints validation accuracy of base vs refined."""
        _checks.need(features, "--features", _checks.FEATURE_STORE)
        _checks.output_dir(out, "--out", overwrite=overwrite, replaces=_checks.EBRM_MODEL)
        from rich.console import Console
        from rich.table import Table

        from ebrm.energy import TrainConfig, train_energy_head
        from ebrm.features.store import FeatureStore
        from ebrm.model import EnergyRewardModel

        overrides = {"objective": objective, "seed": seed, "device": device}
        if bt_weight is not None:
            overrides["bt_weight"] = bt_weight
        if margin is not None:
            overrides["margin"] = margin
        if no_filter:
            overrides["filter_conflicts"] = False
        if steps is not None:  # a fixed budget: no early stop before it
            overrides.update(max_steps=steps, epochs=None, min_steps=steps)
        with _checks.flag_names(_FLAGS):
            config = TrainConfig.preset(preset, **overrides)
        store = FeatureStore.open(features)
        # validation: config.validation_fraction of the pairs, whole prompts at a time
        try:
            result = train_energy_head(store.load(), config, progress=progress)
        except Interrupted as exc:
            exc.args = (f"interrupted: training stopped before saving; {out} is unchanged; "
                        "rerun the same command to train again",)  # fmt: skip
            raise
        model = EnergyRewardModel.from_training(
            result, base_rm_info=store.provenance, references=True
        )
        model.train_info["features"] = str(features)
        model.save_pretrained(out)
        result.save_history(out)

        val = model.train_info["validation"]
        table = Table(
            title=f"validation pairwise accuracy ({_checks.plural(val['pairs'], 'pair')})"
        )
        for column in ("base", "refined (mean)", "refined (mode)", "chosen"):
            table.add_column(column, justify="right")
        fmt = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        table.add_row(
            fmt(val.get("base_accuracy")),
            fmt(val.get("mean_accuracy")),
            fmt(val.get("mode_accuracy")),
            val.get("method", "mean"),
        )
        console = Console()
        console.print(table)
        console.print(f"refined model written to {out}")
