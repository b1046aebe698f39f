"""`ebrm bon`: best-of-n selection over candidate sets with any reward."""

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
    DeprecatedMode,
    Device,
    EmbedMaxLength,
    EmbedTruncationSide,
    Engine,
    Overwrite,
    ReuseFeatures,
    Threads,
    reward_option,
    reward_or_mode,
)
from ebrm.cli._placement import DeviceMap, MaxMemory, OffloadFolder, placement
from ebrm.refine.kinds import DEFAULT_REWARD
from ebrm.rm.names import DEFAULT_BATCH_SIZE, DEFAULT_ENGINE


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
        reward: Annotated[str, reward_option("Reward to rank by.")] = DEFAULT_REWARD,
        batch_size: BatchSize = DEFAULT_BATCH_SIZE,
        device: Device = None,
        device_map: DeviceMap = None,
        max_memory: MaxMemory = None,
        offload_folder: OffloadFolder = None,
        base_rm: BaseRM = None,
        overwrite: Overwrite = False,
        features: ReuseFeatures = None,
        max_length: EmbedMaxLength = None,
        truncation_side: EmbedTruncationSide = None,
        mode: DeprecatedMode = None,
        engine: Engine = DEFAULT_ENGINE,
        threads: Threads = None,
    ) -> None:
        """Pick the best candidate response per prompt (candidates in --features are read
        from it, the others embedded once)."""
        reward = reward_or_mode(reward, mode)
        _checks.need(model, "--model", _checks.EBRM_MODEL)
        _engine.check(engine)
        device = _engine.device_for(engine, device)
        _checks.input_file(candidates, "--candidates", "a JSONL file of prompts and candidates")
        if base_rm is not None:
            _checks.need(base_rm, "--base-rm", _checks.HF_MODEL)
        if features is not None:
            _checks.need(features, "--features", _checks.FEATURE_STORE)
        lock_output(out)
        _checks.output_file(out, "--out", overwrite=overwrite)
        settings = {"max_length": max_length, "truncation_side": truncation_side}
        check_inputs(model, features=features, base_rm=base_rm, **settings)
        where = placement(
            device=device, device_map=device_map, max_memory=max_memory,
            offload_folder=offload_folder,
        )  # fmt: skip

        from ebrm._progress import tqdm
        from ebrm.integrations.best_of_n import iter_candidates, write_best
        from ebrm.model import EnergyRewardModel

        # a first pass validates every row (errors before the model loads) and counts them
        prompts = total = 0
        for row in iter_candidates(candidates):
            prompts, total = prompts + 1, total + len(row["candidates"])
        _runtime.use_threads(threads)
        erm = EnergyRewardModel.from_pretrained(model, device=device)
        attach(
            erm, base_rm=base_rm, features=features, device=device, placement=where,
            **settings,
        )  # fmt: skip
        _engine.apply(erm.base_rm, engine)
        with tqdm(total=prompts, desc="bon", unit="prompt") as bar:
            write_best(
                out, erm, iter_candidates(candidates), reward=reward, batch_size=batch_size,
                on_row=lambda _row: bar.update(),
            )  # fmt: skip
        typer.echo(
            f"scored {_checks.plural(total, 'candidate')} of {_checks.plural(prompts, 'prompt')} "
            f"(reward {reward}); wrote {out}"
        )
