"""HTTP reward server (FastAPI): `/score`, OpenRLHF's `/get_reward`, `/health`, `/metrics`,
`/info`.

Build the app with `create_app(scorer, config)` and run it with `run_server(app, config)`
(what `ebrm serve` does). Requests from concurrent clients are micro-batched (see
`ebrm.integrations.batcher`). Safety: binds 127.0.0.1 unless told otherwise; with a token,
every endpoint needs `Authorization: Bearer <token>` or `?token=<token>` (for clients such
as OpenRLHF that cannot set headers; compared in constant time); request
bodies are capped (413) and must arrive within `body_timeout_s` (408); malformed requests
get 422 with a message; a full queue gets 503 with `Retry-After`; every error body is
`{"detail": "..."}`, as the published schema (`server_api`) declares; nothing in a request is
ever used as a file path. On SIGTERM uvicorn stops accepting
connections, finishes in-flight requests, then the batcher stops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from pydantic import BaseModel, ValidationError

from ebrm._provenance import computed_with
from ebrm._version import __version__
from ebrm.errors import ConfigError, DataFormatError, MissingDependencyError, require
from ebrm.integrations._common import Scorer, score_safely, to_conversation
from ebrm.integrations._http import Guard, ServerMetrics
from ebrm.integrations.batcher import MicroBatcher, QueueFullError, plan_forward_batches
from ebrm.integrations.openrlhf import query_to_conversation
from ebrm.integrations.server_api import (
    ComputedWith,
    InfoResponse,
    RewardRequest,
    ScoreRequest,
    openapi_schema,
    served_rewards,
)
from ebrm.integrations.server_config import ServerConfig
from ebrm.refine.kinds import REFERENCE_KINDS, resolve_reward
from ebrm.refine.results import missing_reference

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


# ---- request parsing ------------------------------------------------------------------


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


# ---- the app --------------------------------------------------------------------------


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN


def _score_conversations(body: ScoreRequest) -> list:
    """/score items as conversations (a 422 names the bad item)."""
    try:
        return [
            to_conversation(
                it.prompt if isinstance(it.prompt, str) else [m.model_dump() for m in it.prompt],
                it.response,
                f"items[{i}]",
            )
            for i, it in enumerate(body.items)
        ]
    except DataFormatError as exc:
        raise RequestError(422, str(exc)) from None


def _reward_of(record: dict[str, float], reward: str) -> float | None:
    """The value of `reward` in a record; 422 for a reference the model does not store."""
    if reward in REFERENCE_KINDS and reward not in record:
        raise RequestError(422, missing_reference(reward))
    return _finite(record[reward])


def _score_result(record: dict[str, float], reward: str) -> dict[str, Any]:
    """One /score result: "reward", the value of the requested kind, then the response's
    record (`RefinedRewards.to_records`: every kind and statistic, null where not finite)."""
    return {
        "reward": _reward_of(record, reward),
        **{k: v if isinstance(v, str) else _finite(v) for k, v in record.items()},
        "base_reward": _finite(record["base"]),  # deprecated: "base" (removed next release)
    }


def _reward_conversations(
    body: RewardRequest, special_tokens: tuple[str, ...]
) -> tuple[list, list[float]]:
    """OpenRLHF queries as conversations, and 1.0 where a query's prompt was not found."""
    if body.prompts is not None and len(body.prompts) != len(body.query):
        raise RequestError(
            422,
            f"'prompts' has {len(body.prompts)} entries but 'query' has {len(body.query)}; "
            "send one prompt per query (or no 'prompts')",
        )
    prompts = body.prompts if body.prompts is not None else [None] * len(body.query)
    convs, missing = [], []
    for query, prompt in zip(body.query, prompts, strict=True):
        conv, found = query_to_conversation(query, prompt, special_tokens)
        convs.append(conv)
        missing.append(0.0 if found else 1.0)
    return convs, missing


def _reward_response(records: list[dict[str, float]], reward: str, missing: list[float]) -> dict:
    """OpenRLHF's reply: {rewards, scores, extra_logs}, no nulls (it builds tensors)."""
    rewards = [_reward_of(r, reward) for r in records]
    rewards = [0.0 if r is None else r for r in rewards]
    extra = {
        "ebrm_base_reward": [_finite(r["base"]) or 0.0 for r in records],
        "ebrm_std": [_finite(r.get("std", 0.0)) or 0.0 for r in records],
        "ebrm_prompt_not_found": missing,
    }
    return {"rewards": rewards, "scores": rewards, "extra_logs": extra}


