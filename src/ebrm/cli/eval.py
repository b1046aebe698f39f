"""`ebrm eval`: base vs refined on a benchmark; writes metrics.json, report.md and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm.cli import _checks, _engine, _runtime
from ebrm.cli._base_rm import attach, check_inputs
from ebrm.cli._lock import lock_output
from ebrm.cli._options import (
    BaseRM,
    BatchSize,
    DataSpec,
    Device,
    EmbedMaxLength,
    EmbedTruncationSide,
    Engine,
    OutDir,
    Overwrite,
    Progress,
    ReuseFeatures,
    Seed,
    Threads,
    reward_option,
)
from ebrm.cli._placement import DeviceMap, MaxMemory, OffloadFolder, placement
from ebrm.evaluation.names import DEFAULT_N_BOOT, DEFAULT_SEED, METRICS_FILE, BenchmarkName
from ebrm.refine.kinds import DEFAULT_REWARD
from ebrm.rm.names import DEFAULT_BATCH_SIZE, DEFAULT_ENGINE


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_(
        model: Annotated[Path, typer.Option("--model", help="Refined-model directory.")],
        benchmark: Annotated[BenchmarkName, typer.Option("--benchmark", help="Benchmark.")],
        data: DataSpec,
        out: OutDir,
        batch_size: BatchSize = DEFAULT_BATCH_SIZE,
        seed: Seed = DEFAULT_SEED,
        device: Device = None,
        device_map: DeviceMap = None,
        max_memory: MaxMemory = None,
        offload_folder: OffloadFolder = None,
        base_rm: BaseRM = None,
        reward: Annotated[str, reward_option("Which refined reward to evaluate.")] = DEFAULT_REWARD,
        limit: Annotated[
            int | None, typer.Option("--limit", min=1, help="Evaluate only the first N rows.")
        ] = None,
        n_boot: Annotated[
            int, typer.Option("--n-boot", min=100, help="Bootstrap replicates.")
        ] = DEFAULT_N_BOOT,
        plots: Annotated[bool, typer.Option(help="Write the PNG plots.")] = True,
        progress: Progress = True,
        overwrite: Overwrite = False,
        strict: Annotated[
            bool,
            typer.Option(
                "--strict",
                help="Refuse data whose prompts the model trained or validated on (default: "
                "warn with the count).",
            ),
        ] = False,
        features: ReuseFeatures = None,
        max_length: EmbedMaxLength = None,
        truncation_side: EmbedTruncationSide = None,
        engine: Engine = DEFAULT_ENGINE,
        threads: Threads = None,
    ) -> None:
        """Evaluate base vs refined rewards from one scoring pass: metrics.json, report.md,
        plots. Texts in --features are read from it, the others embedded once."""
        _checks.need(model, "--model", _checks.EBRM_MODEL)
        _engine.check(engine)
        device = _engine.device_for(engine, device)
        _checks.data_spec(data)
        if base_rm is not None:
            _checks.need(base_rm, "--base-rm", _checks.HF_MODEL)
        if features is not None:
            _checks.need(features, "--features", _checks.FEATURE_STORE)
        lock_output(out)
        _checks.output_dir(out, "--out", overwrite=overwrite, result_file=METRICS_FILE)
        settings = {"max_length": max_length, "truncation_side": truncation_side}
        check_inputs(model, features=features, base_rm=base_rm, **settings)
        where = placement(
            device=device, device_map=device_map, max_memory=max_memory,
            offload_folder=offload_folder,
        )  # fmt: skip
        from rich.console import Console

        from ebrm.cli._overlap import check_overlap
        from ebrm.cli._summary import print_summary
        from ebrm.evaluation import evaluate, get_benchmark
        from ebrm.model import EnergyRewardModel

        _runtime.use_threads(threads)
        erm = EnergyRewardModel.from_pretrained(model, device=device)
        rows = get_benchmark(benchmark).load(data, limit=limit)
        check_overlap(erm, rows, data=data, strict=strict)
        attach(
            erm, base_rm=base_rm, features=features, device=device, placement=where,
            **settings,
        )  # fmt: skip
        _engine.apply(erm.base_rm, engine)
        metrics = evaluate(
            erm, benchmark, rows, out, batch_size=batch_size, seed=seed, progress=progress,
            n_boot=n_boot, reward=reward, make_figures=plots, data_name=data,
        )  # fmt: skip
        console = Console()
        title = f"{benchmark}: {_checks.plural(metrics['n'], 'row')} of {data}"
        print_summary(console, metrics, title)
        console.print(f"report: {Path(out) / 'report.md'}")
