"""Does the energy head's reported spread depend on the grid? std vs spread, grid x1 and x2.

    python experiments/spread_vs_grid.py --model runs/ebrm --features runs/features [--rows 1500]

Evaluates the posterior of the first ROWS responses on the model's grid and on a grid of
twice its range (same spacing), and prints the median std and spread on each and the
largest change per response. The std of a head whose f flattens far from the data grows
with the grid (a floor of mass over the whole range); the spread (`half_width`) should not.
"""

from __future__ import annotations

import argparse

import torch

from ebrm.features import load_features
from ebrm.model import EnergyRewardModel
from ebrm.refine.grid import grid_posterior


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--features", required=True)
    ap.add_argument("--rows", type=int, default=1500)
    args = ap.parse_args(argv)
    model = EnergyRewardModel.from_pretrained(args.model)
    emb = load_features(args.features).embeddings[: args.rows]
    cfg = model.refine_config
    lo, hi, size = cfg.grid_min, cfg.grid_max, cfg.grid_size
    step = (hi - lo) / (size - 1)
    extra = (size - 1) // 2  # half the range again on each side: twice the range
    grids = {
        "x1": cfg.grid(),
        "x2": torch.linspace(lo - extra * step, hi + extra * step, size + 2 * extra),
    }
    post = {k: grid_posterior(model.head, emb, grid=g) for k, g in grids.items()}
    print(f"{len(emb)} responses; grid x1 = [{lo:.2f}, {hi:.2f}] ({size} points)")
    print("| grid | median std | median spread | median (q95 - q05) / std |")
    print("| --- | --- | --- | --- |")
    for k, p in post.items():
        ratio = ((p.q95 - p.q05) / p.std).median()
        print(f"| {k} | {p.std.median():.3f} | {p.spread.median():.3f} | {ratio:.2f} |")
    for name in ("std", "spread", "mean"):
        change = (getattr(post["x2"], name) - getattr(post["x1"], name)).abs().max()
        print(f"largest change of {name} per response: {change:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
