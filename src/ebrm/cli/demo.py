"""`ebrm demo`: the whole job on the embedded default data, offline, in a few minutes on CPU."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ebrm._config import default
from ebrm.cli import _checks, _runtime
from ebrm.cli._lock import lock_output
from ebrm.cli._options import Device, Progress, Seed, Threads
from ebrm.energy.names import PresetName
from ebrm.errors import Interrupted
from ebrm.pipeline.config import PipelineConfig


def _d(name: str):
    return default(PipelineConfig, name)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/demo"),
        data: Annotated[
            str | None,
            typer.Option(
                "--data",
                help="Preference data instead of the embedded 300 LLaMA-Factory pairs "
                "(file/dir or hf:NAME[:CONFIG][:SPLIT]).",
            ),
        ] = None,
        base_model: Annotated[
            str | None,
            typer.Option(
                "--base-model",
                help="HF model to train the base RM from (default: the packaged MiniLM-L6).",
            ),
        ] = _d("base_model"),
        seed: Seed = _d("seed"),
        device: Device = _d("device"),
        full_finetune: Annotated[
            bool, typer.Option(help="Fine-tune the whole MiniLM base RM (slower).")
        ] = not _d("freeze_encoder"),
        preset: Annotated[PresetName, typer.Option("--preset", help="EBRM training preset.")] = _d(
            "preset"
        ),
        progress: Progress = True,
        threads: Threads = None,
    ) -> None:
        """Base RM -> features -> EBRM -> base vs refined on a held-out test split.

        Trains a MiniLM Bradley-Terry RM on the train split, extracts features, trains the
        energy head (checkpoint chosen on the validation split) and evaluates both on the
        test split. Writes metrics.json, report.md, plots and scores.json into --out;
        rerunning reuses the finished stages.
        """
        if data is not None:
            _checks.data_spec(data)
        if base_model is not None:
            _checks.need(base_model, "--base-model", _checks.HF_MODEL)
        lock_output(out)
        _checks.output_dir(out, "--out", overwrite=True)  # a run directory is resumed

        from rich.console import Console

        from ebrm.cli._summary import print_summary
        from ebrm.pipeline import run_pipeline

        console = Console(soft_wrap=True)  # a log file gets whole lines, not 80 columns
        names = {"data": "1/5 data", "base_rm": "2/5 base RM", "features": "3/5 features",
                 "ebrm": "4/5 EBRM", "eval": "5/5 evaluation"}  # fmt: skip
        _runtime.use_threads(threads)
        started = time.perf_counter()
        config = PipelineConfig(
            base_model=base_model, seed=seed, device=device, freeze_encoder=not full_finetune,
            preset=preset, progress=progress,
        )  # fmt: skip
        try:
            result = run_pipeline(
                out, config, data=data,
                on_stage=lambda stage, msg: console.print(f"[bold cyan]{names[stage]}[/] {msg}"),
            )  # fmt: skip
        except Interrupted as exc:
            if not str(exc).startswith("interrupted:"):  # extraction says what it kept
                exc.args = ("interrupted: finished stages are kept in --out; rerun the same "
                            "command to resume",)  # fmt: skip
            raise
        m = result.metrics
        title = f"held-out test split: {_checks.plural(m['n'], 'pair')} ({m['data']})"
        print_summary(console, m, title)
        sizes = result.sizes
        console.print(
            f"splits: train {sizes['train']}, validation {sizes['validation']}, test "
            f"{sizes['test']}; reused stages: {', '.join(result.reused) or 'none'}; "
            f"{time.perf_counter() - started:.0f} s"
        )
        console.print(f"report: {Path(out) / 'report.md'}")
