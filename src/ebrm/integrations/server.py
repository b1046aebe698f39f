"""HTTP reward server (FastAPI): `/score`, OpenRLHF's `/get_reward`, `/health`, `/metrics`.

Build the app with `create_app(scorer, config)` and run it with `run_server(app, config)`
(what `ebrm serve` does). Requests from concurrent clients are micro-batched (see
`ebrm.integrations.batcher`). Safety: binds 127.0.0.1 unless told otherwise; with a token,
every endpoint needs `Authorization: Bearer <token>` or `?token=<token>` (for clients such
as OpenRLHF that cannot set headers; compared in constant time); request
bodies are capped (413); malformed requests get 422 with a message; a full queue gets 503;
nothing in a request is ever used as a file path. On SIGTERM uvicorn stops accepting
connections, finishes in-flight requests, then the batcher stops.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, ValidationError

from ebrm.errors import ConfigError, DataFormatError, MissingDependencyError, require
from ebrm.integrations._common import (
    REWARD_MODES,
    Scorer,
    check_mode,
    result_records,
    score_safely,
    to_conversation,
)
from ebrm.integrations.batcher import MicroBatcher, QueueFullError
from ebrm.integrations.openrlhf import DEFAULT_SPECIAL_TOKENS, query_to_conversation

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "The reward server needs fastapi and uvicorn: pip install 'ebrm[server]'"
    ) from _exc

try:  # chat templates raise this for conversations they cannot render
    from jinja2.exceptions import TemplateError as _TemplateError
except ImportError:  # pragma: no cover
    _TemplateError = DataFormatError
_INPUT_ERRORS = (DataFormatError, _TemplateError)

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_MODE_FIELD = {"refined": "reward", "mean": "mean", "conservative": "conservative", "base": "base"}
_PATHS = ("/score", "/get_reward", "/health", "/metrics")


@dataclass
class ServerConfig:
    """Settings of the reward server."""

    host: str = "127.0.0.1"  # interface to bind; loopback unless you mean to expose it
    port: int = 8000  # TCP port
    token: str | None = None  # if set, every request needs "Authorization: Bearer <token>"
    mode: str = "refined"  # default reward kind: refined | mean | conservative | base
    max_batch_size: int = 64  # most responses gathered into one scoring call
    forward_batch_size: int = 16  # responses per base-RM forward inside it (length-sorted
    # chunks: on CPU, long texts padded to the longest of 64 cost more than they save)
    max_wait_ms: float = 5.0  # how long a request may wait for others to share its batch
    max_queue: int = 4096  # most responses waiting; beyond it requests get 503
    max_body_bytes: int = 8 * 1024 * 1024  # larger request bodies get 413
    max_items_per_request: int = 4096  # more items in one request get 413
    special_tokens: tuple[str, ...] = DEFAULT_SPECIAL_TOKENS  # stripped from /get_reward text
    graceful_timeout_s: float = 60.0  # how long SIGTERM waits for in-flight requests

    def __post_init__(self) -> None:
        check_mode(self.mode)
        for name in (
            "max_batch_size",
            "forward_batch_size",
            "max_queue",
            "max_body_bytes",
            "max_items_per_request",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"ServerConfig.{name} must be >= 1. Got {getattr(self, name)}.")
        if self.max_wait_ms < 0:
            raise ConfigError(f"ServerConfig.max_wait_ms must be >= 0. Got {self.max_wait_ms}.")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"ServerConfig.port must be in 0..65535. Got {self.port}.")
        if self.token is not None and not self.token:
            raise ConfigError("ServerConfig.token is empty; give a non-empty token or none.")
        self.special_tokens = tuple(self.special_tokens)


# ---- request bodies -------------------------------------------------------------------


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str


class ScoreItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt: str | list[ChatMessage]  # a user prompt, or the conversation before the response
    response: str  # the assistant response to score


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ScoreItem]
    mode: Literal["refined", "mean", "conservative", "base"] | None = None


class RewardRequest(BaseModel):
    """OpenRLHF's remote reward request."""

    model_config = ConfigDict(extra="ignore")
    query: list[str]  # decoded prompt + response, special tokens included
    prompts: list[str] | None = None  # the templated prompt of each query
    labels: list[Any] | None = None  # accepted and ignored (reference answers)


