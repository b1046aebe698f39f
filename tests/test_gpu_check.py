"""`benchmarks/gpu_check.sh --small`: the prepared GPU check runs end to end on a CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("env", "cuda_tests", "make_rm", "bench_energy", "bench_extract", "bench_server")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_small_runs_every_step_on_cpu(tmp_path):
    out = tmp_path / "gpu-check"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out), "--small"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    log = (out / "gpu_check.log").read_text()
    assert proc.returncode == 0, proc.stdout[-2000:] + log[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is True
    assert set(STEPS) <= set(summary["steps"])
    assert all(summary["steps"][name]["exit"] == 0 for name in STEPS)
    assert summary["environment"]["device"] == "cpu"
    assert summary["rm"]["size"] == "tiny"
    # each benchmark's headline numbers were read back from its own JSON output
    energy = summary["energy"]
    assert energy["grid_vs_published_loop"] == pytest.approx(
        energy["refine_paper_published_s"] / energy["refine_grid_s"]
    )
    assert summary["extract"]["extract_texts_per_s"] > 0
    short = summary["server"]["short"]
    assert short["throughput_ratio"] == pytest.approx(short["batched_rps"] / short["unbatched_rps"])
    assert "accelerate_extract" in summary  # None here: it needs two GPUs
    assert not (out / "rm").exists()  # the weights are not left behind
    try:  # the engine step runs only where vLLM is importable, and says so where not
        import vllm  # noqa: F401

        ratio = summary["engines"]["ratio_vllm_over_transformers"]["serving_responses_per_s"]
        vllm_rps = summary["engines"]["vllm"]["responses_per_s"]
        assert ratio == pytest.approx(
            vllm_rps / summary["engines"]["transformers"]["responses_per_s"]
        )
    except ImportError:
        assert "=== bench_engines: skipped, vllm is not importable" in log
        assert "engines" not in summary
    for name in STEPS:
        assert f"=== {name}: exit 0" in log


def test_gpu_check_usage_errors(tmp_path):
    script = str(ROOT / "benchmarks" / "gpu_check.sh")
    proc = subprocess.run(["bash", script], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage: benchmarks/gpu_check.sh OUT_DIR" in proc.stderr
    proc = subprocess.run(["bash", script, str(tmp_path), "--big"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown option '--big'" in proc.stderr
