"""One HTTP client for one or several `ebrm serve` replicas (TRL, verl and OpenRLHF use it).

Requests go to the replica with the fewest requests in flight (ties in turn, so a single
caller goes round robin); a batch larger than `min_items_per_request` is cut into one
piece per replica and the pieces are posted at once. Each request has a timeout. A
connection error, a timeout or a 5xx/408/429 answer puts that replica aside for
`cooldown_s` (a 503's or 429's `Retry-After` for as long as it says) and the request is
tried again on another replica, at most `max_retries` more times, with exponential backoff
when every replica is set aside. When no try succeeds, one `RemoteRewardError` names every
URL and the last failure seen there. Other 4xx answers (401 wrong token, 413, 422) are the
caller's to fix and are raised at once. The bearer token goes to every replica.

Environment (what `client_from_env` reads): `EBRM_SERVER_URL` (one URL or a
comma-separated list), `EBRM_TOKEN`, `EBRM_TIMEOUT` (seconds, default 180) and
`EBRM_RETRIES` (retries after the first try, default 3).
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from ebrm._config import check_float, check_int, invalid
from ebrm.data.types import Conversation
from ebrm.errors import ConfigError, EbrmError, require

logger = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 60.0  # a longer Retry-After is cut to this: a training step cannot wait more
MAX_BACKOFF_S = 30.0  # longest sleep between two tries when every replica is set aside
_RETRY_4XX = frozenset({408, 425, 429})  # request timeout, too early, too many requests


class RemoteRewardError(EbrmError, RuntimeError):
    """No `ebrm serve` replica answered, or one refused the request (the message says why)."""


@dataclass
class ClientConfig:
    """Settings of `RewardClient`."""

    urls: tuple[str, ...]  # base URLs of the replicas, e.g. ("http://10.0.0.5:5000",)
    token: str | None = None  # bearer token sent to every replica (`ebrm serve --token`)
    timeout: float = 180.0  # seconds one request may take before it counts as failed
    max_retries: int = 3  # tries after the first, across replicas, per request
    backoff_s: float = 0.5  # first sleep when every replica is set aside; doubles per try
    cooldown_s: float = 10.0  # how long a failed replica is skipped while others answer
    min_items_per_request: int = 16  # a batch is split across replicas into pieces >= this
    max_items_per_request: int = 1024  # larger batches are always split (server: 4096)

    def __post_init__(self) -> None:
        self.urls = parse_urls(self.urls, what=f"{type(self).__name__}.urls")
        if self.token is not None and not (isinstance(self.token, str) and self.token):
            raise invalid(self, "token", "None or a non-empty str", self.token)
        check_float(self, "timeout", low=0.0, low_open=True)
        check_int(self, "max_retries", low=0)
        check_float(self, "backoff_s", low=0.0)
        check_float(self, "cooldown_s", low=0.0)
        check_int(self, "min_items_per_request", low=1)
        check_int(self, "max_items_per_request", low=1)


def parse_urls(value: str | Sequence[str], *, what: str = "urls") -> tuple[str, ...]:
    """Base URLs from one URL, a comma-separated list or a sequence, without trailing '/'.

    Raises:
        ConfigError: naming `what` and the URL when there is none or one is not a server's
            base URL (http(s)://host:port[/prefix], no query string).
    """
    parts = value.split(",") if isinstance(value, str) else list(value)
    urls = []
    for part in parts:
        if not isinstance(part, str):
            raise ConfigError(f"{what}: expected URL strings, got {type(part).__name__}.")
        url = part.strip().rstrip("/")
        if not url:
            continue
        split = urlsplit(url)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise ConfigError(
                f"{what}: {url!r} is not an http(s) URL; give the server's base URL, "
                "e.g. http://127.0.0.1:8000."
            )
        if split.query or split.fragment or split.path.endswith(("/score", "/get_reward")):
            raise ConfigError(
                f"{what}: {url!r} must be the server's base URL (http://host:port); the "
                "client adds /score or /get_reward itself, and the token goes in token= "
                "or EBRM_TOKEN."
            )
        urls.append(url)
    if not urls:
        raise ConfigError(f"{what}: no server URL given; e.g. http://127.0.0.1:8000.")
    return tuple(urls)


@dataclass
class _Replica:
    url: str
    outstanding: int = 0  # requests in flight
    down_until: float = 0.0  # time.monotonic() before which it is set aside
    retry_after: bool = False  # the server asked for the wait (Retry-After): honour it
    last_failure: str | None = None
    answered: int = 0  # requests it answered with 200


class _Failure(Exception):
    """A try that may succeed elsewhere or later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Tries:
    failures: dict[str, str] = field(default_factory=dict)  # url -> last failure
    count: int = 0


class RewardClient:
    """Posts to `ebrm serve` replicas; thread-safe and picklable (state is per process).

    Args:
        urls: one base URL, a comma-separated list, or a sequence of them.
        **options: the other `ClientConfig` fields (token, timeout, max_retries, ...).

    Example:
        >>> client = RewardClient(["http://10.0.0.5:5000", "http://10.0.0.6:5000"], token="t")
        >>> client.score(convs, "conservative")  # doctest: +SKIP
    """

    def __init__(self, urls: str | Sequence[str], **options: Any) -> None:
        self.config = ClientConfig(urls=urls, **options)  # type: ignore[arg-type]
        self._setup()

    def _setup(self) -> None:
        self._replicas = [_Replica(url) for url in self.config.urls]
        self._lock = threading.Lock()
        self._turn = 0  # round-robin position among replicas with equal load
        self._http: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config}  # a lock and sockets do not cross processes

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config = state["config"]
        self._setup()

    def __repr__(self) -> str:
        return f"RewardClient({list(self.config.urls)!r}, timeout={self.config.timeout:g})"

    @property
    def urls(self) -> tuple[str, ...]:
        return self.config.urls

    def answered(self) -> dict[str, int]:
        """Requests each replica answered so far (how the load spread)."""
        with self._lock:
            return {r.url: r.answered for r in self._replicas}

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    # ---- what the integrations call ---------------------------------------------------

    def score(self, convs: Sequence[Conversation], reward: str) -> list[float]:
        """The `reward` of each conversation from `/score`, in order (NaN where the server
        sends null: a non-finite reward)."""
        items = [{"prompt": [{"role": r, "content": c} for r, c in conv.messages],
                  "response": conv.response} for conv in convs]  # fmt: skip
        answers = self.post_split(
            "/score", len(items), lambda a, b: {"items": items[a:b], "reward": reward}
        )
        rows = [row for answer in answers for row in _field(answer, "results", "/score")]
        _check_count(rows, len(items), "/score")
        return [math.nan if row.get("reward") is None else float(row["reward"]) for row in rows]

    def get_reward(
        self,
        queries: Sequence[str],
        prompts: Sequence[str] | None = None,
        labels: Sequence[Any] | None = None,
        *,
        reward: str | None = None,
    ) -> dict[str, Any]:
        """OpenRLHF's `/get_reward` over the replicas: {"rewards", "scores", "extra_logs"},
        each a list with one value per query, in order."""
        path = "/get_reward" + (f"?{urlencode({'reward': reward})}" if reward else "")

        def body(a: int, b: int) -> dict[str, Any]:
            out: dict[str, Any] = {"query": list(queries[a:b])}
            if prompts is not None:
                out["prompts"] = list(prompts[a:b])
            if labels is not None:
                out["labels"] = list(labels[a:b])
            return out

        answers = self.post_split(path, len(queries), body)
        merged: dict[str, Any] = {"rewards": [], "scores": [], "extra_logs": {}}
        for answer in answers:
            merged["rewards"] += _field(answer, "rewards", path)
            merged["scores"] += answer.get("scores", answer["rewards"])
            for key, values in (answer.get("extra_logs") or {}).items():
                merged["extra_logs"].setdefault(key, []).extend(values)
        _check_count(merged["rewards"], len(queries), path)
        return merged

    # ---- splitting ----------------------------------------------------------------------

    def pieces(self, n: int) -> list[tuple[int, int]]:
        """[start, stop) of each request a batch of `n` items is cut into: one per replica
        when each piece keeps `min_items_per_request`, never above `max_items_per_request`."""
        c = self.config
        k = max(
            math.ceil(n / c.max_items_per_request), min(len(c.urls), n // c.min_items_per_request)
        )
        k = max(k, 1)
        bounds = [round(i * n / k) for i in range(k + 1)]
        return list(zip(bounds[:-1], bounds[1:], strict=True))

    def post_split(
        self, path: str, n: int, body_for: Callable[[int, int], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """POST items [0, n) as `pieces(n)` requests at once; their answers in order."""
        pieces = self.pieces(n)
        if len(pieces) == 1:
            return [self.post(path, body_for(*pieces[0]))]
        with ThreadPoolExecutor(max_workers=len(pieces)) as pool:
            futures = [pool.submit(self.post, path, body_for(a, b)) for a, b in pieces]
            return [future.result() for future in futures]

    # ---- one request, with retries ------------------------------------------------------

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` to `path` on one replica, retrying elsewhere; the answer's JSON."""
        tries = _Tries()
        for attempt in range(self.config.max_retries + 1):
            replica, wait = self._acquire(attempt)
            try:
                if wait > 0:
                    time.sleep(wait)
                tries.count += 1
                answer = self._try(replica, path, body)
            except _Failure as exc:
                self._failed(replica, str(exc), exc.retry_after)
                tries.failures[replica.url] = str(exc)
                continue
            finally:
                with self._lock:
                    replica.outstanding -= 1
            with self._lock:
                replica.down_until, replica.retry_after = 0.0, False
                replica.answered += 1
            return answer
        raise RemoteRewardError(self._all_failed(path, tries))

    def _acquire(self, attempt: int) -> tuple[_Replica, float]:
        """The replica for the next try, and how long to sleep before it."""
        with self._lock:
            now = time.monotonic()
            ready = [r for r in self._replicas if r.down_until <= now]
            wait = 0.0
            if not ready:
                failed = [r for r in self._replicas if not r.retry_after]
                if failed:  # back off, then try the one set aside longest ago
                    wait = min(self.config.backoff_s * 2 ** max(attempt - 1, 0), MAX_BACKOFF_S)
                    wait *= random.uniform(0.5, 1.0)  # jitter: workers do not retry in step
                    ready = [min(failed, key=lambda r: r.down_until)]
                else:  # every replica asked for a wait (Retry-After): wait for the first
                    first = min(self._replicas, key=lambda r: r.down_until)
                    wait, ready = first.down_until - now, [first]
            n = len(self._replicas)
            position = {id(r): i for i, r in enumerate(self._replicas)}
            pick = min(ready, key=lambda r: (r.outstanding, (position[id(r)] - self._turn) % n))
            self._turn = (position[id(pick)] + 1) % n
            pick.outstanding += 1
            return pick, wait

    def _failed(self, replica: _Replica, message: str, retry_after: float | None) -> None:
        logger.warning("EBRM server %s failed: %s; trying another replica", replica.url, message)
        with self._lock:
            hold = self.config.cooldown_s if retry_after is None else retry_after
            replica.down_until = time.monotonic() + hold
            replica.retry_after = retry_after is not None
            replica.last_failure = message

    def _session(self) -> Any:
        with self._lock:
            if self._http is None:
                httpx = require("httpx", "server")  # only a remote reward needs it

                headers = (
                    {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}
                )
                n = len(self.config.urls)
                self._http = httpx.Client(
                    timeout=self.config.timeout,
                    headers=headers,
                    limits=httpx.Limits(max_connections=32 * n, max_keepalive_connections=8 * n),
                )
            return self._http

    def _try(self, replica: _Replica, path: str, body: dict[str, Any]) -> dict[str, Any]:
        httpx = require("httpx", "server")
        try:
            resp = self._session().post(replica.url + path, json=body)
        except httpx.TimeoutException as exc:
            raise _Failure(
                f"no answer within {self.config.timeout:g} s ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise _Failure(f"{type(exc).__name__}: {exc}") from None
        status = resp.status_code
        if status == 200:
            try:
                return resp.json()
            except ValueError:
                raise _Failure("HTTP 200 with a body that is not JSON") from None
        detail = f"HTTP {status}: {_detail(resp)}"
        if status >= 500 or status in _RETRY_4XX:
            wait = _retry_after(resp.headers.get("retry-after")) if status in (429, 503) else None
            raise _Failure(detail, wait)
        hint = {
            401: " Give the server's --token (token= or EBRM_TOKEN).",
            413: " Send fewer items per request (max_items_per_request=).",
        }.get(status, "")
        raise RemoteRewardError(
            f"EBRM server {replica.url}{path} refused the request: {detail}.{hint}"
        )

    def _all_failed(self, path: str, tries: _Tries) -> str:
        with self._lock:
            lines = []
            for r in self._replicas:
                last = tries.failures.get(r.url)
                if last is None:
                    last = "not tried" + (f" (earlier: {r.last_failure})" if r.last_failure else "")
                lines.append(f"{r.url}: {last}")
        c = self.config
        return (
            f"no EBRM server answered {path} after {tries.count} tries "
            f"(timeout {c.timeout:g} s, max_retries {c.max_retries}); last failure per server: "
            + "; ".join(lines)
            + ". Check that `ebrm serve` runs at these URLs (GET /health answers), or raise "
            "timeout=/EBRM_TIMEOUT or max_retries=/EBRM_RETRIES."
        )


def _detail(resp: Any) -> str:
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    text = str(detail) if detail is not None else resp.text
    return text.strip()[:300] or resp.reason_phrase


def _retry_after(value: str | None) -> float | None:
    """Seconds of a Retry-After header (delta-seconds or an HTTP date), at most 60."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _field(answer: Any, key: str, path: str) -> list:
    if not isinstance(answer, dict) or not isinstance(answer.get(key), list):
        raise RemoteRewardError(f"{path} answered without a '{key}' list; is this an ebrm server?")
    return answer[key]


def _check_count(rows: list, expected: int, path: str) -> None:
    if len(rows) != expected:
        raise RemoteRewardError(f"{path} answered {len(rows)} results for {expected} items.")


# ---- from the environment ---------------------------------------------------------------

_ENV_LOCK = threading.Lock()
_ENV_CLIENTS: dict[tuple, RewardClient] = {}


def _number(environ: Mapping[str, str], name: str, kind: type, default: str, low: float) -> Any:
    raw = environ.get(name) or default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < low or (kind is float and value == 0):
        expected = "an int >= 0" if kind is int else "a number of seconds > 0"
        raise ConfigError(f"{name}={raw!r} must be {expected}; e.g. {name}={default}.")
    return value


def client_from_env(environ: Mapping[str, str] | None = None) -> RewardClient | None:
    """The client for `EBRM_SERVER_URL` (None when unset), one per process and settings, so
    that which replica failed is remembered from one call to the next."""
    env = os.environ if environ is None else environ
    urls = env.get("EBRM_SERVER_URL")
    if not urls:
        return None
    key = (
        urls,
        env.get("EBRM_TOKEN") or None,
        _number(env, "EBRM_TIMEOUT", float, "180", 0.0),
        _number(env, "EBRM_RETRIES", int, "3", 0),
    )
    with _ENV_LOCK:
        if key not in _ENV_CLIENTS:
            _ENV_CLIENTS[key] = RewardClient(
                parse_urls(urls, what="EBRM_SERVER_URL"),
                token=key[1], timeout=key[2], max_retries=key[3],
            )  # fmt: skip
        return _ENV_CLIENTS[key]
