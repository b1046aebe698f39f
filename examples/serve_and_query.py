"""Serve a refined reward model over HTTP and query it, as an RL trainer would.

    python examples/serve_and_query.py --model runs/ebrm-model

In production run the server on its own (`ebrm serve --model runs/ebrm-model --port 8000`)
and point OpenRLHF at it with `--remote_rm_url http://127.0.0.1:8000/get_reward`.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

import httpx
import uvicorn

from ebrm.integrations.server import ServerConfig, create_app
from ebrm.model import EnergyRewardModel


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="refined-model directory (ebrm train)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    model = EnergyRewardModel.from_pretrained(args.model, device=args.device)
    app = create_app(model, ServerConfig(max_wait_ms=5))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a free loopback port
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    # 1. /score: {prompt, response} items -> refined reward with its uncertainty. The body is
    #    the bare list of items, or {"items": [...], "reward": KIND} to pick the reward.
    items = [
        {"prompt": "How do I boil an egg?", "response": "Simmer it for 9 minutes, then cool it."},
        {"prompt": "How do I boil an egg?", "response": "Eggs are oval."},
    ]
    scored = httpx.post(f"{url}/score", json=items, timeout=60).json()
    for item, row in zip(items, scored["results"], strict=True):
        # reward: for RL; spread: how unsure the head is (abstain or filter when large);
        # q05..q95: the range to report (fields: docs/concepts.md, "Reading a score")
        print(
            f"{row['reward']:+.3f} (base {row['base']:+.3f}, spread {row['spread']:.3f}, "
            f"90% [{row['q05']:+.3f}, {row['q95']:+.3f}])  {item['response']}"
        )
    conservative = httpx.post(
        f"{url}/score", json={"items": items, "reward": "conservative"}, timeout=60
    ).json()
    print("conservative (mean - k*spread):", [row["reward"] for row in conservative["results"]])

    # 2. /get_reward: OpenRLHF's format, decoded prompt+response strings with special tokens
    prompt = "<|im_start|>user\nHow do I boil an egg?<|im_end|>\n<|im_start|>assistant\n"
    query = prompt + "Simmer it for 9 minutes, then cool it.<|im_end|>"
    openrlhf = httpx.post(
        f"{url}/get_reward?reward=conservative",
        json={"query": [query], "prompts": [prompt], "labels": [""]},
        timeout=60,
    ).json()
    print("OpenRLHF rewards (conservative):", openrlhf["rewards"])
    print("metrics:", httpx.get(f"{url}/metrics").json()["batching"])
    server.should_exit = True
    return {"score": scored, "conservative": conservative, "get_reward": openrlhf}


if __name__ == "__main__":
    main()
