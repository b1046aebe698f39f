"""Peak memory of `ebrm eval --benchmark pairwise` and `ebrm bon` against the input size.

`bench_scale.py` measures the commands that read feature stores; these two embed texts
with a base RM, so they get their own script. A random one-layer Llama RM (hidden size
`--dim`, default 1024, the tokenizer of the tests' MiniLM) and a random energy head are
saved to disk; synthetic pairs (`pairwise`) and candidate files (4 candidates per prompt,
so the same number of texts as the pairs) are written at each size; each command runs as
its own subprocess and its peak RSS is read from the kernel (`os.wait4`). The slope is the
extra peak RSS per extra pair (per extra 2 candidates for `bon`), fitted over the sizes.

    python benchmarks/bench_stream.py                      # table
    python benchmarks/bench_stream.py --json               # one JSON object
    PYTHONPATH=/other/checkout/src python benchmarks/bench_stream.py   # another ebrm's code

Run from the repository root (it builds the models with `tests/tiny_models.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.tiny_models
from benchmarks.bench_scale import fit, measure  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CANDIDATES = 4  # per prompt in the bon files


def build_model(out: Path, dim: int) -> Path:
    """A random Llama RM of hidden size `dim` and a refined-model directory over it."""
    import torch
    from tests.tiny_models import minilm_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig

    from ebrm.energy.config import EnergyHeadConfig
    from ebrm.energy.head import EnergyHead
    from ebrm.energy.normalize import RewardNormalizer
    from ebrm.model import EnergyRewardModel
    from ebrm.refine.config import RefineConfig
    from ebrm.rm.adapter import BaseRewardModel

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = LlamaConfig(
        hidden_size=dim, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, num_labels=1,
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.sep_token_id, eos_token_id=tokenizer.sep_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).eval().save_pretrained(out / "rm")
    tokenizer.save_pretrained(out / "rm")
    rm = BaseRewardModel.from_pretrained(str(out / "rm"), device="cpu", max_length=64)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=dim, reward_widths=(8, 16),
                                       joint_widths=(32, 16)))  # fmt: skip
    _, rewards = rm.embed_texts([f"sample text number {i}" for i in range(64)])
    model = EnergyRewardModel(
        head, RewardNormalizer(scale=4.0).fit(rewards), RefineConfig(grid_size=64),
        rm.provenance(), {},
    )  # fmt: skip
    return model.save_pretrained(out / "model")


def write_inputs(folder: Path, pairs: int) -> tuple[Path, Path]:
    """`pairs` prompt/chosen/rejected rows and pairs * 2 / CANDIDATES candidate rows."""
    pair_file, bon_file = folder / f"pairs-{pairs}.jsonl", folder / f"bon-{pairs}.jsonl"
    with pair_file.open("w") as handle:
        for i in range(pairs):
            row = {
                "prompt": f"question {i} about topic {i % 97}",
                "chosen": f"a good answer {i} " * (1 + i % 4),
                "rejected": f"bad {i}",
            }
            handle.write(json.dumps(row) + "\n")  # fmt: skip
    with bon_file.open("w") as handle:
        for i in range(pairs * 2 // CANDIDATES):
            cands = [f"candidate {c} for {i} " * (1 + (i + c) % 4) for c in range(CANDIDATES)]
            handle.write(json.dumps({"prompt": f"question {i}", "candidates": cands}) + "\n")
    return pair_file, bon_file


def run(args) -> dict:
    ebrm = [sys.executable, "-m", "ebrm"]
    results = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        model = build_model(tmp, args.dim)
        print(f"models built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        for pairs in args.pairs:
            pair_file, bon_file = write_inputs(tmp, pairs)
            entry = {"pairs": pairs, "texts": 2 * pairs}
            common = ["--model", str(model), "--device", "cpu", "--batch-size", "32"]
            entry["eval"] = measure(
                [*ebrm, "eval", *common, "--benchmark", "pairwise", "--data", str(pair_file),
                 "--out", str(tmp / f"eval-{pairs}"), "--no-progress", "--no-plots"],
                tmp / "eval.log",
            )  # fmt: skip
            entry["bon"] = measure(
                [*ebrm, "bon", *common, "--candidates", str(bon_file),
                 "--out", str(tmp / f"bon-{pairs}.out.jsonl")],
                tmp / "bon.log",
            )  # fmt: skip
            results.append(entry)
            print(_row(entry), file=sys.stderr, flush=True)
    fits = {}
    for command in ("eval", "bon"):
        slope, intercept = fit([(r["pairs"], r[command]["peak_rss"]) for r in results])
        fits[command] = {"bytes_per_pair": round(slope), "intercept_mb": round(intercept / 1e6)}
    return {"results": results, "fits": fits, "dim": args.dim}


def _row(entry: dict) -> str:
    cells = [f"{entry['pairs']:>7}", f"{entry['texts']:>7}"]
    for command in ("eval", "bon"):
        m = entry[command]
        cells.append(f"{m['peak_rss'] / 1e6:8.0f} {m['cpu_s']:7.1f}")
    return " | ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    parser.add_argument("--pairs", type=sizes, default=[2000, 8000], help="input sizes (pairs)")
    parser.add_argument("--dim", type=int, default=1024, help="the base RM's hidden size")
    parser.add_argument("--workdir", default=None, help="where models and inputs are written")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    print(" | ".join(["  pairs", "  texts", "    eval MB / CPU s", "     bon MB / CPU s"]))
    for entry in report["results"]:
        print(_row(entry))
    print(f"\nextra peak RSS per extra pair (d = {args.dim}; bon: per 2 extra candidates):")
    for command, f in report["fits"].items():
        print(f"  {command:<5} {f['bytes_per_pair']:>8} bytes/pair  "
              f"(intercept {f['intercept_mb']} MB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
