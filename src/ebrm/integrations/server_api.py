"""The reward server's wire format and the OpenAPI contract it publishes (`/openapi.json`).

The endpoints read their bodies themselves (`ebrm.integrations.server._parse`: a bare list
of items, lone surrogates, one-line error messages), so FastAPI cannot derive the request
schemas; `openapi_schema` declares them, with every response the server can give:

* 200 with the endpoint's body;
* 401 `ErrorResponse` when the server has a token (bearer header, or `?token=` for
  OpenRLHF), with `WWW-Authenticate: Bearer`;
* 408 `ErrorResponse`: a body that has not fully arrived `body_timeout_s` after the
  headers (a client trickling it);
* 413 `ErrorResponse`: a body over `max_body_bytes` or more items than the limit;
* 422 `ErrorResponse`: a body that is not valid JSON or not of the declared shape, an
  unknown reward, a reference the model does not store, a conversation the RM's chat
  template refuses, `prompts` and `query` of different lengths;
* 503 `ErrorResponse` with `Retry-After` (seconds): the queue is full.

Every error body is `{"detail": "<one line: what was wrong and the fix>"}`, the shape the
auth/size guard, our handlers and FastAPI's own 404/405 share. FastAPI's default 422 shape
(a list of `{loc, msg, type}`) is not used: a JSON parse error, a 413 or a 503 has no
`loc`, and one shape for every error is what a generated client handles with one type.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from ebrm.refine.kinds import REFERENCE_KINDS, REWARD_KINDS

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
    reward: str | None = None  # a RewardKind; default: the server's --reward
    mode: str | None = None  # deprecated name of `reward` (accepted, not published)


class RewardRequest(BaseModel):
    """OpenRLHF's remote reward request."""

    model_config = ConfigDict(extra="ignore")
    query: list[str]  # decoded prompt + response, special tokens included
    prompts: list[str] | None = None  # the templated prompt of each query
    labels: list[Any] | None = None  # accepted and ignored (reference answers)


# ---- response bodies (documentation only: the handlers build plain dicts) -------------


class ErrorResponse(BaseModel):
    """Every error the server sends (401, 404, 405, 408, 413, 422, 503)."""

    detail: str  # what was wrong and how to fix it, one line


class ScoreResult(BaseModel):
    """One response's record: the requested reward, then every kind and statistic
    (`RefinedRewards.to_records`); null where a value is not finite (JSON has no NaN)."""

    model_config = ConfigDict(extra="allow")
    reward: float | None  # the value of the requested kind
    method: str  # what `refined` is
    refined: float | None
    mean: float | None
    mode: float | None
    median: float | None
    conservative: float | None
    base: float | None
    std: float | None
    base_reward: float | None  # deprecated: "base"


class ScoreResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    reward: str  # the kind every result's "reward" holds
    results: list[ScoreResult]  # one per item, in order
    mode: str  # deprecated: "reward"


class RewardExtraLogs(BaseModel):
    model_config = ConfigDict(extra="allow")
    ebrm_base_reward: list[float]
    ebrm_std: list[float]
    ebrm_prompt_not_found: list[float]  # 1.0 where the query did not contain its prompt


class RewardResponse(BaseModel):
    """OpenRLHF's reply; no nulls (it builds tensors): a non-finite reward is sent as 0."""

    model_config = ConfigDict(extra="allow")
    rewards: list[float]
    scores: list[float]  # the same as `rewards`
    extra_logs: RewardExtraLogs


class HealthResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str  # "ok"
    reward: str  # the server's default reward kind
    queue_items: int  # responses waiting to be scored


class ComputedWith(BaseModel):
    """The settings every served reward is computed with (`ebrm._provenance.computed_with`).

    A response's reward does not depend on its batch-mates, the batch size or the padding
    side; they are reported so that clients can compare like with like."""

    dtype: str | None  # the base RM's compute dtype, e.g. "float32"
    max_length: int | None  # tokens per text; longer texts are truncated
    truncation_side: str | None  # "left" keeps the end of a text (the response)
    padding_side: str | None  # "left" or "right"
    batch_size: int | None  # most responses per base-RM forward (--forward-batch-size)


class InfoResponse(BaseModel):
    """`GET /info`."""

    reward: str  # the RewardKind a request gets unless it names one
    computed_with: ComputedWith


class MetricsResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    uptime_s: float
    requests: dict[str, int]  # "<path> <status>" -> count
    queue_items: int


# ---- the published contract -----------------------------------------------------------

_REF = "#/components/schemas/"
_JSON = "application/json"
_ERROR = {_JSON: {"schema": {"$ref": _REF + "ErrorResponse"}}}
_WHY = {
    401: "Missing or wrong token: send `Authorization: Bearer <token>` (or `?token=<token>`).",
    408: "The request body did not fully arrive within the server's `body_timeout_s`.",
    413: "The body exceeds the server's byte limit, or has more items than its item limit.",
    422: "Not valid JSON, not of the declared shape, an unknown reward or one the model "
    "does not store, or a conversation the reward model cannot format.",
    503: "The queue is full: retry after `Retry-After` seconds.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {"required": True, "schema": {"type": "string", "const": "Bearer"}}
}


