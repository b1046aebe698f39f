"""Does a reward's std rise out of distribution? Two `ebrm score` files, in vs out.

    python experiments/std_shift.py IN.jsonl OUT.jsonl [--columns std spread laplace_std ...]

IN: scores of in-distribution responses (e.g. the held-out HH-RLHF test split's feature
store), OUT: of responses unlike the training data (e.g. RM-Bench's). Prints, per spread
column, the mean on each side and AUROC(std_out > std_in) with a bootstrap interval
(`ebrm.evaluation.uncertainty.std_shift`): 0.5 means the std does not tell them apart.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ebrm.evaluation.uncertainty import std_shift

COLUMNS = ("std", "spread", "laplace_std", "ensemble_std")


def _column(path: Path, name: str) -> list[float]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if rows and name not in rows[0]:
        raise SystemExit(f"{path}: no column {name!r} (columns: {', '.join(sorted(rows[0]))})")
    return [float(r[name]) for r in rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inside", type=Path, help="ebrm score JSONL of in-distribution responses")
    ap.add_argument("outside", type=Path, help="ebrm score JSONL of out-of-distribution ones")
    ap.add_argument("--columns", nargs="+", default=list(COLUMNS))
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args(argv)
    print("| spread | mean in | mean out | out / in | AUROC (out > in) [95% CI] | n in / out |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.columns:
        s = std_shift(_column(args.inside, name), _column(args.outside, name), n_boot=args.n_boot)
        lo, hi = s["auroc_ci95"]
        print(
            f"| {name} | {s['mean_in']:.3f} | {s['mean_out']:.3f} | {s['ratio']:.2f} | "
            f"{s['auroc']:.2f} [{lo:.2f}, {hi:.2f}] | {s['n_in']} / {s['n_out']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
