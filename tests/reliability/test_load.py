"""The short version of benchmarks/soak_server.py: 64 concurrent loopback clients for a few
seconds against `ebrm serve` with a token, no errors, stable rewards, bounded RSS growth.

The server is `ebrm serve` forked from the warmed-up fork server (no torch import to wait
for). SIGTERM finishing in-flight requests is tested in
tests/integrations/test_server_shutdown.py; here SIGTERM after the load must exit cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from tests.reliability import _report
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
CLIENTS, SECONDS, WARMUP, RSS_BOUND_MB = 64, 5.0, 1.0, 64.0


def load_soak():
    return load_script(Path("benchmarks/soak_server.py"), "soak_server")


def test_64_clients_for_5_seconds(tmp_path, fork_server, tiny_rm_dir):
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    soak = load_soak()
    model = make_tiny_ebrm(tmp_path / "model", tiny_rm_dir)
    port = soak.free_port()
    pid = fork_server.run(soak.serve_argv(model, port), tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        soak.wait_healthy(url, timeout=60)
        result = asyncio.run(soak.drive(url, pid, clients=CLIENTS, duration=SECONDS, warmup=WARMUP))
    finally:
        os.kill(pid, signal.SIGTERM)
        code = fork_server.wait(pid)
    log = (tmp_path / "server.log").read_text()
    assert soak.verdict(result, rss_bound_mb=RSS_BOUND_MB) == [], result
    assert result["requests"] >= CLIENTS  # every client got answers
    assert result["distinct_texts_checked"] > 50
    assert code in (0, -signal.SIGTERM) and "Traceback" not in log, log[-2000:]
    _report.count(
        f"load: {CLIENTS} clients x {SECONDS:.0f} s",
        f"requests ok (RSS growth {result['rss_growth_mb']:+.1f} MB)",
        result["requests"],
    )
