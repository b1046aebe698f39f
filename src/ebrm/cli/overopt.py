"""`ebrm overopt`: reward over-optimisation of noisy proxies, and what each reward does about it."""

from __future__ import annotations

from typing import Annotated

import typer

from ebrm._config import default
from ebrm.cli import _checks
from ebrm.cli._options import BatchSize, Device, OutDir, Overwrite, Seed
from ebrm.overopt.config import OveroptConfig


def _d(name: str):
    return default(OveroptConfig, name)


def register(app: typer.Typer) -> None:
    @app.command()
    def overopt(
        data: Annotated[
            list[str],
            typer.Option(
                "--data",
                help="Preference data (repeat for several): every response "
                "becomes a candidate; local file/dir or hf:NAME.",
            ),
        ],  # fmt: skip
        out: OutDir,
        prompts: Annotated[int, typer.Option("--prompts", min=1, help="Pool prompts.")] = _d(
            "num_prompts"
        ),
        candidates: Annotated[
            int, typer.Option("--candidates", min=2, help="Candidates per prompt (K; n <= K).")
        ] = _d("num_candidates"),
        edited: Annotated[
            int, typer.Option("--edited", min=0, help="Responses also rewritten by every edit.")
        ] = _d("edited"),
        label_noise: Annotated[
            list[float] | None,
            typer.Option(
                "--label-noise",
                help="Proxy label-noise level (repeat: one regime each; default 0.25 and 0.40).",
            ),
        ] = None,  # fmt: skip
        proxy_fraction: Annotated[
            float, typer.Option("--proxy-fraction", help="Share of non-pool pairs per proxy.")
        ] = _d("proxy_fraction"),
        conservative_k: Annotated[
            float, typer.Option("--conservative-k", help="EBRM mean-k*spread, refs mean-k*std.")
        ] = _d("conservative_k"),
        references: Annotated[
            bool, typer.Option("--references/--no-references", help="Laplace and ensemble.")
        ] = _d("references"),
        gold_hidden: Annotated[
            int,
            typer.Option("--gold-hidden", min=0, help="Gold's hidden tanh units (0: linear)."),
        ] = _d("gold_hidden"),
        ascent: Annotated[
            bool,
            typer.Option("--ascent/--no-ascent", help="Also the embedding-space policy."),
        ] = _d("ascent"),
        max_angle: Annotated[
            float,
            typer.Option("--max-angle", help="Its largest angle budget [rad] (0 < a < pi)."),
        ] = _d("ascent_max_angle"),
        encoder: Annotated[
            str | None, typer.Option("--encoder", help="Frozen encoder (default: MiniLM-L6).")
        ] = None,
        max_length: Annotated[
            int, typer.Option("--max-length", min=8, help="Tokens per response.")
        ] = _d("max_length"),
        seed: Seed = _d("seed"),
        batch_size: BatchSize = _d("batch_size"),
        device: Device = None,
        overwrite: Overwrite = False,
    ) -> None:
        """Gold reward of best-of-n, KL-regularised and policy-gradient policies optimising
        noisy proxies (base, EBRM refined and conservative, Laplace and ensemble references).

        Gold = a BT head (an MLP of --gold-hidden units) on a frozen encoder trained on all
        pairs with clean labels; each regime's proxy = a linear BT head on --proxy-fraction
        of the pairs (no pool prompt) with --label-noise of its labels flipped. Per noise
        level two regimes: pools of real and edited responses, and (--ascent) gradient
        ascent on each proxy in the encoder's embedding space under an angle budget. Writes
        overopt_summary.json, overopt_curves.json and one figure per regime into --out.
        """
        for spec in data:
            _checks.data_spec(spec)
        _checks.output_dir(out, "--out", overwrite=overwrite, result_file="overopt_summary.json")

        noise = tuple(label_noise) if label_noise else _d("label_noise")
        flags = {"num_prompts": "--prompts", "num_candidates": "--candidates",
                 "label_noise": "--label-noise", "proxy_fraction": "--proxy-fraction",
                 "ascent_max_angle": "--max-angle"}  # fmt: skip
        with _checks.flag_names(flags):
            config = OveroptConfig(
                num_prompts=prompts, num_candidates=candidates, edited=edited,
                label_noise=noise, proxy_fraction=proxy_fraction, conservative_k=conservative_k,
                references=references, max_length=max_length, seed=seed,
                gold_hidden=gold_hidden, ascent=ascent, ascent_max_angle=max_angle,
                batch_size=batch_size, device=device,
            )  # fmt: skip
        from ebrm.data import load_pairs
        from ebrm.overopt import run_overopt

        pairs = [p for spec in data for p in load_pairs(spec)]
        summary = run_overopt(pairs, out, encoder=encoder, config=config,
                              data_name=" + ".join(data))  # fmt: skip
        for name, regime in summary["regimes"].items():
            policy = regime.get("policy", "kl_regularised")
            unit = "angle" if policy == "embedding_ascent" else "KL"
            typer.echo(f"regime {name} (proxy label noise {regime['label_noise']:.2f}), "
                       f"{policy.replace('_', ' ')} (gold vs {unit}):")  # fmt: skip
            for proxy, s in regime["proxies"].items():
                typer.echo(
                    f"  {proxy:>22}: peak {s['gold_peak']:+.4f} at {unit} "
                    f"{s['kl_at_peak']:.2f}, at {unit} {s['max_kl']:.2f} "
                    f"{s['gold_at_max_kl']:+.4f}, drop {s['drop_from_peak']:.4f} ± "
                    f"{s['drop_from_peak_se']:.4f}"
                )
            for diff, d in regime["paired_at_max_kl"].items():
                k = d[policy]
                typer.echo(f"  {diff:>34} at {unit} {k['kl']:.2f}: {k['mean']:+.4f} "
                           f"[{k['ci95'][0]:+.4f}, {k['ci95'][1]:+.4f}]")  # fmt: skip
        typer.echo(f"wrote {out / 'overopt_summary.json'} ({summary['seconds']['total']:.0f} s)")
