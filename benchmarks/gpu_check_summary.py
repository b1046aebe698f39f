"""Helpers of `benchmarks/gpu_check.sh`: test data, the 2-process extraction, the summary.

python benchmarks/gpu_check_summary.py data-spec SCRATCH_DIR   # HH-RLHF, else synthetic
python benchmarks/gpu_check_summary.py accelerate-extract RM_DIR STORE_DIR [--dtype D]
python benchmarks/gpu_check_summary.py summarise OUT_DIR      # prints summary.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EBRM_SHARED_DATA", ROOT.parent / "shared" / "data"))
HH = SHARED / "hh-rlhf-harmless" / "pairs.jsonl.gz"


def make_data(out: Path, pairs: int, *, seed: int = 0) -> Path:
    """Synthetic prompt/chosen/rejected pairs with HH-RLHF-like lengths (20-300 words)."""
    rng = random.Random(seed)
    words = ["the", "a", "reward", "model", "answer", "question", "helpful", "when", "which"]
    with out.open("w") as fh:
        for i in range(pairs):
            prompt = f"Question {i}: " + " ".join(rng.choices(words, k=rng.randint(5, 60)))
            chosen, rejected = (
                " ".join(rng.choices(words, k=rng.randint(20, 300))) for _ in range(2)
            )
            fh.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")
    return out


def data_spec(scratch: Path) -> str:
    """The shared HH-RLHF pairs when present, else synthetic pairs written to `scratch`."""
    if HH.exists():
        return str(HH)
    return str(make_data(scratch / "pairs.jsonl", 256))


def accelerate_extract(rm: Path, store: Path, *, dtype: str, pairs: int = 256) -> dict:
    """`ebrm extract` on 2 processes under `accelerate launch` (one GPU each), timed."""
    store.parent.mkdir(parents=True, exist_ok=True)
    data = data_spec(store.parent)
    cmd = [
        "accelerate", "launch", "--multi_gpu", "--num_processes", "2",
        "-m", "ebrm", "extract", "--rm", str(rm), "--data", data, "--out", str(store),
        "--dtype", dtype, "--limit", str(pairs), "--max-length", "512", "--overwrite",
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
    manifest = store / "manifest.json"
    rows = json.loads(manifest.read_text()).get("num_rows") if manifest.exists() else None
    return {
        "returncode": proc.returncode,
        "seconds": round(seconds, 2),
        "rows": rows,
        "rows_per_s": round(rows / seconds, 2) if rows else None,
        "processes": 2,
        "data": data,
    }


def _json_from(path: Path) -> dict | None:
    """The last line of a step's output that parses as a JSON object."""
    if not path.exists():
        return None
    for line in reversed(path.read_text().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def summarise(out: Path) -> dict:
    """Every step's exit status and time, and the headline numbers of each benchmark."""
    steps = {}
    for line in (out / "steps.tsv").read_text().splitlines():
        name, rc, seconds, limit = line.split("\t")
        steps[name] = {"exit": int(rc), "seconds": round(float(seconds), 1), "limit_s": int(limit)}
    result: dict = {"steps": steps, "environment": _json_from(out / "env.out")}
    tests = (out / "cuda_tests.out").read_text().strip().splitlines() if steps else []
    result["cuda_tests"] = tests[-1] if tests else None
    result["rm"] = _json_from(out / "make_rm.out")
    energy = _json_from(out / "bench_energy.out")
    if energy:
        result["energy"] = {
            **{k: energy.get(k) for k in ("refine_grid_s", "refine_paper_s",
                                          "refine_paper_published_s", "refine_grid_bf16_s",
                                          "train_step_s", "train_step_naive_s", "peak_gpu_mb")},
            "grid_vs_published_loop": energy["refine_paper_published_s"] / energy["refine_grid_s"],
            "grid_vs_paper_mode": energy["refine_paper_s"] / energy["refine_grid_s"],
            "train_step_speedup": energy["train_step_naive_s"] / energy["train_step_s"],
        }  # fmt: skip
    extract = _json_from(out / "bench_extract.out")
    if extract:
        keys = ("forward_texts_per_s", "extract_texts_per_s", "extract_vs_forward",
                "sorted_speedup", "mean_tokens", "peak_gpu_mb", "dtype", "device")  # fmt: skip
        result["extract"] = {k: extract.get(k) for k in keys}
    server = _json_from(out / "bench_server.out")
    if server:
        result["server"] = {
            name: {
                "batched_rps": r["batched"]["throughput_rps"],
                "unbatched_rps": r["unbatched"]["throughput_rps"],
                "throughput_ratio": r["throughput_ratio"],
                "refinement_overhead_pct": r["refinement"]["overhead_pct"],
                "refine_ms_per_response": r["refinement"]["refine_ms_per_response_by_grid_size"],
                "peak_gpu_mb": r["refinement"].get("peak_gpu_mb"),
                "p50_ms": r["batched"]["p50_ms"],
                "p99_ms": r["batched"]["p99_ms"],
            }
            for name, r in server["texts"].items()
        }
    result["accelerate_extract"] = _json_from(out / "accelerate_extract.out")
    engines = _json_from(out / "bench_engines.out")  # absent where vllm is not importable
    if engines:
        result["engines"] = {
            "ratio_vllm_over_transformers": engines.get("ratio_vllm_over_transformers"),
            **{name: {"load_s": r["extraction"]["load_s"],
                      "extract_texts_per_s": r["extraction"]["texts_per_s"],
                      **{k: r["serving"][k] for k in ("responses_per_s", "p50_ms", "p99_ms")}}
               for name, r in engines["engines"].items()},
        }  # fmt: skip
    result["ok"] = bool(steps) and all(s["exit"] == 0 for s in steps.values())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data-spec")
    data.add_argument("scratch", type=Path)
    acc = sub.add_parser("accelerate-extract")
    acc.add_argument("rm", type=Path)
    acc.add_argument("store", type=Path)
    acc.add_argument("--dtype", default="bfloat16")
    summary = sub.add_parser("summarise")
    summary.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "data-spec":
        args.scratch.mkdir(parents=True, exist_ok=True)
        print(data_spec(args.scratch))
    elif args.command == "accelerate-extract":
        result = accelerate_extract(args.rm, args.store, dtype=args.dtype)
        print(json.dumps(result))
        return 0 if result["returncode"] == 0 else 1
    else:
        print(json.dumps(summarise(args.out), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
