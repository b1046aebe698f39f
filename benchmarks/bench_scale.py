"""Peak memory and CPU time of the commands against the size of the feature store.

Synthetic fp16 stores are built through the public API (`extract_features` with a fast
stand-in RM: a seeded random vector per text, reward = a fixed linear read-out plus a label
signal) at three sizes (default 16k, 32k, 64k rows, d = 1024) and d = 4096 at the smallest.
Each command runs as its own subprocess, and its peak RSS and CPU time are read from the
kernel (`os.wait4`): extraction, `ebrm train` with and without references (without them only
when this ebrm has `--no-references`), `ebrm score`. Per command, the slope of peak RSS
against the store's bytes on disk is fitted over the d = 1024 stores and extrapolated to
1M rows x 4096 fp16, with the intercept taken from the d = 4096 store (the head's first
layer grows with d), and compared with a 24 GB machine.

    python benchmarks/bench_scale.py                       # table
    python benchmarks/bench_scale.py --json                # one JSON object
    PYTHONPATH=/other/checkout/src python benchmarks/bench_scale.py   # another ebrm's code

The subprocesses inherit the environment, so PYTHONPATH chooses the ebrm that is measured.
`ebrm eval` and `ebrm bon` embed texts with a base RM: `bench_stream.py` measures them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

GB = 1e9
TARGET_ROWS, TARGET_DIM = 1_000_000, 4096  # the extrapolation: 1M texts x 4096, fp16
MACHINE_BYTES = 24 * GB


class StandInRM:
    """A base RM for extraction that costs almost nothing: a seeded vector per text."""

    def __init__(self, dim: int) -> None:
        self.hidden_size = dim
        self.max_length = 64
        self.truncation_side = "left"
        self.weights_hash = f"stand-in-{dim}"
        self.readout = np.random.default_rng(0).standard_normal(dim).astype(np.float32)

    def format(self, conv) -> str:
        return " | ".join(f"{r}: {c}" for r, c in conv.messages) + f" || {conv.response}"

    def embed_texts(self, texts, *, batch_size=16, progress=False):
        import torch

        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).standard_normal(self.hidden_size, np.float32))
        emb = np.stack(rows)  # (n, D)
        signal = np.array([1.0 if "good" in t else -1.0 for t in texts], np.float32)
        reward = emb @ self.readout / np.sqrt(self.hidden_size) + signal
        return torch.from_numpy(emb), torch.from_numpy(reward)

    def provenance(self) -> dict:
        return {
            "name_or_path": "stand-in", "revision": None, "weights_hash": self.weights_hash,
            "hidden_size": self.hidden_size, "dtype": "float32", "max_length": self.max_length,
            "truncation_side": self.truncation_side, "model_type": "stand-in",
        }  # fmt: skip


def build_store(rows: int, dim: int, out: Path) -> None:
    """`rows` unique responses (rows / 2 pairs, one prompt each) into an fp16 store."""
    from ebrm.data.types import Conversation, PreferencePair
    from ebrm.features import extract_features

    pairs = [
        PreferencePair(
            Conversation.from_prompt(f"question {i}", f"good answer {i}"),
            Conversation.from_prompt(f"question {i}", f"bad answer {i}"),
            id=f"pair-{i}",
        )
        for i in range(rows // 2)
    ]
    extract_features(
        StandInRM(dim), pairs, out, batch_size=256, storage_dtype="float16", progress=False,
        checkpoint_seconds=None,
    )  # fmt: skip


def measure(argv: list[str], log: Path) -> dict:
    """Run `argv`; its peak RSS (bytes), CPU and wall seconds, from the kernel's accounting."""
    started = time.perf_counter()
    with log.open("w") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        tail = log.read_text()[-2000:]
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")
    return {
        "peak_rss": usage.ru_maxrss * 1024,  # kilobytes on Linux
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "wall_s": round(time.perf_counter() - started, 2),
    }


