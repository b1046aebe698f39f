"""Soak test of the reward server: many concurrent loopback clients for a long time.

Starts `ebrm serve` (with a bearer token) in a subprocess, then N concurrent clients send
`/score` (1-4 items) and OpenRLHF `/get_reward` requests back to back for --duration
seconds, with a mix of ordinary and odd texts (RTL, NUL, emoji, lone surrogates, very long).
Every response is checked: status 200, one finite reward per item, and the same text always
gets the same reward (within 1e-3, whatever batch it was scored in). The server's RSS is
sampled every second: the growth from the end of the warm-up to the end of the run must stay
under --rss-bound-mb. At the end SIGTERM must stop the server cleanly.

Without --model it builds a tiny random refined model (tests/tiny_models.py), which makes
requests cheap, so the server machinery (queue, batching, connections, metrics) is what
gets soaked. Exit status 1 when any check fails.

    python benchmarks/soak_server.py --clients 64 --duration 60 [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
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
TOKEN = "soak-token"
ODD = [
    "",
    "a\x00b",
    "\u202eevil\u202c",
    "שלום مرحبا",
    "🙂👩‍👩‍👧‍👦",
    "x\ud800y",
    "e\u0301\u0302" * 30,
    "<|im_end|></s>",
    "long " * 3000,
]


def texts(seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = [
        "the",
        "a",
        "reward",
        "model",
        "scores",
        "every",
        "answer",
        "to",
        "a",
        "question",
        "about",
        "cats",
        "and",
        "rain",
    ]
    plain = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 40))) for _ in range(200)]
    return plain + ODD


def build_tiny_model(out: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.integrations.tiny_ebrm import make_tiny_ebrm
    from tests.tiny_models import make_tiny_rm

    rm_dir = make_tiny_rm(out / "tiny-rm", "llama", seed=0)
    return make_tiny_ebrm(out / "model", rm_dir)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_argv(model: Path, port: int, token: str = TOKEN) -> list[str]:
    return [
        "serve", "--model", str(model), "--port", str(port), "--token", token,
        "--device", "cpu", "--max-wait-ms", "2",
    ]  # fmt: skip


def start_server(model: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ebrm", *serve_argv(model, port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return proc, f"http://127.0.0.1:{port}"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_healthy(url: str, *, timeout: float = 180.0, alive=lambda: True) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if not alive():
            raise RuntimeError("the server exited before it was ready")
        try:
            resp = httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {TOKEN}"})
            if resp.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server at {url} did not become healthy in {timeout:.0f} s")


async def drive(
    url: str, pid: int, *, clients: int, duration: float, warmup: float, seed: int = 0
) -> dict:
    """Run the clients; returns counts, latency, RSS samples and every failure seen."""
    import httpx

    pool = texts(seed)
    seen: dict[tuple[str, str], float] = {}
    stats = {"requests": 0, "items": 0, "errors": 0, "mismatches": 0, "by_route": {}}
    failures: list[str] = []
    latencies: list[float] = []
    samples: list[tuple[float, float]] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    start = time.perf_counter()
    end = start + warmup + duration

    def fail(message: str) -> None:
        stats["errors"] += 1
        if len(failures) < 20:
            failures.append(message)

    def check_reward(prompt: str, response: str, reward) -> None:
        if reward is None or not math.isfinite(reward):
            fail(f"non-finite reward {reward!r}")
            return
        key = (prompt, response)
        if key in seen and abs(seen[key] - reward) > 1e-3:
            stats["mismatches"] += 1
            fail(f"reward of {key!r:.60} changed: {seen[key]} then {reward}")
        seen.setdefault(key, reward)

    async def worker(client, rng: random.Random) -> None:
        while time.perf_counter() < end:
            n = rng.randint(1, 4)
            items = [(rng.choice(pool[:40]), rng.choice(pool)) for _ in range(n)]
            route = rng.choice(["/score", "/get_reward"])
            if route == "/score":
                body = [{"prompt": p, "response": r} for p, r in items]
            else:
                body = {"query": [p + " " + r for p, r in items], "prompts": [p for p, _ in items]}
            content = json.dumps(body).encode("utf-8", "surrogatepass")
            t0 = time.perf_counter()
            try:
                resp = await client.post(route, content=content, headers=headers)
            except httpx.HTTPError as exc:
                fail(f"{route}: {type(exc).__name__}: {exc}")
                continue
            t1 = time.perf_counter()
            stats["requests"] += 1
            stats["items"] += n
            key = f"{route} {resp.status_code}"
            stats["by_route"][key] = stats["by_route"].get(key, 0) + 1
            if resp.status_code != 200:
                fail(f"{route}: HTTP {resp.status_code}: {resp.text[:200]}")
                continue
            if t0 >= start + warmup:
                latencies.append(t1 - t0)
            payload = resp.json()
            if route == "/score":
                rewards = [row["reward"] for row in payload["results"]]
            else:
                rewards = payload["rewards"]
            if len(rewards) != n:
                fail(f"{route}: {len(rewards)} rewards for {n} items")
                continue
            if route == "/score":
                for (p, r), reward in zip(items, rewards, strict=True):
                    check_reward(p, r, reward)

    async def sampler() -> None:
        while time.perf_counter() < end:
            samples.append((time.perf_counter() - start, rss_mb(pid)))
            await asyncio.sleep(1.0)

    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as client:
        rng = random.Random(seed)
        await asyncio.gather(
            sampler(), *[worker(client, random.Random(rng.random())) for _ in range(clients)]
        )
        metrics = (await client.get("/metrics", headers=headers)).json()
        unauthorized = (await client.post("/score", json=[])).status_code
    samples.append((time.perf_counter() - start, rss_mb(pid)))
    latencies.sort()
    after_warmup = [mb for t, mb in samples if t >= warmup] or [samples[-1][1]]
    pick = lambda q: 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    server_non_200 = {k: v for k, v in metrics["requests"].items() if not k.endswith(" 200")}
    return {
        "clients": clients,
        "duration_s": duration,
        "warmup_s": warmup,
        **{k: v for k, v in stats.items()},
        "requests_per_s": stats["requests"] / (warmup + duration),
        "p50_ms": pick(0.5) if latencies else None,
        "p99_ms": pick(0.99) if latencies else None,
        "rss_start_mb": samples[0][1],
        "rss_after_warmup_mb": after_warmup[0],
        "rss_end_mb": samples[-1][1],
        "rss_max_mb": max(mb for _, mb in samples),
        "rss_growth_mb": samples[-1][1] - after_warmup[0],
        "server_mean_batch_size": metrics["batching"].get("mean_batch_size"),
        "server_non_200": server_non_200,
        "unauthorized_status": unauthorized,
        "distinct_texts_checked": len(seen),
        "failures": failures,
    }


def verdict(result: dict, *, rss_bound_mb: float) -> list[str]:
    """The checks that failed (empty when the soak passed)."""
    problems = []
    if result["errors"]:
        problems.append(f"{result['errors']} client errors, e.g. {result['failures'][:3]}")
    # the soak's own 401 probe is the only non-200 the server may have answered
    others = {k: v for k, v in result["server_non_200"].items() if k != "/score 401"}
    if others:
        problems.append(f"server answered non-200: {others}")
    if result["unauthorized_status"] != 401:
        problems.append(f"a request without the token got {result['unauthorized_status']}")
    if result["rss_growth_mb"] > rss_bound_mb:
        problems.append(
            f"RSS grew {result['rss_growth_mb']:.1f} MB after warm-up (bound {rss_bound_mb} MB)"
        )
    if result["requests"] == 0:
        problems.append("no request completed")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="refined-model directory (default: tiny)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds after warm-up")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rss-bound-mb", type=float, default=64.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_tiny_model(Path(tmp))
        proc, url = start_server(model)
        try:
            wait_healthy(url, alive=lambda: proc.poll() is None)
            result = asyncio.run(
                drive(
                    url,
                    proc.pid,
                    clients=args.clients,
                    duration=args.duration,
                    warmup=args.warmup,
                    seed=args.seed,
                )
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        stderr = proc.stderr.read().decode(errors="replace")
    result["model"] = str(args.model or "tiny random llama RM + random energy head")
    result["sigterm_exit"] = code
    problems = verdict(result, rss_bound_mb=args.rss_bound_mb)
    if code not in (0, -signal.SIGTERM) or "Traceback" in stderr:
        problems.append(f"SIGTERM exit {code}; stderr tail: {stderr[-500:]}")
    result["rss_bound_mb"] = args.rss_bound_mb
    result["passed"] = not problems
    result["problems"] = problems
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['clients']} clients x {result['duration_s']:.0f} s "
            f"(+{result['warmup_s']:.0f} s warm-up): {result['requests']} requests "
            f"({result['items']} items), "
            f"{result['requests_per_s']:.0f} req/s, p50 {result['p50_ms']:.0f} ms, "
            f"p99 {result['p99_ms']:.0f} ms, errors {result['errors']}\n"
            f"server RSS: {result['rss_start_mb']:.0f} MB at start, "
            f"{result['rss_after_warmup_mb']:.0f} MB after warm-up, {result['rss_end_mb']:.0f} MB "
            f"at end (growth {result['rss_growth_mb']:+.1f} MB, bound {args.rss_bound_mb:.0f} MB), "
            f"max {result['rss_max_mb']:.0f} MB; mean batch {result['server_mean_batch_size']}\n"
            f"SIGTERM exit {code}; {'PASS' if not problems else 'FAIL: ' + '; '.join(problems)}"
        )
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
