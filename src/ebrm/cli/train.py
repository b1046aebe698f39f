"""`ebrm train`: fit an energy head on a feature store; DIR becomes a refined-model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm.cli import _checks, _runtime
from ebrm.cli._lock import lock_output
from ebrm.cli._options import Device, OutDir, Overwrite, Progress, Seed, Threads
from ebrm.energy.names import DEFAULT_PRESET, ObjectiveName, PresetName
from ebrm.energy.presets import PRESETS
from ebrm.errors import Interrupted

_DEFAULT = PRESETS[DEFAULT_PRESET]  # what an option left unset trains with

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
                "--preset",
                help="Training budget and sizes: small-data, large-data (100k+ pairs: 2 "
                "epochs of 128 pairs a step), or the paper's values.",
            ),
        ] = DEFAULT_PRESET,
        objective: Annotated[
            ObjectiveName,
            typer.Option(
                "--objective", help="nce+ (the paper), nce+bt (+ Bradley-Terry), nce+margin."
            ),
        ] = _DEFAULT.objective,
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
        seed: Seed = _DEFAULT.seed,
        device: Device = None,
        progress: Progress = True,
        overwrite: Overwrite = False,
        validation_data: Annotated[
            str | None,
            typer.Option(
                "--validation-data",
                help="The pairs to choose the checkpoint on: a feature store of them (made by "
                "`ebrm extract` with the same RM), or a data file/SPEC whose prompts select "
                "them from --features (default: a prompt-grouped fraction of --features).",
            ),
        ] = None,
        no_references: Annotated[
            bool,
            typer.Option(
                "--no-references",
                help="Skip the Laplace and ensemble references (their reward kinds then fail).",
            ),
        ] = False,
        threads: Threads = None,
    ) -> None:
        """Train the energy head with NCE+; prints validation accuracy of base vs refined."""
        _checks.need(features, "--features", _checks.FEATURE_STORE)
        if (
            validation_data is not None
            and _checks.artifact_kind(Path(validation_data)) != _checks.FEATURE_STORE
        ):
            _checks.data_spec(validation_data, "--validation-data")
        lock_output(out)
        _checks.output_dir(out, "--out", overwrite=overwrite, replaces=_checks.EBRM_MODEL)
        from rich.console import Console
        from rich.table import Table

        from ebrm.energy import TrainConfig, train_energy_head
        from ebrm.evaluation.model_verdict import record_validation_verdict
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
        _runtime.use_threads(threads)
        store = FeatureStore.open(features)
        # validation: given, or config.validation_fraction of the pairs, whole prompts at a time
        train_features, val_features = _with_validation(store, validation_data)
        try:
            result = train_energy_head(
                train_features, config, validation=val_features, progress=progress
            )
        except Interrupted as exc:
            exc.args = (f"interrupted: training stopped before saving; {out} is unchanged; "
                        "rerun the same command to train again",)  # fmt: skip
            raise
        model = EnergyRewardModel.from_training(
            result, base_rm_info=store.provenance, references=not no_references
        )
        model.train_info["features"] = str(features)
        verdict = record_validation_verdict(model, result.validation_features, seed=seed)
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
        if verdict:
            console.print(verdict)
        console.print(f"refined model written to {out}")


def _with_validation(store, validation_data: str | None):
    """(training features, validation features or None) for --validation-data."""
    from ebrm.cli._provenance import check_same_base_rm
    from ebrm.errors import DataFormatError
    from ebrm.features.store import FeatureStore

    # memory-mapped: training reads its mini-batches by index, never the whole table
    features = store.load(memory_map=True)
    if validation_data is None:
        return features, None
    if _checks.artifact_kind(Path(validation_data)) == _checks.FEATURE_STORE:
        other = FeatureStore.open(validation_data)
        check_same_base_rm(
            store.provenance, f"--features {store.path}", other.provenance,
            f"--validation-data {validation_data}",
            fix="extract both with the same --rm and settings",
        )  # fmt: skip
        return features, other.load(memory_map=True)
    import torch

    from ebrm.data import load_pairs, prompt_hash

    wanted = {prompt_hash(p) for p in load_pairs(validation_data)}
    if features.prompt_hashes is None:
        raise DataFormatError(
            f"--features {store.path} records no prompts (made by an older ebrm), so "
            f"--validation-data {validation_data} cannot select from it; re-extract it, or "
            "pass a feature store of the validation pairs."
        )
    chosen = torch.tensor([h in wanted for h in features.prompt_hashes])
    if not chosen.any():
        raise DataFormatError(
            f"no pair of --features {store.path} has a prompt of --validation-data "
            f"{validation_data}; extract the validation file into its own store "
            "(`ebrm extract --data FILE --out STORE`) and pass that store."
        )
    index = torch.arange(features.num_pairs)
    return features.subset(index[~chosen]), features.subset(index[chosen])
