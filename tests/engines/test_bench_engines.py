"""`benchmarks/bench_engines.py` runs both engines in one run and reports their ratio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engines.conftest import NEEDS_VLLM

pytest.importorskip("vllm", reason=NEEDS_VLLM)

ROOT = Path(__file__).resolve().parents[2]


def test_bench_engines_prints_both_engines_and_their_ratio(tmp_path):
    args = ["--json", "--hidden", "128", "--layers", "2", "--heads", "2", "--texts", "8",
            "--clients", "2", "--group-size", "4", "--duration", "1", "--warmup", "0.5",
            "--repeats", "1", "--log-dir", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "EBRM_ENGINE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_engines.py"), *args],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    engines = result["engines"]
    assert set(engines) == {"transformers", "vllm"} and result["skipped"] == {}
    for r in engines.values():
        e, s = r["extraction"], r["serving"]
        assert e["texts"] == 8 and e["texts_per_s"] == pytest.approx(8 / e["seconds"])
        assert s["errors"] == 0 and s["responses"] == 4 * s["groups"] > 0
        assert s["p50_ms"] <= s["p99_ms"]
    ratio = result["ratio_vllm_over_transformers"]
    want = (
        engines["vllm"]["extraction"]["texts_per_s"]
        / engines["transformers"]["extraction"]["texts_per_s"]
    )
    assert ratio["extraction_texts_per_s"] == pytest.approx(want)
