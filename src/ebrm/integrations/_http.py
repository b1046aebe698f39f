"""The reward server's plumbing: request metrics and the ASGI guard (auth, body size).

The guard runs before FastAPI sees a request: it checks the bearer token (header, or
`?token=` for clients that cannot set headers) in constant time, refuses bodies over the
limit with 413 whether or not Content-Length is sent, answers 408 to a body that has not
fully arrived `body_timeout_s` after the request's headers, and records status and latency.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

PATHS = ("/score", "/get_reward", "/health", "/metrics")


# ---- metrics --------------------------------------------------------------------------


@dataclass
class ServerMetrics:
    started: float = field(default_factory=time.time)
    requests: Counter = field(default_factory=Counter)  # (path, status) -> count
    items: Counter = field(default_factory=Counter)  # path -> responses scored
    prompt_not_found: int = 0  # /get_reward queries whose prompt was not in the query
    latencies: dict[str, deque] = field(
        default_factory=lambda: {p: deque(maxlen=10_000) for p in ("/score", "/get_reward")}
    )

    def record(self, path: str, status: int, seconds: float) -> None:
        path = path if path in PATHS else "other"  # bounded keys whatever clients send
        self.requests[(path, status)] += 1
        if status == 200 and path in self.latencies:
            self.latencies[path].append(seconds)

    def to_dict(self, batcher: Any) -> dict[str, Any]:
        def quantiles(values: deque) -> dict[str, float]:
            xs = sorted(values)
            if not xs:
                return {"count": 0}
            q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000.0  # noqa: E731
            return {"count": len(xs), "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99)}

        return {
            "uptime_s": time.time() - self.started,
            "requests": {f"{p} {s}": n for (p, s), n in sorted(self.requests.items())},
            "items": dict(self.items),
            "prompt_not_found": self.prompt_not_found,
            "queue_items": batcher.queued_items,
            "batching": batcher.stats.to_dict(),
            "latency": {p: quantiles(v) for p, v in self.latencies.items()},
        }


# ---- ASGI guard: auth, body limit, metrics ---------------------------------------------


async def send_json(send, status: int, payload: dict, headers: dict[str, str] | None = None):
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Checks the token and the body size before the app sees a request; records metrics."""

    def __init__(self, app, config: Any, metrics: ServerMetrics) -> None:
        self.app, self.config, self.metrics = app, config, metrics
        self._token = f"Bearer {config.token}".encode() if config.token else None
        self._raw_token = (config.token or "").encode()

    def _authorized(self, scope) -> bool:
        if self._token is None:
            return True
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        ok = hmac.compare_digest(given, self._token)
        # OpenRLHF cannot send headers, so `?token=` in the reward URL is accepted too.
        for value in parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", []):
            ok |= hmac.compare_digest(value.encode("utf-8", "replace"), self._raw_token)
        return ok

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [0]

        async def send_recording(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, send_recording)
        finally:
            self.metrics.record(scope.get("path", ""), status[0], time.perf_counter() - start)

    async def _guarded(self, scope, receive, send) -> None:
        if not self._authorized(scope):
            await send_json(
                send,
                401,
                {"detail": "missing or wrong bearer token"},
                {"WWW-Authenticate": "Bearer"},
            )
            return
        limit = self.config.max_body_bytes
        too_large = {"detail": f"request body exceeds {limit} bytes; send fewer items per request"}
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await send_json(send, 413, too_large)
            return
        body = bytearray()
        deadline = time.monotonic() + self.config.body_timeout_s
        while True:
            try:  # a client trickling its body must not hold a request forever
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except asyncio.TimeoutError:  # (TimeoutError itself only from Python 3.11)
                timeout = self.config.body_timeout_s
                detail = f"request body not received within {timeout:g} s; send it at once"
                await send_json(send, 408, {"detail": detail}, {"Connection": "close"})
                return
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await send_json(send, 413, too_large)
                return
            if not message.get("more_body", False):
                break
        replayed = [False]

        async def replay():
            if not replayed[0]:
                replayed[0] = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
