"""Evaluation's user-facing names and defaults, importable without torch.

The registry (`ebrm.evaluation.registry`) holds one implementation per name; `ebrm eval
--benchmark` offers exactly these.
"""

from __future__ import annotations

from typing import Literal, get_args

BenchmarkName = Literal["pairwise", "rm-bench", "reward-bench", "reward-bench-2"]
BENCHMARKS: tuple[str, ...] = get_args(BenchmarkName)

METRICS_FILE = "metrics.json"  # [contract] DESIGN §3

DEFAULT_N_BOOT = 2000  # bootstrap replicates of every interval
DEFAULT_SEED = 0  # seeds the bootstrap
