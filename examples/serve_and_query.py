"""Serve a refined reward model over HTTP and query it, as an RL trainer would.

    python examples/serve_and_query.py --model runs/ebrm             # starts its own server
    python examples/serve_and_query.py --url http://127.0.0.1:8000   # queries `ebrm serve`

In production run the server on its own (`ebrm serve --model runs/ebrm --port 8000`, with
`--token` on a shared network) and point OpenRLHF at it with
`--remote_rm_url http://127.0.0.1:8000/get_reward`; `--url` (and `--token`) query it here.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

import httpx


def _start(model_dir: str, device: str | None) -> tuple[str, object]:
    """An in-process server of `model_dir` on a free loopback port: (its URL, the server)."""
    import uvicorn

    from ebrm.integrations.server import ServerConfig, create_app
    from ebrm.model import EnergyRewardModel

    model = EnergyRewardModel.from_pretrained(model_dir, device=device)
    app = create_app(model, ServerConfig(max_wait_ms=5))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a free loopback port
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model", help="refined-model directory (ebrm train): serve it here")
    where.add_argument("--url", help="an `ebrm serve` already running, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", default=None, help="the server's --token, if it has one")
    parser.add_argument("--device", default=None, help="with --model: torch device")
    args = parser.parse_args(argv)

    server = None
    if args.url:
        url = args.url.rstrip("/")
    else:
        url, server = _start(args.model, args.device)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    client = httpx.Client(base_url=url, headers=headers, timeout=60)
    try:
        return _query(client)
    finally:
        client.close()
        if server is not None:
            server.should_exit = True


def _query(client: httpx.Client) -> dict:
    def post(path: str, body) -> dict:
        response = client.post(path, json=body)
        response.raise_for_status()  # a 401 (wrong --token) says so here
        return response.json()

    # 1. /score: {prompt, response} items -> refined reward with its uncertainty. The body is
    #    the bare list of items, or {"items": [...], "reward": KIND} to pick the reward.
    items = [
        {"prompt": "How do I boil an egg?", "response": "Simmer it for 9 minutes, then cool it."},
        {"prompt": "How do I boil an egg?", "response": "Eggs are oval."},
    ]
    scored = post("/score", items)
    for item, row in zip(items, scored["results"], strict=True):
        # reward: for RL; spread: how unsure the head is (abstain or filter when large);
        # q05..q95: the range to report (fields: docs/concepts.md, "Reading a score")
        print(
            f"{row['reward']:+.3f} (base {row['base']:+.3f}, spread {row['spread']:.3f}, "
            f"90% [{row['q05']:+.3f}, {row['q95']:+.3f}])  {item['response']}"
        )
    conservative = post("/score", {"items": items, "reward": "conservative"})
    print("conservative (mean - k*spread):", [row["reward"] for row in conservative["results"]])

    # 2. /get_reward: OpenRLHF's format, decoded prompt+response strings with special tokens
    prompt = "<|im_start|>user\nHow do I boil an egg?<|im_end|>\n<|im_start|>assistant\n"
    query = prompt + "Simmer it for 9 minutes, then cool it.<|im_end|>"
    openrlhf = post(
        "/get_reward?reward=conservative",
        {"query": [query], "prompts": [prompt], "labels": [""]},
    )
    print("OpenRLHF rewards (conservative):", openrlhf["rewards"])
    print("metrics:", client.get("/metrics").raise_for_status().json()["batching"])
    return {"score": scored, "conservative": conservative, "get_reward": openrlhf}


if __name__ == "__main__":
    main()