def _query_reward(request: Request) -> tuple[str | None, str | None]:
    """The query's `reward` and deprecated `mode`; read here rather than declared as
    parameters, so that FastAPI neither validates them (its 422 is not our error shape) nor
    publishes them (`server_api.openapi_schema` does)."""
    return request.query_params.get("reward"), request.query_params.get("mode")


class _Routes:
    """The endpoints, sharing one config, batcher and metrics."""

    def __init__(self, config: ServerConfig, batcher: MicroBatcher, metrics: ServerMetrics):
        self.config, self.batcher, self.metrics = config, batcher, metrics
        self.item_limit = min(config.max_items_per_request, config.max_queue)  # else 503 forever

    def _reward(self, reward: str | None, mode: str | None) -> str:
        """The request's reward (`reward`, or the deprecated `mode`), else the server's."""
        try:
            if reward is None and mode is None:
                return self.config.reward
            return resolve_reward(reward, mode)
        except ConfigError as exc:
            raise RequestError(422, str(exc)) from None

    def _check_count(self, n: int) -> None:
        if n > self.item_limit:
            raise RequestError(413, f"{n} items in one request; the limit is {self.item_limit}")

    async def _submit(self, path: str, convs: list) -> list[dict[str, float]]:
        try:
            records = await self.batcher.submit(convs)
        except QueueFullError as exc:
            raise RequestError(503, f"server busy: {exc}", {"Retry-After": "1"}) from None
        except _INPUT_ERRORS as exc:  # e.g. the RM's chat template rejects the turn order
            raise RequestError(
                422, f"cannot score this request ({type(exc).__name__}): {exc}"
            ) from None
        self.metrics.items[path] += len(convs)
        return records

    async def score(self, request: Request):
        """Score {prompt, response} items: body {"items": [...]} or a bare list; the reward
        from the body's or the query's `reward` (`mode`: deprecated)."""
        body = _parse(await request.body(), ScoreRequest)
        self._check_count(len(body.items))
        reward, mode = _query_reward(request)
        self._reward(reward, mode)  # an unknown query reward is a 422 even if the body names one
        use = self._reward(body.reward or reward, body.mode or mode)
        records = await self._submit("/score", _score_conversations(body))
        results = [_score_result(r, use) for r in records]
        return {"reward": use, "results": results, "mode": use}  # mode: deprecated

    async def get_reward(self, request: Request):
        """OpenRLHF remote reward: {query, prompts, labels} -> {rewards, scores, extra_logs}."""
        body = _parse(await request.body(), RewardRequest)
        self._check_count(len(body.query))
        use = self._reward(*_query_reward(request))
        convs, missing = _reward_conversations(body, self.config.special_tokens)
        self.metrics.prompt_not_found += int(sum(missing))
        records = await self._submit("/get_reward", convs)
        return _reward_response(records, use, missing)

    async def health(self):
        reward = self.config.reward
        return {"status": "ok", "reward": reward, "mode": reward,  # mode: deprecated
                "queue_items": self.batcher.queued_items}  # fmt: skip

    async def get_metrics(self):
        return self.metrics.to_dict(self.batcher)


async def _request_error(_request, exc: RequestError):
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)


CPU_FORWARD_OVERHEAD_TOKENS = 32.0  # MiniLM on 1 CPU thread: a call costs ~25-30 tokens
ACCELERATOR_FORWARD_OVERHEAD_TOKENS = 4096.0  # a GPU batch costs about what one text does
_CHARS_PER_TOKEN = 4  # English text; only the ordering and rough ratios matter


def _text_length(conv) -> int:
    """Characters of a conversation: a tokenizer-free proxy of its token count."""
    return len(conv.response) + sum(len(content) for _, content in conv.messages)


def _forward_overhead(scorer: Scorer, config: ServerConfig) -> float:
    """The per-forward cost in characters (the unit of `_text_length`)."""
    tokens = config.forward_overhead_tokens
    if tokens is None:
        device = torch.device(getattr(scorer, "device", "cpu"))
        cpu = device.type == "cpu"
        tokens = CPU_FORWARD_OVERHEAD_TOKENS if cpu else ACCELERATOR_FORWARD_OVERHEAD_TOKENS
    return float(tokens) * _CHARS_PER_TOKEN


