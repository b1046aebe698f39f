"""`ebrm overopt`: reward over-optimisation curves (gold reward vs KL and vs n)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm.cli import _checks
from ebrm.cli._options import (
    BatchSize,
    DataSpec,
    Device,
    MaxLength,
    OutDir,
    Overwrite,
    Seed,
    fraction,
)


def register(app: typer.Typer) -> None:
    @app.command()
    def overopt(
        data: DataSpec,
        out: OutDir,
        gold: Annotated[
            Path | None, typer.Option("--gold", help="Gold HF reward-model dir (default: trained).")
        ] = None,
        proxy: Annotated[
            Path | None,
            typer.Option("--proxy", help="Proxy HF reward-model dir (default: trained)."),
        ] = None,
        ebrm: Annotated[
            Path | None,
            typer.Option("--ebrm", help="Refined-model dir on the proxy (default: trained)."),
        ] = None,
        prompts: Annotated[
            int, typer.Option("--prompts", min=1, help="Prompts in the pool.")
        ] = 200,
        candidates: Annotated[
            int, typer.Option("--candidates", min=2, help="Candidates per prompt.")
        ] = 32,
        label_noise: Annotated[
            float,
            typer.Option(
                "--label-noise", callback=fraction, help="Share of the proxy's labels flipped."
            ),
        ] = 0.25,
        proxy_fraction: Annotated[
            float, typer.Option("--proxy-fraction", help="Share of pairs the proxy trains on.")
        ] = 0.5,
        conservative_k: Annotated[
            float, typer.Option("--conservative-k", help="Conservative reward: mean - k*std.")
        ] = 1.0,
        gold_finetune: Annotated[
            bool, typer.Option("--gold-finetune", help="Fine-tune the gold RM fully (slow).")
        ] = False,
        seed: Seed = 0,
        max_length: MaxLength = 128,
        batch_size: BatchSize = 32,
        device: Device = None,
        overwrite: Overwrite = False,
    ) -> None:
        """Gold reward of best-of-n and KL-regularised policies optimising proxy rewards.

        Without --gold/--proxy/--ebrm it trains them on --data with one frozen MiniLM
        encoder: gold = BT head on all pairs, proxy = BT head on --proxy-fraction of them
        with --label-noise flipped labels, EBRM = energy head on the proxy's pairs.
        Writes overopt_curves.json and overopt.png into --out.
        """
        _checks.data_spec(data)
        for flag, path, kind in (
            ("--gold", gold, _checks.HF_MODEL),
            ("--proxy", proxy, _checks.HF_MODEL),
            ("--ebrm", ebrm, _checks.EBRM_MODEL),
        ):
            if path is not None:
                _checks.need(path, flag, kind)
        _checks.output_dir(out, "--out", overwrite=overwrite, result_file="overopt_curves.json")

        from ebrm.data import load_pairs
        from ebrm.overopt import OveroptConfig, run_overopt

        config = OveroptConfig(
            num_prompts=prompts, num_candidates=candidates, seed=seed,
            proxy_fraction=proxy_fraction, label_noise=label_noise,
            conservative_k=conservative_k, max_length=max_length, gold_finetune=gold_finetune,
            batch_size=batch_size, device=device,
        )  # fmt: skip
        pairs = load_pairs(data)
        result = run_overopt(pairs, out, gold=gold, proxy=proxy, ebrm=ebrm, config=config,
                             data_name=data)  # fmt: skip
        for name, curve in result["curves"].items():
            for kind, s in curve["summary"].items():
                peak, last = s["peak"], s["at_max_kl"]
                typer.echo(
                    f"{name:>12} {kind:<15} start {s['start']:+.3f}  peak {peak['gold']:+.3f} "
                    f"at KL {peak['kl']:.2f}  at max KL {last['kl']:.2f}: {last['gold']:+.3f}"
                )
        typer.echo(f"wrote {out / 'overopt_curves.json'} and {out / 'overopt.png'}")
