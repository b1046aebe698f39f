"""Run an ASGI app with uvicorn on a free loopback port, for the server tests."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager


@contextmanager
def running_server(app, *, port_holder: list | None = None, config=None):
    """Run `app` with uvicorn in a thread on a free loopback port; yields the base URL.
    With `config` (a ServerConfig), uvicorn gets the settings `ebrm serve` gives it."""
    import uvicorn

    from ebrm.integrations.server import uvicorn_config

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if config is None:
        settings = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=10
        )
    else:
        settings = uvicorn_config(app, config, log_level="warning", timeout_graceful_shutdown=10)
    server = uvicorn.Server(settings)
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