def batch_scorer(scorer: Scorer, config: ServerConfig) -> Callable[[list], list[dict]]:
    """The function the micro-batcher calls: one scoring call per length-sorted forward batch.

    A micro-batch of mixed lengths padded to its longest text would cost more on a CPU
    than scoring the requests one by one; `plan_forward_batches` cuts it where the padding
    saved outweighs a forward's overhead. Results come back in input order.
    """
    overhead = _forward_overhead(scorer, config)

    def score_batch(convs: list) -> list[dict[str, float]]:
        plan = plan_forward_batches(
            [_text_length(c) for c in convs],
            overhead=overhead,
            max_rows=config.forward_batch_size,
        )
        records: list[dict[str, float]] = [{}] * len(convs)
        for index in plan:
            result = score_safely(scorer, [convs[i] for i in index], batch_size=len(index))
            for i, record in zip(index, result.to_records(), strict=True):
                records[i] = record
        return records

    return score_batch


def _batcher(scorer: Scorer, config: ServerConfig) -> MicroBatcher:
    return MicroBatcher(
        batch_scorer(scorer, config),
        max_batch_size=config.max_batch_size,
        max_wait_ms=config.max_wait_ms,
        max_queue=config.max_queue,
    )


def create_app(scorer: Scorer, config: ServerConfig | None = None):
    """The ASGI app serving `scorer` (e.g. an `EnergyRewardModel`).

    Returns:
        The app wrapped by the auth/body-size guard; `app.state` of the inner FastAPI app
        is reachable as `returned.fastapi.state` (batcher, metrics, config).
    """
    config = config or ServerConfig()
    metrics = ServerMetrics()
    batcher = _batcher(scorer, config)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="ebrm reward server", version=__version__, lifespan=lifespan)
    app.state.batcher, app.state.metrics, app.state.config = batcher, metrics, config
    app.add_exception_handler(RequestError, _request_error)
    routes = _Routes(config, batcher, metrics)
    app.add_api_route("/score", routes.score, methods=["POST"])
    app.add_api_route("/get_reward", routes.get_reward, methods=["POST"])
    app.add_api_route("/health", routes.health, methods=["GET"])
    app.add_api_route("/metrics", routes.get_metrics, methods=["GET"])
    app.add_api_route("/info", _info_route(scorer, config), methods=["GET"])
    _publish_contract(app, scorer, config, routes.item_limit)
    guarded = Guard(app, config, metrics)
    guarded.fastapi = app  # type: ignore[attr-defined]
    return guarded


def _info_route(scorer: Scorer, config: ServerConfig) -> Callable:
    """`GET /info`: the reward kind and what rewards are computed with."""
    # a Scorer need not embed texts itself; one that does has its base RM attached by now
    rm = getattr(scorer, "base_rm", None)
    settings = computed_with(rm if rm is not None else {}, batch_size=config.forward_batch_size)
    body = InfoResponse(reward=config.reward, computed_with=ComputedWith(**settings))

    async def info() -> InfoResponse:
        return body

    return info


def _publish_contract(app, scorer: Scorer, config: ServerConfig, item_limit: int) -> None:
    """Serve `server_api.openapi_schema` at /openapi.json: every request body and response
    the server gives, not only what FastAPI can derive from the handlers' signatures."""
    derive = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_schema(
                derive(),
                rewards=served_rewards(scorer),
                item_limit=item_limit,
                token=config.token is not None,
            )
        return app.openapi_schema

    app.openapi = openapi


def uvicorn_config(app, config: ServerConfig, **overrides: Any):
    """uvicorn's settings for serving `app` with `config` (its limits and timeouts)."""
    uvicorn = require("uvicorn", "server")
    settings = {
        "host": config.host,
        "port": config.port,
        "timeout_graceful_shutdown": config.graceful_timeout_s,
        "timeout_keep_alive": config.keep_alive_s,
        "access_log": False,
        "log_level": "info",
        "lifespan": "on",
    }
    return uvicorn.Config(app, **{**settings, **overrides})


def run_server(app, config: ServerConfig, *, sockets: list | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight requests (uvicorn's graceful exit)."""
    uvicorn = require("uvicorn", "server")
    if config.host not in LOOPBACK_HOSTS:
        logger.warning(
            "binding %s: the reward server is reachable from other machines%s",
            config.host,
            "" if config.token else " and has NO token (use --token)",
        )
    uvicorn.Server(uvicorn_config(app, config)).run(sockets=sockets)
