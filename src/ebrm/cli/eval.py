"""`ebrm eval`: base vs refined on a benchmark; writes metrics.json, report.md and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm.cli._options import BatchSize, DataSpec, Device, OutDir, Seed


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_(
        model: Annotated[Path, typer.Option("--model", help="Refined-model directory.")],
        benchmark: Annotated[
            str,
            typer.Option("--benchmark", help="pairwise, rm-bench, reward-bench or reward-bench-2."),
        ],
        data: DataSpec,
        out: OutDir,
        batch_size: BatchSize = 16,
        seed: Seed = 0,
        device: Device = None,
        base_rm: Annotated[
            Path | None,
            typer.Option("--base-rm", help="Base RM to use instead of the recorded path."),
        ] = None,
        reward: Annotated[
            str,
            typer.Option(
                "--reward", help="Refined reward: refined, mean, mode, median or conservative."
            ),
        ] = "refined",
        limit: Annotated[
            int | None, typer.Option("--limit", min=1, help="Evaluate only the first N rows.")
        ] = None,
        n_boot: Annotated[
            int, typer.Option("--n-boot", min=100, help="Bootstrap replicates.")
        ] = 2000,
        plots: Annotated[bool, typer.Option(help="Write the PNG plots.")] = True,
        progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    ) -> None:
        """Evaluate base vs refined rewards from one scoring pass (DESIGN §4)."""
        from rich.console import Console
        from rich.table import Table

        from ebrm.errors import ConfigError
        from ebrm.evaluation import BENCHMARKS, evaluate, summary_header, summary_rows
        from ebrm.model import EnergyRewardModel

        if benchmark not in BENCHMARKS:
            raise ConfigError(
                f"--benchmark {benchmark!r} is not supported; use one of {', '.join(BENCHMARKS)}"
            )
        erm = EnergyRewardModel.from_pretrained(model, device=device)
        if base_rm is not None:
            from ebrm.rm.adapter import BaseRewardModel

            info = erm.base_rm_info
            erm.attach_base_rm(
                BaseRewardModel.from_pretrained(
                    str(base_rm),
                    device=device,
                    dtype=info.get("dtype", "float32"),
                    max_length=info.get("max_length", 1024),
                    truncation_side=info.get("truncation_side", "left"),
                )
            )
        metrics = evaluate(
            erm, benchmark, data, out, batch_size=batch_size, seed=seed, progress=progress,
            n_boot=n_boot, limit=limit, kind=reward, make_figures=plots,
        )  # fmt: skip
        table = Table(title=f"{benchmark}: {metrics['n']} rows of {data}")
        for column in summary_header(metrics):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for row in summary_rows(metrics):
            table.add_row(*row)
        console = Console()
        console.print(table)
        console.print(metrics["delta"]["verdict"])
        console.print(f"report: {Path(out) / 'report.md'}")