def store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def has_flag(command: str, flag: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "ebrm", command, "--help"], capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    return flag in out.stdout


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through (x, y) points."""
    x, y = np.array(points, dtype=np.float64).T
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def run(args) -> dict:
    ebrm = [sys.executable, "-m", "ebrm"]
    no_refs = has_flag("train", "--no-references")
    configs = [(rows, args.dim) for rows in args.rows] + [(min(args.rows), args.big_dim)]
    results = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        for rows, dim in configs:
            store, model = tmp / f"store-{rows}-{dim}", tmp / f"model-{rows}-{dim}"
            entry = {"rows": rows, "dim": dim}
            entry["extract"] = measure(
                [sys.executable, __file__, "--build", str(rows), str(dim), str(store)],
                tmp / "extract.log",
            )
            entry["store_bytes"] = store_bytes(store)
            train = [*ebrm, "train", "--features", str(store), "--steps", str(args.steps),
                     "--seed", "0", "--no-progress", "--overwrite"]  # fmt: skip
            if "train" in args.commands:
                entry["train"] = measure([*train, "--out", str(model)], tmp / "train.log")
            if no_refs and "train-no-refs" in args.commands:
                entry["train-no-refs"] = measure(
                    [*train, "--no-references", "--out", str(tmp / "model-norefs")],
                    tmp / "train-norefs.log",
                )
            if "score" in args.commands and (model / "config.json").exists():
                entry["score"] = measure(
                    [*ebrm, "score", "--model", str(model), "--features", str(store),
                     "--out", str(tmp / "scores.jsonl"), "--no-progress", "--overwrite"],
                    tmp / "score.log",
                )  # fmt: skip
            results.append(entry)
            print(_row(entry), file=sys.stderr, flush=True)
            for path in (store, model):
                subprocess.run(["rm", "-rf", str(path)], check=True)
    return {"results": results, "fits": _fits(results, args), "no_references_flag": no_refs,
            "steps": args.steps}  # fmt: skip


def _fits(results: list[dict], args) -> dict:
    target_bytes = TARGET_ROWS * TARGET_DIM * 2  # fp16 embeddings dominate the store
    fits = {}
    small = [r for r in results if r["dim"] == args.dim]
    big = [r for r in results if r["dim"] == args.big_dim]
    for command in ("extract", "train", "train-no-refs", "score"):
        points = [(r["store_bytes"], r[command]["peak_rss"]) for r in small if command in r]
        if len(points) < 2:
            continue
        slope, intercept = fit(points)
        if big and command in big[0]:  # the intercept at d = 4096
            intercept = big[0][command]["peak_rss"] - slope * big[0]["store_bytes"]
        peak = intercept + slope * target_bytes
        fits[command] = {
            "slope": round(slope, 3),
            "intercept_gb": round(intercept / GB, 3),
            "peak_1m_x_4096_gb": round(peak / GB, 2),
            "fits_24gb": bool(peak < MACHINE_BYTES),
            "rows_that_fit_24gb_at_4096": (
                int((MACHINE_BYTES - intercept) / slope / (TARGET_DIM * 2)) if slope > 0 else None
            ),
        }
    return fits


def _row(entry: dict) -> str:
    cells = [f"{entry['rows']:>7}", f"{entry['dim']:>5}", f"{entry['store_bytes'] / 1e6:8.1f}"]
    for command in ("extract", "train", "train-no-refs", "score"):
        m = entry.get(command)
        cells.append(f"{m['peak_rss'] / 1e6:8.0f} {m['cpu_s']:7.1f}" if m else f"{'-':>8} {'-':>7}")
    return " | ".join(cells)


def print_table(report: dict) -> None:
    head = ["   rows", "    d", "store MB"] + [
        f"{c[:8]:>8} MB / CPU s" for c in ("extract", "train", "train-no-refs", "score")
    ]
    print(" | ".join(head))
    for entry in report["results"]:
        print(_row(entry))
    store = TARGET_ROWS * TARGET_DIM * 2 / GB
    print(f"\nextra peak RSS per extra store byte (smaller d), extrapolated to 1M x 4096 fp16 "
          f"({store:.1f} GB store) against a 24 GB machine:")  # fmt: skip
    for command, f in report["fits"].items():
        print(f"  {command:<14} slope {f['slope']:6.2f}  peak {f['peak_1m_x_4096_gb']:7.1f} GB  "
              f"{'fits' if f['fits_24gb'] else 'does NOT fit'}; up to "
              f"{f['rows_that_fit_24gb_at_4096']} rows at d = 4096")  # fmt: skip
    if not report["no_references_flag"]:
        print("  (this ebrm has no `ebrm train --no-references`: train is measured with them)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    parser.add_argument("--rows", type=sizes, default=[16384, 32768, 65536],
                        help="store sizes at --dim (rows)")  # fmt: skip
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--big-dim", type=int, default=4096, help="d of the smallest store too")
    parser.add_argument("--steps", type=int, default=100, help="ebrm train --steps")
    parser.add_argument("--commands", type=lambda s: s.split(","),
                        default=["train", "train-no-refs", "score"])  # fmt: skip
    parser.add_argument("--workdir", default=None, help="where the stores are written")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--build", nargs=3, help=argparse.SUPPRESS)  # ROWS DIM OUT (internal)
    args = parser.parse_args(argv)
    if args.build:
        build_store(int(args.build[0]), int(args.build[1]), Path(args.build[2]))
        return 0
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