class RequestError(Exception):
    """A client error with its HTTP status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "invalid request: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _parse(body: bytes, model: type[BaseModel]) -> Any:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RequestError(422, f"request body is not valid JSON: {exc}") from None
    if model is ScoreRequest and isinstance(data, list):
        data = {"items": data}  # a bare list of items is accepted too
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestError(422, _validation_message(exc)) from None
    except RecursionError:
        raise RequestError(422, "request body is nested too deeply") from None


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
        path = path if path in _PATHS else "other"  # bounded keys whatever clients send
        self.requests[(path, status)] += 1
        if status == 200 and path in self.latencies:
            self.latencies[path].append(seconds)

    def to_dict(self, batcher: MicroBatcher) -> dict[str, Any]:
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


async def _send_json(send, status: int, payload: dict, headers: dict[str, str] | None = None):
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class _Guard:
    """Checks the token and the body size before the app sees a request; records metrics."""

    def __init__(self, app, config: ServerConfig, metrics: ServerMetrics) -> None:
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
            await _send_json(
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
            await _send_json(send, 413, too_large)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await _send_json(send, 413, too_large)
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


# ---- the app --------------------------------------------------------------------------


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN


def create_app(scorer: Scorer, config: ServerConfig | None = None):
    """The ASGI app serving `scorer` (e.g. an `EnergyRewardModel`).

    Returns:
        The app wrapped by the auth/body-size guard; `app.state` of the inner FastAPI app
        is reachable as `returned.fastapi.state` (batcher, metrics, config).
    """
    config = config or ServerConfig()
    metrics = ServerMetrics()

    def score_batch(convs: list) -> list[dict[str, float]]:
        result = score_safely(scorer, convs, batch_size=config.forward_batch_size)
        return result_records(result)

    batcher = MicroBatcher(
        score_batch,
        max_batch_size=config.max_batch_size,
        max_wait_ms=config.max_wait_ms,
        max_queue=config.max_queue,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="ebrm reward server", lifespan=lifespan)
    app.state.batcher, app.state.metrics, app.state.config = batcher, metrics, config

    @app.exception_handler(RequestError)
    async def _request_error(_request, exc: RequestError):
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)

    def _mode(mode: str | None) -> str:
        mode = mode or config.mode
        if mode not in REWARD_MODES:
            raise RequestError(422, f"unknown mode {mode!r}; use one of {', '.join(REWARD_MODES)}")
        return mode

    item_limit = min(config.max_items_per_request, config.max_queue)  # else 503 forever

    def _check_count(n: int) -> None:
        if n > item_limit:
            raise RequestError(413, f"{n} items in one request; the limit is {item_limit}")

    async def _score(path: str, convs: list) -> list[dict[str, float]]:
        try:
            records = await batcher.submit(convs)
        except QueueFullError as exc:
            raise RequestError(503, f"server busy: {exc}", {"Retry-After": "1"}) from None
        except _INPUT_ERRORS as exc:  # e.g. the RM's chat template rejects the turn order
            raise RequestError(
                422, f"cannot score this request ({type(exc).__name__}): {exc}"
            ) from None
        metrics.items[path] += len(convs)
        return records

    @app.post("/score")
    async def score(request: Request, mode: str | None = None):
        """Score {prompt, response} items: body {"items": [...]} or a bare list."""
        body = _parse(await request.body(), ScoreRequest)
        _check_count(len(body.items))
        use = _mode(body.mode or mode)
        try:
            convs = [
                to_conversation(
                    it.prompt
                    if isinstance(it.prompt, str)
                    else [m.model_dump() for m in it.prompt],
                    it.response,
                    f"items[{i}]",
                )
                for i, it in enumerate(body.items)
            ]
        except DataFormatError as exc:
            raise RequestError(422, str(exc)) from None
        records = await _score("/score", convs)
        results = [
            {
                "reward": _finite(r[_MODE_FIELD[use]]),
                "base_reward": _finite(r["base"]),
                "base_raw": _finite(r.get("base_raw", math.nan)),
                **{k: _finite(r.get(k, math.nan)) for k in ("mean", "std", "q05", "q95")},
                "conservative": _finite(r.get("conservative", math.nan)),
            }
            for r in records
        ]
        return {"mode": use, "results": results}

    @app.post("/get_reward")
    async def get_reward(request: Request, mode: str | None = None):
        """OpenRLHF remote reward: {query, prompts, labels} -> {rewards, scores, extra_logs}."""
        body = _parse(await request.body(), RewardRequest)
        _check_count(len(body.query))
        use = _mode(mode)
        if body.prompts is not None and len(body.prompts) != len(body.query):
            raise RequestError(
                422,
                f"'prompts' has {len(body.prompts)} entries but 'query' has {len(body.query)}; "
                "send one prompt per query (or no 'prompts')",
            )
        prompts = body.prompts if body.prompts is not None else [None] * len(body.query)
        convs, missing = [], []
        for query, prompt in zip(body.query, prompts, strict=True):
            conv, found = query_to_conversation(query, prompt, config.special_tokens)
            convs.append(conv)
            missing.append(0.0 if found else 1.0)
        metrics.prompt_not_found += int(sum(missing))
        records = await _score("/get_reward", convs)
        rewards = [_finite(r[_MODE_FIELD[use]]) for r in records]
        rewards = [0.0 if r is None else r for r in rewards]  # OpenRLHF builds a tensor
        extra = {
            "ebrm_base_reward": [_finite(r["base"]) or 0.0 for r in records],
            "ebrm_std": [_finite(r.get("std", 0.0)) or 0.0 for r in records],
            "ebrm_prompt_not_found": missing,
        }
        return {"rewards": rewards, "scores": rewards, "extra_logs": extra}

    @app.get("/health")
    async def health():
        return {"status": "ok", "mode": config.mode, "queue_items": batcher.queued_items}

    @app.get("/metrics")
    async def get_metrics():
        return metrics.to_dict(batcher)

    guarded = _Guard(app, config, metrics)
    guarded.fastapi = app  # type: ignore[attr-defined]
    return guarded


def run_server(app, config: ServerConfig, *, sockets: list | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight requests (uvicorn's graceful exit)."""
    uvicorn = require("uvicorn", "server")
    if config.host not in LOOPBACK_HOSTS:
        logger.warning(
            "binding %s: the reward server is reachable from other machines%s",
            config.host,
            "" if config.token else " and has NO token (use --token)",
        )
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        timeout_graceful_shutdown=config.graceful_timeout_s,
        access_log=False,
        log_level="info",
        lifespan="on",
    )
    uvicorn.Server(uv_config).run(sockets=sockets)