def served_rewards(scorer: Any) -> list[str]:
    """The reward kinds `scorer` can answer: a reference only when the model stores it."""
    references = getattr(scorer, "references", None)
    stored = set() if references is None else set(getattr(references, "rewards", {}))
    return [
        kind
        for kind in REWARD_KINDS
        if kind not in REFERENCE_KINDS or kind.removesuffix("_lcb") in stored
    ]


def _error(status: int) -> dict:
    response: dict[str, Any] = {"description": _WHY[status], "content": copy.deepcopy(_ERROR)}
    if status == 503:
        response["headers"] = copy.deepcopy(_RETRY_AFTER)
    if status == 401:
        response["headers"] = copy.deepcopy(_WWW_AUTHENTICATE)
    return response


def _responses(model: str, errors: tuple[int, ...]) -> dict:
    ok = {"description": "OK", "content": {_JSON: {"schema": {"$ref": _REF + model}}}}
    return {"200": ok, **{str(status): _error(status) for status in errors}}


def _request_schemas(rewards: list[str], item_limit: int) -> dict[str, dict]:
    """ScoreRequest and RewardRequest as published: the rewards this model serves, the
    item limit, and without the deprecated `mode`."""
    _, top = models_json_schema(
        [(m, "validation") for m in (ScoreRequest, RewardRequest)],
        ref_template=_REF + "{model}",
    )
    schemas = top["$defs"]
    score = schemas["ScoreRequest"]
    del score["properties"]["mode"]
    score["properties"]["reward"] = {
        "anyOf": [{"enum": rewards, "type": "string"}, {"type": "null"}],
        "description": "The reward kind of every result's 'reward'; default: the server's.",
    }
    score["properties"]["items"]["maxItems"] = item_limit
    reward = schemas["RewardRequest"]["properties"]
    reward["query"]["maxItems"] = item_limit
    reward["query"]["description"] = "Decoded prompt + response texts, special tokens included."
    reward["prompts"]["anyOf"][0]["maxItems"] = item_limit
    reward["prompts"]["description"] = "One templated prompt per query (as many as 'query')."
    return schemas


def _body(schema: dict) -> dict:
    return {"required": True, "content": {_JSON: {"schema": schema}}}


def _reward_parameter(rewards: list[str]) -> dict:
    return {
        "name": "reward",
        "in": "query",
        "required": False,
        "description": "The reward kind to return; default: the server's (`ebrm serve --reward`).",
        "schema": {"type": "string", "enum": rewards},
    }


def openapi_schema(
    base: dict, *, rewards: list[str], item_limit: int, token: bool
) -> dict[str, Any]:
    """Complete FastAPI's schema `base` (paths, titles) into the contract the server keeps.

    Args:
        base: what `FastAPI.openapi()` generates for the routes (no bodies, no errors).
        rewards: the kinds a request may ask for (`served_rewards`).
        item_limit: the most items (or queries) in one request.
        token: whether the server needs a token (then every operation declares 401).
    """
    schema = copy.deepcopy(base)
    _, top = models_json_schema(
        [(m, "serialization") for m in (ErrorResponse, ScoreResponse, RewardResponse,
                                        HealthResponse, MetricsResponse)],
        ref_template=_REF + "{model}",
    )  # fmt: skip
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).update(top["$defs"])
    components["schemas"].update(_request_schemas(rewards, item_limit))
    anything = (*((401,) if token else ()), 408, 413)  # the guard's answers, on every path
    scoring = (*anything, 422, 503)
    score_body = {
        "anyOf": [
            {"$ref": _REF + "ScoreRequest"},
            {"type": "array", "items": {"$ref": _REF + "ScoreItem"}, "maxItems": item_limit},
        ]
    }
    operations = {
        ("/score", "post"): (_body(score_body), "ScoreResponse", scoring),
        ("/get_reward", "post"): (
            _body({"$ref": _REF + "RewardRequest"}),
            "RewardResponse",
            scoring,
        ),
        ("/health", "get"): (None, "HealthResponse", anything),
        ("/metrics", "get"): (None, "MetricsResponse", anything),
    }
    for (path, method), (body, model, errors) in operations.items():
        operation = schema["paths"][path][method]
        operation["responses"] = _responses(model, errors)
        if body is not None:
            operation["requestBody"] = body
            operation["parameters"] = [_reward_parameter(rewards)]
    if token:
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "token": {"type": "apiKey", "in": "query", "name": "token"},
        }
        schema["security"] = [{"bearer": []}, {"token": []}]
    return schema
