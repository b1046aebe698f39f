"""A fake scorer with the `EnergyRewardModel.score` interface, and a loopback server runner."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ebrm.data.types import Conversation


def text_value(conv: Conversation) -> float:
    """A deterministic 'base reward' that depends on every part of the conversation."""
    text = "|".join(f"{r}:{c}" for r, c in conv.messages) + "#" + conv.response
    return (sum((i + 1) * ord(ch) for i, ch in enumerate(text)) % 1000) / 100.0 - 5.0


@dataclass(frozen=True)
class FakeRewards:
    reward: torch.Tensor
    base: torch.Tensor
    base_raw: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    q05: torch.Tensor
    q95: torch.Tensor
    conservative: torch.Tensor

    def reward_for(self, kind: str) -> torch.Tensor:
        field = {"refined": "reward", "mean": "mean", "conservative": "conservative"}
        return getattr(self, field.get(kind, kind))


def fake_rewards(convs: list[Conversation]) -> FakeRewards:
    base = torch.tensor([text_value(c) for c in convs], dtype=torch.float32)
    mean = 0.5 * base + 0.25
    std = 0.1 + 0.05 * base.abs()
    return FakeRewards(
        reward=0.5 * base + 1.0,
        base=base,
        base_raw=base * 2.0 + 3.0,
        mean=mean,
        std=std,
        q05=mean - 1.645 * std,
        q95=mean + 1.645 * std,
        conservative=mean - std,
    )


class FakeScorer:
    """Records each call's batch size; optionally sleeps per call, or needs autograd."""

    def __init__(self, *, delay: float = 0.0, needs_grad: bool = False) -> None:
        self.delay = delay
        self.needs_grad = needs_grad
        self.batch_sizes: list[int] = []
        self.seen: list[Conversation] = []
        self._lock = threading.Lock()

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.Lock())

    def score(self, convs: list[Conversation], *, batch_size: int = 16) -> FakeRewards:
        with self._lock:
            self.batch_sizes.append(len(convs))
            self.seen.extend(convs)
        if self.needs_grad:  # like gradient-ascent refinement: autograd must be usable
            with torch.enable_grad():
                y = torch.zeros(len(convs), requires_grad=True)
                (y * 2.0).sum().backward()
                assert y.grad is not None
        if self.delay:
            time.sleep(self.delay)
        return fake_rewards(convs)


@contextmanager
def running_server(app, *, port_holder: list | None = None):
    """Run `app` with uvicorn in a thread on a free loopback port; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=10)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
