"""The reward server under faulty clients, over real sockets: clients that hang up halfway
through the body or before reading the answer, clients that trickle headers or body, and a
flood of concurrent requests beyond the queue. Each time the server answers the other
clients and keeps running.

What bounds a slow client (docs/alignment.md, "Serving"): the server's `body_timeout_s`
(408 when a body has not fully arrived in time), `keep_alive_s` (uvicorn's
`timeout_keep_alive`, 30 s: an idle kept-alive connection is closed) and h11's 16 KiB
limit on a request's headers (400).
Nothing times out headers that trickle in under that size; they hold one socket, not the
server.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest

from ebrm.data.types import Conversation
from ebrm.integrations.server import ServerConfig, create_app
from tests.fakes import FakeScorer, fake_rewards
from tests.integrations.serving import running_server
from tests.reliability import _report


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _items(text: str) -> bytes:
    return json.dumps([{"prompt": "p", "response": text}]).encode()


def _expected(text: str) -> float:
    """The reward of one item, computed by the fake scorer's formula, not by the server."""
    return fake_rewards([Conversation.from_prompt("p", text)]).reward[0].item()


def _still_serving(url: str, text: str = "after") -> None:
    assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"
    resp = httpx.post(f"{url}/score", content=_items(text), timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["results"][0]["reward"] == pytest.approx(_expected(text))


def _read_response(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_clients_hanging_up_mid_body_or_before_the_answer():
    scorer = FakeScorer(delay=0.05)
    with running_server(create_app(scorer, ServerConfig(max_wait_ms=5))) as url:
        n = 20
        for i in range(n):  # half the body, then gone
            body = _items(f"half {i}")
            with _connect(url) as sock:
                sock.sendall(_head("/score", len(body)) + body[: len(body) // 2])
        _still_serving(url, "after half bodies")
        socks = []
        for i in range(n):  # the whole request, then gone before the answer
            body = _items(f"gone {i}")
            sock = _connect(url)
            sock.sendall(_head("/score", len(body)) + body)
            socks.append(sock)
        for i, sock in enumerate(socks):
            if i % 2:  # half of them reset the connection instead of closing it
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            sock.close()
        _still_serving(url, "after hang-ups")
        deadline = time.time() + 10
        while httpx.get(f"{url}/health").json()["queue_items"] and time.time() < deadline:
            time.sleep(0.05)
        assert httpx.get(f"{url}/health").json()["queue_items"] == 0  # nothing stuck queued
    _report.count("server: clients hanging up", "mid-body", n)
    _report.count("server: clients hanging up", "before the answer", n)


def test_a_trickled_body_gets_408_while_others_are_served():
    config = ServerConfig(body_timeout_s=1.0, max_wait_ms=1)
    with running_server(create_app(FakeScorer(), config)) as url, _connect(url) as slow:
        body = _items("slow")
        slow.sendall(_head("/score", len(body)))
        started = time.monotonic()
        for byte in body[:6]:  # a byte every 0.1 s: the deadline is not pushed back
            slow.sendall(bytes([byte]))
            time.sleep(0.1)
        served = 0
        while time.monotonic() - started < 1.5:  # others are not held up meanwhile
            _still_serving(url, f"while trickling {served}")
            served += 1
        answer = _read_response(slow)
        assert time.monotonic() - started < 10
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    assert "not received within 1 s" in json.loads(payload)["detail"]
    _report.count("server: slow clients", "trickled body: 408", 1)
    _report.count("server: slow clients", "served meanwhile", served)


def test_trickled_or_oversized_headers_hold_one_socket_not_the_server():
    with running_server(create_app(FakeScorer(), ServerConfig())) as url:
        with _connect(url) as slow:
            head = _head("/score", 2)
            for i in range(0, 40, 4):  # headers a few bytes at a time
                slow.sendall(head[i : i + 4])
                _still_serving(url, f"header trickle {i}")
                time.sleep(0.05)
        with _connect(url) as huge:  # headers that never end: refused past h11's 16 KiB
            huge.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
            try:
                for _ in range(20):  # 20 KiB of header lines, no blank line
                    huge.sendall(b"X-Filler: " + b"y" * 1000 + b"\r\n")
                answer = _read_response(huge)
            except (BrokenPipeError, ConnectionResetError):  # the reset overtook the 400
                answer = b"HTTP/1.1 400 (reset)"
            assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        _still_serving(url, "after oversized headers")
    _report.count("server: slow clients", "trickled headers", 1)
    _report.count("server: slow clients", "oversized headers: closed", 1)


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout():
    config = ServerConfig(keep_alive_s=2.0)
    app = create_app(FakeScorer(), config)
    with running_server(app, config=config) as url, _connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = sock.recv(65536)
        while not answer.endswith(b"}"):  # the head and the JSON body may come apart
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        sock.settimeout(30)
        assert sock.recv(1) == b""  # closed by the server after keep_alive_s
        assert 1.5 < time.monotonic() - started < 10.0


def test_the_server_keeps_idle_connections_longer_than_clients_do():
    # httpx drops an idle pooled connection after keepalive_expiry (5 s); a server closing
    # at the same moment races a client reusing it (a ReadError seen under load)
    assert ServerConfig().keep_alive_s > httpx.Limits().keepalive_expiry


def test_a_flood_beyond_the_queue_gets_503_with_retry_after_and_the_rest_200():
    scorer = FakeScorer(delay=0.05)
    config = ServerConfig(max_batch_size=4, max_queue=16, max_wait_ms=1)
    n = 200
    with running_server(create_app(scorer, config)) as url:

        async def flood():
            limits = httpx.Limits(max_connections=n)
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
                return await asyncio.gather(
                    *[client.post("/score", content=_items(f"flood {i}")) for i in range(n)]
                )

        responses = asyncio.run(flood())
        codes = [r.status_code for r in responses]
        assert set(codes) == {200, 503}, sorted(set(codes))
        for i, resp in enumerate(responses):
            if resp.status_code == 503:
                assert int(resp.headers["retry-after"]) >= 1
                assert resp.json()["detail"].startswith("server busy")
            else:
                assert resp.json()["results"][0]["reward"] == pytest.approx(_expected(f"flood {i}"))
        _still_serving(url, "after the flood")
        assert httpx.get(f"{url}/health").json()["queue_items"] == 0
        rejected = httpx.get(f"{url}/metrics").json()["batching"]["rejected_queue_full"]
        assert rejected == codes.count(503)
    _report.count("server: flood of 200 beyond a queue of 16", "200", codes.count(200))
    _report.count("server: flood of 200 beyond a queue of 16", "503", codes.count(503))


def test_body_timeout_must_be_positive():
    from ebrm.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'body_timeout_s' parameter of ServerConfig must be"):
        ServerConfig(body_timeout_s=0)
    assert ServerConfig.from_dict(ServerConfig(body_timeout_s=2.5).to_dict()).body_timeout_s == 2.5
