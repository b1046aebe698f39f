"""Hold out a test split by prompt: write TRAINVAL.jsonl and TEST.jsonl rows of a pairs file.

    python experiments/holdout.py ../shared/data/hh-rlhf-harmless/pairs.jsonl.gz runs/hh \
        [--test-fraction 0.25] [--seed 0]

The rows are copied as they are (any layout `ebrm` reads), split with
`ebrm.data.split_pairs` (pairs of one prompt stay on one side), so the Quick start flow can
train on `trainval.jsonl` (`ebrm train` holds out its own validation pairs from it) and
`ebrm eval` on `test.jsonl`, which no stage has seen.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from ebrm._io import atomic_write_text
from ebrm.data import load_pairs, split_pairs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a JSONL or JSONL.GZ file of preference pairs")
    ap.add_argument("out", type=Path, help="directory for trainval.jsonl and test.jsonl")
    ap.add_argument("--test-fraction", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    opener = gzip.open if args.data.suffix == ".gz" else open
    with opener(args.data, "rt", encoding="utf-8") as handle:
        rows = [line for line in handle if line.strip()]
    pairs = load_pairs(str(args.data))
    if len(pairs) != len(rows):
        raise SystemExit(f"{args.data}: {len(rows)} lines but {len(pairs)} pairs; one pair a line")
    row_of = {id(p): i for i, p in enumerate(pairs)}
    trainval, _, test = split_pairs(
        pairs, test_fraction=args.test_fraction, validation_fraction=0.0, seed=args.seed
    )
    for name, part in (("trainval", trainval), ("test", test)):
        text = "".join(json.dumps(json.loads(rows[row_of[id(p)]])) + "\n" for p in part)
        atomic_write_text(args.out / f"{name}.jsonl", text)
        print(f"{args.out / f'{name}.jsonl'}: {len(part)} pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
