"""`ServerConfig`, the settings of the reward server (importable without fastapi).

Kept apart from `ebrm.integrations.server` so that `ebrm serve`'s options can take their
defaults from it without the server extra installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ebrm._config import check_float, check_int, from_dict, invalid, to_dict
from ebrm.integrations.openrlhf import DEFAULT_SPECIAL_TOKENS
from ebrm.refine.kinds import DEFAULT_REWARD, resolve_reward


@dataclass
class ServerConfig:
    """Settings of the reward server."""

    host: str = "127.0.0.1"  # interface to bind; loopback unless you mean to expose it
    port: int = 8000  # TCP port
    token: str | None = None  # if set, every request needs "Authorization: Bearer <token>"
    reward: str = DEFAULT_REWARD  # the RewardKind a request gets unless it names one
    max_batch_size: int = 64  # most responses gathered into one scoring call
    forward_batch_size: int = 16  # most responses per base-RM forward inside a batch
    forward_overhead_tokens: float | None = None  # cost of one forward in tokens: batches
    # are split by length to minimise overhead + padded tokens; None: 32 on CPU (measured
    # with MiniLM), 4096 on accelerators, where a batch costs about what one text does
    max_wait_ms: float = 5.0  # how long a request may wait for others to share its batch
    max_queue: int = 4096  # most responses waiting; beyond it requests get 503
    max_body_bytes: int = 8 * 1024 * 1024  # larger request bodies get 413
    body_timeout_s: float = 30.0  # a request body not fully received by then gets 408
    keep_alive_s: float = 30.0  # an idle kept-alive connection is closed after this long;
    # longer than clients keep idle connections (httpx: 5 s), so that a client never reuses
    # a connection the server is closing at that moment (a ReadError under load)
    max_items_per_request: int = 4096  # more items in one request get 413
    special_tokens: tuple[str, ...] = DEFAULT_SPECIAL_TOKENS  # stripped from /get_reward text
    graceful_timeout_s: float = 60.0  # how long SIGTERM waits for in-flight requests
    tensor_parallel_size: int = 1  # GPUs one copy of the RM is split over (--engine vllm)
    data_parallel_size: int = 1  # copies of the RM the engine serves from (--engine vllm)
    mode: str | None = None  # deprecated name of `reward` (warns; removed next release)

    def __post_init__(self) -> None:
        if not (isinstance(self.host, str) and self.host):
            raise invalid(self, "host", "a non-empty str", self.host, hint="e.g. 127.0.0.1")
        check_int(self, "port", low=0, high=65535)
        if self.token is not None and not (isinstance(self.token, str) and self.token):
            raise invalid(
                self, "token", "None or a non-empty str", self.token,
                hint="Give a non-empty token, or none to serve without one.",
            )  # fmt: skip
        if self.mode is not None and self.reward == DEFAULT_REWARD:  # only the old name given
            self.reward = None  # type: ignore[assignment]
        self.reward = resolve_reward(self.reward, self.mode)
        self.mode = None
        for name in (
            "max_batch_size",
            "forward_batch_size",
            "max_queue",
            "max_body_bytes",
            "max_items_per_request",
            "tensor_parallel_size",
            "data_parallel_size",
        ):
            check_int(self, name, low=1)
        check_float(self, "max_wait_ms", low=0.0)
        check_float(self, "forward_overhead_tokens", low=0.0, optional=True)
        check_float(self, "graceful_timeout_s", low=0.0)
        check_float(self, "body_timeout_s", low=0.0, low_open=True)
        check_float(self, "keep_alive_s", low=0.0, low_open=True)
        tokens = self.special_tokens
        if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
            raise invalid(self, "special_tokens", "a sequence of str", tokens)
        self.special_tokens = tuple(tokens)

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ServerConfig:
        """Inverse of `to_dict`; unknown keys are dropped with one warning naming them."""
        return from_dict(cls, data)
